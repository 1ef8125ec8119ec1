//! Smoke tests of the real `echo-hybrid` binary: `--workers` sets how many event loops run,
//! SIGTERM stops and joins them all, and zero workers is refused. (The shared conformance
//! suite checks the rest of the server contract.)

use std::io::Read;
use std::net::TcpStream;

use echobench_conformance::{Server, cases, connect, proc, round_trip};

const BIN: &str = env!("CARGO_BIN_EXE_echo-hybrid");

#[test]
fn workers_run_beside_the_acceptor_and_sigterm_joins_them() {
    let mut server = Server::start(BIN, &["--addr", "127.0.0.1:0", "--workers", "3"]);
    // More clients than workers, so that every worker has some, all served at once.
    let mut clients: Vec<TcpStream> = (0..6).map(|_| connect(server.tcp_addr())).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        round_trip(client, format!("client {i}").as_bytes());
    }
    assert_eq!(proc::tree_threads(server.pid()), 4, "the acceptor plus three workers");

    server.terminate().assert_clean_after_serving(6);
    // The workers closed their connections on the way out (end of file exactly).
    for client in &mut clients {
        assert_eq!(client.read(&mut [0u8; 1]).unwrap(), 0);
    }
}

#[test]
fn zero_workers_is_refused_in_one_line() {
    // One line on stderr and nothing on stdout (no ready line for a server that did not
    // start) are checked by `refused`; bad usage in particular exits with status 2.
    let exit = cases::refused(BIN, &["--addr", "127.0.0.1:0", "--workers", "0"]);
    assert_eq!(exit.status.code(), Some(2), "bad usage exits with status 2");
    assert!(exit.stderr.contains("--workers"), "stderr: {}", exit.stderr);
}
