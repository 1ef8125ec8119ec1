//! The datagram model: one socket, no connections, every datagram echoed to its sender.
//!
//! *Where the figures below come from:* those "measured here" were taken by hand on the
//! 2-CPU KVM virtual machine that makes the reference runs (results/README.md), on 2026-12-07;
//! identical runs there differ by a quarter or more. The suite's own comparison, with
//! intervals, is the reference run in results/latest.
//!
//! # What disappears without a connection
//!
//! Every other model in this suite is an answer to one question: who waits on which
//! connection? A process, a thread, a slot in an event loop, a task: each holds a
//! connection's socket, its half-read message and its place in a queue. Here there is no
//! connection to hold. The server binds one socket and the kernel queues on it every
//! datagram addressed to it, from any client; `recvfrom` hands over one datagram *and the
//! address it came from*, and `sendto` sends the echo back to that address. A client is
//! nothing but the return address in its datagram, known for the time between those two
//! calls and forgotten after. So gone are: `listen` and `accept` (and their backlog,
//! EMFILE and churn), the per-client socket and its buffers, the per-client state (no
//! half-read message: a datagram arrives whole or not at all, and is echoed in one call),
//! `--max-conns` and `--buffer`, and the concurrency model itself: one loop over one
//! socket serves every client, a hundred or a hundred thousand, in the order their
//! datagrams arrived. The server's memory is fixed at start: one 64 KiB buffer per worker
//! (K of them with `--batch K`), whatever the number of clients.
//!
//! What goes with the connection is everything TCP did for the client: nothing orders,
//! acknowledges, retransmits or paces datagrams. When the server falls behind, TCP would
//! have made the clients wait (their writes block once the windows fill); UDP loses.
//!
//! # When the receive buffer is full
//!
//! The socket's queue is bounded by SO_RCVBUF (`net.core.rmem_default`, 212,992 bytes
//! here; `--rcvbuf` sets it: the kernel caps the value asked for at `net.core.rmem_max`
//! and then doubles it for its own bookkeeping, so a socket gets at most twice `rmem_max`,
//! and reading SO_RCVBUF back gives the doubled figure). It is counted in the kernel's memory per datagram, not in payload:
//! measured here, the default buffer holds 256 datagrams of 0 or 64 bytes (832 bytes
//! each), 92 of 1,000 bytes, and 3 of 65,507. A datagram that arrives when the queue is
//! full is dropped by the kernel, silently for the sender, and counted: machine-wide in
//! `/proc/net/snmp` as `Udp: RcvbufErrors` (and `InErrors`), and per socket in the last
//! column (`drops`) of `/proc/net/udp`. The echo can be lost the same way at the client's
//! socket, if the client reads too slowly. A server that cannot keep up therefore shows no
//! growing latency, only loss: the queue bounds the wait (256 small datagrams at a few
//! microseconds each), and everything beyond it is gone.
//!
//! Unix datagram sockets differ in all of this: they are reliable and ordered. Their queue
//! holds `net.unix.max_dgram_qlen` datagrams (10 here) whatever their size, and a sender
//! that finds it full waits (or gets EAGAIN) instead of losing. So `--rcvbuf` is refused
//! for them, and here the server is the sender that must not wait: a client that does not
//! read its echoes would stall it and every other client. Every send is therefore made
//! with MSG_DONTWAIT, and an echo refused for a full buffer (EAGAIN, or ENOBUFS) is counted
//! in the exit summary and dropped. One client can still hurt everyone: Linux exempts a
//! receiver from the queue limit when it is *connected* to the sender, so a Unix client
//! that `connect`s to the server and stops reading piles the server's echoes up in its
//! queue, where they stay charged to the server's send buffer (212,992 bytes: it held 93
//! echoes of 1,000 bytes, or 278 of 64, measured) until it is full and every echo to anyone
//! fails, until that client reads or goes (`tests/smoke.rs` shows it). Over UDP the echo
//! leaves the server's account as soon as it is sent, and the client's own buffer drops
//! what it cannot hold.
//!
//! Sizes: an echo of every size from 0 bytes to the largest the family allows, 65,507 over
//! IPv4 and 65,527 over IPv6 (receive buffers of 64 KiB hold either), each one datagram
//! back for one in. A Unix datagram may be larger than 64 KiB (up to the sender's SO_SNDBUF
//! less 32 bytes); one that does not fit arrives cut short, is counted as truncated, and is
//! dropped, never echoed changed. (The simple loop asks `recvfrom` with MSG_TRUNC for the
//! datagram's real length; the batched one reads MSG_TRUNC in each header's flags.)
//!
//! # What batching buys
//!
//! With `--batch 1`, the default, each datagram costs two system calls, `recvfrom` and
//! `sendto`, plus a `poll` whenever the queue runs dry. With `--batch K`, `recvmmsg` takes
//! up to K queued datagrams in one call and `sendmmsg` sends their echoes in one more
//! (`batch.rs`). It saves only what is per call (the entry into the kernel, the socket
//! lookup and locking), not what is per datagram (a buffer allocated in the kernel, the
//! copies, and on loopback the whole delivery of each echo into the client's socket, which
//! runs on the server's CPU inside `sendto`). And it saves only when the queue holds
//! several datagrams: a server that keeps up finds one at a time, and `recvmmsg` then
//! returns one. So batching helps exactly when the server is behind.
//!
//! Measured here (release build; the server pinned with `taskset -c 0`, a small bounded
//! Rust client of 64-byte datagrams on CPU 1, not committed; server CPU is the sum of
//! `/proc/PID/task/*/schedstat`; 10 runs of 3 s per setting, interleaved, medians and
//! ranges). The machine was very busy (load average 5 to 8 from other builds): the server
//! got a median 12 to 15% of its CPU, so the rates say more about the neighbours than about
//! the server, and CPU per datagram is the figure to read.
//!
//! | load | `--batch` | server CPU per datagram | echoed per second |
//! |---|---|---|---|
//! | 128 in flight (8 sockets, 16 each) | 1 | 6.2 us (5.2 to 6.9) | 19k (10k to 83k) |
//! | | 32 | 5.5 us (4.4 to 6.7) | 25k (15k to 80k) |
//! | flood (4 sockets, 64 sent per turn, none awaited) | 1 | 6.3 us (5.2 to 7.9) | 23k (12k to 78k) |
//! | | 32 | 5.4 us (4.4 to 6.8) | 25k (19k to 81k) |
//!
//! A third series, 4 runs each, agreed: 6.1 against 5.0 us with 128 in flight, 5.7 against
//! 5.1 under the flood.
//!
//! System calls, counted with `strace -c -f` under the flood (which slows the server, so
//! counts only): 2.0 per datagram at `--batch 1` (70,270 calls for 35,005 echoes, 188 of
//! them `poll`), 0.071 at `--batch 32` (10,775 for 151,769: 31 datagrams per `recvmmsg` on
//! average; under a flood the queue is never short). Cutting the calls 28-fold saved about
//! 12% of CPU per datagram, because the calls were never the cost: a profile (`perf record
//! -g`) of the batched server under the flood puts 77% of its time in `sendmmsg`, a third of
//! that in `net_rx_action` (loopback delivering each echo into the client's socket, on the
//! server's CPU), and 21% in `recvmmsg`. What remains is the work per datagram: building a
//! packet, routing it, queueing it. With a whole CPU, that cost would put the server at
//! about 160k echoes per second unbatched and 180k batched (an estimate from the CPU per
//! datagram, not a measured rate).
//!
//! Under the flood the client offered a median 71k to 78k datagrams per second and the
//! server echoed 23k to 25k; the kernel dropped the rest at the server's full receive
//! buffer, about 50k per second, and `RcvbufErrors` rose in every run by exactly the
//! server socket's `drops` in `/proc/net/udp`: all the loss was there, none at the
//! clients. The server saw nothing wrong: its summary counts what reached it, every datagram
//! echoed. Even 128 in flight lost a few (a median 47 to 84 per second) whenever the server
//! was descheduled long enough for the client's retries to pile onto its queue.
//!
//! # SO_REUSEPORT for UDP
//!
//! `--workers N` binds N sockets to the same address with SO_REUSEPORT, one per worker
//! thread, each with its own receive queue. For every datagram the kernel picks one socket
//! of the group by a hash of its 4-tuple (source address and port, destination address and
//! port), so all of one client's datagrams go to the same worker, in order, and many
//! clients spread over the workers as a hash spreads them (100 clients on three workers,
//! in `tests/smoke.rs`, each got a share). One busy client cannot be spread: its datagrams
//! all land on one worker while the others idle. Each socket has its own SO_RCVBUF, so the
//! server as a whole queues N times as much. Unix datagram sockets have no SO_REUSEPORT:
//! over a Unix path the workers share one socket through duplicate descriptors, all asleep
//! in `poll` on it; a datagram wakes them all, one takes it, and the others find the queue
//! empty and sleep again (the thundering herd, in miniature). Under load several can still
//! echo at once, each taking the next datagram; the wake-ups are paid each time the queue
//! runs dry (not measured here).
//!
//! # What breaks first
//!
//! Delivery, and silently. Offered more than it can echo, the server keeps its pace and
//! the kernel drops the excess at the receive buffer, counting it in `RcvbufErrors`. The
//! queue is shared by every client on the socket, so a client that floods fills it for the
//! others too: beside the flood above (45% of it lost), a client sending one datagram at a
//! time and waiting for its echo lost 14 of 300 (4.7%). The loss falls mostly on the bursts
//! that fill the queue, a lone datagram more often finds room, but nobody is safe, and no
//! per-client limit exists to protect anyone: there is no client to attach it to. (A bigger
//! `--rcvbuf` absorbs a longer burst, not a higher rate.) Next, the single thread: one
//! worker is one core, and SO_REUSEPORT workers help only when the senders are many. Over
//! Unix sockets, the connected client that never reads.
//!
//! Run it with `cargo run --release -p echobench-udp -- --batch 32`.

pub mod args;
mod batch;
pub mod socket;

pub use socket::{DatagramEndpoint, DatagramSocket, MAX_DATAGRAM, bind};

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::thread;

use echobench_common::{Shutdown, interrupted, would_block};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::batch::Batch;

/// Datagrams a worker takes (batched: in as many calls of K as that needs) before it polls
/// again. Under a flood the socket never runs dry, and this is how a worker still hears the
/// shutdown event in time: 256 echoes take well under a millisecond (and a call that fails
/// for a moment, ENOMEM say, still ends the turn).
const TURN: u64 = 256;

/// Serves until `shutdown` fires or a worker fails, with one worker per socket (the calling
/// thread is the first), each moving up to `batch` datagrams per system call. Returns what
/// each worker did.
pub fn run(sockets: Vec<DatagramSocket>, shutdown: Shutdown, batch: usize) -> io::Result<Summary> {
    let Some((first, others)) = sockets.split_first() else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "--workers must be at least 1"));
    };
    let rcvbuf = first.recv_buffer_size()?;
    let worker = |socket: &DatagramSocket| {
        // Whatever ends this worker ends them all: a server with a dead worker would keep its
        // socket, and the datagrams the kernel hashes to it, unanswered.
        let _stop_all = StopAll(&shutdown);
        if batch <= 1 {
            echo_one_at_a_time(socket, &shutdown)
        } else {
            echo_in_batches(socket, &shutdown, batch)
        }
    };
    let results: Vec<io::Result<Counts>> = thread::scope(|scope| {
        let threads: Vec<_> = others.iter().map(|socket| scope.spawn(|| worker(socket))).collect();
        let mut results = vec![worker(first)];
        for thread in threads {
            results
                .push(thread.join().unwrap_or_else(|_| Err(io::Error::other("a worker panicked"))));
        }
        results
    });
    Ok(Summary { workers: results.into_iter().collect::<io::Result<_>>()?, rcvbuf })
}

/// The simple loop: wait until a datagram is queued, then take them one `recvfrom` and one
/// `sendto` at a time until none is left (or the turn is over), and wait again.
fn echo_one_at_a_time(socket: &DatagramSocket, shutdown: &Shutdown) -> io::Result<Counts> {
    let mut counts = Counts::default();
    // The one buffer of this worker, big enough for any datagram it echoes.
    let mut buf = vec![0u8; MAX_DATAGRAM];
    while wait_readable(socket, shutdown)? {
        for _ in 0..TURN {
            let got = match socket.recv_from(&mut buf) {
                Ok(got) => got,
                Err(err) if would_block(&err) => break,
                Err(err) if transient(&err) => continue,
                Err(err) => return Err(err),
            };
            counts.received += 1;
            if got.truncated {
                counts.truncated += 1;
                continue;
            }
            match socket.send_to(&buf[..got.len], &got.peer) {
                Ok(_) => counts.echoed += 1,
                Err(err) => counts.send_failed(&err),
            }
        }
    }
    Ok(counts)
}

/// The batched loop: the same, K datagrams per system call (see `batch.rs`).
fn echo_in_batches(socket: &DatagramSocket, shutdown: &Shutdown, k: usize) -> io::Result<Counts> {
    let mut counts = Counts::default();
    let mut batch = Batch::new(k);
    let fd = socket.as_raw_fd();
    while wait_readable(socket, shutdown)? {
        for _ in 0..TURN.div_ceil(k as u64) {
            let took = match batch.recv(fd) {
                Ok(took) => took,
                Err(err) if would_block(&err) => break,
                Err(err) if transient(&err) => continue,
                Err(err) => return Err(err),
            };
            counts.received += took.datagrams as u64;
            counts.truncated += took.truncated as u64;
            // sendmmsg stops at the first echo that fails; count it and go on after it.
            let mut next = 0;
            while next < batch.queued() {
                match batch.send(fd, next) {
                    Ok(sent) => {
                        counts.echoed += sent as u64;
                        next += sent;
                    }
                    Err(err) => {
                        counts.send_failed(&err);
                        next += 1;
                    }
                }
            }
            if took.datagrams < k {
                break; // The queue ran dry before the batch was full: no need to ask again.
            }
        }
    }
    Ok(counts)
}

/// Waits until `socket` has a datagram queued (true) or `shutdown` fires (false), asleep in
/// `poll(2)` meanwhile: no timeout, no spinning.
fn wait_readable(socket: &DatagramSocket, shutdown: &Shutdown) -> io::Result<bool> {
    let mut fds = [
        PollFd::new(socket.as_fd(), PollFlags::POLLIN),
        PollFd::new(shutdown.as_fd(), PollFlags::POLLIN),
    ];
    loop {
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => break,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(errno) => return Err(errno.into()),
        }
    }
    let fired = |fd: &PollFd<'_>| fd.revents().is_some_and(|r| !r.is_empty());
    Ok(!fired(&fds[1]))
}

/// Receive errors that say something about one datagram or one peer, never about our
/// socket: an ICMP error reported late, or the kernel short of memory for a moment.
fn transient(err: &io::Error) -> bool {
    interrupted(err)
        || matches!(
            err.raw_os_error(),
            Some(
                libc::ECONNREFUSED
                    | libc::ECONNRESET
                    | libc::EHOSTUNREACH
                    | libc::ENETUNREACH
                    | libc::ENOMEM
                    | libc::ENOBUFS
            )
        )
}

/// Fires the shutdown when dropped: on return, on error, or on a panic.
struct StopAll<'a>(&'a Shutdown);

impl Drop for StopAll<'_> {
    fn drop(&mut self) {
        self.0.trigger();
    }
}

/// What one worker did with the datagrams it received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Datagrams received, whole or not.
    pub received: u64,
    /// Echoes the kernel accepted. (Over UDP that is not delivery: the client's receive
    /// buffer may still drop it, and only the client's kernel counts that.)
    pub echoed: u64,
    /// Echoes refused because a buffer was full: our send buffer, or, over a Unix socket,
    /// the client's queue (EAGAIN), or the device queue (ENOBUFS). Counted and dropped: waiting
    /// would stall every other client behind the one not reading.
    pub send_full: u64,
    /// Echoes refused for any other reason: a Unix client that bound no path or has gone.
    pub send_other: u64,
    /// Datagrams longer than the buffer: received cut short, dropped, not echoed.
    pub truncated: u64,
}

impl Counts {
    fn send_failed(&mut self, err: &io::Error) {
        if would_block(err) || err.raw_os_error() == Some(libc::ENOBUFS) {
            self.send_full += 1;
        } else {
            self.send_other += 1;
        }
    }

    fn add(self, other: Counts) -> Counts {
        Counts {
            received: self.received + other.received,
            echoed: self.echoed + other.echoed,
            send_full: self.send_full + other.send_full,
            send_other: self.send_other + other.send_other,
            truncated: self.truncated + other.truncated,
        }
    }
}

/// What [`run`] returns after shutdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// One entry per worker, in worker order (worker 0 ran on the calling thread).
    pub workers: Vec<Counts>,
    /// The receive buffer of a UDP socket, as the kernel reported it (none for Unix).
    pub rcvbuf: Option<usize>,
}

impl Summary {
    /// Every worker's counts added up.
    pub fn total(&self) -> Counts {
        self.workers.iter().fold(Counts::default(), |total, w| total.add(*w))
    }

    /// Writes the account a server prints on stderr as it exits: the totals on one line,
    /// each worker's share on the next.
    pub fn log(&self, program: &str) {
        let t = self.total();
        let queue = match self.rcvbuf {
            Some(bytes) => format!("receive buffer {bytes} bytes"),
            None => "a Unix socket's queue".to_owned(),
        };
        eprintln!(
            "{program}: shut down after echoing {} of {} datagrams received ({} sends refused \
             by a full buffer, {} other send failures, {} truncated and dropped; {queue})",
            t.echoed, t.received, t.send_full, t.send_other, t.truncated
        );
        let each: Vec<String> = self
            .workers
            .iter()
            .enumerate()
            .map(|(i, w)| {
                format!(
                    "{i}: {}/{}/{}/{}/{}",
                    w.received, w.echoed, w.send_full, w.send_other, w.truncated
                )
            })
            .collect();
        eprintln!(
            "{program}: datagrams per worker (received/echoed/full/failed/truncated): {}",
            each.join(", ")
        );
    }
}
