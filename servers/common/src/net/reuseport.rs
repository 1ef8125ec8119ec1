//! Several TCP listeners on one address with SO_REUSEPORT, for models that give each event
//! loop (or ring) a listener of its own and let the kernel spread connections over them.
//!
//! Binding is all this does: whether to spread connections that way is the model's choice.

use std::io;
use std::net::SocketAddr;

use socket2::SockAddr;

use super::{Listener, tcp_socket};

impl Listener {
    /// Binds `count` TCP listeners (at least one) to `addr`, each with SO_REUSEPORT and a
    /// queue of `backlog`: a group that shares the address. For each new connection Linux
    /// picks one listener of the group by a hash of the connection's addresses and ports, and
    /// queues it there alone.
    ///
    /// With port 0 the first bind picks a free port and the others join it there. (The
    /// kernel does not pick, for port 0, a port that another SO_REUSEPORT group holds.)
    ///
    /// SO_REUSEPORT lets any socket of the same user that set it too join a port, so the
    /// binds alone would quietly share a port with another server already on it (a second
    /// copy of the same server, say) instead of failing as [`Listener::bind`] does. So for
    /// a given port, a plain socket is bound first and closed again: it fails with
    /// EADDRINUSE if anyone listens there. (A server that starts in the instant between the
    /// two could still join; nothing closes that window short of a lock outside the kernel.)
    pub fn bind_reuseport(
        addr: SocketAddr,
        backlog: u32,
        count: usize,
    ) -> io::Result<Vec<Listener>> {
        let backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
        if addr.port() != 0 {
            tcp_socket(&addr)?.bind(&SockAddr::from(addr))?;
        }
        let mut addr = addr;
        let mut listeners = Vec::with_capacity(count.max(1));
        for _ in 0..count.max(1) {
            let socket = tcp_socket(&addr)?;
            socket.set_reuse_port(true)?;
            socket.bind(&SockAddr::from(addr))?;
            socket.listen(backlog)?;
            // After the first bind, the port it got (the same as asked unless it was 0).
            addr = socket.local_addr()?.as_socket().ok_or_else(|| {
                io::Error::other("a TCP socket reported a local address that is not TCP")
            })?;
            listeners.push(Listener::Tcp(socket.into()));
        }
        Ok(listeners)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Endpoint, Stream};
    use std::collections::HashSet;
    use std::net::{TcpListener, TcpStream};

    fn local(listener: &Listener) -> SocketAddr {
        let Endpoint::Tcp(addr) = listener.local_endpoint().unwrap() else { panic!("not tcp") };
        addr
    }

    #[test]
    fn port_zero_binds_every_listener_on_the_first_ones_port() {
        let group = Listener::bind_reuseport("127.0.0.1:0".parse().unwrap(), 16, 3).unwrap();
        assert_eq!(group.len(), 3);
        let addrs: HashSet<SocketAddr> = group.iter().map(local).collect();
        assert_eq!(addrs.len(), 1, "one address for the whole group: {addrs:?}");
        assert_ne!(local(&group[0]).port(), 0);
        // Every connection lands on exactly one of them. Accept without blocking, from each
        // in turn, until all the clients are found (each queue was filled before connect
        // returned: the handshake completes in the kernel).
        let clients: Vec<TcpStream> =
            (0..20).map(|_| TcpStream::connect(local(&group[0])).unwrap()).collect();
        let mut accepted = 0;
        for listener in &group {
            listener.set_nonblocking(true).unwrap();
            while let Ok(Stream::Tcp(_)) = listener.accept() {
                accepted += 1;
            }
        }
        assert_eq!(accepted, clients.len());
    }

    #[test]
    fn a_port_anyone_listens_on_is_refused_even_with_so_reuseport() {
        // A plain listener: the reuseport binds would fail on their own.
        let plain = TcpListener::bind("127.0.0.1:0").unwrap();
        let err = Listener::bind_reuseport(plain.local_addr().unwrap(), 16, 2).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        // Another group: only the plain probe bind stops us from joining it.
        let group = Listener::bind_reuseport("127.0.0.1:0".parse().unwrap(), 16, 2).unwrap();
        let err = Listener::bind_reuseport(local(&group[0]), 16, 2).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    }
}
