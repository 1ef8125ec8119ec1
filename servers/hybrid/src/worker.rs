//! A hybrid worker: one thread running one mio event loop over its share of the connections.
//!
//! The acceptor (in `lib.rs`) keeps a [`WorkerHandle`] per worker and talks to the worker
//! only through it: a channel that carries new sockets, a [`Waker`] that interrupts the
//! worker's `epoll_wait`, and a counter of the worker's open connections. The worker talks
//! back only through that counter and, when it closes a connection while the acceptor is out
//! of descriptors, the acceptor's own waker. Everything else (the `Poll`, the slab of
//! connections, the scratch buffer) belongs to the worker thread alone.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use echobench_common::conn::report;
use echobench_common::{Config, Connection, MioStream, interrupted};

use crate::FreedSignal;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

/// A worker's token for its waker; its connections use slab keys, which count up from 0.
const WAKER: Token = Token(usize::MAX);
/// How many ready events one `epoll_wait` may return.
const EVENTS_PER_POLL: usize = 1024;

/// The acceptor's side of one worker.
#[derive(Debug)]
pub(crate) struct WorkerHandle {
    /// The worker's queue of new connections. Dropping it is how the worker learns to stop.
    pub(crate) sender: Sender<MioStream>,
    /// Wakes the worker's `epoll_wait` after a send (or a drop) on `sender`. mio delivers a
    /// wake-up only while its `Waker` lives, so it must outlive the worker's last wake-up.
    pub(crate) waker: Waker,
    /// The worker's open connections: the acceptor adds, the worker subtracts at close.
    pub(crate) open: Arc<AtomicUsize>,
    /// The worker thread, which returns when its channel closes (or its `Poll` fails).
    pub(crate) thread: JoinHandle<io::Result<()>>,
}

impl WorkerHandle {
    /// Starts worker number `id`.
    pub(crate) fn spawn(
        id: usize,
        config: &Config,
        freed: Arc<FreedSignal>,
    ) -> io::Result<WorkerHandle> {
        // The `Poll` is made here rather than in the thread so that its errors surface from
        // `run`, and so that the waker can be made on its registry before the hand-over.
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        // Unbounded: the acceptor never blocks on a worker, and the queue can hold at most
        // `--max-conns` sockets, since every queued socket already counts as open.
        let (sender, receiver) = crossbeam_channel::unbounded();
        let open = Arc::new(AtomicUsize::new(0));
        let worker = Worker {
            poll,
            receiver,
            open: Arc::clone(&open),
            freed,
            connections: Slab::new(),
            scratch: vec![0; config.buffer],
            ready: VecDeque::new(),
            buffer: config.buffer,
        };
        let thread =
            thread::Builder::new().name(format!("worker-{id}")).spawn(move || worker.run())?;
        Ok(WorkerHandle { sender, waker, open, thread })
    }
}

/// One worker: an event loop over its share of the connections.
#[derive(Debug)]
struct Worker {
    /// The worker's own epoll instance, which its connections and its waker are registered with.
    poll: Poll,
    /// New connections from the acceptor; disconnected when the server stops.
    receiver: Receiver<MioStream>,
    /// This worker's open connections, shared with the acceptor.
    open: Arc<AtomicUsize>,
    /// Rung at every close, in case the acceptor waits for a free descriptor.
    freed: Arc<FreedSignal>,
    /// Open connections by token, as in the mio model: keys are reused, so a stale event may
    /// name a newer connection, which [`Connection::on_event`] tolerates.
    connections: Slab<Slot>,
    /// The one read buffer, lent to whichever connection is being served.
    scratch: Vec<u8>,
    /// Connections that stopped at their budget with bytes possibly still waiting, oldest
    /// first, as in the mio model: no event will come for those bytes, so the worker serves
    /// these again itself after everyone else that is ready. A token is here exactly when
    /// its slot says `queued`.
    ready: VecDeque<Token>,
    /// The bound on each connection's pending bytes (`--buffer`).
    buffer: usize,
}

/// One open connection and the interest it is registered with, so that `epoll_ctl` is called
/// only when the interest changes.
#[derive(Debug)]
struct Slot {
    connection: Connection,
    interest: Interest,
    /// Waiting in the ready queue: it will be served from there, once per turn.
    queued: bool,
}

impl Worker {
    /// The worker's event loop: serves its connections until the acceptor's channel closes.
    fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(EVENTS_PER_POLL);
        loop {
            // With connections in the ready queue there is work to do now: only look.
            let timeout = if self.ready.is_empty() { None } else { Some(Duration::ZERO) };
            if let Err(err) = self.poll.poll(&mut events, timeout) {
                if interrupted(&err) {
                    continue;
                }
                return Err(err);
            }
            // Those queued in the last turn are served after this batch, so that every
            // connection gets one turn before any gets a second.
            let waiting = self.ready.len();
            let mut woken = false;
            for event in events.iter() {
                match event.token() {
                    // New connections are taken after this batch: the ones that are ready
                    // now are served first, and a wake-up costs one pass over the channel.
                    WAKER => woken = true,
                    token => self.on_connection_event(token),
                }
            }
            self.serve_ready(waiting);
            if woken && !self.take_new_connections() {
                // Stopping: dropping the slab closes every connection this worker holds.
                self.connections.clear();
                return Ok(());
            }
        }
    }

    /// Registers every connection waiting in the channel; false once the channel has closed.
    ///
    /// Wake-ups may merge (two sends, one event), so one wake-up drains the whole channel.
    fn take_new_connections(&mut self) -> bool {
        loop {
            let stream = match self.receiver.try_recv() {
                Ok(stream) => stream,
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            };
            let entry = self.connections.vacant_entry();
            let token = Token(entry.key());
            let mut connection = Connection::new(stream, self.buffer);
            // READABLE: the client speaks first. Data that arrived while the socket sat in
            // the channel is reported at once, since epoll checks readiness on registration.
            match self.poll.registry().register(&mut connection, token, Interest::READABLE) {
                Ok(()) => {
                    entry.insert(Slot { connection, interest: Interest::READABLE, queued: false });
                }
                Err(err) => {
                    // The socket is closed as `connection` drops here.
                    report(&err);
                    self.open.fetch_sub(1, Ordering::Relaxed);
                    self.freed.descriptor_freed();
                }
            }
        }
    }

    /// Handles an event for a connection, unless it waits in the ready queue, where it gets
    /// its turn (serving it here as well would give a streaming client two turns).
    fn on_connection_event(&mut self, token: Token) {
        // The connection may have been closed earlier in this same batch of events.
        match self.connections.get(token.0) {
            Some(slot) if !slot.queued => self.serve(token),
            _ => {}
        }
    }

    /// Serves the first `count` connections of the ready queue; any that stop at their
    /// budget again go back to the end.
    fn serve_ready(&mut self, count: usize) {
        for _ in 0..count {
            let Some(token) = self.ready.pop_front() else { return };
            // Only `serve` closes a connection, never a queued one: the slot is there.
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
        let wanted = match slot.connection.on_event(&mut self.scratch) {
            Ok(next) => next.interest().map(|interest| (interest, next.more)),
            Err(err) => {
                report(&err);
                None
            }
        };
        let Some((interest, more)) = wanted else { return self.close(token) };
        // The usual case: nothing changed, so no system call.
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

    /// Closes a connection (which also removes it from epoll) and tells the acceptor.
    fn close(&mut self, token: Token) {
        // Count it out before closing: the close is what tells the client (its FIN), and a
        // client that reconnects at once must not find the old connection still counted
        // against `--max-conns`.
        self.open.fetch_sub(1, Ordering::Relaxed);
        drop(self.connections.remove(token.0));
        self.freed.descriptor_freed();
    }
}
