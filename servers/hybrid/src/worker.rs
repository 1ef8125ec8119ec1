//! A hybrid worker: one thread running the mio model's event loop over its share of the
//! connections.
//!
//! The acceptor (in `lib.rs`) keeps a [`WorkerHandle`] per worker and talks to the worker
//! only through it: a channel that carries new sockets, a [`Waker`] that interrupts the
//! worker's `epoll_wait`, and a counter of the worker's open connections. The worker talks
//! back only through that counter and, when it closes a connection while the acceptor is out
//! of descriptors, the acceptor's own waker. Everything else (the `Poll`, the slab of
//! connections, the scratch buffer, the fairness budget) is the mio model's loop, run
//! unchanged: [`EventLoop::run`]. What a worker adds is where its new connections come
//! from, the [`Inbox`].

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use echobench_common::{Config, Connection, MioStream};
use echobench_mio::{Arrival, EventLoop, INCOMING, Incoming};
use mio::{Poll, Waker};

use crate::FreedSignal;

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
        // `run`, and so that the waker can be made on its registry before the hand-over. The
        // waker takes the token under which the mio loop expects news of new connections.
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), INCOMING)?;
        // Unbounded: the acceptor never blocks on a worker, and the queue can hold at most
        // `--max-conns` sockets, since every queued socket already counts as open.
        let (sender, receiver) = crossbeam_channel::unbounded();
        let open = Arc::new(AtomicUsize::new(0));
        let inbox = Inbox { receiver, open: Arc::clone(&open), freed };
        // No shutdown handle: a worker stops when the acceptor closes its channel.
        let event_loop = EventLoop::new(poll, inbox, None, config)?;
        let thread = thread::Builder::new().name(format!("worker-{id}")).spawn(move || {
            // The loop's own summary repeats what the acceptor counted at hand-off.
            event_loop.run().map(drop)
        })?;
        Ok(WorkerHandle { sender, waker, open, thread })
    }
}

/// Where a worker's new connections come from: the sockets the acceptor sent it.
#[derive(Debug)]
struct Inbox {
    /// New connections from the acceptor; disconnected when the server stops.
    receiver: Receiver<MioStream>,
    /// This worker's open connections, shared with the acceptor.
    open: Arc<AtomicUsize>,
    /// Rung at every close, in case the acceptor waits for a free descriptor.
    freed: Arc<FreedSignal>,
}

impl Incoming for Inbox {
    /// Wake-ups may merge (two sends, one event), so the loop's taking until `Empty` drains
    /// the whole channel after each one. A closed channel means the server is stopping.
    fn take(&mut self) -> io::Result<Arrival> {
        Ok(match self.receiver.try_recv() {
            Ok(stream) => Arrival::Connection(stream),
            Err(TryRecvError::Empty) => Arrival::Empty,
            Err(TryRecvError::Disconnected) => Arrival::Ended,
        })
    }

    /// The acceptor already checked `--max-conns` and counted the connection in `open`
    /// before sending it, so that sockets still in the channel count too.
    fn admit(&mut self) -> bool {
        true
    }

    fn close(&mut self, connection: Connection) {
        // Count it out before closing: the close is what tells the client (its FIN), and a
        // client that reconnects at once must not find the old connection still counted
        // against `--max-conns`. Only then is the descriptor free for a paused acceptor.
        self.open.fetch_sub(1, Ordering::Relaxed);
        drop(connection);
        self.freed.descriptor_freed();
    }
}
