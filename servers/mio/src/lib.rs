//! The mio model: one thread, one `epoll`, every connection a small state machine.
//!
//! # How it schedules connections
//!
//! A single thread owns a [`mio::Poll`] (on Linux, an epoll instance in edge-triggered mode)
//! and registers three kinds of source with it, each under a [`Token`]: the listening socket,
//! the shutdown handle, and every accepted connection, whose token is its key in a [`Slab`].
//! The thread sleeps in `epoll_wait` until the kernel reports a batch of ready tokens, then
//! handles each in turn:
//!
//! - the listener: accept until `WouldBlock`, register each new socket for READABLE;
//! - a connection: [`Connection::on_event`] reads and writes until the kernel says
//!   `WouldBlock` or its budget is spent (see *Fairness*), and reports whether it still wants
//!   to read, to write, or neither (done); the loop changes the registered interest only
//!   when that answer changes;
//! - the shutdown handle: close everything and return.
//!
//! After the batch, the loop serves the connections in its ready queue (those that spent
//! their budget in the previous turn), then accepts if the listener was ready.
//!
//! Nothing ever blocks except `epoll_wait` itself, so a client that connects and says nothing
//! costs a slab slot and an epoll entry, and delays nobody: its token never comes up.
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
//! 40 ms and up to 1.4 s per round trip. So a turn is bounded: `on_event` stops after
//! [`READS_PER_TURN`](echobench_common::conn::READS_PER_TURN) reads and answers
//! [`Next::more`](echobench_common::Next::more). No event will come for the bytes still
//! waiting, so the loop keeps such connections in a ready queue of its own and serves them
//! again after the next batch of events, polling with a zero timeout meanwhile; every ready
//! connection gets one turn before any gets a second. With the budget the same round trips
//! took a median of 0.3 to 1 ms, and 1.4 to 28 ms at worst on this busy shared machine (the
//! thread model, which leaves this to the kernel's scheduler: a median of 0.03 to 0.08 ms,
//! up to 16 ms), and a lone streaming client kept its throughput (650 to 900 MiB/s with or
//! without the budget, release build).
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
//! cores sit idle (the hybrid model runs one such loop per core). Next, latency: each busy
//! connection on the loop delays the others by its turn (see *Fairness*), and any slow work
//! added to the loop would stall every connection at once. Finally descriptors: at
//! `ulimit -n` accept fails with EMFILE, and the loop must pause accepting rather than spin
//! (see `EventLoop::accept_all`).
//!
//! Run it with `cargo run --release -p echobench-mio -- --addr 127.0.0.1:7000`.

use std::collections::VecDeque;
use std::io;
use std::time::{Duration, Instant};

use echobench_common::conn::report;
use echobench_common::{
    ACCEPT_PAUSE, AcceptError, Config, Connection, Listener, MioListener, MioStream, Shutdown,
    Summary, interrupted,
};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

/// Token of the shutdown handle. Connections use their slab keys, which count up from 0, so
/// the two fixed tokens sit at the top of the range where no key will ever reach.
const SHUTDOWN: Token = Token(usize::MAX);
/// Token of the listening socket.
const LISTENER: Token = Token(usize::MAX - 1);
/// How many ready events one `epoll_wait` may return.
const EVENTS_PER_POLL: usize = 1024;

/// Serves `listener` on the calling thread until `shutdown` fires, then closes every
/// connection and returns what it served.
pub fn run(listener: Listener, mut shutdown: Shutdown, config: &Config) -> io::Result<Summary> {
    let poll = Poll::new()?;
    let mut listener = listener.into_mio()?;
    poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
    poll.registry().register(&mut shutdown, SHUTDOWN, Interest::READABLE)?;

    let mut event_loop = EventLoop {
        poll,
        listener,
        connections: Slab::new(),
        scratch: vec![0; config.buffer],
        ready: VecDeque::new(),
        config: *config,
        backlog_waiting: false,
        paused_until: None,
        summary: Summary::default(),
    };
    let mut events = Events::with_capacity(EVENTS_PER_POLL);

    loop {
        // Sleep until something is ready; while accepting is paused, also until it is time to
        // try again. The clock is read only while paused, never on the hot path. While
        // connections wait in the ready queue there is work to do now: only look.
        let timeout = if event_loop.ready.is_empty() {
            event_loop.paused_until.map(|t| t.saturating_duration_since(Instant::now()))
        } else {
            Some(Duration::ZERO)
        };
        if let Err(err) = event_loop.poll.poll(&mut events, timeout) {
            if interrupted(&err) {
                continue;
            }
            return Err(err);
        }

        // The connections that used up their budget in the last turn; they are served after
        // this batch, so that every connection gets one turn before any gets a second.
        let waiting = event_loop.ready.len();
        for event in events.iter() {
            match event.token() {
                SHUTDOWN => {
                    // Dropping a connection closes its socket; clients see EOF (or a reset
                    // if they had bytes in flight). The listener closes when we return, and a
                    // Unix listener removes its socket file as it does.
                    event_loop.connections.clear();
                    return Ok(event_loop.summary);
                }
                // Accept after handling this batch, so that connections freed in it make
                // room (and descriptors) for the newcomers.
                LISTENER => event_loop.backlog_waiting = true,
                token => event_loop.on_connection_event(token),
            }
        }
        event_loop.serve_ready(waiting);

        let pause_over = event_loop.paused_until.is_none_or(|t| Instant::now() >= t);
        if event_loop.backlog_waiting && pause_over {
            event_loop.accept_all()?;
        }
    }
}

/// Everything the loop owns besides the `Poll` itself.
#[derive(Debug)]
struct EventLoop {
    /// The epoll instance: connections are registered with its registry, re-registered as
    /// their needs change, and removed by closing their sockets.
    poll: Poll,
    listener: MioListener,
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
    config: Config,
    /// The listener reported connections that we have not taken yet. It stays true when we
    /// stopped at EMFILE, because the kernel will not tell us about them again.
    backlog_waiting: bool,
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

impl EventLoop {
    /// Accepts every connection waiting in the backlog.
    ///
    /// Over `--max-conns`, a connection is accepted and closed at once: leaving it in the
    /// backlog would leave the client hanging with no answer, and leave the listener readable
    /// for ever. Out of descriptors (EMFILE, ENFILE), accepting stops for [`ACCEPT_PAUSE`]
    /// or until a connection closes; the kernel keeps the waiting connections queued.
    fn accept_all(&mut self) -> io::Result<()> {
        loop {
            let stream = match self.listener.accept() {
                Ok(stream) => stream,
                Err(err) => match AcceptError::classify(&err) {
                    AcceptError::WouldBlock => {
                        self.backlog_waiting = false;
                        self.paused_until = None;
                        return Ok(());
                    }
                    AcceptError::Retry => continue,
                    AcceptError::OutOfResources => {
                        // We must come back on our own: see ACCEPT_PAUSE.
                        self.paused_until = Some(Instant::now() + ACCEPT_PAUSE);
                        return Ok(());
                    }
                    AcceptError::Fatal => return Err(err),
                },
            };
            if self.connections.len() >= self.config.max_conns {
                self.summary.rejected += 1;
                continue; // `stream` is dropped here, which closes it.
            }
            self.add(stream);
        }
    }

    /// Registers a new connection for READABLE: the client speaks first, and a fresh socket
    /// has room to write. If data has already arrived, epoll reports it straight away.
    fn add(&mut self, stream: MioStream) {
        let entry = self.connections.vacant_entry();
        let token = Token(entry.key());
        let mut connection = Connection::new(stream, self.config.buffer);
        match self.poll.registry().register(&mut connection, token, Interest::READABLE) {
            Ok(()) => {
                entry.insert(Slot { connection, interest: Interest::READABLE, queued: false });
                self.summary.served += 1;
            }
            // The kernel could not track one more socket (out of memory, or the epoll watch
            // limit): close this connection and keep serving the rest.
            Err(err) => report(&err),
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
        let wanted = match slot.connection.on_event(&mut self.scratch) {
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
        drop(self.connections.remove(token.0));
        // One descriptor just came free: if accepting was paused for lack of them, try again
        // after this batch instead of waiting out the pause.
        self.paused_until = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use echobench_common::Endpoint;
    use echobench_conformance::closed_by_server;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    #[test]
    fn run_serves_until_shutdown_then_closes_everything() {
        let listener = Listener::bind(&Endpoint::parse("127.0.0.1:0").unwrap(), 8).unwrap();
        let Endpoint::Tcp(addr) = listener.local_endpoint().unwrap() else { unreachable!() };
        let shutdown = Shutdown::new().unwrap();
        let config = Config { max_conns: 2, buffer: 1024 };
        let server = {
            let shutdown = shutdown.clone();
            std::thread::spawn(move || run(listener, shutdown, &config))
        };
        let mut clients: Vec<TcpStream> =
            (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
        for client in &mut clients {
            client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            // Larger than --buffer, so that the echo goes through more than one read.
            let message: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
            client.write_all(&message).unwrap();
            let mut back = vec![0u8; message.len()];
            client.read_exact(&mut back).unwrap();
            assert!(back == message);
        }
        // A third is over --max-conns: accepted and closed at once.
        let mut extra = TcpStream::connect(addr).unwrap();
        extra.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        assert!(closed_by_server(&mut extra));

        shutdown.trigger();
        let summary = server.join().unwrap().unwrap();
        assert_eq!(summary, Summary { served: 2, rejected: 1 });
        for client in &mut clients {
            assert!(closed_by_server(client));
        }
    }

    #[test]
    fn a_connection_costs_one_small_slot() {
        // The essay promises 64 bytes per connection in user space; keep it honest. Debug
        // builds of mio add 8 bytes per socket (to check it is registered with one Poll only).
        let promised = if cfg!(debug_assertions) { 72 } else { 64 };
        let size = std::mem::size_of::<Slot>();
        assert!(size <= promised, "a slot takes {size} bytes");
    }
}
