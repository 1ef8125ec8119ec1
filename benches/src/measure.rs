//! The measuring half of a scenario ([`Measure`]: what to run and how to load it), and what
//! the measuring layer is given for a run ([`Job`]).
//!
//! This module is on the measuring side of the harness: the plan, the command line's points
//! flags and the runner read a scenario only through [`Measure`], and nothing here knows how a
//! result is presented. The presenting half is [`crate::present::Present`]; a scenario
//! implements both (see [`crate::scenario`]).

use std::fmt;
use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::plan::{Plan, Point, Profile};
use crate::registry::{Model, Transport};
use crate::results::Metrics;

/// What a scenario tells the measuring side. The provided methods are the common case (a
/// closed-loop load with the point's own connections, size and idle ballast, against a server
/// started with its usual flags), so a scenario overrides only what it does differently.
pub trait Measure: Sync + fmt::Debug {
    /// The name on the command line and in the results (`scale`).
    fn name(&self) -> &'static str;

    /// The flag that replaces this scenario's points on the command line, if it has one.
    fn flag(&self) -> Option<PointsFlag> {
        None
    }

    /// The points of `profile`, or those `given` with [`Measure::flag`].
    fn points(&self, profile: Profile, given: Option<&str>) -> Result<Vec<Point>>;

    /// Whether the scenario runs `model` (a model the registry does not know, or a server
    /// the user started, is judged as [`crate::registry::UNKNOWN`]). By default every model that
    /// echoes a byte stream: a datagram server has no connection to load.
    fn runs(&self, model: &Model) -> bool {
        model.transport == Transport::Stream
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

    /// Adjusts loadgen's configuration for a repeat of `point`, after the harness filled it
    /// in from the point's fields (nothing by default). The scenario has the last word: it may
    /// set its own `timeout`, or its own `warmup`, over the harness's.
    fn loadgen(&self, _point: &Point, _config: &mut loadgen::Config) {}

    /// Adjusts loadgen's configuration further, after [`Measure::loadgen`], when the server
    /// is a datagram one (its address is `udp:...`, so loadgen runs its UDP mode): nothing by
    /// default. A scenario that runs a stream and a datagram server under one load wants a
    /// short timeout for the datagrams (a lost one is declared lost only after it) and TCP's
    /// long one for the stream (a message that waits longer breaks its connection).
    fn datagram(&self, _point: &Point, _config: &mut loadgen::Config) {}

    /// The closed-loop load whose throughput this scenario's `rate_fraction`s multiply, if it
    /// runs an open loop. The runner takes it from an earlier scenario's identical point, or
    /// measures it with a short probe.
    fn capacity_point(&self) -> Option<Point> {
        None
    }

    /// The one figure that judges this scenario (throughput, unless the scenario says
    /// otherwise): a `--baseline` comparison follows it, and the runner may use it to decide
    /// when a point has enough rounds, which is why it is on the measuring side.
    fn headline(&self) -> Headline {
        THROUGHPUT
    }

    /// What one unit of throughput is, for progress lines: "msg", or "conn" for churn.
    fn unit(&self) -> &'static str {
        "msg"
    }
}

/// What the measuring layer is given for one run: the plan, the measuring halves of the
/// scenarios its names refer to, and where the binaries are. (The top of the harness,
/// [`crate::session`], holds the whole scenarios and hands this layer only their measuring
/// half, so the runner cannot reach the report even by accident.)
#[derive(Debug, Clone)]
pub struct Job<'a> {
    /// What to measure.
    pub plan: Plan,
    /// The scenarios the plan's names refer to.
    pub scenarios: Vec<&'a dyn Measure>,
    /// Folder holding the servers' binaries and `loadgen`.
    pub bin_dir: PathBuf,
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

/// The scenario named `name` in `list`: a list of measuring halves, or of whole scenarios.
pub fn find<'a, S: Measure + ?Sized>(list: &[&'a S], name: &str) -> Option<&'a S> {
    list.iter().copied().find(|s| s.name() == name.trim())
}

/// Every point the scenarios of `list` make for `profile` with no points flag given: what
/// names the unlabelled points of an old results file ([`crate::results::Results::upgrade`]).
pub fn all_points<S: Measure + ?Sized>(list: &[&S], profile: Profile) -> Vec<Point> {
    list.iter().filter_map(|s| s.points(profile, None).ok()).flatten().collect()
}

/// Whether the program `tool` is on this machine's PATH.
pub fn installed(tool: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|dir| dir.join(tool).is_file())
}

/// Parses "1,10,100" for the flag `flag`: counts above zero.
pub fn counts(flag: &str, text: &str) -> Result<Vec<u32>> {
    let parsed: Result<Vec<u32>, _> = text.split(',').map(|v| v.trim().parse::<u32>()).collect();
    match parsed {
        Ok(v) if !v.is_empty() && !v.contains(&0) => Ok(v),
        _ => bail!("--{flag} needs counts above zero, comma-separated (got {text:?})"),
    }
}
