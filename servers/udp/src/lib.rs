//! The datagram model: one socket, no connections, every datagram echoed to its sender.
//!
//! ESSAY

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

/// Datagrams a worker takes before it polls again. Under a flood the socket never runs dry,
/// and this is how a worker still hears the shutdown event in time: 256 echoes take well
/// under a millisecond.
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
        let turn_ends = counts.received + TURN;
        while counts.received < turn_ends {
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
    /// The receive buffer of a socket, as the kernel reported it.
    pub rcvbuf: usize,
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
        eprintln!(
            "{program}: shut down after echoing {} of {} datagrams received ({} sends refused \
             by a full buffer, {} other send failures, {} truncated and dropped; receive \
             buffer {} bytes)",
            t.echoed, t.received, t.send_full, t.send_other, t.truncated, self.rcvbuf
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
