//! The parent's side of forking: making children safely, hearing that they exited, reaping
//! them, and stopping them all. Public, because the prefork model keeps the same rules for
//! its pool of children (servers/prefork) and uses this code to keep them.
//!
//! Everything here runs in the parent. What a child must do first is in `child.rs`, and
//! [`Children::spawn`] does it for every child before running the child's own work.

use std::collections::HashSet;
use std::convert::Infallible;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, Instant};

use echobench_common::poll_timeout;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getpid};

use crate::child::become_child;

/// How long [`Children::stop_all`] gives the children to die of `SIGTERM` before sending
/// `SIGKILL`.
const GRACE: Duration = Duration::from_millis(500);

/// The parent's record of its live children, and how it hears that they exited.
#[derive(Debug)]
pub struct Children {
    /// Children forked and not yet reaped. The fork model's `max_conns` limits its size.
    live: HashSet<Pid>,
    /// Readable while a SIGCHLD is pending. SIGCHLD is blocked, so instead of running a
    /// handler at an arbitrary moment it waits here until the loop is ready for it.
    sigchld: SignalFd,
    /// The signal mask before [`Children::new`] blocked SIGCHLD: children start from it, and
    /// dropping `Children` puts it back.
    saved_mask: SigSet,
}

impl Children {
    /// Checks that the process is single-threaded, blocks SIGCHLD and opens the signalfd
    /// that reports it.
    ///
    /// A process with more than one thread gets an error instead of an unsafe `fork`; the
    /// caller must then start no thread for as long as it forks.
    pub fn new() -> io::Result<Children> {
        ensure_single_threaded()?;
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

    /// How many children are alive or exited but not yet reaped.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Whether there is no child at all.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Forks a child that first undoes what it must not inherit (see `child.rs`), keeping
    /// open only stdin, stdout, stderr and the descriptors in `keep`, then runs `work`,
    /// which must end the process ([`crate::exit_child`]; `Infallible` stands for "never
    /// returns", which stable Rust cannot yet write as `!` here). Returns the child's pid.
    ///
    /// `inherited` names the other descriptors the parent holds, for closing one by one
    /// on a kernel too old for close_range(2). In the parent `work` is dropped unrun, and
    /// whatever it captured with it: for the fork model, the parent's copy of the connection,
    /// which must be closed or the client would never see EOF after the child exits.
    pub fn spawn(
        &mut self,
        keep: &[RawFd],
        inherited: &[RawFd],
        work: impl FnOnce() -> Infallible,
    ) -> nix::Result<Pid> {
        let parent = getpid();
        let mut inherited = inherited.to_vec();
        inherited.push(self.sigchld.as_raw_fd());
        // SIGINT and SIGTERM stay blocked across the fork. Otherwise a SIGTERM landing in the
        // child before it restores the default action would run the parent's handler there,
        // and that handler writes to the eventfd the child shares with the parent: one signal
        // to one child would shut the whole server down. Blocked, the signal waits until the
        // child has restored the default action, and then simply ends the child.
        let stop_signals = SigSet::from_iter([Signal::SIGINT, Signal::SIGTERM]);
        let before = stop_signals.thread_swap_mask(SigmaskHow::SIG_BLOCK)?;
        // SAFETY: this process has exactly one thread (checked when `Children` was made, and
        // the models that use it start none), so the child's copy of every lock, the
        // allocator's included, is in a consistent state, and the child may run ordinary
        // code. The child never returns into the parent's code: `work` ends the process.
        let forked = unsafe { fork() };
        if let Ok(ForkResult::Child) = forked {
            become_child(parent, keep, &inherited, &self.saved_mask);
            work();
        }
        // Only the parent gets here. A signal that arrived meanwhile is delivered now.
        let restored = before.thread_set_mask();
        match forked {
            Ok(ForkResult::Parent { child }) => {
                self.live.insert(child);
                restored.map(|()| child)
            }
            Ok(ForkResult::Child) => unreachable!("the child never returns from its work"),
            Err(errno) => Err(errno),
        }
    }

    /// Reaps every child that has exited, calling `on_exit` with each one's pid, and returns
    /// how many there were.
    pub fn reap(&mut self, mut on_exit: impl FnMut(Pid)) -> usize {
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
                        on_exit(pid);
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
    /// zombie. `on_exit` hears of each, as with [`Children::reap`].
    pub fn stop_all(&mut self, mut on_exit: impl FnMut(Pid)) {
        self.reap(&mut on_exit);
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
            self.reap(&mut on_exit);
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
            on_exit(pid);
        }
    }
}

/// The signalfd, for the parent to `poll` beside its other descriptors.
impl AsFd for Children {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sigchld.as_fd()
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
            "a forking server must run in a single-threaded process, and this one has \
             {threads} threads (run its binary instead of calling run from a threaded program)"
        )));
    }
    Ok(())
}
