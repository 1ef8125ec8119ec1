//! `echo-uring`: the TCP echo server as one io_uring completion loop (or N, one per thread).
//!
//! `cargo run --release -p echobench-uring -- --addr 127.0.0.1:7000`
use clap::Parser;
use echobench_common::{ServerArgs, Shutdown, cli};
use echobench_uring::{Options, RingSize, listen};

#[derive(Debug, Parser)]
#[command(name = "echo-uring", version, about = "TCP echo server: one thread, one io_uring")]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// Rings, each on its own thread with its own SO_REUSEPORT listener (shared on Unix).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1024))]
    workers: u16,
    /// Submission queue slots per ring (tuning and tests).
    #[arg(long, value_name = "N", default_value_t = RingSize::default().sq_entries, value_parser = clap::value_parser!(u32).range(1..=32768))]
    sq_entries: u32,
    /// Completion queue slots per ring; at least --sq-entries (tuning and tests).
    #[arg(long, value_name = "N", default_value_t = RingSize::default().cq_entries, value_parser = clap::value_parser!(u32).range(1..=65536))]
    cq_entries: u32,
    /// Provided receive buffers of 64 KiB per ring, a power of two (tuning and tests).
    #[arg(long, value_name = "N", default_value_t = RingSize::default().buffers, value_parser = power_of_two)]
    buffers: u16,
    /// Let a busy ring's wait linger up to US microseconds for more completions: less CPU
    /// per message, up to US more latency (Linux 6.12+; 0: off).
    #[arg(long, value_name = "US", default_value_t = 0)]
    coalesce_us: u32,
    /// Cancel receives at --buffer instead of capping them in the kernel, as on Linux < 6.17.
    #[arg(long)]
    no_recv_limit: bool,
    /// Cut the buffer pool into 4 KiB buffers consumed whole, as on Linux < 6.12.
    #[arg(long)]
    no_incremental_buffers: bool,
    /// Print each ring's counters (waits, backlog, overflows, re-arms, ENOBUFS) at exit.
    #[arg(long)]
    stats: bool,
}

fn power_of_two(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(n) if n.is_power_of_two() && n <= 1 << 15 => Ok(n),
        _ => Err("expected a power of two from 1 to 32768".to_owned()),
    }
}

fn main() {
    let args: Args = cli::parse();
    // Before anything is bound or printed: where io_uring is refused, say so in one line.
    cli::or_exit(echobench_uring::probe(), "io_uring unavailable");
    let shutdown = cli::or_exit(Shutdown::on_signals(), "cannot install signal handlers");
    let endpoint = args.server.endpoint();
    let workers = usize::from(args.workers);
    let listeners = cli::or_exit(
        listen::bind(&endpoint, args.server.backlog, workers),
        format!("cannot listen on {endpoint}"),
    );
    for listener in &listeners {
        let nodelay = listener.set_nodelay(args.server.nodelay());
        cli::or_exit(nodelay, "cannot set TCP_NODELAY on the listener");
    }
    cli::or_exit(listeners[0].announce(), "cannot print the ready line");
    let ring = RingSize {
        sq_entries: args.sq_entries,
        cq_entries: args.cq_entries.max(args.sq_entries),
        buffers: args.buffers,
        coalesce_us: args.coalesce_us,
        ..RingSize::default()
    };
    let options = Options {
        workers,
        ring,
        recv_limit: !args.no_recv_limit,
        incremental_buffers: !args.no_incremental_buffers,
        stats: args.stats,
    };
    let config = args.server.config();
    let summary =
        cli::or_exit(echobench_uring::run(listeners, shutdown, &config, &options), "server failed");
    summary.log(&cli::program());
}
