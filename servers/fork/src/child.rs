//! What runs in a forked child: one connection, then `_exit`.
//!
//! The child starts as a copy of the parent, with the parent's signal handlers, signal mask
//! and descriptors, so before it serves anything it undoes what it must not keep (see the
//! rules in the crate documentation). Everything here runs in the child only.

use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};

use echobench_common::shutdown::restore_default_signals;
use echobench_common::{Stream, echo};
use nix::sys::prctl::set_pdeathsig;
use nix::sys::signal::{SigSet, Signal};
use nix::unistd::{Pid, getppid};

/// Runs one connection in a freshly forked child, then ends the child. Never returns.
pub(crate) fn serve_in_child(
    mut stream: Stream,
    parent: Pid,
    inherited: [RawFd; 3],
    saved_mask: &SigSet,
    buffer: usize,
) -> ! {
    // The child inherited the parent's signal handlers and a mask with SIGCHLD, SIGINT and
    // SIGTERM blocked. Put back the default actions first, then the original mask, so that a
    // SIGTERM sent to this child (by shutdown, or by a user) simply ends it.
    restore_default_signals();
    if saved_mask.thread_set_mask().is_err() {
        exit_child(1);
    }
    // If the parent dies, even by SIGKILL, the kernel sends us SIGTERM, so no orphan keeps
    // serving. The parent may have died before this call took effect; then we were already
    // handed to another parent, the signal will never come, and we leave on our own.
    if set_pdeathsig(Signal::SIGTERM).is_err() || getppid() != parent {
        exit_child(1);
    }
    // Close every descriptor inherited from the parent except this connection's socket and
    // stdin, stdout and stderr. The listener matters most: a child holding it would keep the
    // port bound after the parent exits. close_range(2) (Linux 5.9 and later) takes them all,
    // including any the parent's libraries opened; an older kernel refuses the call, and
    // then we close the three we know of. The Rust values that own these descriptors are
    // never used or dropped again in this process (it ends with `_exit` below), so closing
    // the numbers directly cannot lead to a double close.
    if close_all_but(stream.as_fd().as_raw_fd()).is_err() {
        for fd in inherited {
            let _ = nix::unistd::close(fd);
        }
    }
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

/// Closes every descriptor from 3 up except `keep`, with close_range(2).
fn close_all_but(keep: RawFd) -> io::Result<()> {
    let keep = u32::try_from(keep).unwrap_or(0);
    if keep > 3 {
        close_range(3, keep - 1)?;
    }
    close_range(keep.max(2) + 1, u32::MAX)
}

/// Closes the descriptors from `first` to `last`, both included, in one system call.
fn close_range(first: u32, last: u32) -> io::Result<()> {
    // SAFETY: close_range takes no pointers, and a raw system call is async-signal-safe.
    // The descriptors it closes belong to values this process never touches again (see the
    // caller).
    let result = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
    if result < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Ends the child process at once.
fn exit_child(code: i32) -> ! {
    // SAFETY: `_exit` ends the process without running destructors, atexit handlers or
    // stdio flushes. That is the point: those belong to the parent, and running them here
    // would, for instance, write the parent's buffered output a second time.
    unsafe { libc::_exit(code) }
}
