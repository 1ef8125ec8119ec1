//! Smoke tests of the real `echo-tokio` binary: `--workers` sets how many runtime threads run
//! (and nothing else starts one), one process serves every connection, SIGTERM closes them
//! all, and zero workers is refused. (The shared conformance suite checks the rest of the
//! server contract.)

use std::io::Read;
use std::net::TcpStream;

use echobench_conformance::{Server, cases, connect, proc, round_trip};
use echobench_tokio::WORKER_THREAD_NAME;

const BIN: &str = env!("CARGO_BIN_EXE_echo-tokio");

#[test]
fn two_workers_and_the_main_thread_serve_every_connection_until_sigterm() {
    let mut server = Server::start(BIN, &["--addr", "127.0.0.1:0", "--workers", "2"]);

    // Open them all first, then talk on each: they are served side by side, not in turn.
    let mut clients: Vec<TcpStream> = (0..50).map(|_| connect(server.tcp_addr())).collect();
    for (i, client) in clients.iter_mut().enumerate().rev() {
        round_trip(client, format!("client {i}").as_bytes());
    }
    // The main thread (named after the binary) waits for the accept loop; the two workers
    // run every task. No signal thread, no blocking pool, no thread per connection.
    let names = proc::thread_names(server.pid());
    assert_eq!(names, ["echo-tokio", WORKER_THREAD_NAME, WORKER_THREAD_NAME], "threads");
    assert_eq!(proc::tree_threads(server.pid()), 3, "and no child process");

    server.terminate().assert_clean_after_serving(50);
    for client in &mut clients {
        // End of file exactly: dropping each task closed its connection in an orderly way.
        assert_eq!(client.read(&mut [0u8; 1]).unwrap(), 0, "the server closed the connection");
    }
}

#[test]
fn one_worker_still_runs_beside_the_main_thread() {
    let mut server = Server::start(BIN, &["--addr", "127.0.0.1:0", "--workers", "1"]);
    let mut client = connect(server.tcp_addr());
    round_trip(&mut client, b"one worker");
    assert_eq!(proc::thread_names(server.pid()), ["echo-tokio", WORKER_THREAD_NAME]);
    server.terminate().assert_clean_after_serving(1);
}

#[test]
fn zero_workers_is_refused_in_one_line() {
    // One line on stderr and nothing on stdout (no ready line for a server that did not
    // start) are checked by `refused`; bad usage in particular exits with status 2.
    let exit = cases::refused(BIN, &["--addr", "127.0.0.1:0", "--workers", "0"]);
    assert_eq!(exit.status.code(), Some(2), "bad usage exits with status 2");
    assert!(exit.stderr.contains("--workers"), "stderr: {}", exit.stderr);
}
