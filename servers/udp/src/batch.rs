//! Moving up to K datagrams per system call: `recvmmsg(2)` and `sendmmsg(2)`.
//!
//! Both calls take an array of `mmsghdr`, each a `msghdr` (where the datagram's bytes go,
//! where the sender's address goes) plus the length the kernel filled in. One `recvmmsg`
//! receives up to K datagrams, from any senders, into K buffers; one `sendmmsg` then sends
//! each back to its own sender. A [`Batch`] owns the K buffers, the K addresses and both
//! header arrays, made once for the worker's life: nothing is allocated per datagram.
//!
//! Why libc and not nix's `recvmmsg` with `MultiHeaders`: `msg_namelen` is an in-out field
//! (going in, the room for the address; coming out, the address's real length), and nix 0.31
//! refills only the data pointers between calls. After a slot receives a short address (a
//! Unix client with a short path, or none), every later datagram in that slot would have its
//! sender's address cut to that length, and the echo would go nowhere. (nix-rust/nix#2813
//! reports the same for `msg_controllen`.) Here every header is rebuilt before each call.

use std::io;
use std::mem;
use std::os::fd::RawFd;
use std::ptr;

use crate::socket::MAX_DATAGRAM;

/// K buffers of [`MAX_DATAGRAM`] bytes and the headers that point into them.
#[derive(Debug)]
pub struct Batch {
    /// K slots of [`MAX_DATAGRAM`] bytes, one after another.
    buffers: Vec<u8>,
    /// The sender of the datagram in each slot; room for any address family.
    peers: Vec<libc::sockaddr_storage>,
    /// One `iovec` per slot, for receiving (the whole slot) and for sending (its datagram).
    recv_iovs: Vec<libc::iovec>,
    send_iovs: Vec<libc::iovec>,
    /// The header arrays the two calls take.
    recv_hdrs: Vec<libc::mmsghdr>,
    send_hdrs: Vec<libc::mmsghdr>,
    /// How many datagrams the last `recv` took, and how many of them are queued to send.
    received: usize,
    queued: usize,
}

/// What one `recv` took: how many datagrams, and how many of them arrived cut short (those
/// are dropped, not echoed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Took {
    pub datagrams: usize,
    pub truncated: usize,
}

impl Batch {
    /// A batch of `k` slots (at least one): `k` times [`MAX_DATAGRAM`] bytes of buffers.
    pub fn new(k: usize) -> Batch {
        let k = k.max(1);
        // SAFETY: these are plain C structs of integers and pointers, for which all zeros
        // is a valid value (null pointers, zero lengths); every pointer is set before use.
        let zeroed = || unsafe { mem::zeroed::<libc::mmsghdr>() };
        Batch {
            buffers: vec![0; k * MAX_DATAGRAM],
            // SAFETY: as above: an all-zero sockaddr_storage is a valid (AF_UNSPEC) value.
            peers: vec![unsafe { mem::zeroed() }; k],
            recv_iovs: vec![libc::iovec { iov_base: ptr::null_mut(), iov_len: 0 }; k],
            send_iovs: vec![libc::iovec { iov_base: ptr::null_mut(), iov_len: 0 }; k],
            recv_hdrs: (0..k).map(|_| zeroed()).collect(),
            send_hdrs: (0..k).map(|_| zeroed()).collect(),
            received: 0,
            queued: 0,
        }
    }

    /// Receives up to K datagrams without waiting (`WouldBlock` if none is queued), and
    /// queues the whole ones to be echoed to their senders by [`Batch::send`].
    pub fn recv(&mut self, fd: RawFd) -> io::Result<Took> {
        let k = self.recv_hdrs.len();
        for i in 0..k {
            let slot = &mut self.buffers[i * MAX_DATAGRAM..(i + 1) * MAX_DATAGRAM];
            self.recv_iovs[i] =
                libc::iovec { iov_base: slot.as_mut_ptr().cast(), iov_len: slot.len() };
            let hdr = &mut self.recv_hdrs[i].msg_hdr;
            hdr.msg_name = (&mut self.peers[i] as *mut libc::sockaddr_storage).cast();
            // Reset on every call: the kernel wrote the last sender's length here.
            hdr.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdr.msg_iov = &mut self.recv_iovs[i];
            hdr.msg_iovlen = 1;
            hdr.msg_control = ptr::null_mut();
            hdr.msg_controllen = 0;
            hdr.msg_flags = 0;
            self.recv_hdrs[i].msg_len = 0;
        }
        self.received = 0;
        self.queued = 0;
        // SAFETY: `recv_hdrs` holds `k` headers, each pointing at its own slot of `buffers`
        // (MAX_DATAGRAM bytes, as its iovec says), its own `sockaddr_storage` (with its true
        // size in msg_namelen) and its own iovec; all are owned by `self`, borrowed mutably
        // for the whole call, and not moved during it. No timeout pointer is passed.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.recv_hdrs.as_mut_ptr(),
                k as libc::c_uint,
                libc::MSG_DONTWAIT,
                ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        self.received = n as usize;
        let mut truncated = 0;
        for i in 0..self.received {
            let got = &self.recv_hdrs[i];
            // MSG_TRUNC in a header's flags: the datagram was longer than its slot, and the
            // rest is gone. Echoing the part we have would change the payload: drop it.
            if got.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                truncated += 1;
                continue;
            }
            let j = self.queued;
            self.send_iovs[j] =
                libc::iovec { iov_base: self.recv_iovs[i].iov_base, iov_len: got.msg_len as usize };
            let send = &mut self.send_hdrs[j].msg_hdr;
            send.msg_name = got.msg_hdr.msg_name;
            send.msg_namelen = got.msg_hdr.msg_namelen;
            send.msg_iov = &mut self.send_iovs[j];
            send.msg_iovlen = 1;
            send.msg_control = ptr::null_mut();
            send.msg_controllen = 0;
            send.msg_flags = 0;
            self.queued += 1;
        }
        Ok(Took { datagrams: self.received, truncated })
    }

    /// How many datagrams the last [`Batch::recv`] queued for sending.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// Sends the queued echoes from the `from`-th on, without waiting, and returns how many
    /// went out: all of them, or those before the first that failed. Sending that one again
    /// returns its error, so the caller counts it and goes on from the next.
    pub fn send(&mut self, fd: RawFd, from: usize) -> io::Result<usize> {
        if from >= self.queued {
            return Ok(0);
        }
        let count = (self.queued - from) as libc::c_uint;
        // SAFETY: the headers `from..queued` were filled by the last `recv` and point into
        // `buffers`, `peers` and `send_iovs`, all owned by `self` and untouched since (the
        // only `&mut self` methods are `recv` and this one). The kernel only reads them, and
        // writes each header's msg_len.
        let n = unsafe {
            libc::sendmmsg(fd, self.send_hdrs[from..].as_mut_ptr(), count, libc::MSG_DONTWAIT)
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixDatagram;

    #[test]
    fn each_datagram_goes_back_to_its_own_sender_even_after_a_shorter_address() {
        // Two Unix clients whose paths differ in length, through one slot each time: with a
        // msg_namelen left over from the short path, the long one's echo would be lost.
        let dir = std::env::temp_dir();
        let pid = std::process::id();
        let server_path = dir.join(format!("echobench-batch-{pid}.sock"));
        let short = dir.join(format!("eb{pid}.s"));
        let long = dir.join(format!("echobench-batch-a-much-longer-client-path-{pid}.sock"));
        for p in [&server_path, &short, &long] {
            let _ = std::fs::remove_file(p);
        }
        let server = UnixDatagram::bind(&server_path).unwrap();
        let clients = [UnixDatagram::bind(&short).unwrap(), UnixDatagram::bind(&long).unwrap()];
        let mut batch = Batch::new(1);
        for (i, client) in clients.iter().enumerate() {
            client.send_to(&[i as u8; 3], &server_path).unwrap();
            // Unix datagrams are queued before send_to returns.
            assert_eq!(
                batch.recv(server.as_raw_fd()).unwrap(),
                Took { datagrams: 1, truncated: 0 }
            );
            assert_eq!(batch.send(server.as_raw_fd(), 0).unwrap(), 1);
            let mut back = [0u8; 8];
            client.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
            assert_eq!(client.recv(&mut back).unwrap(), 3, "client {i}");
            assert_eq!(back[..3], [i as u8; 3]);
        }
        for p in [&server_path, &short, &long] {
            let _ = std::fs::remove_file(p);
        }
    }
}
