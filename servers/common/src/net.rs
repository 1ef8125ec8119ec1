//! Binding listeners and the two kinds of stream a server accepts.
//!
//! Every server speaks TCP over IPv4 or IPv6 and Unix domain stream sockets. Rather than make
//! each model generic over the socket type, the two kinds are wrapped in small enums
//! ([`Listener`]/[`Stream`] for blocking models, [`MioListener`]/[`MioStream`] for event loops)
//! that forward the few calls a model makes. A model then reads the same whatever the socket.
//! The event-loop types, and the conversions to them, are in `net/mio.rs`; binding several
//! listeners on one port with SO_REUSEPORT is in `net/reuseport.rs`.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{self, SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use socket2::{Domain, SockAddr, Socket, Type};

mod mio;
mod reuseport;
pub use self::mio::{MioListener, MioStream};

/// Where a server listens: a TCP socket address or the path of a Unix socket.
///
/// Its `Display` form is what the ready line prints: `127.0.0.1:PORT`, `[::1]:PORT` or
/// `unix:PATH`, and [`Endpoint::parse`] reads those same forms back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl Endpoint {
    /// Parses `IP:PORT` (`127.0.0.1:7000`, `[::1]:0`), `localhost:PORT` or `unix:PATH`.
    ///
    /// Host names other than `localhost` are refused, and `localhost` means 127.0.0.1
    /// without asking the resolver. Resolving a name while parsing flags could hang a
    /// mistyped `--addr` for the resolver's whole timeout (seconds per attempt when the DNS
    /// server does not answer), where bad input must fail at once; and a server binds to one
    /// of its own addresses, which it can always name in numbers.
    pub fn parse(text: &str) -> Result<Endpoint, String> {
        if let Some(path) = text.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("unix: needs a path, as in unix:/tmp/echo.sock".to_owned());
            }
            return Ok(Endpoint::Unix(PathBuf::from(path)));
        }
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(Endpoint::Tcp(addr));
        }
        let expected = "expected IP:PORT such as 127.0.0.1:7000 or [::1]:0, localhost:PORT \
                        or unix:PATH (host names are not resolved)";
        match text.strip_prefix("localhost:").map(str::parse::<u16>) {
            Some(Ok(port)) => Ok(Endpoint::Tcp(SocketAddr::from(([127, 0, 0, 1], port)))),
            _ => Err(expected.to_owned()),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // SocketAddr already prints IPv6 in brackets: `[::1]:7000`.
            Endpoint::Tcp(addr) => write!(f, "{addr}"),
            Endpoint::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// A bound, listening socket, in blocking mode until a model says otherwise.
#[derive(Debug)]
pub enum Listener {
    Tcp(net::TcpListener),
    /// The guard is shared by the listener's clones (see [`Listener::try_clone`]).
    Unix(UnixListener, Arc<UnixPathGuard>),
}

impl Listener {
    /// Binds `endpoint` and starts listening with a queue of `backlog` connections.
    ///
    /// std's `bind` always listens with a backlog of 128, so the socket is made with socket2,
    /// which lets us pass the backlog the user asked for.
    pub fn bind(endpoint: &Endpoint, backlog: u32) -> io::Result<Listener> {
        let backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
        match endpoint {
            Endpoint::Tcp(addr) => {
                let socket = tcp_socket(addr)?;
                socket.bind(&SockAddr::from(*addr))?;
                socket.listen(backlog)?;
                Ok(Listener::Tcp(socket.into()))
            }
            Endpoint::Unix(path) => {
                remove_stale_socket(path, Type::STREAM)?;
                let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
                socket.bind(&SockAddr::unix(path)?)?;
                let guard = UnixPathGuard::claim(path)?;
                socket.listen(backlog)?;
                Ok(Listener::Unix(UnixListener::from(OwnedFd::from(socket)), Arc::new(guard)))
            }
        }
    }

    /// Another descriptor for the same listening socket (`dup`): still one socket with one
    /// queue of connections, which several event loops can each register in their own
    /// `Poll` and accept from. A Unix socket's file is removed when the last clone closes.
    pub fn try_clone(&self) -> io::Result<Listener> {
        Ok(match self {
            Listener::Tcp(listener) => Listener::Tcp(listener.try_clone()?),
            Listener::Unix(listener, guard) => {
                Listener::Unix(listener.try_clone()?, Arc::clone(guard))
            }
        })
    }

    /// The endpoint actually bound, with the real port when port 0 was asked for.
    pub fn local_endpoint(&self) -> io::Result<Endpoint> {
        match self {
            Listener::Tcp(listener) => Ok(Endpoint::Tcp(listener.local_addr()?)),
            Listener::Unix(_, guard) => Ok(Endpoint::Unix(guard.path.clone())),
        }
    }

    /// Prints the ready line, `listening on ADDR`, on stdout and flushes it.
    ///
    /// Whoever started the server (a test, the harness, a script) waits for this line instead
    /// of sleeping: once it is printed, connections are queued by the kernel even if the
    /// server has not called `accept` yet.
    pub fn announce(&self) -> io::Result<()> {
        let mut stdout = io::stdout().lock();
        writeln!(stdout, "listening on {}", self.local_endpoint()?)?;
        stdout.flush()
    }

    /// Accepts one connection. A TCP stream comes with the listener's TCP_NODELAY setting
    /// (see [`Listener::set_nodelay`]): Linux clones every accepted socket from its listener,
    /// options included, so no `setsockopt` is needed per connection.
    pub fn accept(&self) -> io::Result<Stream> {
        match self {
            Listener::Tcp(listener) => Ok(Stream::Tcp(listener.accept()?.0)),
            Listener::Unix(listener, _) => Ok(Stream::Unix(listener.accept()?.0)),
        }
    }

    /// Sets TCP_NODELAY on a TCP listener, and so on every connection it accepts from now on
    /// (they inherit it); a Unix listener has no such option and is left alone.
    ///
    /// [`Listener::bind`] and [`Listener::bind_reuseport`] turn it on: Nagle's algorithm
    /// holds back a small segment while an earlier small one is unacknowledged, and the
    /// client's delayed ACK then adds about 40 ms to an echo written in two pieces. An echo
    /// server never wants that, except to show it happening (`--nagle`, which turns it off).
    /// A listener bound elsewhere keeps whatever setting it was given.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        match self {
            Listener::Tcp(listener) => socket2::SockRef::from(listener).set_tcp_nodelay(nodelay),
            Listener::Unix(..) => Ok(()),
        }
    }

    /// Makes `accept` return `WouldBlock` instead of waiting.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        match self {
            Listener::Tcp(listener) => listener.set_nonblocking(nonblocking),
            Listener::Unix(listener, _) => listener.set_nonblocking(nonblocking),
        }
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Listener::Tcp(listener) => listener.as_fd(),
            Listener::Unix(listener, _) => listener.as_fd(),
        }
    }
}

impl AsRawFd for Listener {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

/// A TCP socket for `addr`, not yet bound, with the options every TCP listener here sets.
fn tcp_socket(addr: &SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(*addr), Type::STREAM, None)?;
    // SO_REUSEADDR lets a restarted server bind while old connections sit in TIME_WAIT. On
    // Linux it does not let two servers listen on one port, so a port that is really in use
    // still fails with EADDRINUSE.
    socket.set_reuse_address(true)?;
    // Inherited by every accepted connection (see `Listener::set_nodelay`).
    socket.set_tcp_nodelay(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    Ok(socket)
}

/// Removes a Unix socket's file when its socket (the last of its clones) is dropped, so that
/// shutdown leaves nothing behind. Only the process that bound it removes it: a forked child
/// that drops its copy of the listener must not pull the path out from under the parent. And
/// only if the file is still the one it bound: a path that someone removed and bound again
/// in the meantime is theirs.
#[derive(Debug)]
pub struct UnixPathGuard {
    path: PathBuf,
    owner: u32,
    dev: u64,
    ino: u64,
}

impl UnixPathGuard {
    /// Claims the socket file a bind that succeeded has just made at `path`. (A bind that
    /// failed, the path taken, made nothing, so nothing is claimed before it.)
    pub fn claim(path: &Path) -> io::Result<UnixPathGuard> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::symlink_metadata(path)?;
        let owner = std::process::id();
        Ok(UnixPathGuard { path: path.to_path_buf(), owner, dev: meta.dev(), ino: meta.ino() })
    }

    /// The path the guard removes.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for UnixPathGuard {
    fn drop(&mut self) {
        use std::os::unix::fs::MetadataExt;
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|meta| meta.dev() == self.dev && meta.ino() == self.ino);
        if std::process::id() == self.owner && ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Removes `path` if it is a Unix socket that nobody is bound to any more (left by a server
/// that was killed), so that the next bind succeeds. A live socket or any other kind of file
/// is left alone, and bind then fails with a clear "address in use". `kind` is the socket
/// type the path is for (`Type::STREAM` or `Type::DGRAM`): a connect of that type to a path
/// nobody is bound to is refused at once, and that refusal is what marks it stale.
pub fn remove_stale_socket(path: &Path, kind: Type) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else { return Ok(()) };
    if !meta.file_type().is_socket() {
        return Ok(());
    }
    let probe = Socket::new(Domain::UNIX, kind, None)?;
    if let Err(err) = probe.connect(&SockAddr::unix(path)?)
        && err.kind() == io::ErrorKind::ConnectionRefused
    {
        std::fs::remove_file(path)?;
    }
    Ok(())
}

/// An accepted connection in blocking mode.
#[derive(Debug)]
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    /// Shuts down reading, writing or both; used to wake a thread blocked on this stream.
    pub fn shutdown(&self, how: net::Shutdown) -> io::Result<()> {
        match self {
            Stream::Tcp(stream) => stream.shutdown(how),
            Stream::Unix(stream) => stream.shutdown(how),
        }
    }
}

// Reading and writing need no `&mut`: as std does for `&TcpStream` and `&UnixStream`, a
// shared reference reads and writes too, since the kernel serialises calls on one socket.
// The thread model relies on that: a connection's thread shares its stream with the
// registry that shuts it down. The owned stream forwards to the shared form.

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(stream) => (&*stream).read(buf),
            Stream::Unix(stream) => (&*stream).read(buf),
        }
    }
}

impl Write for &Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(stream) => (&*stream).write(buf),
            Stream::Unix(stream) => (&*stream).write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Tcp(stream) => stream.as_fd(),
            Stream::Unix(stream) => stream.as_fd(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_print_as_the_ready_line_does_and_parse_back() {
        for text in ["127.0.0.1:7000", "[::1]:0", "unix:/tmp/echo.sock"] {
            assert_eq!(Endpoint::parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn nonsense_addresses_are_refused_with_a_hint() {
        for text in ["", "7000", "unix:", "127.0.0.1:99999", "no such host:1"] {
            let err = Endpoint::parse(text).unwrap_err();
            assert!(!err.is_empty(), "{text:?} gave an empty error");
        }
    }

    #[test]
    fn localhost_is_the_one_name_and_needs_no_resolver() {
        let endpoint = Endpoint::parse("localhost:7000").unwrap();
        assert_eq!(endpoint.to_string(), "127.0.0.1:7000");
        for text in ["example.com:80", "localhost:99999", "localhost:", "ip6-localhost:1"] {
            let err = Endpoint::parse(text).unwrap_err();
            assert!(err.contains("not resolved"), "{text:?}: {err}");
        }
    }

    #[test]
    fn port_zero_binds_a_real_port_and_accepts_with_nodelay() {
        let listener = Listener::bind(&Endpoint::parse("127.0.0.1:0").unwrap(), 16).unwrap();
        let Endpoint::Tcp(addr) = listener.local_endpoint().unwrap() else { panic!("not tcp") };
        assert_ne!(addr.port(), 0);
        let _client = TcpStream::connect(addr).unwrap();
        let Stream::Tcp(accepted) = listener.accept().unwrap() else { panic!("not tcp") };
        assert!(accepted.nodelay().unwrap());
    }

    #[test]
    fn nagle_flag_leaves_nodelay_off_on_accepted_streams() {
        use clap::Parser;
        #[derive(Debug, Parser)]
        struct Cli {
            #[command(flatten)]
            server: crate::ServerArgs,
        }
        for (flags, nodelay) in [(&["echo"][..], true), (&["echo", "--nagle"][..], false)] {
            let args = Cli::try_parse_from(flags).unwrap().server;
            let listener = Listener::bind(&Endpoint::parse("127.0.0.1:0").unwrap(), 16).unwrap();
            listener.set_nodelay(args.nodelay()).unwrap();
            let Endpoint::Tcp(addr) = listener.local_endpoint().unwrap() else { panic!("tcp") };
            // The blocking accept and the event loops' accept both hand out inherited streams.
            let _first = TcpStream::connect(addr).unwrap();
            let Stream::Tcp(accepted) = listener.accept().unwrap() else { panic!("not tcp") };
            assert_eq!(accepted.nodelay().unwrap(), nodelay, "{flags:?}, blocking accept");
            let _second = TcpStream::connect(addr).unwrap();
            let mio = listener.into_mio().unwrap();
            let accepted = loop {
                match mio.accept() {
                    Ok(MioStream::Tcp(stream)) => break stream,
                    Ok(MioStream::Unix(_)) => panic!("not tcp"),
                    // The handshake completed before `connect` returned, but be patient.
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                    Err(err) => panic!("accept: {err}"),
                }
            };
            assert_eq!(accepted.nodelay().unwrap(), nodelay, "{flags:?}, event-loop accept");
        }
    }

    #[test]
    fn unix_listener_removes_its_file_and_replaces_a_stale_one() {
        let path =
            std::env::temp_dir().join(format!("echobench-common-{}.sock", std::process::id()));
        let endpoint = Endpoint::Unix(path.clone());
        // A socket file whose listener is gone is stale: binding over it must work.
        drop(UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let listener = Listener::bind(&endpoint, 16).unwrap();
        // A live one is not stale: a second bind must fail rather than steal it.
        assert!(Listener::bind(&endpoint, 16).is_err());
        drop(listener);
        assert!(!path.exists());
    }

    #[test]
    fn clones_share_one_queue_and_the_last_removes_the_unix_file() {
        let path =
            std::env::temp_dir().join(format!("echobench-clone-{}.sock", std::process::id()));
        let first = Listener::bind(&Endpoint::Unix(path.clone()), 16).unwrap();
        let second = first.try_clone().unwrap();
        // A client queued on the socket is accepted through either descriptor.
        let _client = UnixStream::connect(&path).unwrap();
        assert!(matches!(second.accept().unwrap(), Stream::Unix(_)));
        drop(first);
        assert!(path.exists(), "a clone still listens: the file must stay");
        drop(second);
        assert!(!path.exists());
    }
}
