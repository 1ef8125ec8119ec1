//! The harness's command line: `echobench compare [FLAGS]` and `echobench rerender DIR`.
//!
//! The flags are one clap definition ([`CompareArgs`]). The bench target (`cargo bench`)
//! forwards its arguments by reading that same definition, and each scenario's points flag
//! (`--connections`, `--sizes`...) is added from the scenario list ([`PointFlags`]), so a new
//! flag or a new scenario is never forgotten anywhere.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{ArgMatches, Args, FromArgMatches, Parser, Subcommand};

use crate::plan::{Cpus, Placement, Plan, Point, Profile};
use crate::scenario::{self, Scenario};
use crate::session::{self, Options};
use crate::{registry, render};

/// `echobench`: the comparison harness.
#[derive(Debug, Parser)]
#[command(name = "echobench", version, about = "Compare echo servers under the same loads")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the models under the same loads and write the comparison report.
    Compare(Box<CompareArgs>),
    /// Rewrite report.md, results.csv and the charts of a run folder from its results.json,
    /// measuring nothing (after the report code improved, say).
    Rerender {
        /// The run folder (e.g. results/latest).
        dir: PathBuf,
        #[command(flatten)]
        compare: BaselineArgs,
    },
}

/// The flags of `echobench compare` (and of `cargo bench --bench compare -- ...`).
#[derive(Debug, Clone, Parser)]
#[command(
    name = "echobench compare",
    about = "Compare the echo server models under the same loads and write a report",
    // A flag given twice takes its last value, so callers can prepend defaults.
    args_override_self = true
)]
pub struct CompareArgs {
    /// Models to run, comma-separated; each is a binary (`echo-<model>`) in --bin-dir. An
    /// empty list (`--models ''`) runs only the --external servers.
    #[arg(long, value_delimiter = ',', default_values_t = registry::names())]
    pub models: Vec<String>,
    /// A server you started, loaded like the models: NAME=ADDR, or NAME=ADDR,pid=PID to have
    /// its CPU and memory sampled too (repeatable).
    #[arg(long, value_name = "NAME=ADDR[,pid=PID]", action = clap::ArgAction::Append)]
    pub external: Vec<String>,
    /// Scenarios to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = scenario::names())]
    pub scenarios: Vec<String>,
    /// The quick profile: everything in about a minute, 1 repeat, rough numbers.
    #[arg(long, conflicts_with = "full")]
    pub quick: bool,
    /// The full profile: more points, longer windows, 5 repeats.
    #[arg(long)]
    pub full: bool,
    /// Rounds of each point (default: the profile's, 8 to 10 in the standard one); with
    /// --max-rounds, the least. In a round every server of the scenario runs the point once,
    /// in a shuffled order.
    #[arg(long, value_name = "N")]
    pub repeats: Option<u32>,
    /// Rounds of each point at most: more run while a pair of servers is undecided (and, in
    /// the standard profile, while the run is within its 20-minute budget). Default: the
    /// profile's, 10 in the standard one.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_rounds: Option<u32>,
    /// The seed of every round's shuffled order; a run's results.json records its seed, and
    /// the same seed repeats its orders (default: from the clock).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Run a second instance of MODEL as a server of its own, "MODEL (control)", to measure
    /// how far apart identical servers come out (the standard and full profiles run mio's, or
    /// the first model's when mio is not run); `none` turns it off.
    #[arg(long, value_name = "MODEL|none")]
    pub control: Option<String>,
    /// Measured window of each point, e.g. 2s (default: the profile's).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Warm-up before each window, e.g. 500ms (default: the profile's).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub warmup: Option<Duration>,
    /// Where server and generator run: split (the CPUs halved: the server the first half, the
    /// generator the rest; CPU 0 and CPU 1 on a 2-CPU machine), shared (both on the server's
    /// half), unpinned.
    #[arg(long, value_enum, default_value = "split")]
    pub placement: Placement,
    /// Pin the server to these CPUs instead (e.g. 0-7 or 0,2,4), overriding --placement.
    #[arg(long, value_name = "LIST", value_parser = parse_cpus)]
    pub server_cpus: Option<CpuList>,
    /// Pin the generator's load threads to these CPUs instead (one load thread each).
    #[arg(long, value_name = "LIST", value_parser = parse_cpus)]
    pub generator_cpus: Option<CpuList>,
    /// Workers for every model that has a pool of them (default: one per server CPU, or the
    /// model's own fixed count).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub workers: Option<u32>,
    /// A generator host, named by the command prefix that reaches it (`ssh load1`, `ip netns
    /// exec gen1`, `kubectl exec pod-0 --`, `srun -w node3`; split by shell rules). Repeat it
    /// for more: each repeat runs loadgen through every one with `--shard I/N`, one start
    /// time and `--json -`, and merges their reports. Needs --server-addr.
    #[arg(long, value_name = "LAUNCHER", action = clap::ArgAction::Append)]
    pub generator: Vec<String>,
    /// The address the servers bind and the generators dial (default 127.0.0.1).
    #[arg(long, value_name = "HOST")]
    pub server_addr: Option<String>,
    /// loadgen's path on the generator hosts (default: this machine's loadgen's path).
    #[arg(long, value_name = "PATH")]
    pub generator_bin: Option<PathBuf>,
    /// Each scenario's points.
    #[command(flatten)]
    pub points: PointFlags,
    /// Folder holding the servers' binaries and loadgen (default: this executable's folder).
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
    /// Folder the run folder and latest/ go into.
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub out: PathBuf,
    /// Print the plan and its time estimate, run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Comparing with an earlier run.
    #[command(flatten)]
    pub baseline: BaselineArgs,
}

/// What changed since an earlier run.
#[derive(Debug, Clone, Args)]
pub struct BaselineArgs {
    /// An earlier run's folder (e.g. results/2026-11-21-vm): every table gains a change
    /// column and the report a "Changes" section. Servers are compared through their ratio to
    /// a reference server measured in the same rounds, which cancels the machine's speed; a
    /// baseline without rounds (schema version 2 or older) cannot be compared so.
    #[arg(long, value_name = "DIR")]
    pub baseline: Option<PathBuf>,
    /// The server both runs are read through, which must have run in both (default: the
    /// run's control, or the control's model when the baseline has no control; a run without
    /// a control needs this flag).
    #[arg(long, value_name = "MODEL", requires = "baseline")]
    pub reference: Option<String>,
    /// Exit non-zero (after writing the report) when a server got worse relative to the
    /// reference: the two runs' intervals of its ratio to the reference are apart by more
    /// than the 3% margin, the bad way, and its median ratio moved by more than PCT percent
    /// (|new median ratio / old median ratio - 1|). Also exits non-zero, in one line, when the
    /// baseline cannot be compared (no rounds, no reference both runs have, or no point with
    /// the 8 rounds in each run a verdict needs).
    #[arg(long, value_name = "PCT", requires = "baseline", value_parser = parse_pct)]
    pub fail_on_regression: Option<f64>,
}

impl BaselineArgs {
    fn load(&self, scenarios: &[&dyn Scenario]) -> Result<Option<crate::baseline::Baseline>> {
        let reference = self.reference.as_deref();
        let load = |dir: &Path| crate::baseline::Baseline::load(dir, scenarios, reference);
        self.baseline.as_deref().map(load).transpose()
    }
}

fn parse_pct(text: &str) -> Result<f64, String> {
    match text.trim().trim_end_matches('%').parse::<f64>() {
        Ok(p) if (0.0..=1000.0).contains(&p) => Ok(p),
        _ => Err(format!("{text:?} is not a percentage from 0 to 1000")),
    }
}

/// A CPU list as typed (`0-3,8`), parsed. (A named type, so that clap takes the whole list
/// as one value rather than asking for the flag once per CPU.)
pub type CpuList = Vec<usize>;

/// The scenarios' points flags, one per scenario that has one, defined by the scenarios.
#[derive(Debug, Clone, Default)]
pub struct PointFlags {
    /// (scenario name, the flag's value) for each flag given.
    pub given: Vec<(&'static str, String)>,
}

impl FromArgMatches for PointFlags {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut flags = PointFlags::default();
        flags.update_from_arg_matches(matches)?;
        Ok(flags)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        for s in scenario::ALL {
            if let Some(flag) = s.flag()
                && let Some(value) = matches.get_one::<String>(flag.long)
            {
                self.given.retain(|(name, _)| *name != s.name());
                self.given.push((s.name(), value.clone()));
            }
        }
        Ok(())
    }
}

impl Args for PointFlags {
    fn augment_args(mut cmd: clap::Command) -> clap::Command {
        for flag in scenario::ALL.iter().filter_map(|s| s.flag()) {
            let arg = clap::Arg::new(flag.long).long(flag.long).value_name(flag.value_name);
            cmd = cmd.arg(arg.help(flag.help));
        }
        cmd
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        PointFlags::augment_args(cmd)
    }
}

impl CompareArgs {
    /// Parses `argv` (the first item is the program name). `--help` prints and exits, as it
    /// does on the command line.
    pub fn from_argv<I, T>(argv: I) -> Result<CompareArgs>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        match CompareArgs::try_parse_from(argv) {
            Ok(args) => Ok(args),
            Err(e) if !e.use_stderr() => e.exit(),
            Err(e) => bail!("{}", first_line(&e)),
        }
    }

    /// Validates the flags into options, with the built-in scenarios.
    pub fn options(&self) -> Result<Options> {
        self.options_with(scenario::ALL)
    }

    /// Validates the flags into options, with `scenarios` to choose from.
    pub fn options_with(&self, scenarios: &[&'static dyn Scenario]) -> Result<Options> {
        let profile = match (self.quick, self.full) {
            (true, _) => Profile::Quick,
            (_, true) => Profile::Full,
            _ => Profile::Standard,
        };
        let mut timing = profile.timing();
        // `--repeats N` alone asks for N rounds, no more; `--max-rounds` lets them grow.
        let most = match (self.repeats, self.max_rounds) {
            (_, Some(most)) => most,
            (Some(least), None) => least,
            (None, None) => timing.max_rounds,
        };
        timing.repeats = self.repeats.unwrap_or(timing.repeats);
        timing.max_rounds = most.max(timing.repeats);
        timing.duration = self.duration.unwrap_or(timing.duration);
        timing.warmup = self.warmup.unwrap_or(timing.warmup);
        if timing.repeats == 0 || timing.duration.is_zero() {
            bail!("--repeats and --duration must be above zero");
        }
        let mut models = Vec::new();
        for m in self.models.iter().filter(|m| !(self.models.len() == 1 && m.is_empty())) {
            let m = m.trim();
            let valid = !m.is_empty() && m.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !valid {
                bail!("--models: {m:?} is not a model name (try {})", registry::names().join(","));
            }
            if !models.iter().any(|x| x == m) {
                models.push(m.to_string());
            }
        }
        let mut external = Vec::new();
        for text in &self.external {
            let e = crate::target::External::parse(text)?;
            if models.contains(&e.name)
                || external.iter().any(|x: &crate::target::External| x.name == e.name)
            {
                bail!("--external {}: the name is taken already", e.name);
            }
            external.push(e);
        }
        let control = match self.control.as_deref().map(str::trim) {
            Some("none") => None,
            Some(m) if models.iter().any(|x| x == m) => Some(m.to_string()),
            Some(m) => {
                bail!("--control {m}: the control is a second {m}, so --models must run {m}")
            }
            None => timing.control.and_then(|c| {
                let default = models.iter().find(|m| *m == c).or(models.first());
                default.cloned()
            }),
        };
        let mut chosen: Vec<&'static dyn Scenario> = Vec::new();
        for name in &self.scenarios {
            let Some(s) = scenario::find(scenarios, name) else {
                let known: Vec<&str> = scenarios.iter().map(|s| s.name()).collect();
                bail!("--scenarios: unknown scenario {name:?} ({})", known.join(", "));
            };
            if !chosen.iter().any(|c| c.name() == s.name()) {
                chosen.push(s);
            }
        }
        // Run in the list's order, whatever order they were typed in: a scenario whose rates
        // refer to another's figure (latency to scale's) must come after it.
        let rank = |s: &&dyn Scenario| scenarios.iter().position(|x| x.name() == s.name());
        chosen.sort_by_key(rank);
        if (models.is_empty() && external.is_empty()) || chosen.is_empty() {
            bail!("nothing to run: give at least one model (or --external) and one scenario");
        }
        let mut points = Vec::new();
        for s in &chosen {
            let given = self.points.given.iter().find(|(n, _)| *n == s.name());
            points.extend(s.points(profile, given.map(|(_, v)| v.as_str()))?);
        }
        let (placement, cpus) = self.placement()?;
        let capacity_probes = chosen
            .iter()
            .filter_map(|s| s.capacity_point())
            .filter(|c| !points.iter().any(|p: &Point| p.same_load(c)))
            .count() as u32;
        // Each scenario chooses the models it runs; a model the registry does not know and a
        // server the user started are judged as the registry's `UNKNOWN`.
        // (An external server named like a model, `--external mio=...`, is still the user's
        // server, not the registry's: it must not be picked by a scenario that runs mio.)
        let control_name = control.as_deref().map(crate::plan::control_name);
        let servers: Vec<(&str, &registry::Model)> = models
            .iter()
            .map(|m| (m.as_str(), registry::find_or_unknown(m)))
            .chain(
                control
                    .iter()
                    .zip(&control_name)
                    .map(|(m, name)| (name.as_str(), registry::find_or_unknown(m))),
            )
            .chain(external.iter().map(|e| (e.name.as_str(), &registry::UNKNOWN)))
            .collect();
        let mut models_of = std::collections::BTreeMap::new();
        for s in &chosen {
            let runs: Vec<String> = servers
                .iter()
                .filter(|(_, model)| s.runs(model))
                .map(|(m, _)| m.to_string())
                .collect();
            if runs.len() < servers.len() {
                models_of.insert(s.name().to_string(), runs);
            }
        }
        let plan = Plan {
            profile,
            models,
            external,
            scenarios: chosen.iter().map(|s| s.name().to_string()).collect(),
            repeats: timing.repeats,
            max_rounds: Some(timing.max_rounds),
            budget: timing.budget,
            control,
            seed: self.seed.unwrap_or_else(clock_seed),
            warmup: timing.warmup,
            duration: timing.duration,
            placement,
            cpus,
            workers: self.workers,
            capacity_probes,
            points,
            models_of,
            remote: self.remote()?,
        };
        let bin_dir = match &self.bin_dir {
            Some(dir) => dir.clone(),
            None => default_bin_dir()?,
        };
        Ok(Options {
            plan,
            scenarios: scenarios.to_vec(),
            bin_dir,
            out_dir: self.out.clone(),
            handle_ctrl_c: true,
            baseline: self.baseline.load(scenarios)?,
            fail_on_regression: self.baseline.fail_on_regression,
        })
    }

    /// `--generator`, `--server-addr` and `--generator-bin`, checked.
    fn remote(&self) -> Result<Option<crate::generators::Remote>> {
        let remote = crate::generators::Remote::from_flags(
            &self.generator,
            self.server_addr.as_deref(),
            self.generator_bin.as_deref(),
        )?;
        if let Some(r) = &remote
            && !r.generators.is_empty()
            && r.server_addr.is_none()
        {
            // Loopback here is not loopback on another machine.
            bail!(
                "--generator needs --server-addr: the address the generators reach the servers at"
            );
        }
        Ok(remote)
    }

    /// The placement and its CPU lists, checked against the CPUs this process may use.
    fn placement(&self) -> Result<(Placement, Cpus)> {
        let allowed = crate::env::allowed_cpus()?;
        let mut cpus = self.placement.cpus(&allowed);
        let mut placement = self.placement;
        for (given, list, flag) in [
            (&self.server_cpus, &mut cpus.server, "--server-cpus"),
            (&self.generator_cpus, &mut cpus.generator, "--generator-cpus"),
        ] {
            if let Some(given) = given {
                if let Some(cpu) = given.iter().find(|c| !allowed.contains(c)) {
                    bail!("{flag}: CPU {cpu} is not one this process may run on ({allowed:?})");
                }
                list.clone_from(given);
                placement = Placement::Custom;
            }
        }
        Ok((placement, cpus))
    }
}

/// Parses a CPU list: `3`, `0,2`, `0-7`, `0-3,8-11`.
pub fn parse_cpus(text: &str) -> Result<Vec<usize>, String> {
    let mut cpus = Vec::new();
    for part in text.split(',').map(str::trim) {
        let bad = || format!("{part:?} is not a CPU or a range like 0-3");
        let (lo, hi): (usize, usize) = match part.split_once('-') {
            Some((a, b)) => (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?),
            None => {
                let c = part.parse().map_err(|_| bad())?;
                (c, c)
            }
        };
        if lo > hi || hi >= 4096 {
            return Err(bad());
        }
        cpus.extend(lo..=hi);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// A seed from the clock, for a run not given `--seed`.
fn clock_seed() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.map_or(0, |d| d.as_nanos() as u64)
}

/// The folder of the running executable: after `cargo build --release` it holds every binary.
pub fn default_bin_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the running executable")?;
    Ok(exe.parent().map(Path::to_path_buf).unwrap_or_default())
}

/// clap's first line of an error (its messages span several lines and a usage block).
fn first_line(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
    let mut first = lines.next().unwrap_or("invalid arguments").to_owned();
    // "the following required arguments were not provided:" names them below.
    if first.ends_with(':')
        && let Some(next) = lines.next()
    {
        first = format!("{first} {next}");
    }
    first
}

/// `echobench rerender DIR [--baseline OTHER [--fail-on-regression PCT]]`.
fn rerender(dir: &Path, args: &BaselineArgs) -> Result<i32> {
    let baseline = args.load(scenario::ALL)?;
    let (results, errors) = render::rerender(dir, scenario::ALL, baseline.as_ref())?;
    for e in &errors {
        eprintln!("echobench: {e}");
    }
    eprintln!("rewrote {}", dir.join("report.md").display());
    if let (Some(base), Some(pct)) = (&baseline, args.fail_on_regression) {
        session::check_regressions(&results, scenario::ALL, base, pct)?;
    }
    if !errors.is_empty() {
        bail!("{} rendering error(s); see the end of report.md", errors.len());
    }
    Ok(0)
}

/// The `echobench` binary: parses, runs, and returns the exit status (2 for bad flags, 1 for
/// a failed run, 130 after Ctrl-C).
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            eprintln!("echobench: {}", first_line(&e));
            return 2;
        }
    };
    let outcome = match cli.command {
        Command::Compare(args) => match args.options() {
            Ok(options) if args.dry_run => {
                session::print_plan(&options);
                Ok(0)
            }
            Ok(options) => session::main(&options),
            Err(e) => {
                eprintln!("echobench: {e:#}");
                return 2;
            }
        },
        Command::Rerender { dir, compare } => rerender(&dir, &compare),
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("echobench: {e:#}");
            1
        }
    }
}
