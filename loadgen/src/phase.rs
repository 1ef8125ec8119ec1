//! Where a load thread's loop is in the run, the same for both transports: sending until the
//! window ends (or the run is cancelled), then draining its stragglers until they are all
//! back or their time is up, with housekeeping (timeouts, reconnections) at a fixed pace
//! throughout. TCP's loop (`worker/mod.rs`) and UDP's (`udp/worker/mod.rs`) differ in what
//! they do with their sockets, not in these decisions, so those are written once, here.

use std::time::Duration;

use crate::meter::Timeline;

/// After a cancel, stragglers get this long (at most) before they count as lost.
const CANCEL_DRAIN_NS: u64 = 200_000_000;

#[derive(Debug)]
pub(crate) struct Phase {
    sending: bool,
    /// When sending stopped (once it has).
    stopped_ns: u64,
    /// The drain's end: the last straggler is given up then.
    drain_until_ns: u64,
    next_housekeeping_ns: u64,
    /// How often timeouts, reconnections and phase changes are checked when nothing else
    /// wakes the loop.
    housekeeping_ns: u64,
}

impl Phase {
    pub(crate) fn new(housekeeping_ns: u64) -> Phase {
        Phase {
            sending: true,
            stopped_ns: 0,
            drain_until_ns: 0,
            next_housekeeping_ns: 0,
            housekeeping_ns,
        }
    }

    /// Whether the loop still sends.
    pub(crate) fn sending(&self) -> bool {
        self.sending
    }

    /// When sending stopped; 0 while it has not.
    pub(crate) fn stopped_ns(&self) -> u64 {
        self.stopped_ns
    }

    /// The moment sending must stop, the first time the loop passes it: the window's end, or
    /// now if the run was cancelled. Nothing due after the end is sent, so a loop that noticed
    /// it late still measured a window of exactly the configured length. The drain begins:
    /// the timeout's length, or less after a cancel.
    pub(crate) fn stop(&mut self, now: u64, cancelled: bool, tl: &Timeline) -> Option<u64> {
        if !self.sending || (now < tl.end_ns && !cancelled) {
            return None;
        }
        self.sending = false;
        self.stopped_ns = now.min(tl.end_ns);
        let drain = if cancelled { tl.timeout_ns.min(CANCEL_DRAIN_NS) } else { tl.timeout_ns };
        self.drain_until_ns = now + drain;
        Some(self.stopped_ns)
    }

    /// Whether the loop is done: it has stopped sending and nothing is in flight, or its
    /// stragglers' time is up.
    pub(crate) fn done(&self, now: u64, cancelled: bool, in_flight: u64) -> bool {
        !self.sending
            && (in_flight == 0
                || now >= self.drain_until_ns
                || (cancelled && now >= self.stopped_ns + CANCEL_DRAIN_NS))
    }

    /// Whether housekeeping is due now (and, if so, when it is due next).
    pub(crate) fn housekeeping_due(&mut self, now: u64) -> bool {
        let due = now >= self.next_housekeeping_ns;
        if due {
            self.next_housekeeping_ns = now + self.housekeeping_ns;
        }
        due
    }

    /// The longest the loop may sleep now: until the next housekeeping, and no later than the
    /// window's end while it sends.
    pub(crate) fn timeout(&self, now: u64, tl: &Timeline) -> Duration {
        Duration::from_nanos(match self.sending {
            true => self.housekeeping_ns.min(tl.end_ns.saturating_sub(now)),
            false => self.housekeeping_ns,
        })
    }
}
