//! `echo-fork`: a TCP echo server that forks one child process per connection.
//!
//! `cargo run --release -p echobench-fork -- --addr 127.0.0.1:7000`
use clap::Parser;
use echobench_common::{Listener, ServerArgs, Shutdown, cli};

#[derive(Debug, Parser)]
#[command(name = "echo-fork", version, about = "TCP echo server: one child process per connection")]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
}

fn main() {
    let args: Args = cli::parse();
    // The handler needs no thread: the parent must stay single-threaded to fork safely.
    let shutdown = cli::or_exit(Shutdown::on_signals(), "cannot install signal handlers");
    let endpoint = args.server.endpoint();
    let listener = Listener::bind(&endpoint, args.server.backlog);
    let listener = cli::or_exit(listener, format!("cannot listen on {endpoint}"));
    cli::or_exit(listener.announce(), "cannot print the ready line");
    let summary = echobench_fork::run(listener, shutdown, &args.server.config());
    cli::or_exit(summary, "server failed").log(&cli::program());
}
