//! The presenting half of a scenario ([`Present`]: its question, table, findings and
//! charts), the whole [`Scenario`] that has both halves, and the [`View`] of a run's results
//! that findings and charts read.
//!
//! This module is on the rendering side: it reads the results (and the scenario's headline,
//! from its measuring half) and never runs anything. Nothing on the measuring side refers to
//! it, so a scenario's prose or a chart can change without touching how a figure is measured.

use anyhow::Result;

use crate::charts::{Charts, Dot, Series};
use crate::measure::Measure;
use crate::plan::Point;
use crate::results::{
    Metrics, ModelResults, PointResults, Results, ScenarioResults, Summary, measured,
};

/// How the report presents one scenario's results.
pub trait Present {
    /// The question, as the report's section heading states it.
    fn question(&self) -> &'static str;

    /// One or two sentences under the heading: how the load is made.
    fn setup(&self) -> String;

    /// Which models the scenario runs and why, for the report, when that is not simply
    /// every model.
    fn models_note(&self) -> Option<&'static str> {
        None
    }

    /// The columns of the scenario's table, after "point" and "model".
    fn columns(&self) -> Vec<Column>;

    /// The findings, computed from the numbers, the most important first (the report's
    /// headline for this scenario).
    fn findings(&self, view: &View<'_>) -> Vec<String>;

    /// The scenario's answer in one sentence, for the report's summary, when the default
    /// does not fit it: the default is built from the run's paired comparisons at the
    /// scenario's deciding point (the leader with its ratio to the next, or the models the run
    /// could not tell apart), else from the gist of its first finding.
    fn answer(&self, _view: &View<'_>) -> Option<String> {
        None
    }

    /// The point and figure the summary's verdict reads, when they are not the deciding point
    /// and the headline figure (latency answers on CPU per message at the highest rate every
    /// model sustained). `None` by default.
    fn summary_at<'a>(&self, _view: &View<'a>) -> Option<(&'a Point, crate::compare::Figure)> {
        None
    }

    /// What keeps this machine or configuration from showing what the scenario asks (cores
    /// with no CPU of the server's own to add, say): added to a "not measurable" verdict's
    /// reason in the summary. `None` by default.
    fn limit(&self, _view: &View<'_>) -> Option<String> {
        None
    }

    /// The headers of the columns the report's table keeps (the rest are in results.csv and
    /// results.json). Empty, the default, keeps the first column and server CPU per message
    /// (or per connection) when the scenario has one.
    fn key_columns(&self) -> Vec<&'static str> {
        Vec::new()
    }

    /// The figures the report's Pairs section compares each model and its neighbour on in this
    /// scenario, with their names in a sentence. Empty, the default, means the scenario's
    /// headline figure and server CPU per message.
    fn pair_figures(&self) -> Vec<(&'static str, crate::compare::Figure)> {
        Vec::new()
    }

    /// Draws the scenario's charts (none by default). An error here costs the report that
    /// chart, never a measurement: the report is drawn after the figures are saved.
    fn charts(&self, _view: &View<'_>, _charts: &mut Charts) -> Result<()> {
        Ok(())
    }
}

/// One question the report answers, and how the harness measures it: both halves. Every type
/// that implements [`Measure`] and [`Present`] is one; the rendering side takes whole
/// scenarios, and the measuring side is handed only `&dyn Measure` (a `&dyn Scenario`
/// upcasts to it).
pub trait Scenario: Measure + Present {}

impl<T: Measure + Present> Scenario for T {}

/// One table column: its header and how to print one point's cell.
pub type Column = (&'static str, fn(&Cell<'_>) -> String);

/// What a table cell is printed from.
#[derive(Debug, Clone, Copy)]
pub struct Cell<'a> {
    /// The model's whole results.
    pub model: &'a ModelResults,
    /// The scenario's results of that model (the server's baseline, say).
    pub scenario: &'a ScenarioResults,
    /// The point.
    pub point: &'a PointResults,
    /// The point's summary over its repeats.
    pub summary: &'a Summary,
}

/// One scenario's part of a run's results, as findings and charts read it.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    /// The whole run.
    pub results: &'a Results,
    /// The scenario's name.
    pub scenario: &'a str,
}

impl<'a> View<'a> {
    /// The scenario's planned points, in order.
    pub fn points(&self) -> impl Iterator<Item = &'a Point> + 'a {
        self.results.plan.points_of(self.scenario)
    }

    /// Each model that ran the scenario, with its results.
    pub fn runs(&self) -> impl Iterator<Item = (&'a ModelResults, &'a ScenarioResults)> + 'a {
        let name = self.scenario;
        self.results.models.iter().filter_map(move |m| Some((m, m.scenario(name)?)))
    }

    /// Each model's summary at `point`, for the models that have one.
    pub fn at(&self, point: &Point) -> Vec<(&'a str, &'a Summary)> {
        self.runs().filter_map(|(m, s)| Some((m.name.as_str(), s.summary_of(point)?))).collect()
    }

    /// The point with the largest x that the most models have figures for, and each model's
    /// summary there: where a scenario's comparison is decided.
    pub fn deciding(&self) -> Option<(&'a Point, Vec<(&'a str, &'a Summary)>)> {
        let mut best: Option<(&Point, Vec<(&str, &Summary)>)> = None;
        for point in self.points() {
            let at = self.at(point);
            if !at.is_empty() && best.as_ref().is_none_or(|(_, b)| at.len() >= b.len()) {
                best = Some((point, at));
            }
        }
        best
    }

    /// Each model's line of `figure` over the scenario's points: the median of the repeats and
    /// their range at each point, skipping points without the figure.
    pub fn series(&self, figure: impl Fn(&Metrics) -> Option<f64>) -> Vec<Series> {
        self.series_of(|_, p| {
            let repeats = measured(&p.repeats);
            repeats.filter_map(|r| figure(r.metrics.as_ref()?)).collect()
        })
    }

    /// Each model's line of the values `of` gives for each point (one per repeat).
    pub fn series_of(
        &self,
        of: impl Fn(&ScenarioResults, &PointResults) -> Vec<f64>,
    ) -> Vec<Series> {
        self.runs()
            .filter_map(|(m, s)| {
                let dots: Vec<Dot> =
                    s.points.iter().filter_map(|p| Dot::of(p.point.x, of(s, p))).collect();
                (!dots.is_empty()).then(|| (m.name.clone(), dots))
            })
            .collect()
    }

    /// The CPUs of the machine that ran this, for prose that must not assume a number.
    pub fn cores(&self) -> usize {
        self.results.environment.cores
    }
}

/// The columns several scenarios share.
pub mod col {
    use super::Column;
    use crate::text::{sig, thousands};

    /// Echoes per second.
    pub const RATE: Column = ("msgs/s", |c| thousands(c.summary.median.msgs_per_sec));
    /// Half the range of the repeats' throughput, relative to the median: the report's one
    /// meaning of "±" ([`crate::text::plus_minus`]).
    pub const SPREAD: Column = ("spread", |c| {
        if c.summary.repeats > 1 { crate::text::plus_minus(c.summary.spread) } else { "-".into() }
    });
    /// Median latency.
    pub const P50: Column = ("p50 us", |c| sig(c.summary.median.latency_us.p50));
    /// 99th percentile latency.
    pub const P99: Column = ("p99 us", |c| sig(c.summary.median.latency_us.p99));
    /// Server CPU per message.
    pub const CPU: Column =
        ("server CPU us/msg", |c| c.summary.median.server_cpu_per_msg_us.map_or("-".into(), sig));
    /// Server CPU as a share of one core.
    pub const UTIL: Column =
        ("server CPU %", |c| format!("{:.0}", c.summary.median.server_cpu_utilization * 100.0));
    /// Peak threads of the server tree.
    pub const THREADS: Column = ("threads", |c| thousands(c.summary.median.server_peak_threads));
    /// Peak processes of the server tree.
    pub const PROCESSES: Column =
        ("processes", |c| thousands(c.summary.median.server_peak_processes));
    /// Peak PSS of the server tree.
    pub const PSS: Column = ("PSS MiB", |c| sig(c.summary.median.server_peak_pss_kib / 1024.0));
}
