//! One measured point: what the generator is asked to do, against which server set-up, and
//! what the harness does to that server meanwhile (stop it, trace it).
//!
//! A scenario makes its points (see [`Measure::points`](crate::measure::Measure::points))
//! and names them, so that results.json describes itself without the scenario's code: every
//! field that changes what a point measures is here, as data, not hidden in a scenario's
//! flags. The fields after `repeats` were added for the lessons (backlog, stall, nagle,
//! pipeline, cores); each has a default that means "as before", so older files still read.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The CPUs server and generator are pinned to; an empty list means not pinned.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cpus {
    /// The server tree's CPUs.
    pub server: Vec<usize>,
    /// The generator's load threads' CPUs (`loadgen --cpus`, one load thread each).
    pub generator: Vec<usize>,
}

/// One measured point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// The name of the scenario the point belongs to.
    pub scenario: String,
    /// A short label that tells the point apart within its scenario ("100 conns", "1 MiB").
    #[serde(default)]
    pub label: String,
    /// The variable the scenario studies, as a number for tables and charts.
    #[serde(default)]
    pub x: f64,
    /// Active connections (in churn: concurrent clients, each connecting per message).
    pub connections: u32,
    /// Bytes per message.
    pub size: u64,
    /// A new connection per message.
    pub churn: bool,
    /// Extra connections held open and silent.
    pub idle: u32,
    /// The idle connections each echo one message before going quiet (`loadgen
    /// --idle-echo`), as a keep-alive connection has after a request.
    #[serde(default, skip_serializing_if = "is_false")]
    pub idle_echo: bool,
    /// Open loop at this fraction of a measured capacity (each model's own, unless
    /// `rate_basis` names one common to all); closed loop when absent.
    pub rate_fraction: Option<f64>,
    /// Whose capacity `rate_fraction` multiplies when it is one figure for every server of the
    /// scenario, so that each is offered the same rate; absent: each model's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_basis: Option<Basis>,
    /// Measured runs of this point, when its scenario wants other than the plan's (a traced
    /// point whose counts do not vary needs one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeats: Option<u32>,
    /// Messages kept in flight on each connection (`loadgen --pipeline`); 1 is ping-pong.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub pipeline: u32,
    /// Open loop at this fixed total rate in messages per second, the same for every model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Instead of a timed load: open this many connections at once, each sending one
    /// message and reading its echo (`loadgen --burst`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    /// Each message written in two calls (`loadgen --split-writes`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub split_writes: bool,
    /// Server flags for this point besides the model's and the scenario's (`--backlog 16`).
    /// A point whose flags differ from the running server's gets a fresh server.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub server_args: Vec<String>,
    /// Where server and generator run for this point, instead of the plan's placement (the
    /// cores scenario gives the server 1, 2, 4... CPUs). A change restarts the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<Cpus>,
    /// Stop the whole server tree with SIGSTOP during each repeat, on this schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stops: Option<Stops>,
    /// Which repeats run with `strace -c -f` attached to the server.
    #[serde(default, skip_serializing_if = "Trace::is_none")]
    pub trace: Trace,
    /// Warm-up of this point, when it is not the plan's (a traced point needs none).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_secs")]
    pub warmup: Option<Duration>,
    /// The measured window, when it is not the plan's; for a burst, how long one is expected
    /// to take (for the estimate and the hang deadline).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_secs")]
    pub duration: Option<Duration>,
}

/// The capacity a common open-loop rate is a fraction of: one figure over the closed-loop
/// capacities of the scenario's servers (the control left out, being a second copy of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Basis {
    /// The lowest: a rate every server sustained in a closed loop.
    Slowest,
    /// The median: above it, about half the servers are past their closed-loop capacity.
    Median,
    /// The highest: a rate only the fastest sustained in a closed loop.
    Fastest,
}

impl Basis {
    /// The word for it in labels and prose ("slowest").
    pub fn word(self) -> &'static str {
        match self {
            Basis::Slowest => "slowest",
            Basis::Median => "median",
            Basis::Fastest => "fastest",
        }
    }

    /// The figure over `capacities` (each server's, in msgs/s; `None` when there is none).
    pub fn of(self, capacities: &[f64]) -> Option<f64> {
        let mut known: Vec<f64> =
            capacities.iter().copied().filter(|c| c.is_finite() && *c > 0.0).collect();
        if known.is_empty() {
            return None;
        }
        known.sort_by(f64::total_cmp);
        let n = known.len();
        Some(match self {
            Basis::Slowest => known[0],
            // The mean of the middle two for an even count, as every median here.
            Basis::Median => (known[(n - 1) / 2] + known[n / 2]) / 2.0,
            Basis::Fastest => known[n - 1],
        })
    }
}

/// When the harness stops the server during a repeat. SIGSTOP and SIGCONT always come in
/// pairs: see [`crate::stopper`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stops {
    /// From the generator's start to the first stop; zero stops the server before the
    /// generator starts (so that its very first connect finds the server stopped).
    #[serde(with = "secs")]
    pub after: Duration,
    /// How long each stop lasts.
    #[serde(with = "secs")]
    pub length: Duration,
    /// The period of a repeating stop (a stop of `length` every `every`); absent: once.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_secs")]
    pub every: Option<Duration>,
}

/// Which repeats of a point are traced with `strace -c -f` to count the server's system
/// calls. strace slows the server many times over, so a traced repeat's throughput and
/// latency belong to the tracer, not the model: the summary leaves them out whenever the
/// point has untraced repeats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trace {
    /// None.
    #[default]
    None,
    /// Every repeat (the syscalls scenario, whose only figure is the count).
    Every,
    /// One more repeat after the measured ones, traced and without warm-up (pipeline: the
    /// figures from untraced runs, the counts from the extra one).
    Extra,
}

impl Trace {
    fn is_none(&self) -> bool {
        *self == Trace::None
    }
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Point {
    /// A closed-loop point of `scenario`: `connections` clients sending `size`-byte messages.
    pub fn closed(scenario: &str, connections: u32, size: u64) -> Point {
        Point {
            scenario: scenario.to_string(),
            label: String::new(),
            x: 0.0,
            connections,
            size,
            churn: false,
            idle: 0,
            idle_echo: false,
            rate_fraction: None,
            rate_basis: None,
            repeats: None,
            pipeline: 1,
            rate: None,
            burst: None,
            split_writes: false,
            server_args: Vec::new(),
            cpus: None,
            stops: None,
            trace: Trace::None,
            warmup: None,
            duration: None,
        }
    }

    /// The point with its label and x set.
    pub fn named(self, label: impl Into<String>, x: f64) -> Point {
        Point { label: label.into(), x, ..self }
    }

    /// Whether the two points ask for the same load against the same server set-up, whatever
    /// their scenario, label and repeats: a scale point measures the capacity a latency point
    /// refers to, and a baseline's point is found again by its load.
    pub fn same_load(&self, other: &Point) -> bool {
        let load = |p: &Point| Point {
            scenario: String::new(),
            label: String::new(),
            x: 0.0,
            repeats: None,
            trace: Trace::None,
            ..p.clone()
        };
        load(self) == load(other)
    }

    /// The point with the CPUs it runs on spelled out: its own, or `plan`'s placement.
    pub fn placed(&self, plan: &Cpus) -> Point {
        Point { cpus: Some(self.cpus.clone().unwrap_or_else(|| plan.clone())), ..self.clone() }
    }

    /// Whether a repeat numbered `index` (1-based) is traced, when `measured` are planned.
    pub fn traced(&self, index: u32, measured: u32) -> bool {
        match self.trace {
            Trace::None => false,
            Trace::Every => true,
            Trace::Extra => index > measured,
        }
    }
}

/// "1 conn", "100 conns".
pub fn plural(n: u32, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

/// Serializes an optional duration as fractional seconds.
pub(crate) mod opt_secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.map(Duration::from_secs_f64))
    }
}

/// Serializes durations as fractional seconds, the unit every figure in results.json uses.
pub(crate) mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_secs_f64(f64::deserialize(d)?))
    }
}
