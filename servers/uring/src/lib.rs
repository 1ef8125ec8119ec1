//! The io_uring model: one thread, one ring, and the kernel doing the I/O on its own.
//!
//! # Readiness against completion
//!
//! The mio model asks epoll *which sockets are ready*. An event says "you may read now" and
//! nothing more: the loop must still call `read`, then `write`, then `read` again until
//! `WouldBlock`, each a system call, each for one socket. Readiness is a promise that a
//! call will not block, and the work is still ours.
//!
//! io_uring turns that around. The loop *asks for the I/O itself* by writing requests
//! (submission queue entries) into a ring of memory shared with the kernel, and the kernel
//! answers with completions in a second shared ring: not "you may read" but "this read
//! happened, here are the bytes, in buffer 17". The calls that mio makes one by one become
//! entries in a queue, and one `io_uring_enter` hands them all over and waits for the next
//! batch of answers. This model uses the features that make that worth having:
//!
//! - **Multishot accept** (`AcceptMulti`): one request accepts every connection for the
//!   life of the server, a completion per connection.
//! - **Multishot receive from a provided-buffer ring** (`RecvMulti`, `register_buf_ring`):
//!   one request per connection receives for as long as the connection lives. It holds no
//!   buffer while it waits; when bytes arrive the kernel takes a buffer from a pool that the
//!   loop registered (`buffers.rs`), fills it, and names it in the completion. A thousand
//!   idle connections cost a thousand armed requests in the kernel and no buffer at all.
//!   The buffers are consumed incrementally where the kernel can (Linux 6.12): each receive
//!   takes only the bytes it carries, so 64 KiB buffers serve 64-byte and 16 KiB receives
//!   alike (see *Big messages*).
//! - **Sends of owned buffers**: a send request takes a buffer away until its completion;
//!   see *Who owns a buffer*.
//! - **Batched submission** (`submit_and_wait`): each turn of the loop is one system call
//!   that carries every send and re-armed receive of the last batch, for every connection,
//!   and returns with the next batch of completions.
//! - **Setup flags**: a completion queue sized for multishot requests (`setup_cqsize`: they
//!   post many completions per submission), and where the kernel has them, SINGLE_ISSUER
//!   and DEFER_TASKRUN, which let the kernel finish network requests inside our own wait
//!   instead of interrupting the thread whenever a packet arrives (`ring.rs`).
//!
//! # Why batching is where the savings come from
//!
//! Each message costs the kernel the same network work either way: copying 64 bytes in and
//! out, running the loopback TCP stack for the echo, waking the client. What io_uring
//! removes is the crossings. The mio loop makes at least three system calls per message
//! (`read`, `write`, and the `read` that says `WouldBlock`), and each pays an entry and an
//! exit, a descriptor lookup and a socket lock. Here one `io_uring_enter` carries the sends
//! of every connection whose bytes came in during the last turn, and returns with the next
//! batch of receives, however many connections that is. How many depends on how fast the
//! work piles up: in the closed-loop benchmark (64 bytes, the generator on the other CPU)
//! a turn carried 1.3 to 14 messages, fewer when the server keeps up easily; 0.07 to 0.8
//! calls per message, against 2 to 3 for the mio loop (counted with `strace -c` and with
//! this server's `--stats`). With one connection there is nothing to batch: each call
//! carries one message, and io_uring's own bookkeeping per request (preparing it, the task
//! work that runs it, posting its completion) costs about what the calls it replaces did.
//!
//! The saving is bounded by what the crossings cost, and on this virtual machine they are
//! cheap next to the network stack: in a `perf` profile, TCP, IP and socket buffers were
//! three quarters of either server's CPU, system call entry, descriptor lookup and epoll
//! about 10% of mio's, and io_uring's bookkeeping about 6 to 8% of this server's. The README
//! has the measured CPU per message.
//!
//! Batches can also be made to form: `--coalesce-us N` lets a wait that finds fewer than 64
//! completions linger up to N microseconds for more (the kernel's minimum-wait timeout,
//! Linux 6.12; epoll has no such thing). Each message may then wait up to N microseconds
//! longer, nothing next to a round trip among a thousand busy connections, a lot for a lone
//! client, so it is off by default. The loop coalesces only after a turn that found work:
//! a lingering wait with nothing to find returns when its time is up, and an idle server
//! would otherwise wake every N microseconds.
//!
//! # Who owns a buffer while the kernel holds it
//!
//! In a readiness loop a buffer is lent to the kernel only for the length of a system call.
//! Here a request outlives the call that submitted it, and the memory it points at belongs
//! to the kernel until its completion arrives:
//!
//! - a provided buffer is the kernel's while it sits in the ring. The bytes a completion
//!   names are ours until the loop has copied them into the connection's own `pending`
//!   buffer, which it does at once (so a slow client never holds a buffer of the shared
//!   pool). A buffer consumed incrementally stays the kernel's, filled piece by piece by
//!   receives on any connection, until a completion says it is full; the loop recycles it
//!   then (a buffer consumed whole, after its one completion);
//! - a send's buffer is the kernel's from submission to completion: it must not be written,
//!   moved or freed meanwhile, so each connection has one send in flight and a second
//!   buffer that new bytes collect in (`conn.rs`);
//! - a connection's slot, and so its socket and buffers, is freed only when none of its
//!   requests is in flight: closing a socket does not end the requests on it, so a
//!   connection that fails is cancelled first and freed when the cancellation completes;
//! - at shutdown every request is cancelled, and the loop waits for every last completion
//!   before it closes the sockets and unregisters and frees the buffer pool.
//!
//! Rust's borrow checker cannot see any of this (the kernel is not Rust), so each place
//! that hands memory to the kernel is an `unsafe` push whose `SAFETY` note says why the
//! memory outlives the request.
//!
//! # What one connection costs
//!
//! A slab slot (the socket, two `Vec`s, a few flags; 64 bytes, checked by a test), an armed
//! receive in the kernel, and while it echoes, buffers of at most `--buffer` bytes together
//! (a connection keeps small ones, so that a 64-byte ping-pong allocates nothing per
//! message). Measured here, 10,000 idle connections added 0.7 MiB to the server's memory,
//! as they do to the mio model's; the armed receives live in kernel memory, which that
//! figure does not show. Per worker, fixed: the rings (1,024 submission and 8,192
//! completion entries, about 200 KiB) and the provided-buffer pool (64 buffers of 64 KiB,
//! or 1,024 of 4 KiB where the kernel consumes buffers whole: 4 MiB, touched at start-up
//! so that the server's memory does not creep up as the kernel cycles through it), so an
//! idle echo-uring starts at about 4 MiB more than echo-mio.
//!
//! # Backpressure, and the other hard parts
//!
//! - **Backpressure**: every receive is armed with a byte limit (Linux 6.17) equal to the
//!   room left under `--buffer`, so the kernel ends it before the bound can be crossed; a
//!   connection at its bound is simply not armed again until the send that drains it
//!   completes. On older kernels the loop cancels the receive at the bound instead, and
//!   completions already on their way may take the connection a batch past it.
//! - **A multishot request that ends** (a completion without `F_MORE`: the byte limit, an
//!   empty buffer ring (ENOBUFS), a completion queue overflow, an error): armed again if the
//!   connection still has room; ENOBUFS cannot repeat at once, since every buffer of the
//!   batch is back in the ring before the next submission.
//! - **A full submission queue**: requests wait in a backlog, in order, never dropped
//!   (`ring.rs`). **Completion overflow**: the kernel parks completions and hands them
//!   over at the next wait; multishot requests it ended that way are re-armed as above.
//! - **Half-close**: a receive of 0 bytes ends receiving; the pending echo still goes out,
//!   and the close after the last send's completion is the client's EOF.
//! - **Out of descriptors**: an accept that fails with EMFILE ends the multishot accept; it
//!   is armed again after a timer ([`ACCEPT_PAUSE`](echobench_common::ACCEPT_PAUSE)) or when
//!   a connection closes, never at once (that would spin through the ring).
//!
//! # Where it wins, and what breaks first
//!
//! Many busy connections with small messages: the system calls per message drop from
//! several to a small fraction of one, which is the whole difference on the server's CPU.
//! What breaks first is the same core as in the mio model: one ring runs on one thread
//! (`--workers N` runs N rings, each on its own SO_REUSEPORT listener; see `listen.rs`).
//! Then availability: containers often forbid io_uring (seccomp), so the binary probes at
//! start and says so in one line (`probe.rs`). And the pool: receives that find it full in
//! one batch (more than 4 MiB of them, or more than 1,024 receives where buffers are
//! consumed whole) end in ENOBUFS and cost a re-arm each.
//!
//! # Big messages
//!
//! A provided buffer consumed whole must be small, or 64-byte messages would each take a
//! big one; but then a big message is cut into many receives. With 4 KiB buffers, a 64 KiB
//! message took 16 receive completions, and since each completion started a send of what
//! had come in so far, about 12 sends; the mio model reads and writes its 16 KiB scratch
//! buffer about 4 times each (4.2 `sendto` and 4.9 `recvfrom` per message, with
//! `strace -c`). Every one of those sends runs the loopback TCP stack, the
//! client's receive included, for its segment. In the reference run of 2026-12-07 (the
//! size scenario, closed loop over 4 connections, this 2-vCPU virtual machine) that cost
//! echo-uring 46.5 us of CPU per 64 KiB message against 23.9-26.6 us for the others, and
//! 673 us per 1 MiB message against 282-310 us, at the same throughput.
//!
//! Incremental consumption removes the trade: receives take up to the room under
//! `--buffer` (16 KiB by default) from 64 KiB buffers, so a 64 KiB message arrives in 4
//! receives and goes back in 4 sends, as in the mio model (counted with `--stats`).
//! Measured on the same machine on 2026-12-07, in short runs while other jobs ran (load
//! average about 12, server and generator unpinned, 4 rounds interleaved, server CPU from
//! /proc over the window): at 64 KiB, 23-31 us per message against 38-40 us before and
//! 16-20 us for echo-mio in the same rounds (0.59-0.80 of before, round by round); at
//! 1 MiB, where flow control cuts the new receives to about 8 KiB on average, 667-862 us
//! against 783-951 us before (0.70-1.01) and 415-798 us for echo-mio. Placed as in the
//! reference run (server on CPU 0, generator on CPU 1; 3 rounds, load average about 7), at
//! 64 KiB: 48-60 us against 71-72 us before (0.68-0.84) and 44-48 us for echo-mio (1.00-1.30
//! of it). These figures are indicative only; the reference run has the intervals.
//!
//! In the reference run made after the change (results/2026-12-07-vm, the same machine,
//! standard profile, server on CPU 0 and generator on CPU 1), echo-uring still spent 1.51 to
//! 1.71 times the others' server CPU per 64 KiB message (59.0 us against 34.1-40.3 us) and
//! 1.46 to 1.71 times per 1 MiB message (561 us against 333-384 us), each ratio called by
//! the paired rounds, at the same throughput. The run before it, with whole 4 KiB buffers,
//! had 1.74-1.96x and 2.2-2.4x; two runs are not paired with each other, so that narrowing
//! is indicative, not a verdict.
//!
//! What remains is not wholly explained. Part of it is the price of the completion model at
//! this size. Every byte is copied
//! twice on the way in: by the kernel into the shared pool, then by the loop into the
//! connection's `pending`, so that no connection holds a pool buffer. And the kernel's
//! copy lands in pool memory handed out in ring order, not in one scratch buffer that
//! stays in cache as in the mio model. In a `perf` profile of the 64 KiB load, the kernel's
//! receive copy was 11% of echo-uring's samples against 7% of echo-mio's, and the loop's
//! own copy 5% more: together about 9 points of its samples, far short of the half to
//! seven tenths more CPU it spends. Sending straight from the pool would save the second copy, at the price of pool
//! buffers held by slow clients; this model does not.
//!
//! Run it with `cargo run --release -p echobench-uring -- --addr 127.0.0.1:7000`.

mod buffers;
mod conn;
pub mod listen;
mod probe;
mod ring;
mod worker;

pub use probe::{Capabilities, probe, unavailable};
pub use ring::RingSize;

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::AtomicUsize;
use std::thread;

use echobench_common::{Config, Listener, Shutdown, Summary};

use crate::ring::Stats;
use crate::worker::Worker;

/// How the rings are run, beyond the limits every model shares.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Rings, each on its own thread (and, on TCP, its own SO_REUSEPORT listener).
    pub workers: usize,
    /// The size of each ring and its buffer pool.
    pub ring: RingSize,
    /// Use the receive byte limit where the kernel has it (false: cancel at the bound, as
    /// on kernels before 6.17; for testing that path).
    pub recv_limit: bool,
    /// Consume provided buffers incrementally where the kernel can (false: whole 4 KiB
    /// buffers, as on kernels before 6.12; for testing that path).
    pub incremental_buffers: bool,
    /// Print each ring's counters on stderr at exit.
    pub stats: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            workers: 1,
            ring: RingSize::default(),
            recv_limit: true,
            incremental_buffers: true,
            stats: false,
        }
    }
}

/// Serves `listeners` with `options.workers` rings until `shutdown` fires, then cancels
/// and closes everything and returns what was served.
///
/// Ring `i` accepts on `listeners[i]`, or on the first listener when there are fewer
/// listeners than rings, as on a Unix socket; [`listen::bind`] binds one per ring where it
/// can. (They are bound before the caller prints the ready line, not here: a client that
/// connects on seeing it must find every SO_REUSEPORT listener in place, or the kernel
/// gives all its connections to the first.) The first ring runs on the calling thread,
/// each further ring on a thread of its own.
pub fn run(
    listeners: Vec<Listener>,
    shutdown: Shutdown,
    config: &Config,
    options: &Options,
) -> io::Result<Summary> {
    let mut caps = probe()?;
    caps.recv_limit &= options.recv_limit;
    caps.incremental_buffers &= options.incremental_buffers;
    let workers = options.workers.max(1);
    let Some(first) = listeners.first() else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "no listener to serve"));
    };
    // Accepted sockets inherit the listener's TCP_NODELAY (set by `listen::bind`, cleared
    // by `--nagle`), as in every other model: nothing is set per connection.
    let open = AtomicUsize::new(0);
    let serve = |index: usize| {
        let listener = listeners.get(index).unwrap_or(first);
        let (fd, shutdown_fd) = (listener.as_raw_fd(), shutdown.as_raw_fd());
        let result =
            Worker::new(fd, shutdown_fd, *config, caps, &options.ring, &open).and_then(Worker::run);
        match &result {
            // A ring that fails stops the others too, so that the error is not hidden
            // behind a server that half runs.
            Err(_) => shutdown.trigger(),
            Ok((summary, stats)) if options.stats => log_stats(index, summary, stats),
            Ok(_) => {}
        }
        result.map(|(summary, _)| summary)
    };
    thread::scope(|scope| {
        let others: Vec<_> = (1..workers).map(|index| scope.spawn(move || serve(index))).collect();
        let mut total = serve(0)?;
        for other in others {
            let summary = other.join().map_err(|_| io::Error::other("a worker panicked"))??;
            total.served += summary.served;
            total.rejected += summary.rejected;
        }
        Ok(total)
    })
}

/// One line of counters per ring, `name value` pairs that the tests read back.
fn log_stats(index: usize, summary: &Summary, stats: &Stats) {
    eprintln!(
        "{}: ring {index}: {} served, {} waits, {} early_submits, {} backlogged, \
         {} cq_overflows, {} completions, {} rearmed, {} enobufs, {} at_bound, \
         {} accept_pauses, {} recvs, {} sends",
        echobench_common::cli::program(),
        summary.served,
        stats.waits,
        stats.early_submits,
        stats.backlogged,
        stats.cq_overflows,
        stats.completions,
        stats.rearmed,
        stats.enobufs,
        stats.at_bound,
        stats.accept_pauses,
        stats.recvs,
        stats.sends,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use echobench_common::Endpoint;
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::{Duration, Instant};

    #[test]
    fn run_serves_a_listener_bound_elsewhere_and_stops_on_shutdown() {
        if let Some(reason) = unavailable() {
            return eprintln!("skipped: {reason}");
        }
        // common's bind sets no SO_REUSEPORT, so the two rings share the listener; its
        // TCP_NODELAY reaches every accepted connection by inheritance.
        let listener = Listener::bind(&Endpoint::parse("127.0.0.1:0").unwrap(), 16).unwrap();
        let Endpoint::Tcp(addr) = listener.local_endpoint().unwrap() else { unreachable!() };
        let shutdown = Shutdown::new().unwrap();
        let config = Config { buffer: 1, ..Config::default() };
        let options = Options { workers: 2, ..Options::default() };
        let server = {
            let shutdown = shutdown.clone();
            thread::spawn(move || run(vec![listener], shutdown, &config, &options))
        };
        // With `buffer` 1 a 2-byte echo is two 1-byte sends; under Nagle the second waits
        // about 40 ms for the client's delayed ACK, so 50 round trips would take 2 s.
        let mut client = TcpStream::connect(addr).unwrap();
        let started = Instant::now();
        for _ in 0..50 {
            client.write_all(b"hi").unwrap();
            let mut back = [0; 2];
            client.read_exact(&mut back).unwrap();
            assert_eq!(&back, b"hi");
        }
        assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
        shutdown.trigger();
        let summary = server.join().unwrap().unwrap();
        assert_eq!(summary, Summary { served: 1, rejected: 0 });
        assert_eq!(client.read(&mut [0; 1]).unwrap(), 0, "shutdown closed the connection");
    }
}
