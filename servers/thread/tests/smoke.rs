//! Smoke tests of the real `echo-thread` binary: one thread per connection, SIGTERM wakes and
//! joins them all, and `--stack-size` is honoured down to its minimum and refused below it.
//! (The shared conformance suite checks the rest of the server contract.)

use std::io::{Read, Write};

use echobench_conformance::{
    Server, assert_same, cases, closed_by_server, connect, proc, round_trip,
};
use echobench_thread::{DEFAULT_STACK_SIZE, MIN_STACK_SIZE, parse_stack_size};

const BIN: &str = env!("CARGO_BIN_EXE_echo-thread");

#[test]
fn sigterm_wakes_and_joins_every_connection_thread() {
    let mut server = Server::start(BIN, &["--addr", "127.0.0.1:0"]);
    let mut busy = connect(server.tcp_addr());
    let mut idle = connect(server.tcp_addr());
    round_trip(&mut busy, b"hello");
    // Once it has echoed, each connection's thread surely exists; now it waits in `read`.
    round_trip(&mut idle, b"x");
    assert_eq!(proc::tree_threads(server.pid()), 3, "the acceptor plus one thread per connection");

    server.terminate().assert_clean_after_serving(2);
    // The idle client's connection was closed, not left hanging: EOF or a reset both mean
    // closed; a read that merely times out would mean it was not.
    assert!(closed_by_server(&mut idle), "the idle connection was left open");
}

#[test]
fn the_smallest_stack_serves_a_large_half_closed_transfer() {
    let mut server = Server::start(
        BIN,
        &["--addr", "127.0.0.1:0", "--stack-size", "16384", "--buffer", "65536"],
    );
    let mut client = connect(server.tcp_addr());
    let sent: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    // Send from a second thread while this one reads, so neither side's full socket buffer
    // can block the other.
    let mut writer = client.try_clone().unwrap();
    let to_send = sent.clone();
    let sender = std::thread::spawn(move || {
        writer.write_all(&to_send).unwrap();
        writer.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let mut received = Vec::new();
    client.read_to_end(&mut received).unwrap();
    sender.join().unwrap();
    // Same length, same bytes, same order; a difference is named by its first byte.
    assert_same(&sent, &received);
    assert!(server.terminate().status.success());
}

#[test]
fn a_stack_below_the_minimum_is_refused_in_one_line() {
    // One line on stderr and nothing on stdout (no ready line for a server that did not
    // start) are checked by `refused`; bad usage in particular exits with status 2.
    let exit = cases::refused(BIN, &["--addr", "127.0.0.1:0", "--stack-size", "4096"]);
    assert_eq!(exit.status.code(), Some(2), "bad usage exits with status 2");
    assert!(exit.stderr.contains("minimum stack size, 16384"), "stderr: {}", exit.stderr);
}

#[test]
fn stack_sizes_outside_the_range_are_refused_with_the_limit() {
    assert_eq!(parse_stack_size("16384"), Ok(MIN_STACK_SIZE));
    assert_eq!(parse_stack_size(&DEFAULT_STACK_SIZE.to_string()), Ok(DEFAULT_STACK_SIZE));
    let small = parse_stack_size("16383").unwrap_err();
    assert!(small.contains("minimum stack size, 16384"), "{small}");
    let large = parse_stack_size("1073741825").unwrap_err();
    assert!(large.contains("maximum"), "{large}");
    for nonsense in ["", "2M", "-1", "0x4000"] {
        let err = parse_stack_size(nonsense).unwrap_err();
        assert!(err.contains("number of bytes"), "{nonsense:?}: {err}");
    }
}
