//! What a comparison run measures: the scenarios, their points, the profiles and the time budget.
//!
//! Every number that decides how long a run takes lives in this file as a named constant, so
//! the budget can be audited by reading it: a point costs its warm-up plus its measured window
//! plus a fixed overhead (starting the generator, connecting, draining, writing results), and
//! [`Plan::estimate`] adds those up. The tests hold the quick profile to about 20 s a model and the
//! standard one to about 20 minutes for every model on the reference machine (2 vCPUs): its
//! budget stops the rounds beyond the least (8), which took 23 minutes there on 2026-12-07.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::point::secs;
pub use crate::point::{Basis, Cpus, Point, Stops, Trace, plural};

/// Bytes per message wherever the message size is not the variable under study.
pub const SMALL_MESSAGE: u64 = 64;

/// Time the harness spends around each point besides warm-up and measurement: spawning the
/// generator, connecting, waiting for in-flight echoes, reading /proc, writing the results.
/// About 0.1 s was measured on the reference machine, more for thousands of idle connections
/// to a forking server; this errs on the long side. Used only for the estimate.
pub const POINT_OVERHEAD: Duration = Duration::from_millis(200);

/// Time to start and stop one server (one per model and scenario), including the wait for a
/// forking server's children to exit; used only for the estimate.
pub const SERVER_OVERHEAD: Duration = Duration::from_millis(400);

/// The window of a traced extra repeat (pipeline's): strace slows the server, so its only
/// figure is the count of system calls per message, which thousands of messages fix.
pub const TRACED_WINDOW: Duration = Duration::from_millis(500);

/// How much a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// About a minute for everything: proves the pipeline works, numbers are rough.
    Quick,
    /// The default: the whole matrix, 8 to 10 paired rounds, about 23 minutes on 2 cores.
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

/// The timings of one profile, before any command-line override. (Each scenario has its own
/// points per profile: see [`Measure::points`](crate::measure::Measure::points).)
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// Rounds every point runs at least: in each, every server of the scenario runs the point
    /// once, in a shuffled order.
    pub repeats: u32,
    /// Rounds a point runs at most: past `repeats`, another round runs while some pair of
    /// servers is still undecided and the budget allows.
    pub max_rounds: u32,
    /// The wall time the extra rounds must leave the run within; `None`: no limit.
    pub budget: Option<Duration>,
    /// Load before measuring, so connections are open and caches warm. Its errors still count.
    pub warmup: Duration,
    /// The measured window of every point.
    pub duration: Duration,
    /// The model run twice, the second time as "MODEL (control)", to measure the noise floor.
    pub control: Option<&'static str>,
}

impl Profile {
    /// The built-in timings of the profile.
    pub fn timing(self) -> Timing {
        match self {
            Profile::Quick => Timing {
                repeats: 1,
                max_rounds: 1,
                budget: None,
                warmup: Duration::from_millis(200),
                duration: Duration::from_millis(800),
                control: None,
            },
            // A verdict needs 8 paired rounds (compare.rs: the fewest whose [min, max] reaches
            // 99%), so every point runs 8, and up to 10 while a pair is undecided and the run
            // is ahead of its 20-minute budget. Windows are short because pairing removes the
            // drift that long windows averaged out: a round's servers run within seconds of
            // each other. At 100k messages per second 500 ms still holds 50,000 samples, and
            // 50 ticks of a fully busy CPU.
            Profile::Standard => Timing {
                repeats: 8,
                max_rounds: 10,
                budget: Some(Duration::from_secs(20 * 60)),
                warmup: Duration::from_millis(200),
                duration: Duration::from_millis(500),
                control: Some("mio"),
            },
            Profile::Full => Timing {
                repeats: 8,
                max_rounds: 16,
                budget: None,
                warmup: Duration::from_secs(1),
                duration: Duration::from_secs(3),
                control: Some("mio"),
            },
        }
    }
}

/// Where the server and the generator run: a shorthand for the two CPU lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    /// The allowed CPUs split in two: the first half for the server, the rest for the
    /// generator (CPU 0 and CPU 1 on a 2-CPU machine). Every message crosses CPUs.
    Split,
    /// Both on the server's half: no cross-CPU wake-ups, but they share those cores.
    Shared,
    /// No pinning: the scheduler decides, and may move either at any time.
    Unpinned,
    /// CPU lists given with `--server-cpus` / `--generator-cpus`.
    #[value(skip)]
    Custom,
}

impl Placement {
    /// The CPU lists of the shorthand on a machine whose harness may run on `allowed`.
    /// Split gives the server the first half (at least one CPU) and the generator the rest;
    /// with a single CPU both share it.
    pub fn cpus(self, allowed: &[usize]) -> Cpus {
        let half = (allowed.len() / 2).max(1).min(allowed.len());
        let (server, rest) = allowed.split_at(half);
        match self {
            Placement::Split if !rest.is_empty() => {
                Cpus { server: server.to_vec(), generator: rest.to_vec() }
            }
            Placement::Split | Placement::Shared => {
                Cpus { server: server.to_vec(), generator: server.to_vec() }
            }
            Placement::Unpinned | Placement::Custom => Cpus::default(),
        }
    }

    /// The placement's name in the results.
    pub fn name(self) -> &'static str {
        match self {
            Placement::Split => "split",
            Placement::Shared => "shared",
            Placement::Unpinned => "unpinned",
            Placement::Custom => "custom",
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
    /// Servers the user started (`--external`), run after the models.
    #[serde(default)]
    pub external: Vec<crate::external::External>,
    /// Names of the scenarios to run for each model, in order.
    pub scenarios: Vec<String>,
    /// Rounds of every point, at least (a point's own `repeats` fixes its count instead).
    pub repeats: u32,
    /// Rounds of every point at most; absent in older files (then `repeats`).
    #[serde(default)]
    pub max_rounds: Option<u32>,
    /// The wall time extra rounds must leave the run within; absent: no limit.
    #[serde(default, with = "crate::point::opt_secs")]
    pub budget: Option<Duration>,
    /// The model run a second time as a server of its own, `MODEL (control)`.
    #[serde(default)]
    pub control: Option<String>,
    /// The seed of every round's order.
    #[serde(default)]
    pub seed: u64,
    /// Warm-up before each measured window.
    #[serde(with = "secs")]
    pub warmup: Duration,
    /// The measured window of each point.
    #[serde(with = "secs")]
    pub duration: Duration,
    /// Where server and generator run.
    pub placement: Placement,
    /// The CPUs that placement pinned them to.
    #[serde(default)]
    pub cpus: Cpus,
    /// Workers asked of every model with workers (`--workers`); absent: the registry's default.
    #[serde(default)]
    pub workers: Option<u32>,
    /// Capacity probes each model needs (a scenario's rates refer to a closed-loop figure
    /// that no planned point measures).
    #[serde(default)]
    pub capacity_probes: u32,
    /// Every point of every selected scenario, in order.
    pub points: Vec<Point>,
    /// The models and external servers each scenario runs, by scenario name, when it does
    /// not run them all (each scenario chooses: stall runs one representative model). A
    /// scenario absent here runs every one.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub models_of: BTreeMap<String, Vec<String>>,
    /// `--generator`, `--server-addr`, `--generator-bin`: load from other machines (or
    /// namespaces) and the address the servers bind. Absent: everything on 127.0.0.1 here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<crate::generators::Remote>,
}

impl Plan {
    /// The points of the scenario named `scenario`, in order.
    pub fn points_of<'a>(&'a self, scenario: &'a str) -> impl Iterator<Item = &'a Point> + 'a {
        self.points.iter().filter(move |p| p.scenario == scenario)
    }

    /// Whether the scenario `scenario` runs the model or external server `server`: a scenario
    /// chooses its models (stall needs one representative), and the plan records the choice.
    pub fn runs_server(&self, scenario: &str, server: &str) -> bool {
        self.models_of.get(scenario).is_none_or(|m| m.iter().any(|x| x == server))
    }

    /// How many of the plan's models and external servers run `scenario`.
    pub fn servers_of(&self, scenario: &str) -> usize {
        match self.models_of.get(scenario) {
            Some(m) => m.len(),
            None => self.servers(),
        }
    }

    /// Every server the plan runs, by the name the results give it: the models, the control,
    /// then the external servers.
    pub fn server_names(&self) -> Vec<String> {
        let models = self.models.iter().cloned();
        let control = self.control.iter().map(|m| control_name(m));
        models.chain(control).chain(self.external.iter().map(|e| e.name.clone())).collect()
    }

    /// The rounds a point runs at most: its own fixed count, or the plan's.
    pub fn max_rounds_of(&self, point: &Point) -> u32 {
        match point.repeats {
            Some(n) => n,
            None => self.max_rounds.unwrap_or(self.repeats).max(self.repeats),
        }
    }

    /// Generator runs the plan makes at the least rounds: every point of every server that
    /// runs its scenario (traced extra repeats included), except those whose figures an
    /// earlier point measured.
    pub fn runs(&self) -> usize {
        let servers = self.server_names();
        let servers = servers.iter();
        let each = |server: &String| -> u32 {
            let mine = self.points.iter().filter(|p| self.runs_server(&p.scenario, server));
            mine.map(|p| match self.measured_before(p, server) {
                Some(_) => self.runs_of(p) - self.repeats_of(p),
                None => self.runs_of(p),
            })
            .sum()
        };
        servers.map(|s| each(s) as usize).sum()
    }

    /// Measured runs of `point`: its own count, or the plan's.
    pub fn repeats_of(&self, point: &Point) -> u32 {
        point.repeats.unwrap_or(self.repeats)
    }

    /// Generator runs of `point`: its measured repeats plus a traced extra one if it has one.
    pub fn runs_of(&self, point: &Point) -> u32 {
        self.repeats_of(point) + u32::from(point.trace == Trace::Extra)
    }

    /// The warm-up of `point`: its own, or the plan's.
    pub fn warmup_of(&self, point: &Point) -> Duration {
        point.warmup.unwrap_or(self.warmup)
    }

    /// The measured window of `point` (for a burst, its expected length): its own, or the
    /// plan's.
    pub fn duration_of(&self, point: &Point) -> Duration {
        point.duration.unwrap_or(self.duration)
    }

    /// The servers the plan runs: models, the control and external servers.
    pub fn servers(&self) -> usize {
        self.models.len() + self.control.iter().count() + self.external.len()
    }

    /// Time one generator run of the plan's own timing is expected to take.
    pub fn run_time(&self) -> Duration {
        self.warmup + self.duration + POINT_OVERHEAD
    }

    /// Time one generator run of `point` is expected to take (a burst has no warm-up).
    pub fn run_time_of(&self, point: &Point) -> Duration {
        let warmup = if point.burst.is_some() { Duration::ZERO } else { self.warmup_of(point) };
        warmup + self.duration_of(point) + POINT_OVERHEAD
    }

    /// Time the runs of `point` are expected to take for one server (a traced extra repeat
    /// has no warm-up).
    pub fn point_time(&self, point: &Point) -> Duration {
        let extra = TRACED_WINDOW.min(self.duration_of(point)) + POINT_OVERHEAD;
        self.measured_time(point) + extra * u32::from(point.trace == Trace::Extra)
    }

    /// The window of a traced extra repeat: [`TRACED_WINDOW`], or the point's if shorter.
    pub fn traced_window(&self, point: &Point) -> Duration {
        TRACED_WINDOW.min(self.duration_of(point))
    }

    /// Servers one model starts for `scenario`: one, and another whenever a point asks for
    /// other server flags or CPUs than the point before.
    pub fn starts_of(&self, scenario: &str) -> u32 {
        let setups: Vec<_> = self.points_of(scenario).map(|p| (&p.server_args, &p.cpus)).collect();
        1 + setups.windows(2).filter(|w| w[0] != w[1]).count() as u32
    }

    /// The earlier point of another scenario whose figures `point` takes instead of measuring
    /// the same thing again, for a server that runs both: the same load on the same CPUs with
    /// at least as many measured repeats (cores' 1-CPU point is scale's 100 connections; the
    /// runner also checks that the server was started the same way).
    pub fn measured_before(&self, point: &Point, server: &str) -> Option<&Point> {
        let placed = point.placed(&self.cpus);
        let at = self.points.iter().position(|p| p == point)?;
        self.points[..at].iter().find(|p| {
            p.scenario != point.scenario
                && self.runs_server(&p.scenario, server)
                && self.repeats_of(p) >= self.repeats_of(point)
                && p.placed(&self.cpus).same_load(&placed)
        })
    }

    /// Expected wall time of the whole plan: for every model and external server, every run
    /// of every scenario it runs (except points whose figures an earlier point measured), each
    /// server start and stop, and the capacity probes.
    pub fn estimate(&self) -> Duration {
        let probes = self.run_time() * self.capacity_probes * self.servers() as u32;
        let mut total = probes;
        for server in &self.server_names() {
            for s in self.scenarios.iter().filter(|s| self.runs_server(s, server)) {
                for p in self.points_of(s) {
                    total += match self.measured_before(p, server) {
                        // Only its traced repeat, if it has one, still runs.
                        Some(_) => self.point_time(p).saturating_sub(self.measured_time(p)),
                        None => self.point_time(p),
                    };
                }
                total += SERVER_OVERHEAD * self.starts_of(s);
            }
        }
        total
    }

    /// The measured repeats' part of [`Plan::point_time`].
    fn measured_time(&self, point: &Point) -> Duration {
        let warmup = if point.burst.is_some() { Duration::ZERO } else { self.warmup_of(point) };
        (self.duration_of(point) + POINT_OVERHEAD + warmup) * self.repeats_of(point)
    }
}

/// The name the control of `model` goes by in the results: "mio (control)".
pub fn control_name(model: &str) -> String {
    format!("{model} (control)")
}
