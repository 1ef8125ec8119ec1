//! # The thread model: one OS thread per connection
//!
//! ```text
//! cargo run --release -p echobench-thread -- --addr 127.0.0.1:7000 --stack-size 65536
//! ```
//!
//! *Where the figures below come from:* those "measured here" were taken by hand on the
//! 2-CPU KVM virtual machine that makes the reference runs (results/README.md), on 2026-11-21;
//! identical runs there differ by a quarter or more. The suite's own comparison, with
//! intervals, is the reference run in results/latest.
//!
//! **How connections are scheduled.** One thread accepts. For every connection it starts a
//! new OS thread that runs the plain blocking echo loop (`read`, then `write_all`, until the
//! client closes) and ends. As in the fork model, nothing here decides who runs when: a
//! connection is a thread, a thread waiting for data sleeps in `read`, and the kernel's
//! scheduler wakes it when bytes arrive. Threads share one address space, so starting one is
//! cheaper than a `fork` (no page tables to copy) and switching between them does not change
//! address spaces.
//!
//! **What one connection costs.** One socket descriptor, one kernel task (with its 16 KiB
//! kernel stack), the echo buffer on the heap, and a user stack, whose size `--stack-size`
//! sets. The default is std's own, 2 MiB, kept on purpose because it shows the difference
//! between virtual and resident memory: the stack is *reserved* address space, mapped in one
//! `mmap`, and a page of it becomes real memory only when the thread first touches it. The
//! echo loop touches a few pages. Measured here (release build, 200 idle connections that
//! had each echoed 1 KB): `VmSize` was 1.4 GB with 2 MiB stacks and 1.0 GB with 16 KiB
//! stacks, while `VmRSS` was 7 to 8 MB either way, about 40 KiB per connection. (The other
//! gigabyte is glibc's per-thread malloc arenas, 64 MiB of address space each, up to eight
//! per core: reserved, not used.) So shrinking the stack (the minimum accepted is 16 KiB)
//! saves address space, not memory. It matters once address space or `vm.max_map_count`
//! (each thread maps a stack and a guard page) runs out, or under strict overcommit, where
//! every reservation counts against RAM. A stack too small for the code that runs on it is
//! not an error you can handle: the thread overflows into its guard page and the whole
//! process dies.
//!
//! **Where it wins.** Straight-line blocking code, every core used, and cheap enough for
//! hundreds or a few thousand connections. Nothing stands between the kernel and the
//! connection: when bytes arrive, the kernel wakes exactly the thread waiting for them, with
//! no event loop deciding whose turn it is.
//!
//! **What breaks first.** Many connections: each is a kernel task to schedule, and with
//! thousands active at once the CPU goes to context switches and cache misses rather than
//! echoing. Thread creation per connection hurts under churn. Then the limits: the kernel's
//! `threads-max`, `RLIMIT_NPROC` (threads count as processes), `vm.max_map_count`, and
//! descriptors. A failed spawn closes that one connection; the server carries on.
//!
//! **Shutdown** is the subtle part. A thread blocked in `read` cannot be interrupted from
//! outside in std, and SIGTERM goes to one arbitrary thread. So the server keeps a registry
//! of its live connections, each a second reference to the connection's socket, and at
//! shutdown calls `shutdown(Both)` on each: every blocked `read` returns 0 and every blocked
//! `write` fails, so each thread returns, and the accept loop joins them all.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::Shutdown as How;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use echobench_common::{
    ACCEPT_PAUSE, AcceptError, Config, Listener, Shutdown, Stream, Summary, cli, echo, poll_timeout,
};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// The stack size when `--stack-size` is not given: std's own default (see the essay).
pub const DEFAULT_STACK_SIZE: usize = 2 * 1024 * 1024;

/// The smallest stack accepted. glibc's `PTHREAD_STACK_MIN` is 16 KiB on x86-64, and the
/// echo loop needs only a few KiB of it; anything smaller is refused rather than rounded up.
pub const MIN_STACK_SIZE: usize = 16 * 1024;

/// The largest stack accepted, so that a typo cannot reserve terabytes per connection.
pub const MAX_STACK_SIZE: usize = 1024 * 1024 * 1024;

/// Serves connections, one thread each with a `stack_size`-byte stack, until `shutdown`
/// fires; then wakes and joins every connection's thread and returns what was served.
pub fn run(
    listener: Listener,
    shutdown: Shutdown,
    config: &Config,
    stack_size: usize,
) -> io::Result<Summary> {
    // The same check as the command line's, for callers that did not come through it.
    parse_stack_size(&stack_size.to_string())
        .map_err(|msg| io::Error::new(io::ErrorKind::InvalidInput, msg))?;
    // Non-blocking, so that "accept until there is nothing left" ends with WouldBlock instead
    // of sleeping in accept while shutdown waits to be noticed.
    listener.set_nonblocking(true)?;
    // The threads tell the acceptor that they ended through this socket pair, so that it can
    // poll for "a connection ended" beside the listener (see `Registry::ended`).
    let (ended_rx, ended_tx) = UnixStream::pair()?;
    ended_rx.set_nonblocking(true)?;
    ended_tx.set_nonblocking(true)?;
    let registry = Arc::new(Registry { book: Mutex::default(), ended: ended_tx });
    let mut acceptor = Acceptor {
        listener,
        shutdown,
        config: *config,
        stack_size,
        registry,
        ended: ended_rx,
        handles: HashMap::new(),
        next_id: 0,
        summary: Summary::default(),
        paused_until: None,
        spawn_failures: 0,
    };
    let outcome = acceptor.serve();
    // Stop accepting before stopping the connections: with the listener closed, a client
    // that connects now is refused at once instead of waiting in a backlog nobody will read.
    // Dropping a Unix listener here also removes its socket file.
    let Acceptor { listener, registry, handles, summary, spawn_failures, .. } = acceptor;
    drop(listener);
    registry.stop_all(handles);
    if spawn_failures > 0 {
        eprintln!(
            "{}: {spawn_failures} connections were closed because no thread started",
            cli::program()
        );
    }
    outcome.map(|()| summary)
}

/// Parses `--stack-size`: a number of bytes from [`MIN_STACK_SIZE`] to [`MAX_STACK_SIZE`].
pub fn parse_stack_size(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(bytes) if bytes < MIN_STACK_SIZE => {
            Err(format!("{bytes} bytes is below the minimum stack size, {MIN_STACK_SIZE}"))
        }
        Ok(bytes) if bytes > MAX_STACK_SIZE => {
            Err(format!("{bytes} bytes is above the maximum stack size, {MAX_STACK_SIZE}"))
        }
        Ok(bytes) => Ok(bytes),
        Err(_) => Err(format!("expected a number of bytes, such as {DEFAULT_STACK_SIZE}")),
    }
}

/// The accept loop and everything it owns.
#[derive(Debug)]
struct Acceptor {
    /// The listening socket, non-blocking.
    listener: Listener,
    /// Fires on SIGINT or SIGTERM; polled beside the listener.
    shutdown: Shutdown,
    /// `max_conns` bounds the live connections; `buffer` sizes each thread's echo buffer.
    config: Config,
    /// The user stack each connection's thread gets, in bytes.
    stack_size: usize,
    /// The live connections, shared with their threads.
    registry: Arc<Registry>,
    /// Readable once a thread has ended: the other end of `Registry::ended`.
    ended: UnixStream,
    /// Every thread started and not yet joined, by connection id. Joining is to threads what
    /// `waitpid` is to processes: it makes sure the thread has really gone.
    handles: HashMap<u64, JoinHandle<()>>,
    /// The id the next connection gets; ids are never reused.
    next_id: u64,
    /// Connections handed to a thread (`served`) or closed over `max_conns` (`rejected`).
    summary: Summary,
    /// While set, the listener is left out of `poll`: the process is out of descriptors or
    /// threads, and retrying at once would only spin.
    paused_until: Option<Instant>,
    /// Connections closed unserved because no thread could be started; reported at the end.
    spawn_failures: u64,
}

impl Acceptor {
    /// Waits for shutdown, ended connections and new connections, and handles each.
    fn serve(&mut self) -> io::Result<()> {
        loop {
            // A pause ends when its time is up or (below) when a connection ends.
            let now = Instant::now();
            let timeout = match self.paused_until {
                Some(until) if until > now => poll_timeout(until - now),
                _ => {
                    self.paused_until = None;
                    PollTimeout::NONE
                }
            };
            let watched = if self.paused_until.is_some() { 2 } else { 3 };
            let mut fds = [
                PollFd::new(self.shutdown.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.ended.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.listener.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds[..watched], timeout) {
                Ok(_) => {}
                // The signal handler ran on this thread; its eventfd tells us the rest.
                Err(Errno::EINTR) => continue,
                Err(errno) => return Err(errno.into()),
            }
            let [stop, ended, incoming] = fds.map(|fd| fd.revents().is_some_and(|r| !r.is_empty()));
            if stop {
                return Ok(());
            }
            if ended && self.join_ended() > 0 {
                // A connection that ended gave back its descriptor and its thread: the
                // moment to retry whatever made us pause.
                self.paused_until = None;
            }
            if incoming && watched == 3 {
                self.accept_ready()?;
            }
        }
    }

    /// Accepts every connection waiting in the backlog, starting a thread for each.
    fn accept_ready(&mut self) -> io::Result<()> {
        while self.paused_until.is_none() {
            let stream = match self.listener.accept() {
                Ok(stream) => stream,
                Err(err) => match AcceptError::classify(&err) {
                    AcceptError::WouldBlock => return Ok(()),
                    AcceptError::Retry => continue,
                    // EMFILE and friends: the connection stays queued in the backlog, and we
                    // come back for it after a pause instead of failing again in a loop.
                    AcceptError::OutOfResources => {
                        self.pause();
                        return Ok(());
                    }
                    AcceptError::Fatal => return Err(err),
                },
            };
            self.start(stream);
        }
        Ok(())
    }

    /// Registers `stream` and starts its thread, or closes it if it cannot be served.
    fn start(&mut self, stream: Stream) {
        let id = self.next_id;
        self.next_id += 1;
        let stream = Arc::new(stream);
        {
            let mut book = self.registry.book();
            if book.live.len() >= self.config.max_conns {
                // Over the limit the connection is closed at once (dropping the only
                // reference): the client sees EOF right away instead of hanging.
                self.summary.rejected += 1;
                return;
            }
            // Registered before the thread exists, so that shutdown can never miss it.
            book.live.insert(id, Arc::clone(&stream));
        }
        let registry = Arc::clone(&self.registry);
        let buffer = self.config.buffer;
        let spawned = thread::Builder::new()
            // The name shows in `top -H`, `ps -L` and panic messages.
            .name(format!("conn-{id}"))
            .stack_size(self.stack_size)
            .spawn(move || serve_connection(id, stream, buffer, registry));
        match spawned {
            Ok(handle) => {
                self.handles.insert(id, handle);
                self.summary.served += 1;
            }
            // EAGAIN (thread or memory limits): the server survives, the connection does
            // not. The closure, and with it the stream, was dropped; dropping the registry's
            // reference as well closes the socket. Say so once, not once per connection.
            Err(err) => {
                self.registry.book().live.remove(&id);
                if self.spawn_failures == 0 {
                    let (program, next) = (cli::program(), "closing new connections for now");
                    eprintln!("{program}: cannot start a thread ({err}): {next}");
                }
                self.spawn_failures += 1;
                self.pause();
            }
        }
    }

    /// Joins the threads that reported their end, and returns how many there were.
    fn join_ended(&mut self) -> usize {
        // Empty the socket first, or poll would report it readable forever. The bytes mean
        // nothing: the list of ended connections is in the registry.
        let mut scratch = [0u8; 256];
        while matches!((&self.ended).read(&mut scratch), Ok(n) if n > 0) {}
        let ended = std::mem::take(&mut self.registry.book().ended);
        for id in &ended {
            // The thread has done all its work; join only waits for it to finish returning.
            if let Some(handle) = self.handles.remove(id) {
                let _ = handle.join();
            }
        }
        ended.len()
    }

    /// Leaves the listener out of `poll` for a while; an ended connection ends the pause.
    fn pause(&mut self) {
        // The length, and why a pause at all: see ACCEPT_PAUSE in echobench_common.
        self.paused_until = Some(Instant::now() + ACCEPT_PAUSE);
    }
}

/// The body of a connection's thread: echo until the client is done, then leave the registry.
fn serve_connection(id: u64, stream: Arc<Stream>, buffer: usize, registry: Arc<Registry>) {
    // Leaving the registry is done by a guard, so it happens even if this thread panics:
    // otherwise the socket would stay open forever and `max_conns` would count a ghost.
    let _leave = Leave { id, registry };
    let mut buf = vec![0u8; buffer];
    // A failed connection (typically reset by the client) is the client's business. The
    // thread has only a shared reference to the socket (the registry holds the other), and
    // reads and writes through it, as std allows for `&TcpStream`: the kernel does not mind
    // concurrent calls on one socket.
    let _ = echo::echo(&mut &*stream, &mut buf);
}

/// The connections that are live, shared between the acceptor and the connection threads.
#[derive(Debug)]
struct Registry {
    /// The bookkeeping, behind one lock: taken once per connection start and end, which is
    /// nothing next to starting a thread.
    book: Mutex<Book>,
    /// A connection's thread writes one byte here as it ends, to wake the acceptor's `poll`.
    /// A socket pair rather than a channel, because `poll` can wait on it beside the
    /// listener; a byte that does not fit (the pair's buffer is full) is not needed, since
    /// the acceptor is then sure to wake anyway.
    ended: UnixStream,
}

/// What the registry's lock protects.
#[derive(Debug, Default)]
struct Book {
    /// Each live connection's socket, by id: the second reference shutdown uses to wake a
    /// thread blocked on it. A reference, not a `dup` (`try_clone`), so that a connection
    /// costs one descriptor, not two: with the default limits (`--max-conns` 10,000,
    /// `ulimit -n` 20,000) the duplicates alone would use up the descriptors.
    live: HashMap<u64, Arc<Stream>>,
    /// Connections whose thread has ended but not yet been joined.
    ended: Vec<u64>,
}

impl Registry {
    /// Wakes every connection's thread and joins them all, given every unjoined handle.
    fn stop_all(&self, handles: HashMap<u64, JoinHandle<()>>) {
        for stream in self.book().live.values() {
            // Both directions: a thread blocked in `read` sees end-of-file, one blocked in
            // `write_all` (its client stopped reading) gets an error. Either way it returns.
            let _ = stream.shutdown(How::Both);
        }
        // No new thread can appear (the acceptor is done), so this leaves none behind.
        for (_, handle) in handles {
            let _ = handle.join();
        }
    }

    /// Locks the book. A thread that panicked while holding the lock cannot have left it
    /// half-updated (every update is a single insert, remove or push), so poisoning is ignored.
    fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Removes a connection from the registry when its thread ends, and tells the acceptor.
#[derive(Debug)]
struct Leave {
    id: u64,
    registry: Arc<Registry>,
}

impl Drop for Leave {
    fn drop(&mut self) {
        let mut book = self.registry.book();
        // Dropping the registry's reference; the thread's own goes when the thread returns,
        // and the last of the two closes the socket, which sends the client its FIN.
        book.live.remove(&self.id);
        book.ended.push(self.id);
        drop(book);
        let _ = (&self.registry.ended).write(&[1]);
    }
}
