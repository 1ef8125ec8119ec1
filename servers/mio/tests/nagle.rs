//! `--nagle` against the real `echo-mio` binary: the effect the flag exists to show is there,
//! and what triggers it is the *server* writing one echo in two pieces.
//!
//! With TCP_NODELAY off, Nagle's algorithm holds back a small segment while an earlier small
//! one is unacknowledged, and a client waiting for the rest of its echo has nothing to send,
//! so it acknowledges only when its delayed-ACK timer fires (40 ms, measured 44 ms here). A
//! 64-byte message through a server with `--buffer 32` is echoed as two 32-byte writes: the
//! second waits for that ACK.
//!
//! A client that writes its message in two halves does *not* bring that on by itself, which
//! surprised us, so it is pinned here too. Either the halves arrive together and are echoed
//! in one write, or the server reads the first half alone and echoes it at once; by the time
//! the second half leaves the client, the first half's echo has arrived, and the second half
//! carries its acknowledgement, so nothing is left unacknowledged for Nagle to wait on.
//! Measured here (median of 30 round trips, 64 bytes): 0.06 ms in halves with `--nagle`,
//! 44 ms whole with `--nagle --buffer 16`, 0.03 ms without `--nagle`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use echobench_conformance::{Server, connect};

const ROUNDS: usize = 20;
const SIZE: usize = 64;

/// The median round trip of `ROUNDS` 64-byte messages, each written in `pieces` calls.
fn median_round_trip(server_flags: &[&str], pieces: usize) -> Duration {
    let mut flags = vec!["--addr", "127.0.0.1:0"];
    flags.extend_from_slice(server_flags);
    let mut server = Server::start(env!("CARGO_BIN_EXE_echo-mio"), &flags);
    let mut client: TcpStream = connect(server.tcp_addr());
    let message: Vec<u8> = (0..SIZE as u8).collect();
    let mut back = vec![0u8; SIZE];
    let mut times: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let started = Instant::now();
            for piece in message.chunks(SIZE.div_ceil(pieces)) {
                client.write_all(piece).unwrap();
            }
            client.read_exact(&mut back).unwrap();
            assert_eq!(back, message, "the echo differs from the message");
            started.elapsed()
        })
        .collect();
    drop(client);
    server.terminate().assert_clean_after_serving(1);
    times.sort();
    let median = times[ROUNDS / 2];
    eprintln!("{server_flags:?}, written in {pieces}: median round trip {median:?}");
    median
}

#[test]
fn an_echo_written_in_two_pieces_waits_for_the_delayed_ack_under_nagle() {
    // The delayed ACK is 40 ms at least; a loaded machine makes it longer, never shorter.
    let held = median_round_trip(&["--nagle", "--buffer", "32"], 1);
    assert!(held >= Duration::from_millis(20), "with --nagle the median was only {held:?}");
    // The same server with TCP_NODELAY: both pieces leave at once (tens of microseconds;
    // 5 ms leaves room for a very busy machine).
    let prompt = median_round_trip(&["--buffer", "32"], 1);
    assert!(prompt < Duration::from_millis(5), "without --nagle the median was {prompt:?}");
}

#[test]
fn a_message_written_in_two_halves_does_not_by_itself_meet_nagle() {
    let halves = median_round_trip(&["--nagle"], 2);
    assert!(halves < Duration::from_millis(10), "halves under --nagle: median {halves:?}");
}
