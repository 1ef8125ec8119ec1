//! The hybrid model: one acceptor thread, and N worker threads each running its own event loop.
//!
//! *Where the figures below come from:* those "measured here" were taken by hand on the
//! 2-CPU KVM virtual machine that makes the reference runs (results/README.md), on 2026-12-03;
//! identical runs there differ by a quarter or more. The suite's own comparison, with
//! intervals, is the reference run in results/latest.
//!
//! # How it schedules connections
//!
//! The thread that calls [`run`] becomes the *acceptor*. It owns the listener and does
//! nothing else: it waits (in its own small `mio::Poll`) for the listener or the shutdown
//! handle, accepts until `WouldBlock`, and hands each new connection to one of `--workers`
//! *worker* threads. A hand-off is two steps: push the socket onto that worker's crossbeam
//! channel, then call the worker's [`Waker`] (an eventfd registered in the worker's `Poll`)
//! so that a worker asleep in `epoll_wait` notices. Each worker (see `worker.rs`) runs the
//! single-threaded mio model's own loop,
//! [`EventLoop::run`](echobench_mio::EventLoop::run): its own `Poll`, its own
//! slab of connections, its own scratch buffer, and
//! [`Connection::on_event`](echobench_common::Connection::on_event) draining each ready
//! socket to `WouldBlock`. The one difference is where its new connections come from: not a
//! listener but an inbox (the channel, announced by the waker under the token the loop
//! watches for new connections), given to the loop through its
//! [`Incoming`](echobench_mio::Incoming) trait. A connection lives on one worker from accept
//! to close, so no connection state is ever shared or locked.
//!
//! The acceptor accepts non-blocking sockets (accept4 with SOCK_NONBLOCK) and hands them over
//! as they are. A socket belongs to no `Poll` until it is registered, so it may move between
//! threads freely; had we handed over blocking std streams, the worker would have had to
//! `set_nonblocking(true)` before `from_std`, or one slow read would stall its whole loop.
//!
//! # Which worker gets a connection
//!
//! The one with the fewest open connections, ties broken round robin. Each worker counts its
//! own open connections in an atomic that the acceptor increments at hand-off and the worker
//! decrements at close. Plain round robin would need no counters, but it drifts: with churn,
//! a worker whose connections happen to be long-lived keeps getting its equal share of new
//! ones. Fewest-connections corrects that at the cost of reading N atomics per accept. Neither
//! sees *load*: ten idle connections count for more than three busy ones. The same counters,
//! summed, give the total that `--max-conns` is checked against.
//!
//! The other classic design is SO_REUSEPORT, which the reuseport model (`servers/reuseport`)
//! runs: every worker binds its own listener on the same port and accepts for itself, and
//! the kernel spreads new connections by a hash of their addresses and ports. That removes
//! the acceptor (no hop, no wake-up, no single accepting thread) but balances by hash, not by
//! load or count: two heavy clients may hash to the same worker, and nothing moves them; and
//! Linux balances only TCP and UDP that way, not Unix sockets. Measured here with a churn of
//! short connections (10 at a time, two workers each, a busy machine), this server spent
//! 83 to 90 us of CPU per connection and the reuseport one 68 to 73 us: the hop is about a
//! fifth of a one-message connection's cost, paid once per connection, so it fades as
//! connections live longer, and at these rates one acceptor is not the bottleneck.
//!
//! # What one connection costs
//!
//! As in the mio model: a slab slot (about 64 bytes), an epoll entry and the socket's kernel
//! buffers; a pending buffer of at most `--buffer` bytes only while the client is not reading.
//! On top, one channel message and one eventfd write at hand-off. Per worker: a thread (its
//! stack is virtual memory, touched only as deep as the loop goes), a `Poll`, a scratch
//! buffer. Silent clients delay nobody: a worker's loop never blocks on a connection.
//!
//! # Fairness
//!
//! A worker gives each ready connection a bounded turn, since it runs the mio model's loop:
//! [`Connection::on_event`](echobench_common::Connection::on_event) stops after
//! [`READS_PER_TURN`](echobench_mio::READS_PER_TURN) reads and answers `more`, and the
//! worker keeps such connections in its own ready queue, served again after its next batch
//! of events. Without that, a client streaming as fast as the worker reads kept the
//! worker to itself: beside two clients streaming 64 KiB writes, 100-byte round trips on the
//! same worker took a median of 5 ms and up to 0.7 s with two workers, up to 1.3 s with one
//! (debug build). With the budget: a median of 0.2 to 1.1 ms, 2 to 57 ms at worst. Spreading
//! connections over workers does not replace this: two heavy clients can share a worker.
//!
//! # Where it wins, and what breaks first
//!
//! It uses every core, where the mio model uses one, while keeping the event loop's low cost
//! per connection; with many busy connections it scales with the cores (on this 2-vCPU
//! machine, the load generator needs one of them). Every hand-off costs a cross-thread
//! wake-up (tens of microseconds across vCPUs here), so a churn of short connections pays for
//! the hop, and a single connection gains nothing over the mio model. What breaks first: a
//! skewed spread. Connections are pinned to the worker that got them, so a few heavy clients
//! on one worker saturate that core while others idle, and nothing migrates them. Then the
//! acceptor, for very high connection rates; then, as everywhere, file descriptors (EMFILE
//! pauses accepting, as in the mio model).
//!
//! Run it with `cargo run --release -p echobench-hybrid -- --workers 2`.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use echobench_common::{
    ACCEPT_PAUSE, AcceptError, Config, Listener, MioStream, Shutdown, Summary, interrupted,
};
use mio::{Events, Interest, Poll, Token, Waker};

mod worker;
use worker::WorkerHandle;

/// The acceptor's tokens: the shutdown handle, the listener, and the waker with which a
/// worker says that it closed a connection while accepting was paused.
const SHUTDOWN: Token = Token(0);
const LISTENER: Token = Token(1);
const FREED: Token = Token(2);

/// Serves `listener` with `workers` event-loop threads until `shutdown` fires, then stops
/// every worker (each closes its connections), joins them, and returns what was served.
pub fn run(
    listener: Listener,
    mut shutdown: Shutdown,
    config: &Config,
    workers: usize,
) -> io::Result<Summary> {
    if workers == 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "--workers must be at least 1"));
    }
    let mut poll = Poll::new()?;
    let mut listener = listener.into_mio()?;
    poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
    poll.registry().register(&mut shutdown, SHUTDOWN, Interest::READABLE)?;
    let freed = Arc::new(FreedSignal {
        accept_paused: AtomicBool::new(false),
        waker: Waker::new(poll.registry(), FREED)?,
    });
    // If one worker cannot start, the pool stops the others as it drops.
    let mut pool = Pool::start(workers, config, &freed)?;
    let mut events = Events::with_capacity(16);
    let mut summary = Summary::default();
    // Set while out of file descriptors: when to try accepting again.
    let mut paused_until: Option<Instant> = None;

    let accepted: io::Result<()> = 'serve: loop {
        let timeout = paused_until.map(|t| t.saturating_duration_since(Instant::now()));
        if let Err(err) = poll.poll(&mut events, timeout) {
            if interrupted(&err) {
                continue;
            }
            break Err(err);
        }
        if events.iter().any(|event| event.token() == SHUTDOWN) {
            break Ok(());
        }
        // The listener is readable, or the pause is over, or a worker freed a descriptor:
        // accept until `WouldBlock`, as edge-triggered epoll requires, or until out of
        // descriptors again.
        let descriptor_freed = events.iter().any(|event| event.token() == FREED);
        if paused_until.is_some_and(|t| Instant::now() < t) && !descriptor_freed {
            continue;
        }
        paused_until = None;
        freed.accept_paused.store(false, Ordering::Relaxed);
        loop {
            let stream = match listener.accept() {
                Ok(stream) => stream,
                Err(err) => match AcceptError::classify(&err) {
                    AcceptError::WouldBlock => break,
                    AcceptError::Retry => continue,
                    AcceptError::OutOfResources => {
                        // The kernel keeps the connection queued; come back after a pause
                        // (see ACCEPT_PAUSE), or as soon as a worker closes a connection.
                        paused_until = Some(Instant::now() + ACCEPT_PAUSE);
                        freed.accept_paused.store(true, Ordering::Relaxed);
                        break;
                    }
                    AcceptError::Fatal => break 'serve Err(err),
                },
            };
            if pool.open() >= config.max_conns {
                // Accept and close at once: the client gets an answer (EOF) instead of hanging.
                summary.rejected += 1;
                continue;
            }
            if let Err(err) = pool.hand_off(stream) {
                break 'serve Err(err);
            }
            summary.served += 1;
        }
    };

    // Whatever ended the loop, stop and join every worker before returning, so that no thread
    // outlives `run`. A worker's own failure is the more telling error, so it wins.
    drop(listener);
    pool.stop()?;
    accepted.map(|()| summary)
}

/// The acceptor's handles on the running workers.
#[derive(Debug)]
struct Pool {
    workers: Vec<WorkerHandle>,
    /// Where the next search for the least busy worker starts, so that ties go round robin.
    next: usize,
}

impl Pool {
    /// Starts `count` workers, each with its own `Poll`, waker and channel.
    fn start(count: usize, config: &Config, freed: &Arc<FreedSignal>) -> io::Result<Pool> {
        let mut pool = Pool { workers: Vec::with_capacity(count), next: 0 };
        for id in 0..count {
            pool.workers.push(WorkerHandle::spawn(id, config, Arc::clone(freed))?);
        }
        Ok(pool)
    }

    /// Connections open across all workers, including those still in a channel.
    fn open(&self) -> usize {
        self.workers.iter().map(|worker| worker.open.load(Ordering::Relaxed)).sum()
    }

    /// Gives `stream` to the worker with the fewest open connections, and wakes it.
    fn hand_off(&mut self, stream: MioStream) -> io::Result<()> {
        let count = self.workers.len();
        let chosen = (0..count)
            .map(|i| (self.next + i) % count)
            .min_by_key(|&i| self.workers[i].open.load(Ordering::Relaxed))
            .expect("a pool has at least one worker");
        self.next = (chosen + 1) % count;
        let worker = &self.workers[chosen];
        // Count it before sending, so that the worker's decrement can never come first.
        worker.open.fetch_add(1, Ordering::Relaxed);
        if worker.sender.send(stream).is_err() {
            // Only a worker that has exited drops its receiver; `stop` reports why.
            worker.open.fetch_sub(1, Ordering::Relaxed);
            return Err(io::Error::other(format!("worker {chosen} exited early")));
        }
        worker.waker.wake()
    }

    /// Tells every worker to stop (their channels close, then a wake-up), then joins them all
    /// and returns the first failure among them.
    fn stop(&mut self) -> io::Result<()> {
        let workers = std::mem::take(&mut self.workers);
        // Tell them all before joining any, so that they close their connections in parallel.
        let mut result = Ok(());
        let mut threads = Vec::with_capacity(workers.len());
        for WorkerHandle { sender, waker, thread, .. } in workers {
            drop(sender);
            match waker.wake() {
                // Keep the waker until the join: closing its eventfd would take the pending
                // wake-up out of the worker's epoll before the worker sees it.
                Ok(()) => threads.push((thread, waker)),
                // A worker we cannot wake would never return, and joining it would hang the
                // server: leave it to die with the process, and say so.
                Err(err) => result = result.and(Err(err)),
            }
        }
        for (thread, _waker) in threads {
            let outcome =
                thread.join().unwrap_or_else(|_| Err(io::Error::other("worker panicked")));
            result = result.and(outcome);
        }
        result
    }
}

impl Drop for Pool {
    /// Stops the workers if `run` left early (an error before or during serving).
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// How a worker tells a paused acceptor that a file descriptor came free.
#[derive(Debug)]
struct FreedSignal {
    /// Set while the acceptor is out of descriptors. Workers read it at every close, which
    /// costs next to nothing; a wake-up missed through a stale read only means the acceptor
    /// waits out [`ACCEPT_PAUSE`], so relaxed ordering is enough.
    accept_paused: AtomicBool,
    /// Wakes the acceptor's `epoll_wait` with the token [`FREED`].
    waker: Waker,
}

impl FreedSignal {
    /// Called by a worker after closing a connection.
    fn descriptor_freed(&self) {
        if self.accept_paused.load(Ordering::Relaxed) {
            // A failed wake-up only means the acceptor waits out its pause.
            let _ = self.waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use echobench_common::{Endpoint, Stream};
    use echobench_conformance::{closed_by_server, connect, round_trip};
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::thread;
    use std::time::Duration;

    /// A loopback client, and the server's end as the acceptor would hand it over.
    fn pair() -> (TcpStream, MioStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (client, Stream::Tcp(server).into_mio().unwrap())
    }

    fn opens(pool: &Pool) -> Vec<usize> {
        pool.workers.iter().map(|worker| worker.open.load(Ordering::Relaxed)).collect()
    }

    #[test]
    fn zero_workers_is_refused() {
        let listener = Listener::bind(&Endpoint::parse("127.0.0.1:0").unwrap(), 8).unwrap();
        let err = run(listener, Shutdown::new().unwrap(), &Config::default(), 0).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn new_connections_go_to_the_least_busy_worker() {
        let poll = Poll::new().unwrap();
        let freed = Arc::new(FreedSignal {
            accept_paused: AtomicBool::new(false),
            waker: Waker::new(poll.registry(), FREED).unwrap(),
        });
        let mut pool = Pool::start(3, &Config::default(), &freed).unwrap();
        // Equal loads: round robin.
        let mut clients = Vec::new();
        for _ in 0..3 {
            let (client, server) = pair();
            pool.hand_off(server).unwrap();
            clients.push(client);
        }
        assert_eq!(opens(&pool), [1, 1, 1]);

        // The client on worker 1 leaves; that worker closes its end and counts it.
        drop(clients.remove(1));
        let deadline = Instant::now() + Duration::from_secs(10);
        while opens(&pool)[1] != 0 {
            assert!(Instant::now() < deadline, "worker 1 never closed the connection");
            thread::sleep(Duration::from_millis(1));
        }
        // Round robin would now pick worker 0; the least busy is worker 1.
        let (mut client, server) = pair();
        pool.hand_off(server).unwrap();
        assert_eq!(opens(&pool), [1, 1, 1]);
        // And the connection really is served there.
        client.write_all(b"ping").unwrap();
        let mut back = [0u8; 4];
        client.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"ping");
        pool.stop().unwrap();
    }

    #[test]
    fn max_conns_counts_the_connections_of_every_worker() {
        let listener = Listener::bind(&Endpoint::parse("127.0.0.1:0").unwrap(), 8).unwrap();
        let Endpoint::Tcp(addr) = listener.local_endpoint().unwrap() else { unreachable!() };
        let shutdown = Shutdown::new().unwrap();
        let stop = shutdown.clone();
        let config = Config { max_conns: 3, buffer: 1024 };
        let server = thread::spawn(move || run(listener, shutdown, &config, 2));
        // Three connections over two workers: neither worker alone holds three, so only the
        // sum of their counts can turn the fourth away.
        let mut clients: Vec<TcpStream> = (0..3).map(|_| connect(addr)).collect();
        clients.iter_mut().for_each(|client| round_trip(client, b"hello"));
        assert!(closed_by_server(&mut connect(addr)), "the fourth connection was served");

        stop.trigger();
        assert_eq!(server.join().unwrap().unwrap(), Summary { served: 3, rejected: 1 });
        // Every connection was closed by its worker on the way out.
        assert!(clients.iter_mut().all(closed_by_server));
    }
}
