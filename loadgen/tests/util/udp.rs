//! A small UDP (or Unix datagram) echo server for loadgen's tests, on a thread inside the test
//! process, with faults that can be switched on: dropping, duplicating, reordering or
//! corrupting every Nth datagram, or stalling.
//!
//! Faults count datagrams per sender (per loadgen socket, as a server sees its clients), so
//! loadgen's probe, a socket of its own, is never hit by "every Nth" before the load is. The
//! server counts what it did to each kind, so a test can compare loadgen's books with the
//! server's exactly.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// What the server does wrong, if anything. `every` counts each sender's datagrams from 1.
#[derive(Debug, Clone, Copy)]
pub enum DgramFault {
    None,
    /// Echo nothing for every Nth datagram.
    Drop {
        every: u64,
    },
    /// Echo every Nth datagram twice.
    Duplicate {
        every: u64,
    },
    /// Hold every Nth datagram back and echo it just after the sender's next one.
    Reorder {
        every: u64,
    },
    /// Flip one bit in the middle of every Nth datagram's echo.
    Corrupt {
        every: u64,
    },
    /// Read nothing from `after` to `after + length` (times from the first datagram received,
    /// loadgen's probe); the kernel queues what arrives meanwhile, up to the receive buffer.
    Stall {
        after: Duration,
        length: Duration,
    },
    /// Close the socket `after` the first datagram: later ones find no one listening.
    DieAfter(Duration),
}

/// What the server did, datagram by datagram.
#[derive(Debug, Default)]
struct Tally {
    received: AtomicU64,
    dropped: AtomicU64,
    duplicated: AtomicU64,
    reordered: AtomicU64,
    corrupted: AtomicU64,
}

enum Socket {
    Inet(UdpSocket),
    Unix(UnixDatagram),
}

/// Who sent a datagram, to answer it and to count its datagrams.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Sender {
    Inet(SocketAddr),
    Unix(PathBuf),
}

impl Socket {
    fn recv_from(&self, buf: &mut [u8]) -> std::io::Result<(usize, Option<Sender>)> {
        match self {
            Socket::Inet(s) => s.recv_from(buf).map(|(n, a)| (n, Some(Sender::Inet(a)))),
            Socket::Unix(s) => s
                .recv_from(buf)
                .map(|(n, a)| (n, a.as_pathname().map(|p| Sender::Unix(p.to_owned())))),
        }
    }

    fn send_to(&self, data: &[u8], to: &Sender) {
        // A reply that cannot go (the sender has gone) is dropped, as a real server would.
        let _ = match (self, to) {
            (Socket::Inet(s), Sender::Inet(a)) => s.send_to(data, a).map(drop),
            (Socket::Unix(s), Sender::Unix(p)) => s.send_to(data, p).map(drop),
            _ => Ok(()),
        };
    }
}

/// A running test server; dropping it stops it (and removes its Unix socket file).
#[derive(Debug)]
pub struct UdpEcho {
    /// The address as loadgen takes it: `udp:127.0.0.1:PORT`, `udp:[::1]:PORT`, `udp:unix:PATH`.
    pub addr: String,
    tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    unix_path: Option<PathBuf>,
}

impl UdpEcho {
    /// A UDP server on 127.0.0.1 (a free port).
    pub fn start(fault: DgramFault) -> UdpEcho {
        UdpEcho::start_at("127.0.0.1:0", fault).expect("bind a test port")
    }

    /// A UDP server bound to `bind` (e.g. `[::1]:0`), or `None` if that cannot be bound.
    pub fn start_at(bind: &str, fault: DgramFault) -> Option<UdpEcho> {
        let socket = UdpSocket::bind(bind).ok()?;
        // Room for every datagram a test sends at once, so the kernel drops none of them and
        // the server's own tally is the whole truth.
        let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(4 << 20);
        let addr = format!("udp:{}", socket.local_addr().ok()?);
        socket.set_read_timeout(Some(Duration::from_millis(10))).ok()?;
        Some(UdpEcho::spawn(Socket::Inet(socket), addr, fault, None))
    }

    /// A Unix datagram server; `addr` is then `udp:unix:PATH`.
    pub fn start_unix(fault: DgramFault, name: &str) -> UdpEcho {
        let path =
            std::env::temp_dir().join(format!("loadgen-test-{}-{name}.dgram", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let socket = UnixDatagram::bind(&path).expect("bind a test socket");
        socket.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
        let addr = format!("udp:unix:{}", path.display());
        UdpEcho::spawn(Socket::Unix(socket), addr, fault, Some(path))
    }

    fn spawn(
        socket: Socket,
        addr: String,
        fault: DgramFault,
        unix_path: Option<PathBuf>,
    ) -> UdpEcho {
        let tally = Arc::new(Tally::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (t, s) = (tally.clone(), stop.clone());
        let thread = thread::spawn(move || serve(&socket, fault, &t, &s));
        UdpEcho { addr, tally, stop, thread: Some(thread), unix_path }
    }

    /// Datagrams received, from every sender (the probe's included).
    pub fn received(&self) -> u64 {
        self.tally.received.load(Ordering::Relaxed)
    }
    pub fn dropped(&self) -> u64 {
        self.tally.dropped.load(Ordering::Relaxed)
    }
    pub fn duplicated(&self) -> u64 {
        self.tally.duplicated.load(Ordering::Relaxed)
    }
    /// Held-back datagrams echoed after their sender's next one.
    pub fn reordered(&self) -> u64 {
        self.tally.reordered.load(Ordering::Relaxed)
    }
    pub fn corrupted(&self) -> u64 {
        self.tally.corrupted.load(Ordering::Relaxed)
    }
}

impl Drop for UdpEcho {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let Some(path) = &self.unix_path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Echoes datagrams one by one, applying the fault, until stopped (or dead by its fault: the
/// socket, which the thread owns, closes when it ends).
fn serve(socket: &Socket, fault: DgramFault, tally: &Tally, stop: &AtomicBool) {
    // Faults in time count from the first datagram (loadgen's probe), so a slow start on a
    // busy machine does not move them out of the run.
    let mut first: Option<Instant> = None;
    let since_first = |first: Option<Instant>| first.map_or(Duration::ZERO, |t| t.elapsed());
    let mut counts: HashMap<Sender, u64> = HashMap::new();
    let mut held: HashMap<Sender, Vec<u8>> = HashMap::new();
    let mut buf = vec![0u8; 65_536];
    while !stop.load(Ordering::Relaxed) {
        if matches!(fault, DgramFault::DieAfter(after) if first.is_some() && since_first(first) >= after)
        {
            return;
        }
        if let DgramFault::Stall { after, length } = fault
            && first.is_some()
        {
            while !stop.load(Ordering::Relaxed)
                && (after..after + length).contains(&since_first(first))
            {
                thread::sleep(Duration::from_millis(2));
            }
        }
        let (n, sender) = match socket.recv_from(&mut buf) {
            Ok((n, Some(sender))) => (n, sender),
            // An unbound Unix sender cannot be answered.
            Ok((_, None)) => continue,
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                continue;
            }
            Err(err) if err.kind() == ErrorKind::Interrupted => continue,
            // A Unix reply to a socket that has gone can leave an error behind; keep serving.
            Err(_) => continue,
        };
        tally.received.fetch_add(1, Ordering::Relaxed);
        first.get_or_insert_with(Instant::now);
        let index = counts.entry(sender.clone()).or_default();
        *index += 1;
        let hit = |every: u64| (*index).is_multiple_of(every);
        let data = &mut buf[..n];
        match fault {
            DgramFault::Drop { every } if hit(every) => {
                tally.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            DgramFault::Duplicate { every } if hit(every) => {
                socket.send_to(data, &sender);
                tally.duplicated.fetch_add(1, Ordering::Relaxed);
            }
            DgramFault::Reorder { every } if hit(every) => {
                held.insert(sender, data.to_vec());
                continue;
            }
            DgramFault::Corrupt { every } if hit(every) => {
                data[n / 2] ^= 0x10;
                tally.corrupted.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
        socket.send_to(data, &sender);
        if let Some(late) = held.remove(&sender) {
            socket.send_to(&late, &sender);
            tally.reordered.fetch_add(1, Ordering::Relaxed);
        }
    }
}
