//! One non-blocking echo connection, as the event-loop models (mio, and through its loop
//! hybrid and reuseport) drive it.
//!
//! This is the per-connection state machine only. Everything about *scheduling* (the `Poll`,
//! tokens, when to register, when to serve whom, when to accept, when to close) stays in the
//! models; a [`Connection`] just does all the I/O it can when told that its socket may be
//! ready, and reports what it needs next as a [`Next`], which also names the epoll interest
//! that would give it that. [`report`] is how both models log a connection's failure.
//!
//! The rules it keeps, and why:
//!
//! - **Drain to `WouldBlock`, within a budget.** Linux epoll in mio is edge-triggered: an
//!   event says "something changed", once. Whatever is left unread when we stop early is
//!   never reported again, so a call reads and writes until the kernel says `WouldBlock` (or
//!   the buffer is full), but never more reads than the budget the model passes: a client
//!   that keeps its socket full would otherwise hold the event loop, and every other
//!   connection on it, for as long as it keeps sending. How big a turn is, is a scheduling
//!   decision, so the model makes it (the mio model's `READS_PER_TURN`); the connection only
//!   keeps to it. A call that stops for the budget says so ([`Next::more`]), and the event
//!   loop must call again soon on its own, since no event will come for the bytes already
//!   waiting. Spurious calls are harmless: they find nothing to do and return.
//!   (A read shorter than the buffer means the socket is empty for now, and Tokio skips the
//!   final read on that basis (tokio-rs/tokio#4840), but only because it also keeps the
//!   event's "peer closed" flag: a FIN that arrived with the last data raises no second edge.
//!   The shortcut also stalled connections for good where mio emulates edges with `poll(2)`
//!   and needs that final `WouldBlock` to watch the socket again (tokio-rs/tokio#5866, fixed
//!   by #5881). We ignore the flags and pay the one `read` that returns `WouldBlock`, which
//!   keeps the rule simple and safe.)
//! - **Idle connections cost little.** Bytes are read into a scratch buffer that the event
//!   loop owns and lends to every connection in turn, and written straight back from it. Only
//!   the part the kernel would not take is copied into the connection's own `pending` buffer,
//!   which is allocated the first time it is needed and freed again once it empties. So an
//!   idle (or simply keeping-up) connection holds a socket and a few words, no buffer.
//! - **Backpressure.** `pending` never holds more than `limit` bytes. When it is full the
//!   connection stops reading; the bytes then wait in the kernel's receive buffer, the TCP
//!   window closes, and the client is throttled by its own kernel. A client that sends without
//!   ever reading costs the server `limit` bytes, not more.
//! - **Resume reading ourselves.** Once a write drain makes room, the connection reads again
//!   in the same call: the data queued in the socket while we were full arrived long ago, and
//!   no new READABLE edge will announce it.
//! - **WRITABLE only while bytes are pending**: otherwise a socket with room in its send
//!   buffer (nearly always) would wake the loop for nothing.
//! - **Half-close.** A read of 0 bytes means the client shut down its writing side. We stop
//!   reading and send back whatever is still pending; then the connection is done, and the
//!   model's close sends our FIN, so the client reads EOF after the last byte. (We could shut
//!   down our side here, but leaving the FIN to the close lets a model update its books
//!   first: a client that reconnects the moment it reads EOF then finds its old connection
//!   no longer counted against `--max-conns`.)
//! - **Errors end only this connection**: they are returned to the model, which closes it.

use std::io::{self, Read, Write};

use mio::event::Source;
use mio::{Interest, Registry, Token};

use crate::{MioStream, interrupted, would_block};

/// One client's echo, from accept to close.
#[derive(Debug)]
pub struct Connection {
    /// The non-blocking socket. Registration with a `Poll` is the model's business; the
    /// connection forwards [`Source`] to it so that the model can register the connection.
    stream: MioStream,
    /// Bytes read but not yet written back, oldest first. Empty with no allocation while the
    /// client keeps up; never longer than `limit`.
    pending: Vec<u8>,
    /// The most `pending` may hold: the `--buffer` flag, the bound on per-connection memory.
    limit: usize,
    /// The client has shut down its writing side (read returned 0): read no more.
    read_closed: bool,
    /// The last call stopped at its budget with more bytes possibly waiting.
    more: bool,
}

/// What a connection needs from the event loop after doing all it could.
///
/// `wants_read` and `wants_write` both false means the connection is finished (the echo is
/// complete or the peer is gone), and the model should drop it, which closes the socket and
/// so tells the client (after a half-close, that close is the client's EOF). A
/// connection that is not finished always wants at least one of the two, so the model never
/// has to register an empty interest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Next {
    /// It would read more if the socket became readable: it has room and no EOF yet.
    pub wants_read: bool,
    /// It holds bytes the kernel would not take: it needs to hear when the socket can take more.
    pub wants_write: bool,
    /// It stopped at its budget (the reads per turn the model allows) with bytes possibly
    /// still waiting in the socket. Edge-triggered epoll will not report those again, so the
    /// model must call [`Connection::on_event`] again after serving the others, without
    /// waiting for an event. Implies `wants_read`.
    pub more: bool,
}

impl Next {
    /// Whether the connection has nothing left to do and should be closed.
    pub fn done(&self) -> bool {
        !self.wants_read && !self.wants_write
    }

    /// The epoll interest that gives the connection what it asked for, or `None` when it is
    /// done. WRITABLE is asked for only while bytes wait: a socket can almost always take
    /// more, so a WRITABLE interest kept for nothing would wake the loop for nothing.
    pub fn interest(&self) -> Option<Interest> {
        match (self.wants_read, self.wants_write) {
            (true, false) => Some(Interest::READABLE),
            (false, true) => Some(Interest::WRITABLE),
            (true, true) => Some(Interest::READABLE | Interest::WRITABLE),
            (false, false) => None,
        }
    }
}

/// Logs a connection's failure on stderr, except the ones clients cause all the time: a
/// client that resets or vanishes is its own business, not the server's.
pub fn report(err: &io::Error) {
    use io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
    if !matches!(err.kind(), ConnectionReset | BrokenPipe | ConnectionAborted) {
        eprintln!("{}: connection closed after an error: {err}", crate::cli::program());
    }
}

impl Connection {
    /// Wraps a freshly accepted non-blocking stream; it will hold at most `limit` bytes
    /// (`limit` must be at least 1, which the `--buffer` flag guarantees).
    pub fn new(stream: MioStream, limit: usize) -> Connection {
        Connection {
            stream,
            pending: Vec::new(),
            limit: limit.max(1),
            read_closed: false,
            more: false,
        }
    }

    /// Does every read and write the socket allows right now, up to `budget` reads (at least
    /// one), and says what is needed next.
    ///
    /// Call it whenever the socket may be readable or writable, and again soon after it
    /// answered [`Next::more`]; which of the two the event said does not matter, since the
    /// connection simply tries what its state allows. `budget` is the model's choice of how
    /// long a turn may be (see the module docs).
    /// `scratch` is the event loop's shared read buffer: any non-empty size, though reads never
    /// take more than `limit` bytes at once, so more than that is never used. An `Err` means
    /// the connection is broken (reset, broken pipe): the model should close it and carry on
    /// with the others.
    pub fn on_event(&mut self, scratch: &mut [u8], budget: usize) -> io::Result<Next> {
        // An empty read buffer would make every read return 0, which means EOF.
        assert!(!scratch.is_empty(), "the scratch buffer must not be empty");
        // A budget of no reads would never read, and answer `more` for ever.
        let budget = budget.max(1);
        // Whether the socket may still take bytes during this call. It starts true because an
        // event may be the one that says "writable again", and a write that returns
        // WouldBlock is cheap; once one does, we stop trying until the next event.
        let mut can_write = true;
        let mut reads = 0;
        self.more = false;
        loop {
            // Old bytes go out first, so that the echo stays in order.
            if !self.pending.is_empty() && can_write {
                let written = write_some(&mut self.stream, &self.pending)?;
                // A partial drain shifts the rest to the front: at most `limit` bytes, once
                // per backpressured event, which is cheaper than the syscall that preceded it.
                self.pending.drain(..written);
                can_write = self.pending.is_empty();
            }
            if self.read_closed || self.pending.len() >= self.limit {
                break;
            }
            if reads == budget {
                // Yield to the other connections; the socket may still hold bytes.
                self.more = true;
                break;
            }
            reads += 1;

            // Read no more than still fits in `pending`, so that whatever the kernel refuses
            // to take back is sure to fit.
            let room = (self.limit - self.pending.len()).min(scratch.len());
            let n = match self.stream.read(&mut scratch[..room]) {
                Ok(0) => {
                    self.read_closed = true;
                    break;
                }
                Ok(n) => n,
                Err(err) if would_block(&err) => break,
                Err(err) if interrupted(&err) => continue,
                Err(err) => return Err(err),
            };

            // The hot path: nothing pending, so write the bytes straight back from scratch
            // and keep only what the kernel would not take.
            let mut written = 0;
            if self.pending.is_empty() && can_write {
                written = write_some(&mut self.stream, &scratch[..n])?;
                can_write = written == n;
            }
            if written < n {
                if self.pending.capacity() == 0 {
                    // First backpressure on this connection (or since it last caught up):
                    // allocate the whole bound once rather than growing by doubling.
                    self.pending.reserve_exact(self.limit);
                }
                self.pending.extend_from_slice(&scratch[written..n]);
            }
        }

        if self.pending.is_empty() && self.pending.capacity() > 0 {
            // Caught up: give the buffer back, so that a connection that was slow once does
            // not hold `limit` bytes for the rest of its life.
            self.pending = Vec::new();
        }
        // If the client has half-closed and every byte is echoed, this reports done, and the
        // model's close sends our FIN. The socket's receive queue is empty (we read up to
        // the client's FIN), so the close is an orderly FIN, not a reset.
        Ok(self.next())
    }

    /// What the connection needs, from its state alone.
    pub fn next(&self) -> Next {
        Next {
            wants_read: !self.read_closed && self.pending.len() < self.limit,
            wants_write: !self.pending.is_empty(),
            more: self.more,
        }
    }

    /// Bytes read but not yet echoed (for tests and for anyone curious about backpressure).
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

/// Writes as much of `bytes` as the socket takes now, and returns how much that was.
fn write_some(stream: &mut MioStream, bytes: &[u8]) -> io::Result<usize> {
    let mut written = 0;
    while written < bytes.len() {
        match stream.write(&bytes[written..]) {
            // A socket never legitimately takes nothing from a non-empty buffer.
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(err) if would_block(&err) => break,
            Err(err) if interrupted(&err) => continue,
            Err(err) => return Err(err),
        }
    }
    Ok(written)
}

// A connection registers like the socket it wraps, so that the model's registration code
// reads `registry.register(&mut connection, token, interest)`.
impl Source for Connection {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        self.stream.register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        self.stream.reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.stream.deregister(registry)
    }
}

#[cfg(test)]
mod tests;
