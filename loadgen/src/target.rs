//! The server under load: parsing its address, and opening non-blocking connections to it.
//!
//! loadgen must not depend on the servers' crates (it loads any echo server), so the address
//! forms the servers print (`127.0.0.1:PORT`, `[::1]:PORT`, `unix:PATH`, and the datagram
//! server's `udp:...`) are parsed here again.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use mio::event::Source;
use mio::{Interest, Registry, Token};
use socket2::{Domain, SockAddr, Socket, Type};

/// Where the server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Tcp(SocketAddr),
    Unix(PathBuf),
    /// A datagram server (`udp:...`): UDP mode, whose sockets are opened in `udp/`, never
    /// by the stream functions here.
    Datagram(crate::udp::Peer),
}

impl Target {
    /// Parses `HOST:PORT`, `[V6]:PORT` or `unix:PATH`; host names are resolved, first wins.
    pub fn parse(text: &str) -> Result<Target> {
        if let Some(rest) = text.strip_prefix("udp:") {
            return crate::udp::Peer::parse(rest).map(Target::Datagram);
        }
        if let Some(path) = text.strip_prefix("unix:") {
            if path.is_empty() {
                bail!("unix: needs a path, as in unix:/tmp/echo.sock");
            }
            return Ok(Target::Unix(PathBuf::from(path)));
        }
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(Target::Tcp(addr));
        }
        if !text.contains(':') {
            bail!("expected HOST:PORT such as 127.0.0.1:7000, [::1]:7000 or unix:PATH");
        }
        let mut addrs = text.to_socket_addrs().context("cannot resolve the host")?;
        addrs.next().map(Target::Tcp).context("the host has no address")
    }

    /// Source addresses for churn: several loopback addresses for a 127.x.y.z target (each has
    /// its own ephemeral ports, which multiplies the connections per second TIME_WAIT allows),
    /// otherwise none (the kernel picks, as usual).
    pub fn churn_sources(&self, count: usize) -> Vec<IpAddr> {
        match self {
            Target::Tcp(SocketAddr::V4(addr)) if addr.ip().is_loopback() => (0..count)
                .map(|k| {
                    // 127.0.0.1, 127.0.0.2, ... 127.0.1.0, ...: all of 127/8 is local on Linux.
                    let host = u32::from(Ipv4Addr::new(127, 0, 0, 1)) + k as u32;
                    IpAddr::V4(Ipv4Addr::from(host))
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// One blocking connection, made within `timeout`: to check that someone is listening
    /// before a run starts.
    pub fn connect_blocking(&self, timeout: Duration) -> io::Result<BlockingStream> {
        match self {
            Target::Tcp(addr) => {
                let stream = std::net::TcpStream::connect_timeout(addr, timeout)?;
                stream.set_nodelay(true)?;
                Ok(BlockingStream::Tcp(stream))
            }
            Target::Unix(path) => {
                // A Unix `connect` to a listener whose backlog is full blocks until the server
                // accepts, for ever if it never does. The send timeout bounds that wait (the
                // kernel uses it for `connect`), and then the call fails with EAGAIN.
                let socket = Socket::new(Domain::UNIX, Type::STREAM.cloexec(), None)?;
                socket.set_write_timeout(Some(timeout))?;
                match socket.connect(&SockAddr::unix(path)?) {
                    Ok(()) => {}
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "connection timed out (the server's listen backlog stayed full)",
                        ));
                    }
                    Err(err) => return Err(err),
                }
                socket.set_write_timeout(None)?;
                Ok(BlockingStream::Unix(socket.into()))
            }
            Target::Datagram(_) => Err(not_a_stream()),
        }
    }

    /// [`Target::connect`], with the new stream registered in `registry` under `token` for
    /// both readable and writable events (edge-triggered, once for the connection's life),
    /// as every load thread's event loop wants it.
    pub(crate) fn connect_registered(
        &self,
        source: Option<IpAddr>,
        registry: &Registry,
        token: Token,
    ) -> io::Result<Stream> {
        let mut stream = self.connect(source)?;
        registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
        Ok(stream)
    }

    /// Starts a non-blocking connection. For TCP it is usually still in progress when this
    /// returns: the stream turns writable once it is established or has failed, and
    /// [`Stream::finish_connect`] tells which.
    pub fn connect(&self, source: Option<IpAddr>) -> io::Result<Stream> {
        match self {
            Target::Tcp(addr) => {
                let socket = Socket::new(Domain::for_address(*addr), Type::STREAM.cloexec(), None)?;
                socket.set_nonblocking(true)?;
                // Each message goes out in one write; Nagle would hold back the next one for
                // the delayed ACK (44 ms here).
                socket.set_tcp_nodelay(true)?;
                if let Some(ip) = source {
                    bind_no_port(&socket)?;
                    socket.bind(&SockAddr::from(SocketAddr::new(ip, 0)))?;
                }
                match socket.connect(&SockAddr::from(*addr)) {
                    Ok(()) => {}
                    Err(err) if err.raw_os_error() == Some(libc::EINPROGRESS) => {}
                    Err(err) => return Err(err),
                }
                Ok(Stream::Tcp(mio::net::TcpStream::from_std(socket.into())))
            }
            Target::Unix(path) => Ok(Stream::Unix(mio::net::UnixStream::connect(path)?)),
            Target::Datagram(_) => Err(not_a_stream()),
        }
    }

    /// Whether this is a datagram server (UDP mode).
    pub fn is_datagram(&self) -> bool {
        matches!(self, Target::Datagram(_))
    }
}

fn not_a_stream() -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, "a datagram server takes no connections")
}

/// Asks the kernel to choose the source port at `connect`, knowing the destination, rather
/// than at `bind`, where it would have to keep each port unique per source address alone.
fn bind_no_port(socket: &Socket) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: the pointer and length describe `on`, a live c_int, and the descriptor is open.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&on as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Tcp(addr) => write!(f, "{addr}"),
            Target::Unix(path) => write!(f, "unix:{}", path.display()),
            Target::Datagram(peer) => write!(f, "{peer}"),
        }
    }
}

/// A blocking connection (the probe before a run).
#[derive(Debug)]
pub enum BlockingStream {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

impl BlockingStream {
    /// Whether the server has closed (or reset) this connection, without waiting.
    pub fn closed_by_peer(&mut self) -> bool {
        let mut byte = [0u8; 1];
        let result = match self {
            BlockingStream::Tcp(s) => s.set_nonblocking(true).and_then(|()| s.read(&mut byte)),
            BlockingStream::Unix(s) => s.set_nonblocking(true).and_then(|()| s.read(&mut byte)),
        };
        // Data on a silent connection is odd but means it is alive; only EOF or an error
        // (a reset) means the server let go.
        match result {
            Ok(n) => n == 0,
            Err(err) => err.kind() != io::ErrorKind::WouldBlock,
        }
    }
}

/// A non-blocking connection carrying load: TCP or Unix, forwarded to mio's types.
#[derive(Debug)]
pub enum Stream {
    Tcp(mio::net::TcpStream),
    Unix(mio::net::UnixStream),
}

impl Stream {
    /// After a writable event on a connecting stream: `Ok(true)` once connected, `Ok(false)`
    /// if the event was spurious and the connection is still in progress, or the error that
    /// made it fail.
    pub fn finish_connect(&self) -> io::Result<bool> {
        match self {
            Stream::Tcp(s) => {
                if let Some(err) = s.take_error()? {
                    return Err(err);
                }
                match s.peer_addr() {
                    Ok(_) => Ok(true),
                    Err(err) if err.kind() == io::ErrorKind::NotConnected => Ok(false),
                    Err(err) => Err(err),
                }
            }
            // A Unix connect completes (or fails) inside `connect` itself.
            Stream::Unix(s) => s.take_error()?.map_or(Ok(true), Err),
        }
    }

    /// Whether the server has closed (or reset) this connection, without waiting (the
    /// stream is non-blocking). Only for silent connections: it consumes a byte if one came.
    pub fn closed_by_peer(&mut self) -> bool {
        let mut byte = [0u8; 1];
        // Data on a silent connection is odd but means it is alive; only EOF or an error
        // (a reset) means the server let go.
        match self.read(&mut byte) {
            Ok(n) => n == 0,
            Err(err) => err.kind() != io::ErrorKind::WouldBlock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Source for Stream {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.register(registry, token, interests),
            Stream::Unix(s) => s.register(registry, token, interests),
        }
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.reregister(registry, token, interests),
            Stream::Unix(s) => s.reregister(registry, token, interests),
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.deregister(registry),
            Stream::Unix(s) => s.deregister(registry),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_address_forms_parse() {
        assert_eq!(
            Target::parse("127.0.0.1:7000").unwrap(),
            Target::Tcp("127.0.0.1:7000".parse().unwrap())
        );
        assert_eq!(Target::parse("[::1]:9").unwrap(), Target::Tcp("[::1]:9".parse().unwrap()));
        assert_eq!(Target::parse("unix:/tmp/x.sock").unwrap(), Target::Unix("/tmp/x.sock".into()));
        assert!(Target::parse("unix:").is_err());
        assert!(Target::parse("7000").is_err());
        assert_eq!(Target::parse("[::1]:9").unwrap().to_string(), "[::1]:9");
        for datagram in ["udp:127.0.0.1:7000", "udp:[::1]:7000", "udp:unix:/tmp/e.sock"] {
            assert_eq!(Target::parse(datagram).unwrap().to_string(), datagram);
        }
        assert!(Target::parse("udp:").is_err());
    }

    #[test]
    fn churn_spreads_loopback_sources_only() {
        let local = Target::parse("127.0.0.1:7000").unwrap();
        let sources = local.churn_sources(300);
        assert_eq!(sources[0], IpAddr::from([127, 0, 0, 1]));
        assert_eq!(sources[255], IpAddr::from([127, 0, 1, 0]));
        assert!(Target::parse("[::1]:7000").unwrap().churn_sources(4).is_empty());
    }
}
