//! The mio model: one thread, one `epoll`, every connection a small state machine.
//!
//! *Where the figures below come from:* those "measured here" were taken by hand on the
//! 2-CPU KVM virtual machine that makes the reference runs (results/README.md), on 2026-11-21;
//! identical runs there differ by a quarter or more. The suite's own comparison, with
//! intervals, is the reference run in results/latest.
//!
//! # How it schedules connections
//!
//! A single thread owns a [`mio::Poll`] (on Linux, an epoll instance in edge-triggered mode)
//! and registers three kinds of source with it, each under a [`Token`]: the listening socket,
//! the shutdown handle, and every accepted connection, whose token is its key in a [`Slab`].
//! The thread sleeps in `epoll_wait` until the kernel reports a batch of ready tokens, then
//! handles each in turn:
//!
//! - the listener: note that connections are waiting (they are taken after the batch);
//! - a connection: [`Connection::on_event`] reads and writes until the kernel says
//!   `WouldBlock` or its budget is spent (see *Fairness*), and reports whether it still wants
//!   to read, to write, or neither (done); the loop changes the registered interest only
//!   when that answer changes;
//! - the shutdown handle: close everything and return.
//!
//! After the batch, the loop serves the connections in its ready queue (those that spent
//! their budget in the previous turn), then accepts until `WouldBlock` if the listener was
//! ready, registering each new socket for READABLE.
//!
//! Nothing ever blocks except `epoll_wait` itself, so a client that connects and says nothing
//! costs a slab slot and an epoll entry, and delays nobody: its token never comes up.
//!
//! The loop ([`EventLoop::run`]) does not care where new connections come from, only that something
//! registered under the token [`INCOMING`] says when there are some, and that it can take
//! them one at a time: the small trait [`Incoming`] (in `incoming.rs`). This model's own is
//! [`Accepting`]: the listener, and the count of open connections that `--max-conns` is
//! checked against. Two other models reuse this loop. Each hybrid worker runs it with a
//! source of its own: the sockets that an acceptor thread put in its inbox (and rang its
//! `Waker` to say so), counted out at close from the count by which the acceptor applies
//! `--max-conns` and picks the least busy worker. The reuseport model runs it as it is, once
//! per worker thread, each on its own listener, all sharing one count
//! ([`EventLoop::listening`]).
//!
//! # What one connection costs
//!
//! No thread, no stack. In user space, one `Slot` in the slab (a socket, an empty `Vec`, a
//! few flags: 64 bytes in a release build, checked by a test). The pending buffer (at most
//! `--buffer` bytes) exists only while the kernel refuses to take the echo back, and is freed
//! once it drains. The bytes are read into one scratch buffer that the loop lends to every
//! connection. In the kernel: a socket with its send and receive buffers, and an epoll entry.
//! Measured here, 10,000 idle connections added 0.7 MiB to the server's resident memory.
//!
//! # Fairness
//!
//! Edge-triggered epoll pushes a loop to drain each socket until `WouldBlock`, and that alone
//! is unfair: a client that writes as fast as the loop reads never lets its socket run dry,
//! so the loop stays with it while every other connection waits. Measured here (debug build,
//! the conformance case `streaming_clients_do_not_stall_a_ping_pong_client`): beside two
//! clients streaming 64 KiB writes, a client doing 100-byte round trips waited a median of
//! 40 ms and up to 1.4 s per round trip. So a turn is bounded: the loop passes
//! [`READS_PER_TURN`] to `on_event`, which stops after that many reads and answers
//! [`Next::more`](echobench_common::Next::more). No event will come for the bytes still
//! waiting, so the loop keeps such connections in a ready queue of its own and serves them
//! again after the next batch of events, polling with a zero timeout meanwhile; every ready
//! connection gets one turn before any gets a second. With the budget the same round trips
//! took a median of 0.3 to 1 ms, and 1.4 to 28 ms at worst on this busy shared machine (the
//! thread model, which leaves this to the kernel's scheduler: a median of 0.03 to 0.08 ms,
//! up to 16 ms), and a lone streaming client kept its throughput (650 to 900 MiB/s with or
//! without the budget, release build). The budget is this model's decision, so it lives
//! here; the connection in `echobench-common` only obeys it.
//!
//! # Where it wins
//!
//! Many connections, small messages, mostly waiting: one `epoll_wait` returns up to 1,024
//! ready connections at once, there is no context switch between them, and nothing is
//! allocated on the hot path. That is why this server is the yardstick against which the load
//! generator's own speed is checked.
//!
//! # What breaks first
//!
//! The one core. Every byte of every connection passes through this thread, so once it is
//! saturated, throughput stops growing and every client's latency rises together; the other
//! cores sit idle (the hybrid and reuseport models run one such loop per core). Next,
//! latency: each busy connection on the loop delays the others by its turn (see *Fairness*),
//! and any slow work added to the loop would stall every connection at once. Finally
//! descriptors: at `ulimit -n` accept fails with EMFILE, and the loop must pause accepting
//! rather than spin (see `EventLoop::take_incoming`).
//!
//! Run it with `cargo run --release -p echobench-mio -- --addr 127.0.0.1:7000`.

use std::collections::VecDeque;
use std::io;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use echobench_common::conn::report;
use echobench_common::{
    ACCEPT_PAUSE, Config, Connection, Listener, MioStream, Shutdown, Summary, interrupted,
};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

mod incoming;
pub use incoming::{Accepting, Arrival, Incoming};

/// Token of the shutdown handle. Connections use their slab keys, which count up from 0, so
/// the two fixed tokens sit at the top of the range where no key will ever reach.
pub const SHUTDOWN: Token = Token(usize::MAX);
/// Token of whatever announces new connections: the listening socket here, a `Waker` in a
/// hybrid worker.
pub const INCOMING: Token = Token(usize::MAX - 1);
/// How many ready events one `epoll_wait` may return.
const EVENTS_PER_POLL: usize = 1024;

/// The most reads one turn of a connection may take before the loop moves on (see
/// *Fairness*).
///
/// A turn must be short next to what a waiting neighbour would notice, and long enough that
/// coming back costs little. With the default 16 KiB buffer, 16 reads move at most 256 KiB,
/// about 0.2 ms of copying and system calls here, which is what a client doing ping-pong
/// waits per streaming neighbour; and a streaming connection comes back through one extra
/// `epoll_wait` (with a zero timeout) per 16 reads and 16 writes, 3% more system calls, which
/// did not show in its throughput. (Tokio makes the same trade with a cooperative budget of
/// 128 operations per task.) What it buys a ping-pong client is measured under *Fairness*.
pub const READS_PER_TURN: usize = 16;

/// Serves `listener` on the calling thread until `shutdown` fires, then closes every
/// connection and returns what it served.
pub fn run(listener: Listener, shutdown: Shutdown, config: &Config) -> io::Result<Summary> {
    // Nobody else counts this loop's connections, so the count starts at zero and stays ours.
    EventLoop::listening(listener, shutdown, config, Arc::default())?.run()
}

/// One event loop: a `Poll`, the connections registered with it, and where new ones come
/// from. [`EventLoop::run`] is the loop itself.
#[derive(Debug)]
pub struct EventLoop<I> {
    /// The epoll instance: connections are registered with its registry, re-registered as
    /// their needs change, and removed by closing their sockets.
    poll: Poll,
    /// Where new connections come from: here the listener, in a hybrid worker an inbox.
    incoming: I,
    /// Registered under [`SHUTDOWN`], if the loop has one; kept here so that its descriptor
    /// stays open (and so registered) as long as the loop runs.
    _shutdown: Option<Shutdown>,
    /// Open connections by token. A slab reuses the keys of closed connections, which keeps
    /// it dense; the price is that a stale event may name a key that now belongs to a newer
    /// connection, which is harmless because [`Connection::on_event`] tolerates spurious calls.
    connections: Slab<Slot>,
    /// The one read buffer, lent to whichever connection is being served.
    scratch: Vec<u8>,
    /// Connections that stopped at their budget with bytes possibly still waiting, oldest
    /// first. Edge-triggered epoll will not report those bytes again, so the loop comes back
    /// to these connections itself, after serving everyone else that is ready. A token is
    /// here exactly when its slot says `queued`.
    ready: VecDeque<Token>,
    /// New connections were announced that we have not taken yet. It stays true when we
    /// stopped at EMFILE, because the kernel will not tell us about them again.
    incoming_waiting: bool,
    /// While out of file descriptors: when to try accepting again. A connection closing
    /// frees a descriptor and clears it at once.
    paused_until: Option<Instant>,
    summary: Summary,
}

/// One open connection and the interest it is registered with, kept so that the loop only
/// calls `epoll_ctl` when the interest really changes.
#[derive(Debug)]
struct Slot {
    connection: Connection,
    interest: Interest,
    /// Waiting in the ready queue: it will be served from there, once per turn.
    queued: bool,
}

impl EventLoop<Accepting> {
    /// A loop that accepts from `listener` until `shutdown` fires, counting open connections
    /// against `--max-conns` in `open`, which other loops may share: the reuseport model runs
    /// one such loop per worker, each on its own listener, all bounded by one count.
    ///
    /// Everything the loop needs before its first connection (the epoll instance, the two
    /// registrations) is made here, so that a caller can set up all its loops before any of
    /// them takes a connection and uses up descriptors.
    pub fn listening(
        listener: Listener,
        shutdown: Shutdown,
        config: &Config,
        open: Arc<AtomicUsize>,
    ) -> io::Result<Self> {
        let poll = Poll::new()?;
        let mut listener = listener.into_mio()?;
        poll.registry().register(&mut listener, INCOMING, Interest::READABLE)?;
        let incoming = Accepting::new(listener, config.max_conns, open);
        EventLoop::new(poll, incoming, Some(shutdown), config)
    }
}

impl<I: Incoming> EventLoop<I> {
    /// A loop on `poll`, taking new connections from `incoming`, and stopping when `shutdown`
    /// (if any) fires or `incoming` ends.
    ///
    /// Whatever tells of new connections (a listener, a `Waker`) must already be registered
    /// with `poll` under [`INCOMING`]; the shutdown handle is registered here.
    pub fn new(
        poll: Poll,
        incoming: I,
        mut shutdown: Option<Shutdown>,
        config: &Config,
    ) -> io::Result<Self> {
        if let Some(shutdown) = &mut shutdown {
            poll.registry().register(shutdown, SHUTDOWN, Interest::READABLE)?;
        }
        Ok(EventLoop {
            poll,
            incoming,
            _shutdown: shutdown,
            connections: Slab::new(),
            scratch: vec![0; config.buffer],
            ready: VecDeque::new(),
            incoming_waiting: false,
            paused_until: None,
            summary: Summary::default(),
        })
    }

    /// Runs the loop on the calling thread until the shutdown handle fires or no connection
    /// will come any more; then closes every connection and returns what it served.
    pub fn run(mut self) -> io::Result<Summary> {
        let mut events = Events::with_capacity(EVENTS_PER_POLL);
        loop {
            // Sleep until something is ready; while accepting is paused, also until it is
            // time to try again. The clock is read only while paused, never on the hot path.
            // While connections wait in the ready queue there is work to do now: only look.
            let timeout = if self.ready.is_empty() {
                self.paused_until.map(|t| t.saturating_duration_since(Instant::now()))
            } else {
                Some(Duration::ZERO)
            };
            if let Err(err) = self.poll.poll(&mut events, timeout) {
                if interrupted(&err) {
                    continue;
                }
                return Err(err);
            }

            // The connections that used up their budget in the last turn; they are served
            // after this batch, so that every connection gets one turn before any gets a
            // second.
            let waiting = self.ready.len();
            for event in events.iter() {
                match event.token() {
                    SHUTDOWN => return Ok(self.close_all()),
                    // Take new connections after handling this batch, so that connections
                    // freed in it make room (and descriptors) for the newcomers.
                    INCOMING => self.incoming_waiting = true,
                    token => self.on_connection_event(token),
                }
            }
            self.serve_ready(waiting);

            let pause_over = self.paused_until.is_none_or(|t| Instant::now() >= t);
            if self.incoming_waiting && pause_over && self.take_incoming()?.is_break() {
                return Ok(self.close_all());
            }
        }
    }

    /// Takes every new connection waiting, until there are none, or we are out of
    /// descriptors (then taking stops for [`ACCEPT_PAUSE`] or until a connection closes), or
    /// the source has ended (`Break`).
    fn take_incoming(&mut self) -> io::Result<ControlFlow<()>> {
        loop {
            match self.incoming.take()? {
                Arrival::Connection(stream) if self.incoming.admit() => self.add(stream),
                // Over --max-conns: `stream` is dropped here, which closes it.
                Arrival::Connection(_) => self.summary.rejected += 1,
                Arrival::Empty => {
                    self.incoming_waiting = false;
                    self.paused_until = None;
                    return Ok(ControlFlow::Continue(()));
                }
                Arrival::OutOfResources => {
                    // We must come back on our own: see ACCEPT_PAUSE.
                    self.paused_until = Some(Instant::now() + ACCEPT_PAUSE);
                    return Ok(ControlFlow::Continue(()));
                }
                Arrival::Ended => return Ok(ControlFlow::Break(())),
            }
        }
    }

    /// Registers a new connection for READABLE: the client speaks first, and a fresh socket
    /// has room to write. If data has already arrived (even while the socket sat in a hybrid
    /// worker's inbox), epoll reports it straight away, since it checks on registration.
    fn add(&mut self, stream: MioStream) {
        let entry = self.connections.vacant_entry();
        let token = Token(entry.key());
        // Its bound is `--buffer`, the size the scratch buffer was made with.
        let mut connection = Connection::new(stream, self.scratch.len());
        match self.poll.registry().register(&mut connection, token, Interest::READABLE) {
            Ok(()) => {
                entry.insert(Slot { connection, interest: Interest::READABLE, queued: false });
                self.summary.served += 1;
            }
            // The kernel could not track one more socket (out of memory, or the epoll watch
            // limit): close this connection and keep serving the rest.
            Err(err) => {
                report(&err);
                self.incoming.close(connection);
            }
        }
    }

    /// Handles an event for a connection.
    fn on_connection_event(&mut self, token: Token) {
        // The connection may have been closed earlier in this same batch of events. One
        // waiting in the ready queue gets its turn there: serving it here as well would give
        // a streaming client two turns for everyone else's one.
        match self.connections.get(token.0) {
            Some(slot) if !slot.queued => self.serve(token),
            _ => {}
        }
    }

    /// Serves the first `count` connections of the ready queue: those that were there before
    /// this turn's events. Any that stop at their budget again go back to the end.
    fn serve_ready(&mut self, count: usize) {
        for _ in 0..count {
            let Some(token) = self.ready.pop_front() else { return };
            // Only `serve` closes a connection, and it never closes a queued one, so the
            // slot is still there.
            if let Some(slot) = self.connections.get_mut(token.0) {
                slot.queued = false;
                self.serve(token);
            }
        }
    }

    /// Gives one connection its turn, then closes it if it is finished or broken, updates
    /// its interest if that changed, and queues it if it stopped at its budget.
    fn serve(&mut self, token: Token) {
        let Some(slot) = self.connections.get_mut(token.0) else { return };
        let wanted = match slot.connection.on_event(&mut self.scratch, READS_PER_TURN) {
            Ok(next) => next.interest().map(|interest| (interest, next.more)),
            Err(err) => {
                report(&err);
                None
            }
        };
        let Some((interest, more)) = wanted else { return self.close(token) };
        // The usual case: the echo went straight back and the connection still only waits
        // to read, so there is nothing to tell the kernel.
        if interest != slot.interest {
            if let Err(err) = self.poll.registry().reregister(&mut slot.connection, token, interest)
            {
                report(&err);
                return self.close(token);
            }
            slot.interest = interest;
        }
        if more {
            slot.queued = true;
            self.ready.push_back(token);
        }
    }

    /// Closes a connection. Closing its socket also removes it from epoll (no other
    /// descriptor refers to it), so no `deregister` call is needed.
    fn close(&mut self, token: Token) {
        let slot = self.connections.remove(token.0);
        self.incoming.close(slot.connection);
        // One descriptor just came free: if accepting was paused for lack of them, try again
        // after this batch instead of waiting out the pause.
        self.paused_until = None;
    }

    /// Closes every connection, for shutdown, and returns what the loop served.
    ///
    /// Dropping a connection closes its socket; clients see EOF (or a reset if they had
    /// bytes in flight). The listener closes when the loop is dropped, and a Unix listener
    /// removes its socket file as it does.
    fn close_all(mut self) -> Summary {
        for slot in self.connections.drain() {
            self.incoming.close(slot.connection);
        }
        self.summary
    }
}
#[cfg(test)]
mod tests;
