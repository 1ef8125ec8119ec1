//! What a comparison run measures: the scenarios, their points, the profiles and the time budget.
//!
//! Every number that decides how long a run takes lives in this file as a named constant, so
//! the budget can be audited by reading it: a point costs its warm-up plus its measured window
//! plus a fixed overhead (starting the generator, connecting, draining, writing results), and
//! [`Plan::estimate`] adds those up. The tests hold the quick profile to about a minute and the
//! standard one to 15 minutes on the reference machine (2 vCPUs).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::text::format_bytes;

/// The server models the suite ships, in the order the report lists them.
pub const MODELS: [&str; 4] = ["fork", "thread", "mio", "hybrid"];

/// Bytes per message wherever the message size is not the variable under study.
pub const SMALL_MESSAGE: u64 = 64;

/// Connections that carry the size scenario's big messages: "few", so that the figure is about
/// moving bytes rather than juggling connections.
pub const SIZE_CONNECTIONS: u32 = 4;

/// Connections of the latency scenario's open loop. The scale scenario measures this same count,
/// so its throughput is the capacity the latency fractions refer to.
pub const LATENCY_CONNECTIONS: u32 = 10;

/// Time the harness spends around each point besides warm-up and measurement: spawning the
/// generator, connecting, waiting for in-flight echoes, reading /proc, writing the results.
/// About 0.1 s was measured on the reference machine, more for thousands of idle connections
/// to a forking server; this errs on the long side. Used only for the estimate.
pub const POINT_OVERHEAD: Duration = Duration::from_millis(400);

/// Time to start and stop one server (one per model and scenario), including the wait for a
/// forking server's children to exit; used only for the estimate.
pub const SERVER_OVERHEAD: Duration = Duration::from_millis(400);

/// The question each scenario answers. The report opens each section with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// Closed loop, small messages, growing connection counts.
    Scale,
    /// Closed loop, few connections, growing message sizes.
    Size,
    /// A new connection for every message.
    Churn,
    /// Thousands of silent connections beside one active one.
    Idle,
    /// Open loop at fractions of the model's measured capacity.
    Latency,
}

impl Scenario {
    /// Every scenario, in the order a run executes them. `scale` comes before `latency` because
    /// the latency rates are fractions of the capacity that `scale` measured.
    pub const ALL: [Scenario; 5] =
        [Scenario::Scale, Scenario::Size, Scenario::Churn, Scenario::Idle, Scenario::Latency];

    /// The scenario's name on the command line and in the results.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Scale => "scale",
            Scenario::Size => "size",
            Scenario::Churn => "churn",
            Scenario::Idle => "idle",
            Scenario::Latency => "latency",
        }
    }

    /// The question the scenario answers, as the report states it.
    pub fn question(self) -> &'static str {
        match self {
            Scenario::Scale => "How does each model hold up as connections grow?",
            Scenario::Size => "What happens with big messages?",
            Scenario::Churn => "What does a new connection cost?",
            Scenario::Idle => "What does holding a connection cost?",
            Scenario::Latency => "What does a user wait under load?",
        }
    }

    /// Parses a scenario name as typed on the command line.
    pub fn parse(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name.trim())
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How much a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// About a minute for everything: proves the pipeline works, numbers are rough.
    Quick,
    /// The default: the whole matrix, 3 repeats, within 15 minutes on 2 cores.
    Standard,
    /// More points, longer windows, 5 repeats. Takes as long as it takes.
    Full,
}

impl Profile {
    /// The profile's name in the results.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Quick => "quick",
            Profile::Standard => "standard",
            Profile::Full => "full",
        }
    }
}

/// The points and timings of one profile, before any command-line override.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileSpec {
    /// Runs of every point; the report shows their median and spread.
    pub repeats: u32,
    /// Load before measuring, so connections are open and caches warm. Excluded from figures.
    pub warmup: Duration,
    /// The measured window of every point.
    pub duration: Duration,
    /// Connection counts of the scale scenario.
    pub scale_connections: Vec<u32>,
    /// Message sizes of the size scenario, in bytes.
    pub sizes: Vec<u64>,
    /// Concurrent clients of the churn scenario, each opening a connection per message.
    pub churn_clients: Vec<u32>,
    /// Silent connections of the idle scenario.
    pub idle_connections: Vec<u32>,
    /// Fractions of measured capacity offered in the latency scenario's open loop.
    pub latency_fractions: Vec<f64>,
}

impl ProfileSpec {
    /// The built-in points and timings of `profile`.
    pub fn of(profile: Profile) -> ProfileSpec {
        const KIB: u64 = 1024;
        const MIB: u64 = 1024 * 1024;
        match profile {
            Profile::Quick => ProfileSpec {
                repeats: 1,
                warmup: Duration::from_millis(200),
                duration: Duration::from_millis(800),
                scale_connections: vec![1, LATENCY_CONNECTIONS, 100],
                sizes: vec![KIB, MIB],
                churn_clients: vec![4],
                idle_connections: vec![200],
                latency_fractions: vec![0.25, 0.75],
            },
            Profile::Standard => ProfileSpec {
                repeats: 3,
                warmup: Duration::from_millis(500),
                duration: Duration::from_secs(2),
                scale_connections: vec![1, LATENCY_CONNECTIONS, 100, 1000],
                sizes: vec![SMALL_MESSAGE, 4 * KIB, 64 * KIB, MIB],
                churn_clients: vec![1, 8],
                idle_connections: vec![1000, 4000],
                latency_fractions: vec![0.25, 0.5, 0.75],
            },
            Profile::Full => ProfileSpec {
                repeats: 5,
                warmup: Duration::from_secs(1),
                duration: Duration::from_secs(5),
                scale_connections: vec![1, LATENCY_CONNECTIONS, 100, 1000, 4000],
                sizes: vec![SMALL_MESSAGE, KIB, 4 * KIB, 16 * KIB, 64 * KIB, 256 * KIB, MIB],
                churn_clients: vec![1, 8, 32],
                idle_connections: vec![1000, 4000, 8000],
                latency_fractions: vec![0.25, 0.5, 0.75, 0.9],
            },
        }
    }
}

/// One measured point: what the generator is asked to do against one server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// The scenario the point belongs to.
    pub scenario: Scenario,
    /// Active connections (in churn: concurrent clients, each connecting per message).
    pub connections: u32,
    /// Bytes per message.
    pub size: u64,
    /// A new connection per message.
    pub churn: bool,
    /// Extra connections held open and silent.
    pub idle: u32,
    /// Open loop at this fraction of the model's measured capacity; closed loop when absent.
    pub rate_fraction: Option<f64>,
}

impl Point {
    fn closed(scenario: Scenario, connections: u32, size: u64) -> Point {
        Point { scenario, connections, size, churn: false, idle: 0, rate_fraction: None }
    }

    /// A short label that tells the point apart within its scenario ("100 conns", "1 MiB").
    pub fn label(&self) -> String {
        match self.scenario {
            Scenario::Scale => plural(self.connections, "conn"),
            Scenario::Size => format_bytes(self.size),
            Scenario::Churn => plural(self.connections, "client"),
            Scenario::Idle => format!("{} idle", self.idle),
            Scenario::Latency => format!("{:.0}% load", self.rate_fraction.unwrap_or(0.0) * 100.0),
        }
    }

    /// The variable the scenario studies, as a number for tables and charts.
    pub fn x(&self) -> f64 {
        match self.scenario {
            Scenario::Scale | Scenario::Churn => f64::from(self.connections),
            Scenario::Size => self.size as f64,
            Scenario::Idle => f64::from(self.idle),
            Scenario::Latency => self.rate_fraction.unwrap_or(0.0),
        }
    }
}

fn plural(n: u32, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

/// Where the server and the generator run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    /// Server pinned to CPU 0, generator to CPU 1: each has a core, every message crosses CPUs.
    Split,
    /// Both pinned to CPU 0: no cross-CPU wake-ups, but they share one core.
    Shared,
    /// No pinning: the scheduler decides, and may move either at any time.
    Unpinned,
}

impl Placement {
    /// The CPU the server is pinned to, if any.
    pub fn server_cpu(self) -> Option<usize> {
        match self {
            Placement::Split | Placement::Shared => Some(0),
            Placement::Unpinned => None,
        }
    }

    /// The CPU the generator's load threads are pinned to (`loadgen --cpus`), if any.
    pub fn generator_cpu(self) -> Option<usize> {
        match self {
            Placement::Split => Some(1),
            Placement::Shared => Some(0),
            Placement::Unpinned => None,
        }
    }

    /// The placement's name in the results.
    pub fn name(self) -> &'static str {
        match self {
            Placement::Split => "split",
            Placement::Shared => "shared",
            Placement::Unpinned => "unpinned",
        }
    }
}

/// Everything a run will do, fixed before it starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The profile the plan started from.
    pub profile: Profile,
    /// Models to run, in order.
    pub models: Vec<String>,
    /// Scenarios to run for each model, in order.
    pub scenarios: Vec<Scenario>,
    /// Runs of every point.
    pub repeats: u32,
    /// Warm-up before each measured window.
    #[serde(with = "secs")]
    pub warmup: Duration,
    /// The measured window of each point.
    #[serde(with = "secs")]
    pub duration: Duration,
    /// Where server and generator run.
    pub placement: Placement,
    /// Every point of every selected scenario, in order.
    pub points: Vec<Point>,
}

impl Plan {
    /// Builds the plan of `spec` for `models` and `scenarios`.
    pub fn new(
        profile: Profile,
        spec: &ProfileSpec,
        models: Vec<String>,
        scenarios: Vec<Scenario>,
        placement: Placement,
    ) -> Plan {
        let mut points = Vec::new();
        for &scenario in &scenarios {
            points.extend(points_of(scenario, spec));
        }
        Plan {
            profile,
            models,
            scenarios,
            repeats: spec.repeats,
            warmup: spec.warmup,
            duration: spec.duration,
            placement,
            points,
        }
    }

    /// The points of one scenario, in order.
    pub fn points_of(&self, scenario: Scenario) -> impl Iterator<Item = &Point> {
        self.points.iter().filter(move |p| p.scenario == scenario)
    }

    /// Generator runs the plan makes: every point of every model, repeated.
    pub fn runs(&self) -> usize {
        self.models.len() * self.points.len() * self.repeats as usize
    }

    /// Time one generator run is expected to take.
    pub fn run_time(&self) -> Duration {
        self.warmup + self.duration + POINT_OVERHEAD
    }

    /// Expected wall time of the whole plan: every run, plus a server start and stop per model
    /// and scenario, plus a capacity probe per model when `latency` runs without `scale`.
    pub fn estimate(&self) -> Duration {
        let servers = (self.models.len() * self.scenarios.len()) as u32;
        let needs_probe = self.scenarios.contains(&Scenario::Latency)
            && !self.scenarios.contains(&Scenario::Scale);
        let probes = if needs_probe { self.models.len() as u32 } else { 0 };
        self.run_time() * (self.runs() as u32 + probes) + SERVER_OVERHEAD * servers
    }
}

fn points_of(scenario: Scenario, spec: &ProfileSpec) -> Vec<Point> {
    match scenario {
        Scenario::Scale => spec
            .scale_connections
            .iter()
            .map(|&c| Point::closed(scenario, c, SMALL_MESSAGE))
            .collect(),
        Scenario::Size => {
            spec.sizes.iter().map(|&s| Point::closed(scenario, SIZE_CONNECTIONS, s)).collect()
        }
        Scenario::Churn => spec
            .churn_clients
            .iter()
            .map(|&c| Point { churn: true, ..Point::closed(scenario, c, SMALL_MESSAGE) })
            .collect(),
        Scenario::Idle => spec
            .idle_connections
            .iter()
            .map(|&n| Point { idle: n, ..Point::closed(scenario, 1, SMALL_MESSAGE) })
            .collect(),
        Scenario::Latency => spec
            .latency_fractions
            .iter()
            .map(|&f| Point {
                rate_fraction: Some(f),
                ..Point::closed(scenario, LATENCY_CONNECTIONS, SMALL_MESSAGE)
            })
            .collect(),
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
