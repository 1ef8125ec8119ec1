//! The flags every server shares, and how a server reports a fatal error.
//!
//! A user who mistypes a flag should see one line that says what is wrong, not a usage
//! screen, and never a panic. clap's own error output spans several lines (the error, a
//! blank line, a hint), so [`parse`] keeps only the first and exits with status 2, the
//! conventional status for bad usage. `--help` and `--version` still print in full.
//!
//! [`serve`] is the rest of a server's `main` for every model that takes one listener:
//! signal handlers, bind, ready line, run, summary.

use std::fmt::Display;
use std::io;
use std::path::PathBuf;
use std::process;

use clap::{Args, Parser};

use crate::net::{Endpoint, Listener};
use crate::{Config, Shutdown, Summary};

/// The contract every server binary keeps on its command line.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// TCP address to listen on, IPv4 or IPv6 (`[::1]:0`), in numbers or as `localhost`
    /// (127.0.0.1; no other name is resolved); port 0 picks a free port. `unix:PATH` is
    /// accepted too, as the ready line prints it.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:7000", value_parser = Endpoint::parse)]
    pub addr: Endpoint,

    /// Listen on a Unix domain stream socket at PATH instead of TCP.
    #[arg(long, value_name = "PATH", conflicts_with = "addr")]
    pub unix: Option<PathBuf>,

    /// Length of the kernel's queue of connections not yet accepted (capped by somaxconn).
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=i32::MAX as i64))]
    pub backlog: u32,

    /// Connections served at once; beyond it new connections are closed at once and counted.
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub max_conns: u64,

    /// Bytes of buffer per connection: the most the server holds for one client.
    #[arg(long, value_name = "BYTES", default_value_t = 16 * 1024, value_parser = clap::value_parser!(u64).range(1..=1 << 30))]
    pub buffer: u64,

    /// Leave Nagle's algorithm on for accepted TCP connections (TCP_NODELAY off), to show
    /// what it costs: an echo written in two pieces then waits for the client's delayed ACK.
    #[arg(long)]
    pub nagle: bool,
}

/// `--workers`, for the models that run one event loop per worker thread.
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// Worker threads, each running its own event loop [default: the number of CPUs].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub workers: Option<u16>,
}

impl WorkerArgs {
    /// The workers asked for, or one per CPU the process may run on: more would only take
    /// turns on them. (`available_parallelism` follows the CPU affinity mask, so a server
    /// pinned to one CPU runs one worker.)
    pub fn count(&self) -> usize {
        let cpus = || std::thread::available_parallelism().map_or(1, usize::from);
        self.workers.map_or_else(cpus, usize::from)
    }
}

impl ServerArgs {
    /// Where to listen: `--unix` wins over the default `--addr`.
    pub fn endpoint(&self) -> Endpoint {
        match &self.unix {
            Some(path) => Endpoint::Unix(path.clone()),
            None => self.addr.clone(),
        }
    }

    /// Whether accepted TCP connections get TCP_NODELAY: yes, unless `--nagle`. The
    /// listener carries it ([`Listener::set_nodelay`]) and each connection inherits it, so
    /// every model's accept path follows without knowing of the flag.
    pub fn nodelay(&self) -> bool {
        !self.nagle
    }

    /// The limits the model enforces.
    pub fn config(&self) -> Config {
        // Both values were range-checked by clap, so they fit a usize on a 64-bit target.
        Config { max_conns: self.max_conns as usize, buffer: self.buffer as usize }
    }
}

/// Parses the command line, or prints one line of error and exits with status 2.
pub fn parse<T: Parser>() -> T {
    match T::try_parse() {
        Ok(args) => args,
        Err(err) => match err.kind() {
            clap::error::ErrorKind::DisplayHelp
            | clap::error::ErrorKind::DisplayVersion
            | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => err.exit(),
            _ => {
                let rendered = err.render().to_string();
                let first = rendered.lines().next().unwrap_or("invalid arguments");
                let first = first.strip_prefix("error: ").unwrap_or(first);
                eprintln!("{}: error: {first}", program());
                process::exit(2);
            }
        },
    }
}

/// Runs a server whose `model` serves one listener: installs the SIGINT/SIGTERM handlers
/// (no thread, which the fork model needs), binds the endpoint `args` name, prints the ready
/// line, runs the model until shutdown and prints its summary on stderr. Any failure is one
/// line on stderr and exit status 1.
pub fn serve<M>(args: &ServerArgs, model: M)
where
    M: FnOnce(Listener, Shutdown, &Config) -> io::Result<Summary>,
{
    let shutdown = or_exit(Shutdown::on_signals(), "cannot install signal handlers");
    let endpoint = args.endpoint();
    let listener = Listener::bind(&endpoint, args.backlog);
    let listener = or_exit(listener, format!("cannot listen on {endpoint}"));
    or_exit(listener.set_nodelay(args.nodelay()), "cannot set TCP_NODELAY on the listener");
    or_exit(listener.announce(), "cannot print the ready line");
    let summary = or_exit(model(listener, shutdown, &args.config()), "server failed");
    summary.log(&program());
}

/// Unwraps `result`, or prints `program: error: WHAT: CAUSE` on one line and exits with 1.
pub fn or_exit<T, E: Display>(result: Result<T, E>, what: impl Display) -> T {
    match result {
        Ok(value) => value,
        Err(err) => {
            eprintln!("{}: error: {what}: {err}", program());
            process::exit(1);
        }
    }
}

/// The name this program was started as, for error messages.
pub fn program() -> String {
    std::env::args_os()
        .next()
        .map(PathBuf::from)
        .and_then(|path| path.file_name().map(|name| name.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "echo-server".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        server: ServerArgs,
    }

    #[test]
    fn defaults_match_the_contract() {
        let cli = Cli::try_parse_from(["echo"]).unwrap();
        assert_eq!(cli.server.endpoint().to_string(), "127.0.0.1:7000");
        assert_eq!(cli.server.backlog, 1024);
        assert_eq!(cli.server.config(), Config { max_conns: 10_000, buffer: 16 * 1024 });
    }

    #[test]
    fn unix_flag_selects_a_unix_endpoint() {
        let cli = Cli::try_parse_from(["echo", "--unix", "/tmp/e.sock"]).unwrap();
        assert_eq!(cli.server.endpoint().to_string(), "unix:/tmp/e.sock");
        assert!(Cli::try_parse_from(["echo", "--unix", "/x", "--addr", "127.0.0.1:1"]).is_err());
    }

    #[test]
    fn workers_default_to_the_cpus_and_zero_is_refused() {
        #[derive(Debug, Parser)]
        struct Pool {
            #[command(flatten)]
            workers: WorkerArgs,
        }
        let cpus = std::thread::available_parallelism().unwrap().get();
        assert_eq!(Pool::try_parse_from(["echo"]).unwrap().workers.count(), cpus);
        assert_eq!(Pool::try_parse_from(["echo", "--workers", "3"]).unwrap().workers.count(), 3);
        assert!(Pool::try_parse_from(["echo", "--workers", "0"]).is_err());
    }

    #[test]
    fn zero_limits_are_refused() {
        for flag in ["--backlog", "--max-conns", "--buffer"] {
            assert!(Cli::try_parse_from(["echo", flag, "0"]).is_err(), "{flag} 0 was accepted");
        }
    }
}
