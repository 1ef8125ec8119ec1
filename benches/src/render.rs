//! Rendering a run folder from its results: results.csv, every scenario's charts and
//! report.md, all drawn from the [`Results`] that results.json holds.
//!
//! This is the entry to the rendering side. It runs once a run ends (completed or stopped by
//! Ctrl-C), by `echobench rerender DIR`, and when `cargo bench --bench roundtrip` attaches
//! criterion's figures ([`attach`]); never between repeats, so that the measuring side
//! depends on none of it. A chart that fails to draw costs that chart, not the report and
//! never a measurement: each failure becomes one line, which report.md lists and the caller
//! prints, and the exit status reflects.

use std::fmt::Write;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::baseline::Baseline;
use crate::charts::{CHART_DIR, Chart, Charts};
use crate::criterion::Bench;
use crate::measure;
use crate::output::{write_atomic, write_json};
use crate::present::{Scenario, View};
use crate::results::{Results, Summary};
use crate::{csv, metrics, report};

/// Writes results.csv, the charts, report.md and details.md of `results` into `dir` (results.json is the
/// measuring side's, and left alone). Returns the rendering errors, one line each: each is
/// listed at the end of report.md too. Fails only when a file cannot be written at all.
pub fn render(
    dir: &Path,
    results: &Results,
    scenarios: &[&dyn Scenario],
    baseline: Option<&Baseline>,
) -> Result<Vec<String>> {
    write_atomic(&dir.join("results.csv"), csv::render(results).as_bytes())?;
    let chart_dir = dir.join(CHART_DIR);
    fs::create_dir_all(&chart_dir)
        .with_context(|| format!("cannot create {}", chart_dir.display()))?;
    let (charts, errors) = charts(results, scenarios, &chart_dir);
    let mut markdown = report::render(results, scenarios, &charts, baseline);
    if !errors.is_empty() {
        let _ = writeln!(markdown, "\n## Rendering errors\n");
        for e in &errors {
            let _ = writeln!(markdown, "- {e}");
        }
    }
    write_atomic(&dir.join("report.md"), markdown.as_bytes())?;
    write_atomic(&dir.join("details.md"), report::details(results, scenarios).as_bytes())?;
    Ok(errors)
}

/// Draws every scenario's charts into `dir`: the charts drawn, in report order, and one line
/// for each scenario whose charts failed (the others are drawn all the same).
pub fn charts(
    results: &Results,
    scenarios: &[&dyn Scenario],
    dir: &Path,
) -> (Vec<Chart>, Vec<String>) {
    let mut charts = Charts::new(results, dir);
    let mut errors = Vec::new();
    for name in &results.plan.scenarios {
        if let Some(scenario) = measure::find(scenarios, name) {
            let view = View { results, scenario: name };
            if let Err(e) = scenario.charts(&view, &mut charts) {
                errors.push(format!("cannot draw {name}'s charts: {e:#}"));
            }
        }
    }
    // The chart that sums the run up, for the report's summary section.
    if let Err(e) = charts.summary(results) {
        errors.push(format!("cannot draw the summary chart: {e:#}"));
    }
    (charts.drawn(), errors)
}

/// Rewrites the run folder `dir` from its raw figures: each repeat's metrics again from its
/// loadgen report and /proc usage, the summaries, then results.json, and then renders it. A
/// better report (or a figure added since) can then be had from old measurements without
/// measuring again. Files of an older schema are upgraded on the way. Returns the results as
/// rewritten and the rendering errors.
pub fn rerender(
    dir: &Path,
    scenarios: &[&dyn Scenario],
    baseline: Option<&Baseline>,
) -> Result<(Results, Vec<String>)> {
    let mut results = read(dir)?;
    results.upgrade(|profile| measure::all_points(scenarios, profile));
    let runs = results.models.iter_mut().flat_map(|m| m.scenarios.iter_mut());
    for point in runs.flat_map(|s| s.points.iter_mut()) {
        for repeat in &mut point.repeats {
            if let Some(report) = &repeat.loadgen {
                repeat.metrics = Some(metrics::metrics(report, repeat.server.as_ref()));
            }
        }
        point.summary = Summary::of(&point.repeats);
        if point.target_rate.is_some() {
            point.merged = crate::results::merge(dir, &point.repeats);
        }
    }
    write_json(dir, &results)?;
    let errors = render(dir, &results, scenarios, baseline)?;
    Ok((results, errors))
}

/// Adds `benches` (criterion's figures) to the newest run folder under `root`, and to
/// `latest/` when that is a copy of it, and renders its report again. Returns the folder, or
/// `None` when there is no run.
pub fn attach(
    root: &Path,
    benches: Vec<Bench>,
    scenarios: &[&dyn Scenario],
) -> Result<Option<PathBuf>> {
    let newest = fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name() != "latest")
        .filter_map(|e| {
            let json = e.path().join("results.json");
            Some((fs::metadata(&json).ok()?.modified().ok()?, e.path()))
        })
        .max_by_key(|(time, _)| *time);
    let Some((_, dir)) = newest else { return Ok(None) };
    let mut targets = vec![dir.clone()];
    let started = |d: &Path| read(d).ok().map(|r| r.started_at);
    let latest = root.join("latest");
    if started(&latest).is_some() && started(&latest) == started(&dir) {
        targets.push(latest);
    }
    for target in targets {
        let mut results = read(&target)?;
        results.criterion = benches.clone();
        write_json(&target, &results)?;
        for e in render(&target, &results, scenarios, None)? {
            eprintln!("echobench: {e}");
        }
    }
    Ok(Some(dir))
}

/// The results in `dir/results.json`.
fn read(dir: &Path) -> Result<Results> {
    let path = dir.join("results.json");
    let text =
        fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a comparison results file", path.display()))
}
