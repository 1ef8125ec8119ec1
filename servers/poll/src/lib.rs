//! # The poll model: one thread, one `poll(2)` over every connection
//!
//! ```text
//! cargo run --release -p echobench-poll -- --addr 127.0.0.1:7000
//! ```
//!
//! *Where the figures below come from:* those "measured here" were taken by hand on the
//! 2-CPU KVM virtual machine that makes the reference runs (results/README.md), on 2026-12-03;
//! identical runs there differ by a quarter or more. The suite's own comparison, with
//! intervals, is the reference run in results/latest.
//!
//! **How it schedules connections.** One thread keeps one array of `pollfd`s: the shutdown
//! handle, the listener, then every open connection, each entry naming a descriptor and the
//! events it waits for. It calls `poll(2)` on the whole array and sleeps until one of them
//! is ready; then it walks the array, and each connection whose entry came back with events
//! gets its turn: [`Connection::on_event`], the same state machine the mio and hybrid
//! loops drive (bounded buffer, backpressure, half-close), given a budget of
//! `READS_PER_TURN` reads. The
//! listener's turn accepts until `WouldBlock`.
//!
//! `poll` is level-triggered: it reports a socket for as long as the condition holds, not
//! once when it changes. That makes two things simpler than in the mio model. A connection
//! that stops at its budget with bytes still waiting needs no ready queue of our own: the
//! next `poll` reports it again, beside everyone else who is ready. And a connection that
//! misses an event loses nothing. The price is the opposite trap: an entry that asks for
//! what is always true is reported on every call, and the loop spins. So an entry asks for
//! `POLLOUT` only while bytes are pending (a socket can almost always take more), and stops
//! asking for `POLLIN` once the client has half-closed (end of file is readable for ever)
//! or the connection's buffer is full (backpressure: the bytes wait in the kernel).
//!
//! **The cost that epoll removed.** Every call hands the kernel the whole array: it copies
//! in 8 bytes per entry, asks every socket whether it is ready, and when none is, hooks the
//! thread onto every socket's wait queue, only to unhook it from all of them when one
//! wakes it. Back in user space the loop scans the array for the entries that came back.
//! So the work per wake-up grows with the connections *held*, not with the ones *active*:
//! one busy client beside 5,000 silent ones pays a walk over 5,002 entries for every
//! message it sends. epoll keeps the interest list in the kernel (one `epoll_ctl` when an
//! interest changes), hooks each socket once, and returns only the ready ones, so a wake-up
//! costs what is ready. (In exchange poll needs no system call to add, change or drop a
//! connection: with few connections, all of them busy, it is as cheap as epoll or cheaper.)
//!
//! **Why select(2) is worse still.** `select` takes three bitmaps of `FD_SETSIZE` bits,
//! which is 1024 on Linux and fixed when the C library was built. A descriptor numbered
//! 1024 or above cannot be put in the set at all: `FD_SET` writes past its end (glibc's
//! fortified build aborts instead). A server that keeps stdin, stdout, stderr and a
//! listener open can hold about a thousand connections, full stop. The kernel also
//! overwrites the bitmaps with its answer, so they are rebuilt before every call, and it
//! scans every descriptor number up to the highest, open or not. `poll` removed the limit
//! and the rebuilding, not the scan.
//!
//! **What one connection costs.** As in the mio model: a [`Connection`] (a socket, an empty
//! `Vec`, a few flags) plus its 8-byte `pollfd`; the pending buffer exists only under
//! backpressure. In the kernel, a socket and no epoll entry.
//!
//! **Where it wins.** Portability (every Unix has `poll`) and few connections, all busy:
//! then the scan finds work in every entry and nothing is wasted, and there are no
//! `epoll_ctl` calls per connection, which matters for short connections.
//!
//! **What breaks first.** Connections held. CPU per message grows with the size of the
//! array, so idle connections slow down the active ones, and the loop saturates its core
//! long before an epoll loop would. Then, as for mio, the one core and the descriptors
//! (EMFILE pauses accepting; see `PollLoop::accept_all`).
//!
//! **Measured here** (release build, server pinned to CPU 0 and loadgen to CPU 1, on a
//! 2-CPU machine shared with other builds at a load average of 5 to 11, so read the ratios
//! more than the figures). One active client beside N silent connections
//! (`loadgen --connections 1 --idle N`): server CPU per message 52 µs beside none, 426 µs
//! beside 1,000, 2,700 µs beside 2,500 and 6,200 µs beside 5,000, where echo-mio stayed at
//! 45 to 53 µs throughout; the active client's median round trip 62 µs, 285 µs, 3.9 ms and
//! 8.8 ms (echo-mio 46 to 61 µs), its p99 4.3, 9.4, 28 and 26 to 336 ms (echo-mio 3 to 6 ms,
//! this machine's noise). Nearly all of it (50 of 51 ticks) was system time: the kernel's
//! walk, about 0.4 µs per held connection per wake-up at 1,000 and 1.1 to 1.2 µs from 2,500
//! on, when the sockets' state apparently no longer fits in the caches. With 1,000
//! connections all busy (closed loop, 64 B) poll cost 20.9 µs per message against mio's
//! 19.6 (6% more, medians of seven interleaved runs): each call came back with hundreds of
//! ready connections (about 600 a call, counted with strace), so the walk is shared among
//! them, and what is left of the difference is the walk over the ones that were not ready.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Instant;

use echobench_common::conn::report;
use echobench_common::{
    ACCEPT_PAUSE, AcceptError, Config, Connection, Listener, MioListener, MioStream, Next,
    Shutdown, Summary, poll_timeout,
};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// Where the shutdown handle sits in the array.
const SHUTDOWN: usize = 0;
/// Where the listener sits; connections follow it.
const LISTENER: usize = 1;
/// How many entries precede the connections.
const FIXED: usize = 2;

/// The most reads one connection makes in its turn before the loop moves on: the mio
/// model's budget, for the same reason (its *Fairness* section has the measurements).
/// Without it a client that keeps its socket full would keep the loop to itself. Here the
/// loop needs nothing more: a connection that stopped at its budget still has bytes
/// waiting, and level-triggered `poll` reports it again on the next call.
const READS_PER_TURN: usize = 16;

/// Serves `listener` on the calling thread until `shutdown` fires, then closes every
/// connection and returns what it served.
pub fn run(listener: Listener, shutdown: Shutdown, config: &Config) -> io::Result<Summary> {
    // Non-blocking: accepting until WouldBlock must not sleep in accept.
    let listener = listener.into_mio()?;
    let mut event_loop = PollLoop {
        fds: vec![
            PollFd::new(shutdown.as_fd(), PollFlags::POLLIN),
            PollFd::new(listener.as_fd(), PollFlags::POLLIN),
        ],
        connections: Vec::new(),
        listener: &listener,
        scratch: vec![0; config.buffer],
        config: *config,
        paused_until: None,
        summary: Summary::default(),
    };
    event_loop.serve()
}

/// The loop's state. The array and the connections run in step: `connections[i]` owns the
/// descriptor in `fds[FIXED + i]`.
#[derive(Debug)]
struct PollLoop<'a> {
    /// What `poll` is given: shutdown, listener, then one entry per connection.
    fds: Vec<PollFd<'a>>,
    /// Open connections, in the order of their entries.
    connections: Vec<Connection>,
    listener: &'a MioListener,
    /// The one read buffer, lent to whichever connection is being served.
    scratch: Vec<u8>,
    config: Config,
    /// While out of file descriptors: when to try accepting again. The listener's entry
    /// asks for nothing meanwhile, or level-triggered `poll` would report the waiting
    /// connections on every call and the loop would spin. A connection closing ends it.
    paused_until: Option<Instant>,
    summary: Summary,
}

impl PollLoop<'_> {
    /// Polls and serves until shutdown.
    fn serve(&mut self) -> io::Result<Summary> {
        loop {
            let timeout = match self.paused_until {
                Some(until) => poll_timeout(until.saturating_duration_since(Instant::now())),
                None => PollTimeout::NONE,
            };
            let mut ready = match poll(&mut self.fds, timeout) {
                Ok(ready) => ready,
                // A signal ran its handler; the shutdown entry says whether it was ours.
                Err(Errno::EINTR) => continue,
                Err(errno) => return Err(errno.into()),
            };
            if self.has_events(SHUTDOWN) {
                // Dropping a connection closes its socket; clients see EOF (or a reset if
                // they had bytes in flight). Entries go first: each borrows its socket.
                self.fds.truncate(FIXED);
                self.connections.clear();
                return Ok(self.summary);
            }
            let accept = self.has_events(LISTENER);
            ready -= i32::from(accept);
            // The scan: every entry, until the kernel's count of ready ones is used up.
            // From the end, so that closing entry `i` (which moves the last entry into its
            // place) moves one already served, and none is skipped or served twice.
            for i in (0..self.connections.len()).rev() {
                if ready <= 0 {
                    break;
                }
                if self.has_events(FIXED + i) {
                    ready -= 1;
                    self.serve_connection(i);
                }
            }
            if self.paused_until.is_some_and(|until| Instant::now() >= until) {
                self.resume_accepting();
            }
            if accept {
                self.accept_all()?;
            }
        }
    }

    /// Whether `poll` returned any event for entry `at` (POLLERR and POLLHUP included, which
    /// it reports whether asked for or not).
    fn has_events(&self, at: usize) -> bool {
        self.fds[at].revents().is_some_and(|events| !events.is_empty())
    }

    /// Gives connection `i` its turn, then closes it or updates what its entry asks for.
    fn serve_connection(&mut self, i: usize) {
        // The one call into the shared state machine. What the event was does not matter:
        // the connection tries whatever its state allows, and an error or hang-up shows up
        // as a failed read or write.
        match self.connections[i].on_event(&mut self.scratch, READS_PER_TURN) {
            Ok(next) if !next.done() => self.fds[FIXED + i].set_events(interest(next)),
            Ok(_) => self.close(i),
            Err(err) => {
                report(&err);
                self.close(i);
            }
        }
    }

    /// Accepts every connection waiting in the backlog.
    ///
    /// Over `--max-conns` a connection is accepted and closed at once. Out of descriptors
    /// (EMFILE, ENFILE) accepting pauses for [`ACCEPT_PAUSE`] or until a connection closes.
    fn accept_all(&mut self) -> io::Result<()> {
        loop {
            let stream = match self.listener.accept() {
                Ok(stream) => stream,
                Err(err) => match AcceptError::classify(&err) {
                    AcceptError::WouldBlock => return Ok(()),
                    AcceptError::Retry => continue,
                    AcceptError::OutOfResources => {
                        self.pause_accepting();
                        return Ok(());
                    }
                    AcceptError::Fatal => return Err(err),
                },
            };
            if self.connections.len() >= self.config.max_conns {
                self.summary.rejected += 1;
                continue; // `stream` is dropped here, which closes it.
            }
            self.add(stream);
        }
    }

    /// Appends a new connection and its entry, waiting to read: the client speaks first.
    fn add(&mut self, stream: MioStream) {
        let fd = stream.as_fd().as_raw_fd();
        // SAFETY: the entry is removed from `fds` before, or together with, the connection
        // that owns `fd` (see `close` and shutdown in `serve`), so the descriptor stays open
        // for as long as the entry refers to it.
        let entry = PollFd::new(unsafe { BorrowedFd::borrow_raw(fd) }, PollFlags::POLLIN);
        self.fds.push(entry);
        self.connections.push(Connection::new(stream, self.config.buffer));
        self.summary.served += 1;
    }

    /// Closes connection `i`: its entry first, then the connection, which closes the socket.
    /// The last entry and connection move into the gap, so the array stays dense.
    fn close(&mut self, i: usize) {
        self.fds.swap_remove(FIXED + i);
        drop(self.connections.swap_remove(i));
        // One descriptor just came free: a pause for lack of them can end now.
        if self.paused_until.is_some() {
            self.resume_accepting();
        }
    }

    /// Stops asking about the listener until the pause is over.
    fn pause_accepting(&mut self) {
        self.paused_until = Some(Instant::now() + ACCEPT_PAUSE);
        self.fds[LISTENER].set_events(PollFlags::empty());
    }

    /// Asks about the listener again. Level-triggered, the next `poll` reports any
    /// connection that waited in the backlog meanwhile.
    fn resume_accepting(&mut self) {
        self.paused_until = None;
        self.fds[LISTENER].set_events(PollFlags::POLLIN);
    }
}

/// The events an entry asks for, from what its connection needs next. `POLLOUT` only while
/// bytes wait to be written, `POLLIN` only while there is room and no end of file: anything
/// else would be reported on every call. (`next.more`, the budget running out, needs
/// nothing: level-triggered `poll` reports the unread bytes again.)
fn interest(next: Next) -> PollFlags {
    let mut events = PollFlags::empty();
    events.set(PollFlags::POLLIN, next.wants_read);
    events.set(PollFlags::POLLOUT, next.wants_write);
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_asks_only_for_what_its_connection_needs() {
        let next = |wants_read, wants_write| Next { wants_read, wants_write, more: false };
        assert_eq!(interest(next(true, false)), PollFlags::POLLIN);
        assert_eq!(interest(next(false, true)), PollFlags::POLLOUT);
        assert_eq!(interest(next(true, true)), PollFlags::POLLIN | PollFlags::POLLOUT);
    }
}
