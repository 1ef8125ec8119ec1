//! The reuseport model: N worker threads, each with a listener of its own on the same port
//! and the mio model's event loop over it. No acceptor: the kernel deals out the connections.
//!
//! *Where the figures below come from:* those "measured here" were taken by hand on the
//! 2-CPU KVM virtual machine that makes the reference runs (results/README.md), on 2026-12-03;
//! identical runs there differ by a quarter or more. The suite's own comparison, with
//! intervals, is the reference run in results/latest.
//!
//! # How it schedules connections
//!
//! Before the ready line, [`bind`] makes one listening socket per worker, all bound to the
//! server's address with SO_REUSEPORT: a *group* that shares the port. (For port 0 the first
//! bind picks a free port and the others join it there. A port that anyone else listens on
//! is refused, another group's too: see
//! [`Listener::bind_reuseport`](echobench_common::Listener::bind_reuseport).) [`run`] sets
//! up one mio event loop per listener ([`EventLoop::listening`]): its own `Poll`, its own
//! slab, accepting for itself until `WouldBlock`. Only when all are set up do they start,
//! each on its own thread; the calling thread is worker 0, so N workers are N threads, and
//! none of them only accepts.
//!
//! Who serves a connection is decided in the kernel, at the handshake: it hashes the
//! connection's addresses and ports, picks one listener of the group by that hash, and
//! queues the connection there alone. Only that worker's epoll hears of it, so the worker
//! that accepts a connection is the one that serves it, from accept to close: no channel,
//! no hand-off, no wake-up of another thread.
//!
//! The workers share two things only. The shutdown handle: each registers it in its own
//! `Poll`, so one signal stops them all. And the count of open connections, one atomic that
//! every worker's accept checks and increments and every close decrements, so that
//! `--max-conns` bounds the server, not each worker. When a worker stops for any reason (an
//! error, a panic), it fires the shutdown and the others follow: a server with a dead
//! worker would reset the connections queued on its listener, and keep the port.
//!
//! ## Unix sockets
//!
//! Linux spreads a group's connections only for TCP and UDP; a Unix socket's path is bound
//! by one socket. So for `--unix`, [`bind`] makes one listener and gives each worker a
//! duplicate descriptor of it: one queue, watched by N loops. A new connection then wakes
//! every worker asleep in `epoll_wait`, the first to call `accept` gets it, and the others
//! find nothing (epoll checks again before it reports an event, so they mostly go back to
//! sleep inside the kernel): the thundering herd, in miniature. Measured here with one client
//! opening connection after connection on two workers: 2.5 to 2.8 context switches per
//! connection, against 1.9 to 2.1 over TCP. (`EPOLLEXCLUSIVE` would wake one waiter, but mio
//! does not offer it.) The balance is then the opposite of TCP's: whichever worker is free
//! first takes the connection, so the spread follows who is idle, not a hash (7,237 against
//! 16,733 connections in that run).
//!
//! # Who balances: against the hybrid model
//!
//! The hybrid model's acceptor picks the worker with the fewest open connections, knowing
//! every worker's count. Here the kernel picks by hash, knowing nothing: not load, not
//! count, not whether the worker is keeping up. Over many connections each worker gets about
//! 1/N (measured here: 5,000 idle connections on two workers split 2,504 to 2,498, and
//! 46,660 short ones 23,316 to 23,344), but a small set spreads as a hash spreads it
//! (binomially: 60 connections on three workers came out 28, 18 and 14 in one run), and
//! nothing evens it out later, as the hybrid acceptor does when long-lived connections pile
//! up on one worker under churn. The exit summary lists the connections each worker served,
//! so the spread shows.
//!
//! What the acceptor costs, and this model saves: a thread that only accepts, and per
//! connection a channel send, an eventfd write and a wake-up of the worker (tens of
//! microseconds when it sleeps on another CPU); and one accepting thread in front of every
//! worker, which bounds the rate of new connections. Here each listener has its own queue,
//! and accepting grows with the workers. Measured here with a churn of short connections (10
//! at a time, two workers each, a busy machine): 68 to 73 us of server CPU per connection,
//! against the hybrid server's 83 to 90 us.
//!
//! What it costs instead: a connection waits for the worker the hash chose. If that worker
//! is busy (a long batch, heavy clients, descheduled), new connections sit in its queue while
//! the other workers idle; nobody else can take them, as each queue belongs to one socket.
//! If the queue fills (`--backlog`), the kernel drops further handshakes for that listener
//! although the others have room, and those clients retry a dropped SYN after a second, and
//! on Linux 6.5 and later every second for the first `net.ipv4.tcp_syn_linear_timeouts`
//! tries (the backlog scenario measures it). The hybrid acceptor would have taken them and
//! given them to a less busy worker.
//!
//! # What one connection costs
//!
//! As in the mio model: a slab slot, an epoll entry and the socket's kernel buffers; a
//! pending buffer of at most `--buffer` bytes only while the client is not reading. Nothing
//! for a hand-off. Measured here, 5,000 idle connections on two workers added 0.4 MiB to
//! the server's resident memory. Per worker: a thread, a `Poll`, a scratch buffer, and a
//! listener with its own queue, so the server as a whole queues up to N times `--backlog`
//! connections.
//!
//! # Where it wins, and what breaks first
//!
//! New connections: a churn of short ones is accepted and served where the kernel put it,
//! without the hybrid's cross-thread hop, and accepting is spread over every worker. Many
//! busy connections use every core, as with hybrid. What breaks first is the spread: the
//! hash is blind, so two heavy clients may share a worker while another idles, and a busy
//! worker's queue waits for it. With Unix sockets, the herd: every connection wakes every
//! sleeping worker. Then, as everywhere, file descriptors (EMFILE pauses each worker's
//! accepting, as in the mio model; a worker's pause ends early only when one of its own
//! connections closes). With `--workers 1`, the default on one CPU (the default is one
//! worker per CPU the process may run on), it is the mio model on a SO_REUSEPORT listener.
//!
//! Run it with `cargo run --release -p echobench-reuseport -- --workers 2`.

use std::io;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::thread;

use echobench_common::{Config, Endpoint, Listener, Shutdown, Summary};
use echobench_mio::{Accepting, EventLoop};

/// Binds the listeners of `workers` workers (at least one) on `endpoint`, each listening
/// with a queue of `backlog`: for TCP, a SO_REUSEPORT group, one socket per worker; for a
/// Unix socket, one socket shared by every worker through duplicate descriptors.
pub fn bind(endpoint: &Endpoint, backlog: u32, workers: usize) -> io::Result<Vec<Listener>> {
    match endpoint {
        Endpoint::Tcp(addr) => Listener::bind_reuseport(*addr, backlog, workers),
        Endpoint::Unix(_) => {
            let listener = Listener::bind(endpoint, backlog)?;
            let mut listeners = (1..workers)
                .map(|_| listener.try_clone())
                .collect::<io::Result<Vec<Listener>>>()?;
            listeners.push(listener);
            Ok(listeners)
        }
    }
}

/// Serves with one worker per listener (the calling thread is the first) until `shutdown`
/// fires or a worker fails; then every worker closes its connections, and once all have
/// returned, so does `run`, with what each served.
pub fn run(listeners: Vec<Listener>, shutdown: Shutdown, config: &Config) -> io::Result<Served> {
    if listeners.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "--workers must be at least 1"));
    }
    // The one count of open connections that every worker checks `--max-conns` against.
    let open = Arc::new(AtomicUsize::new(0));
    // Every loop is set up (its epoll instance made, its listener and the shutdown handle
    // registered) before any of them runs: a worker that started accepting early could use
    // up the descriptors that a later one needs for its own `Poll`.
    let mut loops = listeners
        .into_iter()
        .map(|listener| EventLoop::listening(listener, shutdown.clone(), config, Arc::clone(&open)))
        .collect::<io::Result<Vec<_>>>()?
        .into_iter();
    let first = loops.next().expect("checked above: at least one listener");
    let worker = |event_loop: EventLoop<Accepting>| {
        // Whatever ends this worker ends them all (see the module docs).
        let _stop_all = StopAll(&shutdown);
        event_loop.run()
    };
    // A scope: no worker thread can outlive `run`, whatever happens in it.
    thread::scope(|scope| {
        let mut others = Vec::with_capacity(loops.len());
        for (id, event_loop) in (1..).zip(loops) {
            let spawned = thread::Builder::new()
                .name(format!("worker-{id}"))
                .spawn_scoped(scope, || worker(event_loop));
            match spawned {
                Ok(thread) => others.push(thread),
                Err(err) => {
                    // Stop the workers already running; the scope waits for them.
                    shutdown.trigger();
                    return Err(err);
                }
            }
        }
        let mut results = vec![worker(first)];
        for thread in others {
            let result = thread.join().unwrap_or_else(|_| Err(io::Error::other("worker panicked")));
            results.push(result);
        }
        // The first failure, if any, is the server's; otherwise what each worker served.
        results.into_iter().collect::<io::Result<Vec<Summary>>>().map(|workers| Served { workers })
    })
}

/// Fires the shutdown when dropped: as its worker returns, fails or unwinds from a panic.
struct StopAll<'a>(&'a Shutdown);

impl Drop for StopAll<'_> {
    fn drop(&mut self) {
        // After a normal shutdown the event has fired already, and firing it again is harmless.
        self.0.trigger();
    }
}

/// What the server served, worker by worker: the spread is what this model shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// One summary per worker, in worker order (worker 0 ran on the calling thread).
    pub workers: Vec<Summary>,
}

impl Served {
    /// The whole server's summary: every worker's counts added up.
    pub fn total(&self) -> Summary {
        self.workers.iter().fold(Summary::default(), |total, worker| Summary {
            served: total.served + worker.served,
            rejected: total.rejected + worker.rejected,
        })
    }

    /// How the connections spread over the workers, in the form the harness quotes:
    /// `connections per worker: min 14, median 18, max 28 (by worker: 28 18 14)`.
    pub fn spread(&self) -> String {
        let mut counts: Vec<u64> = self.workers.iter().map(|worker| worker.served).collect();
        let by_worker: Vec<String> = counts.iter().map(u64::to_string).collect();
        counts.sort_unstable();
        let at = |i: usize| counts.get(i).copied().unwrap_or(0);
        let (min, median, max) = (at(0), at(counts.len() / 2), at(counts.len().saturating_sub(1)));
        let by_worker = by_worker.join(" ");
        format!(
            "connections per worker: min {min}, median {median}, max {max} (by worker: {by_worker})"
        )
    }

    /// Writes the exit lines on stderr: the spread, then the summary line every server prints.
    pub fn log(&self, program: &str) {
        eprintln!("{program}: {}", self.spread());
        self.total().log(program);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use echobench_conformance::{closed_by_server, connect, round_trip};
    use std::net::TcpStream;

    #[test]
    fn zero_workers_is_refused() {
        let err = run(Vec::new(), Shutdown::new().unwrap(), &Config::default()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn the_spread_names_min_median_max_and_every_worker() {
        let served = |counts: &[u64]| Served {
            workers: counts.iter().map(|&served| Summary { served, rejected: 1 }).collect(),
        };
        let three = served(&[28, 14, 18]);
        let line = "connections per worker: min 14, median 18, max 28 (by worker: 28 14 18)";
        assert_eq!(three.spread(), line);
        assert_eq!(three.total(), Summary { served: 60, rejected: 3 });
        assert_eq!(
            served(&[7]).spread(),
            "connections per worker: min 7, median 7, max 7 (by worker: 7)"
        );
    }

    #[test]
    fn max_conns_bounds_every_worker_together() {
        let listeners = bind(&Endpoint::parse("127.0.0.1:0").unwrap(), 64, 3).unwrap();
        let Endpoint::Tcp(addr) = listeners[0].local_endpoint().unwrap() else { unreachable!() };
        let shutdown = Shutdown::new().unwrap();
        let stop = shutdown.clone();
        let config = Config { max_conns: 20, buffer: 1024 };
        let server = thread::spawn(move || run(listeners, shutdown, &config));
        // The hash spreads 20 connections over 3 workers, so no worker alone reaches 20:
        // only the shared count can turn the next ones away.
        let mut clients: Vec<TcpStream> = (0..20).map(|_| connect(addr)).collect();
        clients.iter_mut().for_each(|client| round_trip(client, b"hello"));
        for _ in 0..5 {
            assert!(closed_by_server(&mut connect(addr)), "served over --max-conns 20");
        }

        stop.trigger();
        let served = server.join().unwrap().unwrap();
        assert_eq!(served.workers.len(), 3);
        assert_eq!(served.total(), Summary { served: 20, rejected: 5 });
        assert!(clients.iter_mut().all(closed_by_server));
    }
}
