//! Receiving datagrams in batches with `recvmmsg`: every echo waiting on a socket in one system
//! call, and, when fewer came than there was room for, the knowledge that the socket is drained
//! without the extra `recv` that would only say `EAGAIN`. At one datagram in flight per socket
//! that is one system call of the three a `recv` loop makes per echo (two `recv`s and a
//! `send`).

use std::io;
use std::os::fd::RawFd;

/// The most datagrams one call takes.
const MAX_BATCH: usize = 64;
/// The batch's buffers stay under this, whatever the datagram size.
const MAX_BYTES: usize = 4 << 20;

/// Buffers and headers for one `recvmmsg` call, reused for every call of a load thread.
pub struct RecvBatch {
    /// `count` buffers of `slot` bytes each, back to back.
    bufs: Vec<u8>,
    /// One byte more than a message, so an echo longer than what was sent shows as longer
    /// (the kernel cuts it to the buffer and the length still differs) instead of fitting.
    slot: usize,
    /// Never read here, but the headers point into it: kept alive (and unmoved) with them.
    _iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("slot", &self.slot)
            .field("count", &self.headers.len())
            .finish()
    }
}

impl RecvBatch {
    /// Room for `wanted` datagrams of `size` bytes (fewer if that would be large).
    pub fn new(size: usize, wanted: usize) -> RecvBatch {
        let slot = size + 1;
        let count = wanted.clamp(1, MAX_BATCH).min((MAX_BYTES / slot).max(1));
        let mut bufs = vec![0u8; slot * count];
        let mut iovecs: Vec<libc::iovec> = bufs
            .chunks_exact_mut(slot)
            .map(|buf| libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: slot })
            .collect();
        let headers = iovecs
            .iter_mut()
            .map(|iov| {
                // SAFETY: mmsghdr is plain old data (integers and pointers), for which all
                // zeros is a valid value: no address, no control data, no flags.
                let mut header: libc::mmsghdr = unsafe { std::mem::zeroed() };
                header.msg_hdr.msg_iov = iov;
                header.msg_hdr.msg_iovlen = 1;
                header
            })
            .collect();
        // The pointers point into the vectors' heap buffers, which never move or grow: the
        // vectors are moved into the struct, not reallocated.
        RecvBatch { bufs, slot, _iovecs: iovecs, headers }
    }

    /// Receives the datagrams waiting on the non-blocking socket `fd`, as many as there is
    /// room for; returns how many. Fewer than [`RecvBatch::capacity`] means the socket is
    /// drained. An error (`WouldBlock` when nothing was waiting) means none were received.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        // SAFETY: `headers` holds `headers.len()` initialised mmsghdr, each pointing to one
        // iovec of `_iovecs` that describes `slot` writable bytes inside `bufs`; all three live
        // in `self`, borrowed mutably for the call, and none has moved since `new`. No address
        // or control buffers are given, and a null timeout means none.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.headers.as_mut_ptr(),
                self.headers.len() as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    /// How many datagrams one call can take.
    pub fn capacity(&self) -> usize {
        self.headers.len()
    }

    /// The `k`-th datagram of the last call.
    pub fn get(&self, k: usize) -> &[u8] {
        let len = (self.headers[k].msg_len as usize).min(self.slot);
        &self.bufs[k * self.slot..k * self.slot + len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_batch_takes_what_waits_and_says_when_drained() {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client.connect(server.local_addr().unwrap()).unwrap();
        server.set_nonblocking(true).unwrap();
        let mut batch = RecvBatch::new(8, 4);
        assert_eq!(batch.capacity(), 4);
        let err = batch.recv(server.as_raw_fd()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        for message in [&b"12345678"[..], b"abc", b"0123456789"] {
            client.send(message).unwrap();
        }
        let mut got: Vec<Vec<u8>> = Vec::new();
        let started = std::time::Instant::now();
        while got.len() < 3 && started.elapsed() < std::time::Duration::from_secs(5) {
            let n = batch.recv(server.as_raw_fd()).unwrap_or(0);
            // Never more than were sent, so never a full batch: each call drained the socket.
            assert!(n < batch.capacity());
            got.extend((0..n).map(|k| batch.get(k).to_vec()));
        }
        assert_eq!(got[0], b"12345678");
        assert_eq!(got[1], b"abc");
        // Longer than a message: cut to one byte more, so it still differs in length.
        assert_eq!(got[2], b"012345678");
    }
}
