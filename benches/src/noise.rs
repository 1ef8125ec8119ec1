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
         difference between the two is noise.\n"
    );
    let _ = writeln!(md, "| scenario | point | figure | {control} / {model} | verdict |");
    let _ = writeln!(md, "|---|---|---|--:|---|");
    for c in &twins {
        let (ratio, low, high) = c.seen_from(control);
        let verdict = match c.verdict {
            Verdict::Different => "**called different**",
            Verdict::Equivalent => "equivalent",
            Verdict::Undecided if c.confidence < compare::CONFIDENCE => "too few rounds",
            Verdict::Undecided => "no measurable difference",
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {ratio:.2} ({low:.2}-{high:.2}) | {verdict} |",
            c.scenario, c.point, c.figure
        );
    }
    let wrong: Vec<&&Comparison> =
        twins.iter().filter(|c| c.verdict == Verdict::Different).collect();
    // How far apart the twins' intervals reached on each figure: the noise a reader should
    // set every other interval of that figure against.
    let mut figures: Vec<&str> = twins.iter().map(|c| c.figure.as_str()).collect();
    figures.sort_unstable();
    figures.dedup();
    let reach: Vec<String> = figures
        .iter()
        .filter_map(|f| {
            let of = twins.iter().filter(|c| c.figure == *f && c.confidence >= CONFIDENCE);
            let widest = of.map(|c| c.high.max(1.0 / c.low)).fold(f64::NAN, f64::max);
            widest.is_finite().then(|| format!("{f} {widest:.2}x"))
        })
        .collect();
    md.push('\n');
    if wrong.is_empty() {
        let _ = writeln!(
            md,
            "The run's comparisons never called the twins different: at the resolution of its \
             rounds they held identical servers equal."
        );
        if !reach.is_empty() {
            let _ = writeln!(
                md,
                "The twins' intervals reached as far apart as {} (the larger of high and 1/low, \
                 at the points with enough rounds): how far this run's noise alone stretched \
                 each figure.",
                reach.join(", ")
            );
        }
        md.push('\n');
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
