//! `echo-poll`: the TCP echo server as one thread calling poll(2) over every connection.
//!
//! `cargo run --release -p echobench-poll -- --addr 127.0.0.1:7000`
use clap::Parser;
use echobench_common::{Listener, ServerArgs, Shutdown, cli};

#[derive(Debug, Parser)]
#[command(name = "echo-poll", version, about = "TCP echo server: one thread, one poll(2) array")]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
}

fn main() {
    let args: Args = cli::parse();
    let shutdown = cli::or_exit(Shutdown::on_signals(), "cannot install signal handlers");
    let endpoint = args.server.endpoint();
    let listener = Listener::bind(&endpoint, args.server.backlog);
    let listener = cli::or_exit(listener, format!("cannot listen on {endpoint}"));
    cli::or_exit(listener.announce(), "cannot print the ready line");
    let config = args.server.config();
    let summary = cli::or_exit(echobench_poll::run(listener, shutdown, &config), "server failed");
    summary.log(&cli::program());
}
