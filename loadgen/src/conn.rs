//! One load-carrying connection: what it has sent and not yet had back, the bytes waiting to
//! be written, and the checking of every echoed byte.
//!
//! The per-message path allocates nothing: messages are generated straight into the write
//! buffer (which keeps its capacity), the in-flight queue is a ring sized for the pipeline, and
//! echoes are compared in place as they arrive, in whatever pieces the kernel hands over.

use std::collections::VecDeque;
use std::io::{self, Write};

use crate::meter::Meter;
use crate::payload;
use crate::target::Stream;

/// A message queued on the connection and not yet accounted for. Nanoseconds are since the
/// thread's start.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    seq: u64,
    /// When the schedule wanted it sent (open loop; once written, no later than the write),
    /// else when it was queued.
    intended_ns: u64,
    /// When it was appended to the write buffer; its timeout runs from here.
    queued_ns: u64,
    /// When the kernel accepted its last byte (0 until then): the uncorrected latency's start.
    sent_ns: u64,
    /// Meant for the measured window (due, or queued, inside it), so it counts from the
    /// start. A warm-up message counts only if it is still outstanding when the window opens
    /// (see [`Meter::adopts`]); the rest of the warm-up's traffic is carried but ignored.
    measured: bool,
}

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not connected; try again at `retry_ns`.
    Down { retry_ns: u64 },
    /// `connect` started at `since_ns` and has not finished yet.
    Connecting { since_ns: u64 },
    /// Carrying messages.
    Up,
}

/// Why a connection's in-flight messages are being given up, which decides how they count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// The connection broke: they count as lost.
    Broken,
    /// The oldest waited `--timeout`: they all count as timeouts.
    Timeout,
    /// The run was cancelled before they came back: lost.
    Cancelled,
}

/// Reconnection backoff: starts short so a brief hiccup costs little, doubles up to a
/// second so a dead server is not hammered.
const FIRST_BACKOFF_NS: u64 = 10_000_000;
const MAX_BACKOFF_NS: u64 = 1_000_000_000;

#[derive(Debug)]
pub struct Conn {
    /// Global connection number, encoded in every message it sends.
    pub id: u32,
    pub stream: Option<Stream>,
    pub state: State,
    /// Its first connection attempt has not succeeded or failed yet: a failure then counts
    /// as a connect error even before the measured window (a run short of connections).
    pub initial: bool,
    backoff_ns: u64,
    next_seq: u64,
    inflight: VecDeque<InFlight>,
    /// Bytes of the oldest in-flight message already echoed, and whether any differed.
    recv_off: usize,
    recv_bad: bool,
    /// The first bytes of the echo being received, kept only to describe a mismatch.
    recv_head: [u8; 8],
    /// Messages waiting to be written, whole, oldest first; `wpos` bytes of it are written.
    wbuf: Vec<u8>,
    wpos: usize,
    /// Messages at the back of `inflight` not yet wholly written (their bytes are in `wbuf`);
    /// they are not sent yet and count as `backlogged` if they never are.
    unwritten: usize,
    /// Messages of `wbuf` already wholly written and stamped as sent.
    wdone: usize,
}

impl Conn {
    /// A connection that has not connected yet, with room for `in_flight` messages and a
    /// write buffer of `wbuf` bytes (both grow if needed, and then keep their size).
    pub fn new(id: u32, in_flight: usize, wbuf: usize) -> Conn {
        Conn {
            id,
            stream: None,
            state: State::Down { retry_ns: 0 },
            initial: true,
            backoff_ns: FIRST_BACKOFF_NS,
            next_seq: 0,
            inflight: VecDeque::with_capacity(in_flight),
            recv_off: 0,
            recv_bad: false,
            recv_head: [0; 8],
            wbuf: Vec::with_capacity(wbuf),
            wpos: 0,
            unwritten: 0,
            wdone: 0,
        }
    }

    /// Messages sent and not yet accounted for.
    pub fn in_flight(&self) -> usize {
        self.inflight.len()
    }

    /// Bytes of the oldest in-flight message's echo still to come.
    pub fn echo_remaining(&self, size: usize) -> usize {
        size - self.recv_off
    }

    /// When the oldest in-flight message was queued, if any is: it times out from then,
    /// whether it waited for its echo or, behind a full socket, for its own write.
    pub fn oldest_queued_ns(&self) -> Option<u64> {
        self.inflight.front().map(|m| m.queued_ns)
    }

    /// Whether another message of `size` bytes fits under `cap` unwritten bytes. The open
    /// loop asks before queueing: a server that stops reading would otherwise make loadgen
    /// buffer the whole schedule in memory, and the messages would "leave" only in name.
    pub fn has_room(&self, size: usize, cap: usize) -> bool {
        self.wbuf.len() - self.wpos + size <= cap
    }

    /// The connection is established: it may carry messages. The backoff is not reset
    /// here but by the first echo: a server that accepts and closes at once would otherwise
    /// be reconnected to a hundred times a second.
    pub fn connected(&mut self) {
        self.state = State::Up;
        self.initial = false;
    }

    /// Appends the next message to the write buffer (written by the next [`Conn::flush`]).
    /// It is not *sent* until the kernel has accepted its last byte.
    pub fn queue(
        &mut self,
        size: usize,
        intended_ns: u64,
        now_ns: u64,
        measured: bool,
        meter: &mut Meter,
    ) {
        let start = self.wbuf.len();
        self.wbuf.resize(start + size, 0);
        payload::fill(self.id, self.next_seq, &mut self.wbuf[start..]);
        self.inflight.push_back(InFlight {
            seq: self.next_seq,
            intended_ns,
            queued_ns: now_ns,
            sent_ns: 0,
            measured,
        });
        self.next_seq += 1;
        self.unwritten += 1;
        meter.in_flight += 1;
        if measured {
            meter.counters.scheduled += 1;
        }
    }

    /// Writes what is pending with a single call, and stamps every message whose last byte
    /// went out as sent at `now_ns`. A short write means the socket buffer is full, so trying
    /// again now would only return `WouldBlock`; the rest waits for the next writable event
    /// (the stream stays registered for it, so no re-registration is needed).
    ///
    /// With `split` (`--split-writes`) every message takes two calls instead, its first half
    /// and then the rest, so that each half leaves as a segment of its own (TCP_NODELAY is
    /// on); a write never spans two messages then.
    pub fn flush(
        &mut self,
        size: usize,
        split: bool,
        now_ns: u64,
        meter: &mut Meter,
    ) -> io::Result<()> {
        while self.wpos < self.wbuf.len() {
            let Some(stream) = self.stream.as_mut() else { return Ok(()) };
            let end = if split { split_end(self.wpos, size) } else { self.wbuf.len() };
            match stream.write(&self.wbuf[self.wpos..end.min(self.wbuf.len())]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "the connection accepts no more bytes",
                    ));
                }
                Ok(n) => {
                    self.wpos += n;
                    self.stamp_written(size, now_ns, meter);
                    // Short of what was asked: the socket buffer is full. (A split write
                    // that wrote its whole piece goes on to the next piece.)
                    if self.wpos < end.min(self.wbuf.len()) {
                        return Ok(());
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        self.wbuf.clear();
        self.wpos = 0;
        self.wdone = 0;
        Ok(())
    }

    /// Marks the messages the last write completed as sent. The write buffer holds whole
    /// messages in order, the oldest unwritten one first, so `wpos / size` of them are out.
    #[inline]
    fn stamp_written(&mut self, size: usize, now_ns: u64, meter: &mut Meter) {
        let done = self.wpos / size;
        let first = self.inflight.len() - self.unwritten;
        for k in 0..done - self.wdone {
            let m = &mut self.inflight[first + k];
            m.sent_ns = now_ns;
            // An open-loop message written before it was due is timed from the write.
            m.intended_ns = m.intended_ns.min(now_ns);
            if m.measured {
                meter.counters.sent += 1;
            }
        }
        self.unwritten -= done - self.wdone;
        self.wdone = done;
    }

    /// Checks echoed bytes against the oldest in-flight messages and accounts for each message
    /// they complete. Returns how many completed, or an error if the server sent bytes that
    /// nobody asked for.
    pub fn receive(
        &mut self,
        mut data: &[u8],
        now_ns: u64,
        size: usize,
        meter: &mut Meter,
    ) -> io::Result<usize> {
        let mut completed = 0;
        while !data.is_empty() {
            let Some(&front) = self.inflight.front() else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the server sent bytes that were never sent to it",
                ));
            };
            let take = (size - self.recv_off).min(data.len());
            let (chunk, rest) = data.split_at(take);
            if self.recv_off < 8 {
                let head = (8 - self.recv_off).min(chunk.len());
                self.recv_head[self.recv_off..self.recv_off + head].copy_from_slice(&chunk[..head]);
            }
            if !self.recv_bad && !payload::matches(self.id, front.seq, size, self.recv_off, chunk) {
                self.recv_bad = true;
            }
            self.recv_off += take;
            data = rest;
            if self.recv_off == size {
                self.inflight.pop_front();
                // An echo is never earlier than its message (a kernel stamp on a real-time
                // clock that was stepped could say so).
                let now_ns = now_ns.max(front.sent_ns);
                meter.in_flight -= 1;
                if !self.recv_bad {
                    meter.echoed(now_ns);
                }
                if counts(&front, true, now_ns, meter) {
                    if self.recv_bad {
                        meter.counters.mismatch += 1;
                        if meter.first_mismatch.is_none() {
                            meter.first_mismatch = Some(self.describe_mismatch(front.seq, size));
                        }
                    } else {
                        meter.received(now_ns, front.intended_ns, front.sent_ns);
                    }
                }
                self.recv_off = 0;
                self.recv_bad = false;
                completed += 1;
                // An echo came back: the connection works, so a later failure backs off
                // from the start again.
                self.backoff_ns = FIRST_BACKOFF_NS;
            }
        }
        Ok(completed)
    }

    fn describe_mismatch(&self, seq: u64, size: usize) -> String {
        let mut text = format!(
            "connection {} message {seq}: the {size}-byte echo differs from what was sent",
            self.id
        );
        if size >= 8 {
            let (conn, claimed) = payload::claimed(self.recv_head);
            text.push_str(&format!(" (its header claims connection {conn} message {claimed})"));
        }
        text
    }

    /// Gives up on the connection: closes it, accounts for everything in flight according to
    /// `loss`, and schedules a reconnection after the backoff. Messages never wholly written
    /// were never sent: they count as backlogged, not as failures of the server. Returns how
    /// many messages the window's error counts gained (timeouts or losses).
    pub fn fail(&mut self, now_ns: u64, loss: Loss, meter: &mut Meter) -> u64 {
        // Dropping the stream closes it, which also removes it from the epoll set.
        self.stream = None;
        let sent = self.inflight.len() - self.unwritten;
        let mut errors = 0;
        for (k, m) in self.inflight.drain(..).enumerate() {
            meter.in_flight -= 1;
            if !counts(&m, k < sent, now_ns, meter) {
                continue;
            }
            meter.given_up(now_ns, m.intended_ns, loss != Loss::Cancelled);
            if k >= sent {
                meter.counters.backlogged += 1;
                continue;
            }
            errors += 1;
            match loss {
                Loss::Timeout => meter.counters.timeout += 1,
                Loss::Broken | Loss::Cancelled => meter.counters.lost += 1,
            }
        }
        self.unwritten = 0;
        self.wdone = 0;
        self.wbuf.clear();
        self.wpos = 0;
        self.recv_off = 0;
        self.recv_bad = false;
        self.state = State::Down { retry_ns: now_ns + self.backoff_ns };
        self.backoff_ns = (self.backoff_ns * 2).min(MAX_BACKOFF_NS);
        errors
    }
}

/// With `--split-writes`, where the write that starts at byte `pos` of a buffer of whole
/// `size`-byte messages ends: at the middle of its message, or at the message's end.
pub fn split_end(pos: usize, size: usize) -> usize {
    let start = pos - pos % size;
    let half = start + size / 2;
    if pos < half { half } else { start + size }
}

/// Whether message `m`, given its outcome at `now_ns`, goes into the books. A warm-up message
/// still outstanding when the window opened is adopted by the window here: it joins the
/// messages meant for it (and the sent ones, if `written`), so that its outcome, good or
/// bad, counts like theirs and the counts still add up.
#[inline]
fn counts(m: &InFlight, written: bool, now_ns: u64, meter: &mut Meter) -> bool {
    if m.measured {
        return true;
    }
    if !meter.adopts(now_ns) {
        return false;
    }
    meter.counters.scheduled += 1;
    meter.counters.carried += 1;
    if written {
        meter.counters.sent += 1;
        meter.counters.carried_sent += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::split_end;

    #[test]
    fn split_writes_stop_at_each_half() {
        // Two 64-byte messages: 0..32, 32..64, 64..96, 96..128, whatever a short write left.
        assert_eq!(split_end(0, 64), 32);
        assert_eq!(split_end(10, 64), 32);
        assert_eq!(split_end(32, 64), 64);
        assert_eq!(split_end(64, 64), 96);
        assert_eq!(split_end(100, 64), 128);
        // An odd size: the first piece is the shorter one.
        assert_eq!(split_end(0, 3), 1);
        assert_eq!(split_end(1, 3), 3);
    }
}
