//! Where an event loop's new connections come from: the [`Incoming`] trait that the loop in
//! `lib.rs` is generic over, what it answers ([`Arrival`]), and this model's own source,
//! [`Accepting`]: the listener, accepted until `WouldBlock`, with a count of open
//! connections for `--max-conns`.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use echobench_common::{AcceptError, Connection, MioListener, MioStream};

#[cfg(doc)]
use {crate::INCOMING, echobench_common::ACCEPT_PAUSE};

/// Where an event loop's new connections come from, and who is told when one closes.
///
/// The loop calls [`take`](Incoming::take) after an event under [`INCOMING`], until it
/// answers anything but a connection; [`admit`](Incoming::admit) for each connection it
/// takes; and [`close`](Incoming::close) for each admitted one that is over.
pub trait Incoming {
    /// The next new connection, or why there is none now.
    fn take(&mut self) -> io::Result<Arrival>;
    /// Whether a new connection may stay (`--max-conns`); one that may not is closed at once
    /// and counted as rejected.
    fn admit(&mut self) -> bool;
    /// Closes an admitted connection that is finished, broken, or could not be registered,
    /// and updates whatever counts open connections.
    fn close(&mut self, connection: Connection);
}

/// What [`Incoming::take`] found.
#[derive(Debug)]
pub enum Arrival {
    /// A new connection, non-blocking and not yet registered.
    Connection(MioStream),
    /// None waiting now; the next event under [`INCOMING`] says when there are more.
    Empty,
    /// Out of file descriptors (EMFILE, ENFILE) or socket memory. The loop stops taking for
    /// [`ACCEPT_PAUSE`], or until one of its connections closes, then tries again on its own:
    /// the kernel keeps the connections queued, and will not announce them again.
    OutOfResources,
    /// No connection will ever come: the loop closes its connections and returns.
    Ended,
}

/// This model's source of new connections: the listener, accepted until `WouldBlock`.
#[derive(Debug)]
pub struct Accepting {
    listener: MioListener,
    /// The most connections open at once (`--max-conns`).
    max_conns: usize,
    /// Connections open now, counted against `max_conns`. An atomic, so that several loops,
    /// each with its own listener, can share one count, and so one limit.
    open: Arc<AtomicUsize>,
}

impl Accepting {
    /// Accepts from `listener`, counting open connections in `open` against `max_conns`.
    pub fn new(listener: MioListener, max_conns: usize, open: Arc<AtomicUsize>) -> Accepting {
        Accepting { listener, max_conns, open }
    }
}

impl Incoming for Accepting {
    fn take(&mut self) -> io::Result<Arrival> {
        loop {
            return match self.listener.accept() {
                Ok(stream) => Ok(Arrival::Connection(stream)),
                Err(err) => match AcceptError::classify(&err) {
                    AcceptError::WouldBlock => Ok(Arrival::Empty),
                    // That connection died in the queue, or a signal came: take the next.
                    AcceptError::Retry => continue,
                    AcceptError::OutOfResources => Ok(Arrival::OutOfResources),
                    AcceptError::Fatal => Err(err),
                },
            };
        }
    }

    /// Over `--max-conns`, a connection is accepted and closed at once: leaving it in the
    /// backlog would leave the client hanging with no answer, and leave the listener readable
    /// for ever.
    fn admit(&mut self) -> bool {
        // Check and count in one step, so that two loops sharing the count cannot both take
        // the last place.
        let max = self.max_conns;
        self.open
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n < max).then_some(n + 1))
            .is_ok()
    }

    fn close(&mut self, connection: Connection) {
        // Count it out before closing: the close is what tells the client (its FIN), and a
        // client that reconnects at once must not find the old connection still counted.
        self.open.fetch_sub(1, Ordering::Relaxed);
        drop(connection);
    }
}
