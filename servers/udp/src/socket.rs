//! Where the server listens, binding its sockets, and the two calls of the simple loop.
//!
//! A datagram server binds a socket and is ready: there is no `listen`, no queue of
//! connections, nothing to accept. What this file adds to a plain bind is the group of
//! SO_REUSEPORT sockets that `--workers` asks for, the receive buffer that `--rcvbuf` sets,
//! and, for Unix sockets, the path on disk that must be cleaned up on exit.

use std::fmt;
use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use echobench_common::Endpoint;
use echobench_common::net::{UnixPathGuard, remove_stale_socket};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// The largest datagram the server echoes, and the size of each of its receive buffers:
/// 64 KiB, a little more than the largest UDP payload (65,507 bytes over IPv4, 65,527 over
/// IPv6). A Unix datagram may be larger (the kernel allows up to the sender's SO_SNDBUF
/// less 32 bytes, 212,960 with this machine's defaults); one that does not fit arrives cut
/// short, and the server counts it and drops it rather than echo it changed.
pub const MAX_DATAGRAM: usize = 64 * 1024;

/// Where the server receives: a UDP socket address or the path of a Unix datagram socket.
///
/// Its `Display` form is what the ready line prints: `udp:127.0.0.1:PORT`, `udp:[::1]:PORT`
/// or `udp:unix:PATH`, and [`DatagramEndpoint::parse`] reads those forms back, as well as
/// the TCP models' forms without the `udp:` (the harness passes `--addr 127.0.0.1:0` to
/// every model).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatagramEndpoint {
    Udp(SocketAddr),
    Unix(PathBuf),
}

impl DatagramEndpoint {
    /// Parses `[udp:]IP:PORT`, `[udp:]localhost:PORT` or `[udp:]unix:PATH`, with common's
    /// rules (no name but `localhost` is resolved, so a mistyped address fails at once).
    pub fn parse(text: &str) -> Result<DatagramEndpoint, String> {
        let rest = text.strip_prefix("udp:").unwrap_or(text);
        match Endpoint::parse(rest) {
            Ok(Endpoint::Tcp(addr)) => Ok(DatagramEndpoint::Udp(addr)),
            Ok(Endpoint::Unix(path)) => Ok(DatagramEndpoint::Unix(path)),
            Err(why) => Err(why.replace("expected IP:PORT", "expected [udp:]IP:PORT")),
        }
    }
}

impl fmt::Display for DatagramEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatagramEndpoint::Udp(addr) => write!(f, "udp:{addr}"),
            DatagramEndpoint::Unix(path) => write!(f, "udp:unix:{}", path.display()),
        }
    }
}

/// One bound datagram socket: a worker's own (UDP), or a descriptor of the one socket all
/// workers share (Unix).
#[derive(Debug)]
pub struct DatagramSocket {
    socket: Socket,
    /// For Unix sockets, removes the path when the last worker's descriptor is dropped.
    path: Option<Arc<UnixPathGuard>>,
}

/// What one `recv_from` got.
#[derive(Debug)]
pub struct Received {
    /// The datagram's length: all of it, even when it did not fit the buffer.
    pub len: usize,
    /// Whether it was longer than the buffer, so that only its start was kept.
    pub truncated: bool,
    /// Who sent it, and where the echo goes.
    pub peer: SockAddr,
}

impl DatagramSocket {
    /// Receives one datagram into `buf` without waiting (`WouldBlock` if none is queued).
    ///
    /// MSG_TRUNC asks Linux to return the datagram's real length even when it was longer
    /// than `buf` (the rest is lost): that is how a truncation shows, since the datagram is
    /// gone from the queue either way.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<Received> {
        // SAFETY: `[u8]` and `[MaybeUninit<u8>]` have the same layout, and the kernel only
        // writes bytes into the slice, never "uninitialises" one, so `buf` stays valid.
        let uninit = unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) };
        let flags = libc::MSG_TRUNC | libc::MSG_DONTWAIT;
        let (len, peer) = self.socket.recv_from_with_flags(uninit, flags)?;
        Ok(Received { len, truncated: len > buf.len(), peer })
    }

    /// Sends `datagram` to `peer` without waiting: a full buffer is `WouldBlock` (or
    /// ENOBUFS), never a stall that would hold up every other client.
    pub fn send_to(&self, datagram: &[u8], peer: &SockAddr) -> io::Result<usize> {
        self.socket.send_to_with_flags(datagram, peer, libc::MSG_DONTWAIT)
    }

    /// The endpoint actually bound, with the real port when port 0 was asked for.
    pub fn local_endpoint(&self) -> io::Result<DatagramEndpoint> {
        if let Some(guard) = &self.path {
            return Ok(DatagramEndpoint::Unix(guard.path().to_path_buf()));
        }
        let addr = self.socket.local_addr()?.as_socket();
        addr.map(DatagramEndpoint::Udp)
            .ok_or_else(|| io::Error::other("a UDP socket has a local address that is not IP"))
    }

    /// The receive buffer of a UDP socket as the kernel reports it (it caps what was asked
    /// at `net.core.rmem_max`, then doubles it for its own bookkeeping); `None` for a
    /// Unix socket, whose queue is bounded in datagrams instead.
    pub fn recv_buffer_size(&self) -> io::Result<Option<usize>> {
        if self.path.is_some() {
            return Ok(None);
        }
        self.socket.recv_buffer_size().map(Some)
    }

    /// Prints the ready line, `listening on udp:ADDR`, on stdout and flushes it. Once it is
    /// printed, datagrams sent to the address are queued by the kernel.
    pub fn announce(&self) -> io::Result<()> {
        use std::io::Write;
        let mut stdout = io::stdout().lock();
        writeln!(stdout, "listening on {}", self.local_endpoint()?)?;
        stdout.flush()
    }
}

impl AsFd for DatagramSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl AsRawFd for DatagramSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

/// Binds the sockets of `workers` workers (at least one) on `endpoint`, each with a receive
/// buffer of `rcvbuf` bytes if given: for UDP, one socket per worker, a SO_REUSEPORT group
/// when there are several; for a Unix path, one socket that every worker shares through
/// duplicate descriptors (Linux has no SO_REUSEPORT for Unix sockets).
pub fn bind(
    endpoint: &DatagramEndpoint,
    workers: usize,
    rcvbuf: Option<usize>,
) -> io::Result<Vec<DatagramSocket>> {
    let workers = workers.max(1);
    match endpoint {
        DatagramEndpoint::Udp(addr) => bind_udp(*addr, workers, rcvbuf),
        DatagramEndpoint::Unix(path) => {
            let first = bind_unix(path)?;
            let mut sockets = Vec::with_capacity(workers);
            for _ in 1..workers {
                let path = first.path.clone();
                sockets.push(DatagramSocket { socket: first.socket.try_clone()?, path });
            }
            sockets.push(first);
            Ok(sockets)
        }
    }
}

fn bind_udp(
    addr: SocketAddr,
    workers: usize,
    rcvbuf: Option<usize>,
) -> io::Result<Vec<DatagramSocket>> {
    let new_socket = || -> io::Result<Socket> {
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        if addr.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        if let Some(bytes) = rcvbuf {
            socket.set_recv_buffer_size(bytes)?;
        }
        Ok(socket)
    };
    // SO_REUSEPORT lets any socket of the same user that set it too join the port, so a
    // group alone would quietly share a port with another server already there. A plain
    // socket bound first (and closed again) fails with EADDRINUSE if anyone holds the port,
    // as common's `bind_reuseport` does for TCP. One worker needs no group at all.
    if workers > 1 && addr.port() != 0 {
        new_socket()?.bind(&SockAddr::from(addr))?;
    }
    let mut addr = addr;
    let mut sockets = Vec::with_capacity(workers);
    for _ in 0..workers {
        let socket = new_socket()?;
        if workers > 1 {
            socket.set_reuse_port(true)?;
        }
        socket.bind(&SockAddr::from(addr))?;
        // After the first bind, the port it got (the same as asked unless it was 0).
        addr = socket.local_addr()?.as_socket().unwrap_or(addr);
        sockets.push(DatagramSocket { socket, path: None });
    }
    Ok(sockets)
}

fn bind_unix(path: &Path) -> io::Result<DatagramSocket> {
    // Common's plumbing, as for the stream models' Unix listeners: a stale file left by a
    // killed server is removed, and the file is removed again at exit, if still ours.
    remove_stale_socket(path, Type::DGRAM)?;
    let socket = Socket::new(Domain::UNIX, Type::DGRAM, None)?;
    socket.bind(&SockAddr::unix(path)?)?;
    let guard = UnixPathGuard::claim(path)?;
    // A Unix datagram is refused (EMSGSIZE) when it is larger than the sender's SO_SNDBUF
    // less 32 bytes: make sure our echo of the largest datagram we take can go out.
    let needed = MAX_DATAGRAM + 32;
    if socket.send_buffer_size()? < needed {
        socket.set_send_buffer_size(needed)?;
    }
    Ok(DatagramSocket { socket, path: Some(Arc::new(guard)) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::net::UdpSocket;
    use std::os::unix::net::UnixDatagram;

    #[test]
    fn endpoints_print_as_the_ready_line_does_and_parse_back() {
        for text in ["udp:127.0.0.1:7000", "udp:[::1]:0", "udp:unix:/tmp/echo.sock"] {
            assert_eq!(DatagramEndpoint::parse(text).unwrap().to_string(), text);
        }
        // The TCP models' forms, which the harness passes to every model, mean the same.
        let plain = DatagramEndpoint::parse("127.0.0.1:7000").unwrap();
        assert_eq!(plain.to_string(), "udp:127.0.0.1:7000");
        assert!(DatagramEndpoint::parse("udp:nonsense").unwrap_err().contains("[udp:]IP:PORT"));
    }

    #[test]
    fn a_group_shares_one_port_and_holds_it_against_others() {
        let group = bind(&DatagramEndpoint::parse("127.0.0.1:0").unwrap(), 3, None).unwrap();
        let ports: Vec<String> =
            group.iter().map(|s| s.local_endpoint().unwrap().to_string()).collect();
        assert!(ports.iter().all(|p| p == &ports[0]), "{ports:?}");
        let taken = group[0].local_endpoint().unwrap();
        assert!(bind(&taken, 2, None).is_err(), "a second group joined {taken}");
        assert!(bind(&taken, 1, None).is_err(), "a plain socket joined {taken}");
    }

    #[test]
    fn a_truncated_datagram_reports_its_real_length() {
        let server = bind(&DatagramEndpoint::parse("127.0.0.1:0").unwrap(), 1, None).unwrap();
        let DatagramEndpoint::Udp(addr) = server[0].local_endpoint().unwrap() else { panic!() };
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.send_to(&[7u8; 100], addr).unwrap();
        let mut small = [0u8; 10];
        // Wait for it the way the server does, polling (never a sleep).
        let mut fds = [PollFd::new(server[0].as_fd(), PollFlags::POLLIN)];
        assert_eq!(poll(&mut fds, PollTimeout::from(5000u16)).unwrap(), 1);
        let got = server[0].recv_from(&mut small).unwrap();
        assert_eq!((got.len, got.truncated), (100, true));
        assert_eq!(small, [7u8; 10]);
    }

    #[test]
    fn the_unix_file_goes_with_the_last_descriptor_and_a_stale_one_is_replaced() {
        let path = std::env::temp_dir().join(format!("echobench-udp-{}.sock", std::process::id()));
        drop(UnixDatagram::bind(&path).unwrap());
        assert!(path.exists(), "a stale socket file to replace");
        let sockets = bind(&DatagramEndpoint::Unix(path.clone()), 2, None).unwrap();
        assert!(
            bind(&DatagramEndpoint::Unix(path.clone()), 1, None).is_err(),
            "a live one was taken"
        );
        let mut sockets = sockets.into_iter();
        drop(sockets.next());
        assert!(path.exists(), "a worker still holds the socket");
        drop(sockets.next());
        assert!(!path.exists());
    }
}
