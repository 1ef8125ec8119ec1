//! The non-blocking side: the listener and stream types an event loop registers with a
//! `mio::Poll`, and the conversions that lead to them from [`Listener`] and [`Stream`].

use std::io::{self, Read, Write};
use std::net;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;

use mio::event::Source;
use mio::{Interest, Registry, Token};

use super::{Listener, Stream, UnixPathGuard};

impl Listener {
    /// Converts into a non-blocking listener for a mio event loop.
    pub fn into_mio(self) -> io::Result<MioListener> {
        self.set_nonblocking(true)?;
        Ok(match self {
            Listener::Tcp(listener) => MioListener::Tcp(mio::net::TcpListener::from_std(listener)),
            Listener::Unix(listener, guard) => {
                MioListener::Unix(mio::net::UnixListener::from_std(listener), guard)
            }
        })
    }
}

impl Stream {
    /// Converts into a non-blocking stream for a mio event loop.
    ///
    /// mio does not switch the socket to non-blocking mode itself; a blocking socket in an
    /// event loop would stall every other connection on its first short read.
    pub fn into_mio(self) -> io::Result<MioStream> {
        Ok(match self {
            Stream::Tcp(stream) => {
                stream.set_nonblocking(true)?;
                MioStream::Tcp(mio::net::TcpStream::from_std(stream))
            }
            Stream::Unix(stream) => {
                stream.set_nonblocking(true)?;
                MioStream::Unix(mio::net::UnixStream::from_std(stream))
            }
        })
    }
}

/// A non-blocking listener registered with a mio `Poll`.
#[derive(Debug)]
pub enum MioListener {
    Tcp(mio::net::TcpListener),
    Unix(mio::net::UnixListener, Arc<UnixPathGuard>),
}

impl MioListener {
    /// Accepts one connection (non-blocking; `WouldBlock` once none is waiting). As with
    /// [`Listener::accept`], a TCP stream inherits the listener's TCP_NODELAY setting.
    pub fn accept(&self) -> io::Result<MioStream> {
        match self {
            MioListener::Tcp(listener) => Ok(MioStream::Tcp(listener.accept()?.0)),
            MioListener::Unix(listener, _) => Ok(MioStream::Unix(listener.accept()?.0)),
        }
    }
}

/// A non-blocking accepted connection registered with a mio `Poll`.
#[derive(Debug)]
pub enum MioStream {
    Tcp(mio::net::TcpStream),
    Unix(mio::net::UnixStream),
}

impl MioStream {
    /// Shuts down reading, writing or both.
    pub fn shutdown(&self, how: net::Shutdown) -> io::Result<()> {
        match self {
            MioStream::Tcp(stream) => stream.shutdown(how),
            MioStream::Unix(stream) => stream.shutdown(how),
        }
    }
}

impl Read for MioStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            MioStream::Tcp(stream) => stream.read(buf),
            MioStream::Unix(stream) => stream.read(buf),
        }
    }
}

impl Write for MioStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            MioStream::Tcp(stream) => stream.write(buf),
            MioStream::Unix(stream) => stream.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

// Registration forwards to the socket inside, so a model registers either kind the same way.

impl MioListener {
    fn source(&mut self) -> &mut dyn Source {
        match self {
            MioListener::Tcp(listener) => listener,
            MioListener::Unix(listener, _) => listener,
        }
    }
}

impl MioStream {
    fn source(&mut self) -> &mut dyn Source {
        match self {
            MioStream::Tcp(stream) => stream,
            MioStream::Unix(stream) => stream,
        }
    }
}

/// Implements mio's [`Source`] for one of the enums above by forwarding every call to the
/// socket that its `source()` returns. (A macro, because Rust will not let this crate
/// implement mio's trait for every type with a `source()` at once.)
macro_rules! forward_source {
    ($type:ty) => {
        impl Source for $type {
            fn register(
                &mut self,
                registry: &Registry,
                token: Token,
                interests: Interest,
            ) -> io::Result<()> {
                self.source().register(registry, token, interests)
            }
            fn reregister(
                &mut self,
                registry: &Registry,
                token: Token,
                interests: Interest,
            ) -> io::Result<()> {
                self.source().reregister(registry, token, interests)
            }
            fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
                self.source().deregister(registry)
            }
        }
    };
}

forward_source!(MioListener);
forward_source!(MioStream);

// The descriptors themselves, for a loop that waits with poll(2) instead of a mio `Poll`.

impl AsFd for MioListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            MioListener::Tcp(listener) => listener.as_fd(),
            MioListener::Unix(listener, _) => listener.as_fd(),
        }
    }
}

impl AsFd for MioStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            MioStream::Tcp(stream) => stream.as_fd(),
            MioStream::Unix(stream) => stream.as_fd(),
        }
    }
}
