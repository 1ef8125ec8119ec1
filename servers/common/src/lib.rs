//! Plumbing shared by every echobench server model, and nothing else.
//!
//! Each model crate (`servers/fork`, `servers/prefork`, `servers/thread`, `servers/mio`,
//! `servers/poll`, `servers/hybrid`, `servers/reuseport`, `servers/tokio`, `servers/uring`,
//! and the datagram model `servers/udp`, which takes the flag conventions, endpoint parsing
//! and shutdown from here but binds its own sockets) is meant to be read on its own, so the code that
//! decides *how connections are scheduled* (the accept loop, who runs each connection, when a
//! connection is read or written, how long its turn is) lives in a model, visibly: the hybrid and reuseport
//! models run the mio model's event loop, never one from here. What lives here is what every
//! model needs and none of them teaches:
//!
//! - [`cli`]: the command-line flags every server shares (and `--workers`, for the models
//!   with worker threads), one-line error reporting, and [`cli::serve`], the rest of `main`.
//! - [`net`]: binding TCP (IPv4 or IPv6) and Unix listeners (one, or a SO_REUSEPORT group of
//!   them), the stream types they accept, and the ready line `listening on ADDR` that tells a
//!   parent process the server can take load.
//! - [`shutdown`]: a pollable shutdown handle that SIGINT and SIGTERM trigger.
//! - [`echo`]: the blocking echo loop that the fork, prefork and thread models run per
//!   connection.
//! - [`conn`]: its non-blocking twin, the per-connection echo state machine (bounded buffer,
//!   backpressure, half-close, keeping to the budget per turn that its model sets) that the
//!   event loops drive. It says what a connection wants next; the event loop decides what to
//!   do about it, and how long a turn is.
//! - [`Config`] and [`Summary`]: what a model's `run` takes and returns.
//! - For accept loops: [`AcceptError`] (what a failed `accept` means), [`ACCEPT_PAUSE`] (how
//!   long to stop accepting when out of descriptors), and [`poll_timeout`].

pub mod cli;
pub mod conn;
pub mod echo;
pub mod net;
pub mod shutdown;

pub use cli::{ServerArgs, WorkerArgs};
pub use conn::{Connection, Next};
pub use net::{Endpoint, Listener, MioListener, MioStream, Stream};
pub use shutdown::Shutdown;

use std::time::Duration;

/// How long a model stops accepting after a failure that retrying at once would only repeat:
/// the process is out of file descriptors (EMFILE, ENFILE), or, for the fork and thread
/// models, out of processes or threads. The waiting connections stay queued in the kernel's
/// backlog meanwhile. 100 ms is short enough that a client in the backlog barely notices,
/// and long enough that the accept loop does not burn a core on a call that fails again.
/// Every model also ends the pause early when one of its connections closes, which frees a
/// descriptor (and a process or a thread). The event loops must come back after the pause
/// on their own in any case: edge-triggered epoll will not report the waiting connections
/// again.
pub const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// A `poll(2)` timeout of at least `duration`, rounded up to whole milliseconds, so that a
/// wait of less than a millisecond does not become a busy loop of zero-length polls.
pub fn poll_timeout(duration: Duration) -> nix::poll::PollTimeout {
    use nix::poll::PollTimeout;
    PollTimeout::try_from(duration.as_micros().div_ceil(1000)).unwrap_or(PollTimeout::MAX)
}

/// The limits every model enforces, taken from the shared flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Connections served at once; one more is accepted and closed at once, then counted.
    pub max_conns: usize,
    /// Bytes of buffer per connection. This bounds what the server holds for one client: a
    /// client that sends without reading fills it and is then not read until it drains.
    pub buffer: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config { max_conns: 10_000, buffer: 16 * 1024 }
    }
}

/// What a model's `run` reports when it returns after shutdown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Connections accepted and served.
    pub served: u64,
    /// Connections accepted and closed at once because `max_conns` were already open.
    pub rejected: u64,
}

impl Summary {
    /// Writes the one-line account a server prints on stderr as it exits.
    pub fn log(&self, program: &str) {
        eprintln!(
            "{program}: shut down after serving {} connections ({} rejected over --max-conns)",
            self.served, self.rejected
        );
    }
}

/// Whether an I/O error only means "not now" on a non-blocking socket.
pub fn would_block(err: &std::io::Error) -> bool {
    err.kind() == std::io::ErrorKind::WouldBlock
}

/// Whether an I/O error only means a signal interrupted the call, which should be retried.
pub fn interrupted(err: &std::io::Error) -> bool {
    err.kind() == std::io::ErrorKind::Interrupted
}

/// What an `accept` failure means for the accept loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptError {
    /// Nothing (more) is waiting: go back to waiting for readiness.
    WouldBlock,
    /// The pending connection died before we took it (reset, aborted, or a network error
    /// that Linux passes on from it), or a signal interrupted the call: try the next one.
    Retry,
    /// The process (EMFILE) or the system (ENFILE) is out of file descriptors, or the kernel
    /// is out of socket memory. The connection stays queued in the backlog; the model must
    /// stop accepting for a while instead of retrying in a tight loop.
    OutOfResources,
    /// Anything else is a bug or a broken listener: stop the server.
    Fatal,
}

impl AcceptError {
    /// Classifies an error returned by `accept`.
    pub fn classify(err: &std::io::Error) -> AcceptError {
        if would_block(err) {
            return AcceptError::WouldBlock;
        }
        match err.raw_os_error() {
            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
                AcceptError::OutOfResources
            }
            Some(libc::ECONNABORTED | libc::EINTR | libc::EPROTO | libc::EPERM) => {
                AcceptError::Retry
            }
            // accept(2) on Linux passes on network errors of a connection that died in the
            // queue, and its man page says to treat them like EAGAIN and retry: each one
            // takes that connection off the queue, so retrying makes progress. (EOPNOTSUPP
            // would also mean a listener that is not a stream socket, but ours always are.)
            Some(
                libc::ENETDOWN
                | libc::ENOPROTOOPT
                | libc::EHOSTDOWN
                | libc::ENONET
                | libc::EHOSTUNREACH
                | libc::EOPNOTSUPP
                | libc::ENETUNREACH,
            ) => AcceptError::Retry,
            _ if err.kind() == std::io::ErrorKind::ConnectionReset => AcceptError::Retry,
            _ => AcceptError::Fatal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn poll_timeouts_round_up_to_whole_milliseconds() {
        let millis = |d| i32::from(poll_timeout(d));
        assert_eq!(millis(Duration::ZERO), 0);
        assert_eq!(millis(Duration::from_micros(1)), 1);
        assert_eq!(millis(Duration::from_micros(1500)), 2);
        assert_eq!(millis(Duration::from_secs(1)), 1000);
        assert_eq!(millis(Duration::from_secs(1 << 40)), i32::MAX);
    }

    #[test]
    fn accept_errors_are_classified_for_the_accept_loop() {
        let emfile = io::Error::from_raw_os_error(libc::EMFILE);
        let aborted = io::Error::from_raw_os_error(libc::ECONNABORTED);
        let again = io::Error::from_raw_os_error(libc::EAGAIN);
        let badf = io::Error::from_raw_os_error(libc::EBADF);
        assert_eq!(AcceptError::classify(&emfile), AcceptError::OutOfResources);
        assert_eq!(AcceptError::classify(&aborted), AcceptError::Retry);
        assert_eq!(AcceptError::classify(&again), AcceptError::WouldBlock);
        assert_eq!(AcceptError::classify(&badf), AcceptError::Fatal);
        for errno in [
            libc::ENETDOWN,
            libc::EPROTO,
            libc::ENOPROTOOPT,
            libc::EHOSTDOWN,
            libc::ENONET,
            libc::EHOSTUNREACH,
            libc::EOPNOTSUPP,
            libc::ENETUNREACH,
        ] {
            let err = io::Error::from_raw_os_error(errno);
            assert_eq!(AcceptError::classify(&err), AcceptError::Retry, "{err}");
        }
    }
}
