//! `echo-thread`: a TCP echo server that starts one OS thread per connection.
//!
//! `cargo run --release -p echobench-thread -- --addr 127.0.0.1:7000 --stack-size 65536`
use clap::Parser;
use echobench_common::{ServerArgs, cli};
use echobench_thread::{DEFAULT_STACK_SIZE, parse_stack_size};

#[derive(Debug, Parser)]
#[command(name = "echo-thread", version, about = "TCP echo server: one OS thread per connection")]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// Stack size of each connection's thread, in bytes (reserved, mostly never touched).
    #[arg(long, value_name = "BYTES", value_parser = parse_stack_size)]
    #[arg(default_value_t = DEFAULT_STACK_SIZE)]
    stack_size: usize,
}

fn main() {
    let args: Args = cli::parse();
    let stack_size = args.stack_size;
    cli::serve(&args.server, |listener, shutdown, config| {
        echobench_thread::run(listener, shutdown, config, stack_size)
    });
}
