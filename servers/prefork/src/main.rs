//! `echo-prefork`: a TCP echo server with a pool of pre-forked child processes, each
//! accepting and serving one connection at a time.
//!
//! `cargo run --release -p echobench-prefork -- --addr 127.0.0.1:7000 --workers 8`
use clap::Parser;
use echobench_common::{ServerArgs, cli};
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
    let pool = PoolConfig { workers: args.workers as usize, spare: args.spare as usize };
    // `serve` installs the signal handlers without a thread: the parent must stay
    // single-threaded to fork safely.
    cli::serve(&args.server, |listener, shutdown, config| {
        echobench_prefork::run(listener, shutdown, config, &pool)
    });
}
