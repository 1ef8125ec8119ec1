//! A small echo server for loadgen's tests, running on threads inside the test process, with
//! faults that can be switched on: corrupting or replaying messages, stalling, dying.
//!
//! It is deliberately simple (a thread per connection, blocking sockets): it only has to be
//! correct, and its faults must be exact. It knows the message size, so a fault hits whole
//! messages: "every Nth message" means exactly that.

#![allow(dead_code)]

pub mod udp;

use std::collections::{BTreeSet, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Shutdown, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use loadgen::{Cancel, Config, Report};

/// What the server does wrong, if anything.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    None,
    /// Flip one bit in the middle of every Nth message of each connection.
    Corrupt {
        every: u64,
    },
    /// Send the previous message again instead of every Nth one (an out-of-order echo).
    Replay {
        every: u64,
    },
    /// Echo nothing on any connection from `after` to `after + length` (times from start).
    Stall {
        after: Duration,
        length: Duration,
    },
    /// Close every connection and the listener `after` the start.
    DieAfter(Duration),
    /// Echo every message `by` after it was read, without slowing the stream down: a server
    /// with a long but pipelined delay.
    Delay {
        by: Duration,
    },
    /// Close every connection as soon as it is accepted.
    CloseAtOnce,
    /// One connection goes silent for good: the first to read a message `after` the run's
    /// first byte arrived (on any connection; loadgen's run starts then, give or take its
    /// first write). It never echoes that message, nor reads again, and stays open; every
    /// other connection, and every later one (loadgen's reconnection), is served.
    Silence {
        after: Duration,
    },
    /// Cross-wire connections in pairs (the first two that send, then the next two...): each
    /// gets the other's bytes as its echo. In a closed loop the two stay in step, so each
    /// receives the other connection's message of the same sequence number.
    Cross,
}

/// Where a connection's output goes: its own socket, or (Fault::Cross) its partner's.
type Writer = Box<dyn Write + Send>;

#[derive(Debug)]
struct State {
    fault: Fault,
    size: usize,
    started: Instant,
    stop: AtomicBool,
    accepted: AtomicU64,
    /// Source addresses of the TCP connections accepted.
    peers: Mutex<BTreeSet<IpAddr>>,
    /// Fault::Cross: the pair a connection that sent first is waiting in for a partner.
    lonely: Mutex<Option<Arc<Mutex<Pair>>>>,
    /// When the first byte arrived on any connection.
    first_byte: OnceLock<Instant>,
    /// Fault::Silence: a connection has gone silent.
    silenced: AtomicBool,
}

/// Fault::Cross: two connections' whole messages, exchanged one for one.
#[derive(Default)]
struct Pair {
    queued: [VecDeque<Vec<u8>>; 2],
    out: [Option<Writer>; 2],
}

impl std::fmt::Debug for Pair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pair").field("queued", &self.queued).finish_non_exhaustive()
    }
}

impl State {
    /// Whether the server should be gone: stopped by the test, or dead by its fault.
    fn gone(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
            || matches!(self.fault, Fault::DieAfter(after) if self.started.elapsed() >= after)
    }
}

/// A running test server; dropping it stops it.
#[derive(Debug)]
pub struct EchoServer {
    pub addr: String,
    state: Arc<State>,
    acceptor: Option<JoinHandle<()>>,
    unix_path: Option<PathBuf>,
}

trait Conn: Read + Write + Send + 'static {
    fn set_timeout(&self, t: Duration);
    fn close(&self);
    /// A second handle on the socket, for another thread to write into.
    fn writer(&self) -> Option<Writer>;
}

impl Conn for TcpStream {
    fn set_timeout(&self, t: Duration) {
        let _ = self.set_read_timeout(Some(t));
        let _ = self.set_nodelay(true);
    }
    fn close(&self) {
        let _ = self.shutdown(Shutdown::Both);
    }
    fn writer(&self) -> Option<Writer> {
        Some(Box::new(self.try_clone().ok()?))
    }
}

impl Conn for UnixStream {
    fn set_timeout(&self, t: Duration) {
        let _ = self.set_read_timeout(Some(t));
    }
    fn close(&self) {
        let _ = self.shutdown(Shutdown::Both);
    }
    fn writer(&self) -> Option<Writer> {
        Some(Box::new(self.try_clone().ok()?))
    }
}

impl EchoServer {
    /// A TCP server on 127.0.0.1 (a free port) for messages of `size` bytes.
    pub fn start(fault: Fault, size: usize) -> EchoServer {
        EchoServer::start_at("127.0.0.1:0", fault, size).expect("bind a test port")
    }

    /// A TCP server bound to `bind` (e.g. `[::1]:0`), or `None` if that cannot be bound.
    pub fn start_at(bind: &str, fault: Fault, size: usize) -> Option<EchoServer> {
        let listener = TcpListener::bind(bind).ok()?;
        let addr = listener.local_addr().unwrap().to_string();
        listener.set_nonblocking(true).unwrap();
        let state = new_state(fault, size);
        let st = state.clone();
        let acceptor = thread::spawn(move || {
            accept_loop(&st, || {
                let (stream, peer) = listener.accept()?;
                st.peers.lock().unwrap().insert(peer.ip());
                Ok(stream)
            })
        });
        Some(EchoServer { addr, state, acceptor: Some(acceptor), unix_path: None })
    }

    /// The same on a Unix socket; `addr` is then `unix:PATH`.
    pub fn start_unix(fault: Fault, size: usize, name: &str) -> EchoServer {
        let path =
            std::env::temp_dir().join(format!("loadgen-test-{}-{name}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).expect("bind a test socket");
        listener.set_nonblocking(true).unwrap();
        let state = new_state(fault, size);
        let st = state.clone();
        let acceptor =
            thread::spawn(move || accept_loop(&st, || listener.accept().map(|(s, _)| s)));
        EchoServer {
            addr: format!("unix:{}", path.display()),
            state,
            acceptor: Some(acceptor),
            unix_path: Some(path),
        }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.state.accepted.load(Ordering::Relaxed)
    }

    /// The distinct source addresses TCP connections came from.
    pub fn peers(&self) -> BTreeSet<IpAddr> {
        self.state.peers.lock().unwrap().clone()
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::Relaxed);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        if let Some(path) = &self.unix_path {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn new_state(fault: Fault, size: usize) -> Arc<State> {
    Arc::new(State {
        fault,
        size,
        started: Instant::now(),
        stop: AtomicBool::new(false),
        accepted: AtomicU64::new(0),
        peers: Mutex::new(BTreeSet::new()),
        lonely: Mutex::new(None),
        first_byte: OnceLock::new(),
        silenced: AtomicBool::new(false),
    })
}

/// Accepts until the server is gone, a thread per connection; then waits for them all.
fn accept_loop<S: Conn>(state: &Arc<State>, mut accept: impl FnMut() -> std::io::Result<S>) {
    let mut workers = Vec::new();
    while !state.gone() {
        match accept() {
            Ok(stream) => {
                state.accepted.fetch_add(1, Ordering::Relaxed);
                let st = state.clone();
                workers.push(thread::spawn(move || serve(&st, stream)));
                workers.retain(|w: &JoinHandle<()>| !w.is_finished());
            }
            Err(err) if err.kind() == ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(2))
            }
            Err(_) => thread::sleep(Duration::from_millis(2)),
        }
    }
    for w in workers {
        let _ = w.join();
    }
}

/// Echoes whole messages, applying the fault.
fn serve<S: Conn>(state: &State, mut stream: S) {
    stream.set_timeout(Duration::from_millis(20));
    match state.fault {
        Fault::Cross => return serve_crossed(state, stream),
        Fault::CloseAtOnce => return stream.close(),
        _ => {}
    }
    let size = state.size;
    let mut pending: Vec<u8> = Vec::new();
    let mut previous: Vec<u8> = Vec::new();
    let mut out: Vec<u8> = Vec::new();
    let mut index = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    // Fault::Delay: echoes waiting for their time, oldest first.
    let mut delayed: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    if let Fault::Delay { .. } = state.fault {
        stream.set_timeout(Duration::from_millis(2));
    }
    loop {
        if state.gone() {
            stream.close();
            return;
        }
        while delayed.front().is_some_and(|(due, _)| *due <= Instant::now()) {
            let (_, bytes) = delayed.pop_front().unwrap();
            if stream.write_all(&bytes).is_err() {
                return;
            }
        }
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                pending.extend_from_slice(&buf[..n]);
                let first = *state.first_byte.get_or_init(Instant::now);
                if let Fault::Silence { after } = state.fault
                    && first.elapsed() >= after
                    && !state.silenced.swap(true, Ordering::Relaxed)
                {
                    // Open and silent until the test ends: loadgen must notice by itself.
                    while !state.gone() {
                        thread::sleep(Duration::from_millis(5));
                    }
                    return;
                }
            }
            Err(err)
                if matches!(
                    err.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(_) => return,
        }
        out.clear();
        let whole = pending.len() / size * size;
        for message in pending[..whole].chunks(size) {
            index += 1;
            match state.fault {
                Fault::Corrupt { every } if index.is_multiple_of(every) => {
                    let start = out.len();
                    out.extend_from_slice(message);
                    out[start + size / 2] ^= 0x10;
                }
                Fault::Replay { every } if index.is_multiple_of(every) && !previous.is_empty() => {
                    out.extend_from_slice(&previous)
                }
                _ => out.extend_from_slice(message),
            }
            previous.clear();
            previous.extend_from_slice(message);
        }
        pending.drain(..whole);
        if let Fault::Stall { after, length } = state.fault {
            // Asleep, neither reading nor writing, until the stall ends or the test ends.
            while !state.gone() && (after..after + length).contains(&state.started.elapsed()) {
                thread::sleep(Duration::from_millis(5));
            }
        }
        if let Fault::Delay { by } = state.fault {
            delayed.push_back((Instant::now() + by, std::mem::take(&mut out)));
            continue;
        }
        if stream.write_all(&out).is_err() {
            return;
        }
    }
}

/// Fault::Cross: once this connection has sent something, pairs it with the next one that
/// does, and from then on answers its k-th message with the partner's k-th, and the partner's
/// with its own, one for one: each side has exactly that message in flight when the other's
/// arrives, so the two stay in step. A connection that never sends (loadgen's probe) is never
/// paired.
fn serve_crossed<S: Conn>(state: &State, mut stream: S) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut partial: Vec<u8> = Vec::new();
    let mut pair: Option<(Arc<Mutex<Pair>>, usize)> = None;
    loop {
        if state.gone() {
            stream.close();
            return;
        }
        let n = match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(err)
                if matches!(
                    err.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(_) => return,
        };
        let (shared, side) = pair.get_or_insert_with(|| {
            let mut lonely = state.lonely.lock().unwrap();
            match lonely.take() {
                Some(waiting) => (waiting, 1),
                None => {
                    let fresh = Arc::new(Mutex::new(Pair::default()));
                    *lonely = Some(fresh.clone());
                    (fresh, 0)
                }
            }
        });
        let mut p = shared.lock().unwrap();
        if p.out[*side].is_none() {
            let Some(mine) = stream.writer() else { return };
            p.out[*side] = Some(mine);
        }
        partial.extend_from_slice(&buf[..n]);
        let whole = partial.len() / state.size * state.size;
        for message in partial[..whole].chunks(state.size) {
            p.queued[*side].push_back(message.to_vec());
        }
        partial.drain(..whole);
        while !p.queued[0].is_empty() && !p.queued[1].is_empty() {
            let (a, b) = (p.queued[0].pop_front().unwrap(), p.queued[1].pop_front().unwrap());
            // Side 0's message answers side 1, and side 1's answers side 0.
            for (to, message) in [(1, a), (0, b)] {
                if let Some(out) = p.out[to].as_mut()
                    && out.write_all(&message).is_err()
                {
                    return;
                }
            }
        }
    }
}

/// A short run against `addr`: 4 connections, 100 ms warm-up, 400 ms measured.
pub fn quick(addr: &str) -> Config {
    Config {
        addr: addr.to_owned(),
        connections: 4,
        duration: Duration::from_millis(400),
        warmup: Duration::from_millis(100),
        timeout: Duration::from_secs(1),
        ..Config::default()
    }
}

/// Runs `config` and checks that every message sent is accounted for.
pub fn run(config: &Config) -> Report {
    let report = loadgen::run(config, &Cancel::new()).expect("the run fails");
    assert!(
        report.is_consistent(),
        "counts do not add up: {:?} {:?}",
        report.messages,
        report.errors
    );
    report
}
