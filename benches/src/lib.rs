//! The comparison harness: every server model under the same loads, and the report.
//!
//! For each model and scenario the harness starts the model's binary on a free loopback port,
//! waits for its ready line, runs each point of the scenario by spawning the `loadgen` binary
//! with `--json` (and `--hlog`, `--cpus`), samples the server's process tree from /proc
//! meanwhile, and finally stops the server with SIGTERM and checks that it exits cleanly.
//! Every repeat is written out at once: `results.json` (schema in results/SCHEMA.md),
//! `results.csv`, the histogram logs, SVG charts and `report.md`, in `results/<date>-<host>/`
//! and mirrored into `results/latest/` (except by a quick run, whose rough figures never
//! replace the newest trustworthy report).
//!
//! Code map: [`registry`] (the models), [`scenario`] (one file per scenario, and the list),
//! [`plan`] (profiles, placement, the time budget), [`point`] (what one point asks for),
//! [`cli`] (the flags), [`server`] (the server child), [`generator`] (the loadgen child,
//! Ctrl-C), [`stopper`] (SIGSTOP schedules, always resumed), [`counters`] (the kernel's
//! network counters), [`procstat`] (/proc sampling), [`runner`] (the loop), [`metrics`] (figures from loadgen's report),
//! [`results`] (the schema), [`output`] (the run folder), [`csv`], [`charts`], [`report`],
//! [`findings`] (the pieces of the prose) and [`caveats`], [`text`] (number formatting),
//! [`binaries`] (what the bench targets build).
//!
//! `cargo bench --bench compare` calls [`run`] in-process; the `echobench` binary calls
//! [`cli::main`].
//!
//! Adding a model: its crate in `servers/`, its `tests/conformance.rs`, and one entry in
//! [`registry::MODELS`]. Adding a scenario: one file in `src/scenario/` implementing
//! [`scenario::Scenario`], and one entry in [`scenario::ALL`].

pub mod baseline;
pub mod binaries;
pub mod caveats;
pub mod charts;
pub mod cli;
pub mod compare;
pub mod counters;
pub mod criterion;
pub mod csv;
pub mod env;
pub mod findings;
pub mod generator;
pub mod metrics;
pub mod noise;
pub mod output;
pub mod plan;
pub mod point;
pub mod procstat;
pub mod registry;
pub mod report;
pub mod results;
pub mod runner;
pub mod scenario;
pub mod server;
pub mod stopper;
pub mod strace;
pub mod target;
pub mod text;

use std::time::{Duration, SystemTime};

use anyhow::{Result, bail};

pub use cli::CompareArgs;
use plan::Plan;
use results::{PlacementRecord, RunStatus};
use scenario::Scenario;
use text::format_duration;

/// Everything [`run`] needs.
#[derive(Debug, Clone)]
pub struct Options {
    /// What to measure.
    pub plan: Plan,
    /// The scenarios the plan's names refer to ([`scenario::ALL`], or more in tests).
    pub scenarios: Vec<&'static dyn Scenario>,
    /// Folder holding the servers' binaries and `loadgen`.
    pub bin_dir: std::path::PathBuf,
    /// Folder the run folder and `latest/` go into.
    pub out_dir: std::path::PathBuf,
    /// Install SIGINT/SIGTERM handlers so Ctrl-C ends the run gracefully.
    pub handle_ctrl_c: bool,
    /// A stored run to compare every point with (`--baseline`).
    pub baseline: Option<baseline::Baseline>,
    /// Fail (after writing the report) when a server got worse than in the baseline, relative
    /// to the reference, by more than this many percent (`--fail-on-regression`; see
    /// [`check_regressions`]).
    pub fail_on_regression: Option<f64>,
}

/// What a finished (or interrupted) run leaves.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The run folder.
    pub run_dir: std::path::PathBuf,
    /// The `latest/` copy; `None` for a quick run, which does not touch it.
    pub latest_dir: Option<std::path::PathBuf>,
    /// Everything measured.
    pub results: results::Results,
}

/// Prints what the plan will do and how long it should take.
pub fn print_plan(options: &Options) {
    let plan = &options.plan;
    eprintln!(
        "echobench compare: {} profile, models {}{}{}, scenarios {}",
        plan.profile.name(),
        plan.models.join(","),
        plan.control
            .iter()
            .map(|m| format!(", control {}", plan::control_name(m)))
            .collect::<String>(),
        plan.external
            .iter()
            .map(|e| format!(", external {} at {}", e.name, e.addr))
            .collect::<String>(),
        plan.scenarios.join(","),
    );
    let most = plan.max_rounds.unwrap_or(plan.repeats);
    let extra = match (most > plan.repeats, plan.budget) {
        (false, _) => String::new(),
        (true, Some(b)) => {
            format!(", up to {most} while a pair is undecided within {}", { format_duration(b) })
        }
        (true, None) => format!(", up to {most} while a pair is undecided"),
    };
    eprintln!(
        "  {} points, {} rounds each{extra} (unless a scenario says fewer), every server once a \
         round in a shuffled order (seed {}); {} servers: {} runs of {} warm-up + {}; \
         placement {} (server {}, generator {})",
        plan.points.len(),
        plan.repeats,
        plan.seed,
        plan.servers(),
        plan.runs(),
        format_duration(plan.warmup),
        format_duration(plan.duration),
        plan.placement.name(),
        text::cpu_list(&plan.cpus.server),
        text::cpu_list(&plan.cpus.generator),
    );
    eprintln!("  estimated time: {}", format_duration(plan.estimate()));
}

/// Refuses, before anything is written, a model whose binary is not in the bin dir: that is a
/// typo or a missing build, and a run of nothing would replace `results/latest` with an empty
/// report. (A binary that exists but fails to start is a fault the report records.)
fn check_models(options: &Options) -> Result<()> {
    let dir = &options.bin_dir;
    for model in &options.plan.models {
        if !dir.join(registry::binary(model)).is_file() {
            let mut here: Vec<String> = std::fs::read_dir(dir)
                .map(|entries| {
                    entries
                        .flatten()
                        .filter_map(|e| {
                            e.file_name().to_str()?.strip_prefix("echo-").map(String::from)
                        })
                        .filter(|name| !name.contains('.'))
                        .collect()
                })
                .unwrap_or_default();
            here.sort();
            bail!(
                "--models: no echo-{model} in {} (models there: {})",
                dir.display(),
                if here.is_empty() { "none".to_owned() } else { here.join(", ") }
            );
        }
    }
    Ok(())
}

/// Runs the comparison and writes its report. Returns once every point ran, or after Ctrl-C
/// with what was measured.
pub fn run(options: &Options) -> Result<Outcome> {
    if options.handle_ctrl_c {
        generator::install_interrupt_handler()?;
    }
    let loadgen = generator::loadgen_binary(&options.bin_dir);
    if !loadgen.is_file() {
        bail!(
            "{} not found: build the binaries first (cargo build --release --bins) or pass --bin-dir",
            loadgen.display()
        );
    }
    check_models(options)?;
    print_plan(options);
    let environment = env::Environment::detect();
    let out = output::Output::create(
        &options.out_dir,
        &environment.host,
        options.plan.profile,
        SystemTime::now(),
    )?;
    eprintln!("  writing to {}", out.run_dir.display());
    let plan = &options.plan;
    let results = results::Results {
        schema_version: results::SCHEMA_VERSION,
        harness_version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: runner::now_rfc3339(),
        finished_at: None,
        status: RunStatus::Running,
        elapsed_seconds: 0.0,
        estimated_seconds: options.plan.estimate().as_secs_f64(),
        harness_cpu_seconds: 0.0,
        plan: options.plan.clone(),
        placement: PlacementRecord {
            mode: plan.placement,
            server_cpus: plan.cpus.server.clone(),
            generator_cpus: plan.cpus.generator.clone(),
            server_cpu: None,
            generator_cpu: None,
        },
        environment,
        models: Vec::new(),
        seed: None,
        order: Vec::new(),
        comparisons: Vec::new(),
        criterion: Vec::new(),
    };
    let mut runner = runner::Runner::new(options, &out, results);
    runner.run()?;
    out.finish();
    let results = runner.results;
    eprintln!(
        "echobench compare: {} in {}; report: {}",
        if results.status == RunStatus::Complete { "done" } else { "interrupted" },
        format_duration(Duration::from_secs_f64(results.elapsed_seconds)),
        out.latest_dir.as_ref().unwrap_or(&out.run_dir).join("report.md").display(),
    );
    Ok(Outcome { run_dir: out.run_dir, latest_dir: out.latest_dir, results })
}

/// Faults recorded anywhere in the run: servers that failed to start, crashed, exited
/// uncleanly or left processes behind, and generator failures.
pub fn fault_count(results: &results::Results) -> usize {
    let scenarios = results.models.iter().flat_map(|m| m.scenarios.iter());
    scenarios.map(|s| s.server.faults.len()).sum()
}

/// Runs the comparison of `options` and returns the exit status: 0 when every point ran, 130
/// after Ctrl-C (the report of what was measured is written either way). Fails after writing
/// the report if any fault was recorded, so scripts and CI notice.
pub fn main(options: &Options) -> Result<i32> {
    let outcome = run(options)?;
    if let (Some(base), Some(pct)) = (&options.baseline, options.fail_on_regression) {
        check_regressions(&outcome.results, &options.scenarios, base, pct)?;
    }
    match fault_count(&outcome.results) {
        0 if outcome.results.status == RunStatus::Interrupted => Ok(130),
        0 => Ok(0),
        n => bail!("{n} fault(s) recorded; see the Faults section of the report"),
    }
}

/// Fails, naming them, when servers got worse relative to the reference than in `base`:
/// `--fail-on-regression`, for a user's own CI. A regression is a change called worse (the two
/// runs' intervals of the server's ratio to the reference are apart by more than
/// [`compare::MARGIN`], the bad way) whose median ratio moved by more than `pct` percent. Fails
/// too, in one line, when the runs cannot be compared that way (see [`baseline::regressions`]):
/// a check that cannot see a regression must not pass as if it had looked.
pub fn check_regressions(
    results: &results::Results,
    scenarios: &[&dyn Scenario],
    base: &baseline::Baseline,
    pct: f64,
) -> Result<()> {
    let worse = match baseline::regressions(results, scenarios, base, pct) {
        Ok(worse) => worse,
        Err(why) => {
            bail!("--fail-on-regression: cannot compare with {}: {why}", base.dir.display())
        }
    };
    if worse.is_empty() {
        return Ok(());
    }
    bail!(
        "{} point(s) regressed by more than {pct}% relative to the reference: {}",
        worse.len(),
        worse.join("; ")
    )
}
