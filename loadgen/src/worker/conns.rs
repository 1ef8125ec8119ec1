//! The load thread's connections: opening them, handling their events, reading and checking
//! echoes, writing messages, and noticing the ones that broke or went silent.

use std::io::{self, Read};

use mio::Token;

use super::Worker;
use crate::config::Mode;
use crate::conn::{Loss, State};
use crate::meter::Timeline;

impl Worker {
    /// Starts connecting connection `i`; a failure to even start counts as a connect error.
    pub(super) fn start_connect(&mut self, i: usize, now: u64) {
        let source = match self.plan.sources.len() {
            0 => None,
            n => {
                self.next_source = (self.next_source + 1) % n;
                Some(self.plan.sources[(self.next_source + self.plan.thread) % n])
            }
        };
        let conn = &mut self.conns[i];
        let result = self.plan.target.connect_registered(source, self.poll.registry(), Token(i));
        match result {
            Ok(stream) => {
                conn.stream = Some(stream);
                conn.state = State::Connecting { since_ns: now };
            }
            Err(err) => {
                let counted = self.count_connect_error(i, now);
                let target = &self.plan.target;
                self.meter.error(counted, || format!("cannot connect to {target}: {err}"));
                self.conns[i].fail(now, Loss::Broken, &mut self.meter);
            }
        }
    }

    /// A connecting stream became writable: it is connected, still connecting, or failed.
    pub(super) fn finish_connect(&mut self, i: usize, now: u64) -> bool {
        let State::Connecting { since_ns } = self.conns[i].state else { return false };
        let result = self.conns[i].stream.as_ref().map_or(Ok(false), |s| s.finish_connect());
        match result {
            Ok(true) => {
                self.conns[i].connected();
                if self.stamps && !self.conns[i].stream.as_ref().is_some_and(crate::rxstamp::enable)
                {
                    // No stamps (a Unix socket): echoes are read as they come, as before.
                    self.stamps = false;
                }
                if self.meter.measuring(now) {
                    self.meter.counters.connects += 1;
                    if self.plan.mode == Mode::Churn {
                        self.meter.connected_after(now - since_ns);
                    }
                }
                true
            }
            Ok(false) => false,
            Err(err) => {
                let counted = self.count_connect_error(i, now);
                let target = &self.plan.target;
                self.meter.error(counted, || format!("cannot connect to {target}: {err}"));
                self.conns[i].fail(now, Loss::Broken, &mut self.meter);
                false
            }
        }
    }

    /// A connection attempt failed: it counts if it happened in the measured window, or if
    /// it was the connection's first (the run then had fewer connections than asked).
    /// Returns whether it counted.
    fn count_connect_error(&mut self, i: usize, now: u64) -> bool {
        let counted = self.meter.measuring(now) || self.conns[i].initial;
        if counted {
            self.meter.counters.connect_errors += 1;
        }
        self.conns[i].initial = false;
        counted
    }

    /// A connection is up: the closed loop and churn fill its pipeline at once.
    pub(super) fn on_connected(&mut self, i: usize, now: u64, tl: &Timeline) {
        if self.plan.mode == Mode::Open || now >= tl.end_ns {
            return;
        }
        let measured = now >= tl.measure_ns;
        for _ in 0..self.plan.pipeline {
            self.conns[i].queue(self.plan.size, now, now, measured, &mut self.meter);
        }
        self.flush(i, now);
    }

    pub(super) fn on_event(
        &mut self,
        i: usize,
        writable: bool,
        readable: bool,
        closed: bool,
        sending: bool,
        tl: &Timeline,
    ) {
        match self.conns[i].state {
            State::Down { .. } => {} // a stale event for a stream already closed
            State::Connecting { .. } => {
                let now = tl.now_ns();
                if (writable || closed) && self.finish_connect(i, now) && sending {
                    self.on_connected(i, now, tl);
                }
            }
            State::Up => {
                if readable || closed {
                    self.read(i, closed, sending, tl);
                }
                if writable && self.conns[i].state == State::Up {
                    self.flush(i, tl.now_ns());
                }
            }
        }
    }

    /// Reads echoes until the socket is drained, checks them, and (closed loop) sends the
    /// next messages in one write.
    fn read(&mut self, i: usize, closing: bool, sending: bool, tl: &Timeline) {
        let size = self.plan.size;
        let mut now;
        loop {
            let conn = &mut self.conns[i];
            // A read's stamp is its newest segment's, so with several echoes outstanding each
            // read after a sleep takes one echo at most: an older echo read with a newer one
            // would be timed as late as the newer, by up to the sleep. A loop too busy to sleep
            // reads often, so what it reads together arrived close together, and it reads all
            // at once: one call per echo would cost it the rate.
            let want = match self.stamps && self.slept && conn.in_flight() > 1 {
                true => conn.echo_remaining(size).min(self.rbuf.len()),
                false => self.rbuf.len(),
            };
            let Some(stream) = conn.stream.as_mut() else { return };
            let (result, stamp) = if self.stamps {
                match crate::rxstamp::read(stream, &mut self.rbuf[..want], &mut self.control) {
                    Ok((n, stamp)) => (Ok(n), stamp),
                    Err(err) => (Err(err), None),
                }
            } else {
                (stream.read(&mut self.rbuf[..want]), None)
            };
            // With a kernel stamp, the echoes were seen when they arrived, however long they
            // then waited for this read. Its age is read before the run's clock, so that it is
            // never too long and no echo is placed too early.
            let age = stamp.map(crate::rxstamp::age_ns);
            // One clock read per read call: the moment these echoes were seen (and, for the
            // write that follows, the moment the next messages leave).
            now = tl.now_ns();
            let seen = match age {
                Some(age) => now.saturating_sub(age),
                None => {
                    if self.stamps && matches!(result, Ok(n) if n > 0) {
                        // A stream that gives no stamp after all: read as echoes come.
                        self.stamps = false;
                    }
                    now
                }
            };
            match result {
                Ok(0) => return self.broken(i, now, "the server closed the connection"),
                Ok(n) => {
                    match self.conns[i].receive(&self.rbuf[..n], seen, size, &mut self.meter) {
                        Ok(0) => {}
                        Ok(done) => self.after_echoes(i, done, now, sending, tl),
                        Err(err) => return self.broken(i, now, &err.to_string()),
                    }
                    if self.conns[i].state != State::Up {
                        return; // churn closed it after its echo
                    }
                    // A short read drained the socket: any later byte brings a new edge, so
                    // the `read` that would only return `WouldBlock` is skipped. When the
                    // peer has closed, read on to see the end of the stream.
                    if n < want && !closing {
                        break;
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return self.broken(i, now, &err.to_string()),
            }
        }
        self.flush(i, now);
    }

    /// `done` echoes completed on connection `i`.
    fn after_echoes(&mut self, i: usize, done: usize, now: u64, sending: bool, tl: &Timeline) {
        self.settled(i);
        let more = sending && now < tl.end_ns;
        match self.plan.mode {
            // A burst never runs on the load threads (see `burst/`).
            Mode::Open | Mode::Burst => {}
            Mode::Closed if more => {
                for _ in 0..done {
                    self.conns[i].queue(
                        self.plan.size,
                        now,
                        now,
                        now >= tl.measure_ns,
                        &mut self.meter,
                    );
                }
            }
            Mode::Closed => {}
            Mode::Churn => {
                // One message per connection: close it (this side closes first, so the
                // TIME_WAIT is ours) and open the next one.
                self.conns[i].stream = None;
                self.conns[i].state = State::Down { retry_ns: now };
                if more {
                    self.start_connect(i, now);
                }
            }
        }
    }

    /// Writes what connection `i` has pending (one `write` call); `now` is the time the
    /// messages it completes count as sent.
    pub(super) fn flush(&mut self, i: usize, now: u64) {
        let (size, split) = (self.plan.size, self.plan.split_writes);
        if let Err(err) = self.conns[i].flush(size, split, now, &mut self.meter) {
            self.broken(i, now, &err.to_string());
        }
    }

    /// An established connection failed: count it, lose what was in flight, retry later.
    fn broken(&mut self, i: usize, now: u64, why: &str) {
        let counted = self.meter.measuring(now);
        if counted {
            self.meter.counters.io_errors += 1;
        }
        let id = self.conns[i].id;
        self.meter.error(counted, || format!("connection {id}: {why}"));
        self.conns[i].fail(now, Loss::Broken, &mut self.meter);
        self.settled(i);
    }

    /// Timeouts, connection attempts that take too long, and reconnections.
    pub(super) fn housekeeping(&mut self, now: u64, sending: bool, tl: &Timeline) {
        for i in 0..self.conns.len() {
            match self.conns[i].state {
                State::Up => {
                    if let Some(queued) = self.conns[i].oldest_queued_ns()
                        && now.saturating_sub(queued) > tl.timeout_ns
                    {
                        // Counted when the window has the messages (they were meant for it,
                        // or still outstanding when it opened), else a warm-up error.
                        let counted = self.meter.adopts(now);
                        self.conns[i].fail(now, Loss::Timeout, &mut self.meter);
                        self.settled(i);
                        let id = self.conns[i].id;
                        self.meter.error(counted, || {
                            format!("connection {id}: no echo within the timeout")
                        });
                    }
                }
                State::Connecting { since_ns } if now.saturating_sub(since_ns) > tl.timeout_ns => {
                    let counted = self.count_connect_error(i, now);
                    let target = &self.plan.target;
                    self.meter.error(counted, || format!("connecting to {target} timed out"));
                    self.conns[i].fail(now, Loss::Broken, &mut self.meter);
                }
                State::Down { retry_ns } if sending && now >= retry_ns => {
                    self.start_connect(i, now)
                }
                _ => {}
            }
        }
    }
}
