//! A comparison session from start to end: measure every point (the measuring side writes
//! results.json after every repeat), then render the report from what was measured, then
//! judge the run (faults, regressions against a baseline, rendering errors) for the exit
//! status.
//!
//! This is the top of the harness, with [`crate::cli`]: the one place that holds whole
//! scenarios and uses both layers. The runner is handed only the scenarios' measuring half
//! ([`Job`]); the report is drawn once the runner returns, whether the run completed or
//! Ctrl-C ended it, so a chart that fails to draw can cost neither a measurement nor the run.

use std::time::{Duration, SystemTime};

use anyhow::{Result, bail};

use crate::measure::{Job, Measure};
use crate::plan::Plan;
use crate::present::Scenario;
use crate::results::{PlacementRecord, RunStatus};
use crate::text::format_duration;
use crate::{baseline, env, generator, output, registry, render, results, runner, text};

/// Everything [`run`] needs.
#[derive(Debug, Clone)]
pub struct Options {
    /// What to measure.
    pub plan: Plan,
    /// The scenarios the plan's names refer to ([`crate::scenario::ALL`], or more in tests).
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
    /// What could not be rendered (a chart that failed to draw, say), one line each: the
    /// measurements are complete all the same, and report.md lists these at its end.
    pub render_errors: Vec<String>,
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
            .map(|m| format!(", control {}", crate::plan::control_name(m)))
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
    if let Some(remote) = &plan.remote {
        let addr = remote.server_addr.as_deref().unwrap_or("127.0.0.1");
        let launchers: Vec<String> = remote.generators.iter().map(|g| format!("`{g}`")).collect();
        match launchers.is_empty() {
            true => eprintln!("  servers bind {addr}; this machine's loadgen"),
            false => eprintln!(
                "  servers bind {addr}; {} generators, each repeat in shards: {} (each repeat \
                 also waits {} s for them to start)",
                launchers.len(),
                launchers.join(", "),
                crate::remote::START_LEAD.as_secs()
            ),
        }
    }
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
    // The runner sees only the scenarios' measuring half.
    let job = Job {
        plan: options.plan.clone(),
        scenarios: options.scenarios.iter().map(|&s| s as &dyn Measure).collect(),
        bin_dir: options.bin_dir.clone(),
    };
    let mut runner = runner::Runner::new(&job, &out, results);
    let measured = runner.run();
    out.finish();
    let results = runner.results;
    // Whatever the runner measured is in results.json by now; the report is drawn from it
    // even when the run failed part-way, and its errors are reported, not raised.
    let render_errors = render_run(&out, &results, options);
    measured?;
    eprintln!(
        "echobench compare: {} in {}; report: {}",
        if results.status == RunStatus::Complete { "done" } else { "interrupted" },
        format_duration(Duration::from_secs_f64(results.elapsed_seconds)),
        out.latest_dir.as_ref().unwrap_or(&out.run_dir).join("report.md").display(),
    );
    Ok(Outcome { run_dir: out.run_dir, latest_dir: out.latest_dir, results, render_errors })
}

/// Renders the run folder; returns (and prints, one line each) what
/// went wrong, which costs the report a part but never the run.
fn render_run(out: &output::Output, results: &results::Results, options: &Options) -> Vec<String> {
    let scenarios = &options.scenarios;
    let errors = render::render(&out.run_dir, results, scenarios, options.baseline.as_ref())
        .unwrap_or_else(|e| vec![format!("cannot render the report: {e:#}")]);
    for e in &errors {
        eprintln!("echobench: {e}");
    }
    errors
}

/// Faults recorded anywhere in the run: servers that failed to start, crashed, exited
/// uncleanly or left processes behind, and generator failures.
pub fn fault_count(results: &results::Results) -> usize {
    let scenarios = results.models.iter().flat_map(|m| m.scenarios.iter());
    scenarios.map(|s| s.server.faults.len()).sum()
}

/// Runs the comparison of `options` and returns the exit status: 0 when every point ran, 130
/// after Ctrl-C (the report of what was measured is written either way). Fails after writing
/// the report if any fault was recorded, or any part of the report could not be drawn, so
/// scripts and CI notice.
pub fn main(options: &Options) -> Result<i32> {
    let outcome = run(options)?;
    if let (Some(base), Some(pct)) = (&options.baseline, options.fail_on_regression) {
        check_regressions(&outcome.results, &options.scenarios, base, pct)?;
    }
    match (fault_count(&outcome.results), outcome.render_errors.len()) {
        (0, 0) if outcome.results.status == RunStatus::Interrupted => Ok(130),
        (0, 0) => Ok(0),
        (0, n) => bail!("{n} rendering error(s); every measurement is in results.json"),
        (n, _) => bail!("{n} fault(s) recorded; see the Faults section of the report"),
    }
}

/// Fails, naming them, when servers got worse relative to the reference than in `base`:
/// `--fail-on-regression`, for a user's own CI. A regression is a change called worse (the two
/// runs' intervals of the server's ratio to the reference are apart by more than
/// [`crate::compare::MARGIN`], the bad way) whose median ratio moved by more than `pct` percent. Fails
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
