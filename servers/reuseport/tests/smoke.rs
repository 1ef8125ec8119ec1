//! Smoke tests of the real `echo-reuseport` binary: `--workers` listeners in one group, each
//! with its own worker and its own backlog, connections spread over all of them, and the
//! port held against a second server. (The shared conformance suite checks the rest of the
//! server contract, in `conformance.rs` and `workers.rs`.)

use std::io::Read;
use std::net::TcpStream;
use std::process::Command;

use echobench_conformance::{Server, cases, connect, proc, round_trip};

const BIN: &str = env!("CARGO_BIN_EXE_echo-reuseport");

#[test]
fn every_worker_serves_a_share_and_sigterm_stops_them_all() {
    const CLIENTS: usize = 60;
    let mut server = Server::start(BIN, &["--addr", "127.0.0.1:0", "--workers", "3"]);
    // Each client comes from its own port, so the kernel's hash spreads them. All are open
    // at once, and each is served.
    let mut clients: Vec<TcpStream> = (0..CLIENTS).map(|_| connect(server.tcp_addr())).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        round_trip(client, format!("client {i}").as_bytes());
    }
    assert_eq!(proc::tree_threads(server.pid()), 3, "three workers and no acceptor thread");

    let exit = server.terminate();
    exit.assert_clean_after_serving(CLIENTS as u64);
    // `connections per worker: min A, median B, max C (by worker: X Y Z)`.
    let line = exit.stderr.lines().find(|line| line.contains("connections per worker"));
    let line = line.unwrap_or_else(|| panic!("no per-worker line on stderr: {}", exit.stderr));
    let by_worker = line.rsplit("by worker:").next().unwrap().trim_end_matches(')');
    let spread: Vec<usize> = by_worker.split_whitespace().map(|n| n.parse().unwrap()).collect();
    eprintln!("spread of {CLIENTS} connections over 3 workers: {spread:?}");
    assert_eq!(spread.len(), 3, "one count per worker: {line}");
    assert_eq!(spread.iter().sum::<usize>(), CLIENTS, "{line}");
    // A worker left with none of 60 hashed connections would happen once in 10^10 runs; a
    // server whose listeners were not all in the group would show it every time.
    assert!(spread.iter().all(|&n| n > 0), "a worker served nothing: {line}");
    for client in &mut clients {
        assert_eq!(client.read(&mut [0u8; 1]).unwrap(), 0, "closed in an orderly way");
    }
}

#[test]
fn every_listener_of_the_group_has_the_backlog() {
    let server =
        Server::start(BIN, &["--addr", "127.0.0.1:0", "--workers", "3", "--backlog", "37"]);
    let filter = format!("sport = :{}", server.tcp_addr().port());
    let Ok(output) = Command::new("ss").args(["-ltnH", &filter]).output() else {
        return eprintln!("backlog: skipped, `ss` (iproute2) cannot run here");
    };
    let text = String::from_utf8_lossy(&output.stdout);
    // `LISTEN  0  37  127.0.0.1:PORT  0.0.0.0:*`: the third column is the backlog.
    let backlogs: Vec<&str> = text.lines().filter_map(|l| l.split_whitespace().nth(2)).collect();
    assert_eq!(
        backlogs,
        ["37", "37", "37"],
        "one listener per worker, each with --backlog: {text}"
    );
}

#[test]
fn a_second_server_on_the_port_is_refused_not_let_into_the_group() {
    let first = Server::start(BIN, &["--addr", "127.0.0.1:0", "--workers", "2"]);
    let addr = first.tcp_addr().to_string();
    // Both set SO_REUSEPORT, so without the server's check the kernel would let the second
    // in, and deal it half of the first one's clients.
    let exit = cases::refused(BIN, &["--addr", &addr, "--workers", "2"]);
    assert!(exit.stderr.contains(&addr), "the error should name {addr}: {}", exit.stderr);
}

#[test]
fn zero_workers_is_refused_in_one_line() {
    let exit = cases::refused(BIN, &["--addr", "127.0.0.1:0", "--workers", "0"]);
    assert_eq!(exit.status.code(), Some(2), "bad usage exits with status 2");
    assert!(exit.stderr.contains("--workers"), "stderr: {}", exit.stderr);
}
