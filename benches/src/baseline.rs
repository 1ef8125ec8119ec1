//! What changed since an earlier run: `--baseline DIR` compares every server at every point
//! with the same server and point of a stored run, through figures that cancel the machine's
//! speed.
//!
//! Absolute figures of two runs cannot be compared: a shared machine is faster one day than the
//! next by more than most changes of code. (Issue 18: a fresh clone, given the committed
//! reference run as its baseline with nearly the same code, found 142 of 224 points "faster" by
//! 25-130%.) So each run is read through a **reference server** measured in the same rounds:
//! each server's figure over the reference's, round by round, summarised as the median ratio
//! with its distribution-free interval ([`crate::compare::interval`]).
//!
//! - **A change is called** only where the two runs' intervals of that ratio are apart by more
//!   than [`MARGIN`]: the new one wholly above the old one's top times `1 + m`, or wholly below
//!   its bottom over `1 + m`; and only where both intervals reach [`CONFIDENCE`], which takes
//!   [`ROUNDS_FOR_VERDICT`] rounds in each run. Two 99% intervals that far apart mean, with at
//!   least 98% confidence, that the server moved relative to the reference by more than the
//!   margin. Which way is better follows the scenario's headline figure.
//! - **The reference** ([`reference`]): the server `--reference` names, when given; else the
//!   run's control (`--control`, a second instance of a model), when the baseline has it too;
//!   else the control's model, when the baseline predates the control. A run without a control
//!   needs `--reference`: a reference chosen silently could be the very server that changed,
//!   and then every other server would seem to have moved.
//! - **A baseline without rounds** (schema version 2 or older: its servers were measured one
//!   after another) cannot be compared this way, and no ratio in it cancels anything. The
//!   report says so in one line, and `--fail-on-regression` fails saying so.
//! - **The absolute change** (the server's median over its median in the baseline) is shown
//!   beside each verdict as `abs`. It moves with the machine and decides nothing.

mod section;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::compare::{CONFIDENCE, Interval, MARGIN, ROUNDS_FOR_VERDICT};
use crate::measure::{self, Headline};
use crate::plan::Point;
use crate::present::Scenario;
use crate::results::{PointResults, Results, measured, median};

pub use section::{cell, section};

/// A stored run to compare against.
#[derive(Debug, Clone)]
pub struct Baseline {
    /// Its folder.
    pub dir: PathBuf,
    /// Its results, upgraded to the current schema.
    pub results: Results,
    /// The server both runs are read through, when the user named one (`--reference`).
    pub reference: Option<String>,
}

impl Baseline {
    /// Reads the run folder `dir` (its results.json). `reference` (`--reference`) must name a
    /// server of that run: better to say so now than after the new run's minutes.
    pub fn load(
        dir: &Path,
        scenarios: &[&dyn Scenario],
        reference: Option<&str>,
    ) -> Result<Baseline> {
        let path = dir.join("results.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("--baseline: cannot read {}", path.display()))?;
        let mut results: Results = serde_json::from_str(&text)
            .with_context(|| format!("--baseline: {} is not a results file", path.display()))?;
        results.upgrade(|profile| measure::all_points(scenarios, profile));
        if let Some(name) = reference
            && results.model(name).is_none()
        {
            let names: Vec<&str> = results.models.iter().map(|m| m.name.as_str()).collect();
            bail!(
                "--reference {name}: the baseline {} has no server of that name (it has {})",
                dir.display(),
                names.join(", ")
            );
        }
        Ok(Baseline { dir: dir.to_path_buf(), results, reference: reference.map(String::from) })
    }
}

/// The server whose figures, measured in the same rounds, cancel the machine's speed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Its name, the same in both runs.
    pub name: String,
    /// How it was chosen, as the report says it ("the control").
    pub chosen: &'static str,
}

/// How one server at one point moved relative to the reference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change {
    /// The server's figure over the reference's in the baseline: median ratio and interval.
    pub old: Interval,
    /// The same in this run.
    pub new: Interval,
    /// `new.ratio / old.ratio - 1`: how far the server moved relative to the reference.
    pub relative: f64,
    /// The server's own median over its median in the baseline, minus 1. It moves with the
    /// machine and decides nothing.
    pub absolute: Option<f64>,
    /// Better, worse, within noise, or too few rounds to say.
    pub verdict: Verdict,
}

/// Whether a change is real, and which way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The intervals are apart by more than the margin, the good way.
    Better,
    /// The intervals are apart by more than the margin, the bad way: a regression.
    Worse,
    /// The intervals are not that far apart: no change at the runs' resolution.
    Noise,
    /// A run had fewer rounds than a verdict needs ([`ROUNDS_FOR_VERDICT`]).
    FewRounds,
}

/// One server at one point of the new run, compared with the baseline.
#[derive(Debug, Clone)]
pub struct Row<'a> {
    /// The server.
    pub model: &'a str,
    /// The scenario.
    pub scenario: &'a str,
    /// The point's label.
    pub point: &'a str,
    /// The figure compared.
    pub headline: Headline,
    /// How it moved.
    pub change: Change,
}

/// Every comparison of a run with its baseline.
#[derive(Debug, Clone)]
pub struct Changes<'a> {
    /// The server both runs are read through.
    pub reference: Reference,
    /// Each server (but the reference) at each point both runs measured it with the reference.
    pub rows: Vec<Row<'a>>,
    /// Points both runs have where one run has no round pairing the server with the reference
    /// (the reference did not run the point, say): "model scenario point".
    pub unpaired: Vec<String>,
}

/// The verdict on a server whose ratio to the reference was `old` and is `new`.
pub fn verdict(old: &Interval, new: &Interval, higher_is_better: bool) -> Verdict {
    if old.confidence < CONFIDENCE || new.confidence < CONFIDENCE {
        return Verdict::FewRounds;
    }
    let up = new.low > old.high * (1.0 + MARGIN);
    let down = new.high < old.low / (1.0 + MARGIN);
    match (up, down) {
        (false, false) => Verdict::Noise,
        _ if up == higher_is_better => Verdict::Better,
        _ => Verdict::Worse,
    }
}

/// The reference of `results` against `base`, or the one line saying why the two runs cannot
/// be compared.
pub fn reference(results: &Results, base: &Baseline) -> Result<Reference, String> {
    let rounds = |r: &Results| {
        let points = r.models.iter().flat_map(|m| &m.scenarios).flat_map(|s| &s.points);
        points.flat_map(|p| &p.repeats).any(|r| r.round > 0)
    };
    if !rounds(&base.results) {
        return Err("the baseline has no rounds (it predates schema version 3, which measures \
                    every server of a point in the same rounds), so no ratio to a reference \
                    server can be formed in it"
            .into());
    }
    if !rounds(results) {
        return Err("this run has no rounds, so no ratio to a reference server can be formed \
                    in it"
            .into());
    }
    let both = |name: &str| results.model(name).is_some() && base.results.model(name).is_some();
    let found = |name: &str, chosen| Ok(Reference { name: name.to_string(), chosen });
    if let Some(name) = &base.reference {
        return match both(name) {
            true => found(name, "named by --reference"),
            false => Err(format!("--reference {name}: this run has no server of that name")),
        };
    }
    match results.models.iter().find(|m| m.control_of.is_some()) {
        Some(c) if both(&c.name) => found(&c.name, "the control"),
        Some(c) if c.control_of.as_deref().is_some_and(both) => {
            let model = c.control_of.as_deref().unwrap_or_default();
            found(model, "the control's model: the baseline has no control")
        }
        Some(c) => Err(format!(
            "the baseline has neither the control {} nor its model: name a server both runs \
             have with --reference",
            c.name
        )),
        None => Err("this run has no control (--control): name a server both runs have with \
                     --reference"
            .into()),
    }
}

/// `model`'s figure over `reference`'s at `point` in `run`, from the rounds that measured both.
fn relative(
    run: &Results,
    model: &str,
    reference: &str,
    point: &Point,
    h: &Headline,
) -> Option<Interval> {
    let by_round = |name: &str| -> Option<Vec<(u32, f64)>> {
        let p = at(run, name, point)?;
        let rounds = measured(&p.repeats).filter(|r| r.round > 0);
        Some(rounds.filter_map(|r| Some((r.round, (h.figure)(r.metrics.as_ref()?)))).collect())
    };
    let (s, r) = (by_round(model)?, by_round(reference)?);
    let ratios: Vec<f64> = s
        .iter()
        .filter_map(|&(round, v)| {
            let &(_, w) = r.iter().find(|(x, _)| *x == round)?;
            (w > 0.0).then_some(v / w)
        })
        .collect();
    crate::compare::interval(&ratios)
}

/// `run`'s results of `model` at the point with `point`'s load in `point`'s scenario.
fn at<'a>(run: &'a Results, model: &str, point: &Point) -> Option<&'a PointResults> {
    let s = run.model(model)?.scenario(&point.scenario)?;
    s.points.iter().find(|p| p.point.same_load(point))
}

/// The baseline's results for the same model, scenario and load as `point`.
pub fn find<'a>(base: &'a Baseline, model: &str, point: &Point) -> Option<&'a PointResults> {
    at(&base.results, model, point)
}

/// `new`'s median headline figure over `old`'s, minus 1: the absolute change, which moves with
/// the machine.
pub fn absolute(new: &PointResults, old: &PointResults, h: &Headline) -> Option<f64> {
    let of = |p: &PointResults| {
        let v: Vec<f64> = measured(&p.repeats)
            .filter_map(|r| Some((h.figure)(r.metrics.as_ref()?)))
            .filter(|v| v.is_finite())
            .collect();
        (!v.is_empty()).then(|| median(v))
    };
    let (a, b) = (of(old)?, of(new)?);
    (a > 0.0).then(|| b / a - 1.0)
}

/// `model`'s change at `point` relative to `reference`; `None` where a run has no round that
/// measured both.
pub fn change(
    results: &Results,
    base: &Baseline,
    reference: &str,
    model: &str,
    point: &Point,
    h: &Headline,
) -> Option<Change> {
    let new = relative(results, model, reference, point, h)?;
    let old = relative(&base.results, model, reference, point, h)?;
    let absolute = absolute(at(results, model, point)?, find(base, model, point)?, h);
    let verdict = verdict(&old, &new, h.higher_is_better);
    Some(Change { old, new, relative: new.ratio / old.ratio - 1.0, absolute, verdict })
}

/// Every server's change at every point both runs have, or why the runs cannot be compared.
pub fn changes<'a>(
    results: &'a Results,
    scenarios: &[&dyn Scenario],
    base: &Baseline,
) -> Result<Changes<'a>, String> {
    let reference = reference(results, base)?;
    let (mut rows, mut unpaired) = (Vec::new(), Vec::new());
    for m in results.models.iter().filter(|m| m.name != reference.name) {
        for s in &m.scenarios {
            let Some(scenario) = measure::find(scenarios, &s.scenario) else { continue };
            let headline = scenario.headline();
            for p in s.points.iter().filter(|p| find(base, &m.name, &p.point).is_some()) {
                let (model, point) = (m.name.as_str(), p.point.label.as_str());
                match change(results, base, &reference.name, model, &p.point, &headline) {
                    Some(change) => {
                        rows.push(Row { model, scenario: &s.scenario, point, headline, change })
                    }
                    None => unpaired.push(format!("{model} {} {point}", s.scenario)),
                }
            }
        }
    }
    Ok(Changes { reference, rows, unpaired })
}

/// "-25.0% slower": how far the median ratio to the reference moved, and the verdict.
pub fn describe(c: &Change, h: &Headline) -> String {
    let word = match c.verdict {
        Verdict::Better => h.better,
        Verdict::Worse => h.worse,
        Verdict::Noise => "within noise",
        Verdict::FewRounds => "too few rounds",
    };
    format!("{:+.1}% {word}", c.relative * 100.0)
}

/// The changes called worse whose median ratio to the reference moved by more than `pct`
/// percent, as sentences; or why the runs cannot be compared (no rounds, no reference, or no
/// comparison with the rounds a verdict needs): `--fail-on-regression`.
pub fn regressions(
    results: &Results,
    scenarios: &[&dyn Scenario],
    base: &Baseline,
    pct: f64,
) -> Result<Vec<String>, String> {
    let c = changes(results, scenarios, base)?;
    let reference = &c.reference.name;
    if c.rows.iter().all(|r| r.change.verdict == Verdict::FewRounds) {
        return Err(format!(
            "no server and point was measured with {reference} in at least {ROUNDS_FOR_VERDICT} \
             rounds of both runs, as a verdict needs"
        ));
    }
    let worse = c
        .rows
        .iter()
        .filter(|r| r.change.verdict == Verdict::Worse && r.change.relative.abs() * 100.0 > pct);
    Ok(worse
        .map(|r| {
            let (h, change) = (&r.headline, &r.change);
            let what = describe(change, h);
            format!(
                "{} {} {}: {} {what} relative to {reference}",
                r.model, r.scenario, r.point, h.name
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 99% interval (ten rounds) around `ratio`, from `low` to `high`.
    fn interval(ratio: f64, low: f64, high: f64) -> Interval {
        Interval {
            ratio,
            low,
            high,
            confidence: crate::compare::order_confidence(10, 1),
            rounds: 10,
        }
    }

    #[test]
    fn a_change_needs_the_intervals_apart_by_more_than_the_margin() {
        let old = interval(1.0, 0.98, 1.02);
        // Wholly above the old top, but by less than the margin: 1.02 * 1.03 = 1.0506.
        assert_eq!(verdict(&old, &interval(1.06, 1.05, 1.07), true), Verdict::Noise);
        assert_eq!(verdict(&old, &interval(1.07, 1.06, 1.08), true), Verdict::Better);
        // Lower is better (p99): the same move is worse.
        assert_eq!(verdict(&old, &interval(1.07, 1.06, 1.08), false), Verdict::Worse);
        // Below: 0.98 / 1.03 = 0.9515.
        assert_eq!(verdict(&old, &interval(0.94, 0.93, 0.952), true), Verdict::Noise);
        assert_eq!(verdict(&old, &interval(0.94, 0.93, 0.95), true), Verdict::Worse);
        assert_eq!(verdict(&old, &interval(0.94, 0.93, 0.95), false), Verdict::Better);
    }

    #[test]
    fn intervals_below_the_confidence_give_no_verdict_however_far_apart() {
        let old = interval(1.0, 0.98, 1.02);
        let few = Interval { confidence: 0.9375, rounds: 5, ..interval(2.0, 1.9, 2.1) };
        assert_eq!(verdict(&old, &few, true), Verdict::FewRounds);
        assert_eq!(verdict(&few, &old, true), Verdict::FewRounds);
    }
}
