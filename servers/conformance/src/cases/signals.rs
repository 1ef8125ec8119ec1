//! Shutting down on SIGTERM or SIGINT with connections open, some of them mid-echo.

use std::io::{self, Read};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::start_tcp;
use crate::client::{connect, pattern, round_trip, try_round_trip};
use crate::proc;

/// SIGTERM with idle and busy connections open: exit status 0 within a second, no process
/// of the server's tree left behind, and every client sees its connection closed.
pub fn sigterm_with_open_connections_exits_cleanly(bin: &str, extra: &[&str]) {
    stop_with_open_connections(bin, extra, Signal::SIGTERM);
}

/// SIGINT (Ctrl-C) behaves exactly as SIGTERM.
pub fn sigint_with_open_connections_exits_cleanly(bin: &str, extra: &[&str]) {
    stop_with_open_connections(bin, extra, Signal::SIGINT);
}

fn stop_with_open_connections(bin: &str, extra: &[&str], signal: Signal) {
    let mut server = start_tcp(bin, extra, &[]);
    let addr = server.tcp_addr();
    // Idle connections, each known to be accepted and served.
    let idle: Vec<TcpStream> = (0..5)
        .map(|i| {
            let mut client = connect(addr);
            round_trip(&mut client, format!("idle client {i}").as_bytes());
            client
        })
        .collect();
    // Busy connections: each thread echoes 64 KiB messages back to back until the server
    // goes away, so the signal lands mid-echo. Bounded by count and time all the same.
    let busy: Vec<_> = (0..2)
        .map(|i| {
            let mut client = connect(addr);
            round_trip(&mut client, b"busy client starting");
            thread::spawn(move || {
                let message = pattern(64 << 10, i);
                let started = Instant::now();
                for round in 0..100_000u64 {
                    if try_round_trip(&mut client, &message).is_err() {
                        return round;
                    }
                    if started.elapsed() > Duration::from_secs(20) {
                        break;
                    }
                }
                panic!("busy client {i} was still being served long after the {signal}");
            })
        })
        .collect();

    // Every process of the tree, named by pid and start time so that a reused pid is not
    // mistaken for a survivor. (For the fork model these are the connections' children.)
    let descendants: Vec<(i32, u64)> = proc::descendants(server.pid())
        .into_iter()
        .filter_map(|pid| proc::stat(pid).map(|s| (pid, s.starttime)))
        .collect();

    let exit = server.stop_with(signal);
    eprintln!(
        "{signal}: exit {:?} after {:?}, {} descendants before",
        exit.status,
        exit.elapsed,
        descendants.len()
    );
    exit.assert_prompt_and_clean(signal, "with connections open");
    // Processes the server killed but did not wait for are reparented and reaped by init
    // within moments; anything still running after a short grace was left behind. Two
    // views: the tree as it was before the signal, and the server's process group, which
    // also holds anything forked during shutdown.
    let grace = Instant::now() + Duration::from_millis(500);
    let survivors = || -> Vec<i32> {
        let mut left: Vec<i32> =
            descendants.iter().filter(|(p, s)| proc::is_alive(*p, *s)).map(|d| d.0).collect();
        left.extend(proc::group_members(server.pid()));
        left.sort_unstable();
        left.dedup();
        left
    };
    let mut left = survivors();
    while !left.is_empty() && Instant::now() < grace {
        thread::sleep(Duration::from_millis(10));
        left = survivors();
    }
    assert!(left.is_empty(), "processes {left:?} of the server's tree outlived it after {signal}");

    // Every connection was closed: idle clients read end of file (or a reset) at once
    // instead of waiting for their read timeout, and the busy ones stop with an error.
    for (i, mut client) in idle.into_iter().enumerate() {
        // The server has exited, so its closes are long on the wire: a second is plenty.
        client.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        match client.read(&mut [0u8; 16]) {
            Ok(0) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
            other => panic!("idle client {i} after {signal}: expected end of file, got {other:?}"),
        }
    }
    for client in busy {
        let rounds = client.join().expect("a busy client panicked");
        assert!(rounds < 100_000, "a busy client never saw its connection closed");
    }
}
