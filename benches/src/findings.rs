//! The pieces the scenarios' findings are built from: a ranking of models by one figure with
//! the ratios to the best, the leader against the last, and how a figure grew across points.
//!
//! Every sentence is built from medians in the results, never from expectations: if thread
//! beats mio on some machine, the report says so.

use crate::compare::{self, Comparison, Figure, Verdict};
use crate::plan::Point;
use crate::present::View;
use crate::results::Summary;
use crate::text::{join, sig, times};

mod pairs;
pub use pairs::{idle_contrast, lesson, lesson_over, pairs, workers_at};

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

/// How `of` stands against `other` on `figure` at `point`: "0.93x (0.85-1.02)" with what the
/// run's paired rounds say of it (compare.rs). `None` when the two have no paired round.
pub fn against(
    view: &View<'_>,
    point: &Point,
    figure: &Figure,
    of: &str,
    other: &str,
) -> Option<(Comparison, String)> {
    let all = compare::at_point(view.results, point, figure);
    let c = all.into_iter().find(|c| c.between(of, other))?;
    let (r, lo, hi) = c.seen_from(of);
    let verdict = match (c.verdict, &c.better) {
        (Verdict::Different, Some(b)) if b == of => "better".to_string(),
        (Verdict::Different, _) => "worse".to_string(),
        (Verdict::Equivalent, _) => format!("equivalent within {:.0}%", compare::MARGIN * 100.0),
        (Verdict::Undecided, _) if c.confidence < compare::CONFIDENCE => {
            format!("not decided in {} rounds", c.rounds)
        }
        (Verdict::Undecided, _) => "no measurable difference".to_string(),
    };
    let text = format!("{}, {verdict}", interval_text(r, lo, hi));
    Some((c, text))
}

/// "5.0x (4.80-5.20)": a paired ratio and its interval.
pub(crate) fn interval_text(r: f64, lo: f64, hi: f64) -> String {
    format!("{} ({}-{})", times(r), ratio2(lo), ratio2(hi))
}

/// Whether the run's paired rounds call `a` and `b` different on `figure` at `point`: the test
/// every sentence that explains a difference passes before it says anything.
pub fn called(view: &View<'_>, point: &Point, figure: &Figure, a: &str, b: &str) -> bool {
    let all = compare::at_point(view.results, point, figure);
    all.iter().any(|c| c.between(a, b) && c.verdict == Verdict::Different)
}

/// A ratio with two decimals, as intervals print them.
fn ratio2(r: f64) -> String {
    format!("{r:.2}")
}

/// "**mio** 151,234 msgs/s; worse: hybrid 0.93x (0.90-0.95); no measurable difference: poll
/// 0.99x (0.95-1.04)": the servers at `point` by their median `figure`, the best first, then the
/// others grouped by the verdict of their paired ratio to the best (compare.rs), each with that
/// ratio and its interval (their medians are in the table above the findings). The best is
/// named alone only where every other server is called worse; otherwise the sentence names
/// those the run could not tell from it. Without paired rounds (an older file, a single round)
/// it lists the medians and claims no order.
///
/// At a point where the generator was saturated for most models, a throughput ranks no
/// server: the generator, not the server, set the pace, so the sentence says the point was
/// pair-limited and ranks by server CPU per message instead, saying that at saturation that
/// figure is CPU share over throughput and so not independent either.
pub fn ranking(
    view: &View<'_>,
    point: &Point,
    figure: &Figure,
    fmt: &dyn Fn(f64) -> String,
) -> String {
    if let Some(note) = pair_limited(view, point, figure) {
        let cpu = rank(view, point, &compare::CPU_PER_MSG, &|v| format!("{} us", sig(v)));
        return format!("{note}: {cpu}");
    }
    rank(view, point, figure, fmt)
}

/// Whether the generator was saturated for most of the models at `point`, and `figure` is a
/// throughput it capped: then the sentence that says so, else `None`.
pub fn pair_limited(view: &View<'_>, point: &Point, figure: &Figure) -> Option<String> {
    let at = view.at(point);
    let saturated = at.iter().filter(|(_, s)| s.saturated).count();
    let rate = figure.higher_is_better && figure.name != compare::CPU_PER_MSG.name;
    (rate && 2 * saturated > at.len()).then(|| {
        format!(
            "no ranking by {}: the generator was saturated for {saturated} of {} models, so the \
             pair, not the server, set the pace (pair-limited); server CPU per message instead, \
             though at saturation it is CPU share over throughput, so not independent either",
            figure.name,
            at.len()
        )
    })
}

/// The ranking itself (see [`ranking`]).
fn rank(view: &View<'_>, point: &Point, figure: &Figure, fmt: &dyn Fn(f64) -> String) -> String {
    let higher = figure.higher_is_better;
    let mut e: Vec<(&str, f64)> = view
        .at(point)
        .into_iter()
        .map(|(n, s)| (n, (figure.of)(&s.median)))
        .filter(|(_, v)| v.is_finite())
        .collect();
    e.sort_by(|a, b| if higher { b.1.total_cmp(&a.1) } else { a.1.total_cmp(&b.1) });
    let Some(&(best, bv)) = e.first() else { return "no model (no figures)".into() };
    if e.len() == 1 {
        return format!("{best}: {} (the only one measured)", fmt(bv));
    }
    let paired: Vec<Option<(Comparison, String)>> =
        e[1..].iter().map(|&(name, _)| against(view, point, figure, name, best)).collect();
    if paired.iter().all(Option::is_none) {
        let medians: Vec<String> = e.iter().map(|&(n, v)| format!("{n} {}", fmt(v))).collect();
        return format!(
            "no server by a paired comparison (this run has no paired rounds here; medians: {})",
            medians.join(", ")
        );
    }
    // Where no pair had the rounds a verdict needs, the sentence claims no order: the median
    // of the best, and how far below or above it the others' paired ratios lay.
    let decided = paired.iter().flatten().any(|(c, _)| c.confidence >= compare::CONFIDENCE);
    if !decided {
        let seen: Vec<f64> = e[1..]
            .iter()
            .zip(&paired)
            .filter_map(|(&(name, _), p)| Some(p.as_ref()?.0.seen_from(name).0))
            .collect();
        let lo = seen.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = seen.iter().copied().fold(0.0, f64::max);
        let rounds = paired.iter().flatten().map(|(c, _)| c.rounds).max().unwrap_or(0);
        return format!(
            "no order decided in {rounds} round{} (a verdict needs {}); by median **{best}** {}, \
             the other {} at {} to {} of it in paired rounds",
            if rounds == 1 { "" } else { "s" },
            compare::ROUNDS_FOR_VERDICT,
            fmt(bv),
            seen.len(),
            times(lo),
            times(hi)
        );
    }
    // Group the others by their verdict against the best, in the order they first appear.
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for (&(name, _), p) in e[1..].iter().zip(&paired) {
        let (verdict, item) = match p {
            Some((c, text)) => {
                let (r, lo, hi) = c.seen_from(name);
                let verdict = text.split_once("), ").map_or("", |(_, v)| v).to_string();
                (verdict, format!("{name} {}", interval_text(r, lo, hi)))
            }
            None => ("not paired".to_string(), name.to_string()),
        };
        match groups.iter_mut().find(|(v, _)| *v == verdict) {
            Some((_, items)) => items.push(item),
            None => groups.push((verdict, vec![item])),
        }
    }
    let parts: Vec<String> =
        groups.iter().map(|(v, items)| format!("{v}: {}", items.join(", "))).collect();
    let tied = e[1..]
        .iter()
        .zip(&paired)
        .any(|(_, p)| p.as_ref().is_none_or(|(c, _)| c.better.as_deref() != Some(best)));
    let mut out = format!("**{best}** {}; {}", fmt(bv), parts.join("; "));
    if tied {
        out.push_str("; so no single server leads");
    }
    out
}

/// "fork 557 us, thread 120 us, mio 40 us": the medians of a figure the run does not compare in
/// paired rounds (a figure derived from several, or counted in one traced repeat), best first
/// by median but with no claim that the order is real.
pub fn listing(entries: &[(&str, f64)], higher: bool, fmt: &dyn Fn(f64) -> String) -> String {
    let mut e: Vec<(&str, f64)> = entries.iter().copied().filter(|(_, v)| v.is_finite()).collect();
    e.sort_by(|a, b| if higher { b.1.total_cmp(&a.1) } else { a.1.total_cmp(&b.1) });
    let items: Vec<String> = e.iter().map(|&(n, v)| format!("{n} {}", fmt(v))).collect();
    items.join(", ")
}

/// "So mio served 2.3x (2.1-2.5) the messages of thread at 0.42x (0.40-0.45) the server CPU
/// per message": the throughput leader by median against the last, each ratio with its paired
/// interval and verdict. Said only where the throughput difference is called.
pub fn leader_vs_last(view: &View<'_>, point: &Point, what: &str, per: &str) -> Option<String> {
    let at = view.at(point);
    let mut by_rate: Vec<&(&str, &Summary)> = at.iter().collect();
    by_rate.sort_by(|a, b| b.1.median.msgs_per_sec.total_cmp(&a.1.median.msgs_per_sec));
    let (best, last) = (by_rate.first()?.0, by_rate.last()?.0);
    if by_rate.len() < 2 || pair_limited(view, point, &compare::RATE).is_some() {
        return None;
    }
    let (c, _) = against(view, point, &compare::RATE, best, last)?;
    if c.verdict != Verdict::Different {
        return None;
    }
    let (r, lo, hi) = c.seen_from(best);
    let cpu = match against(view, point, &compare::CPU_PER_MSG, best, last) {
        None => "an unmeasured server CPU".to_string(),
        Some((c, text)) => {
            let (r, lo, hi) = c.seen_from(best);
            let uncalled = if c.verdict == Verdict::Different {
                String::new()
            } else {
                format!(" ({})", text.rsplit(", ").next().unwrap_or_default())
            };
            format!("{} the server CPU{uncalled}", interval_text(r, lo, hi))
        }
    };
    Some(format!(
        "So {best} served {} the {what} of {last}, at {cpu} per {per}; each ratio is the paired \
         rounds' median with its interval.",
        interval_text(r, lo, hi)
    ))
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
