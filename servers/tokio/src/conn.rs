//! One connection's task: wait for the client to speak, then read and write back until it
//! closes.
//!
//! This is the whole per-connection program, and it reads like the thread model's blocking
//! loop (`echobench_common::echo`) with `.await` after each call. That is what tokio sells:
//! the state that the mio model keeps by hand in a `Connection` (pending bytes, whether to
//! read, whether to ask for WRITABLE) is here the place where the future is suspended.

use std::future::Future;
use std::io;
use std::mem::MaybeUninit;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use echobench_common::conn::report;
use echobench_common::would_block;
use socket2::SockRef;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, Interest};
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::Notify;

/// What the accept loop and the connection tasks share: how many connections are open, and a
/// way for a closing connection to tell a paused accept loop that a descriptor came free.
#[derive(Debug, Default)]
pub(crate) struct Books {
    /// Connections open now. Only the accept loop adds (so its check against `--max-conns`
    /// cannot race another adder); each connection's [`Ticket`] subtracts as it ends.
    open: AtomicUsize,
    /// Notified by every connection that ends. `notify_one` stores a permit when nobody is
    /// waiting, so a close that happens just before the accept loop starts to wait still
    /// ends its pause; a stale permit costs at most one extra `accept` that fails again.
    freed: Notify,
}

impl Books {
    /// Connections open now.
    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Waits until some connection has closed since the last call.
    pub(crate) async fn freed(&self) {
        self.freed.notified().await;
    }

    /// Counts a connection in; the ticket counts it out again when dropped.
    pub(crate) fn admit(self: &Arc<Self>) -> Ticket {
        self.open.fetch_add(1, Ordering::AcqRel);
        Ticket { books: Arc::clone(self) }
    }
}

/// One open connection's place in the [`Books`]. Dropping it counts the connection out.
#[derive(Debug)]
pub(crate) struct Ticket {
    books: Arc<Books>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.books.open.fetch_sub(1, Ordering::AcqRel);
        self.books.freed.notify_one();
    }
}

/// The two kinds of accepted socket, as the echo needs them: a tokio byte stream that can
/// also wait for the client's first bytes without taking them. (Tokio's `TcpStream` and
/// `UnixStream` share no trait for readiness, so this one names what both have.)
pub(crate) trait Socket: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Resolves once tokio believes the socket is readable. It may be wrong: see
    /// [`wait_for_bytes`].
    fn ready_to_read(&self) -> impl Future<Output = io::Result<()>> + Send;

    /// Peeks at one byte without taking it: `Ok(1)` when bytes wait, `Ok(0)` at the client's
    /// FIN, `WouldBlock` when tokio's readiness was wrong (which also clears it).
    fn try_peek(&self) -> io::Result<usize>;
}

/// Implements [`Socket`] for a tokio stream type, whose methods of these names agree.
macro_rules! socket {
    ($type:ty) => {
        impl Socket for $type {
            fn ready_to_read(&self) -> impl Future<Output = io::Result<()>> + Send {
                self.readable()
            }

            fn try_peek(&self) -> io::Result<usize> {
                // MSG_PEEK through socket2: tokio's `UnixStream` has no `peek` of its own.
                let peek = || SockRef::from(self).peek(&mut [MaybeUninit::uninit()]);
                self.try_io(Interest::READABLE, peek)
            }
        }
    };
}

socket!(TcpStream);
socket!(UnixStream);

/// Waits until the client has sent something (or closed), without reading it.
///
/// `readable()` alone is not enough: tokio marks a freshly accepted stream readable and
/// writable before the kernel has said anything, so that a first read costs no trip through
/// the reactor. For an echo, that guess made every silent client allocate its buffer (10 KiB
/// of resident memory per connection with the default 16 KiB, measured here) and pay a
/// read(2) that returned EAGAIN. A one-byte peek checks the guess: it fails with
/// `WouldBlock`, which clears the false readiness, and the task then really waits.
async fn wait_for_bytes<S: Socket>(stream: &S) -> io::Result<()> {
    loop {
        stream.ready_to_read().await?;
        match stream.try_peek() {
            Ok(_) => return Ok(()),
            Err(err) if would_block(&err) => continue,
            Err(err) => return Err(err),
        }
    }
}

/// The body of a connection's task: echo until the client is done, then count the
/// connection out, then close it.
///
/// The order of the last two matters. A client that reconnects the moment it reads our FIN
/// must find its old connection already gone from `--max-conns`, so the ticket is dropped
/// first and the stream (whose drop sends the FIN) after it. At shutdown the runtime drops
/// this future wherever it waits instead; then the order does not matter, as nobody counts.
pub(crate) async fn serve<S: Socket>(mut stream: S, limit: usize, ticket: Ticket) {
    if let Err(err) = echo(&mut stream, limit).await {
        // A reset or a vanished client ends only this connection, and is not worth a line.
        report(&err);
    }
    drop(ticket);
    drop(stream);
}

/// Echoes everything the client sends until it half-closes, through a buffer of `limit`
/// bytes, and returns the bytes echoed.
///
/// - **Idle costs no buffer.** The task first waits for the client's first bytes, and only
///   then allocates its buffer: a client that connects and says nothing costs the task and
///   the socket, not `limit` bytes. (Once it has spoken, the buffer stays until close:
///   giving it back whenever the socket runs dry would mean an allocation per message.)
/// - **Backpressure** is the shape of the loop: nothing more is read until `write_all` has
///   handed the last read to the kernel. A client that sends without reading fills its
///   socket's send buffer, `write_all` waits (the task is parked, its waker registered for
///   WRITABLE), the receive window closes and the client's own kernel throttles it. The
///   server holds at most `limit` bytes for it.
/// - **Half-close.** A read of 0 is the client's FIN. Every byte before it has already been
///   written back, so returning (and closing, which sends our FIN) loses nothing.
/// - **Fairness** is tokio's cooperative budget: every read and write that makes progress
///   spends one unit of the task's budget (128 per poll), and at 0 the next operation
///   reports `Pending` even though the socket is ready, so that a streaming client yields
///   the worker after about 64 round trips through the buffer.
pub(crate) async fn echo<S: Socket>(stream: &mut S, limit: usize) -> io::Result<u64> {
    wait_for_bytes(stream).await?;
    let mut buf = vec![0u8; limit];
    let mut echoed = 0u64;
    loop {
        // Tokio's read returns once some bytes are there, like read(2). When the kernel
        // gave fewer than asked, tokio takes the socket to be empty and clears its readiness,
        // so the next read waits for the reactor instead of calling read(2) to hear EAGAIN.
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(echoed);
        }
        stream.write_all(&buf[..n]).await?;
        echoed += n as u64;
    }
}
