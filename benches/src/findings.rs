//! The pieces the scenarios' findings are built from: a ranking of models by one figure with
//! the ratios to the best, the leader against the last, and how a figure grew across points.
//!
//! Every sentence is built from medians in the results, never from expectations: if thread
//! beats mio on some machine, the report says so.

use crate::present::View;
use crate::results::{Metrics, Summary};
use crate::text::{join, sig, times};

/// What a scenario's findings say when no model produced a figure.
pub const NO_FIGURES: &str = "No model produced figures for this scenario.";

/// One figure of each model's summary: the entries [`ranking`] takes.
pub fn figure<'a>(at: &[(&'a str, &Summary)], f: impl Fn(&Summary) -> f64) -> Vec<(&'a str, f64)> {
    at.iter().map(|(n, s)| (*n, f(s))).collect()
}

/// Server CPU per message of each model, NaN (left out of a ranking) where it is unknown.
pub fn cpu_figure<'a>(at: &[(&'a str, &Summary)]) -> Vec<(&'a str, f64)> {
    figure(at, |s| s.median.server_cpu_per_msg_us.unwrap_or(f64::NAN))
}

/// Two models closer than this ratio are called a tie: run-to-run noise on a shared 2-core VM
/// is of that order.
pub const TIE: f64 = 1.05;

/// "**mio**: 151,234 msgs/s (hybrid 140,012 msgs/s, 0.93x; thread 65,001 msgs/s, 0.43x)":
/// the best first (highest when `higher`, else lowest), then each other model with its ratio
/// to the best. Notes a tie at the top. A figure that is not finite, or a ratio to a best of
/// zero, has no meaning and is left out or shown as "-".
pub fn ranking(entries: &[(&str, f64)], higher: bool, fmt: &dyn Fn(f64) -> String) -> String {
    let mut e: Vec<(&str, f64)> = entries.iter().copied().filter(|(_, v)| v.is_finite()).collect();
    e.sort_by(|a, b| if higher { b.1.total_cmp(&a.1) } else { a.1.total_cmp(&b.1) });
    let Some(&(best, bv)) = e.first() else { return "no model (no figures)".into() };
    let ratio = |v: f64| if bv != 0.0 { times(v / bv) } else { "-".into() };
    let others: Vec<String> =
        e[1..].iter().map(|&(name, v)| format!("{name} {}, {}", fmt(v), ratio(v))).collect();
    let mut out = format!("**{best}**: {}", fmt(bv));
    if !others.is_empty() {
        out.push_str(&format!(" ({})", others.join("; ")));
    }
    if let Some(&(second, sv)) = e.get(1) {
        let ratio = if higher { bv / sv } else { sv / bv };
        if ratio.is_finite() && ratio < TIE {
            let gap = ((ratio - 1.0) * 100.0).ceil().max(1.0);
            out.push_str(&format!(
                "; {best} and {second} are within {gap:.0}% of each other, too close to call here"
            ));
        }
    }
    out
}

/// "So mio served 2.3x the messages of thread at 0.42x the server CPU per message": the
/// throughput leader against the last, when both CPU figures exist.
pub fn leader_vs_last(at: &[(&str, &Summary)], what: &str, per: &str) -> Option<String> {
    let mut by_rate: Vec<&(&str, &Summary)> = at.iter().collect();
    by_rate.sort_by(|a, b| b.1.median.msgs_per_sec.total_cmp(&a.1.median.msgs_per_sec));
    let (best, last) = (by_rate.first()?, by_rate.last()?);
    let (bc, lc) = (best.1.median.server_cpu_per_msg_us?, last.1.median.server_cpu_per_msg_us?);
    let (br, lr) = (best.1.median.msgs_per_sec, last.1.median.msgs_per_sec);
    (by_rate.len() >= 2 && lr > 0.0 && lc > 0.0).then(|| {
        format!(
            "So {} served {} the {what} of {} at {} the server CPU per {per}.",
            best.0,
            times(br / lr),
            last.0,
            times(bc / lc),
        )
    })
}

/// How each model's `figure` changed from the scenario's first point to its last:
/// "From 1 conn to 1000 conns, messages/s changed by: mio 8.1x and fork 3.0x."
pub fn growth(view: &View<'_>, what: &str, figure: fn(&Summary) -> f64) -> Option<String> {
    let points: Vec<_> = view.points().collect();
    let (first, last) = (points.first()?, points.last()?);
    if first == last {
        return None;
    }
    let changes: Vec<String> = view
        .runs()
        .filter_map(|(m, s)| {
            let (a, b) = (figure(s.summary_of(first)?), figure(s.summary_of(last)?));
            (a > 0.0).then(|| format!("{} {}", m.name, times(b / a)))
        })
        .collect();
    (!changes.is_empty()).then(|| {
        format!("From {} to {}, {what} changed by: {}.", first.label, last.label, join(&changes))
    })
}

/// One figure of a neighbours sentence: its name, how to read it off a point's median, and its
/// unit.
pub type Figure = (&'static str, fn(&Metrics) -> Option<f64>, &'static str);

/// Each model set beside the neighbour the registry names for it, at the scenario's deciding
/// point: "prefork against fork (what forking before the connection arrives saves): conns/s
/// 3,450 against 1,100 (3.1x), server CPU per connection 105 against 557 us (0.19x)."
pub fn neighbours(view: &View<'_>, figures: &[Figure]) -> Vec<String> {
    let Some((point, at)) = view.deciding() else { return Vec::new() };
    let find = |name: &str| at.iter().find(|(n, _)| *n == name).map(|(_, s)| *s);
    let mut out = Vec::new();
    for (name, summary) in &at {
        let Some(against) = crate::registry::find(name).and_then(|m| m.against) else { continue };
        let Some(other) = find(against.model) else { continue };
        let parts: Vec<String> = figures
            .iter()
            .filter_map(|(label, f, unit)| {
                let (a, b) = (f(&summary.median)?, f(&other.median)?);
                (a.is_finite() && b.is_finite() && b > 0.0).then(|| {
                    format!("{label} {} against {}{unit} ({})", sig(a), sig(b), times(a / b))
                })
            })
            .collect();
        if !parts.is_empty() {
            out.push(format!(
                "{name} against {} ({}), at {}: {}.",
                against.model,
                against.lesson,
                point.label,
                parts.join(", ")
            ));
        }
    }
    out
}

/// How loadgen paced the scenario's open loops, from the generator's own reports: how early a
/// send could leave, how many left per wake-up, and what the echoes were timed by. `None`
/// when no repeat ran an open loop. A reader comparing latencies needs this: messages that
/// leave together reach the server as a small burst.
pub fn open_loop_pacing(view: &View<'_>) -> Option<String> {
    let reports = view
        .runs()
        .flat_map(|(_, s)| &s.points)
        .flat_map(|p| &p.repeats)
        .filter_map(|r| r.loadgen.as_ref());
    let (mut slack, mut per, mut all_stamped) = (Vec::new(), Vec::new(), true);
    for g in reports.map(|r| &r.generator) {
        let Some(s) = g.send_slack_us else { continue };
        slack.push(s);
        per.extend(g.sends_per_wakeup);
        all_stamped &= g.echoes_stamped_by_kernel == Some(true);
    }
    let span = |v: &[f64], fmt: &dyn Fn(f64) -> String| {
        let lo = fmt(v.iter().copied().fold(f64::INFINITY, f64::min));
        let hi = fmt(v.iter().copied().fold(0.0, f64::max));
        if lo == hi { lo } else { format!("{lo} to {hi}") }
    };
    if slack.is_empty() {
        return None;
    }
    let mut out = format!(
        "At each wake-up loadgen sent every message due within the next {} us, early (its send \
         slack, chosen from what a wake-up of its thread costs: loadgen/README.md)",
        span(&slack, &sig)
    );
    if !per.is_empty() {
        out.push_str(&format!(", {} per wake-up", span(&per, &|v| format!("{v:.1}"))));
    }
    out.push_str(
        "; a message sent early is timed from when it left, so no latency is understated, but \
         messages sent together reach the server as a small burst.",
    );
    if all_stamped {
        out.push_str(" Echoes were timed by the kernel's receive stamps, when they arrived.");
    }
    Some(out)
}
