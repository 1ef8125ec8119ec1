//! `echo-tokio`: the TCP echo server as one tokio task per connection on N runtime workers.
//!
//! `cargo run --release -p echobench-tokio -- --addr 127.0.0.1:7000 --workers 2`
use std::num::NonZeroUsize;

use clap::Parser;
use echobench_common::{Listener, ServerArgs, Shutdown, cli};

#[derive(Debug, Parser)]
#[command(name = "echo-tokio", version, about = "TCP echo server: a tokio task per connection")]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// Runtime worker threads, which steal tasks from each other [default: the number of CPUs].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    workers: Option<u16>,
}

fn main() {
    let args: Args = cli::parse();
    // One worker per CPU the process may run on, as tokio's own default; passed explicitly so
    // that the flag, not the TOKIO_WORKER_THREADS variable, has the last word.
    let workers = args
        .workers
        .map(usize::from)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, NonZeroUsize::get));
    let shutdown = cli::or_exit(Shutdown::on_signals(), "cannot install signal handlers");
    let endpoint = args.server.endpoint();
    let listener = cli::or_exit(
        Listener::bind(&endpoint, args.server.backlog),
        format!("cannot listen on {endpoint}"),
    );
    cli::or_exit(listener.announce(), "cannot print the ready line");
    let config = args.server.config();
    let summary =
        cli::or_exit(echobench_tokio::run(listener, shutdown, &config, workers), "server failed");
    summary.log(&cli::program());
}
