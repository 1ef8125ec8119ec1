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
use socket2::{Domain, SockAddr, Socket, Type};

/// Binds `endpoint` for `workers` rings: on TCP, one listener per ring, all on the same
/// address with SO_REUSEPORT (the first bind picks the port when `endpoint` asks for port
/// 0), and each with TCP_NODELAY, which every accepted connection inherits; on Unix, one
/// listener that the rings share.
///
/// SO_REUSEPORT only lets sockets that *all* set it share a port (and only for the same
/// user), so a port that some other program listens on still fails with EADDRINUSE. Two
/// echo-uring servers started by one user on one port would both bind, and split the
/// connections between them; that is the price of the option.
pub fn bind(endpoint: &Endpoint, backlog: u32, workers: usize) -> io::Result<Vec<Listener>> {
    let Endpoint::Tcp(addr) = endpoint else {
        // Unix sockets cannot share a path: the workers share this one listener instead.
        return Ok(vec![Listener::bind(endpoint, backlog)?]);
    };
    let first = bind_tcp(*addr, backlog)?;
    let Listener::Tcp(tcp) = &first else { unreachable!("bind_tcp binds TCP") };
    let addr = tcp.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..workers {
        listeners.push(bind_tcp(addr, backlog)?);
    }
    Ok(listeners)
}

fn bind_tcp(addr: SocketAddr, backlog: u32) -> io::Result<Listener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    // As in common's bind: a restarted server may bind while old connections sit in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    // Nagle would hold back small echoes (see common's `Listener::set_nodelay`). Linux clones
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
    fn tcp_workers_share_the_port_that_port_zero_picked() {
        let listeners = bind(&Endpoint::parse("127.0.0.1:0").unwrap(), 16, 2).unwrap();
        let [Listener::Tcp(first), Listener::Tcp(second)] = &listeners[..] else {
            panic!("two TCP listeners")
        };
        let addr = first.local_addr().unwrap();
        assert_ne!(addr.port(), 0);
        assert_eq!(addr, second.local_addr().unwrap());
        // Both really listen: a client connects whichever of the two the kernel picks, and
        // the accepted socket inherits TCP_NODELAY from its listener.
        let _client = TcpStream::connect(addr).unwrap();
        first.set_nonblocking(true).unwrap();
        let (accepted, _) = first.accept().or_else(|_| second.accept()).unwrap();
        assert!(accepted.nodelay().unwrap(), "TCP_NODELAY is inherited from the listener");
    }

    #[test]
    fn a_port_held_without_reuseport_is_still_in_use() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = Endpoint::Tcp(taken.local_addr().unwrap());
        let err = bind(&endpoint, 16, 1).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    }

    #[test]
    fn unix_workers_get_one_listener_to_share() {
        let path =
            std::env::temp_dir().join(format!("echo-uring-listen-{}.sock", std::process::id()));
        assert_eq!(bind(&Endpoint::Unix(path), 16, 3).unwrap().len(), 1);
    }
}
