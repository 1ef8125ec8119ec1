//! # The prefork model: a pool of processes, each accepting for itself
//!
//! ```text
//! cargo run --release -p echobench-prefork -- --addr 127.0.0.1:7000 --workers 8
//! ```
//!
//! *Where the figures below come from:* those "measured here" were taken by hand on the
//! 2-CPU KVM virtual machine that makes the reference runs (results/README.md), on 2026-12-03;
//! identical runs there differ by a quarter or more. The suite's own comparison, with
//! intervals, is the reference run in results/latest.
//!
//! **How connections are scheduled.** At start the parent forks `--workers` children, and
//! every child blocks in `accept` on the listener it inherited. When a connection arrives
//! the kernel wakes exactly one of them: a blocked `accept` waits in the listener's queue
//! of exclusive waiters, and each connection wakes the first in that queue, which is the
//! child that has waited longest, so connections go round the idle children in turn. That
//! child serves the connection with the plain blocking echo loop, one connection and no
//! other until the client closes, then goes back to `accept` at the end of the queue. The
//! parent never touches a connection. It keeps the pool: each child's state is a slot on a
//! scoreboard in shared memory (`scoreboard.rs`, after Apache's prefork MPM), and
//!
//! - when a child takes the last idle place it writes an eventfd, and the parent, asleep in
//!   `poll` on it, forks `--spare` more children at once (Apache grows by a few children a
//!   second; a client waiting in the backlog behind a full pool would notice that);
//! - once a second it retires idle children beyond twice `--spare`, keeping at least
//!   `--workers` (twice, so that a pool that has just grown by `--spare` is not shrunk
//!   again at the next tick under the same load, as Apache keeps MinSpareServers apart
//!   from MaxSpareServers). It marks their slots, and each one leaves the next time its
//!   `accept` returns, after serving the connection if it returned one, so no client is
//!   lost. An idle child's `accept` returns at least once a second (a receive timeout on
//!   the listener), which is what lets it notice;
//! - a child that dies is reaped and its place given to a new one.
//!
//! `--max-conns` is one count on the scoreboard that every child raises with an atomic
//! check-and-add after `accept`: over the limit the child closes the connection at once and
//! counts it rejected. The pool may hold one child more than `--max-conns` for that: while
//! every place is taken there is still a child in `accept` to turn newcomers away.
//!
//! **What pre-forking saves against fork.** Nothing happens per connection but the
//! connection: no `fork`, no `exit`, no `waitpid`, no parent in the path (the child accepts
//! the connection itself), and the child's memory is already warm. Under churn, a new
//! connection per message, that is the whole cost of the fork model gone: see the figures
//! below.
//!
//! **What it keeps.** A process per *concurrent* connection. A connection that stays open
//! holds its child, with its ~150 KiB of memory, its pid and its share of the scheduler,
//! exactly as in the fork model; 5,000 open connections are 5,000 processes. And a child
//! busy with a slow client serves nobody else: a client that arrives while every child is
//! busy waits in the listener's backlog until the parent has forked a child for it (a
//! millisecond or so) or a child comes free.
//!
//! **Where it wins.** Short connections that need isolation: a crash takes down one child,
//! the parent replaces it, and the code of a connection is straight-line blocking code.
//! That is Apache's prefork MPM, gunicorn's sync workers and PHP-FPM.
//!
//! **What breaks first.** Many concurrent connections, as for fork: processes, memory and
//! switches between address spaces. Then bursts: a burst larger than the idle children
//! waits for the pool to grow, `--spare` children per round trip through the parent.
//! Clients that hold a connection and say nothing (slowloris) pin a child each, and cost a
//! process each, until `--max-conns`.
//!
//! **The rules**, as for the fork model, whose code this crate uses for them
//! (`echobench_fork::Children`): the parent stays single-threaded and forks only then;
//! every child restores its signals, closes what it must not hold and dies with its
//! parent; every exit is reaped from a signalfd with `waitpid(WNOHANG)`; and shutdown sends
//! SIGTERM to every child, then SIGKILL, and reaps them all before returning.
//!
//! **Measured here** (release build, server pinned to CPU 0 and loadgen to CPU 1, on a
//! 2-CPU machine shared with other builds at a load average of 2 to 10, so read the ratios
//! more than the figures). Churn, `loadgen --churn --connections 8`: a median of 3,450
//! connections a second against fork's 1,100 (3.1x; eight interleaved pairs whose ratios
//! ran from 0.75x to 8.4x, and loadgen was saturated in every run, so both are lower
//! bounds), with a median round trip of 0.45 ms against 5.9 ms, for 105 µs of server CPU
//! per connection against 557 µs (5.3x, the steadier figure). The pool grew from 8 to 24
//! children, though only 8 clients were ever connected: a child counts as busy until it
//! reads its client's close, and a churning client connects again at once. Each child
//! served a median of 404 connections (the least 117, one forked late; the most 428): the
//! in-order wake-up spreads connections evenly. Holding 5,000 idle
//! connections took 5,008 children and about 4.4 s to grow to (fork: 3.8 s; one fork costs
//! about 0.5 ms measured here, and the backlog overflows meanwhile), and stopping them
//! took 1.4 s after SIGTERM (fork: 1.2 s): a process per connection pays for its exit too.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use echobench_common::{ACCEPT_PAUSE, Config, Listener, Shutdown, Summary, cli, poll_timeout};
use echobench_fork::Children;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, poll};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::unistd::Pid;
use socket2::SockRef;

mod scoreboard;
mod spread;
mod worker;
use scoreboard::{Scoreboard, State};
pub use spread::Spread;
use worker::Worker;

/// How often the parent retires idle children beyond twice `--spare`, and how long an idle
/// child's `accept` waits before it looks at its slot. Apache's maintenance runs once a
/// second too; a retired child lingers at most this long.
const TICK: Duration = Duration::from_secs(1);

/// The size of the pool, from the model's own flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Children forked at start; the pool never shrinks below it.
    pub workers: usize,
    /// Children forked at once when every child is busy; idle children beyond twice this
    /// many retire.
    pub spare: usize,
}

/// Serves connections with a pool of pre-forked children until `shutdown` fires; then stops
/// every child and returns what was served, after printing on stderr how many connections
/// each child served (see [`Spread`]).
///
/// The calling process must be single-threaded; a process with more than one thread gets
/// an error instead of an unsafe `fork`.
pub fn run(
    listener: Listener,
    shutdown: Shutdown,
    config: &Config,
    pool: &PoolConfig,
) -> io::Result<Summary> {
    let mut children = Children::new()?;
    // Every child blocks in accept on this one socket, so it stays blocking: O_NONBLOCK
    // would belong to the socket, shared by all. The receive timeout makes each blocked
    // accept return once a TICK with EAGAIN, so that a retired child notices.
    listener.set_nonblocking(false)?;
    SockRef::from(&listener).set_read_timeout(Some(TICK))?;
    // Non-blocking, so that the parent's drain of it never waits.
    let wake = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?;
    // One slot per child: at most --max-conns busy ones and one to refuse the next.
    let board = Scoreboard::new(config.max_conns.saturating_add(1))?;
    let mut parent = Parent {
        books: Books::new(board),
        listener,
        shutdown,
        wake,
        config: *config,
        pool: PoolConfig { workers: pool.workers.max(1), spare: pool.spare.max(1) },
        paused_until: None,
        fork_failures: 0,
    };
    let outcome = parent.serve(&mut children);
    // Closing the parent's copy of the listener removes a Unix socket's file; the children
    // hold theirs until they die, just below.
    let Parent { mut books, listener, fork_failures, .. } = parent;
    drop(listener);
    children.stop_all(|pid| books.forget(pid));
    if fork_failures > 0 {
        eprintln!("{}: fork failed {fork_failures} times; the pool grew late", cli::program());
    }
    let spread = Spread::of(&books.history, books.peak);
    eprintln!("{}: {spread}", cli::program());
    let summary = Summary { served: spread.total, rejected: books.board.rejected() };
    outcome.map(|()| summary)
}

/// The parent: its loop, and what it needs to fork a child.
#[derive(Debug)]
struct Parent {
    books: Books,
    /// Blocking, with a receive timeout; only the children accept on it.
    listener: Listener,
    /// Fires on SIGINT or SIGTERM; polled beside the children's signals.
    shutdown: Shutdown,
    /// Written by a child that took the last idle place.
    wake: EventFd,
    config: Config,
    pool: PoolConfig,
    /// While set, no child is forked: fork failed (out of processes or memory), and trying
    /// again at once would only fail again. A child's exit ends the pause early.
    paused_until: Option<Instant>,
    /// How many forks failed; reported once at the end.
    fork_failures: u64,
}

impl Parent {
    /// Forks the first children, then sleeps until shutdown, a child's exit, a full pool or
    /// the next tick, and answers each.
    fn serve(&mut self, children: &mut Children) -> io::Result<()> {
        self.grow(children);
        let mut next_tick = Instant::now() + TICK;
        loop {
            let wake_at = self.paused_until.map_or(next_tick, |until| until.min(next_tick));
            let mut fds = [
                PollFd::new(self.shutdown.as_fd(), PollFlags::POLLIN),
                PollFd::new(children.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.wake.as_fd(), PollFlags::POLLIN),
            ];
            let timeout = poll_timeout(wake_at.saturating_duration_since(Instant::now()));
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                // A signal (SIGINT, SIGTERM) ran its handler; its eventfd tells us the rest.
                Err(Errno::EINTR) => continue,
                Err(errno) => return Err(errno.into()),
            }
            let [stop, exited, woken] = fds.map(|fd| fd.revents().is_some_and(|r| !r.is_empty()));
            if stop {
                return Ok(());
            }
            if exited && children.reap(|pid| self.books.forget(pid)) > 0 {
                // A process slot came free: the moment to retry a failed fork.
                self.paused_until = None;
            }
            if woken {
                // Empty it, so that poll sleeps again; the board says how full the pool is.
                let _ = self.wake.read();
            }
            let now = Instant::now();
            if self.paused_until.is_some_and(|until| now >= until) {
                self.paused_until = None;
            }
            if now >= next_tick {
                self.books.retire_extra(&self.pool);
                next_tick = now + TICK;
            }
            self.grow(children);
        }
    }

    /// Forks children up to `--workers` (replacing any that died), then `--spare` more if
    /// every child is busy; never more than the board has slots for.
    fn grow(&mut self, children: &mut Children) {
        let refill = self.pool.workers.saturating_sub(children.len());
        self.fork_children(refill, children);
        // Idle at or below zero: every child is busy (see scoreboard.rs on why it is signed).
        if self.books.board.idle() <= 0 {
            self.fork_children(self.pool.spare, children);
        }
    }

    /// Forks up to `count` children, as many as the board has free slots for, unless forking
    /// is paused.
    fn fork_children(&mut self, count: usize, children: &mut Children) {
        let room = self.books.board.len().saturating_sub(children.len());
        for _ in 0..count.min(room) {
            if self.paused_until.is_some() {
                return;
            }
            if let Err(errno) = self.fork_child(children) {
                // EAGAIN (pid or memory limits) or ENOMEM. The waiting clients stay queued
                // in the backlog until a child comes free or a fork succeeds.
                if self.fork_failures == 0 {
                    eprintln!("{}: fork failed ({errno}): the pool cannot grow", cli::program());
                }
                self.fork_failures += 1;
                self.paused_until = Some(Instant::now() + ACCEPT_PAUSE);
            }
        }
    }

    /// Forks one child into a free slot.
    fn fork_child(&mut self, children: &mut Children) -> nix::Result<Pid> {
        let books = &mut self.books;
        let Some(index) = books.free.pop() else { return Err(Errno::EAGAIN) };
        // Starting, and counted idle from now: it will be in accept in a moment, so the
        // parent must not fork another for the same client.
        books.board.slot(index).reset();
        books.board.add_idle(1);
        let worker = Worker {
            listener: &self.listener,
            board: &books.board,
            slot: index,
            wake: &self.wake,
            max_conns: self.config.max_conns,
            buffer: self.config.buffer,
        };
        // The child keeps the listener and the eventfd; the scoreboard is a mapping, not a
        // descriptor, and stays across fork by itself.
        let keep = [self.listener.as_raw_fd(), self.wake.as_fd().as_raw_fd()];
        let inherited = [self.shutdown.as_raw_fd()];
        match children.spawn(&keep, &inherited, move || worker.run()) {
            Ok(pid) => {
                books.slots.insert(pid, index);
                books.peak = books.peak.max(books.slots.len());
                Ok(pid)
            }
            Err(errno) => {
                books.board.add_idle(-1);
                books.board.slot(index).set(State::Free);
                books.free.push(index);
                Err(errno)
            }
        }
    }
}

/// The parent's books: the board, which child holds which slot, and what past children
/// served.
#[derive(Debug)]
struct Books {
    board: Scoreboard,
    /// The slot of every live child.
    slots: HashMap<Pid, usize>,
    /// Slots with no child, to fork the next ones into.
    free: Vec<usize>,
    /// Connections each reaped child served, for the spread printed at exit.
    history: Vec<u64>,
    /// The most children alive at once.
    peak: usize,
}

impl Books {
    fn new(board: Scoreboard) -> Books {
        // Popped from the end, so the lowest slots are used first.
        let free = (0..board.len()).rev().collect();
        Books { board, slots: HashMap::new(), free, history: Vec::new(), peak: 0 }
    }

    /// Closes the books on a child that has been reaped: whatever it was counted as on the
    /// board, it is not any more.
    fn forget(&mut self, pid: Pid) {
        let Some(index) = self.slots.remove(&pid) else { return };
        let slot = self.board.slot(index);
        match slot.state() {
            State::Starting | State::Idle => {
                self.board.add_idle(-1);
            }
            // It died holding a connection (killed, or it crashed): free its place under
            // --max-conns. The kernel has closed the connection with it.
            State::Busy => self.board.finish(),
            State::Retiring | State::Free => {}
        }
        self.history.push(slot.served());
        slot.set(State::Free);
        self.free.push(index);
    }

    /// Retires idle children beyond twice `spare`, keeping at least `workers` children that
    /// are not already leaving.
    fn retire_extra(&mut self, pool: &PoolConfig) {
        let leaving =
            self.slots.values().filter(|&&i| self.board.slot(i).state() == State::Retiring);
        let staying = self.slots.len() - leaving.count();
        let idle = usize::try_from(self.board.idle()).unwrap_or(0);
        let keep_idle = pool.spare.saturating_mul(2);
        let mut extra = idle.saturating_sub(keep_idle).min(staying.saturating_sub(pool.workers));
        for &index in self.slots.values() {
            if extra == 0 {
                break;
            }
            // Only an idle child is retired, and only if it is still idle at this instant:
            // one that took a connection meanwhile has moved its slot to busy.
            if self.board.slot(index).swap_if(State::Idle, State::Retiring) {
                self.board.add_idle(-1);
                extra -= 1;
            }
        }
    }
}
