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
//! **What one connection costs.** A `fork` copies the parent's page tables and marks every
//! page copy-on-write, so the child starts sharing all of the parent's memory and pays only
//! for the pages it writes: its stack, its heap allocations (the echo buffer) and whatever
//! the allocator touches. Each process also has its own kernel bookkeeping (a task struct, a
//! kernel stack, page tables) and takes one process id, of which this machine has 32,768
//! (`pid_max`) for everyone. Measured here (release build, 16 KiB buffer), an idle child has
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
//! **The rules a forking server must keep**, each visible below (the child's side in
//! `child.rs`):
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

use std::collections::HashSet;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use echobench_common::{
    ACCEPT_PAUSE, AcceptError, Config, Listener, Shutdown, Stream, Summary, cli, poll_timeout,
};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getpid};

mod child;
use child::serve_in_child;

/// How long shutdown gives the children to die of `SIGTERM` before sending `SIGKILL`.
const GRACE: Duration = Duration::from_millis(500);

/// Serves connections, one child process each, until `shutdown` fires; then stops every
/// child and returns what was served.
///
/// The calling process must be single-threaded (see the crate documentation); a process with
/// more than one thread gets an error instead of an unsafe `fork`.
pub fn run(listener: Listener, shutdown: Shutdown, config: &Config) -> io::Result<Summary> {
    ensure_single_threaded()?;
    // Non-blocking, so that "accept until there is nothing left" ends with WouldBlock
    // instead of sleeping in accept while shutdown or a child's exit waits to be noticed.
    listener.set_nonblocking(true)?;
    let mut children = Children::new()?;
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
    children.stop_all();
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
                PollFd::new(children.sigchld.as_fd(), PollFlags::POLLIN),
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
            if exited && children.reap() > 0 {
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
            if children.live.len() >= self.config.max_conns {
                children.reap();
            }
            if children.live.len() >= self.config.max_conns {
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
        let parent = getpid();
        let inherited =
            [self.listener.as_raw_fd(), self.shutdown.as_raw_fd(), children.sigchld.as_raw_fd()];
        // SIGINT and SIGTERM stay blocked across the fork. Otherwise a SIGTERM landing in the
        // child before it restores the default action would run the parent's handler there,
        // and that handler writes to the eventfd the child shares with the parent: one signal
        // to one child would shut the whole server down. Blocked, the signal waits until the
        // child has restored the default action, and then simply ends the child.
        let stop_signals = SigSet::from_iter([Signal::SIGINT, Signal::SIGTERM]);
        let before = stop_signals.thread_swap_mask(SigmaskHow::SIG_BLOCK)?;
        // SAFETY: this process has exactly one thread (checked when `run` began, and this
        // crate starts none), so the child's copy of every lock, the allocator's included, is
        // in a consistent state, and the child may run ordinary code. The child never returns
        // into the parent's code: `serve_in_child` ends with `_exit`.
        let forked = unsafe { fork() };
        if let Ok(ForkResult::Child) = forked {
            serve_in_child(stream, parent, inherited, &children.saved_mask, self.config.buffer);
        }
        // Only the parent gets here. A signal that arrived meanwhile is delivered now.
        before.thread_set_mask()?;
        // The child has its own copy of the socket; the parent must close its copy, or the
        // connection would stay open after the child exits and the client would never see EOF.
        drop(stream);
        match forked {
            Ok(ForkResult::Parent { child }) => {
                children.live.insert(child);
                self.summary.served += 1;
            }
            Ok(ForkResult::Child) => unreachable!("the child never returns from serve_in_child"),
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

/// The parent's record of its live children, and how it hears that they exited.
#[derive(Debug)]
struct Children {
    /// Children forked and not yet reaped. Its size is what `max_conns` limits.
    live: HashSet<Pid>,
    /// Readable while a SIGCHLD is pending. SIGCHLD is blocked, so instead of running a
    /// handler at an arbitrary moment it waits here until the loop is ready for it.
    sigchld: SignalFd,
    /// The signal mask before `run` blocked SIGCHLD: children start from it, and dropping
    /// `Children` puts it back.
    saved_mask: SigSet,
}

impl Children {
    /// Blocks SIGCHLD and opens the signalfd that reports it.
    fn new() -> io::Result<Children> {
        let sigchld = SigSet::from(Signal::SIGCHLD);
        // A signal delivered to a handler never reaches a signalfd; blocking it first makes
        // the signalfd its only destination.
        let saved_mask = sigchld.thread_swap_mask(SigmaskHow::SIG_BLOCK)?;
        // Non-blocking, so that draining it ends with EAGAIN; close-on-exec as a matter of
        // course (the children close it themselves, since they never exec).
        let flags = SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC;
        match SignalFd::with_flags(&sigchld, flags) {
            Ok(fd) => Ok(Children { live: HashSet::new(), sigchld: fd, saved_mask }),
            Err(errno) => {
                let _ = saved_mask.thread_set_mask();
                Err(errno.into())
            }
        }
    }

    /// Reaps every child that has exited and returns how many there were.
    fn reap(&mut self) -> usize {
        // Empty the signalfd, or poll would report it readable forever. How many signals we
        // read means nothing: exits that happen close together share one SIGCHLD.
        while let Ok(Some(_)) = self.sigchld.read_signal() {}
        // So ask the kernel for exited children until it has none left to give.
        let mut reaped = 0;
        loop {
            match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
                // Children remain, but all of them are still running.
                Ok(WaitStatus::StillAlive) => break,
                Ok(status) => {
                    if let Some(pid) = status.pid() {
                        self.live.remove(&pid);
                        reaped += 1;
                    }
                }
                Err(Errno::EINTR) => continue,
                // ECHILD: no children at all.
                Err(_) => break,
            }
        }
        reaped
    }

    /// Ends every child: SIGTERM, a short grace period, then SIGKILL for any still alive.
    /// Returns once every child has been reaped, so none is left behind as an orphan or a
    /// zombie.
    fn stop_all(&mut self) {
        self.reap();
        for &pid in &self.live {
            // ESRCH would mean it already exited; it is then reaped below like the others.
            let _ = kill(pid, Signal::SIGTERM);
        }
        let deadline = Instant::now() + GRACE;
        while !self.live.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let mut fds = [PollFd::new(self.sigchld.as_fd(), PollFlags::POLLIN)];
            let _ = poll(&mut fds, poll_timeout(left));
            self.reap();
        }
        // SIGTERM should have ended every child by now. One that got it between fork and
        // restoring the default action had it blocked, not ignored: it stayed pending and
        // ended the child the moment the mask was restored. SIGKILL is a safety net for what
        // we did not foresee (a child stopped by SIGSTOP, or starved of CPU for the whole
        // grace period): it can be neither blocked nor ignored. Waiting for each one by pid
        // cannot hang long: a killed process exits as soon as it is next scheduled.
        for &pid in &self.live {
            let _ = kill(pid, Signal::SIGKILL);
        }
        for pid in self.live.drain() {
            while let Err(Errno::EINTR) = waitpid(pid, None) {}
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        // Unblock SIGCHLD again. Its default action is to be ignored (which, unlike an
        // explicit SIG_IGN, does not auto-reap), so a pending one is simply discarded.
        let _ = self.saved_mask.thread_set_mask();
    }
}

/// Refuses to run in a process with more than one thread, where `fork` is unsafe.
fn ensure_single_threaded() -> io::Result<()> {
    // Linux lists one directory per thread of the process under /proc/self/task.
    let threads = std::fs::read_dir("/proc/self/task")?.count();
    if threads > 1 {
        return Err(io::Error::other(format!(
            "the fork model must run in a single-threaded process, and this one has {threads} \
             threads (run the echo-fork binary instead of calling run from a threaded program)"
        )));
    }
    Ok(())
}
