//! Where a load thread's loop is in the run, the same for both transports: sending until the
//! window ends (or the run is cancelled), then draining its stragglers until they are all
//! back or their time is up, with housekeeping (timeouts, reconnections) at a fixed pace
//! throughout. TCP's loop (`worker/mod.rs`) and UDP's (`udp/worker/mod.rs`) differ in what
//! they do with their sockets, not in these decisions, so those are written once, here.
//!
//! Here too is the [`Gate`], which decides when the measured window opens: at the end of the
//! warm-up, or once every connection has had its first echo, whichever is later. A server
//! that starts a process or a thread per connection may take longer than the warm-up to get
//! round to its last connections; a window that opened on time would then time their first
//! echoes, from the start of the run, as if they were the server's latency under load (echo-
//! fork at 1,000 connections, 200 ms warm-up, 1 s window, measured here on 2026-12-07:
//! interval maxima that grew through the window to 0.9-1.3 s; see loadgen/README.md).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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

/// A window whose opening has not been decided yet: every `>= measure_ns` test is false.
pub(crate) const PENDING: u64 = u64::MAX;

/// When the measured window opens, shared by the coordinator and the TCP load threads.
///
/// A load thread is *primed* once none of its connections waits for its first echo: each
/// has completed one, or is not up with a message out (it failed, or is still connecting,
/// and its errors are counted as such). The coordinator opens the window when every thread
/// is primed, but not before the warm-up ends; the threads read the decision on their next
/// pass. A thread primed before the warm-up ends learns the opening in advance, so then the
/// window opens exactly on time, as it did before the gate.
#[derive(Debug)]
pub struct Gate {
    primed: AtomicUsize,
    /// Per thread: connections up with a message out and no echo yet, as last counted.
    waiting: Vec<AtomicUsize>,
    /// The window's opening in nanoseconds since the start, or [`PENDING`].
    open_ns: AtomicU64,
}

impl Gate {
    pub fn new(threads: usize) -> Gate {
        Gate {
            primed: AtomicUsize::new(0),
            waiting: (0..threads).map(|_| AtomicUsize::new(0)).collect(),
            open_ns: AtomicU64::new(PENDING),
        }
    }

    /// A gate already open at `open_ns`, for load threads that do not prime (UDP).
    pub fn opened(threads: usize, open_ns: u64) -> Gate {
        let gate = Gate::new(threads);
        gate.open(open_ns);
        gate
    }

    /// Thread `thread` counted `waiting` connections still waiting for their first echo;
    /// 0 primes it (call that once).
    pub(crate) fn count(&self, thread: usize, waiting: usize) {
        self.waiting[thread].store(waiting, Ordering::Relaxed);
        if waiting == 0 {
            self.primed.fetch_add(1, Ordering::Release);
        }
    }

    /// Whether every thread is primed.
    pub fn all_primed(&self) -> bool {
        self.primed.load(Ordering::Acquire) >= self.waiting.len()
    }

    /// Connections still waiting for their first echo, over all threads.
    pub fn waiting(&self) -> usize {
        self.waiting.iter().map(|w| w.load(Ordering::Relaxed)).sum()
    }

    /// Opens the window at `open_ns` (since the start).
    pub fn open(&self, open_ns: u64) {
        self.open_ns.store(open_ns, Ordering::Release);
    }

    /// When the window opens, once decided.
    pub fn open_ns(&self) -> Option<u64> {
        let open = self.open_ns.load(Ordering::Acquire);
        (open != PENDING).then_some(open)
    }
}
