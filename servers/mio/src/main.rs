//! `echo-mio`: the TCP echo server as one thread running one mio event loop.
//!
//! `cargo run --release -p echobench-mio -- --addr 127.0.0.1:7000`
use clap::Parser;
use echobench_common::{ServerArgs, cli};

#[derive(Debug, Parser)]
#[command(name = "echo-mio", version, about = "TCP echo server: one thread, one mio event loop")]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
}

fn main() {
    let args: Args = cli::parse();
    cli::serve(&args.server, echobench_mio::run);
}
