//! `echo-tokio`: the TCP echo server as one tokio task per connection on N runtime workers.
//!
//! `cargo run --release -p echobench-tokio -- --addr 127.0.0.1:7000 --workers 2`
use clap::Parser;
use echobench_common::{ServerArgs, WorkerArgs, cli};

#[derive(Debug, Parser)]
#[command(name = "echo-tokio", version, about = "TCP echo server: a tokio task per connection")]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// The runtime's worker threads, which steal tasks from each other. The count is always
    /// passed to the runtime, so that the flag, not TOKIO_WORKER_THREADS, has the last word.
    #[command(flatten)]
    workers: WorkerArgs,
}

fn main() {
    let args: Args = cli::parse();
    let workers = args.workers.count();
    cli::serve(&args.server, |listener, shutdown, config| {
        echobench_tokio::run(listener, shutdown, config, workers)
    });
}
