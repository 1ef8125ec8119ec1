//! One connection's echo: the bytes it holds, and which of its requests are in the kernel.
//!
//! A completion-based connection is a different state machine from the readiness one in
//! `servers/common/src/conn.rs`. There is no "try to read": bytes simply arrive, already
//! read, in a provided buffer, and the loop copies them into `pending` and gives the buffer
//! straight back to the kernel. There is no "try to write" either: a send is a request that
//! takes a buffer away until its completion says how much went out. So the state is mostly
//! bookkeeping of ownership:
//!
//! - `pending`: bytes received and not yet handed to a send. Ours to append to.
//! - `sending`: the buffer of the one send in flight. From the moment the send is submitted
//!   until its completion, the kernel may read it at any time, so it must not be written,
//!   moved or freed; only the completion gives it back. One send at a time keeps the echo
//!   in order (two sends in flight on one socket could complete in either order).
//! - which requests are in flight: the multishot receive, the send, a cancellation. A
//!   connection is freed only once none is, so that no completion can arrive for a slot
//!   that has been reused, and no request can point into freed memory.
//!
//! Backpressure is a bound on `held()`, the bytes in `pending` and `sending` together.
//! Each receive is armed with a byte limit equal to the room left, so the kernel itself
//! stops delivering before the bound is crossed (see `recv_limits`).

use std::os::fd::OwnedFd;

/// One open connection.
#[derive(Debug)]
pub struct Conn {
    /// The socket. Dropping the connection closes it, which sends our FIN (or a reset, if
    /// unread bytes are left).
    pub fd: OwnedFd,
    /// Bytes received, waiting for the send in flight to finish.
    pending: Vec<u8>,
    /// The bytes of the send in flight (owned by the kernel until its completion), then the
    /// spare buffer that `pending` swaps with. Kept between messages so that a
    /// ping-pong connection allocates nothing per message.
    sending: Vec<u8>,
    /// How much of `sending` the kernel has already sent (a send can complete short).
    /// `--buffer` is at most 1 GiB, so 32 bits are enough, and they keep the slot at 64 bytes.
    sent: u32,
    pub send_in_flight: bool,
    pub recv_armed: bool,
    /// A cancellation of this connection's requests is in flight.
    pub cancel_in_flight: bool,
    /// The client shut down its side (a receive returned 0): no more receives.
    pub read_closed: bool,
    /// The connection failed: its requests are being cancelled, and it closes once they end.
    pub closing: bool,
}

/// Buffers that grew past this are freed once they drain, so that a connection that once
/// streamed does not keep `--buffer` bytes for the rest of its life; smaller ones are kept,
/// so that small echoes never touch the allocator.
const KEEP_CAPACITY: usize = 4096;

impl Conn {
    pub fn new(fd: OwnedFd) -> Conn {
        Conn {
            fd,
            pending: Vec::new(),
            sending: Vec::new(),
            sent: 0,
            send_in_flight: false,
            recv_armed: false,
            cancel_in_flight: false,
            read_closed: false,
            closing: false,
        }
    }

    /// Bytes received and not yet echoed: what `--buffer` bounds.
    pub fn held(&self) -> usize {
        self.pending.len() + self.sending.len() - self.sent as usize
    }

    /// Whether any request of this connection is in the kernel.
    pub fn busy(&self) -> bool {
        self.recv_armed || self.send_in_flight || self.cancel_in_flight
    }

    /// Takes a copy of bytes just received (the provided buffer goes back to the kernel).
    pub fn received(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
    }

    /// Starts the next send if none is in flight and bytes are pending: moves `pending` into
    /// `sending` and returns the bytes the send must carry. The caller submits the send,
    /// which from then on owns them.
    pub fn start_send(&mut self) -> Option<(*const u8, u32)> {
        if self.send_in_flight || self.pending.is_empty() {
            return None;
        }
        debug_assert!(self.sending.is_empty());
        std::mem::swap(&mut self.pending, &mut self.sending);
        self.sent = 0;
        self.send_in_flight = true;
        Some(self.unsent())
    }

    /// Records that the send in flight completed with `n` bytes sent. Returns the rest, to
    /// be sent again, if it went out short; otherwise the send buffer is free again.
    pub fn send_done(&mut self, n: usize) -> Option<(*const u8, u32)> {
        self.send_in_flight = false;
        self.sent += n as u32;
        if (self.sent as usize) < self.sending.len() {
            self.send_in_flight = true;
            return Some(self.unsent());
        }
        self.sending.clear();
        self.sent = 0;
        if self.sending.capacity() > KEEP_CAPACITY {
            self.sending = Vec::new();
        }
        if self.pending.is_empty() && self.pending.capacity() > KEEP_CAPACITY {
            self.pending = Vec::new();
        }
        None
    }

    /// A send failed or was cancelled: its buffer is ours again, and its bytes are lost
    /// with the connection.
    pub fn send_failed(&mut self) {
        self.send_in_flight = false;
    }

    fn unsent(&self) -> (*const u8, u32) {
        let rest = &self.sending[self.sent as usize..];
        // `held()` never exceeds `--buffer`, which is at most 1 GiB, so the length fits.
        (rest.as_ptr(), rest.len() as u32)
    }

    /// Whether a receive should be armed now, given the `--buffer` bound `limit`. Not while
    /// a cancellation is in flight: it names the receive by its `user_data`, which a new
    /// receive would share.
    pub fn wants_recv(&self, limit: usize) -> bool {
        !self.recv_armed
            && !self.cancel_in_flight
            && !self.read_closed
            && !self.closing
            && self.held() < limit
    }

    /// Whether the echo is complete: the client has closed its side, every byte went back,
    /// and nothing is in flight. The connection can be closed.
    pub fn finished(&self) -> bool {
        self.read_closed && self.held() == 0 && !self.busy()
    }
}

/// The limits for a multishot receive armed when `room` bytes (at least 1) may still be
/// received, with provided buffers of `buffer_size` bytes: each receive takes at most
/// `per_recv` bytes, and the kernel ends the request once `total` bytes have come in.
///
/// The kernel checks the total only after a receive, and one receive may fill up to
/// `per_recv`, so the last receive may start with `total - 1` bytes received: the request
/// takes in at most `total - 1 + per_recv` bytes. Choosing `total = room - per_recv + 1`
/// makes that exactly `room`: the connection never holds more than `--buffer`.
pub fn recv_limits(room: usize, buffer_size: usize) -> (u32, u32) {
    debug_assert!(room > 0 && buffer_size > 0);
    let per_recv = room.min(buffer_size);
    let total = room - per_recv + 1;
    (per_recv as u32, total.min(u32::MAX as usize) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Conn {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        Conn::new(OwnedFd::from(a))
    }

    #[test]
    fn a_connection_costs_one_small_slot() {
        // The essay promises 64 bytes per connection in user space, besides its buffers.
        let size = std::mem::size_of::<Conn>();
        assert!(size <= 64, "a connection takes {size} bytes");
    }

    #[test]
    fn a_receive_can_never_take_more_than_the_room_left() {
        for room in [1, 2, 100, 4095, 4096, 4097, 16384, 1 << 20] {
            for size in [1, 64, 4096] {
                let (per_recv, total) = recv_limits(room, size);
                assert!(per_recv >= 1 && total >= 1);
                assert!(per_recv as usize <= size);
                assert!(total as usize - 1 + per_recv as usize <= room, "room {room} size {size}");
            }
        }
    }

    #[test]
    fn sends_go_one_at_a_time_in_order_and_resume_after_a_short_one() {
        let mut c = conn();
        c.received(b"hello");
        let (ptr, len) = c.start_send().unwrap();
        assert_eq!(len, 5);
        // While the send is in flight, new bytes wait, and no second send starts.
        c.received(b" world");
        assert!(c.start_send().is_none());
        assert_eq!(c.held(), 11);
        // The kernel took 2 bytes: the other 3 go again, from where it stopped.
        let (rest, rest_len) = c.send_done(2).unwrap();
        assert_eq!((rest, rest_len), (ptr.wrapping_add(2), 3));
        assert!(c.send_done(3).is_none());
        assert_eq!(c.held(), 6);
        let (ptr, len) = c.start_send().unwrap();
        // SAFETY: the buffer belongs to `c`, which is alive and has not been changed since.
        assert_eq!(unsafe { std::slice::from_raw_parts(ptr, len as usize) }, b" world");
        assert!(c.send_done(6).is_none());
        assert_eq!(c.held(), 0);
    }

    #[test]
    fn a_connection_finishes_only_with_nothing_held_or_in_flight() {
        let mut c = conn();
        c.received(b"x");
        c.read_closed = true;
        assert!(!c.finished());
        c.start_send().unwrap();
        assert!(!c.finished());
        c.send_done(1);
        assert!(c.finished());
        assert!(!c.wants_recv(10), "no receive after the client's FIN");
    }
}
