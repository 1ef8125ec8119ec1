//! Clients that test the scheduling: many at once, ones that reset, say nothing, never read
//! or stream without pause, and small writes that Nagle's algorithm would hold back.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use socket2::SockRef;

use super::start_tcp;
use crate::client::{
    connect, pattern, round_trip, try_connect, try_round_trip, write_until_stalled,
};
use crate::proc;

/// 300 clients connect, wait until all are connected, then each makes three round trips of
/// its own message: every one gets exactly its own bytes back.
pub fn hundreds_of_concurrent_clients(bin: &str, extra: &[&str]) {
    const CLIENTS: usize = 300;
    const ROUNDS: usize = 3;
    let server = start_tcp(bin, extra, &[]);
    let addr = server.tcp_addr();
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let barrier = Arc::clone(&barrier);
            let client = move || -> Result<(), String> {
                let stream = try_connect(addr);
                // Every client reaches the barrier, connected or not, so that all of them
                // are open at once and a failed connect cannot strand the others here.
                barrier.wait();
                let mut stream = stream.map_err(|e| format!("client {i}: connect: {e}"))?;
                for round in 0..ROUNDS {
                    let message = format!("client {i} round {round}\n");
                    let back = try_round_trip(&mut stream, message.as_bytes())
                        .map_err(|e| format!("client {i} round {round}: {e}"))?;
                    if back != message.as_bytes() {
                        let back = String::from_utf8_lossy(&back);
                        return Err(format!("client {i} round {round} got {back:?}"));
                    }
                }
                Ok(())
            };
            // Small stacks: 300 client threads need little each.
            thread::Builder::new().stack_size(64 << 10).spawn(client).expect("spawn a client")
        })
        .collect();
    let failures: Vec<String> = clients
        .into_iter()
        .filter_map(|c| c.join().expect("client thread panicked").err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {CLIENTS} concurrent clients failed; first: {}",
        failures.len(),
        failures[0]
    );
}

/// Clients that abort (SO_LINGER 0, then close: a TCP reset) while the server is echoing
/// to them do not take the server down or disturb a client that was connected all along.
pub fn resetting_clients_do_not_disturb_others(bin: &str, extra: &[&str]) {
    let mut server = start_tcp(bin, extra, &[]);
    let addr = server.tcp_addr();
    let mut bystander = connect(addr);
    round_trip(&mut bystander, b"before the resets");
    for i in 0..10 {
        let mut client = connect(addr);
        // Send more than one echo buffer and read only a little of the echo, so the server
        // is mid-stream (reading, or writing back) when the reset lands. The write may time
        // out if the server pushes back; either way bytes are in flight.
        client.set_write_timeout(Some(Duration::from_millis(500))).unwrap();
        let _ = io::Write::write_all(&mut client, &pattern(512 << 10, i));
        let mut some = [0u8; 1024];
        client.read_exact(&mut some).expect("the server did not start echoing");
        SockRef::from(&client).set_linger(Some(Duration::ZERO)).unwrap();
        drop(client);
    }
    round_trip(&mut bystander, b"after the resets");
    let mut newcomer = connect(addr);
    round_trip(&mut newcomer, b"a new client after the resets");
    assert!(server.is_running(), "the server exited after clients reset their connections");
}

/// 50 clients connect and say nothing; a client connecting after them gets each of its
/// echoes within 5 s, and the silent ones are still connected afterwards.
pub fn silent_clients_do_not_delay_others(bin: &str, extra: &[&str]) {
    let server = start_tcp(bin, extra, &[]);
    let addr = server.tcp_addr();
    let silent: Vec<TcpStream> = (0..50).map(|_| connect(addr)).collect();
    let mut active = connect(addr);
    // Generous: an answer takes microseconds. Only a server that waits on a silent client
    // (one blocked in its read, or a pool whose workers all hold one) takes forever.
    active.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for round in 0..5 {
        let message = format!("active client, round {round}, behind 50 silent ones\n");
        match try_round_trip(&mut active, message.as_bytes()) {
            Ok(back) => assert_eq!(back, message.as_bytes()),
            Err(e) => panic!("an active client waited behind 50 silent ones: {e}"),
        }
    }
    // None of the silent clients was dropped to make room: each has nothing to read yet.
    for (i, client) in silent.iter().enumerate() {
        client.set_nonblocking(true).unwrap();
        match (&*client).read(&mut [0u8; 1]) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            other => panic!("silent client {i} should be open and unanswered, read gave {other:?}"),
        }
    }
}

/// A client writes up to 64 MiB and never reads. With `--buffer 4096` the server must stop
/// reading it once those 4 KiB are held (the kernel's TCP window then throttles the client),
/// so the anonymous memory of the server's process tree (its PSS without file pages, see
/// [`proc::tree_pss_anon_kib`]) grows by less than 1 MiB; meanwhile another client is
/// served. Measured here: 4 KiB (mio) to 50 KiB (fork, whose new child's own pages count) of
/// growth. A server that ignored `--buffer` for its default 16 KiB could still pass, but not
/// one that held a megabyte for one client.
pub fn never_reading_client_keeps_memory_bounded(bin: &str, extra: &[&str]) {
    const FLOOD: usize = 64 << 20;
    const GROWTH_LIMIT_KIB: u64 = 1 << 10;
    let server = start_tcp(bin, extra, &["--buffer", "4096"]);
    let addr = server.tcp_addr();
    let mut other = connect(addr);
    round_trip(&mut other, b"warm up");
    let before = proc::tree_pss_anon_kib(server.pid());

    // Bounded three ways: 64 MiB, 10 s, or a stall, which is what a bounded server causes
    // once the buffers along the way are full.
    let flooder = connect(addr);
    let sent = write_until_stalled(&flooder, &pattern(FLOOD, 64), Duration::from_secs(10));
    // A server that buffers without bound may still be reading what we sent; sample its
    // memory a few times and keep the highest.
    let mut after = 0;
    for _ in 0..3 {
        after = after.max(proc::tree_pss_anon_kib(server.pid()));
        thread::sleep(Duration::from_millis(100));
    }
    round_trip(&mut other, b"still served beside a client that never reads");
    let growth = after.saturating_sub(before);
    // Shown with `--nocapture`: how far from the limit this model sits.
    eprintln!("never-reading client: sent {sent} bytes, anonymous PSS {before} -> {after} KiB");
    assert!(
        growth < GROWTH_LIMIT_KIB,
        "the server's anonymous PSS grew by {growth} KiB (from {before} to {after} KiB) while a \
         client sent {sent} bytes and read none: memory per connection must be bounded by its \
         buffer"
    );
}

/// TCP_NODELAY on accepted connections. With `--buffer 1` the server echoes a 2-byte message
/// as two 1-byte writes. Under Nagle's algorithm the second waits until the first is
/// acknowledged, and the client delays that ACK by about 40 ms; with TCP_NODELAY both leave
/// at once. Measured on this machine: 200 such round trips took 8.8 s without TCP_NODELAY and
/// 5 ms with it, so the 2 s limit sits far from both. (A 1-byte ping-pong would not show it:
/// Nagle sends a small segment at once when nothing is unacknowledged.)
pub fn small_writes_are_not_held_back_by_nagle(bin: &str, extra: &[&str]) {
    const ROUNDS: usize = 200;
    const LIMIT: Duration = Duration::from_secs(2);
    let server = start_tcp(bin, extra, &["--buffer", "1"]);
    let mut client = connect(server.tcp_addr());
    let started = Instant::now();
    for round in 0..ROUNDS {
        if round + 1 == ROUNDS {
            eprintln!("nagle: {ROUNDS} round trips of 2 bytes in {:?}", started.elapsed());
        }
        round_trip(&mut client, &[b'a' + (round % 26) as u8, b'!']);
        let elapsed = started.elapsed();
        assert!(
            elapsed < LIMIT,
            "{} round trips of 2 bytes took {elapsed:?}: about 40 ms each is Nagle's delay, \
             so TCP_NODELAY is not set on accepted connections",
            round + 1
        );
    }
}

/// `--nagle` reaches the model's accepted connections: the same 2-byte round trips as above
/// then wait for the delayed ACK. 20 of them took 0.88 s here (44 ms each; the first few can
/// be quick while the client still acknowledges at once), so 0.3 s sits far below that and
/// far above the 0.5 ms they take with TCP_NODELAY.
pub fn nagle_flag_leaves_small_writes_waiting(bin: &str, extra: &[&str]) {
    const ROUNDS: usize = 20;
    const AT_LEAST: Duration = Duration::from_millis(300);
    let server = start_tcp(bin, extra, &["--buffer", "1", "--nagle"]);
    let mut client = connect(server.tcp_addr());
    let started = Instant::now();
    for round in 0..ROUNDS {
        round_trip(&mut client, &[b'a' + (round % 26) as u8, b'!']);
    }
    let elapsed = started.elapsed();
    eprintln!("nagle: {ROUNDS} round trips of 2 bytes under --nagle in {elapsed:?}");
    assert!(
        elapsed >= AT_LEAST,
        "{ROUNDS} round trips under --nagle took only {elapsed:?}: the flag did not reach the \
         accepted connections (TCP_NODELAY is still on)"
    );
}

/// Clients that stream 64 KiB writes without pause, and beside them a client doing 50 small
/// round trips: each of its round trips takes well under 250 ms.
///
/// An event loop that serves a ready connection until `WouldBlock` never gets there with a
/// client that keeps the socket full, and every other connection on that loop waits. Measured
/// here before the event loops got a per-turn budget, the worst round trip was 0.4 to 1.4 s
/// on `echo-mio`; with it, 1.4 to 28 ms (and up to 57 ms for `echo-hybrid`); the thread
/// model, where the kernel's scheduler shares the CPU, up to 16 ms.
///
/// There are two streamers because the ping-pong client must share an event loop with one
/// of them. The hybrid model runs with two workers in this suite and hands each new
/// connection to the worker with the fewest, so the two streamers take one worker each and
/// the ping-pong client, arriving last, joins one of them. (A model with more loops than
/// streamers would need more streamers here.)
pub fn streaming_clients_do_not_stall_a_ping_pong_client(bin: &str, extra: &[&str]) {
    const STREAMERS: u64 = 2;
    const ROUND_TRIPS: u64 = 50;
    // Far from both outcomes: an order of magnitude above the fair servers on this busy
    // machine, and below the stall the case looks for.
    const LIMIT: Duration = Duration::from_millis(250);
    let server = start_tcp(bin, extra, &[]);
    let addr = server.tcp_addr();
    let stop = StopOnDrop(Arc::new(AtomicBool::new(false)));
    let streamers: Vec<Streamer> =
        (0..STREAMERS).map(|seed| Streamer::start(addr, seed, &stop.0)).collect();
    // Once each streamer has had a megabyte back, each is being served, and stays busy.
    let deadline = Instant::now() + Duration::from_secs(10);
    while streamers.iter().any(|s| s.echoed.load(Ordering::Relaxed) < 1 << 20) {
        assert!(Instant::now() < deadline, "the streamers got no megabyte back in 10 s");
        thread::sleep(Duration::from_millis(5));
    }

    let mut pinger = connect(addr);
    // A read that takes longer than this has failed the case anyway; do not wait 10 s.
    pinger.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut times = Vec::with_capacity(ROUND_TRIPS as usize);
    for round in 0..ROUND_TRIPS {
        let message = pattern(100, 1000 + round);
        let started = Instant::now();
        let back = try_round_trip(&mut pinger, &message);
        let took = started.elapsed();
        times.push(took);
        match back {
            Ok(back) => assert!(back == message, "round trip {round} came back altered"),
            Err(e) => panic!("round trip {round} beside {STREAMERS} streamers failed: {e}"),
        }
        assert!(
            took < LIMIT,
            "round trip {round} of 100 bytes took {took:?} beside {STREAMERS} streaming \
             clients: one connection holds the event loop while it has data"
        );
        // Spread the round trips over about a second of streaming.
        thread::sleep(Duration::from_millis(20));
    }
    stop.0.store(true, Ordering::Relaxed);
    let mut streamed = 0;
    for (i, streamer) in streamers.into_iter().enumerate() {
        let (sent, echoed) = streamer.finish();
        assert_eq!(echoed, sent, "streamer {i} sent {sent} bytes and got {echoed} back");
        streamed += sent;
    }
    times.sort_unstable();
    eprintln!(
        "fairness: {ROUND_TRIPS} round trips beside {STREAMERS} streamers ({} MiB streamed): \
         median {:?}, worst {:?}",
        streamed >> 20,
        times[times.len() / 2],
        times[times.len() - 1]
    );
}

/// One streaming client: a thread that writes 64 KiB chunks back to back until told to stop
/// (or 5 s pass), then half-closes, and a thread that reads the echo to its end.
struct Streamer {
    /// Bytes echoed so far, for the case to see that streaming has begun.
    echoed: Arc<AtomicU64>,
    writer: JoinHandle<io::Result<u64>>,
    reader: JoinHandle<io::Result<u64>>,
}

impl Streamer {
    fn start(addr: SocketAddr, seed: u64, stop: &Arc<AtomicBool>) -> Streamer {
        let mut stream = connect(addr);
        round_trip(&mut stream, b"streamer starting");
        let mut writing = stream.try_clone().expect("clone the streamer's socket");
        let stop = Arc::clone(stop);
        let writer = thread::spawn(move || {
            let chunk = pattern(64 << 10, seed);
            let started = Instant::now();
            let mut sent = 0;
            while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(5) {
                writing.write_all(&chunk)?;
                sent += chunk.len() as u64;
            }
            writing.shutdown(Shutdown::Write)?;
            Ok(sent)
        });
        let echoed = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&echoed);
        let reader = thread::spawn(move || {
            let mut chunk = vec![0u8; 64 << 10];
            loop {
                match stream.read(&mut chunk)? {
                    0 => return Ok(counter.load(Ordering::Relaxed)),
                    n => counter.fetch_add(n as u64, Ordering::Relaxed),
                };
            }
        });
        Streamer { echoed, writer, reader }
    }

    /// Waits for both threads and returns the bytes sent and the bytes echoed.
    fn finish(self) -> (u64, u64) {
        let sent = self.writer.join().unwrap().expect("a streamer's write failed");
        let echoed = self.reader.join().unwrap().expect("a streamer's read failed");
        (sent, echoed)
    }
}

/// Tells the streamers to stop when dropped, so that a failed assertion stops them too.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}
