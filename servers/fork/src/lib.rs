//! # The fork model: one process per connection
//!
//! ```text
//! cargo run --release -p echobench-fork -- --addr 127.0.0.1:7000
//! ```
//!
//! **How connections are scheduled.** The parent process does two things only: it accepts
//! connections and it buries the children that served them. For every accepted connection it
//! calls `fork(2)`, and the child runs the plain blocking echo loop (`read`, then `write_all`,
//! until the client closes) and exits. Nothing in this crate decides who runs when: each
//! connection is a process, and the kernel's scheduler interleaves them as it interleaves any
//! processes. A connection waiting for data is a process asleep in `read`, costing no CPU.
//!
//! **What one connection costs.** A `fork` copies the parent's page tables and marks its
//! private writable pages (stack, heap, data) copy-on-write; shared mappings stay shared and
//! read-only or file-backed pages (the program's code) are shared without a copy. So the
//! child starts sharing all of the parent's memory and pays only for the private pages it
//! writes: its stack, its heap allocations (the echo buffer) and whatever the allocator
//! touches. Each process also has its own kernel bookkeeping (a task struct, a
//! kernel stack, page tables) and takes one process id, of which this machine has 32,768
//! (`pid_max`) for everyone. Measured by hand on the 2-CPU VM of the reference runs
//! (results/README.md) on 2026-11-21 (release build, 16 KiB buffer), an idle child has
//! an `Rss` of 880 KiB but a `Pss` of about 80 KiB (50 KiB of it private), plus about 44 KiB
//! of page tables (`VmPTE`) and a 16 KiB kernel stack that neither figure shows: roughly
//! 150 KiB of real memory per connection. Measure with `Pss` from `/proc/PID/smaps_rollup`;
//! summing `Rss` over the children counts the shared pages once per child. Time per
//! connection is the `fork` itself plus the `exit` and `waitpid`, on top of the socket's own
//! setup, which makes this the most expensive model for short connections.
//!
//! **Where it wins.** Isolation: a child that crashes, leaks or corrupts its memory takes
//! down one connection and nothing else, and the parent never shares mutable state with
//! anyone. The code of a connection is straight-line blocking code. Every core is used
//! without a single thread. That is why inetd, Apache's prefork MPM, sshd and PostgreSQL
//! chose it: a connection that does real work (authentication, a query) dwarfs the fork.
//!
//! **What breaks first.** Connection churn (every new connection pays a fork), then the
//! process limits: `pid_max`, `RLIMIT_NPROC` and memory, where `fork` fails with `EAGAIN`.
//! With thousands of mostly idle connections each wake-up is a switch between address
//! spaces, dearer than a switch between threads. Here `fork` failing closes that one
//! connection and pauses accepting for a moment; the server itself carries on.
//!
//! **The rules a forking server must keep**, each visible in `children.rs` (the parent's
//! side) and `child.rs` (the child's). Both are public: the prefork model forks its pool
//! of children by the same rules, with the same code.
//!
//! - Fork only from a single-threaded process. The child of a multi-threaded process gets a
//!   copy of every lock, possibly held by a thread that does not exist in the child, so it
//!   may only make async-signal-safe calls. [`run`] refuses to start in a process with more
//!   than one thread, and the parent never starts one: shutdown arrives through an eventfd
//!   that the signal handler writes, and child exits through a `signalfd`, both of which the
//!   parent `poll`s beside the listener.
//! - Reap every child, or it stays a zombie. One `SIGCHLD` may stand for several exits
//!   (pending signals do not queue), so each one is answered by calling `waitpid(-1, WNOHANG)`
//!   until nothing is left. Setting `SIGCHLD` to `SIG_IGN` would let the kernel reap for us,
//!   but then `getrusage(RUSAGE_CHILDREN)` reports zero and the children's CPU time, which the
//!   benchmark harness reads, would vanish.
//! - The child must not live on as the parent: it restores the signal state it inherited,
//!   closes every descriptor but its connection and stdin, stdout and stderr (with
//!   close_range(2)), asks to be killed if the parent dies, and ends with `_exit`, which runs
//!   no destructors and flushes none of the parent's buffers.

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::time::Instant;

use echobench_common::{
    ACCEPT_PAUSE, AcceptError, Config, Listener, Shutdown, Stream, Summary, cli, poll_timeout,
};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

mod child;
mod children;
pub use child::exit_child;
use child::serve_in_child;
pub use children::Children;

/// Serves connections, one child process each, until `shutdown` fires; then stops every
/// child and returns what was served.
///
/// The calling process must be single-threaded (see the crate documentation); a process with
/// more than one thread gets an error instead of an unsafe `fork`.
pub fn run(listener: Listener, shutdown: Shutdown, config: &Config) -> io::Result<Summary> {
    let mut children = Children::new()?;
    // Non-blocking, so that "accept until there is nothing left" ends with WouldBlock
    // instead of sleeping in accept while shutdown or a child's exit waits to be noticed.
    listener.set_nonblocking(true)?;
    let mut acceptor = Acceptor {
        listener,
        shutdown,
        config: *config,
        summary: Summary::default(),
        paused_until: None,
        fork_failures: 0,
    };
    let outcome = acceptor.serve(&mut children);
    // Stop accepting before stopping the children: with the listener closed, a client that
    // connects now is refused at once instead of waiting in a backlog nobody will read.
    // Dropping a Unix listener here also removes its socket file.
    let Acceptor { listener, summary, fork_failures, .. } = acceptor;
    drop(listener);
    children.stop_all(|_| {});
    if fork_failures > 0 {
        eprintln!(
            "{}: {fork_failures} connections were closed because fork failed",
            cli::program()
        );
    }
    outcome.map(|()| summary)
}

/// The parent's accept loop and everything it counts.
#[derive(Debug)]
struct Acceptor {
    /// The listening socket, non-blocking. Every child closes its copy at once.
    listener: Listener,
    /// Fires on SIGINT or SIGTERM; polled beside the listener.
    shutdown: Shutdown,
    /// `max_conns` bounds the live children; `buffer` sizes each child's echo buffer.
    config: Config,
    /// Connections handed to a child (`served`) or closed over `max_conns` (`rejected`).
    summary: Summary,
    /// While set, the listener is left out of `poll`: the process is out of descriptors or
    /// of processes, and retrying at once would only spin.
    paused_until: Option<Instant>,
    /// Connections closed unserved because `fork` failed; reported once at the end.
    fork_failures: u64,
}

impl Acceptor {
    /// Waits for shutdown, child exits and new connections, and handles each as it comes.
    fn serve(&mut self, children: &mut Children) -> io::Result<()> {
        loop {
            // A pause ends when its time is up or (below) when a child exits.
            let now = Instant::now();
            let timeout = match self.paused_until {
                Some(until) if until > now => poll_timeout(until - now),
                _ => {
                    self.paused_until = None;
                    PollTimeout::NONE
                }
            };
            let watched = if self.paused_until.is_some() { 2 } else { 3 };
            let mut fds = [
                PollFd::new(self.shutdown.as_fd(), PollFlags::POLLIN),
                PollFd::new(children.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.listener.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds[..watched], timeout) {
                Ok(_) => {}
                // A signal (SIGINT, SIGTERM) ran its handler; its eventfd tells us the rest.
                Err(Errno::EINTR) => continue,
                Err(errno) => return Err(errno.into()),
            }
            let [stop, exited, incoming] =
                fds.map(|fd| fd.revents().is_some_and(|r| !r.is_empty()));
            if stop {
                return Ok(());
            }
            if exited && children.reap(|_| {}) > 0 {
                // A child's exit frees a process slot and, system-wide, descriptors: the
                // moment to retry whatever made us pause.
                self.paused_until = None;
            }
            if incoming && watched == 3 {
                self.accept_ready(children)?;
            }
        }
    }

    /// Accepts every connection waiting in the backlog, forking a child for each.
    fn accept_ready(&mut self, children: &mut Children) -> io::Result<()> {
        while self.paused_until.is_none() {
            let stream = match self.listener.accept() {
                Ok(stream) => stream,
                Err(err) => match AcceptError::classify(&err) {
                    AcceptError::WouldBlock => return Ok(()),
                    AcceptError::Retry => continue,
                    // EMFILE and friends: the connection stays queued in the backlog, and we
                    // come back for it after a pause instead of failing again in a loop.
                    AcceptError::OutOfResources => {
                        self.pause();
                        return Ok(());
                    }
                    AcceptError::Fatal => return Err(err),
                },
            };
            // At the limit, some of the children counted may have exited since `poll` last
            // reported SIGCHLD: reap them before deciding, or a client would be turned away
            // for a connection that is already over. (A child closes its socket just before
            // it exits, so a client that reconnects the instant it sees the close may still
            // find its old child counted, and be turned away.)
            if children.len() >= self.config.max_conns {
                children.reap(|_| {});
            }
            if children.len() >= self.config.max_conns {
                // Over the limit the connection is closed at once: the client sees EOF (or
                // a reset) right away rather than hanging on a server that will not answer.
                drop(stream);
                self.summary.rejected += 1;
                continue;
            }
            self.fork_child(stream, children)?;
        }
        Ok(())
    }

    /// Forks a child to serve `stream`, and closes the parent's copy of it.
    fn fork_child(&mut self, stream: Stream, children: &mut Children) -> io::Result<()> {
        // The child keeps its connection; the rest it closes (see `child.rs`).
        let keep = [stream.as_fd().as_raw_fd()];
        let inherited = [self.listener.as_raw_fd(), self.shutdown.as_raw_fd()];
        let buffer = self.config.buffer;
        // The closure owns `stream`. In the child it serves the connection; in the parent
        // it is dropped unrun, which closes the parent's copy: otherwise the connection would
        // stay open after the child exits and the client would never see EOF.
        match children.spawn(&keep, &inherited, move || serve_in_child(stream, buffer)) {
            Ok(_) => self.summary.served += 1,
            // EAGAIN (pid or memory limits) or ENOMEM: the server survives, the connection
            // does not. Say so once; repeating it for every connection would flood stderr.
            Err(errno) => {
                if self.fork_failures == 0 {
                    eprintln!(
                        "{}: fork failed ({errno}): closing new connections until it works again",
                        cli::program()
                    );
                }
                self.fork_failures += 1;
                self.pause();
            }
        }
        Ok(())
    }

    /// Leaves the listener out of `poll` for a while; a child's exit ends the pause early.
    fn pause(&mut self) {
        // The length, and why a pause at all: see ACCEPT_PAUSE in echobench_common.
        self.paused_until = Some(Instant::now() + ACCEPT_PAUSE);
    }
}
