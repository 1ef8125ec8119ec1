//! `echo-fork`: a TCP echo server that forks one child process per connection.
//!
//! `cargo run --release -p echobench-fork -- --addr 127.0.0.1:7000`
use clap::Parser;
use echobench_common::{ServerArgs, cli};

#[derive(Debug, Parser)]
#[command(name = "echo-fork", version, about = "TCP echo server: one child process per connection")]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
}

fn main() {
    let args: Args = cli::parse();
    // `serve` installs the signal handlers without a thread: the parent must stay
    // single-threaded to fork safely.
    cli::serve(&args.server, echobench_fork::run);
}
