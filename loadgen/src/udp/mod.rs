//! UDP mode: the same closed and open loops over datagrams (`--addr udp:HOST:PORT` or
//! `udp:unix:PATH`).
//!
//! What changes without a connection:
//!
//! - **A "connection" is a socket.** Each of `--connections` is a socket of its own, with its
//!   own source port (or, over Unix, its own path in a temporary directory that loadgen removes
//!   afterwards), `connect()`ed to the server so that the kernel drops stray datagrams from
//!   anyone else. Nothing is set up or torn down per message, so there is no churn and no idle
//!   ballast in this mode.
//! - **A message is a datagram.** One `send` carries one message of `--size` bytes and one
//!   `recv` returns one echo, never merged or split, so there is no stream to resynchronise:
//!   each echo is judged on its own. Its first eight bytes name its flow (the socket) and its
//!   sequence number (`payload.rs`, as in TCP mode), which says which datagram it answers.
//! - **Loss is normal, so it is counted rather than treated as a broken connection.** A
//!   datagram with no echo within `--timeout` is *lost*; an echo that comes after that is
//!   *late* (it stays lost); a second echo of one already answered is a *duplicate*; an intact
//!   echo that arrives after a later datagram's is *reordered* (it still counts as received);
//!   an echo that names a datagram but differs from it is *corrupt*. So
//!   `sent = received + lost + corrupt` still holds, as `errors.lost` and `errors.mismatch`.
//! - **A closed loop waits for echoes that may never come.** A lost datagram's slot in the
//!   pipeline is refilled only when it is declared lost, a whole `--timeout` later, so over a
//!   lossy path a closed loop with a long timeout mostly waits. Timeouts are checked every
//!   eighth of the timeout (between 1 and 10 ms). So the binary's `--timeout` defaults to
//!   [`DEFAULT_TIMEOUT`] (200 ms) with a `udp:` address rather than TCP's 5 s (a library
//!   caller sets `Config::timeout` itself): on loopback an echo that is not back in 200 ms
//!   has been dropped, not delayed (a full receive buffer of small datagrams drains in a few
//!   milliseconds), and an echo that comes later still is counted as *late*. Against a server
//!   that drops, a closed loop wants shorter still (a few milliseconds); the open loop loses
//!   nothing but the lost datagram.
//!
//! The load thread is `worker/` (its event loop and the closed loop; `worker/open.rs` the open
//! loop's sending), `batch.rs` receives and sends in batches, `flow.rs` keeps one socket's
//! books, and `kernel.rs` reads the kernel's own UDP counters before and after the run.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use socket2::{Domain, SockAddr, Socket, Type};

use crate::config::Config;
use crate::payload;

mod batch;
mod flow;
pub(crate) mod kernel;
mod worker;

pub(crate) use worker::thread_main;

/// Where a datagram echo server listens: `udp:HOST:PORT`, `udp:[V6]:PORT` or `udp:unix:PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    Inet(SocketAddr),
    Unix(PathBuf),
}

/// `--timeout` in UDP mode when the flag is not given (the binary; see the module's text).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(200);

/// The largest datagram each family carries: 65,535 bytes less the UDP header (8) and, over
/// IPv4, the IP header (20); IPv6 does not count its header in the payload length. Unix
/// datagrams are bounded by the socket's send buffer instead; loadgen holds them to the IPv4
/// figure, which every default buffer takes.
const MAX_V4: usize = 65_507;
const MAX_V6: usize = 65_527;
const MAX_UNIX: usize = 65_507;
/// The smallest message UDP mode sends: the first eight bytes name the flow and sequence, and
/// a datagram is judged on its own, so it must carry them whole.
const MIN_SIZE: usize = 8;
/// Receive buffer asked for on every socket (the kernel caps it at `net.core.rmem_max`): room
/// for a burst of echoes while the load thread is busy, so loadgen does not drop its own.
const RCVBUF: usize = 1 << 20;
/// The probe resends this often until an echo comes or `--timeout` (at least
/// [`PROBE_LEAST`]) passes: UDP wants short timeouts, and a busy machine may take longer than
/// one of them to answer a first datagram.
const PROBE_RESEND: Duration = Duration::from_millis(200);
const PROBE_LEAST: Duration = Duration::from_secs(1);
/// The probe's flow number, one no load socket has (there are at most 2^20).
const PROBE_FLOW: u32 = u32::MAX >> 8;

impl Peer {
    /// Parses what follows `udp:`.
    pub fn parse(text: &str) -> Result<Peer> {
        if let Some(path) = text.strip_prefix("unix:") {
            ensure!(!path.is_empty(), "udp:unix: needs a path, as in udp:unix:/tmp/echo.sock");
            return Ok(Peer::Unix(PathBuf::from(path)));
        }
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(Peer::Inet(addr));
        }
        if !text.contains(':') {
            bail!(
                "expected udp:HOST:PORT such as udp:127.0.0.1:7000, udp:[::1]:7000 or udp:unix:PATH"
            );
        }
        let mut addrs = text.to_socket_addrs().context("cannot resolve the host")?;
        addrs.next().map(Peer::Inet).context("the host has no address")
    }

    /// The largest `--size` this peer's family carries in one datagram.
    pub fn max_size(&self) -> usize {
        match self {
            Peer::Inet(SocketAddr::V4(_)) => MAX_V4,
            Peer::Inet(SocketAddr::V6(_)) => MAX_V6,
            Peer::Unix(_) => MAX_UNIX,
        }
    }

    /// Which of /proc/net's counter families covers this peer's datagrams, if any.
    pub(crate) fn kernel_family(&self) -> Option<kernel::Family> {
        match self {
            Peer::Inet(SocketAddr::V4(_)) => Some(kernel::Family::V4),
            Peer::Inet(SocketAddr::V6(_)) => Some(kernel::Family::V6),
            Peer::Unix(_) => None,
        }
    }

    /// A socket `connect()`ed to the peer, blocking; a Unix one bound first to a path of its
    /// own in `dir`, named `name`, since a server can only answer a Unix datagram sent from a
    /// bound address.
    fn open(&self, dir: Option<&OwnDir>, name: &str) -> io::Result<Socket> {
        match self {
            Peer::Inet(addr) => {
                let socket = Socket::new(Domain::for_address(*addr), Type::DGRAM.cloexec(), None)?;
                // Best effort: a smaller buffer still works, and the kernel says nothing.
                let _ = socket.set_recv_buffer_size(RCVBUF);
                socket.connect(&SockAddr::from(*addr))?;
                Ok(socket)
            }
            Peer::Unix(path) => {
                let socket = Socket::new(Domain::UNIX, Type::DGRAM.cloexec(), None)?;
                let dir = dir.ok_or_else(|| io::Error::other("no directory for the socket"))?;
                socket.bind(&SockAddr::unix(dir.path.join(name))?)?;
                socket.connect(&SockAddr::unix(path)?)?;
                Ok(socket)
            }
        }
    }

    /// Whether sockets to this peer need an [`OwnDir`] for their own addresses.
    fn needs_dir(&self) -> bool {
        matches!(self, Peer::Unix(_))
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Inet(addr) => write!(f, "udp:{addr}"),
            Peer::Unix(path) => write!(f, "udp:unix:{}", path.display()),
        }
    }
}

/// The combinations UDP mode refuses, each with one line that says why.
pub(crate) fn check(config: &Config, peer: &Peer) -> Result<()> {
    ensure!(
        !config.churn,
        "--churn is not supported over UDP: a datagram socket has no connection to open and close"
    );
    ensure!(
        config.idle == 0,
        "--idle is not supported over UDP: a silent datagram socket costs the server nothing"
    );
    ensure!(
        config.burst.is_none(),
        "--burst is not supported over UDP: a datagram socket has no connect to time"
    );
    ensure!(
        !config.split_writes,
        "--split-writes is not supported over UDP: one datagram is one message, never split"
    );
    ensure!(
        config.size >= MIN_SIZE,
        "--size must be at least {MIN_SIZE} bytes over UDP: each datagram carries its flow and \
         sequence in its first 8 bytes"
    );
    ensure!(
        config.size <= peer.max_size(),
        "--size must be at most {} bytes over {}: that is the largest datagram it carries",
        peer.max_size(),
        match peer {
            Peer::Inet(SocketAddr::V4(_)) => "UDP on IPv4",
            Peer::Inet(SocketAddr::V6(_)) => "UDP on IPv6",
            Peer::Unix(_) => "Unix datagram sockets",
        }
    );
    Ok(())
}

/// Checks that something echoes at `peer` before the run: sends a datagram every 200 ms until
/// one comes back or `timeout` (at least a second) passes. Over loopback, a port nobody listens on answers with
/// ICMP port unreachable, which the kernel reports as "connection refused": that fails at once.
pub(crate) fn probe(peer: &Peer, size: usize, timeout: Duration) -> Result<()> {
    let dir = if peer.needs_dir() { Some(OwnDir::new()?) } else { None };
    let socket = peer.open(dir.as_ref(), "probe").context("cannot open a socket")?;
    let timeout = timeout.max(PROBE_LEAST);
    socket.set_read_timeout(Some(PROBE_RESEND))?;
    let mut message = vec![0; size];
    payload::fill(PROBE_FLOW, 0, &mut message);
    let mut echo = vec![0; size + 1];
    let deadline = Instant::now().checked_add(timeout).unwrap_or_else(Instant::now);
    let refused = "nothing listens there (the kernel refused the datagram)";
    loop {
        match (&socket).write(&message) {
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::ConnectionRefused => bail!(refused),
            Err(err) => return Err(err).context("cannot send a datagram"),
        }
        match (&socket).read(&mut echo) {
            Ok(_) => return Ok(()),
            Err(err) if err.kind() == io::ErrorKind::ConnectionRefused => bail!(refused),
            Err(err)
                if matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
                    && Instant::now() < deadline => {}
            Err(err)
                if matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) =>
            {
                bail!("no datagram came back within --timeout ({timeout:?})")
            }
            Err(err) => return Err(err).context("cannot receive a datagram"),
        }
    }
}

/// A private temporary directory for Unix datagram sockets' own addresses, removed (with the
/// socket files in it) when dropped.
#[derive(Debug)]
pub(crate) struct OwnDir {
    path: PathBuf,
}

impl OwnDir {
    pub(crate) fn new() -> Result<OwnDir> {
        // Runs in one process (tests, a library caller) each get a directory of their own.
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("loadgen-{}-{n}", std::process::id()));
        // A Unix socket address holds at most 107 bytes of path; the names inside are short.
        ensure!(
            path.as_os_str().len() <= 90,
            "the temporary directory {} is too long a path for Unix sockets (set TMPDIR)",
            path.display()
        );
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(OwnDir { path })
    }
}

impl Drop for OwnDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// What a load thread counts in UDP mode beyond the counts every mode shares (lost datagrams
/// are `Counters::lost`, corrupt ones `Counters::mismatch`). Like those, only echoes of
/// datagrams that belong to the measured window count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Echoes of a datagram already answered.
    pub duplicated: u64,
    /// Intact echoes that arrived after the echo of a later datagram of the same socket.
    pub reordered: u64,
    /// Echoes that arrived after their datagram was declared lost (it stays lost).
    pub late: u64,
    /// Datagrams received that answer nothing this socket sent: too short to name a datagram,
    /// naming another socket or a datagram never sent, or too old to tell.
    pub unexpected: u64,
    /// Sends and receives the kernel refused with "connection refused": an ICMP port
    /// unreachable came back (nothing listened at the moment).
    pub refused: u64,
}

impl Counters {
    pub fn add(&mut self, o: &Counters) {
        self.duplicated += o.duplicated;
        self.reordered += o.reordered;
        self.late += o.late;
        self.unexpected += o.unexpected;
        self.refused += o.refused;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_echo_servers_ready_line_forms_parse() {
        assert_eq!(
            Peer::parse("127.0.0.1:7000").unwrap(),
            Peer::Inet("127.0.0.1:7000".parse().unwrap())
        );
        assert_eq!(Peer::parse("[::1]:9").unwrap().to_string(), "udp:[::1]:9");
        assert_eq!(Peer::parse("unix:/tmp/e.sock").unwrap(), Peer::Unix("/tmp/e.sock".into()));
        assert_eq!(Peer::parse("unix:/tmp/e.sock").unwrap().to_string(), "udp:unix:/tmp/e.sock");
        assert!(Peer::parse("unix:").is_err());
        assert!(Peer::parse("7000").is_err());
    }

    #[test]
    fn each_family_has_its_largest_datagram() {
        assert_eq!(Peer::parse("127.0.0.1:1").unwrap().max_size(), 65_507);
        assert_eq!(Peer::parse("[::1]:1").unwrap().max_size(), 65_527);
    }

    #[test]
    fn the_own_directory_is_removed() {
        let dir = OwnDir::new().unwrap();
        let path = dir.path.clone();
        std::fs::write(path.join("x"), b"").unwrap();
        drop(dir);
        assert!(!path.exists());
    }
}
