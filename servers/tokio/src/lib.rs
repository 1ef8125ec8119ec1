//! The tokio model: a task per connection, on a runtime of N worker threads that steal work.
//!
//! *Where the figures below come from:* those "measured here" were taken by hand on the
//! 2-CPU KVM virtual machine that makes the reference runs (results/README.md), on 2026-12-03;
//! identical runs there differ by a quarter or more. The suite's own comparison, with
//! intervals, is the reference run in results/latest.
//!
//! # How it schedules connections
//!
//! [`run`] builds a multi-threaded tokio runtime with `--workers` worker threads and spawns
//! one task on it, the accept loop, which in turn spawns one task per accepted connection.
//! A task is a future (the `async fn` in `conn.rs`, compiled into a state machine) plus a
//! small header: its state, its reference count, the waker vtable, its place in a queue. The
//! connection's code reads like the thread model's blocking loop: read, then `write_all`,
//! until the client closes. Where the thread model's thread would block in `read`, the task
//! returns `Pending`, and its waker is left with the socket's entry in the reactor.
//!
//! The reactor (tokio's I/O driver) is one mio `Poll`, one epoll instance, shared by every
//! worker. A worker that runs out of tasks takes the driver (only one may hold it at a time),
//! calls `epoll_wait`, and wakes the task of each ready socket, which pushes the task onto
//! that worker's own run queue; then it polls the tasks it has. A worker with nothing to do
//! looks in the shared injection queue and steals half the run queue of a busy worker before
//! it parks. So a connection is not pinned to a thread, as it is on a hybrid worker: its
//! task may run on any worker, each time it wakes.
//!
//! The main thread does nothing but wait for the accept loop's task to finish. Shutdown
//! reaches the loop through the same eventfd as in every other model (common's
//! [`Shutdown`]), registered with the reactor through [`AsyncFd`]: no signal driver, no
//! extra thread. The loop then returns, and shutting the runtime down drops every
//! connection's task wherever it waits, which closes its socket.
//!
//! # What tokio adds over the mio model, and what it costs
//!
//! - **Work stealing across workers.** The hybrid model spreads connections once, at
//!   accept, and a few heavy clients on one worker stay there. Here an idle worker takes
//!   tasks from a busy one, so the load evens out by itself. The price: run queues that
//!   other threads may touch (atomics on every push and pop), a worker that goes looking
//!   for work before it sleeps, and a task that may run on another CPU than the one whose
//!   cache holds its socket. A wake-up across vCPUs costs about 35 us, measured here.
//! - **A task per connection instead of a slab slot.** The mio model's connection is a
//!   64-byte slot in one array. A tokio task is a heap allocation of its own: a header
//!   (state and reference count in one atomic word, the vtable, run-queue and owner links),
//!   then the whole future, 344 bytes here (the socket, the ticket, and the state of the
//!   innermost `.await`: checked by a test). The socket's entry in the reactor
//!   (`ScheduledIo`: readiness bits, the reader's and writer's wakers) is a second
//!   allocation, where mio's is the epoll entry alone. Measured here with silent connections
//!   (`loadgen --connections 1 --idle N`, PSS from `/proc/PID/smaps_rollup` against the
//!   server before the run, `--workers 1`): 1.1 to 1.2 KiB per connection at 1,000 and at
//!   5,000, against 0.05 to 0.1 KiB for the mio model. The buffer comes on top once the client has
//!   spoken, and stays until it closes: 16 KiB by default, where the mio model lends one
//!   scratch buffer to every connection and holds bytes only under backpressure.
//! - **The one shared reactor.** All readiness goes through one epoll instance, whoever
//!   polls it. A ready event is a wake-up: the driver sets the socket's readiness bits and
//!   calls the task's waker, which puts the task in a run queue; later a worker polls the
//!   task, which tries the read. The mio model does the read right there in its loop. With
//!   more than one worker, only the one holding the driver hears of events; it wakes a
//!   parked one (a futex) to come and steal when it has found more work than it can run.
//! - **Cooperative budgeting.** A task gets 128 units of budget per poll; every socket
//!   operation that makes progress spends one, and at 0 the next one returns `Pending` on a
//!   ready socket and puts the task at the back of the run queue. So a client that streams
//!   as fast as the task reads yields the worker after 64 reads and their writes. That is
//!   the mio model's bound of 16 reads per turn, enforced by the runtime instead of written
//!   into the loop, at four times the length. In the conformance case beside two streaming
//!   clients (debug build), 100-byte round trips took a median of 1.1 ms, 2.1 ms at worst.
//! - **Fewer system calls per message.** When a read returns fewer bytes than the buffer
//!   holds, tokio takes the socket to be empty and clears its readiness, so the next read
//!   waits for the reactor instead of calling read(2) to hear EAGAIN, which the mio model
//!   does (see `echobench_common::conn` for why it keeps that call).
//!
//! # What a message costs, against the mio model
//!
//! Measured here on one worker pinned to one CPU (`taskset -c 0`, `--workers 1`), the load
//! generator on the other (64-byte messages, closed loop, 100 and 1,000 connections), the
//! two costs pull in opposite directions. System calls (`strace -c -f`, a separate run):
//! 2.05 per message at 100 connections and 2.22 at 1,000 (a recv, a send, a share of
//! `epoll_wait`), against the mio model's 2.93 and 3.11, whose extra call is the read that
//! hears EAGAIN. User-space instructions (callgrind, the difference between a 4 s and a
//! 12 s run): about 1,470 per message, against the mio model's 375; they go to readiness
//! bookkeeping (`Registration`, `ScheduledIo`), task state transitions and the scheduler,
//! with no single hot spot. But the kernel (TCP, loopback, the system calls themselves) has
//! 90% of the server's CPU time (`perf record` of this server), so the two cancel: server
//! CPU time per message (the server's threads' run time over the measured window, from
//! `/proc`) was 6.75 us against the mio model's 6.82 us at 100 connections (0.99x) and
//! 7.03 us against 6.95 us at 1,000 (1.01x), both at about 140,000 messages/s and 0.6 to
//! 0.9 context switches per thousand messages, medians of three interleaved runs on an
//! otherwise quiet machine. (With the
//! machine busy with other builds, single runs of either ranged from 9 to 19 us.)
//!
//! A current-thread runtime, which would drop the work-stealing machinery when there is one
//! worker, saved only 12% of those instructions (1,285 per message), 1 to 2% of the CPU,
//! and is not used: the model is the multi-threaded runtime, and one worker runs the same
//! code as eight.
//!
//! # Where it wins
//!
//! Code: a connection is straight-line `async` code, with the backpressure and half-close
//! rules falling out of the loop's shape instead of a state machine's flags; everything
//! else a real server needs (timeouts, TLS, protocols) composes the same way. Cores: with
//! more than one worker it uses them all, and stealing keeps them busy when a few
//! connections carry most of the load, which the hybrid model's fixed spread cannot do.
//!
//! # What breaks first
//!
//! On one worker, the one core, as for the mio model, and at about the same load. Then
//! memory: every connection that has ever spoken keeps its `--buffer` until it closes
//! (100,000 such clients hold 1.6 GB at the default 16 KiB, where the mio model holds
//! nothing for a client that keeps up). Then a task that blocks: a slow call inside a task
//! stalls its worker, and if that worker holds the driver, every connection's events wait
//! with it. With more workers than CPUs, stealing and cross-CPU wake-ups add context
//! switches that the mio model never makes. Descriptors last, as everywhere: EMFILE pauses
//! accepting (see `accept_loop`).
//!
//! Run it with `cargo run --release -p echobench-tokio -- --workers 2`.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use echobench_common::net::UnixPathGuard;
use echobench_common::{ACCEPT_PAUSE, AcceptError, Config, Listener, Shutdown, Summary};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::runtime::{Builder, Runtime};

mod conn;
use conn::Books;

/// The name of the runtime's worker threads, as `/proc/PID/task/*/comm` shows it (at most
/// 15 bytes there; tokio's own default, `tokio-runtime-worker`, is cut to `tokio-runtime-w`).
pub const WORKER_THREAD_NAME: &str = "tokio-worker";

/// How long shutdown waits for the workers to drop their tasks and exit. They only have to
/// finish the poll they are in, which never blocks, so this is a bound, not a wait.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// Serves `listener` with a task per connection on `workers` runtime threads until
/// `shutdown` fires, then closes every connection and returns what was served.
pub fn run(
    listener: Listener,
    shutdown: Shutdown,
    config: &Config,
    workers: usize,
) -> io::Result<Summary> {
    let runtime = runtime(workers)?;
    let config = *config;
    let outcome = runtime.block_on(async move {
        // Registering a socket with the reactor needs the runtime, so the conversions happen
        // in here rather than before `block_on`.
        let listener = AsyncListener::new(listener)?;
        // READABLE only: an eventfd is always writable, which would wake the loop for nothing.
        // SAFETY: the handle owns (a share of) its eventfd, which stays open for as long as
        // any clone lives, this one included, and `as_raw_fd` always returns that descriptor.
        let shutdown = unsafe { AsyncFd::register_with_interest(shutdown, Interest::READABLE) }?;
        // Spawned, so that the accept loop runs on a worker like every connection, instead
        // of on this thread, which would then be woken across threads for every accept.
        let accepting = tokio::spawn(accept_loop(listener, shutdown, config));
        accepting.await.map_err(io::Error::other)?
    });
    // Every connection task is still alive, parked in its read or its write. Shutting the
    // runtime down drops them all, and each dropped future drops its socket, which closes it.
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    outcome
}

/// A multi-threaded runtime with `workers` workers, sockets and timers.
fn runtime(workers: usize) -> io::Result<Runtime> {
    if workers == 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "--workers must be at least 1"));
    }
    Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name(WORKER_THREAD_NAME)
        .enable_io()
        // The timer serves one purpose: the pause after running out of descriptors.
        .enable_time()
        .build()
}

/// Accepts connections and spawns a task for each until `shutdown` fires.
///
/// Over `--max-conns`, a connection is accepted and closed at once, as in every model. Out
/// of descriptors (EMFILE, ENFILE), the loop waits [`ACCEPT_PAUSE`] or until a connection
/// closes, whichever comes first. Tokio's `accept` keeps the listener marked readable after
/// such an error (only `WouldBlock` clears it), so retrying at once would spin on the
/// failing call; after the pause, it calls accept(2) again without waiting for an event.
async fn accept_loop(
    listener: AsyncListener,
    shutdown: AsyncFd<Shutdown>,
    config: Config,
) -> io::Result<Summary> {
    let books = Arc::new(Books::default());
    let mut summary = Summary::default();
    loop {
        let accepted = tokio::select! {
            // Shutdown first: a loop that always has a connection waiting still stops.
            biased;
            _ = shutdown.readable() => return Ok(summary),
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok(stream) => stream,
            Err(err) => match AcceptError::classify(&err) {
                AcceptError::WouldBlock | AcceptError::Retry => continue,
                AcceptError::OutOfResources => {
                    tokio::select! {
                        biased;
                        _ = shutdown.readable() => return Ok(summary),
                        () = tokio::time::sleep(ACCEPT_PAUSE) => {}
                        () = books.freed() => {}
                    }
                    continue;
                }
                AcceptError::Fatal => return Err(err),
            },
        };
        if books.open() >= config.max_conns {
            summary.rejected += 1;
            continue; // `stream` is dropped here, which closes it.
        }
        summary.served += 1;
        let ticket = books.admit();
        // One task per connection; the runtime decides which worker runs it, each time.
        match stream {
            Accepted::Tcp(stream) => tokio::spawn(conn::serve(stream, config.buffer, ticket)),
            Accepted::Unix(stream) => tokio::spawn(conn::serve(stream, config.buffer, ticket)),
        };
    }
}

/// The listening socket, registered with the reactor. A Unix listener keeps the guard that
/// removes its socket file when the loop drops it.
#[derive(Debug)]
enum AsyncListener {
    Tcp(TcpListener),
    /// `_path` is only kept to be dropped with the listener.
    Unix {
        listener: UnixListener,
        _path: Arc<UnixPathGuard>,
    },
}

/// An accepted connection, not yet given to a task.
#[derive(Debug)]
enum Accepted {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl AsyncListener {
    /// Takes over a bound listener. Tokio, like mio, leaves the socket's blocking mode to us,
    /// and a blocking listener would stall a worker in accept(2).
    fn new(listener: Listener) -> io::Result<AsyncListener> {
        listener.set_nonblocking(true)?;
        Ok(match listener {
            Listener::Tcp(listener) => AsyncListener::Tcp(TcpListener::from_std(listener)?),
            Listener::Unix(listener, guard) => {
                AsyncListener::Unix { listener: UnixListener::from_std(listener)?, _path: guard }
            }
        })
    }

    /// Waits for the next connection. A TCP stream inherits the listener's TCP_NODELAY
    /// setting (see [`Listener::set_nodelay`]: on, unless the server runs with `--nagle`).
    async fn accept(&self) -> io::Result<Accepted> {
        match self {
            AsyncListener::Tcp(listener) => Ok(Accepted::Tcp(listener.accept().await?.0)),
            AsyncListener::Unix { listener, .. } => Ok(Accepted::Unix(listener.accept().await?.0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_task_is_a_small_future() {
        let runtime = Builder::new_current_thread().enable_io().build().unwrap();
        let size = runtime.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let _client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
            let (stream, _) = listener.accept().await.unwrap();
            let ticket = Arc::new(Books::default()).admit();
            std::mem::size_of_val(&conn::serve(stream, 16 * 1024, ticket))
        });
        eprintln!("serve future: {size} bytes");
        assert!(size <= 512, "a connection's future takes {size} bytes");
    }
}
