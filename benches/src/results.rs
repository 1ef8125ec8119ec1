//! The schema of `results.json`: every raw figure of a run, documented in results/SCHEMA.md.
//!
//! The structure follows the run: models, then the scenarios each model ran (one server per
//! model and scenario), then points, then repeats. Each repeat keeps the generator's whole JSON
//! report untouched (`loadgen`) beside the figures the report uses (`metrics`), so nothing the
//! generator measured is lost, and the server tree's costs from /proc (`server`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::env::Environment;
use crate::plan::{Placement, Plan, Point};
use crate::procstat::Usage;

mod merged;
mod offered;
pub use merged::{Merged, merge};
pub use offered::{Chosen, Offered};

/// Bumped whenever a field changes meaning or disappears (adding fields does not bump it).
/// Version 2: the placement records CPU lists (`server_cpus`, `generator_cpus`) instead of one
/// CPU each. Version 3: every server of a scenario is measured in the same rounds, in a seeded
/// order (`seed`, `order`, each repeat's `round`), and `comparisons` pairs them round by round;
/// a point's `repeats` are its rounds. Older files still read (see [`Results::upgrade`]); they
/// have no rounds, so no comparisons. Version 4: the latency scenario offers every model the
/// same rates (`rate_basis`, `offered`), its points' `x` is their place in order, and
/// open-loop points carry `merged`, their latency over all rounds at once.
pub const SCHEMA_VERSION: u32 = 4;

/// Spread (max - min) / median of the repeats' throughput above which a point is marked noisy.
pub const NOISY_SPREAD: f64 = 0.10;

/// A whole run: the top level of results.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Version of the harness that ran the comparison.
    pub harness_version: String,
    /// When the run started, RFC 3339 UTC.
    pub started_at: String,
    /// When it ended, RFC 3339 UTC; absent while it runs.
    pub finished_at: Option<String>,
    /// Where the run is: `running`, `complete` or `interrupted` (Ctrl-C).
    pub status: RunStatus,
    /// Wall seconds from start to the last write.
    pub elapsed_seconds: f64,
    /// Wall seconds the plan was estimated to take.
    pub estimated_seconds: f64,
    /// CPU seconds the harness itself used (mostly /proc sampling), children excluded.
    #[serde(default)]
    pub harness_cpu_seconds: f64,
    /// What the run set out to measure.
    pub plan: Plan,
    /// Where server and generator ran.
    pub placement: PlacementRecord,
    /// The machine.
    pub environment: Environment,
    /// What each model did, in plan order.
    pub models: Vec<ModelResults>,
    /// The seed of every round's shuffled order (`--seed` repeats it).
    #[serde(default)]
    pub seed: Option<u64>,
    /// The order each round of each point ran its servers in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub order: Vec<RoundOrder>,
    /// Every pair of servers at every point, on the scenario's headline figure and on server
    /// CPU per message: the paired rounds' median ratio, its interval and the verdict.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub comparisons: Vec<Comparison>,
    /// The criterion benches' figures, when `cargo bench` ran them after this comparison.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub criterion: Vec<crate::criterion::Bench>,
}

/// What a comparison concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The interval lies beyond the margin: one server is better.
    Different,
    /// The interval lies inside the margin: the servers are the same at this resolution.
    Equivalent,
    /// Neither: no measurable difference at this run's resolution.
    Undecided,
}

/// One comparison of two servers at one point on one figure: an entry of results.json's
/// `comparisons`, made by [`crate::compare`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The scenario.
    pub scenario: String,
    /// The point's label.
    pub point: String,
    /// The figure's name ("msgs/s", "server CPU us/msg").
    pub figure: String,
    /// The first server (in plan order).
    pub a: String,
    /// The second server.
    pub b: String,
    /// The median of the paired rounds' ratios, b over a.
    pub ratio: f64,
    /// The interval's lower end.
    pub low: f64,
    /// Its upper end.
    pub high: f64,
    /// The confidence of the interval.
    pub confidence: f64,
    /// The better server's name where the verdict is `different`, else null.
    pub better: Option<String>,
    /// Different, equivalent or undecided.
    pub verdict: Verdict,
    /// Paired rounds behind it.
    pub rounds: u32,
    /// Whether more of the figure is better.
    pub higher_is_better: bool,
}

/// The order one round of one point ran its servers in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundOrder {
    /// The scenario.
    pub scenario: String,
    /// The point's label.
    pub point: String,
    /// The round, 1-based.
    pub round: u32,
    /// The servers, in the order they ran.
    pub servers: Vec<String>,
}

/// How far a run got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Still running (a crash of the harness leaves this behind with everything up to then).
    Running,
    /// Every planned point ran (some may have failed; see the faults).
    Complete,
    /// Stopped early by Ctrl-C; what was measured is kept.
    Interrupted,
}

/// Where server and generator ran, and what that means for the figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlacementRecord {
    /// `split`, `shared`, `unpinned` or `custom` (CPU lists given by hand).
    pub mode: Placement,
    /// CPUs the server tree was pinned to; empty when not pinned.
    #[serde(default)]
    pub server_cpus: Vec<usize>,
    /// CPUs the generator's load threads were pinned to (`loadgen --cpus`); empty when not.
    #[serde(default)]
    pub generator_cpus: Vec<usize>,
    /// Schema version 1's single server CPU, read from old files only.
    #[serde(default, skip_serializing)]
    pub server_cpu: Option<usize>,
    /// Schema version 1's single generator CPU, read from old files only.
    #[serde(default, skip_serializing)]
    pub generator_cpu: Option<usize>,
}

/// One model's part of the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelResults {
    /// Model name (`fork`, `thread`, `mio`, `hybrid`...: benches/src/registry.rs).
    pub name: String,
    /// The server binary that ran ("external, at ADDR" for a server the user started).
    pub binary: String,
    /// Set for a server the user started (`--external`): the harness neither started nor
    /// stopped it, and sampled it only if its pid was given.
    #[serde(default)]
    pub external: Option<crate::external::External>,
    /// The model this server is a second instance of, for the control (`--control`): it is
    /// started and loaded exactly like that model, so its difference from it is noise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_of: Option<String>,
    /// One entry per scenario the model started, in plan order.
    pub scenarios: Vec<ScenarioResults>,
}

impl ModelResults {
    /// The model as the report names it: with its worker count when it has a pool of workers
    /// (`workers`, the point's own when its server recorded one, else any scenario's), so that
    /// a figure is never read as a model's best when it ran on one worker. The tables and the
    /// charts both name models this way.
    pub fn label(&self, workers: Option<u32>) -> String {
        match workers.or_else(|| self.scenarios.iter().find_map(|s| s.server.workers)) {
            Some(1) => format!("{} (1 worker)", self.name),
            Some(n) => format!("{} ({n} workers)", self.name),
            None => self.name.clone(),
        }
    }
}

/// One scenario against one freshly started server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioResults {
    /// The scenario's name.
    pub scenario: String,
    /// The server's life: start, baseline, stop, faults.
    pub server: ServerRecord,
    /// Latency scenario only: this model's closed-loop capacity, which its own fractions, or
    /// a common rate over every model's, refer to.
    pub capacity: Option<Capacity>,
    /// Why the scenario was not run against this server, if it was skipped (an external
    /// server cannot be restarted with flags or, without its pid, signalled).
    #[serde(default)]
    pub skipped: Option<String>,
    /// Points run so far, in plan order.
    pub points: Vec<PointResults>,
    /// What the harness could not do for this scenario but the rest ran ("system calls not
    /// counted: strace not installed").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// What happened to one server process.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ServerRecord {
    /// The address from its ready line.
    pub address: Option<String>,
    /// Its pid.
    pub pid: Option<u32>,
    /// The flags it was started with besides `--addr` (the model's and the scenario's).
    #[serde(default)]
    pub args: Vec<String>,
    /// Workers it was asked for, for a model with workers.
    #[serde(default)]
    pub workers: Option<u32>,
    /// The tree before any load: what an idle server costs.
    pub baseline: Option<Baseline>,
    /// Seconds from SIGTERM to exit; absent if it never got there.
    pub stop_seconds: Option<f64>,
    /// Exit code after SIGTERM (0 is clean).
    pub exit_code: Option<i32>,
    /// Signal that ended it, if a signal did.
    pub exit_signal: Option<i32>,
    /// Everything that went wrong; empty for a clean run.
    pub faults: Vec<Fault>,
    /// The last lines of the server's stderr (its exit summary when all went well).
    pub stderr_tail: Vec<String>,
}

/// The server tree with no connection open.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Baseline {
    /// Summed PSS in KiB.
    pub pss_kib: u64,
    /// Threads over the tree.
    pub threads: u32,
    /// Processes in the tree.
    pub processes: u32,
}

/// Something that went wrong with a server or the generator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fault {
    /// What kind of failure.
    pub kind: FaultKind,
    /// One readable sentence.
    pub detail: String,
    /// The last lines of the server's stderr when it happened.
    pub stderr_tail: Vec<String>,
}

/// The failures the harness tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// The binary is missing, exited early, or printed no ready line in time.
    StartFailed,
    /// The server exited while under load.
    Crashed,
    /// After SIGTERM it exited non-zero, by a signal, or not in time (then it was killed).
    UncleanExit,
    /// Processes of its tree outlived it (they were killed).
    LeftProcesses,
    /// The generator failed to run a point (its stderr tail is in `detail`).
    GeneratorFailed,
}

/// The throughput the latency fractions multiply.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Capacity {
    /// Closed-loop messages per second at the latency scenario's connection count.
    pub msgs_per_sec: f64,
    /// `scale` (the median of that scale point in this run) or `probe` (a short closed loop).
    pub source: CapacitySource,
}

/// Where a capacity figure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CapacitySource {
    /// The scale scenario's point at the same connection count.
    Scale,
    /// A short closed-loop run made just for this.
    Probe,
}

/// One point's repeats and their summary.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PointResults {
    /// What the generator was asked to do.
    pub point: Point,
    /// Open loop only: the total rate offered, messages per second.
    pub target_rate: Option<f64>,
    /// Open loop only: how `target_rate` was chosen (absent in files before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offered: Option<Offered>,
    /// Every repeat, in order.
    pub repeats: Vec<Repeat>,
    /// Median and spread over the repeats that produced figures.
    pub summary: Option<Summary>,
    /// Open loop only: latency percentiles read from the sum of the measured repeats'
    /// histograms, rather than the median of each repeat's percentiles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<Merged>,
    /// The server this point ran against, when the harness started it: its flags and CPUs
    /// (a scenario may restart the server between points with other ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<Setup>,
    /// The scenario whose identical point (same load, same server set-up, same model) measured
    /// these repeats; they were copied rather than measured again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copied_from: Option<String>,
}

/// How the harness started the server of a point.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setup {
    /// Its flags besides `--addr`: the model's, the scenario's and the point's.
    pub args: Vec<String>,
    /// The CPUs it was pinned to; empty when not pinned.
    pub cpus: Vec<usize>,
    /// The CPUs the generator was pinned to; empty when not pinned.
    #[serde(default)]
    pub generator_cpus: Vec<usize>,
    /// Workers it was asked for, for a model with workers.
    pub workers: Option<u32>,
}

/// One run of the generator against the server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Repeat {
    /// 1-based repeat number.
    pub index: u32,
    /// The round it belongs to (1-based; 0 for a run outside the rounds: a traced extra
    /// repeat, or a file older than schema version 3). Every server of the point ran once in
    /// each round, in the order `Results::order` records.
    #[serde(default)]
    pub round: u32,
    /// When the generator was started, RFC 3339 UTC with milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// Why this repeat was run again (its steal was above the bound, say): set on the repeat
    /// that was replaced, which the figures then leave out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced: Option<String>,
    /// How it ended.
    pub status: RepeatStatus,
    /// Wall seconds from spawning the generator to its exit.
    pub wall_seconds: f64,
    /// The figures the report uses; absent when the generator produced none.
    pub metrics: Option<Metrics>,
    /// The server tree's costs (CPU over the measured window, peaks over the whole point).
    pub server: Option<Usage>,
    /// Path of the generator's HdrHistogram log, relative to the run folder.
    pub hlog: Option<String>,
    /// The generator's JSON report as it wrote it (loadgen/SCHEMA.md), minus `histograms`
    /// (the same histograms are in the hlog file).
    pub loadgen: Option<loadgen::Report>,
    /// The server's system calls while loadgen ran, for a scenario that counts them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscalls: Option<crate::strace::Syscalls>,
    /// Whether strace was attached: then the figures are the tracer's, and the summary leaves
    /// them out unless every repeat was traced.
    #[serde(default, skip_serializing_if = "is_false")]
    pub traced: bool,
    /// SIGSTOPs the server got during the repeat (each one resumed), for a point that stops it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stops: Option<u32>,
    /// How much each kernel counter the scenario asked for grew over the repeat (machine-wide:
    /// /proc/net/netstat and /proc/net/snmp), by `Group:Name`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counters: BTreeMap<String, i64>,
    /// What disturbed the repeat: steal on the server's and the generator's CPUs, the
    /// generator's run delay, the harness's own CPU. Absent in results from before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disturbance: Option<crate::disturb::Disturbance>,
    /// With `--generator`: each generator's launcher, host, CPUs, load threads and start, and
    /// the spread of their starts ([`crate::generators::Generators`]). Absent for a local loadgen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generators: Option<crate::generators::Generators>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// How a repeat ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RepeatStatus {
    /// It ran its course.
    Ok,
    /// Ctrl-C cut it short; its figures cover what ran.
    Interrupted,
    /// The generator failed (see the scenario's faults).
    GeneratorFailed,
    /// The server died during it (see the scenario's faults).
    ServerDied,
}

/// The figures of one repeat that tables, charts and findings use.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Messages echoed per second over the measured window.
    pub msgs_per_sec: f64,
    /// Payload MiB echoed per second.
    pub mib_per_sec: f64,
    /// Messages sent in the window.
    pub sent: f64,
    /// Messages whose whole echo came back.
    pub received: f64,
    /// Connect, I/O, timeout and mismatch errors together.
    pub errors: f64,
    /// Latency percentiles in microseconds (corrected for coordinated omission in open loop).
    pub latency_us: Percentiles,
    /// Open loop: latency from the actual send instead of the intended one.
    pub latency_us_uncorrected: Option<Percentiles>,
    /// Churn: time to connect, in microseconds.
    pub connect_us: Option<Percentiles>,
    /// Generator CPU seconds (user+sys) of its load threads over the window and drain.
    pub generator_cpu_seconds: f64,
    /// Generator CPU microseconds per message received.
    pub generator_cpu_per_msg_us: Option<f64>,
    /// Fraction of the time loadgen's busiest load thread was runnable but waiting for its
    /// CPU: other work on the generator's CPU.
    #[serde(default)]
    pub generator_run_delay: Option<f64>,
    /// Whether the generator reported itself saturated: the figure is then its limit, not
    /// the server's.
    pub generator_saturated: bool,
    /// Server tree CPU seconds over the measured window.
    pub server_cpu_seconds: f64,
    /// Server CPU per second of window: 1.0 is one full core.
    pub server_cpu_utilization: f64,
    /// Server CPU microseconds per message received (per connection in churn).
    pub server_cpu_per_msg_us: Option<f64>,
    /// Server context switches (voluntary + involuntary) per message.
    pub server_ctx_switches_per_msg: Option<f64>,
    /// Peak summed PSS of the server tree, KiB.
    pub server_peak_pss_kib: f64,
    /// Peak threads of the server tree.
    pub server_peak_threads: f64,
    /// Peak processes of the server tree.
    pub server_peak_processes: f64,
}

/// The latency summary loadgen reports, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// 99.99th percentile.
    pub p9999: f64,
    /// Largest sample.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

impl From<&loadgen::stats::Latency> for Percentiles {
    /// loadgen's latency summary, figure for figure.
    fn from(l: &loadgen::stats::Latency) -> Percentiles {
        Percentiles {
            p50: l.p50,
            p90: l.p90,
            p99: l.p99,
            p999: l.p999,
            p9999: l.p9999,
            max: l.max,
            mean: l.mean,
        }
    }
}

/// A point's repeats boiled down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Repeats that produced figures.
    pub repeats: u32,
    /// The median of every figure over those repeats (each figure's own median).
    pub median: Metrics,
    /// (max - min) / median of the throughput over the repeats.
    pub spread: f64,
    /// The spread is above [`NOISY_SPREAD`].
    pub noisy: bool,
    /// Any repeat had a saturated generator.
    pub saturated: bool,
    /// Errors over all repeats.
    pub errors: f64,
}

impl Summary {
    /// Summarizes the repeats that have figures; `None` if none has.
    pub fn of(repeats: &[Repeat]) -> Option<Summary> {
        let all: Vec<&Metrics> = measured(repeats).filter_map(|r| r.metrics.as_ref()).collect();
        if all.is_empty() {
            return None;
        }
        let m = |f: &dyn Fn(&Metrics) -> f64| median(all.iter().map(|x| f(x)).collect());
        let opt = |f: &dyn Fn(&Metrics) -> Option<f64>| {
            let v: Vec<f64> = all.iter().filter_map(|x| f(x)).collect();
            (!v.is_empty()).then(|| median(v))
        };
        let pct = |f: &dyn Fn(&Metrics) -> Option<Percentiles>| {
            let v: Vec<Percentiles> = all.iter().filter_map(|x| f(x)).collect();
            (!v.is_empty()).then(|| median_percentiles(&v))
        };
        let median_metrics = Metrics {
            msgs_per_sec: m(&|x| x.msgs_per_sec),
            mib_per_sec: m(&|x| x.mib_per_sec),
            sent: m(&|x| x.sent),
            received: m(&|x| x.received),
            errors: m(&|x| x.errors),
            latency_us: median_percentiles(&all.iter().map(|x| x.latency_us).collect::<Vec<_>>()),
            latency_us_uncorrected: pct(&|x| x.latency_us_uncorrected),
            connect_us: pct(&|x| x.connect_us),
            generator_cpu_seconds: m(&|x| x.generator_cpu_seconds),
            generator_cpu_per_msg_us: opt(&|x| x.generator_cpu_per_msg_us),
            generator_run_delay: opt(&|x| x.generator_run_delay),
            generator_saturated: all.iter().any(|x| x.generator_saturated),
            server_cpu_seconds: m(&|x| x.server_cpu_seconds),
            server_cpu_utilization: m(&|x| x.server_cpu_utilization),
            server_cpu_per_msg_us: opt(&|x| x.server_cpu_per_msg_us),
            server_ctx_switches_per_msg: opt(&|x| x.server_ctx_switches_per_msg),
            server_peak_pss_kib: m(&|x| x.server_peak_pss_kib),
            server_peak_threads: m(&|x| x.server_peak_threads),
            server_peak_processes: m(&|x| x.server_peak_processes),
        };
        let rates: Vec<f64> = all.iter().map(|x| x.msgs_per_sec).collect();
        let (lo, hi) = rates.iter().fold((f64::MAX, f64::MIN), |(l, h), &r| (l.min(r), h.max(r)));
        let spread = if median_metrics.msgs_per_sec > 0.0 {
            (hi - lo) / median_metrics.msgs_per_sec
        } else {
            0.0
        };
        Some(Summary {
            repeats: all.len() as u32,
            noisy: spread > NOISY_SPREAD,
            spread,
            saturated: median_metrics.generator_saturated,
            errors: all.iter().map(|x| x.errors).sum(),
            median: median_metrics,
        })
    }
}

impl PointResults {
    /// How much the kernel counter `name` rose per measured repeat, on average; `None` when
    /// no repeat read it. (Machine-wide: see [`crate::counters`].)
    pub fn counter(&self, name: &str) -> Option<f64> {
        let v: Vec<i64> =
            measured(&self.repeats).filter_map(|r| r.counters.get(name).copied()).collect();
        (!v.is_empty()).then(|| v.iter().sum::<i64>() as f64 / v.len() as f64)
    }
}

/// The repeats whose figures describe the server: all of them, except a repeat that was run
/// again (`replaced`), and a traced repeat (whose figures are the tracer's) when the point has
/// untraced ones.
pub fn measured(repeats: &[Repeat]) -> impl Iterator<Item = &Repeat> {
    let untraced = repeats.iter().any(|r| !r.traced && r.metrics.is_some());
    repeats.iter().filter(move |r| r.replaced.is_none() && !(untraced && r.traced))
}

fn median_percentiles(v: &[Percentiles]) -> Percentiles {
    let m = |f: fn(&Percentiles) -> f64| median(v.iter().map(f).collect());
    Percentiles {
        p50: m(|p| p.p50),
        p90: m(|p| p.p90),
        p99: m(|p| p.p99),
        p999: m(|p| p.p999),
        p9999: m(|p| p.p9999),
        max: m(|p| p.max),
        mean: m(|p| p.mean),
    }
}

/// The median of `values` (the mean of the middle two for an even count); 0 when empty.
pub fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 { values[mid] } else { (values[mid - 1] + values[mid]) / 2.0 }
}

impl Results {
    /// The model named `name`, if it ran.
    pub fn model(&self, name: &str) -> Option<&ModelResults> {
        self.models.iter().find(|m| m.name == name)
    }

    /// Brings a file of an older schema version up to this one, in memory: version 1's single
    /// CPUs become lists, and points get the labels and x values their scenario gives them
    /// (`points`: every scenario's points of a profile, see [`crate::measure::all_points`]).
    pub fn upgrade(&mut self, points: impl Fn(crate::plan::Profile) -> Vec<Point>) {
        let p = &mut self.placement;
        if p.server_cpus.is_empty() && p.generator_cpus.is_empty() {
            p.server_cpus.extend(p.server_cpu);
            p.generator_cpus.extend(p.generator_cpu);
        }
        if self.plan.cpus == crate::plan::Cpus::default() {
            self.plan.cpus.server.clone_from(&p.server_cpus);
            self.plan.cpus.generator.clone_from(&p.generator_cpus);
        }
        // Version 1 did not record workers. Its worker models sized their pool by the CPUs
        // they were pinned to (`available_parallelism`), so that is what they ran with.
        if self.schema_version < 2 && !p.server_cpus.is_empty() {
            let cpus = p.server_cpus.len() as u32;
            for m in &mut self.models {
                let pool = crate::registry::find(&m.name)
                    .is_some_and(|r| matches!(r.cpus, crate::registry::CpuUse::Workers { .. }));
                for s in m.scenarios.iter_mut().filter(|_| pool) {
                    s.server.workers.get_or_insert(cpus);
                }
            }
        }
        // Version 1 points had no label: the scenario that made them names them again.
        let profile = self.plan.profile;
        let named: Vec<Point> = points(profile);
        let relabel = |p: &mut Point| {
            if p.label.is_empty()
                && let Some(n) = named.iter().find(|n| n.scenario == p.scenario && n.same_load(p))
            {
                p.label.clone_from(&n.label);
                p.x = n.x;
            }
        };
        self.plan.points.iter_mut().for_each(relabel);
        for m in &mut self.models {
            for s in &mut m.scenarios {
                s.points.iter_mut().for_each(|p| relabel(&mut p.point));
            }
        }
        self.schema_version = SCHEMA_VERSION;
    }
}

impl ModelResults {
    /// This model's results for the scenario named `scenario`, if it started.
    pub fn scenario(&self, scenario: &str) -> Option<&ScenarioResults> {
        self.scenarios.iter().find(|s| s.scenario == scenario)
    }
}

impl ScenarioResults {
    /// The summary of the point equal to `point`, if it has one.
    pub fn summary_of(&self, point: &Point) -> Option<&Summary> {
        self.points.iter().find(|p| &p.point == point).and_then(|p| p.summary.as_ref())
    }
}
