//! `echo-prefork`: a TCP echo server with a pool of pre-forked child processes, each
//! accepting and serving one connection at a time.
//!
//! `cargo run --release -p echobench-prefork -- --addr 127.0.0.1:7000 --workers 8`
use clap::Parser;
use echobench_common::{Listener, ServerArgs, Shutdown, cli};
use echobench_prefork::PoolConfig;

#[derive(Debug, Parser)]
#[command(
    name = "echo-prefork",
    version,
    about = "TCP echo server: a pool of pre-forked processes, one connection each at a time"
)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,

    /// Children forked at start; the pool never shrinks below it.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    workers: u32,

    /// Children forked at once when every child is busy; idle ones beyond twice this retire.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    spare: u32,
}

fn main() {
    let args: Args = cli::parse();
    // The handler needs no thread: the parent must stay single-threaded to fork safely.
    let shutdown = cli::or_exit(Shutdown::on_signals(), "cannot install signal handlers");
    let endpoint = args.server.endpoint();
    let listener = Listener::bind(&endpoint, args.server.backlog);
    let listener = cli::or_exit(listener, format!("cannot listen on {endpoint}"));
    cli::or_exit(listener.announce(), "cannot print the ready line");
    let pool = PoolConfig { workers: args.workers as usize, spare: args.spare as usize };
    let summary = echobench_prefork::run(listener, shutdown, &args.server.config(), &pool);
    cli::or_exit(summary, "server failed").log(&cli::program());
}
