//! The report's first screen: one row per scenario with its question, its answer in one
//! sentence and a verdict taken from the run's paired comparisons (results.json's
//! `comparisons`), then the chart that sums the run up.
//!
//! The verdict is never recomputed here: it is read off the comparisons the runner stored, at
//! the point and on the figure the answer names, so that the first screen and the scenario's
//! own findings can never disagree about what the run showed.

use std::fmt::Write;

use crate::charts::Chart;
use crate::compare::{self, CONFIDENCE, Comparison, Figure, Verdict};
use crate::plan::Point;
use crate::present::{Scenario, View};
use crate::results::{Results, Summary};
use crate::text::{join, sig, times};

/// What the run's comparisons say of a scenario.
#[derive(Debug, Clone, PartialEq)]
pub enum Called {
    /// At least one pair was called different.
    Shown,
    /// Every pair with enough rounds was equivalent or undecided, and none was different.
    NoDifference,
    /// No pair had enough rounds for a verdict (or there was no pair): why.
    NotMeasurable(String),
}

impl Called {
    /// The verdict as the summary table prints it.
    pub fn text(&self) -> String {
        match self {
            Called::Shown => "shown".into(),
            Called::NoDifference => "no measurable difference".into(),
            Called::NotMeasurable(why) => format!("not measurable on this machine: {why}"),
        }
    }
}

/// One scenario's row of the summary.
#[derive(Debug, Clone)]
pub struct Row {
    /// The answer in one sentence.
    pub answer: String,
    /// The verdict.
    pub called: Called,
    /// The fewest and most rounds a point of the scenario ran.
    pub rounds: (u32, u32),
}

/// The figure a scenario's headline names, as a comparison figure.
fn headline(scenario: &dyn Scenario) -> Figure {
    let h = scenario.headline();
    Figure { name: h.name, of: h.figure, higher_is_better: h.higher_is_better }
}

/// Whether the generator was saturated for most of the models at a point: there throughput
/// measured the pair (server and generator together), not the server.
pub fn pair_limited(at: &[(&str, &Summary)]) -> bool {
    let saturated = at.iter().filter(|(_, s)| s.saturated).count();
    !at.is_empty() && 2 * saturated > at.len()
}

/// Whether `figure` is a throughput, which a saturated generator caps.
fn is_rate(figure: &Figure) -> bool {
    figure.higher_is_better && figure.name != compare::CPU_PER_MSG.name
}

/// The models that are a control (a second instance of another model): left out of the
/// summary, whose verdicts are about models.
fn controls(r: &Results) -> Vec<&str> {
    r.models.iter().filter(|m| m.control_of.is_some()).map(|m| m.name.as_str()).collect()
}

/// The stored comparisons of `scenario` at `point` on the figure named `figure`, between two
/// models neither of which is a control.
pub fn stored<'a>(r: &'a Results, point: &Point, figure: &str) -> Vec<&'a Comparison> {
    let controls = controls(r);
    r.comparisons
        .iter()
        .filter(|c| c.scenario == point.scenario && c.point == point.label && c.figure == figure)
        .filter(|c| !controls.contains(&c.a.as_str()) && !controls.contains(&c.b.as_str()))
        .collect()
}

/// The verdict of a set of comparisons; `models` is how many models (controls aside) ran the
/// point, for the reason when there is nothing to pair.
pub fn verdict(comparisons: &[&Comparison], models: usize) -> Called {
    if comparisons.is_empty() {
        return Called::NotMeasurable(if models <= 1 {
            "one model: nothing to pair, so medians only".into()
        } else {
            "no paired rounds here".into()
        });
    }
    let rounds = comparisons.iter().map(|c| c.rounds).max().unwrap_or(0);
    if comparisons.iter().any(|c| c.verdict == Verdict::Different) {
        Called::Shown
    } else if comparisons.iter().any(|c| c.confidence >= CONFIDENCE) {
        Called::NoDifference
    } else {
        Called::NotMeasurable(format!(
            "{rounds} round{} (a verdict needs {})",
            if rounds == 1 { "" } else { "s" },
            compare::ROUNDS_FOR_VERDICT
        ))
    }
}

/// A figure's value as the answer prints it, with its unit.
fn value(figure: &Figure, v: f64) -> String {
    match figure.name {
        n if n.starts_with('p') && n.len() <= 5 => format!("{} us", sig(v)),
        "connect p99" => format!("{} us", sig(v)),
        "peak PSS" => crate::text::memory(v),
        "server CPU us/msg" => format!("{} us", sig(v)),
        n => format!("{} {n}", sig(v)),
    }
}

/// A figure's name in a sentence.
fn spoken(figure: &Figure) -> String {
    match figure.name {
        "server CPU us/msg" => "server CPU per message".into(),
        "msgs/s" | "MiB/s" => format!("throughput ({})", figure.name),
        "conns/s" => "connections per second".into(),
        "peak PSS" => "peak memory (PSS)".into(),
        n if n.starts_with('p') && n.len() <= 5 => format!("{n} latency"),
        n => n.into(),
    }
}

/// "1.15x (1.09-1.18)": a comparison seen from `of`.
fn ratio(c: &Comparison, of: &str) -> String {
    let (r, lo, hi) = c.seen_from(of);
    format!("{} ({lo:.2}-{hi:.2})", times(r))
}

/// The default answer from the stored comparisons at `point` on `figure`: the leader with its
/// paired ratio to the next, or the group the run could not tell apart and those it called
/// worse. `None` when no comparison there had enough rounds.
pub fn answer_from(view: &View<'_>, point: &Point, figure: &Figure, why: &str) -> Option<String> {
    let r = view.results;
    let all = stored(r, point, figure.name);
    if !all.iter().any(|c| c.confidence >= CONFIDENCE) {
        return None;
    }
    let controls = controls(r);
    let mut e: Vec<(&str, f64)> = view
        .at(point)
        .into_iter()
        .filter(|(n, _)| !controls.contains(n))
        .map(|(n, s)| (n, (figure.of)(&s.median)))
        .filter(|(_, v)| v.is_finite())
        .collect();
    let higher = figure.higher_is_better;
    e.sort_by(|a, b| if higher { b.1.total_cmp(&a.1) } else { a.1.total_cmp(&b.1) });
    let &(best, bv) = e.first()?;
    let with = |n: &str| all.iter().find(|c| c.between(n, best)).copied();
    let (mut tied, mut worse) = (Vec::new(), Vec::new());
    for &(n, v) in &e[1..] {
        match with(n) {
            Some(c) if c.verdict == Verdict::Different && c.better.as_deref() == Some(best) => {
                worse.push((n, c))
            }
            _ => tied.push((n, v)),
        }
    }
    let at = format!("At {}{why}", point.label);
    let name = spoken(figure);
    if tied.is_empty() {
        let (next, c) = worse.first()?;
        return Some(format!(
            "{at}, {best} is best on {name} ({}); the next, {next}, {}.",
            value(figure, bv),
            ratio(c, next)
        ));
    }
    let names: Vec<String> =
        std::iter::once(best).chain(tied.iter().map(|(n, _)| *n)).map(String::from).collect();
    let last = tied.last().map_or(bv, |t| t.1);
    let mut out = format!(
        "{at}, on {name}: {} could not be told apart ({} to {})",
        join(&names),
        value(figure, bv),
        value(figure, last)
    );
    if let (Some((first, c1)), Some((last, c2))) = (worse.first(), worse.last()) {
        let names: Vec<String> = worse.iter().map(|(n, _)| n.to_string()).collect();
        let span = if first == last {
            ratio(c1, first)
        } else {
            format!("{} to {}", ratio(c1, first), ratio(c2, last))
        };
        out.push_str(&format!("; worse: {} ({span} of {best}'s)", join(&names)));
    }
    out.push('.');
    Some(out)
}

/// A long sentence cut to its gist: the first sentence; if that is long, of a list after a
/// colon only the first three items, or else its first clause (the whole stays in the
/// scenario's findings).
pub fn gist(text: &str) -> String {
    let first = match text.find(". ") {
        Some(i) => &text[..=i],
        None => text,
    };
    if first.len() <= 240 {
        return first.to_string();
    }
    if let Some((head, list)) = first.split_once(": ").filter(|(h, _)| !h.contains("; ")) {
        let items: Vec<&str> = list.split(", ").collect();
        if items.len() > 3 {
            return format!("{head}: {}, … (all in its section).", items[..3].join(", "));
        }
    }
    match first.split_once("; ") {
        Some((clause, _)) if clause.len() >= 30 => format!("{clause}."),
        _ => first.to_string(),
    }
}

/// The scenario's row.
pub fn row(results: &Results, scenario: &dyn Scenario) -> Row {
    let view = View { results, scenario: scenario.name() };
    let repeats: Vec<u32> = view
        .runs()
        .flat_map(|(_, s)| s.points.iter().filter_map(|p| p.summary.as_ref()))
        .map(|s| s.repeats)
        .collect();
    let rounds =
        (repeats.iter().copied().min().unwrap_or(0), repeats.iter().copied().max().unwrap_or(0));
    let Some((point, at)) = view.deciding() else {
        return Row {
            answer: "No model produced figures.".into(),
            called: Called::NotMeasurable("no figures".into()),
            rounds,
        };
    };
    let mut figure = headline(scenario);
    let mut why = String::new();
    let (point, at) = match scenario.summary_at(&view) {
        Some((p, f)) => {
            figure = f;
            (p, view.at(p))
        }
        None => (point, at),
    };
    if is_rate(&figure) && pair_limited(&at) {
        figure = compare::CPU_PER_MSG;
        why = " (pair-limited: the generator was saturated for most models)".into();
    }
    let controls = controls(results);
    let models = at.iter().filter(|(n, _)| !controls.contains(n)).count();
    let mut called = verdict(&stored(results, point, figure.name), models);
    if let (Called::NotMeasurable(reason), Some(limit)) = (&called, scenario.limit(&view)) {
        called = Called::NotMeasurable(format!("{reason}; {limit}"));
    }
    let answer = scenario
        .answer(&view)
        .or_else(|| answer_from(&view, point, &figure, &why))
        .or_else(|| scenario.findings(&view).first().map(|f| gist(f)))
        .unwrap_or_default();
    Row { answer, called, rounds }
}

/// Writes the summary section: the table, the rule its verdicts follow, and the summary chart
/// when one was drawn.
pub fn section(md: &mut String, results: &Results, run: &[&dyn Scenario], charts: &[Chart]) {
    let _ = writeln!(md, "## Summary\n");
    let _ = writeln!(md, "| scenario | answer | verdict | rounds |\n|---|---|---|--:|");
    for &scenario in run {
        let row = row(results, scenario);
        let (lo, hi) = row.rounds;
        let rounds = if lo == hi { lo.to_string() } else { format!("{lo}-{hi}") };
        let _ = writeln!(
            md,
            "| **{}**: {} | {} | {} | {rounds} |",
            scenario.name(),
            scenario.question(),
            row.answer.replace('|', "\\|"),
            row.called.text(),
        );
    }
    let _ = writeln!(
        md,
        "\nVerdicts are read from results.json's `comparisons` at the point and figure each \
         answer names, controls left out: *shown* if any pair was called different; *no \
         measurable difference* if none was but some pair had the {} rounds a verdict needs \
         (its {:.0}% interval inside the {:.0}% margin, or reaching across it); else *not measurable \
         on this machine*.\n",
        compare::ROUNDS_FOR_VERDICT,
        CONFIDENCE * 100.0,
        compare::MARGIN * 100.0
    );
    if let Some(c) = charts.iter().find(|c| c.file.ends_with("summary.svg")) {
        let _ = writeln!(md, "![The run in one chart]({})\n\n*{}*\n", c.file, {
            c.title.trim_end_matches('.')
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comparison(verdict: Verdict, confidence: f64, rounds: u32) -> Comparison {
        Comparison {
            scenario: "scale".into(),
            point: "1 conn".into(),
            figure: "msgs/s".into(),
            a: "mio".into(),
            b: "fork".into(),
            ratio: 0.5,
            low: 0.45,
            high: 0.55,
            confidence,
            better: (verdict == Verdict::Different).then(|| "mio".into()),
            verdict,
            rounds,
            higher_is_better: true,
        }
    }

    #[test]
    fn the_verdict_is_the_comparisons_own() {
        let different = comparison(Verdict::Different, 0.992, 8);
        let undecided = comparison(Verdict::Undecided, 0.992, 8);
        let equivalent = comparison(Verdict::Equivalent, 0.992, 8);
        let few = comparison(Verdict::Undecided, 0.75, 2);
        assert_eq!(verdict(&[&undecided, &different], 2), Called::Shown);
        assert_eq!(verdict(&[&undecided, &equivalent], 2), Called::NoDifference);
        // Far apart but in two rounds: no verdict, whatever the ratio.
        let Called::NotMeasurable(why) = verdict(&[&few], 2) else { panic!("a verdict") };
        assert_eq!(why, "2 rounds (a verdict needs 8)");
        let Called::NotMeasurable(why) = verdict(&[], 1) else { panic!("a verdict") };
        assert!(why.starts_with("one model"), "{why}");
    }

    #[test]
    fn a_long_first_finding_is_cut_to_its_gist() {
        let short = "A short answer. And more.";
        assert_eq!(gist(short), "A short answer.");
        let items: Vec<String> = (0..40).map(|i| format!("model{i} {i}.0 calls")).collect();
        let list = format!("At 100 conns, calls per message: {}.", items.join(", "));
        assert_eq!(
            gist(&list),
            "At 100 conns, calls per message: model0 0.0 calls, model1 1.0 calls, model2 2.0 \
             calls, … (all in its section)."
        );
        let clauses = format!("TCP lost nothing over all rates; {}", "and so on ".repeat(30));
        assert_eq!(gist(&clauses), "TCP lost nothing over all rates.");
    }
}
