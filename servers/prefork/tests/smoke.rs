//! Smoke tests of the real `echo-prefork` binary: the pool grows when every child is busy
//! and shrinks back when they are idle, a child that dies is replaced and its place under
//! `--max-conns` freed, and SIGTERM leaves no child behind. (The shared conformance suite
//! checks the rest of the server contract.) The server is always a separate process: a
//! test process has many threads, and must never fork itself.

use std::net::TcpStream;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use echobench_conformance::{Server, closed_by_server, connect, proc, round_trip};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Waits (bounded) until the server has exactly `count` children, all asleep in `accept`.
fn wait_for_idle_pool(server: &Server, count: usize, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let children = proc::children(server.pid());
        if children.len() == count && children.iter().all(|&pid| proc::in_accept(pid)) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: children {children:?}, wanted {count} idle");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_pool_grows_when_full_and_shrinks_back_when_idle() {
    let args = ["--addr", "127.0.0.1:0", "--workers", "2", "--spare", "1"];
    let mut server = Server::start(env!("CARGO_BIN_EXE_echo-prefork"), &args);
    wait_for_idle_pool(&server, 2, "at start");

    // Ten clients held open at once need ten children: the pool must grow past --workers.
    let mut clients: Vec<TcpStream> = (0..10).map(|_| connect(server.tcp_addr())).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        round_trip(client, format!("client {i}").as_bytes());
    }
    // The ten that serve them are not in accept. The last of them took the last idle place,
    // so the parent forks a spare; wait until it is there and in accept too, so that no
    // child is still setting itself up.
    let deadline = Instant::now() + Duration::from_secs(5);
    let children = loop {
        let children = proc::children(server.pid());
        let serving = children.iter().filter(|&&pid| !proc::in_accept(pid)).count();
        if children.len() > 10 && serving == 10 {
            break children;
        }
        assert!(Instant::now() < deadline, "no spare beside ten busy children: {children:?}");
        thread::sleep(Duration::from_millis(20));
    };
    for &pid in &children {
        // stdin, stdout, stderr, the listener, the eventfd that wakes the parent, and a busy
        // child's connection: nothing else of the parent's stays open in a child.
        let fds = proc::fd_targets(pid);
        assert!(fds.len() <= 6, "child {pid} holds {fds:?}");
    }

    // Once they leave, the idle children beyond twice --spare retire, down to --workers.
    drop(clients);
    wait_for_idle_pool(&server, 2, "after the clients left");

    let exit = server.terminate();
    exit.assert_clean_after_serving(10);
    assert!(exit.stderr.contains("connections per child: min 0"), "stderr: {}", exit.stderr);
    for pid in children {
        // A child left behind would have been adopted by another process and still exist.
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "child {pid} outlived the server");
    }
}

#[test]
fn a_child_killed_mid_connection_is_replaced_and_its_place_freed() {
    // One place under --max-conns, so the pool is two children: one to serve, one to refuse.
    let args = ["--addr", "127.0.0.1:0", "--workers", "2", "--max-conns", "1"];
    let mut server = Server::start(env!("CARGO_BIN_EXE_echo-prefork"), &args);
    wait_for_idle_pool(&server, 2, "at start");
    let mut first = connect(server.tcp_addr());
    round_trip(&mut first, b"served, then its child is killed");
    let serving: Vec<i32> =
        proc::children(server.pid()).into_iter().filter(|&pid| !proc::in_accept(pid)).collect();
    assert_eq!(serving.len(), 1, "one child serves the one connection: {serving:?}");
    kill(Pid::from_raw(serving[0]), Signal::SIGKILL).unwrap();
    assert!(closed_by_server(&mut first), "the killed child's connection stayed open");

    // The parent reaps the dead child, frees its place and forks a replacement, so the
    // next client is served rather than turned away over --max-conns 1.
    wait_for_idle_pool(&server, 2, "after the kill");
    let mut next = connect(server.tcp_addr());
    round_trip(&mut next, b"served in the dead child's place");
    drop(next);

    let exit = server.terminate();
    assert!(exit.status.success(), "exit status {:?}", exit.status);
    assert!(exit.stderr.contains("(0 rejected over --max-conns)"), "stderr: {}", exit.stderr);
}
