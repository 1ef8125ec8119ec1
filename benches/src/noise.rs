//! The report's "Noise floor" section: how far apart the control and its twin came out at each
//! point, whether the run's comparisons held them equal, and what the run's verdicts add up to.
//!
//! The control (`--control MODEL`) is a second instance of a model, started and loaded exactly
//! like it and measured in the same rounds, so every difference between the twins is noise. A
//! run whose comparisons call the twins different at a point could not tell noise from a real
//! difference there, and the section says so plainly rather than leaving the reader to trust
//! that point's other verdicts.

use std::fmt::Write;

use crate::compare::{self, CONFIDENCE, Comparison, Verdict};
use crate::results::Results;

/// Writes the section (nothing for a run without comparisons).
pub fn section(md: &mut String, r: &Results) {
    if r.comparisons.is_empty() {
        return;
    }
    let _ = writeln!(md, "## Noise floor and verdicts\n");
    let count = |v: Verdict| r.comparisons.iter().filter(|c| c.verdict == v).count();
    let _ = writeln!(
        md,
        "{} paired comparisons (every pair of servers at every point, on the scenario's headline \
         figure and on server CPU per message): {} different, {} equivalent within {:.0}%, {} \
         undecided. A verdict needs {} rounds, whose interval for the median ratio reaches \
         {:.0}% (results/SCHEMA.md, \"comparisons\").\n",
        r.comparisons.len(),
        count(Verdict::Different),
        count(Verdict::Equivalent),
        compare::MARGIN * 100.0,
        count(Verdict::Undecided),
        compare::ROUNDS_FOR_VERDICT,
        compare::CONFIDENCE * 100.0,
    );
    let Some((control, model)) =
        r.models.iter().find_map(|m| Some((m.name.as_str(), m.control_of.as_deref()?)))
    else {
        let _ = writeln!(
            md,
            "This run had no control (`--control none`, or a quick run), so it did not measure \
             how far apart identical servers come out.\n"
        );
        return;
    };
    let twins: Vec<&Comparison> =
        r.comparisons.iter().filter(|c| c.between(control, model)).collect();
    let _ = writeln!(
        md,
        "`{control}` is a second {model}, started and loaded like it in the same rounds: every \
         difference between the two is noise. Their comparisons with enough rounds for a \
         verdict, by figure (all {} are in results.json's `comparisons`):\n",
        twins.len()
    );
    let _ = writeln!(md, "| figure | points | {control} / {model}, widest interval | verdicts |");
    let _ = writeln!(md, "|---|---|--:|---|");
    let decided: Vec<&&Comparison> = twins.iter().filter(|c| c.confidence >= CONFIDENCE).collect();
    let mut figures: Vec<&str> = decided.iter().map(|c| c.figure.as_str()).collect();
    figures.sort_unstable();
    figures.dedup();
    for f in &figures {
        let of: Vec<&&&Comparison> = decided.iter().filter(|c| c.figure == *f).collect();
        // The points as a count and their scenarios: the list is in results.json.
        let mut scenarios: Vec<&str> = of.iter().map(|c| c.scenario.as_str()).collect();
        scenarios.dedup();
        let points = match of.as_slice() {
            [one] => vec![format!("{} {}", one.scenario, one.point)],
            _ => vec![format!("{} points ({})", of.len(), scenarios.join(", "))],
        };
        let (low, high) = of.iter().fold((f64::INFINITY, 0.0f64), |(l, h), c| {
            let (_, lo, hi) = c.seen_from(control);
            (l.min(lo), h.max(hi))
        });
        let mut verdicts = Vec::new();
        for (v, word) in [
            (Verdict::Different, "**called different**"),
            (Verdict::Equivalent, "equivalent"),
            (Verdict::Undecided, "no measurable difference"),
        ] {
            let n = of.iter().filter(|c| c.verdict == v).count();
            if n > 0 {
                verdicts.push(format!("{n} {word}"));
            }
        }
        let _ = writeln!(
            md,
            "| {f} | {} | {low:.2}-{high:.2} | {} |",
            points.join(", "),
            verdicts.join(", ")
        );
    }
    let few: Vec<&&Comparison> = twins.iter().filter(|c| c.confidence < CONFIDENCE).collect();
    if !few.is_empty() {
        let mut scenarios: Vec<&str> = few.iter().map(|c| c.scenario.as_str()).collect();
        scenarios.dedup();
        let _ = write!(
            md,
            "\nThe other {} ran too few rounds for a verdict ({}). ",
            few.len(),
            scenarios.join(", ")
        );
    } else {
        md.push('\n');
    }
    let wrong: Vec<&&Comparison> =
        twins.iter().filter(|c| c.verdict == Verdict::Different).collect();
    if wrong.is_empty() {
        let _ = writeln!(
            md,
            "The run's comparisons never called the twins different: at the resolution of its \
             rounds they held identical servers equal, and the widest intervals above are how \
             far this run's noise alone stretched each figure.\n"
        );
    } else {
        let at: Vec<String> =
            wrong.iter().map(|c| format!("{} {} ({})", c.scenario, c.point, c.figure)).collect();
        let _ = writeln!(
            md,
            "**This run could not tell noise from real differences** at {}: it called two \
             identical servers different there, so no verdict of those points and figures can \
             be trusted.\n",
            at.join(", ")
        );
    }
}
