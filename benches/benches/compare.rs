//! `cargo bench --bench compare`: every server model under the same loads, and the report.
//!
//! This target builds the release binaries of every model in the registry and of loadgen (a
//! nested `cargo build --release`), then runs the comparison harness in-process
//! (`harness::run`, the same code as the `echobench compare` command) with them, writing
//! `results/<date>-<host>/` and `results/latest/` (or under `$ECHOBENCH_RESULTS`). The harness spawns each server and the
//! generator as child processes, so this process only orchestrates and samples /proc.
//!
//! Profiles and options, from the environment (cargo bench passes no flags of its own):
//! - `ECHOBENCH_QUICK=1`: everything in about a minute (CI's smoke run).
//! - `ECHOBENCH_FULL=1`: more points, longer windows, 5 repeats.
//! - default: the standard matrix, 8 to 10 paired rounds, about 23 minutes on 2 cores.
//! - `ECHOBENCH_ARGS="--models mio,thread --scenarios scale"`: any `echobench compare` flags.
//!
//! Flags after `--` work too (`cargo bench --bench compare -- --models mio`). Since plain
//! `cargo bench -- <filter>` hands the filter to every bench target, this one runs only if the
//! filter matches "compare", and ignores criterion's own flags.
//!
//! Exit status: non-zero if the binaries do not build, the run cannot start, or a fault
//! (a server that failed to start, crashed or did not exit cleanly) was recorded, after the
//! report of everything else has been written; 130 after Ctrl-C (report written too).

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::CommandFactory;
use harness::binaries::{build_release_binaries, env_flag, release_dir, results_root};
use harness::results::RunStatus;
use harness::{self as compare, CompareArgs, registry};

/// Criterion flags that take a value: their value is not a filter.
const CRITERION_VALUE_FLAGS: [&str; 14] = [
    "--save-baseline",
    "--baseline",
    "--baseline-lenient",
    "--load-baseline",
    "--sample-size",
    "--warm-up-time",
    "--measurement-time",
    "--nresamples",
    "--noise-threshold",
    "--confidence-level",
    "--significance-level",
    "--profile-time",
    "--plotting-backend",
    "--output-format",
];

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("compare: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<ExitCode> {
    let Some(flags) = flags_from_command_line() else { return Ok(ExitCode::SUCCESS) };
    let bin_dir = release_dir().context("cannot find the release folder")?;
    // Defaults first: flags given later (ECHOBENCH_ARGS, then the command line) override them.
    let mut argv = vec!["compare".to_string()];
    argv.extend(["--bin-dir".into(), bin_dir.display().to_string()]);
    argv.extend(["--out".into(), results_root().display().to_string()]);
    if env_flag("ECHOBENCH_QUICK") {
        argv.push("--quick".into());
    } else if env_flag("ECHOBENCH_FULL") {
        argv.push("--full".into());
    }
    if let Ok(extra) = std::env::var("ECHOBENCH_ARGS") {
        argv.extend(extra.split_whitespace().map(String::from));
    }
    argv.extend(flags);
    let args = CompareArgs::from_argv(argv)?;
    let options = args.options()?;
    if args.dry_run {
        // Nothing to measure, so nothing to build.
        compare::print_plan(&options);
        return Ok(ExitCode::SUCCESS);
    }
    let packages = registry::packages();
    eprintln!("compare: building the release binaries ({})", packages.join(", "));
    build_release_binaries(&packages).context("cannot build the binaries")?;
    let outcome = compare::run(&options)?;
    if let (Some(base), Some(pct)) = (&options.baseline, options.fail_on_regression) {
        compare::check_regressions(&outcome.results, &options.scenarios, base, pct)?;
    }
    let faults = compare::fault_count(&outcome.results);
    if faults > 0 {
        eprintln!("compare: {faults} fault(s) recorded; see the Faults section of the report");
        return Ok(ExitCode::FAILURE);
    }
    if !outcome.render_errors.is_empty() {
        // Each was printed as it happened; every measurement is in results.json regardless.
        let n = outcome.render_errors.len();
        eprintln!("compare: {n} rendering error(s); see the end of report.md");
        return Ok(ExitCode::FAILURE);
    }
    if outcome.results.status == RunStatus::Interrupted {
        // As a shell reports a program ended by Ctrl-C; the report was written all the same.
        return Ok(ExitCode::from(130));
    }
    Ok(ExitCode::SUCCESS)
}

/// Sorts this bench's command line (after cargo's `--bench`) into harness flags. `None` means
/// "do not run": `--list` was asked, or a filter names another bench.
fn flags_from_command_line() -> Option<Vec<String>> {
    // `cargo bench` passes `--bench`; `cargo test --benches` (or `--all-targets`) runs bench
    // targets without it, as a smoke test. A ten-minute comparison has no place there, so
    // then only the plan is checked and printed, as criterion runs each bench once.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("compare: run by cargo test, not cargo bench: checking the plan only");
        return Some(vec!["--dry-run".into()]);
    }
    // Which flags are the harness's, and which of them take a value, comes from its own clap
    // definition: a flag added there is forwarded here without a change to this file.
    let command = CompareArgs::command();
    let harness_flag = |name: &str| -> Option<bool> {
        if name == "--help" || name == "-h" {
            return Some(false);
        }
        let long = name.strip_prefix("--")?;
        let arg = command.get_arguments().find(|a| a.get_long() == Some(long))?;
        Some(arg.get_action().takes_values())
    };
    let mut flags = Vec::new();
    let mut filters = Vec::new();
    let mut ignored = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let name = arg.split('=').next().unwrap_or_default().to_string();
        if name == "--bench" {
            continue;
        }
        if name == "--list" {
            println!("compare: bench");
            return None;
        }
        let inline = arg.contains('=');
        if let Some(takes_value) = harness_flag(&name) {
            flags.push(arg);
            if takes_value && !inline {
                flags.extend(args.next());
            }
        } else if CRITERION_VALUE_FLAGS.contains(&name.as_str()) {
            ignored.push(arg);
            if !inline {
                ignored.extend(args.next());
            }
        } else if arg.starts_with('-') {
            // cargo bench hands every bench target the same arguments, so criterion's own
            // switches arrive here too: note them and go on.
            ignored.push(arg);
        } else {
            filters.push(arg);
        }
    }
    if !filters.is_empty() && !filters.iter().any(|f| "compare".contains(f.as_str())) {
        eprintln!("compare: skipped (the filter {filters:?} does not match \"compare\")");
        return None;
    }
    if !ignored.is_empty() {
        eprintln!("compare: ignoring {ignored:?} (not flags of the comparison harness)");
    }
    Some(flags)
}
