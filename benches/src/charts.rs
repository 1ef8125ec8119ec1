//! The report's SVG charts, drawn with plotters' SVG backend (text stays SVG `<text>`, so no
//! font library is needed).
//!
//! What every chart kind does alike, so that no scenario has to ask for it:
//! - one colour per model throughout, and each model named as the report's tables name it,
//!   with its worker count where it has workers;
//! - a log axis wherever the values span more than two decades ([`axis`]), said in the
//!   axis's name;
//! - the legend in a column right of the plot, never over the data ([`legend`]);
//! - each of a few points labelled on the x axis, by the point's own name;
//! - a point where the generator was saturated drawn hollow, with a legend entry saying so:
//!   there the figure is the pair's limit, not the server's.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use plotters::prelude::*;

mod axis;
mod kinds;
mod legend;
mod lines;
mod nines;
mod summary;
use crate::registry;
use crate::results::{ModelResults, Results, ScenarioResults};
pub use kinds::Bars;
pub use summary::SUMMARY;

/// Subfolder of the SVG charts.
pub const CHART_DIR: &str = "charts";

/// A chart the report embeds.
#[derive(Debug, Clone)]
pub struct Chart {
    /// The name of the scenario whose section shows it.
    pub scenario: String,
    /// Path relative to the run folder.
    pub file: String,
    /// What it shows (the image's alt text).
    pub title: String,
}

/// One model's line: its name and its points.
pub type Series = (String, Vec<Dot>);

/// One point of a line or one bar: the median over the repeats, and their range, which every
/// chart draws as an error bar so that a reader sees how far the repeats agreed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dot {
    /// Where along the x axis.
    pub x: f64,
    /// The median.
    pub y: f64,
    /// The smallest repeat.
    pub lo: f64,
    /// The largest repeat.
    pub hi: f64,
}

impl Dot {
    /// A dot at the median of `values` with their range; `None` if there are none (or they
    /// are not numbers).
    pub fn of(x: f64, values: Vec<f64>) -> Option<Dot> {
        let values: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
        let lo = values.iter().copied().reduce(f64::min)?;
        let hi = values.iter().copied().reduce(f64::max)?;
        Some(Dot { x, y: crate::results::median(values), lo, hi })
    }
}

/// Twelve colours that stay apart on white and for the common colour blindnesses (Tableau's
/// ten, then a dark blue and a dark green, none of them the axes' black). The suite's models take them in registry order, so a model has
/// the same colour in every chart and every run; models the registry does not know take the
/// colours after those.
pub const PALETTE: [RGBColor; 12] = [
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(57, 59, 121),
    RGBColor(0, 77, 64),
];

/// What the charts know of one model's run of one scenario, for naming and marking its series.
#[derive(Debug)]
struct Run {
    scenario: String,
    model: String,
    /// The model as the tables name it ("tokio (1 worker)").
    label: String,
    /// The x of each point where the generator was saturated.
    saturated: Vec<f64>,
}

/// The charts of one run, drawn into one folder; each scenario adds its own.
#[derive(Debug)]
pub struct Charts {
    dir: PathBuf,
    /// The run's models in order, for colours of models the registry does not know.
    models: Vec<String>,
    runs: Vec<Run>,
    /// Each planned point's scenario, x and name, to label the x axis by.
    points: Vec<(String, f64, String)>,
    drawn: Vec<Chart>,
}

impl Charts {
    /// An empty set of charts of `results`, to be drawn into `dir` (each scenario draws its
    /// own: see [`crate::render`]).
    pub fn new(results: &Results, dir: &Path) -> Charts {
        let models = results.models.iter().map(|m| m.name.clone()).collect();
        let runs = results
            .models
            .iter()
            .flat_map(|m| m.scenarios.iter().map(move |s| (m, s)))
            .map(|(m, s)| Run {
                scenario: s.scenario.clone(),
                model: m.name.clone(),
                label: series_label(m, s),
                // The same flag as the tables' "generator saturated" note.
                saturated: s
                    .points
                    .iter()
                    .filter(|p| p.summary.as_ref().is_some_and(|s| s.saturated))
                    .map(|p| p.point.x)
                    .collect(),
            })
            .collect();
        let points = results
            .plan
            .points
            .iter()
            .map(|p| (p.scenario.clone(), p.x, p.label.clone()))
            .collect();
        Charts { dir: dir.to_path_buf(), models, runs, points, drawn: Vec::new() }
    }

    /// The charts drawn, in the order they were drawn (the report's).
    pub fn drawn(self) -> Vec<Chart> {
        self.drawn
    }

    fn add(&mut self, scenario: &str, file: &str, title: &str, drawn: Result<bool>) -> Result<()> {
        if drawn.with_context(|| format!("cannot draw {file}"))? {
            let file = format!("{CHART_DIR}/{file}");
            self.drawn.push(Chart { scenario: scenario.to_string(), file, title: title.into() });
        }
        Ok(())
    }

    /// The colour of a model: its registry place, else a place after the registry's.
    pub fn colour(&self, model: &str) -> RGBColor {
        let known = registry::MODELS.iter().position(|m| m.name == model);
        let k = known.unwrap_or_else(|| {
            let unknown = self.models.iter().filter(|m| registry::find(m).is_none());
            registry::MODELS.len() + unknown.take_while(|m| *m != model).count()
        });
        PALETTE[k % PALETTE.len()]
    }

    /// The legend's name of the series `series` in `scenario`: the model with its workers, or
    /// the series' own name when it is no model of the run.
    fn label(&self, scenario: &str, series: &str) -> String {
        let run = self.runs.iter().find(|r| r.scenario == scenario && r.model == series);
        run.map_or_else(|| series.to_string(), |r| r.label.clone())
    }

    /// Whether the generator was saturated at the point at `x` of `series` in `scenario`.
    fn saturated(&self, scenario: &str, series: &str, x: f64) -> bool {
        let run = self.runs.iter().find(|r| r.scenario == scenario && r.model == series);
        run.is_some_and(|r| r.saturated.contains(&x))
    }

    /// The name of `scenario`'s point at `x` ("10 conns", "64 KiB"), else `x` in short form.
    fn point_name(&self, scenario: &str, x: f64) -> String {
        let named =
            self.points.iter().find(|(s, px, l)| s == scenario && *px == x && !l.is_empty());
        named.map_or_else(|| compact(x), |(_, _, l)| l.clone())
    }

    /// A line per model over a log x axis; the y axis is log when the values span more than
    /// two decades, else linear from zero.
    pub fn lines(
        &mut self,
        scenario: &str,
        file: &str,
        title: &str,
        x: &str,
        y: &str,
        s: &[Series],
    ) -> Result<()> {
        let drawn = lines::lines(self, (scenario, file, title), x, y, s, false);
        self.add(scenario, file, title, drawn)
    }

    /// A line per model over log x and log y axes, whatever the values' span (latencies).
    pub fn log_lines(
        &mut self,
        scenario: &str,
        file: &str,
        title: &str,
        x: &str,
        y: &str,
        s: &[Series],
    ) -> Result<()> {
        let drawn = lines::lines(self, (scenario, file, title), x, y, s, true);
        self.add(scenario, file, title, drawn)
    }

    /// Grouped bars: one group per x value, one bar per model, each with its value above it;
    /// a log y axis when the values span more than two decades.
    pub fn bars(
        &mut self,
        scenario: &str,
        file: &str,
        title: &str,
        x: &str,
        y: &str,
        s: &[Series],
    ) -> Result<()> {
        let drawn = kinds::bars(self, (scenario, file, title), x, y, s);
        self.add(scenario, file, title, drawn)
    }
}

/// A model's name in a scenario's charts: as the report's tables name it, with the workers it
/// ran with there. Where the scenario's points ran different worker counts (cores gives the
/// server more CPUs, and a pool a worker for each), it says so rather than name one count.
fn series_label(m: &ModelResults, s: &ScenarioResults) -> String {
    let setups: Vec<(u32, usize)> = s
        .points
        .iter()
        .filter_map(|p| p.server.as_ref())
        .filter_map(|setup| Some((setup.workers?, setup.cpus.len())))
        .collect();
    let mut counts: Vec<u32> = setups.iter().map(|(w, _)| *w).collect();
    counts.sort_unstable();
    counts.dedup();
    match counts.as_slice() {
        [] => m.label(s.server.workers),
        [one] => m.label(Some(*one)),
        _ if setups.iter().all(|&(w, cpus)| w as usize == cpus) => {
            format!("{} (one worker per CPU)", m.name)
        }
        many => format!("{} ({} workers)", m.name, join_counts(many)),
    }
}

fn join_counts(counts: &[u32]) -> String {
    counts.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
}

fn bounds(series: &[Series]) -> Option<(f64, f64, f64, f64)> {
    let pts = series.iter().flat_map(|(_, p)| p.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for d in pts {
        (x0, x1, y0, y1) = (x0.min(d.x), x1.max(d.x), y0.min(d.lo), y1.max(d.hi));
    }
    (x0 <= x1).then_some((x0, x1, y0, y1))
}

/// Axis numbers in a short form: 1000 as 1k, 2500000 as 2.5M.
fn compact(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if a >= 1e3 {
        format!("{}k", trim(v / 1e3))
    } else {
        trim(v)
    }
}

fn trim(v: f64) -> String {
    let s = if v.abs() >= 10.0 || v == v.round() { format!("{v:.0}") } else { format!("{v:.2}") };
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::point::Point;
    use crate::results::{PointResults, ServerRecord, Setup};

    fn model(name: &str, runs: Vec<ScenarioResults>) -> ModelResults {
        ModelResults {
            name: name.into(),
            binary: String::new(),
            external: None,
            control_of: None,
            scenarios: runs,
        }
    }

    /// A scenario whose points ran with `setups`: (workers, server CPUs).
    fn run(workers: Option<u32>, setups: &[(Option<u32>, usize)]) -> ScenarioResults {
        let points = setups
            .iter()
            .map(|&(w, cpus)| PointResults {
                point: Point::closed("cores", 100, 64),
                target_rate: None,
                repeats: Vec::new(),
                summary: None,
                server: Some(Setup { workers: w, cpus: (0..cpus).collect(), ..Setup::default() }),
                copied_from: None,
                offered: None,
                merged: None,
            })
            .collect();
        ScenarioResults {
            scenario: "cores".into(),
            server: ServerRecord { workers, ..ServerRecord::default() },
            capacity: None,
            skipped: None,
            points,
            notes: Vec::new(),
        }
    }

    #[test]
    fn a_model_is_named_with_its_workers_as_the_tables_name_it() {
        let s = run(Some(1), &[(Some(1), 1)]);
        let tokio = model("tokio", vec![s.clone()]);
        assert_eq!(series_label(&tokio, &s), "tokio (1 worker)");
        assert_eq!(series_label(&tokio, &s), tokio.label(Some(1)));
        // A model without workers keeps its name.
        let s = run(None, &[(None, 1)]);
        assert_eq!(series_label(&model("mio", vec![s.clone()]), &s), "mio");
        // Four workers at every point.
        let s = run(Some(4), &[(Some(4), 2), (Some(4), 2)]);
        assert_eq!(series_label(&model("hybrid", vec![s.clone()]), &s), "hybrid (4 workers)");
    }

    #[test]
    fn workers_that_vary_over_the_points_are_not_named_as_one_count() {
        // Cores: a worker per server CPU, 1 then 2; the scenario's own record says 1.
        let s = run(Some(1), &[(Some(1), 1), (Some(2), 2)]);
        let hybrid = model("hybrid", vec![s.clone()]);
        assert_eq!(series_label(&hybrid, &s), "hybrid (one worker per CPU)");
        let s = run(Some(1), &[(Some(1), 2), (Some(3), 2)]);
        assert_eq!(series_label(&hybrid, &s), "hybrid (1, 3 workers)");
    }

    #[test]
    fn points_are_named_by_their_labels_and_saturation_is_the_tables_flag() {
        let dir = std::env::temp_dir();
        let charts = Charts {
            dir,
            models: vec!["mio".into()],
            runs: vec![Run {
                scenario: "scale".into(),
                model: "mio".into(),
                label: "mio".into(),
                saturated: vec![10.0],
            }],
            points: vec![("scale".into(), 10.0, "10 conns".into())],
            drawn: Vec::new(),
        };
        assert_eq!(charts.point_name("scale", 10.0), "10 conns");
        assert_eq!(charts.point_name("scale", 1000.0), "1k");
        assert!(charts.saturated("scale", "mio", 10.0));
        assert!(!charts.saturated("scale", "mio", 1.0));
        assert!(!charts.saturated("size", "mio", 10.0));
        assert_eq!(charts.label("scale", "median round trip"), "median round trip");
    }
}
