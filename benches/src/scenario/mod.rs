//! The scenarios: one file each, each answering one question with its points, its table, its
//! findings and its charts.
//!
//! A scenario implements [`Scenario`], and [`ALL`] lists them in the order a run executes them.
//! The command line (`--scenarios` and each scenario's points flag), the plan, the runner and
//! the report all iterate that list, so adding a scenario is one file here and one entry in
//! [`ALL`]; nothing else changes. The trait's provided methods are the common case (a
//! closed-loop load with the point's own connections, size and idle ballast, against a server
//! started with its usual flags), so a scenario overrides only what it does differently.

mod backlog;
mod batch;
mod churn;
mod cores;
mod idle;
mod latency;
mod nagle;
mod pipeline;
mod scale;
mod size;
mod stall;
mod syscalls;
mod udp;

use std::fmt;

use anyhow::{Result, bail};

use crate::charts::{Charts, Dot};
use crate::plan::{Point, Profile};
use crate::registry::{Model, Transport};
use crate::results::{Metrics, ModelResults, PointResults, Results, ScenarioResults, Summary};

pub use cores::placements;
pub use idle::{IdleCost, idle_cost};

/// Every scenario, in the order a run executes them. A scenario whose rates refer to another's
/// figure (latency uses scale's capacity) comes after it.
pub static ALL: &[&dyn Scenario] = &[
    &scale::Scale,
    &size::Size,
    &churn::Churn,
    &idle::Idle,
    &latency::Latency,
    &syscalls::Syscalls,
    &backlog::Backlog,
    &pipeline::Pipeline,
    &stall::Stall,
    &nagle::Nagle,
    &cores::Cores,
    &udp::Udp,
    &batch::Batch,
];

/// Whether the program `tool` is on this machine's PATH.
pub fn installed(tool: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|dir| dir.join(tool).is_file())
}

/// The scenario named `name` in `list`.
pub fn find<'a>(list: &[&'a dyn Scenario], name: &str) -> Option<&'a dyn Scenario> {
    list.iter().copied().find(|s| s.name() == name.trim())
}

/// Every built-in scenario's name: the default `--scenarios`.
pub fn names() -> Vec<String> {
    ALL.iter().map(|s| s.name().to_string()).collect()
}

/// One question the report answers, and how the harness measures it.
pub trait Scenario: Sync + fmt::Debug {
    /// The name on the command line and in the results (`scale`).
    fn name(&self) -> &'static str;

    /// The question, as the report's section heading states it.
    fn question(&self) -> &'static str;

    /// One or two sentences under the heading: how the load is made.
    fn setup(&self) -> String;

    /// The flag that replaces this scenario's points on the command line, if it has one.
    fn flag(&self) -> Option<PointsFlag> {
        None
    }

    /// The points of `profile`, or those `given` with [`Scenario::flag`].
    fn points(&self, profile: Profile, given: Option<&str>) -> Result<Vec<Point>>;

    /// Whether the scenario runs `model` (a model the registry does not know, or a server
    /// the user started, is judged as [`crate::registry::UNKNOWN`]). By default every model that
    /// echoes a byte stream: a datagram server has no connection to load.
    fn runs(&self, model: &Model) -> bool {
        model.transport == Transport::Stream
    }

    /// Which models the scenario runs and why, for the report, when that is not simply
    /// every model.
    fn models_note(&self) -> Option<&'static str> {
        None
    }

    /// Flags for the server besides `--addr` and the model's own (none by default); a point
    /// may add its own ([`Point::server_args`]).
    fn server_args(&self) -> Vec<String> {
        Vec::new()
    }

    /// Programs the scenario needs on the machine (`strace`, say): without one it is skipped,
    /// and the report says "skipped: X not installed".
    fn tools(&self) -> &'static [&'static str] {
        &[]
    }

    /// The kernel counters (`TcpExt:ListenOverflows`, `Udp:RcvbufErrors`) whose growth over
    /// each repeat the scenario reads: see [`crate::counters`]. Machine-wide.
    fn counters(&self) -> &'static [&'static str] {
        &[]
    }

    /// Flags for loadgen besides those the point's fields say (none by default). A flag given
    /// here replaces the harness's own (a scenario may set its own `--warmup`, say).
    fn loadgen_args(&self, _point: &Point) -> Vec<String> {
        Vec::new()
    }

    /// Flags for loadgen besides [`Scenario::loadgen_args`] when the server is a datagram one
    /// (its address is `udp:...`, so loadgen runs its UDP mode): none by default. A scenario
    /// that runs a stream and a datagram server under one load wants a short `--timeout` for
    /// the datagrams (a lost one is declared lost only after it) and TCP's long one for the
    /// stream (a message that waits longer breaks its connection).
    fn datagram_args(&self, _point: &Point) -> Vec<String> {
        Vec::new()
    }

    /// The closed-loop load whose throughput this scenario's `rate_fraction`s multiply, if it
    /// runs an open loop. The runner takes it from an earlier scenario's identical point, or
    /// measures it with a short probe.
    fn capacity_point(&self) -> Option<Point> {
        None
    }

    /// The one figure a `--baseline` comparison follows for this scenario (throughput, unless
    /// the scenario says otherwise).
    fn headline(&self) -> Headline {
        THROUGHPUT
    }

    /// What one unit of throughput is, for progress lines: "msg", or "conn" for churn.
    fn unit(&self) -> &'static str {
        "msg"
    }

    /// The columns of the scenario's table, after "point" and "model".
    fn columns(&self) -> Vec<Column>;

    /// The findings, computed from the numbers, the most important first (the report's
    /// headline for this scenario).
    fn findings(&self, view: &View<'_>) -> Vec<String>;

    /// Draws the scenario's charts (none by default).
    fn charts(&self, _view: &View<'_>, _charts: &mut Charts) -> Result<()> {
        Ok(())
    }
}

/// The figure a scenario is judged by when a run is compared with a baseline.
#[derive(Debug, Clone, Copy)]
pub struct Headline {
    /// Its name in the report ("msgs/s").
    pub name: &'static str,
    /// The figure, from one repeat's metrics.
    pub figure: fn(&Metrics) -> f64,
    /// Whether more is better.
    pub higher_is_better: bool,
    /// The word for a change for the better ("faster").
    pub better: &'static str,
    /// The word for a change for the worse ("slower").
    pub worse: &'static str,
}

/// Messages echoed per second: most scenarios' headline.
pub const THROUGHPUT: Headline = Headline {
    name: "msgs/s",
    figure: |m| m.msgs_per_sec,
    higher_is_better: true,
    better: "faster",
    worse: "slower",
};

/// The 99th percentile of latency, lower being better: the headline of the scenarios about
/// waiting (latency, udp).
pub const P99: Headline = Headline {
    name: "p99",
    figure: |m| m.latency_us.p99,
    higher_is_better: false,
    better: "faster",
    worse: "slower",
};

/// A scenario's command-line flag for its points (`--connections 1,10,100`).
#[derive(Debug, Clone, Copy)]
pub struct PointsFlag {
    /// The long name, without dashes.
    pub long: &'static str,
    /// The value's name in `--help`.
    pub value_name: &'static str,
    /// The help line.
    pub help: &'static str,
}

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
    pub fn series(&self, figure: impl Fn(&Metrics) -> Option<f64>) -> Vec<crate::charts::Series> {
        self.series_of(|_, p| {
            let repeats = crate::results::measured(&p.repeats);
            repeats.filter_map(|r| figure(r.metrics.as_ref()?)).collect()
        })
    }

    /// Each model's line of the values `of` gives for each point (one per repeat).
    pub fn series_of(
        &self,
        of: impl Fn(&ScenarioResults, &PointResults) -> Vec<f64>,
    ) -> Vec<crate::charts::Series> {
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

/// Parses "1,10,100" for the flag `flag`: counts above zero.
pub fn counts(flag: &str, text: &str) -> Result<Vec<u32>> {
    let parsed: Result<Vec<u32>, _> = text.split(',').map(|v| v.trim().parse::<u32>()).collect();
    match parsed {
        Ok(v) if !v.is_empty() && !v.contains(&0) => Ok(v),
        _ => bail!("--{flag} needs counts above zero, comma-separated (got {text:?})"),
    }
}

/// The columns several scenarios share.
pub mod col {
    use super::Column;
    use crate::text::{sig, thousands};

    /// Echoes per second.
    pub const RATE: Column = ("msgs/s", |c| thousands(c.summary.median.msgs_per_sec));
    /// Half the range of the repeats' throughput, relative to the median.
    pub const SPREAD: Column = ("spread", |c| {
        if c.summary.repeats > 1 {
            format!("±{:.0}%", c.summary.spread * 50.0)
        } else {
            "-".into()
        }
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
