//! Listeners for several rings: one SO_REUSEPORT socket per worker on TCP, one shared socket
//! on Unix.
//!
//! With `--workers N`, every ring accepts for itself, so no thread hands connections to
//! another. On TCP each worker gets a listening socket of its own, all bound to the same
//! address with SO_REUSEPORT, and the kernel spreads incoming connections over them by a hash
//! of each connection's addresses and ports (by hash, not by load: two busy clients may land
//! on one worker, and nothing moves them). Linux has no such spreading for Unix sockets (a
//! second bind on the same path fails, whatever the options), so there every worker's ring
//! arms its own multishot accept on the one shared listening socket, and the kernel gives
//! each new connection to one of the waiting accepts.
//!
//! (This is a minimal helper of this crate's own; a shared SO_REUSEPORT binder in
//! `servers/common` would replace it.)

use std::io;
use std::net::SocketAddr;

use echobench_common::{Endpoint, Listener};
use socket2::{Domain, SockAddr, SockRef, Socket, Type};

/// Binds `endpoint` for the first worker: like [`Listener::bind`], and on TCP with
/// SO_REUSEPORT set, so that more workers can bind the same address beside it, and with
/// TCP_NODELAY, which every accepted connection inherits.
///
/// SO_REUSEPORT only lets sockets that *all* set it share a port (and only for the same
/// user), so a port that some other program listens on still fails with EADDRINUSE. Two
/// echo-uring servers started by one user on one port would both bind, and split the
/// connections between them; that is the price of the option.
pub fn bind(endpoint: &Endpoint, backlog: u32) -> io::Result<Listener> {
    match endpoint {
        Endpoint::Tcp(addr) => bind_tcp(*addr, backlog),
        // Unix sockets cannot share a path: the workers share this one listener instead.
        Endpoint::Unix(_) => Listener::bind(endpoint, backlog),
    }
}

/// A listener for one more worker beside `first`: a new SO_REUSEPORT socket on the same TCP
/// address (the real port, when `first` was bound to port 0), or `None` when the workers
/// must share `first` (a Unix socket, or a TCP socket bound without SO_REUSEPORT).
pub fn sibling(first: &Listener, backlog: u32) -> io::Result<Option<Listener>> {
    let Listener::Tcp(tcp) = first else { return Ok(None) };
    if !SockRef::from(tcp).reuse_port()? {
        return Ok(None);
    }
    bind_tcp(tcp.local_addr()?, backlog).map(Some)
}

fn bind_tcp(addr: SocketAddr, backlog: u32) -> io::Result<Listener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    // As in common's bind: a restarted server may bind while old connections sit in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    // Nagle would hold back small echoes (see common's `Listener::accept`). Linux clones
    // every accepted socket from its listener, options included, so setting TCP_NODELAY
    // here, before any connection can arrive, spares a `setsockopt` call per connection.
    socket.set_tcp_nodelay(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&SockAddr::from(addr))?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(Listener::Tcp(socket.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn siblings_share_the_port_that_port_zero_picked() {
        let first = bind(&Endpoint::parse("127.0.0.1:0").unwrap(), 16).unwrap();
        let second = sibling(&first, 16).unwrap().expect("a TCP listener gets a sibling");
        let (Endpoint::Tcp(a), Endpoint::Tcp(b)) =
            (first.local_endpoint().unwrap(), second.local_endpoint().unwrap())
        else {
            panic!("not TCP")
        };
        assert_ne!(a.port(), 0);
        assert_eq!(a, b);
        // Both really listen: a client connects whichever of the two the kernel picks, and
        // the accepted socket inherits TCP_NODELAY from its listener.
        let _client = TcpStream::connect(a).unwrap();
        let Listener::Tcp(first) = first else { unreachable!() };
        let Listener::Tcp(second) = second else { unreachable!() };
        first.set_nonblocking(true).unwrap();
        let (accepted, _) = first.accept().or_else(|_| second.accept()).unwrap();
        assert!(accepted.nodelay().unwrap(), "TCP_NODELAY is inherited from the listener");
    }

    #[test]
    fn a_port_held_without_reuseport_is_still_in_use() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = Endpoint::Tcp(taken.local_addr().unwrap());
        let err = bind(&endpoint, 16).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    }

    #[test]
    fn unix_listeners_and_plain_tcp_listeners_are_shared() {
        let path =
            std::env::temp_dir().join(format!("echo-uring-listen-{}.sock", std::process::id()));
        let unix = bind(&Endpoint::Unix(path), 16).unwrap();
        assert!(sibling(&unix, 16).unwrap().is_none());
        let plain = Listener::bind(&Endpoint::parse("127.0.0.1:0").unwrap(), 16).unwrap();
        assert!(sibling(&plain, 16).unwrap().is_none());
    }
}
