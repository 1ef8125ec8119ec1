//! A smoke test of the real `echo-fork` binary: one child per connection, and SIGTERM leaves
//! no child process behind. (The shared conformance suite checks the rest of the server
//! contract.) The server is always a separate process, started by the conformance crate's
//! harness: a test process has many threads, and must never fork itself.

use std::path::Path;

use echobench_conformance::{Server, closed_by_server, connect, proc, round_trip};

#[test]
fn sigterm_stops_every_child_and_exits_zero() {
    let mut server = Server::start(env!("CARGO_BIN_EXE_echo-fork"), &["--addr", "127.0.0.1:0"]);
    let mut busy = connect(server.tcp_addr());
    let mut idle = connect(server.tcp_addr());
    round_trip(&mut busy, b"hello");
    // Once it has echoed, each connection's child surely exists.
    round_trip(&mut idle, b"x");
    let children = proc::children(server.pid());
    assert_eq!(children.len(), 2, "one child per connection: {children:?}");
    for &pid in &children {
        // stdin, stdout, stderr and its connection: nothing of the parent's (the listener
        // above all) stays open in a child.
        let fds = proc::fd_targets(pid);
        assert_eq!(fds.len(), 4, "child {pid} holds {fds:?}");
    }

    server.terminate().assert_clean_after_serving(2);
    for pid in children {
        // A child left behind would have been adopted by another process and still exist.
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "child {pid} outlived the server");
    }
    // The idle client's connection was closed, not left hanging: EOF or a reset both mean
    // closed; a read that merely times out would mean it was not.
    assert!(closed_by_server(&mut idle), "the idle connection was left open");
}
