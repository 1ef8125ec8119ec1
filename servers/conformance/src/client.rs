//! The client side of the cases: connecting, round trips, and the payloads they send.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// How long any single read or write may block. A server that stops answering fails the
/// case after this long instead of hanging the suite; a working one answers in microseconds,
/// so the margin covers a busy shared machine many times over.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to `addr` with TCP_NODELAY (so our own small writes leave at once) and
/// [`IO_TIMEOUT`] on reads and writes.
pub fn connect(addr: SocketAddr) -> TcpStream {
    try_connect(addr).unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"))
}

/// [`connect`] that reports failure instead of panicking, for cases running many clients.
pub fn try_connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(stream)
}

/// Writes `payload` in one call and reads back exactly as many bytes; returns them.
pub fn try_round_trip<S: Read + Write>(stream: &mut S, payload: &[u8]) -> io::Result<Vec<u8>> {
    stream.write_all(payload)?;
    let mut back = vec![0u8; payload.len()];
    stream.read_exact(&mut back)?;
    Ok(back)
}

/// Writes `payload`, reads it back, and asserts the echo is byte-identical.
pub fn round_trip<S: Read + Write>(stream: &mut S, payload: &[u8]) {
    let back = try_round_trip(stream, payload)
        .unwrap_or_else(|e| panic!("echo of {} bytes failed: {e}", payload.len()));
    assert_same(payload, &back);
}

/// Asserts that `got` equals `sent`, naming the first differing byte rather than dumping
/// megabytes of both.
pub fn assert_same(sent: &[u8], got: &[u8]) {
    if let Some(at) = sent.iter().zip(got).position(|(a, b)| a != b) {
        panic!(
            "echo differs at byte {at} of {}: sent {:#04x}, got {:#04x}",
            sent.len(),
            sent[at],
            got[at]
        );
    }
    assert_eq!(got.len(), sent.len(), "echo has {} bytes, {} were sent", got.len(), sent.len());
}

/// Writes `data` without reading anything, until all of it is written, `limit` passes, or
/// the writes stall: no progress for 300 ms, which is what a server that bounds its
/// buffering causes once the buffers along the way are full. Returns how many bytes were
/// written (the first that many of `data`). The stream is non-blocking meanwhile.
pub fn write_until_stalled(stream: &TcpStream, data: &[u8], limit: Duration) -> usize {
    stream.set_nonblocking(true).unwrap();
    let started = Instant::now();
    let mut sent = 0;
    while sent < data.len() && started.elapsed() < limit {
        match (&*stream).write(&data[sent..]) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if !writable_within(stream, Duration::from_millis(300)) {
                    break;
                }
            }
            Err(e) => panic!("a client's write failed after {sent} bytes: {e}"),
        }
    }
    stream.set_nonblocking(false).unwrap();
    sent
}

/// Waits until `stream` can take more bytes, or `timeout` passes (false).
fn writable_within(stream: &TcpStream, timeout: Duration) -> bool {
    let mut fds = [PollFd::new(stream.as_fd(), PollFlags::POLLOUT)];
    let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
    matches!(poll(&mut fds, timeout), Ok(1..))
}

/// Whether the server closed this connection: end of file, or a reset if it had unread
/// bytes. A read timeout (the connection still open) is not a close, nor is data. Also used
/// by the event-loop models' own tests.
pub fn closed_by_server<S: Read>(stream: &mut S) -> bool {
    match stream.read(&mut [0u8; 1]) {
        Ok(n) => n == 0,
        Err(err) => err.kind() == io::ErrorKind::ConnectionReset,
    }
}

/// Reads until end of file, failing on a timeout or error instead of returning early.
pub fn read_to_eof<S: Read>(stream: &mut S) -> io::Result<Vec<u8>> {
    let mut back = Vec::new();
    stream.read_to_end(&mut back)?;
    Ok(back)
}

/// `len` pseudo-random bytes (xorshift from `seed`): no repeating period, so a dropped,
/// duplicated or reordered chunk anywhere in the echo is caught.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

/// A unique path for a Unix socket under the temporary directory, so parallel cases (and
/// parallel models) never collide.
pub fn unique_socket_path(tag: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("echobench-{tag}-{}-{n}.sock", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_differ_by_seed_and_do_not_repeat() {
        let a = pattern(1 << 16, 1);
        assert_eq!(a.len(), 1 << 16);
        assert_ne!(a, pattern(1 << 16, 2));
        assert_ne!(a[..4096], a[4096..8192]);
    }

    #[test]
    #[should_panic(expected = "differs at byte 2")]
    fn a_wrong_byte_is_named() {
        assert_same(b"abcd", b"abXd");
    }
}
