//! `echo-hybrid`: the TCP echo server as an acceptor thread feeding N mio event-loop workers.
//!
//! `cargo run --release -p echobench-hybrid -- --addr 127.0.0.1:7000 --workers 2`
use clap::Parser;
use echobench_common::{ServerArgs, WorkerArgs, cli};

#[derive(Debug, Parser)]
#[command(
    name = "echo-hybrid",
    version,
    about = "TCP echo server: an acceptor and N event-loop workers"
)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    workers: WorkerArgs,
}

fn main() {
    let args: Args = cli::parse();
    let workers = args.workers.count();
    cli::serve(&args.server, |listener, shutdown, config| {
        echobench_hybrid::run(listener, shutdown, config, workers)
    });
}
