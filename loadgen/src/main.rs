//! `loadgen`: drive an echo server and measure it honestly.
//!
//! `loadgen --addr 127.0.0.1:7000 --connections 100 --duration 10s` (see loadgen/README.md).

use std::io::IsTerminal;
use std::process;

use anyhow::{Context, Result};
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};
use loadgen::{Cancel, Config};
use nix::sys::signal::{SigSet, Signal};

#[derive(Debug, Parser)]
#[command(
    name = "loadgen",
    version,
    about = "Echo load generator: closed loop, open loop (coordinated-omission corrected), churn",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Without a subcommand, the flags are those of `run`.
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply load and measure (the default when no subcommand is given).
    // Boxed: the configuration is far larger than the other subcommands' arguments.
    Run(Box<RunArgs>),
    /// Combine interval logs or JSON reports of runs from several machines into one set of
    /// percentiles.
    Merge(loadgen::merge::MergeArgs),
    // Adding a subcommand is a three-line change: a variant here, its arm in `main` below,
    // and its module in the library, as `Merge(loadgen::merge::MergeArgs)` with
    // `Command::Merge(args) => loadgen::merge::main(&args)`. (The comparison of the suite's
    // servers is not a subcommand: it is the `echobench` harness in benches/.)
}

#[derive(Debug, Clone, clap::Args)]
struct RunArgs {
    #[command(flatten)]
    config: Config,
    /// Never draw the progress bar (it is drawn only when stderr is a terminal anyway).
    #[arg(long)]
    no_progress: bool,
}

fn main() {
    let cli = parse();
    let outcome = match cli.command.unwrap_or(Command::Run(Box::new(cli.run))) {
        Command::Run(args) => run(*args),
        Command::Merge(args) => loadgen::merge::main(&args),
    };
    match outcome {
        Ok(code) => process::exit(code),
        Err(err) => {
            eprintln!("loadgen: error: {err:#}");
            process::exit(1);
        }
    }
}

/// Runs a load, prints the summary, and exits 130 if Ctrl-C cut it short.
fn run(args: RunArgs) -> Result<i32> {
    let mut config = args.config;
    config.progress = !args.no_progress && std::io::stderr().is_terminal();
    // Impossible flags are a usage error (status 2, like clap's), not a failed run.
    if let Err(err) = config.validate() {
        eprintln!("loadgen: error: {err:#}");
        return Ok(2);
    }
    let cancel = Cancel::new();
    cancel_on_signals(&cancel)?;
    let report = loadgen::run(&config, &cancel)?;
    // `--json -` has written the report to stdout; everything else goes to stderr then.
    if config.json.as_deref() == Some(std::path::Path::new("-")) {
        eprint!("{}", loadgen::summary::render(&report));
    } else {
        print!("{}", loadgen::summary::render(&report));
    }
    Ok(if report.run.interrupted { 130 } else { 0 })
}

/// SIGINT and SIGTERM set `cancel` (the run then stops and reports); a second one exits at
/// once. The signals are blocked in every thread and taken by one thread in `sigwait`, so no
/// handler runs in the middle of a load thread's work.
fn cancel_on_signals(cancel: &Cancel) -> Result<()> {
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    // Blocked here, before any other thread exists, so every thread inherits the mask.
    signals.thread_block().context("cannot block SIGINT and SIGTERM")?;
    let cancel = cancel.clone();
    std::thread::Builder::new()
        .name("loadgen-signals".to_owned())
        .spawn(move || {
            let mut seen = 0;
            while let Ok(signal) = signals.wait() {
                seen += 1;
                if seen > 1 {
                    eprintln!("loadgen: {signal} again, exiting without a report");
                    process::exit(130);
                }
                eprintln!("loadgen: {signal}, stopping; results so far follow");
                cancel.cancel();
            }
        })
        .context("cannot start the signal thread")?;
    Ok(())
}

/// Parses the command line, or prints one line of error and exits with status 2 (clap's own
/// messages span several lines); `--help` and `--version` print in full.
fn parse() -> Cli {
    let parsed = Cli::command().try_get_matches().and_then(|matches| {
        let mut cli = Cli::from_arg_matches(&matches)?;
        udp_default_timeout(&mut cli, &matches);
        Ok(cli)
    });
    match parsed {
        Ok(cli) => cli,
        Err(err) => match err.kind() {
            clap::error::ErrorKind::DisplayHelp
            | clap::error::ErrorKind::DisplayVersion
            | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => err.exit(),
            _ => {
                let rendered = err.render().to_string();
                let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
                let mut first = lines.next().unwrap_or("invalid arguments").to_owned();
                // "the following required arguments were not provided:" names them below.
                if first.ends_with(':')
                    && let Some(next) = lines.next()
                {
                    first = format!("{first} {next}");
                }
                eprintln!("loadgen: {first}");
                process::exit(2);
            }
        },
    }
}

/// With a `udp:` address and no `--timeout`, UDP's own default ([`loadgen::udp::DEFAULT_TIMEOUT`]):
/// a datagram that is not back by then is lost, and 5 s would hold a closed loop's slot (and
/// every run's drain) that long for each one.
fn udp_default_timeout(cli: &mut Cli, matches: &ArgMatches) {
    let (args, matches) = match (&mut cli.command, matches.subcommand()) {
        (None, _) => (&mut cli.run, matches),
        (Some(Command::Run(args)), Some(("run", sub))) => (&mut **args, sub),
        _ => return,
    };
    if matches.value_source("timeout") == Some(ValueSource::DefaultValue)
        && args.config.addr.starts_with("udp:")
    {
        args.config.timeout = loadgen::udp::DEFAULT_TIMEOUT;
    }
}
