//! One UDP socket's books: the datagrams it has sent, which of them are answered, lost or
//! corrupt, and the judging of every echo that comes back.
//!
//! Datagrams are numbered in the order they are sent, so the socket keeps one slot per
//! sequence number in a ring: from the oldest still waiting for an echo to the newest, and
//! behind them the outcomes of the last [`HISTORY`] settled, which is what tells a duplicate
//! (its datagram was answered) from a late echo (its datagram was declared lost). A slot is 24
//! bytes, so the history costs a socket about 6 KiB, on top of what it has in flight. The
//! per-datagram path allocates nothing once the ring has grown to that.

use std::collections::VecDeque;
use std::io;
use std::os::fd::AsRawFd;

use socket2::Socket;

use super::Counters;
use super::batch::SendBatch;
use crate::meter::Meter;
use crate::payload;

/// Outcomes kept behind the oldest waiting datagram, to judge duplicates and late echoes: an
/// echo of an older one is `unexpected`.
const HISTORY: u64 = 256;

/// A datagram sent and not answered yet. Nanoseconds are since the run's start.
#[derive(Debug, Clone, Copy)]
struct Sent {
    /// When the schedule wanted it sent (open loop), else when its slot came free.
    intended_ns: u64,
    /// When `send` was called: the uncorrected latency's start, and the timeout's.
    sent_ns: u64,
    /// Sent inside the measured window (see `counts` for the warm-up's datagrams).
    measured: bool,
}

#[derive(Debug, Clone, Copy)]
enum Slot {
    Waiting(Sent),
    /// `counted`: the datagram belongs to the window, so what later echoes of it say counts too.
    Done {
        outcome: Outcome,
        counted: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Received,
    Corrupt,
    Lost,
}

/// Why datagrams still waiting are given up, which decides how their latency is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// No echo within `--timeout` (or by the end of the drain): recorded at `--timeout` at least.
    Timeout,
    /// The run was cancelled: recorded at their age, with no floor.
    Cancelled,
}

#[derive(Debug)]
pub struct Flow {
    /// Global socket number, written into every datagram it sends.
    pub id: u32,
    /// `None` if the socket could not be opened.
    pub socket: Option<Socket>,
    /// Closed loop: datagrams owed to the pipeline, sent when the socket takes them.
    pub want: usize,
    /// Closed loop: the last send found the socket buffer full, and the socket is registered
    /// for writable events until the owed datagrams are out.
    pub blocked: bool,
    next_seq: u64,
    /// The sequence number of `slots[0]`.
    base: u64,
    slots: VecDeque<Slot>,
    /// No datagram below this is still waiting.
    oldest: u64,
    /// The highest sequence number echoed intact, for reordering.
    highest: Option<u64>,
}

impl Flow {
    pub fn new(id: u32, socket: Option<Socket>, in_flight: usize) -> Flow {
        Flow {
            id,
            socket,
            want: 0,
            blocked: false,
            next_seq: 0,
            base: 0,
            slots: VecDeque::with_capacity(in_flight + 1),
            oldest: 0,
            highest: None,
        }
    }

    /// Sends the next datagram, built in `buf` (whose length is the message size). On success
    /// it waits for its echo; on failure nothing was sent and its number is not used.
    pub fn send(
        &mut self,
        buf: &mut [u8],
        intended_ns: u64,
        now_ns: u64,
        measured: bool,
        meter: &mut Meter,
    ) -> io::Result<()> {
        let Some(socket) = self.socket.as_ref() else {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the socket could not be opened",
            ));
        };
        payload::fill(self.id, self.next_seq, buf);
        // A datagram goes whole or not at all: no partial sends to handle.
        socket.send(buf)?;
        self.slots.push_back(Slot::Waiting(Sent { intended_ns, sent_ns: now_ns, measured }));
        self.next_seq += 1;
        meter.in_flight += 1;
        if measured {
            meter.counters.scheduled += 1;
            meter.counters.sent += 1;
        }
        Ok(())
    }

    /// Sends up to `n` next datagrams at once, built in `batch`; returns how many went (each
    /// then waits for its echo). An error means none went.
    pub fn send_batch(
        &mut self,
        batch: &mut SendBatch,
        n: usize,
        now_ns: u64,
        measured: bool,
        meter: &mut Meter,
    ) -> io::Result<usize> {
        let Some(socket) = self.socket.as_ref() else {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the socket could not be opened",
            ));
        };
        let n = n.min(batch.capacity());
        for k in 0..n {
            payload::fill(self.id, self.next_seq + k as u64, batch.buf_mut(k));
        }
        let sent = batch.send(socket.as_raw_fd(), n)?;
        for _ in 0..sent {
            self.slots.push_back(Slot::Waiting(Sent {
                intended_ns: now_ns,
                sent_ns: now_ns,
                measured,
            }));
        }
        self.next_seq += sent as u64;
        meter.in_flight += sent as u64;
        if measured {
            meter.counters.scheduled += sent as u64;
            meter.counters.sent += sent as u64;
        }
        Ok(sent)
    }

    /// Judges one echo that arrived at `now_ns`. Returns whether it answered a waiting
    /// datagram (intact or not), which frees that datagram's slot in a closed loop.
    pub fn receive(
        &mut self,
        data: &[u8],
        now_ns: u64,
        size: usize,
        meter: &mut Meter,
        udp: &mut Counters,
    ) -> bool {
        let Some(seq) = self.names(data) else {
            if meter.measuring(now_ns) {
                udp.unexpected += 1;
            }
            return false;
        };
        let index = (seq - self.base) as usize;
        let intact = data.len() == size && payload::matches(self.id, seq, size, 0, data);
        match self.slots[index] {
            Slot::Waiting(m) => {
                meter.in_flight -= 1;
                if intact {
                    meter.echoed(now_ns);
                }
                let counted = counts(&m, now_ns, meter);
                let outcome = if intact { Outcome::Received } else { Outcome::Corrupt };
                if counted && intact {
                    meter.received(now_ns, m.intended_ns, m.sent_ns);
                    if self.highest.is_some_and(|h| h > seq) {
                        udp.reordered += 1;
                    }
                } else if counted {
                    meter.counters.mismatch += 1;
                    if meter.first_mismatch.is_none() {
                        meter.first_mismatch = Some(format!(
                            "socket {} datagram {seq}: the echo ({} bytes) differs from the {size} \
                             bytes sent",
                            self.id,
                            data.len()
                        ));
                    }
                }
                if intact {
                    self.highest = Some(self.highest.map_or(seq, |h| h.max(seq)));
                }
                self.slots[index] = Slot::Done { outcome, counted };
                self.advance();
                self.trim();
                true
            }
            Slot::Done { outcome, counted } => {
                if counted {
                    match outcome {
                        Outcome::Lost => udp.late += 1,
                        _ if intact => udp.duplicated += 1,
                        // A damaged copy of an answered datagram answers nothing.
                        _ => udp.unexpected += 1,
                    }
                }
                false
            }
        }
    }

    /// The sequence number an echo names, if it is one of this socket's datagrams still in
    /// the books.
    fn names(&self, data: &[u8]) -> Option<u64> {
        let head: [u8; 8] = data.get(..8)?.try_into().ok()?;
        let (flow, seq) = payload::claimed(head);
        (flow == self.id && seq >= self.base && seq < self.next_seq).then_some(seq)
    }

    /// Whether the oldest datagram waiting was sent `timeout_ns` or more before `now_ns`.
    pub fn overdue(&self, now_ns: u64, timeout_ns: u64) -> bool {
        matches!(self.slot(self.oldest), Some(Slot::Waiting(m)) if now_ns.saturating_sub(m.sent_ns) >= timeout_ns)
    }

    /// Declares lost every datagram sent `timeout_ns` or more before `now_ns`; returns how
    /// many (a closed loop refills that many slots).
    pub fn expire(&mut self, now_ns: u64, timeout_ns: u64, meter: &mut Meter) -> usize {
        let mut expired = 0;
        while let Some(Slot::Waiting(m)) = self.slot(self.oldest) {
            // Datagrams are sent in sequence order, so the first one still young ends the scan.
            if now_ns.saturating_sub(m.sent_ns) < timeout_ns {
                break;
            }
            self.lose(self.oldest, m, now_ns, Loss::Timeout, meter);
            expired += 1;
            self.advance();
        }
        self.trim();
        expired
    }

    /// Gives up every datagram still waiting (the run is over); returns how many the window's
    /// counts gained.
    pub fn abandon(&mut self, now_ns: u64, loss: Loss, meter: &mut Meter) -> u64 {
        let before = meter.counters.lost;
        for seq in self.oldest..self.next_seq {
            if let Some(Slot::Waiting(m)) = self.slot(seq) {
                self.lose(seq, m, now_ns, loss, meter);
            }
        }
        self.oldest = self.next_seq;
        meter.counters.lost - before
    }

    fn lose(&mut self, seq: u64, m: Sent, now_ns: u64, loss: Loss, meter: &mut Meter) {
        meter.in_flight -= 1;
        let counted = counts(&m, now_ns, meter);
        if counted {
            meter.given_up(now_ns, m.intended_ns, loss == Loss::Timeout);
            meter.counters.lost += 1;
        }
        let index = (seq - self.base) as usize;
        self.slots[index] = Slot::Done { outcome: Outcome::Lost, counted };
    }

    fn slot(&self, seq: u64) -> Option<Slot> {
        self.slots.get(seq.checked_sub(self.base)? as usize).copied()
    }

    /// Moves `oldest` past the datagrams already settled.
    fn advance(&mut self) {
        while let Some(Slot::Done { .. }) = self.slot(self.oldest) {
            self.oldest += 1;
        }
    }

    /// Forgets outcomes more than [`HISTORY`] behind the oldest waiting datagram.
    fn trim(&mut self) {
        while self.oldest - self.base > HISTORY {
            self.slots.pop_front();
            self.base += 1;
        }
    }
}

/// Whether datagram `m`, settled at `now_ns`, goes into the books. As in TCP mode, a warm-up
/// datagram still waiting when the window opened is adopted by the window: it joins the
/// datagrams sent for it, so that its outcome counts like theirs and the counts still add up.
#[inline]
fn counts(m: &Sent, now_ns: u64, meter: &mut Meter) -> bool {
    if m.measured {
        return true;
    }
    if !meter.adopts(now_ns) {
        return false;
    }
    let c = &mut meter.counters;
    c.scheduled += 1;
    c.carried += 1;
    c.sent += 1;
    c.carried_sent += 1;
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meter::Shared;
    use std::sync::atomic::AtomicU64;
    use std::sync::{Arc, OnceLock, mpsc};

    /// A meter whose window opened at 0 and never closes, and a flow over a real socket
    /// connected to `peer` (which the test reads nothing from: only the books matter here).
    fn setup(peer: &std::net::UdpSocket) -> (Flow, Meter) {
        let (tx, _rx) = mpsc::channel();
        let (_spare_tx, spare_rx) = mpsc::channel();
        let shared = Arc::new(Shared {
            start: OnceLock::new(),
            cancel: crate::Cancel::new(),
            received: vec![AtomicU64::new(0)],
        });
        let mut meter = Meter::new(0, false, (tx, spare_rx), shared, None);
        let tl = crate::meter::Timeline {
            base: std::time::Instant::now(),
            measure_ns: 0,
            end_ns: u64::MAX,
            timeout_ns: 1_000,
        };
        meter.begin(&tl);
        let socket = Socket::from(std::net::UdpSocket::bind("127.0.0.1:0").unwrap());
        socket.connect(&peer.local_addr().unwrap().into()).unwrap();
        (Flow::new(7, Some(socket), 4), meter)
    }

    fn datagram(flow: u32, seq: u64) -> Vec<u8> {
        let mut buf = vec![0; 16];
        payload::fill(flow, seq, &mut buf);
        buf
    }

    #[test]
    fn every_echo_is_judged_by_the_datagram_it_names() {
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let (mut flow, mut meter) = setup(&peer);
        let mut udp = Counters::default();
        let mut buf = vec![0; 16];
        for _ in 0..4 {
            flow.send(&mut buf, 0, 0, true, &mut meter).unwrap();
        }
        assert_eq!(size_of::<Slot>(), 24, "the history's cost in the docs");
        // 1 arrives first, then 0: 0 is reordered; 1 again is a duplicate.
        assert!(flow.receive(&datagram(7, 1), 10, 16, &mut meter, &mut udp));
        assert!(flow.receive(&datagram(7, 0), 10, 16, &mut meter, &mut udp));
        assert!(!flow.receive(&datagram(7, 1), 10, 16, &mut meter, &mut udp));
        assert_eq!((udp.reordered, udp.duplicated, meter.counters.received), (1, 1, 2));
        // 2 comes back damaged: corrupt, and it settles its datagram.
        let mut bad = datagram(7, 2);
        bad[12] ^= 1;
        assert!(flow.receive(&bad, 10, 16, &mut meter, &mut udp));
        assert_eq!(meter.counters.mismatch, 1);
        // 3 times out, and its echo then comes late.
        assert_eq!(flow.expire(2_000, 1_000, &mut meter), 1);
        assert!(!flow.receive(&datagram(7, 3), 2_000, 16, &mut meter, &mut udp));
        assert_eq!((meter.counters.lost, udp.late), (1, 1));
        // Another socket's datagram, one never sent, and a runt answer nothing.
        for stray in [datagram(8, 0), datagram(7, 4), vec![1, 2, 3]] {
            assert!(!flow.receive(&stray, 2_000, 16, &mut meter, &mut udp));
        }
        assert_eq!(udp.unexpected, 3);
        let c = &meter.counters;
        assert_eq!(c.sent, c.received + c.mismatch + c.lost);
        assert_eq!(meter.in_flight, 0);
    }

    #[test]
    fn the_history_is_bounded_behind_the_oldest_waiting_datagram() {
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let (mut flow, mut meter) = setup(&peer);
        let mut udp = Counters::default();
        let mut buf = vec![0; 16];
        for seq in 0..1_000 {
            flow.send(&mut buf, 0, 0, true, &mut meter).unwrap();
            assert!(flow.receive(&datagram(7, seq), 1, 16, &mut meter, &mut udp));
            // Drain the peer now and then so its buffer never refuses the sends.
            if seq % 100 == 0 {
                peer.set_nonblocking(true).unwrap();
                let mut sink = [0u8; 64];
                while peer.recv(&mut sink).is_ok() {}
            }
        }
        assert_eq!(flow.slots.len() as u64, HISTORY);
        // A duplicate of a recent one is known; one of the first is too old to tell.
        assert!(!flow.receive(&datagram(7, 999), 1, 16, &mut meter, &mut udp));
        assert!(!flow.receive(&datagram(7, 3), 1, 16, &mut meter, &mut udp));
        assert_eq!((udp.duplicated, udp.unexpected), (1, 1));
    }
}
