//! `echo-poll`: the TCP echo server as one thread calling poll(2) over every connection.
//!
//! `cargo run --release -p echobench-poll -- --addr 127.0.0.1:7000`
use clap::Parser;
use echobench_common::{ServerArgs, cli};

#[derive(Debug, Parser)]
#[command(name = "echo-poll", version, about = "TCP echo server: one thread, one poll(2) array")]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
}

fn main() {
    let args: Args = cli::parse();
    cli::serve(&args.server, echobench_poll::run);
}
