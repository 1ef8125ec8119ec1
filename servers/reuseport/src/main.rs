//! `echo-reuseport`: the TCP echo server as N event-loop workers, each accepting on its own
//! SO_REUSEPORT listener.
//!
//! `cargo run --release -p echobench-reuseport -- --addr 127.0.0.1:7000 --workers 2`
use clap::Parser;
use echobench_common::{ServerArgs, Shutdown, WorkerArgs, cli};

#[derive(Debug, Parser)]
#[command(
    name = "echo-reuseport",
    version,
    about = "TCP echo server: N event-loop workers, each with its own SO_REUSEPORT listener"
)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    workers: WorkerArgs,
}

fn main() {
    let args: Args = cli::parse();
    let shutdown = cli::or_exit(Shutdown::on_signals(), "cannot install signal handlers");
    let endpoint = args.server.endpoint();
    let listeners = echobench_reuseport::bind(&endpoint, args.server.backlog, args.workers.count());
    let listeners = cli::or_exit(listeners, format!("cannot listen on {endpoint}"));
    for listener in &listeners {
        let nodelay = listener.set_nodelay(args.server.nodelay());
        cli::or_exit(nodelay, "cannot set TCP_NODELAY on the listener");
    }
    // One ready line for the whole group: by now every worker's listener takes connections.
    cli::or_exit(listeners[0].announce(), "cannot print the ready line");
    let served = echobench_reuseport::run(listeners, shutdown, &args.server.config());
    cli::or_exit(served, "server failed").log(&cli::program());
}
