//! The open loop's clock: when each message is due, and a timer precise enough to send it then.
//!
//! Each load thread owns a share of the connections and sends to them round robin, so each
//! connection gets `rate / connections` messages per second, evenly spaced, and the threads'
//! schedules are offset so that together they interleave rather than fire in step.
//!
//! Latency in the open loop counts from the *intended* send time, so sending late would be
//! charged to the server. `epoll_wait` only sleeps in whole milliseconds (mio rounds up), which
//! at 100k messages a second is a hundred messages late; a `timerfd` registered beside the
//! sockets wakes the loop within microseconds instead. How late each message still left is
//! recorded (the lag histogram) so a generator that falls behind is caught, not hidden.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use crate::pace::Pacing;

/// The sends one thread owes, numbered from 0.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// When send 0 is due, in nanoseconds after the start.
    first_ns: f64,
    /// Nanoseconds between consecutive sends of this thread.
    interval_ns: f64,
    /// The next send's number.
    next: u64,
    /// Connections of this thread, visited round robin.
    conns: usize,
    /// How early a send may leave, so that one wake-up carries several (see
    /// [`crate::pace::Pacing`]).
    slack_ns: u64,
    /// The shortest sleep worth taking: what a sleep and wake-up cost.
    min_sleep_ns: u64,
}

impl Schedule {
    /// The schedule of thread `thread` when `conns` of the run's `total_conns` connections
    /// are its share of `rate` messages per second.
    /// Sends may leave as early as `pacing` allows at this thread's interval.
    pub fn new(
        rate: f64,
        thread: usize,
        conns: usize,
        total_conns: usize,
        pacing: &Pacing,
    ) -> Schedule {
        let per_conn_interval_ns = 1e9 * total_conns as f64 / rate;
        let run_interval_ns = 1e9 / rate;
        let interval_ns = per_conn_interval_ns / conns as f64;
        Schedule {
            first_ns: thread as f64 * run_interval_ns,
            interval_ns,
            next: 0,
            conns,
            slack_ns: pacing.slack_ns(interval_ns),
            min_sleep_ns: pacing.wake_cost_ns.unwrap_or(0),
        }
    }

    /// When the next send is due.
    #[inline]
    pub fn due_ns(&self) -> u64 {
        // f64 keeps the schedule free of drift: 2^53 ns is over a hundred days.
        (self.first_ns + self.next as f64 * self.interval_ns) as u64
    }

    /// Takes the next send: returns the connection (index within the thread) it goes to.
    #[inline]
    pub fn take(&mut self) -> usize {
        let conn = (self.next % self.conns as u64) as usize;
        self.next += 1;
        conn
    }

    /// The number of the first send due at or after `t_ns` (at least the next one): the
    /// sends before it are all due before `t_ns`.
    pub fn index_at(&self, t_ns: u64) -> u64 {
        let guess = ((t_ns as f64 - self.first_ns) / self.interval_ns).ceil().max(0.0) as u64;
        // The float estimate may be one off either way against `due_ns`'s rounding; settle
        // it on `due_ns` itself, so the two always agree.
        let due = |k: u64| (self.first_ns + k as f64 * self.interval_ns) as u64;
        let mut k = guess.saturating_sub(1);
        while due(k) < t_ns {
            k += 1;
        }
        k.max(self.next)
    }

    /// The next send's number.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Passes over every send before number `k` without sending it.
    pub fn skip_to(&mut self, k: u64) {
        self.next = self.next.max(k);
    }

    /// Connections of this thread; a burst of sends touches each at most once per this many.
    pub fn conns(&self) -> usize {
        self.conns
    }

    /// How early a send may leave.
    pub fn slack_ns(&self) -> u64 {
        self.slack_ns
    }

    /// The shortest sleep worth taking: what a sleep and wake-up cost (see
    /// [`crate::pace::Pacing`]). A send due sooner than this is not slept for.
    pub fn min_sleep_ns(&self) -> u64 {
        self.min_sleep_ns
    }
}

/// A one-shot `timerfd` with nanosecond resolution, registered in a mio `Poll`, that learns
/// how late it wakes the thread and fires a little early.
///
/// Even a precise timer wakes a sleeping thread some microseconds late in a virtual machine
/// (the interrupt goes through the host, then the scheduler runs: about 30 us here), and
/// every microsecond of that would be added to each message's corrected latency and charged
/// to the server. So the timer fires early by the *90th percentile* of the lateness of its
/// recent wake-ups, at most half the schedule's slack and at most [`MAX_EARLY_NS`]: nine
/// wake-ups in ten then come before the first send of their batch is due. A wake-up before
/// the send is due needs no spinning: the loop may send up to the slack early anyway, and the
/// cap keeps the timer inside that. (With no slack the timer never fires early, and every
/// wake-up's lateness shows as send lag.)
/// (An earlier version spun in zero-timeout polls for the rest of the wait; that cost as much
/// CPU as it saved lateness.)
///
/// An average of the lateness was used first and failed on a busy machine: a thread woken
/// milliseconds late now and then (preempted by other work) pulled the average up to its
/// cap. A percentile ignores how late the outliers were; they show as send lag, which is
/// where they belong. (The median came next: half the wake-ups then made the first send of
/// their batch late, and at 20k msgs/s the lag's p99 was several times the 90th
/// percentile's.)
#[derive(Debug)]
pub struct Timer {
    fd: OwnedFd,
    /// The deadline currently armed, so re-arming for the same one costs no system call.
    armed_ns: u64,
    /// How early to fire: a running 90th percentile of the lateness of recent wake-ups.
    early_ns: u64,
    /// The most `early_ns` may grow to.
    max_early_ns: u64,
}

/// The most the timer fires early (and never more than half the slack, so that an early
/// wake-up can always send). A wake-up later than this shows as send lag.
const MAX_EARLY_NS: u64 = 100_000;
/// How far one early wake-up moves the running percentile down: small against the lateness
/// measured (a few microseconds), so the estimate is steady. A late one moves it up nine
/// times as far, so it settles where one wake-up in ten is late.
const PERCENTILE_STEP_NS: u64 = 500;
const LATE_STEPS: u64 = 9;

impl Timer {
    /// A timer for a schedule whose sends may leave up to `slack_ns` early.
    pub fn new(slack_ns: u64) -> io::Result<Timer> {
        // SAFETY: timerfd_create takes no pointers; the result is checked before use.
        let fd = unsafe {
            libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC)
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let max_early_ns = (slack_ns / 2).min(MAX_EARLY_NS);
        Ok(Timer { fd, armed_ns: u64::MAX, early_ns: 0, max_early_ns })
    }

    pub fn register(&self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(&mut SourceFd(&self.fd.as_raw_fd()), token, Interest::READABLE)
    }

    /// Prepares to send at `due_ns`: arms the timer to fire early by its usual lateness.
    pub fn wait_for(&mut self, due_ns: u64, now_ns: u64) -> io::Result<()> {
        self.arm(due_ns.saturating_sub(self.early_ns), now_ns)
    }

    /// The timer's event woke the thread at `woke_ns`: learn how late it was. Returns
    /// whether it was the expiry of the deadline armed: an event left over from an earlier one
    /// (the timer is in two polls; each reports every expiry), or a second report of the
    /// same one, changes nothing.
    pub fn fired(&mut self, woke_ns: u64) -> bool {
        if self.armed_ns == u64::MAX || woke_ns < self.armed_ns {
            return false;
        }
        // A running percentile: a fixed step towards each wake-up, whatever its size, nine
        // times longer up than down, so the estimate settles where one in ten is later.
        if woke_ns > self.armed_ns + self.early_ns {
            let up = LATE_STEPS * PERCENTILE_STEP_NS;
            self.early_ns = (self.early_ns + up).min(self.max_early_ns);
        } else {
            self.early_ns = self.early_ns.saturating_sub(PERCENTILE_STEP_NS);
        }
        self.armed_ns = u64::MAX;
        true
    }

    /// Makes the timer fire at `at_ns` (on the caller's clock, which reads `now_ns` now).
    ///
    /// Re-arming resets the timer's expiry count, so it never needs to be read: with the
    /// edge-triggered registration each expiry is one fresh event.
    pub fn arm(&mut self, at_ns: u64, now_ns: u64) -> io::Result<()> {
        if at_ns == self.armed_ns {
            return Ok(());
        }
        // A zero it_value would disarm the timer, so fire after at least one nanosecond.
        let wait = at_ns.saturating_sub(now_ns).max(1);
        let spec = libc::itimerspec {
            it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 },
            it_value: libc::timespec {
                tv_sec: (wait / 1_000_000_000) as libc::time_t,
                tv_nsec: (wait % 1_000_000_000) as libc::c_long,
            },
        };
        // SAFETY: `spec` is a valid itimerspec, the old-value pointer may be null, and the
        // descriptor is a timerfd we own.
        let rc =
            unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        self.armed_ns = at_ns;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXACT: Pacing = Pacing { cap_ns: 0, wake_cost_ns: None };

    #[test]
    fn threads_share_the_rate_and_connections_share_their_thread() {
        // 1000 msg/s over 4 connections on 2 threads: each connection every 4 ms, each
        // thread every 2 ms, thread 1 offset by the run's 1 ms interval.
        let mut a = Schedule::new(1000.0, 0, 2, 4, &EXACT);
        let b = Schedule::new(1000.0, 1, 2, 4, &EXACT);
        assert_eq!(a.due_ns(), 0);
        assert_eq!(b.due_ns(), 1_000_000);
        assert_eq!(a.take(), 0);
        assert_eq!(a.due_ns(), 2_000_000);
        assert_eq!(a.take(), 1);
        assert_eq!(a.take(), 0);
        assert_eq!(a.due_ns(), 6_000_000);
    }

    #[test]
    fn skipping_counts_the_sends_due_before_a_time() {
        let mut s = Schedule::new(1000.0, 0, 1, 1, &EXACT); // one send every millisecond from 0
        assert_eq!(s.index_at(0), 0);
        assert_eq!(s.index_at(1), 1);
        assert_eq!(s.index_at(5_000_000), 5);
        assert_eq!(s.index_at(5_000_001), 6);
        s.skip_to(5);
        assert_eq!(s.due_ns(), 5_000_000);
        // Never backwards.
        assert_eq!(s.index_at(0), 5);
        // Rates that do not divide a nanosecond evenly agree with `due_ns` too.
        let mut odd = Schedule::new(3.0e6, 1, 3, 7, &EXACT);
        for t in [0, 999, 1_000_001, 123_456_789] {
            let k = odd.index_at(t);
            odd.skip_to(k);
            assert!(odd.due_ns() >= t, "{t}");
            if k > 0 {
                let before = Schedule { next: k - 1, ..odd.clone() };
                assert!(before.due_ns() < t || k - 1 < odd.next(), "{t}");
            }
        }
    }

    #[test]
    fn the_timer_fires_early_by_the_90th_percentile_of_its_lateness_not_its_outliers() {
        let mut timer = Timer::new(1_000_000).unwrap();
        // Wake-ups 8 us late, and one in twenty 5 ms late (a thread preempted by other work).
        for k in 0..400u64 {
            let at = 1_000_000 * (k + 1);
            timer.arm(at, at - 500_000).unwrap();
            timer.fired(at + if k % 20 == 0 { 5_000_000 } else { 8_000 });
        }
        // Just above the 8 us (within one step up), far below the outliers.
        let early = timer.early_ns;
        assert!((7_000..=13_000).contains(&early), "fires {early} ns early");
        // However late the wake-ups, it never fires (and so spins) more than the cap early.
        for k in 400..500u64 {
            let at = 1_000_000 * (k + 1);
            timer.arm(at, at - 500_000).unwrap();
            timer.fired(at + 5_000_000);
        }
        assert_eq!(timer.early_ns, MAX_EARLY_NS);
        // Nor more than half the slack.
        let mut tight = Timer::new(60_000).unwrap();
        for k in 0..100u64 {
            let at = 1_000_000 * (k + 1);
            tight.arm(at, at - 500_000).unwrap();
            tight.fired(at + 5_000_000);
        }
        assert_eq!(tight.early_ns, 30_000);
    }

    #[test]
    fn the_timer_fires() {
        let mut poll = mio::Poll::new().unwrap();
        let mut timer = Timer::new(100_000).unwrap();
        timer.register(poll.registry(), Token(7)).unwrap();
        timer.arm(2_000_000, 0).unwrap();
        let mut events = mio::Events::with_capacity(4);
        let start = std::time::Instant::now();
        while events.is_empty() {
            assert!(start.elapsed() < std::time::Duration::from_secs(5), "the timer never fired");
            poll.poll(&mut events, Some(std::time::Duration::from_secs(1))).unwrap();
        }
        assert_eq!(events.iter().next().unwrap().token(), Token(7));
    }
}
