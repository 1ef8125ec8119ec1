//! What runs in a forked child: first undoing what it inherited, then (for this model) one
//! connection, then `_exit`.
//!
//! The child starts as a copy of the parent, with the parent's signal handlers, signal mask
//! and descriptors, so before it serves anything it undoes what it must not keep (see the
//! rules in the crate documentation). [`become_child`] does that for every child that
//! [`Children::spawn`](crate::Children::spawn) forks, the prefork model's included.
//! Everything here runs in the child only.

use std::io;
use std::os::fd::RawFd;

use echobench_common::shutdown::restore_default_signals;
use echobench_common::{Stream, echo};
use nix::sys::prctl::set_pdeathsig;
use nix::sys::signal::{SigSet, Signal};
use nix::unistd::{Pid, getppid};

/// Runs one connection in a freshly forked child, then ends the child. Never returns.
pub(crate) fn serve_in_child(mut stream: Stream, buffer: usize) -> ! {
    // The parent is single-threaded, so allocating here is as safe as anywhere.
    let mut buf = vec![0u8; buffer];
    // A failed connection (typically reset by the client) is the client's business; the exit
    // status records it for anyone who looks, and the parent moves on.
    let code = match echo::echo(&mut stream, &mut buf) {
        Ok(_) => 0,
        Err(_) => 1,
    };
    // Closing the socket sends the client its FIN: everything it sent has been echoed.
    drop(stream);
    exit_child(code)
}

/// Makes a freshly forked child safe to run on its own: default signal actions and the
/// original mask, death with its parent, and no descriptor of the parent's but `keep` (and
/// stdin, stdout, stderr). `inherited` lists the parent's other descriptors, closed one by
/// one if the kernel has no close_range(2). On any failure the child ends at once.
pub(crate) fn become_child(parent: Pid, keep: &[RawFd], inherited: &[RawFd], mask: &SigSet) {
    // The child inherited the parent's signal handlers and a mask with SIGCHLD, SIGINT and
    // SIGTERM blocked. Put back the default actions first, then the original mask, so that a
    // SIGTERM sent to this child (by shutdown, or by a user) simply ends it.
    restore_default_signals();
    if mask.thread_set_mask().is_err() {
        exit_child(1);
    }
    // If the parent dies, even by SIGKILL, the kernel sends us SIGTERM, so no orphan keeps
    // serving. The parent may have died before this call took effect; then we were already
    // handed to another parent, the signal will never come, and we leave on our own.
    if set_pdeathsig(Signal::SIGTERM).is_err() || getppid() != parent {
        exit_child(1);
    }
    // Close every descriptor inherited from the parent except `keep` and stdin, stdout and
    // stderr. The listener matters most for the fork model: a child holding it would keep
    // the port bound after the parent exits. close_range(2) (Linux 5.9 and later) takes them
    // all, including any the parent's libraries opened; an older kernel refuses the call,
    // and then we close the ones we know of. The Rust values that own these descriptors are
    // never used or dropped again in this process (it ends with `_exit`), so closing the
    // numbers directly cannot lead to a double close.
    if close_all_but(keep).is_err() {
        for &fd in inherited.iter().filter(|fd| !keep.contains(fd)) {
            let _ = nix::unistd::close(fd);
        }
    }
}

/// Closes every descriptor from 3 up except those in `keep`, with close_range(2).
fn close_all_but(keep: &[RawFd]) -> io::Result<()> {
    let mut keep: Vec<u32> = keep.iter().filter_map(|&fd| u32::try_from(fd).ok()).collect();
    keep.sort_unstable();
    // Close the gaps between the kept descriptors, then everything above the last.
    let mut first = 3;
    for fd in keep {
        if fd > first {
            close_range(first, fd - 1)?;
        }
        first = first.max(fd + 1);
    }
    close_range(first, u32::MAX)
}

/// Closes the descriptors from `first` to `last`, both included, in one system call.
fn close_range(first: u32, last: u32) -> io::Result<()> {
    // SAFETY: close_range takes no pointers, and a raw system call is async-signal-safe.
    // The descriptors it closes belong to values this process never touches again (see
    // `become_child`).
    let result = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
    if result < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Ends a forked child at once.
pub fn exit_child(code: i32) -> ! {
    // SAFETY: `_exit` ends the process without running destructors, atexit handlers or
    // stdio flushes. That is the point: those belong to the parent, and running them here
    // would, for instance, write the parent's buffered output a second time.
    unsafe { libc::_exit(code) }
}
