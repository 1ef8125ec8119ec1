//! A shutdown handle that SIGINT and SIGTERM trigger, and that every model can wait on.
//!
//! The handle is an `eventfd`: a descriptor that becomes readable once [`Shutdown::trigger`]
//! writes to it, and stays readable because nobody reads it. That one descriptor fits every
//! model's way of waiting:
//!
//! - the fork and thread models `poll(2)` it beside their listener;
//! - the event loops register it with their `mio::Poll` like any socket (it is a mio
//!   [`Source`]); each `Poll` it is registered with sees it become readable once.
//!
//! The signal handler only calls `write(2)`, which is async-signal-safe, and it needs no
//! thread. That matters for the fork model, whose parent must stay single-threaded so that
//! `fork` is safe. (A thread blocked in `sigwait` would be the other classic design.) And
//! std's blocking calls retry on EINTR, so a handler that merely set a flag would never be
//! noticed by a thread blocked in `accept`; a descriptor that the loop polls is.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use mio::event::Source;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

/// A cloneable handle on one shutdown event. Clones share the event.
#[derive(Debug, Clone)]
pub struct Shutdown {
    event: Arc<OwnedFd>,
}

/// The descriptor the signal handler writes to; -1 until [`Shutdown::on_signals`] runs. A
/// handler can only reach global state, and an atomic is the only global it may touch.
static SIGNAL_EVENT: AtomicI32 = AtomicI32::new(-1);

impl Shutdown {
    /// A handle that only [`Shutdown::trigger`] fires, for tests and embedders.
    pub fn new() -> io::Result<Shutdown> {
        // SAFETY: eventfd takes no pointers; we check its result before using the descriptor.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let event = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Shutdown { event: Arc::new(event) })
    }

    /// A handle that SIGINT and SIGTERM fire as well. Call it once, early in `main`.
    ///
    /// The handle's descriptor is kept open for the life of the process (the handler may run
    /// at any time), so only one such handle should be made.
    pub fn on_signals() -> io::Result<Shutdown> {
        let shutdown = Shutdown::new()?;
        SIGNAL_EVENT.store(shutdown.event.as_raw_fd(), Ordering::SeqCst);
        // SA_RESTART: other threads' blocking calls continue as if nothing happened; the
        // models learn of shutdown from the descriptor, not from EINTR. Not every call
        // restarts, though: poll(2) and epoll_wait(2) return EINTR after a handler even with
        // SA_RESTART (signal(7) lists them), which is why every waiting loop retries on EINTR.
        let action =
            SigAction::new(SigHandler::Handler(on_signal), SaFlags::SA_RESTART, SigSet::empty());
        for signal in [Signal::SIGINT, Signal::SIGTERM] {
            // SAFETY: `on_signal` only loads an atomic and calls write(2), both
            // async-signal-safe, and it saves and restores errno for the code it interrupts.
            unsafe { sigaction(signal, &action) }.map_err(io::Error::from)?;
        }
        // Leak one reference so the descriptor outlives every handle: the handler may fire
        // after the last handle is dropped, and must not write into a reused descriptor.
        std::mem::forget(shutdown.clone());
        Ok(shutdown)
    }

    /// Fires the event: every waiter wakes, now and forever after.
    pub fn trigger(&self) {
        write_event(self.event.as_raw_fd());
    }

    /// Whether the event has fired.
    pub fn is_triggered(&self) -> bool {
        self.wait(Some(Duration::ZERO))
    }

    /// Waits until the event fires (true) or `timeout` passes (false); `None` waits forever.
    pub fn wait(&self, timeout: Option<Duration>) -> bool {
        let timeout = match timeout {
            None => PollTimeout::NONE,
            Some(t) => crate::poll_timeout(t),
        };
        let mut fds = [PollFd::new(self.event.as_fd(), PollFlags::POLLIN)];
        loop {
            match poll(&mut fds, timeout) {
                Ok(n) => return n > 0,
                Err(nix::errno::Errno::EINTR) => continue,
                // poll on one valid descriptor cannot otherwise fail; treat it as fired so
                // that nobody waits forever on a broken handle.
                Err(_) => return true,
            }
        }
    }
}

/// Puts SIGINT and SIGTERM back to their default action (terminate).
///
/// A forked child inherits the parent's handler and the parent's eventfd, so without this a
/// signal sent to one child would shut down the whole server. Only async-signal-safe calls are
/// made, so it may run in the child of a multi-threaded process.
pub fn restore_default_signals() {
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: installing SIG_DFL runs no code of ours in signal context.
        let _ = unsafe { sigaction(signal, &default) };
    }
}

extern "C" fn on_signal(_signal: libc::c_int) {
    // SAFETY: errno is thread-local and the pointer is valid for this thread; we restore it so
    // that the interrupted code never sees a value our write(2) left behind.
    let saved = unsafe { *libc::__errno_location() };
    let fd = SIGNAL_EVENT.load(Ordering::SeqCst);
    if fd >= 0 {
        write_event(fd);
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = saved };
}

fn write_event(fd: RawFd) {
    let one: u64 = 1;
    // SAFETY: `fd` is an open eventfd (kept open for the life of the process when signals may
    // write to it), and we pass a pointer to 8 readable bytes, as eventfd requires. A full
    // counter (EAGAIN) still leaves the descriptor readable, which is all we need.
    unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
}

impl AsFd for Shutdown {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.event.as_fd()
    }
}

impl AsRawFd for Shutdown {
    fn as_raw_fd(&self) -> RawFd {
        self.event.as_raw_fd()
    }
}

impl Source for Shutdown {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        SourceFd(&self.event.as_raw_fd()).register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        SourceFd(&self.event.as_raw_fd()).reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        SourceFd(&self.event.as_raw_fd()).deregister(registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_wakes_every_clone_and_stays_fired() {
        let shutdown = Shutdown::new().unwrap();
        let waiter = shutdown.clone();
        assert!(!waiter.is_triggered());
        let thread = std::thread::spawn(move || waiter.wait(None));
        shutdown.trigger();
        assert!(thread.join().unwrap());
        assert!(shutdown.is_triggered());
        assert!(shutdown.is_triggered(), "the event must stay fired");
    }

    #[test]
    fn wait_times_out_when_nothing_fires() {
        let shutdown = Shutdown::new().unwrap();
        assert!(!shutdown.wait(Some(Duration::from_millis(10))));
    }

    #[test]
    fn a_registered_handle_wakes_a_mio_poll() {
        let mut shutdown = Shutdown::new().unwrap();
        let mut poll = mio::Poll::new().unwrap();
        poll.registry().register(&mut shutdown, Token(7), Interest::READABLE).unwrap();
        shutdown.trigger();
        let mut events = mio::Events::with_capacity(4);
        poll.poll(&mut events, Some(Duration::from_secs(5))).unwrap();
        assert!(events.iter().any(|event| event.token() == Token(7)));
    }
}
