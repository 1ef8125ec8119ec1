//! Many clients on one socket: each gets its own replies and nobody else's, and one that
//! never reads holds up nobody.

use std::io;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use super::{Client, start_udp, start_unix, tagged};
use crate::assert_same;

/// Clients in [`hundred_clients_each_get_only_their_own_replies`].
const CLIENTS: u64 = 100;

/// Round trips per client there.
const ROUNDS: u64 = 20;

/// 100 clients, each its own socket (its own port), all sending at once, 20 round trips
/// each with datagrams of different sizes: every reply a client receives is byte for byte
/// one of its own datagrams (the id and sequence number inside say which), and each of its
/// datagrams is answered.
///
/// UDP may drop, and here it does: 100 datagrams of up to 1.9 KB in flight at once can
/// overflow the server's default receive buffer (212,992 bytes, counted in the kernel's
/// memory per datagram, several KB each), and the kernel then drops the newest and counts
/// it in `/proc/net/snmp` `Udp: RcvbufErrors`, which rose by exactly the retries in every
/// run checked (22 to 34 of 2,000 against a debug build). So a client that waited a second
/// in vain sends the same datagram again (a late duplicate of an earlier reply is then
/// skipped), and the case allows up to a tenth of the datagrams to need it: more would mean
/// a server that loses datagrams far beyond what its buffer explains.
pub fn hundred_clients_each_get_only_their_own_replies(bin: &str, extra: &[&str]) {
    let server = start_udp(bin, extra, &[]);
    let addr = server.addr().clone();
    let start = Barrier::new(CLIENTS as usize);
    let retries: u64 = thread::scope(|scope| {
        let threads: Vec<_> = (0..CLIENTS)
            .map(|id| {
                let (addr, start) = (&addr, &start);
                scope.spawn(move || {
                    let client = Client::try_to(addr).expect("cannot make a client");
                    client.set_timeout(Duration::from_secs(1)).unwrap();
                    start.wait();
                    (0..ROUNDS).map(|seq| echo_with_retries(&client, id, seq)).sum::<u64>()
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().expect("a client failed")).sum()
    });
    eprintln!("{CLIENTS} clients x {ROUNDS} round trips: {retries} retries");
    let allowed = CLIENTS * ROUNDS / 10;
    assert!(retries <= allowed, "{retries} datagrams had to be sent again (at most {allowed})");
}

/// Sends client `id`'s datagram `seq` until its echo comes back (at most 5 tries); panics on
/// a reply that is not exactly one of this client's datagrams. Returns the retries.
fn echo_with_retries(client: &Client, id: u64, seq: u64) -> u64 {
    // Sizes from 16 to 1,916 bytes, different for each client and round.
    let datagram = tagged(id, seq, 16 + ((id * 31 + seq * 97) % 1901) as usize);
    let mut buf = vec![0u8; 4096];
    for attempt in 0..5 {
        client.send(&datagram).unwrap_or_else(|e| panic!("client {id}: send failed: {e}"));
        loop {
            let len = match client.recv(&mut buf) {
                Ok(len) => len,
                Err(e)
                    if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) =>
                {
                    break;
                }
                Err(e) => panic!("client {id}: receive failed: {e}"),
            };
            assert!(len >= 16, "client {id} received a {len}-byte reply; it sends 16 or more");
            let who = u64::from_le_bytes(buf[..8].try_into().unwrap());
            let which = u64::from_le_bytes(buf[8..16].try_into().unwrap());
            assert_eq!(who, id, "client {id} received a reply meant for client {who}");
            assert!(which <= seq, "client {id} received a reply to {which} before sending it");
            let expected = tagged(id, which, 16 + ((id * 31 + which * 97) % 1901) as usize);
            assert_same(&expected, &buf[..len]);
            if which == seq {
                return attempt;
            }
            // A late echo of an earlier datagram sent twice: already counted, skip it.
        }
    }
    panic!("client {id}: datagram {seq} was never echoed in 5 tries");
}

/// Over a Unix socket, a client that sends 50 datagrams and never reads fills its own queue
/// (`net.unix.max_dgram_qlen` datagrams, 10 by default), after which the server's echoes to
/// it are refused. A server that waited for room would stall for good; another client's 20
/// round trips must each take under 2 s, and the server must still be running.
pub fn a_unix_client_that_never_reads_does_not_stall_others(bin: &str, extra: &[&str]) {
    let (mut server, _tidy) = start_unix(bin, extra);
    let silent = Client::to(&server);
    for seq in 0..50 {
        silent.send(&tagged(7, seq, 64)).expect("the server drains its own queue");
    }
    let active = Client::to(&server);
    for seq in 0..20 {
        let started = Instant::now();
        active.round_trip(&tagged(8, seq, 64));
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(2),
            "round trip {seq} took {took:?} behind a client that never reads"
        );
    }
    assert!(server.is_running(), "the server exited");
    drop(silent);
}
