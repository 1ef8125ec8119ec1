//! `echo-udp`: the datagram echo server, over UDP (IPv4, IPv6) or a Unix datagram socket.
//!
//! `cargo run --release -p echobench-udp -- --addr 127.0.0.1:7000 --workers 2 --batch 32`
use echobench_common::{Shutdown, cli};
use echobench_udp::args::Args;

fn main() {
    let args: Args = cli::parse();
    if let Err(why) = args.check() {
        eprintln!("{}: error: {why}", cli::program());
        std::process::exit(2);
    }
    let shutdown = cli::or_exit(Shutdown::on_signals(), "cannot install signal handlers");
    let endpoint = args.endpoint();
    let rcvbuf = args.rcvbuf.map(|bytes| bytes as usize);
    let sockets = echobench_udp::bind(&endpoint, usize::from(args.workers), rcvbuf);
    let sockets = cli::or_exit(sockets, format!("cannot bind {endpoint}"));
    // One ready line for every worker: by now each one's socket is bound and queueing.
    cli::or_exit(sockets[0].announce(), "cannot print the ready line");
    let summary = echobench_udp::run(sockets, shutdown, usize::from(args.batch));
    cli::or_exit(summary, "server failed").log(&cli::program());
}
