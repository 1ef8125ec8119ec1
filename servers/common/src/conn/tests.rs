//! Tests of the connection state machine over real loopback sockets, driven by hand: each
//! test plays the event loop, calling `on_event` when it likes.

use super::*;
use std::io::ErrorKind;
use std::net::{self, TcpListener, TcpStream};

/// The reads per turn most of these tests allow: the mio model's budget. The budget test
/// picks another, to show that the caller's is the one kept.
const BUDGET: usize = 16;

/// A connected loopback pair: a blocking std client, and the accepted end as the
/// non-blocking stream an event loop would hold.
fn pair() -> (TcpStream, MioStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    server.set_nonblocking(true).unwrap();
    (client, MioStream::Tcp(mio::net::TcpStream::from_std(server)))
}

/// Recognisable bytes, so that reordering or loss would show.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

/// Calls `on_event` until it has nothing left to do (bounded, so a bug cannot hang).
/// The client's bytes may still be in flight on loopback when a call finds nothing.
fn settle(conn: &mut Connection, scratch: &mut [u8], until: impl Fn(&Connection) -> bool) {
    for _ in 0..1000 {
        conn.on_event(scratch, BUDGET).unwrap();
        if until(conn) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    panic!("the connection never settled: {conn:?}");
}

#[test]
fn small_echo_goes_straight_back_without_a_buffer() {
    let (mut client, server) = pair();
    let mut conn = Connection::new(server, 1024);
    let mut scratch = vec![0u8; 1024];
    // A spurious event before anything arrives finds nothing and changes nothing.
    let next = conn.on_event(&mut scratch, BUDGET).unwrap();
    assert_eq!(next, Next { wants_read: true, wants_write: false, more: false });

    client.write_all(b"hello").unwrap();
    let mut back = [0u8; 5];
    client.set_read_timeout(Some(std::time::Duration::from_millis(1))).unwrap();
    let mut got = 0;
    for _ in 0..1000 {
        let next = conn.on_event(&mut scratch, BUDGET).unwrap();
        assert_eq!(next, Next { wants_read: true, wants_write: false, more: false });
        match client.read(&mut back[got..]) {
            Ok(n) => got += n,
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(err) => panic!("{err}"),
        }
        if got == back.len() {
            break;
        }
    }
    assert_eq!(&back, b"hello");
    // Everything went straight back: the connection holds no buffer of its own.
    assert_eq!(conn.pending(), 0);
    assert_eq!(conn.pending.capacity(), 0);
}

#[test]
fn a_client_that_never_reads_fills_the_bound_and_is_then_not_read() {
    let (mut client, server) = pair();
    let limit = 4096;
    let mut conn = Connection::new(server, limit);
    let mut scratch = vec![0u8; 64 * 1024];
    // Send far more than loopback's socket buffers hold, without reading any of it back.
    client.set_nonblocking(true).unwrap();
    let data = pattern(32 << 20);
    let mut sent = 0;
    for _ in 0..10_000 {
        match client.write(&data[sent..]) {
            Ok(n) => sent += n,
            Err(err) if err.kind() == ErrorKind::WouldBlock => {}
            Err(err) => panic!("{err}"),
        }
        let next = conn.on_event(&mut scratch, BUDGET).unwrap();
        assert!(conn.pending() <= limit, "pending grew to {}", conn.pending());
        if next == (Next { wants_read: false, wants_write: true, more: false }) {
            break;
        }
    }
    // Full: the connection now only waits to write; the rest stays in the kernel.
    assert_eq!(conn.pending(), limit);
    assert_eq!(conn.next(), Next { wants_read: false, wants_write: true, more: false });
    assert!(sent > limit);

    // Now the client reads. Each WRITABLE event drains and then resumes reading by itself;
    // the client finishes sending, half-closes, and gets every byte back in order.
    let mut back = Vec::with_capacity(data.len());
    let mut chunk = vec![0u8; 256 * 1024];
    let mut closed = false;
    for _ in 0..100_000 {
        if sent < data.len() {
            match client.write(&data[sent..]) {
                Ok(n) => sent += n,
                Err(err) if err.kind() == ErrorKind::WouldBlock => {}
                Err(err) => panic!("{err}"),
            }
        } else if !closed {
            client.shutdown(net::Shutdown::Write).unwrap();
            closed = true;
        }
        match client.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => back.extend_from_slice(&chunk[..n]),
            Err(err) if err.kind() == ErrorKind::WouldBlock => {
                // Bytes may be in flight: on a busy machine the kernel moves them in
                // softirq work that this loop would otherwise keep off the CPU.
                std::thread::sleep(std::time::Duration::from_micros(50));
            }
            Err(err) => panic!("{err}"),
        }
        conn.on_event(&mut scratch, BUDGET).unwrap();
        assert!(conn.pending() <= limit);
        if back.len() == data.len() && conn.next().done() {
            break;
        }
    }
    assert_eq!(back.len(), data.len());
    assert!(back == data, "the echo came back altered or out of order");
    assert!(conn.next().done());
    // Done: the model's close is the client's EOF, right after the last byte.
    drop(conn);
    client.set_nonblocking(false).unwrap();
    assert_eq!(client.read(&mut chunk).unwrap(), 0);
}

#[test]
fn a_call_stops_at_its_budget_and_says_there_is_more() {
    let (mut client, server) = pair();
    let mut conn = Connection::new(server, 1024);
    let mut scratch = vec![0u8; 1024];
    // The caller's budget, not one of the connection's own, bounds the turn.
    let budget = 5;
    // More than one turn's worth of 1 KiB reads, all waiting before the first call
    // (loopback delivers a write to the receiving socket before `write` returns).
    let data = pattern(1024 * budget * 5 / 2);
    client.write_all(&data).unwrap();
    let turn = 1024 * budget;
    let mut back = vec![0u8; data.len()];
    let next = conn.on_event(&mut scratch, budget).unwrap();
    assert_eq!(next, Next { wants_read: true, wants_write: false, more: true });
    // Exactly one turn's worth came back, and the rest is still in the socket.
    client.read_exact(&mut back[..turn]).unwrap();
    client.set_nonblocking(true).unwrap();
    assert_eq!(client.read(&mut back[turn..]).unwrap_err().kind(), ErrorKind::WouldBlock);
    client.set_nonblocking(false).unwrap();
    // The next turn takes as much again, and the third finds the socket empty.
    assert!(conn.on_event(&mut scratch, budget).unwrap().more);
    assert!(!conn.on_event(&mut scratch, budget).unwrap().more);
    client.read_exact(&mut back[turn..]).unwrap();
    assert!(back == data, "the echo came back altered or out of order");
}

#[test]
fn half_close_gets_every_byte_back_then_eof() {
    let (mut client, server) = pair();
    let mut conn = Connection::new(server, 16 * 1024);
    let mut scratch = vec![0u8; 16 * 1024];
    let data = pattern(100_000);
    client.write_all(&data).unwrap();
    client.shutdown(net::Shutdown::Write).unwrap();
    settle(&mut conn, &mut scratch, |conn| conn.next().done());
    // Done means the buffer is gone too.
    assert_eq!(conn.pending.capacity(), 0);
    // The model closes a connection that is done, which sends the client its EOF.
    drop(conn);
    let mut back = Vec::new();
    client.read_to_end(&mut back).unwrap();
    assert!(back == data, "got {} of {} bytes, or altered", back.len(), data.len());
}

#[test]
fn interests_follow_what_the_connection_wants() {
    let next = |wants_read, wants_write| Next { wants_read, wants_write, more: false };
    assert_eq!(next(true, false).interest(), Some(Interest::READABLE));
    assert_eq!(next(false, true).interest(), Some(Interest::WRITABLE));
    assert_eq!(next(true, true).interest(), Some(Interest::READABLE | Interest::WRITABLE));
    assert_eq!(next(false, false).interest(), None);
}

#[test]
fn a_reset_is_an_error_for_this_connection_only() {
    let (client, server) = pair();
    let mut conn = Connection::new(server, 1024);
    let mut scratch = vec![0u8; 1024];
    // SO_LINGER 0 turns close into a reset (RST) instead of an orderly FIN.
    socket2::SockRef::from(&client).set_linger(Some(std::time::Duration::ZERO)).unwrap();
    drop(client);
    let mut result = Ok(conn.next());
    for _ in 0..1000 {
        result = conn.on_event(&mut scratch, BUDGET);
        if result.is_err() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert_eq!(result.unwrap_err().kind(), ErrorKind::ConnectionReset);
}
