//! The report's prose, written from the measured numbers: who won each scenario, by how much,
//! at what cost, and the caveats that bound what the numbers can say.
//!
//! Every sentence is built from medians in the results, never from expectations: if thread
//! beats mio on some machine, the report says so.

use super::plan::{Point, Scenario};
use super::results::{ModelResults, PointResults, Results, ScenarioResults, Summary};
use super::text::{format_bytes, join, sig, thousands, times};
use super::why;

/// Two models closer than this ratio are called a tie: run-to-run noise on a shared 2-core VM
/// is of that order.
pub const TIE: f64 = 1.05;

/// What holding idle connections cost one model, per connection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IdleCost {
    /// PSS above the idle server's baseline, in KiB per connection.
    pub kib_per_conn: f64,
    /// Threads above baseline per connection.
    pub threads_per_conn: f64,
    /// Processes above baseline per connection.
    pub processes_per_conn: f64,
}

/// The cost per connection of an idle point: (peak - baseline) / connections held, counting the
/// one active connection too.
pub fn idle_cost(s: &ScenarioResults, p: &PointResults) -> Option<IdleCost> {
    let base = s.server.baseline?;
    let m = &p.summary.as_ref()?.median;
    let conns = f64::from(p.point.idle + p.point.connections);
    let per = |peak: f64, base: f64| ((peak - base) / conns).max(0.0);
    Some(IdleCost {
        kib_per_conn: per(m.server_peak_pss_kib, base.pss_kib as f64),
        threads_per_conn: per(m.server_peak_threads, f64::from(base.threads)),
        processes_per_conn: per(m.server_peak_processes, f64::from(base.processes)),
    })
}

/// A model's latency point at the highest load fraction it completed.
pub fn highest_load(m: &ModelResults) -> Option<(&Point, &Summary)> {
    let s = m.scenario(Scenario::Latency)?;
    s.points
        .iter()
        .filter_map(|p| Some((&p.point, p.summary.as_ref()?)))
        .max_by(|a, b| a.0.x().total_cmp(&b.0.x()))
}

/// The point of `scenario` with the largest x that the most models have figures for, and
/// each model's summary there.
fn deciding_point(results: &Results, scenario: Scenario) -> Option<(Point, Vec<(&str, &Summary)>)> {
    let mut best: Option<(Point, Vec<(&str, &Summary)>)> = None;
    for point in results.plan.points_of(scenario) {
        let at: Vec<(&str, &Summary)> = results
            .models
            .iter()
            .filter_map(|m| Some((m.name.as_str(), m.scenario(scenario)?.summary_of(point)?)))
            .collect();
        if !at.is_empty() && best.as_ref().is_none_or(|(_, b)| at.len() >= b.len()) {
            best = Some((point.clone(), at));
        }
    }
    best
}

/// "**mio**: 151,234 msgs/s (hybrid 140,012 msgs/s, 0.93x; thread 65,001 msgs/s, 0.43x)":
/// the best first (highest when `higher`, else lowest), then each other model with its ratio
/// to the best. Notes a tie at the top.
fn ranking(entries: &[(&str, f64)], higher: bool, fmt: &dyn Fn(f64) -> String) -> String {
    let mut e: Vec<(&str, f64)> = entries.iter().copied().filter(|(_, v)| v.is_finite()).collect();
    e.sort_by(|a, b| if higher { b.1.total_cmp(&a.1) } else { a.1.total_cmp(&b.1) });
    let Some(&(best, bv)) = e.first() else { return "no model (no figures)".into() };
    let others: Vec<String> =
        e[1..].iter().map(|&(name, v)| format!("{name} {}, {}", fmt(v), times(v / bv))).collect();
    let mut out = format!("**{best}**: {}", fmt(bv));
    if !others.is_empty() {
        out.push_str(&format!(" ({})", others.join("; ")));
    }
    if let Some(&(second, sv)) = e.get(1) {
        let ratio = if higher { bv / sv } else { sv / bv };
        if ratio < TIE {
            let gap = ((ratio - 1.0) * 100.0).ceil().max(1.0);
            out.push_str(&format!(
                "; {best} and {second} are within {gap:.0}% of each other, too close to call here"
            ));
        }
    }
    out
}

/// "mio served 2.3x the messages of thread at 0.42x the CPU per message": the throughput
/// leader against the last, when both CPU figures exist.
fn leader_vs_last(at: &[(&str, &Summary)], what: &str) -> Option<String> {
    let mut by_rate: Vec<&(&str, &Summary)> = at.iter().collect();
    by_rate.sort_by(|a, b| b.1.median.msgs_per_sec.total_cmp(&a.1.median.msgs_per_sec));
    let (best, last) = (by_rate.first()?, by_rate.last()?);
    let (bc, lc) = (best.1.median.server_cpu_per_msg_us?, last.1.median.server_cpu_per_msg_us?);
    let (br, lr) = (best.1.median.msgs_per_sec, last.1.median.msgs_per_sec);
    (by_rate.len() >= 2 && lr > 0.0 && lc > 0.0).then(|| {
        format!(
            "So {} served {} the {what} of {} at {} the server CPU per {}.",
            best.0,
            times(br / lr),
            last.0,
            times(bc / lc),
            if what == "connections" { "connection" } else { "message" }
        )
    })
}

/// The scenario's findings, best first.
pub fn scenario_findings(results: &Results, scenario: Scenario) -> Vec<String> {
    let Some((point, at)) = deciding_point(results, scenario) else {
        return vec!["No model produced figures for this scenario.".into()];
    };
    let fig = |f: &dyn Fn(&Summary) -> f64| -> Vec<(&str, f64)> {
        at.iter().map(|(n, s)| (*n, f(s))).collect()
    };
    let mut out = Vec::new();
    match scenario {
        Scenario::Scale => {
            let rates = fig(&|s| s.median.msgs_per_sec);
            out.push(format!(
                "At {}, the most messages per second were served by {}.",
                point.label(),
                ranking(&rates, true, &|v| format!("{} msgs/s", thousands(v)))
            ));
            let cpu = fig(&|s| s.median.server_cpu_per_msg_us.unwrap_or(f64::NAN));
            out.push(format!(
                "Server CPU per message at {}: the least was spent by {}.",
                point.label(),
                ranking(&cpu, false, &|v| format!("{} us", sig(v)))
            ));
            out.extend(leader_vs_last(&at, "messages"));
            out.extend(why::scale(&at));
            out.extend(growth(results, scenario));
            out.extend(low_concurrency(results));
        }
        Scenario::Size => {
            let mib = fig(&|s| s.median.mib_per_sec);
            out.push(format!(
                "With {} messages, the most data was moved by {}.",
                format_bytes(point.size),
                ranking(&mib, true, &|v| format!("{} MiB/s", sig(v)))
            ));
            out.extend(growth(results, scenario));
            out.extend(size_why(results));
        }
        Scenario::Churn => {
            let rates = fig(&|s| s.median.msgs_per_sec);
            out.push(format!(
                "With {} each opening a connection per message, the most connections per second were \
                 accepted and served by {}.",
                point.label(),
                ranking(&rates, true, &|v| format!("{}/s", thousands(v)))
            ));
            let cpu = fig(&|s| s.median.server_cpu_per_msg_us.unwrap_or(f64::NAN));
            out.push(format!(
                "Server CPU per connection (accept, echo, close): the least was spent by {}.",
                ranking(&cpu, false, &|v| format!("{} us", sig(v)))
            ));
            out.extend(leader_vs_last(&at, "connections"));
            out.extend(why::churn(&at));
            let connect = fig(&|s| s.median.connect_us.map_or(f64::NAN, |c| c.p99));
            if connect.iter().any(|(_, v)| v.is_finite()) {
                out.push(format!(
                    "Connect latency p99: lowest was {}.",
                    ranking(&connect, false, &|v| format!("{} us", sig(v)))
                ));
            }
        }
        Scenario::Idle => out.extend(idle_findings(results, &point)),
        Scenario::Latency => out.extend(latency_findings(results)),
    }
    out
}

/// How each model's headline figure changed from the scenario's first point to its last.
fn growth(results: &Results, scenario: Scenario) -> Option<String> {
    let points: Vec<&Point> = results.plan.points_of(scenario).collect();
    let (first, last) = (points.first()?, points.last()?);
    if first == last {
        return None;
    }
    let figure = |s: &Summary| match scenario {
        Scenario::Size => s.median.mib_per_sec,
        _ => s.median.msgs_per_sec,
    };
    let changes: Vec<String> = results
        .models
        .iter()
        .filter_map(|m| {
            let s = m.scenario(scenario)?;
            let (a, b) = (figure(s.summary_of(first)?), figure(s.summary_of(last)?));
            (a > 0.0).then(|| format!("{} {}", m.name, times(b / a)))
        })
        .collect();
    (!changes.is_empty()).then(|| {
        let what = if scenario == Scenario::Size { "MiB/s" } else { "messages/s" };
        format!(
            "From {} to {}, {what} changed by: {}.",
            first.label(),
            last.label(),
            join(&changes)
        )
    })
}

/// The size scenario's "why": the gap between models at its first and last point.
fn size_why(results: &Results) -> Option<String> {
    let points: Vec<&Point> = results.plan.points_of(Scenario::Size).collect();
    let (first, last) = (points.first()?, points.last()?);
    let at = |p: &Point| -> Vec<(&str, f64)> {
        results
            .models
            .iter()
            .filter_map(|m| {
                let s = m.scenario(Scenario::Size)?.summary_of(p)?;
                Some((m.name.as_str(), s.median.mib_per_sec))
            })
            .collect()
    };
    why::size(&at(first), &at(last), (&first.label(), &last.label()))
}

/// At one connection the round trip, not the server, sets the pace; say how close models are.
fn low_concurrency(results: &Results) -> Option<String> {
    let first = results.plan.points_of(Scenario::Scale).next()?;
    if first.connections != 1 {
        return None;
    }
    let rates: Vec<f64> = results
        .models
        .iter()
        .filter_map(|m| Some(m.scenario(Scenario::Scale)?.summary_of(first)?.median.msgs_per_sec))
        .collect();
    let lo = rates.iter().copied().fold(f64::MAX, f64::min);
    let hi = rates.iter().copied().fold(0.0, f64::max);
    (rates.len() >= 2 && lo > 0.0).then(|| {
        format!(
            "At 1 connection every model served between {} and {} msgs/s (a {} range): with one \
             message in flight, each round trip waits on wake-ups, so placement matters more \
             than the model (see Environment).",
            thousands(lo),
            thousands(hi),
            times(hi / lo)
        )
    })
}

fn idle_findings(results: &Results, point: &Point) -> Vec<String> {
    let mut costs = Vec::new();
    let mut latency = Vec::new();
    for m in &results.models {
        let Some(s) = m.scenario(Scenario::Idle) else { continue };
        let Some(p) = s.points.iter().find(|p| &p.point == point) else { continue };
        if let Some(c) = idle_cost(s, p) {
            costs.push((m.name.as_str(), c));
        }
        if let Some(sum) = &p.summary {
            latency.push((m.name.as_str(), sum.median.latency_us.p99));
        }
    }
    let mut out = Vec::new();
    let kib: Vec<(&str, f64)> = costs.iter().map(|(n, c)| (*n, c.kib_per_conn)).collect();
    if !kib.is_empty() {
        out.push(format!(
            "Holding {} idle connections beside {} active, the least memory (PSS) per connection \
             was used by {}.",
            thousands(f64::from(point.idle)),
            point.connections,
            ranking(&kib, false, &|v| format!("{} KiB", sig(v)))
        ));
        let per: Vec<(&str, f64, f64, f64)> = costs
            .iter()
            .map(|(n, c)| (*n, c.kib_per_conn, c.threads_per_conn, c.processes_per_conn))
            .collect();
        out.extend(why::idle(&per));
    }
    if !latency.is_empty() {
        out.push(format!(
            "The one active client's p99 beside them: lowest was {}.",
            ranking(&latency, false, &|v| format!("{} us", sig(v)))
        ));
    }
    out
}

fn latency_findings(results: &Results) -> Vec<String> {
    let at: Vec<(&str, &Point, &Summary)> = results
        .models
        .iter()
        .filter_map(|m| highest_load(m).map(|(p, s)| (m.name.as_str(), p, s)))
        .collect();
    let Some(&(_, point, _)) = at.first() else { return Vec::new() };
    let p99: Vec<(&str, f64)> = at.iter().map(|(n, _, s)| (*n, s.median.latency_us.p99)).collect();
    let mut out = vec![format!(
        "At {} of each model's own capacity, the lowest p99 was {}. Each model runs at its own \
         rate here, so this compares how gracefully each behaves near its limit.",
        point.label().replace(" load", ""),
        ranking(&p99, false, &|v| format!("{} us", sig(v)))
    )];
    for (name, _, s) in &at {
        let Some(target) = results
            .model(name)
            .and_then(|m| m.scenario(Scenario::Latency))
            .and_then(|sc| sc.points.iter().find(|p| p.point == *point))
            .and_then(|p| p.target_rate)
        else {
            continue;
        };
        if s.median.msgs_per_sec < 0.95 * target {
            out.push(format!(
                "{name} achieved only {:.0}% of its target rate ({} of {} msgs/s): its capacity \
                 under an open loop is lower than the closed-loop figure it was derived from.",
                100.0 * s.median.msgs_per_sec / target,
                thousands(s.median.msgs_per_sec),
                thousands(target)
            ));
        }
        if let Some(u) = s.median.latency_us_uncorrected {
            let c = s.median.latency_us.p999;
            if u.p999 > 0.0 && c / u.p999 >= 2.0 {
                out.push(format!(
                    "{name}'s p99.9 measured from the intended send time is {} us, {} the {} us \
                     measured from the actual send: queueing that a closed loop would hide.",
                    sig(c),
                    times(c / u.p999),
                    sig(u.p999)
                ));
            }
        }
    }
    out
}
