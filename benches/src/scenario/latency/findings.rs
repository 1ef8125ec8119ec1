//! The latency scenario's figures per point and its sentences: which rate a point offered and
//! how it was chosen, whether a model sustained it (or was overloaded there), the latency
//! merged over the rounds, the generator's send lag beside it, and the one-line answer.
//!
//! Each sentence is built by a small function of plain numbers, so that a test can feed it a
//! case where the sentence would be wrong.

use crate::compare::{self, Comparison, Verdict};
use crate::plan::Point;
use crate::present::View;
use crate::results::{Chosen, Percentiles, PointResults, measured, median};
use crate::text::{join, sig, thousands};

/// Achieved below this share of the offered rate: the model did not sustain it.
pub const SUSTAINED: f64 = 0.95;

/// A corrected median latency above this share of the measured window: a queue that built
/// for most of the window, latency growing without bound, even where the rate achieved is
/// near the offered one (the window is too short for the shortfall to show).
pub const QUEUE_SHARE: f64 = 0.1;

/// A send-lag p99 at or above this share of the corrected p99: the generator's own lateness,
/// not the server, makes that latency.
pub const LAG_SHARE: f64 = 0.5;

/// A generator thread wanting its CPU more than this share of the time is the limit itself.
const GENERATOR_BUSY: f64 = 0.9;

/// Why a model did not sustain a rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Overload {
    /// Msgs/s offered.
    pub offered: f64,
    /// Msgs/s achieved (median over the rounds).
    pub achieved: f64,
    /// Corrected median latency, us.
    pub p50_us: f64,
    /// The generator's busiest thread wanted its CPU most of the time: the pair, not the
    /// server alone, fell short.
    pub generator_bound: bool,
}

impl Overload {
    /// Judges one model at one rate: overloaded when it achieved under [`SUSTAINED`] of the
    /// offered rate, or its corrected median latency grew past [`QUEUE_SHARE`] of the window.
    pub fn judge(
        offered: f64,
        achieved: f64,
        p50_us: f64,
        window_secs: f64,
        generator_bound: bool,
    ) -> Option<Overload> {
        let short = achieved < SUSTAINED * offered;
        let queue = window_secs > 0.0 && p50_us > QUEUE_SHARE * window_secs * 1e6;
        (short || queue).then_some(Overload { offered, achieved, p50_us, generator_bound })
    }

    /// "fork (82% of the rate)", "thread (queue: p50 95 ms)", with the generator's part.
    pub fn describe(&self, name: &str) -> String {
        let share = self.achieved / self.offered;
        let what = if share < SUSTAINED {
            format!("{:.0}% of the rate", 100.0 * share)
        } else {
            format!("a growing queue, p50 {} us", sig(self.p50_us))
        };
        let generator = if self.generator_bound { ", generator busy" } else { "" };
        format!("{name} ({what}{generator})")
    }
}

/// Whether the model of `p` did not sustain its point's rate; `None` when it did, or for a
/// closed loop.
pub fn overload(p: &PointResults) -> Option<Overload> {
    let offered = p.target_rate?;
    let s = p.summary.as_ref()?;
    let reports: Vec<&loadgen::Report> =
        measured(&p.repeats).filter_map(|r| r.loadgen.as_ref()).collect();
    let window = median(reports.iter().map(|r| r.run.measured_secs).collect());
    let demand = median(
        reports
            .iter()
            .map(|r| r.generator.max_thread_demand.unwrap_or(r.generator.max_thread_utilization))
            .collect(),
    );
    let p50 = latency(p)?.p50;
    Overload::judge(offered, s.median.msgs_per_sec, p50, window, demand > GENERATOR_BUSY)
}

/// The corrected latency of a point: from its rounds' merged histograms, else (an older
/// file) the median of each round's percentiles.
pub fn latency(p: &PointResults) -> Option<Percentiles> {
    match &p.merged {
        Some(m) => Some(m.latency_us),
        None => Some(p.summary.as_ref()?.median.latency_us),
    }
}

/// The uncorrected latency, likewise.
pub fn uncorrected(p: &PointResults) -> Option<Percentiles> {
    match &p.merged {
        Some(m) => m.latency_us_uncorrected,
        None => p.summary.as_ref()?.median.latency_us_uncorrected,
    }
}

/// The p99 of the generator's send lag: merged, else the median of the rounds' own.
pub fn lag_p99(p: &PointResults) -> Option<f64> {
    if let Some(l) = p.merged.as_ref().and_then(|m| m.schedule_lag_us) {
        return Some(l.p99);
    }
    let each: Vec<f64> = measured(&p.repeats)
        .filter_map(|r| r.loadgen.as_ref()?.schedule_lag_us.map(|l| l.p99))
        .collect();
    (!each.is_empty()).then(|| median(each))
}

/// Each model's results at `point`, in the run's order.
pub fn at<'a>(view: &View<'a>, point: &Point) -> Vec<(&'a str, &'a PointResults)> {
    // The control is the run's yardstick (the noise floor reads it), never a least or a most.
    view.runs()
        .filter(|(m, _)| m.control_of.is_none())
        .filter_map(|(m, s)| {
            let p = s.points.iter().find(|p| &p.point == point)?;
            p.summary.as_ref()?;
            Some((m.name.as_str(), p))
        })
        .collect()
}

/// "107,721 msgs/s (75% of the slowest model's capacity, fork's)": the rate `point` offered
/// and how it was chosen; "75% of each model's own capacity" where each had its own rate.
pub fn rate_phrase(rows: &[(&str, &PointResults)], point: &Point) -> String {
    let pct = |f: Option<f64>| format!("{:.0}%", 100.0 * f.unwrap_or(0.0));
    if point.rate.is_none() && point.rate_basis.is_none() && point.rate_fraction.is_some() {
        // Each model at its own rate (a file from before common rates, or `--rates 50%own`).
        return format!("{} of each model's own capacity", pct(point.rate_fraction));
    }
    let first = rows.iter().find_map(|(_, p)| Some((p.target_rate?, p.offered.as_ref())));
    let Some((rate, offered)) = first else { return point.label.clone() };
    match offered {
        Some(o) if o.chosen == Chosen::Fixed => {
            format!("{} msgs/s (a fixed rate)", thousands(rate))
        }
        Some(o) => {
            let whose = o.server.as_ref().map_or(String::new(), |s| format!(", {s}'s"));
            let basis = match o.chosen {
                Chosen::Slowest => "the slowest model's",
                Chosen::Median => "the median model's",
                _ => "the fastest model's",
            };
            format!("{} msgs/s ({} of {basis} capacity{whose})", thousands(rate), pct(o.fraction))
        }
        None => format!("{} msgs/s", thousands(rate)),
    }
}

/// The lowest and highest of `values` (model, figure; lower is better) and what the paired
/// rounds in `pairs` say of them: "least mio 2.6 us (not told apart from poll); most fork
/// 4.8 us". Names a model least (or most) only with those the rounds could not tell from it,
/// and claims no order at all without paired rounds.
pub fn extremes(values: &[(&str, f64)], pairs: &[Comparison], unit: &str) -> String {
    let mut e: Vec<(&str, f64)> = values.iter().copied().filter(|v| v.1.is_finite()).collect();
    e.sort_by(|a, b| a.1.total_cmp(&b.1));
    let fmt = |(n, v): (&str, f64)| format!("{n} {} {unit}", sig(v));
    match e.len() {
        0 => return "no figures".into(),
        1 => return format!("{} (the only one measured)", fmt(e[0])),
        _ => {}
    }
    let pair = |a: &str, b: &str| pairs.iter().find(|c| c.between(a, b));
    if e.iter().all(|a| e.iter().all(|b| a.0 == b.0 || pair(a.0, b.0).is_none())) {
        return format!(
            "not compared in paired rounds (medians from {} to {})",
            fmt(e[0]),
            fmt(e[e.len() - 1])
        );
    }
    // Those the rounds did not call worse (or better) than `of`.
    let apart = |of: &str, better: bool| -> Vec<String> {
        e.iter()
            .filter(|o| o.0 != of)
            .filter(|o| {
                pair(of, o.0).is_none_or(|c| {
                    let told = c.verdict == Verdict::Different;
                    let of_better = c.better.as_deref() == Some(of);
                    !(told && of_better == better)
                })
            })
            .map(|o| o.0.to_string())
            .collect()
    };
    let (best, worst) = (e[0], e[e.len() - 1]);
    let with_best = apart(best.0, true);
    if with_best.len() == e.len() - 1 {
        return format!(
            "no order the paired rounds could tell (medians from {} to {})",
            fmt(best),
            fmt(worst)
        );
    }
    let mut out = format!("least {}", fmt(best));
    if !with_best.is_empty() {
        out.push_str(&format!(" (not told apart from {})", join(&with_best)));
    }
    if !with_best.iter().any(|n| n == worst.0) {
        let with_worst: Vec<String> =
            apart(worst.0, false).into_iter().filter(|n| n != best.0).collect();
        out.push_str(&format!("; most {}", fmt(worst)));
        if !with_worst.is_empty() {
            out.push_str(&format!(" (not told apart from {})", join(&with_worst)));
        }
    }
    out
}

/// Whether the send lag makes this latency (model, lag p99, corrected p99, in us): the lag
/// p99 is at least [`LAG_SHARE`] of the corrected p99.
pub fn lag_made(&(_, lag, p99): &(&str, f64, f64)) -> bool {
    p99 > 0.0 && lag >= LAG_SHARE * p99
}

/// The models at one rate whose latency the generator's send lag makes: lag p99 at least
/// [`LAG_SHARE`] of the corrected p99 (`rows`: model, lag p99, corrected p99, in us).
pub fn lag_finding(phrase: &str, rows: &[(&str, f64, f64)]) -> Option<String> {
    let made: Vec<&(&str, f64, f64)> = rows.iter().filter(|r| lag_made(r)).collect();
    if made.is_empty() {
        return None;
    }
    let each: Vec<String> = made
        .iter()
        .map(|(n, lag, p99)| format!("{n} (lag {} of {} us)", sig(*lag), sig(*p99)))
        .collect();
    Some(format!(
        "At {phrase}, the generator's own send lag makes the p99 of {}: its lag p99 is at least \
         {:.0}% of the corrected p99, so that figure is loadgen's lateness more than the \
         server's.",
        join(&each),
        LAG_SHARE * 100.0
    ))
}

/// The models at one rate whose latency from the intended send time (p99.9) is at least
/// twice the figure from the actual send (`rows`: model, corrected, uncorrected, in us):
/// queueing a closed-loop tool would not see.
pub fn queueing_finding(phrase: &str, rows: &[(&str, f64, f64)]) -> Option<String> {
    let each: Vec<String> = rows
        .iter()
        .filter(|(_, c, u)| *u > 0.0 && c / u >= 2.0)
        .map(|(n, c, u)| format!("{n} {} against {} us", sig(*c), sig(*u)))
        .collect();
    (!each.is_empty()).then(|| {
        format!(
            "At {phrase}, p99.9 from the intended send time was at least twice that from the \
             actual send for {}: queueing that a closed loop would hide.",
            join(&each)
        )
    })
}

/// The scenario's one-line answer, and the point it is about: server CPU per message at the
/// highest rate every model sustained (else the first point), as far as the paired rounds
/// tell.
pub fn headline<'a>(view: &View<'a>) -> Option<(&'a Point, String)> {
    let points: Vec<&Point> = view.points().collect();
    let sustained = |p: &Point| {
        let rows = at(view, p);
        !rows.is_empty() && rows.iter().all(|(_, r)| overload(r).is_none())
    };
    let point = points
        .iter()
        .filter(|p| sustained(p))
        .max_by(|a, b| rate_of(view, a).total_cmp(&rate_of(view, b)))
        .or_else(|| points.iter().find(|p| !at(view, p).is_empty()))?;
    let rows = at(view, point);
    let said = format!("At {}, server CPU per message: {}.", rate_phrase(&rows, point), {
        cpu(view, point, &rows)
    });
    Some((point, said))
}

/// Server CPU per message among the models that sustained `point`'s rate: the cost of each
/// at equal work, as far as the paired rounds tell.
fn cpu(view: &View<'_>, point: &Point, rows: &[(&str, &PointResults)]) -> String {
    let values: Vec<(&str, f64)> = rows
        .iter()
        .filter(|(_, p)| overload(p).is_none())
        .filter_map(|(n, p)| Some((*n, p.summary.as_ref()?.median.server_cpu_per_msg_us?)))
        .collect();
    let pairs = compare::at_point(view.results, point, &compare::CPU_PER_MSG);
    extremes(&values, &pairs, "us")
}

/// The rate a point offered (the first model's); 0 when none.
fn rate_of(view: &View<'_>, point: &Point) -> f64 {
    at(view, point).iter().find_map(|(_, p)| p.target_rate).unwrap_or(0.0)
}

/// One sentence per rate: p99 and (unless the headline said it) server CPU per message among
/// the models that sustained it, and the models that did not.
pub fn per_rate(view: &View<'_>, point: &Point, with_cpu: bool) -> Option<String> {
    let rows = at(view, point);
    if rows.is_empty() {
        return None;
    }
    let phrase = rate_phrase(&rows, point);
    let over: Vec<String> =
        rows.iter().filter_map(|(n, p)| Some(overload(p)?.describe(n))).collect();
    let p99: Vec<(&str, f64)> = rows
        .iter()
        .filter(|(_, p)| overload(p).is_none())
        .filter_map(|(n, p)| Some((*n, latency(p)?.p99)))
        .collect();
    let pairs = compare::at_point(view.results, point, &compare::P99);
    let mut out =
        format!("At {phrase}: p99 over every round's messages, {}", extremes(&p99, &pairs, "us"));
    if with_cpu {
        out.push_str(&format!("; server CPU per message, {}", cpu(view, point, &rows)));
    }
    if !over.is_empty() {
        out.push_str(&format!(
            "; overloaded, so left out of both (their latency is their queue's length): {}",
            join(&over)
        ));
    } else {
        out.push_str("; every model sustained the rate");
    }
    out.push('.');
    Some(out)
}

#[cfg(test)]
mod tests;
