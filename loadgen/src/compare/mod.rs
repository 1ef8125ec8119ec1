//! `loadgen compare`: runs every server model under the same loads and writes a report.
//!
//! For each model and scenario the harness starts the model's binary (`echo-<model>`) on a free
//! loopback port, waits for its ready line, runs each point of the scenario by spawning the
//! `loadgen` binary with `--json` (and `--hlog`, `--cpus`), samples the server's process tree
//! from /proc meanwhile, and finally stops the server with SIGTERM and checks that it exits
//! cleanly. Every repeat is written out at once: `results.json` (schema in results/SCHEMA.md),
//! `results.csv`, the histogram logs, SVG charts and `report.md`, in `results/<date>-<host>/`
//! and mirrored into `results/latest/`.
//!
//! Code map: [`plan`] (scenarios, profiles, points, the time budget), [`server`] (the server
//! child), [`generator`] (the loadgen child, Ctrl-C), [`procstat`] (/proc sampling),
//! [`runner`] (the loop), [`extract`] (figures from loadgen's JSON), [`results`] (the schema),
//! [`output`] (the run folder), [`csv`], [`charts`], [`report`], [`findings`] and [`caveats`] (the prose),
//! [`why`] (explanations from secondary figures), [`text`] (number formatting).
//!
//! `cargo bench --bench compare` calls [`run`] in-process; `loadgen compare` calls [`main`].

pub mod caveats;
pub mod charts;
pub mod csv;
pub mod env;
pub mod extract;
pub mod findings;
pub mod generator;
pub mod output;
pub mod plan;
pub mod procstat;
pub mod report;
pub mod results;
pub mod runner;
pub mod server;
pub mod text;
pub mod why;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};

use plan::{MODELS, Placement, Plan, Profile, ProfileSpec, Scenario};
use results::{PlacementRecord, RunStatus};
use text::format_duration;

/// Flags of `loadgen compare` (the bench target builds the same from the environment).
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "loadgen compare",
    about = "Compare the echo server models under the same loads and write a report",
    // A flag given twice takes its last value, so callers can prepend defaults.
    args_override_self = true
)]
pub struct CompareArgs {
    /// Models to run, comma-separated; each is the binary `echo-<model>` in --bin-dir.
    #[arg(long, value_delimiter = ',', default_value = "fork,thread,mio,hybrid")]
    pub models: Vec<String>,
    /// Scenarios to run, comma-separated: scale, size, churn, idle, latency.
    #[arg(long, value_delimiter = ',', default_value = "scale,size,churn,idle,latency")]
    pub scenarios: Vec<String>,
    /// The quick profile: everything in about a minute, 1 repeat, rough numbers.
    #[arg(long, conflicts_with = "full")]
    pub quick: bool,
    /// The full profile: more points, longer windows, 5 repeats.
    #[arg(long)]
    pub full: bool,
    /// Runs of each point (default: the profile's, 3 in the standard one).
    #[arg(long)]
    pub repeats: Option<u32>,
    /// Measured window of each point, e.g. 2s (default: the profile's).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Warm-up before each window, e.g. 500ms (default: the profile's).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub warmup: Option<Duration>,
    /// Where server and generator run: split (CPU 0 and CPU 1), shared (both CPU 0), unpinned.
    #[arg(long, value_enum, default_value = "split")]
    pub placement: Placement,
    /// Connection counts of the scale scenario, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub connections: Option<Vec<u32>>,
    /// Message sizes of the size scenario in bytes, comma-separated (suffixes K, M allowed).
    #[arg(long, value_delimiter = ',', value_parser = parse_size)]
    pub sizes: Option<Vec<u64>>,
    /// Concurrent clients of the churn scenario, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub churn_clients: Option<Vec<u32>>,
    /// Idle connection counts of the idle scenario, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub idle: Option<Vec<u32>>,
    /// Fractions of capacity of the latency scenario, comma-separated (e.g. 0.25,0.5).
    #[arg(long, value_delimiter = ',')]
    pub fractions: Option<Vec<f64>>,
    /// Folder holding echo-* and loadgen (default: the folder of this executable).
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
    /// Folder the run folder and latest/ go into.
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub out: PathBuf,
    /// Print the plan and its time estimate, run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Rewrite report.md, results.csv and the charts of an existing run folder from its
    /// results.json, run nothing (after the report code improved, say).
    #[arg(long, value_name = "RUN_DIR")]
    pub rerender: Option<PathBuf>,
}

/// Everything [`run`] needs.
#[derive(Debug, Clone)]
pub struct Options {
    /// What to measure.
    pub plan: Plan,
    /// Folder holding the `echo-<model>` binaries and `loadgen`.
    pub bin_dir: PathBuf,
    /// Folder the run folder and `latest/` go into.
    pub out_dir: PathBuf,
    /// Install SIGINT/SIGTERM handlers so Ctrl-C ends the run gracefully.
    pub handle_ctrl_c: bool,
}

/// What a finished (or interrupted) run leaves.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The run folder.
    pub run_dir: PathBuf,
    /// The `latest/` copy.
    pub latest_dir: PathBuf,
    /// Everything measured.
    pub results: results::Results,
}

impl CompareArgs {
    /// Parses `argv` (the first item is the program name). `--help` prints and exits, as it
    /// does on the command line.
    pub fn from_argv<I, T>(argv: I) -> Result<CompareArgs>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::Parser;
        match CompareArgs::try_parse_from(argv) {
            Ok(args) => Ok(args),
            Err(e) if !e.use_stderr() => e.exit(),
            Err(e) => bail!("{}", e.to_string().trim_end()),
        }
    }

    /// Validates the flags into options.
    pub fn options(&self) -> Result<Options> {
        let profile = match (self.quick, self.full) {
            (true, _) => Profile::Quick,
            (_, true) => Profile::Full,
            _ => Profile::Standard,
        };
        let mut spec = ProfileSpec::of(profile);
        if let Some(r) = self.repeats {
            spec.repeats = r;
        }
        spec.duration = self.duration.unwrap_or(spec.duration);
        spec.warmup = self.warmup.unwrap_or(spec.warmup);
        let lists = [
            (&self.connections, &mut spec.scale_connections, "--connections"),
            (&self.churn_clients, &mut spec.churn_clients, "--churn-clients"),
            (&self.idle, &mut spec.idle_connections, "--idle"),
        ];
        for (given, field, flag) in lists {
            if let Some(v) = given {
                if v.is_empty() || v.contains(&0) {
                    bail!("{flag} needs counts above zero");
                }
                *field = v.clone();
            }
        }
        if let Some(sizes) = &self.sizes {
            if sizes.is_empty() || sizes.contains(&0) {
                bail!("--sizes needs sizes above zero");
            }
            spec.sizes = sizes.clone();
        }
        if let Some(f) = &self.fractions {
            if f.is_empty() || f.iter().any(|&x| !(x > 0.0 && x <= 2.0)) {
                bail!("--fractions must lie in (0, 2], e.g. 0.25,0.5,0.75");
            }
            spec.latency_fractions = f.clone();
        }
        if spec.repeats == 0 || spec.duration.is_zero() {
            bail!("--repeats and --duration must be above zero");
        }
        let mut models = Vec::new();
        for m in &self.models {
            let m = m.trim();
            let valid = !m.is_empty() && m.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !valid {
                bail!("--models: {m:?} is not a model name (try {})", MODELS.join(","));
            }
            models.push(m.to_string());
        }
        let mut scenarios = Vec::new();
        for s in &self.scenarios {
            match Scenario::parse(s) {
                Some(s) if !scenarios.contains(&s) => scenarios.push(s),
                Some(_) => {}
                None => {
                    bail!("--scenarios: unknown scenario {s:?} (scale, size, churn, idle, latency)")
                }
            }
        }
        // Run in the canonical order, whatever order they were typed in: latency needs scale's
        // capacity figure, so scale must come first.
        scenarios.sort();
        if models.is_empty() || scenarios.is_empty() {
            bail!("nothing to run: give at least one model and one scenario");
        }
        let bin_dir = match &self.bin_dir {
            Some(dir) => dir.clone(),
            None => default_bin_dir()?,
        };
        let plan = Plan::new(profile, &spec, models, scenarios, self.placement);
        Ok(Options { plan, bin_dir, out_dir: self.out.clone(), handle_ctrl_c: true })
    }
}

/// The folder of the running executable: after `cargo build --release` it holds every binary.
pub fn default_bin_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the running executable")?;
    Ok(exe.parent().map(Path::to_path_buf).unwrap_or_default())
}

/// Parses a byte size: `64`, `4K`, `4KiB`, `1M`, `1MiB` (binary multiples).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let number: u64 = t[..digits].parse().map_err(|_| format!("{text:?} is not a size"))?;
    let unit = match t[digits..].trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        other => return Err(format!("unknown size unit {other:?} (use K or M)")),
    };
    number.checked_mul(unit).ok_or_else(|| format!("{text:?} is too large"))
}

/// Prints what the plan will do and how long it should take.
pub fn print_plan(options: &Options) {
    let plan = &options.plan;
    eprintln!(
        "echobench compare: {} profile, models {}, scenarios {}",
        plan.profile.name(),
        plan.models.join(","),
        plan.scenarios.iter().map(|s| s.name()).collect::<Vec<_>>().join(","),
    );
    eprintln!(
        "  {} points x {} repeats x {} models = {} runs of {} warm-up + {}; placement {}",
        plan.points.len(),
        plan.repeats,
        plan.models.len(),
        plan.runs(),
        format_duration(plan.warmup),
        format_duration(plan.duration),
        plan.placement.name(),
    );
    eprintln!("  estimated time: {}", format_duration(plan.estimate()));
}

/// Refuses, before anything is written, a model whose binary is not in the bin dir: that is a
/// typo or a missing build, and a run of nothing would replace `results/latest` with an empty
/// report. (A binary that exists but fails to start is a fault the report records.)
fn check_models(options: &Options) -> Result<()> {
    let dir = &options.bin_dir;
    for model in &options.plan.models {
        if !dir.join(format!("echo-{model}")).is_file() {
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
    let placement = options.plan.placement;
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
            mode: placement,
            server_cpu: placement.server_cpu(),
            generator_cpu: placement.generator_cpu(),
        },
        environment,
        models: Vec::new(),
    };
    let mut runner = runner::Runner::new(options, &out, results);
    runner.run()?;
    out.finish();
    let results = runner.results;
    eprintln!(
        "echobench compare: {} in {}; report: {}",
        if results.status == RunStatus::Complete { "done" } else { "interrupted" },
        format_duration(Duration::from_secs_f64(results.elapsed_seconds)),
        out.latest_dir.join("report.md").display(),
    );
    Ok(Outcome { run_dir: out.run_dir, latest_dir: out.latest_dir, results })
}

/// Faults recorded anywhere in the run: servers that failed to start, crashed, exited
/// uncleanly or left processes behind, and generator failures.
pub fn fault_count(results: &results::Results) -> usize {
    let scenarios = results.models.iter().flat_map(|m| m.scenarios.iter());
    scenarios.map(|s| s.server.faults.len()).sum()
}

/// The `loadgen compare` subcommand; returns the exit status: 0 when every point ran, 130
/// after Ctrl-C (the report of what was measured is written either way). Fails after writing
/// the report if any fault was recorded, so scripts and CI notice.
pub fn main(args: &CompareArgs) -> Result<i32> {
    if let Some(dir) = &args.rerender {
        output::rerender(dir)?;
        eprintln!("rewrote {}", dir.join("report.md").display());
        return Ok(0);
    }
    let options = args.options()?;
    if args.dry_run {
        print_plan(&options);
        return Ok(0);
    }
    let outcome = run(&options)?;
    match fault_count(&outcome.results) {
        0 if outcome.results.status == RunStatus::Interrupted => Ok(130),
        0 => Ok(0),
        n => bail!("{n} fault(s) recorded; see the Faults section of the report"),
    }
}
