//! `echo-thread`: a TCP echo server that starts one OS thread per connection.
//!
//! `cargo run --release -p echobench-thread -- --addr 127.0.0.1:7000 --stack-size 65536`
use clap::Parser;
use echobench_common::{Listener, ServerArgs, Shutdown, cli};
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
    let shutdown = cli::or_exit(Shutdown::on_signals(), "cannot install signal handlers");
    let endpoint = args.server.endpoint();
    let listener = Listener::bind(&endpoint, args.server.backlog);
    let listener = cli::or_exit(listener, format!("cannot listen on {endpoint}"));
    cli::or_exit(listener.announce(), "cannot print the ready line");
    let config = args.server.config();
    let summary = echobench_thread::run(listener, shutdown, &config, args.stack_size);
    cli::or_exit(summary, "server failed").log(&cli::program());
}
