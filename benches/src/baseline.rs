//! What changed since an earlier run: `--baseline DIR` compares every point with the same point
//! of a stored run, the way criterion's "change: -4.1%, regressed" line does.
//!
//! Each scenario names its headline figure ([`Measure::headline`](crate::measure::Measure::headline)). A point's change is its
//! median against the baseline's median; whether the change is real is decided by the repeats'
//! spread: when the ranges (min to max) of the two runs overlap, or the medians differ by less
//! than the noise threshold, the change is "within noise". Points or models that only one side
//! has are listed, never guessed; a baseline from another machine or placement is said to be
//! so at the top, because then the comparison means little.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::measure::{self, Headline};
use crate::plan::Point;
use crate::present::Scenario;
use crate::results::{Metrics, PointResults, Results};
use crate::text::cpu_list;

/// Medians closer than this are within noise whatever the spread: a run-to-run difference of
/// that order is common on a shared machine.
pub const NOISE: f64 = 0.02;

/// A stored run to compare against.
#[derive(Debug, Clone)]
pub struct Baseline {
    /// Its folder.
    pub dir: PathBuf,
    /// Its results, upgraded to the current schema.
    pub results: Results,
}

impl Baseline {
    /// Reads the run folder `dir` (its results.json).
    pub fn load(dir: &Path, scenarios: &[&dyn Scenario]) -> Result<Baseline> {
        let path = dir.join("results.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("--baseline: cannot read {}", path.display()))?;
        let mut results: Results = serde_json::from_str(&text)
            .with_context(|| format!("--baseline: {} is not a results file", path.display()))?;
        results.upgrade(|profile| measure::all_points(scenarios, profile));
        Ok(Baseline { dir: dir.to_path_buf(), results })
    }
}

/// How one point's headline figure moved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change {
    /// (new median - old median) / old median.
    pub ratio: f64,
    /// Better, worse, or within noise.
    pub verdict: Verdict,
}

/// Whether a change is real, and which way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Beyond noise, in the good direction.
    Better,
    /// Beyond noise, in the bad direction: a regression.
    Worse,
    /// Within the repeats' spread or the noise threshold.
    Noise,
}

/// The headline figure of each repeat of `p` that has figures.
fn values(p: &PointResults, h: &Headline) -> Vec<f64> {
    p.repeats.iter().filter_map(|r| r.metrics.as_ref()).map(|m: &Metrics| (h.figure)(m)).collect()
}

/// The change of `new` against `old`, `None` when either has no figure.
pub fn change(new: &PointResults, old: &PointResults, h: &Headline) -> Option<Change> {
    let (a, b) = (values(old, h), values(new, h));
    let (ma, mb) = (crate::results::median(a.clone()), crate::results::median(b.clone()));
    if a.is_empty() || b.is_empty() || ma == 0.0 || !ma.is_finite() || !mb.is_finite() {
        return None;
    }
    let range = |v: &[f64]| v.iter().fold((f64::MAX, f64::MIN), |(l, h), &x| (l.min(x), h.max(x)));
    let ((alo, ahi), (blo, bhi)) = (range(&a), range(&b));
    let overlap = blo <= ahi && alo <= bhi;
    let ratio = (mb - ma) / ma;
    let verdict = if overlap || ratio.abs() < NOISE {
        Verdict::Noise
    } else if (ratio > 0.0) == h.higher_is_better {
        Verdict::Better
    } else {
        Verdict::Worse
    };
    Some(Change { ratio, verdict })
}

/// The baseline's results for the same model, scenario and load as `point`.
pub fn find<'a>(base: &'a Baseline, model: &str, point: &Point) -> Option<&'a PointResults> {
    let s = base.results.model(model)?.scenario(&point.scenario)?;
    s.points.iter().find(|p| p.point.same_load(point))
}

/// "+4.1% faster", "-0.8% within noise": a table cell.
pub fn cell(c: &Change, h: &Headline) -> String {
    let word = match c.verdict {
        Verdict::Better => h.better,
        Verdict::Worse => h.worse,
        Verdict::Noise => "within noise",
    };
    format!("{:+.1}% {word}", c.ratio * 100.0)
}

/// Every point that changed beyond noise: (model, scenario, point label, change, headline).
pub fn significant<'a>(
    results: &'a Results,
    scenarios: &[&'a dyn Scenario],
    base: &Baseline,
) -> Vec<(&'a str, &'a str, &'a str, Change, Headline)> {
    let mut out = Vec::new();
    for m in &results.models {
        for s in &m.scenarios {
            let Some(scenario) = measure::find(scenarios, &s.scenario) else { continue };
            let h = scenario.headline();
            for p in &s.points {
                let Some(old) = find(base, &m.name, &p.point) else { continue };
                if let Some(c) = change(p, old, &h)
                    && c.verdict != Verdict::Noise
                {
                    out.push((m.name.as_str(), s.scenario.as_str(), p.point.label.as_str(), c, h));
                }
            }
        }
    }
    out
}

/// The points that got worse by more than `pct` percent beyond noise, as sentences.
pub fn regressions(
    results: &Results,
    scenarios: &[&dyn Scenario],
    base: &Baseline,
    pct: f64,
) -> Vec<String> {
    significant(results, scenarios, base)
        .into_iter()
        .filter(|(.., c, _)| c.verdict == Verdict::Worse && c.ratio.abs() * 100.0 > pct)
        .map(|(m, s, p, c, h)| format!("{m} {s} {p}: {} {}", h.name, cell(&c, &h)))
        .collect()
}

/// The report's "Changes" section.
pub fn section(md: &mut String, results: &Results, scenarios: &[&dyn Scenario], base: &Baseline) {
    let b = &base.results;
    let _ = writeln!(md, "## Changes since the baseline\n");
    let _ = writeln!(
        md,
        "Against `{}` (measured {}, commit {}). A change is the median against the baseline's \
         median; it counts only when the two runs' repeats do not overlap and the medians differ \
         by {:.0}% or more, otherwise it is within noise.\n",
        base.dir.display(),
        b.started_at.get(..10).unwrap_or(&b.started_at),
        b.environment.git_commit.as_deref().unwrap_or("unknown"),
        NOISE * 100.0
    );
    let (e, f) = (&results.environment, &b.environment);
    let mut differs = Vec::new();
    if (&e.host, &e.cpu_model, e.cores) != (&f.host, &f.cpu_model, f.cores) {
        differs.push(format!(
            "another machine ({}, {} CPUs, against {}, {} CPUs here)",
            f.host, f.cores, e.host, e.cores
        ));
    }
    let (p, q) = (&results.placement, &b.placement);
    if (&p.server_cpus, &p.generator_cpus) != (&q.server_cpus, &q.generator_cpus) {
        differs.push(format!(
            "another placement (server {}, generator {}, against server {}, generator {} here)",
            cpu_list(&q.server_cpus),
            cpu_list(&q.generator_cpus),
            cpu_list(&p.server_cpus),
            cpu_list(&p.generator_cpus)
        ));
    }
    if !differs.is_empty() {
        let _ = writeln!(
            md,
            "> **The baseline ran on {}**: the comparison means little.\n",
            differs.join(" and ")
        );
    }
    let changes = significant(results, scenarios, base);
    if changes.is_empty() {
        let _ = writeln!(md, "No point changed beyond noise.\n");
    }
    for (m, s, p, c, h) in &changes {
        let _ = writeln!(md, "- {m} {s} {p}: {} {}", h.name, cell(c, h));
    }
    let missing = missing(results, base);
    if !missing.is_empty() {
        let _ = writeln!(md, "\nNot compared (only one side has them): {}.", missing.join("; "));
    }
    md.push('\n');
}

/// Models and points that only one of the two runs has.
fn missing(results: &Results, base: &Baseline) -> Vec<String> {
    let mut out = Vec::new();
    let b = &base.results;
    for m in &results.models {
        if b.model(&m.name).is_none() {
            out.push(format!("{} (new)", m.name));
            continue;
        }
        for s in &m.scenarios {
            for p in s.points.iter().filter(|p| find(base, &m.name, &p.point).is_none()) {
                out.push(format!("{} {} {} (new)", m.name, s.scenario, p.point.label));
            }
        }
    }
    for m in &b.models {
        let Some(now) = results.model(&m.name) else {
            out.push(format!("{} (baseline only)", m.name));
            continue;
        };
        for s in &m.scenarios {
            let here = now.scenario(&s.scenario);
            for p in &s.points {
                let found =
                    here.is_some_and(|h| h.points.iter().any(|x| x.point.same_load(&p.point)));
                if !found {
                    out.push(format!(
                        "{} {} {} (baseline only)",
                        m.name, s.scenario, p.point.label
                    ));
                }
            }
        }
    }
    out
}
