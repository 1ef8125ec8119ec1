//! The datagram contract: the cases a datagram echo server (`echo-udp`) must pass, written
//! once beside the stream cases, and the client they use.
//!
//! A datagram server keeps the stream servers' contract where it applies (the ready line,
//! loopback by default, SIGINT and SIGTERM, one line of error for bad input) and adds its
//! own: one datagram back for each one in, never merged, split or cut short, to its own
//! sender only, at every size from 0 bytes to the largest the family allows.
//!
//! | file | promises |
//! |---|---|
//! | `echo.rs` | the ready line and echo over IPv4, IPv6 and Unix datagram sockets; every size |
//! | `clients.rs` | 100 clients at once, each getting only its own replies; a client that never reads |
//! | `signals.rs` | SIGTERM and SIGINT while datagrams flow |
//! | `bad_input.rs` | refusing bad command lines, the TCP-only flags among them |
//!
//! [`crate::datagram_suite!`] turns each case into a `#[test]`.

mod bad_input;
mod clients;
mod echo;
mod signals;

pub use bad_input::*;
pub use clients::*;
pub use echo::*;
pub use signals::*;

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::client::unique_socket_path;
use crate::{Addr, Server};

/// The largest UDP payload over IPv4: 65,535 bytes of IP packet less a 20-byte IP header and
/// an 8-byte UDP header.
pub const MAX_UDP_V4: usize = 65_507;

/// The largest UDP payload over IPv6: the 65,535 bytes of the IPv6 payload length, less the
/// 8-byte UDP header (the 40-byte IPv6 header is not counted in it).
pub const MAX_UDP_V6: usize = 65_527;

/// How long a client waits for one echo. On loopback an echo takes microseconds; a lost one
/// is never coming, so this is only the point at which waiting longer is pointless.
const ECHO_TIMEOUT: Duration = Duration::from_secs(5);

/// A client's own socket: a UDP socket on a free loopback port, connected to the server, or
/// a Unix datagram socket bound to a path of its own (an unbound one would have no address
/// to be answered at), sending to the server's path.
///
/// The Unix client does not `connect`: Linux lets a server's datagrams past the receiver's
/// queue limit (`net.unix.max_dgram_qlen`) when the receiver is connected to the server, so
/// a connected client that stops reading holds the server's echoes in its queue, charged to
/// the server's send buffer, until that is full and every echo to anyone fails. echo-udp's
/// own tests show it; the suite's clients keep to the ordinary `sendto` pattern.
#[derive(Debug)]
pub enum Client {
    Udp(UdpSocket),
    /// Its own path (removed when the client is dropped), and the server's.
    Unix(UnixDatagram, PathBuf, PathBuf),
}

impl Client {
    /// A client for the server's address (see [`Client`]), with `ECHO_TIMEOUT` (5 s) on receives.
    pub fn to(server: &Server) -> Client {
        Client::try_to(server.addr()).unwrap_or_else(|e| panic!("cannot make a client: {e}"))
    }

    /// [`Client::to`] that reports failure, for cases running many clients.
    pub fn try_to(addr: &Addr) -> io::Result<Client> {
        let client = match addr {
            Addr::Udp(addr) => {
                let local: SocketAddr =
                    if addr.is_ipv6() { "[::1]:0".parse() } else { "127.0.0.1:0".parse() }
                        .expect("a literal address");
                let socket = UdpSocket::bind(local)?;
                socket.connect(addr)?;
                Client::Udp(socket)
            }
            Addr::UnixDatagram(path) => {
                let own = unique_socket_path("dgram-client");
                let socket = UnixDatagram::bind(&own)?;
                Client::Unix(socket, own, path.clone())
            }
            other => panic!("{other:?} is not a datagram server's address"),
        };
        client.set_timeout(ECHO_TIMEOUT)?;
        Ok(client)
    }

    /// How long `recv` waits, and `send` too (a Unix datagram waits for room in the
    /// server's queue; a UDP one never waits).
    pub fn set_timeout(&self, timeout: Duration) -> io::Result<()> {
        match self {
            Client::Udp(socket) => socket.set_read_timeout(Some(timeout)),
            Client::Unix(socket, _, _) => {
                socket.set_read_timeout(Some(timeout))?;
                socket.set_write_timeout(Some(timeout))
            }
        }
    }

    /// Sends one datagram to the server; fails unless all of it went as one datagram.
    pub fn send(&self, datagram: &[u8]) -> io::Result<()> {
        let sent = match self {
            Client::Udp(socket) => socket.send(datagram)?,
            Client::Unix(socket, _, server) => socket.send_to(datagram, server)?,
        };
        if sent != datagram.len() {
            return Err(io::Error::other(format!("sent {sent} of {} bytes", datagram.len())));
        }
        Ok(())
    }

    /// Receives one datagram into `buf` (which should be larger than any expected, so that a
    /// merged reply shows as too long); returns its length. Times out after the timeout.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Client::Udp(socket) => socket.recv(buf),
            // Only the server knows this client's path (it is unique to the case).
            Client::Unix(socket, _, _) => socket.recv(buf),
        }
    }

    /// Sends `datagram` and asserts that exactly it comes back, as one datagram.
    pub fn round_trip(&self, datagram: &[u8]) {
        self.send(datagram).unwrap_or_else(|e| panic!("send of {} bytes: {e}", datagram.len()));
        let mut buf = vec![0u8; datagram.len() + 2048];
        let len = self
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no echo of a {}-byte datagram: {e}", datagram.len()));
        crate::assert_same(datagram, &buf[..len]);
    }

    /// The Unix client's own path, if it is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Client::Udp(_) => None,
            Client::Unix(_, path, _) => Some(path),
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Client::Unix(_, path, _) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Starts `bin` on a free IPv4 loopback port, with the case's `args` and the model's `extra`.
fn start_udp(bin: &str, extra: &[&str], args: &[&str]) -> Server {
    Server::start(bin, &[&["--addr", "127.0.0.1:0"], args, extra].concat())
}

/// Starts `bin` on a fresh Unix datagram socket path; the returned guard removes the path
/// however the case ends.
fn start_unix(bin: &str, extra: &[&str]) -> (Server, RemoveOnDrop) {
    let path = unique_socket_path("dgram-server");
    let tidy = RemoveOnDrop(path.clone());
    let text = path.to_str().expect("temp paths are UTF-8 here");
    (Server::start(bin, &[&["--unix", text], extra].concat()), tidy)
}

/// Removes a path when dropped, so that failing cases do not litter the temp directory.
#[derive(Debug)]
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A datagram that says who sent it and which one it is: 8 bytes of client id, 8 of sequence
/// number, then `len - 16` bytes of a pattern seeded by both (shorter datagrams are a prefix).
/// A reply can then be checked byte for byte against the one datagram it must echo.
pub fn tagged(client: u64, seq: u64, len: usize) -> Vec<u8> {
    let mut datagram = client.to_le_bytes().to_vec();
    datagram.extend_from_slice(&seq.to_le_bytes());
    datagram.extend(crate::pattern(len.saturating_sub(16), client << 32 | seq));
    datagram.truncate(len);
    datagram
}

/// Whether this machine can bind IPv6 loopback.
fn has_ipv6() -> bool {
    UdpSocket::bind("[::1]:0").is_ok()
}
