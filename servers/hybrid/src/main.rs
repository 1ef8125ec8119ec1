//! `echo-hybrid`: the TCP echo server as an acceptor thread feeding N mio event-loop workers.
//!
//! `cargo run --release -p echobench-hybrid -- --addr 127.0.0.1:7000 --workers 2`
use std::num::NonZeroUsize;

use clap::Parser;
use echobench_common::{ServerArgs, cli};

#[derive(Debug, Parser)]
#[command(
    name = "echo-hybrid",
    version,
    about = "TCP echo server: an acceptor and N event-loop workers"
)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// Worker threads, each running its own event loop [default: the number of CPUs].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    workers: Option<u16>,
}

fn main() {
    let args: Args = cli::parse();
    // One event loop per CPU the process may run on: more would only take turns on them.
    let workers = args
        .workers
        .map(usize::from)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, NonZeroUsize::get));
    cli::serve(&args.server, |listener, shutdown, config| {
        echobench_hybrid::run(listener, shutdown, config, workers)
    });
}
