//! The open loop's sending: messages leave when the [`Schedule`](crate::schedule::Schedule)
//! says, on whichever connection it names, whether or not earlier echoes came back.
//!
//! A send that cannot happen is accounted for, never dropped from the books: its connection
//! is down (`not_sent`), its connection's unwritten backlog is full because the server is not
//! reading (`backlogged`), or the generator itself is so far behind that the send is already
//! older than `--timeout` (`backlogged`, given up in bulk so that a hopeless `--rate` cannot
//! keep the loop counting for ever).
//!
//! The loop never spins: a wake-up sends every message due within the slack
//! ([`crate::pace::Pacing`]) from now, the later ones a little early, and the loop sleeps
//! until the next one is due. A wake-up costs more than a send (a timer to re-arm, a sleep
//! and a wake-up, and, when the server is asleep too, a wake-up of the server's thread
//! charged to the sender), so one that happens anyway takes the next messages with it. A
//! message that leaves early is timed from when it left (its "intended" time is then its
//! actual one), so no latency is understated and its lag is 0.
//!
//! Echoes do not wake the loop while it sends: it sleeps on a poll that holds only its timer,
//! and reads what came back at each wake-up, timing every echo by the kernel's receive stamp
//! ([`crate::rxstamp`]). Where the stream gives no stamp (Unix sockets), it sleeps on the
//! sockets too and reads echoes as they come.

use std::io;
use std::time::Duration;

use mio::{Events, Poll};

use super::{TIMER, Worker};
use crate::conn::State;
use crate::meter::Timeline;

impl Worker {
    /// Sends every message the schedule has made due, then writes each touched connection once.
    pub(super) fn send_due(&mut self, now: u64, tl: &Timeline) {
        // Sends already older than the timeout are given up without a look: a generator
        // that far behind (a rate beyond it) would otherwise spend itself sending stale ones.
        self.give_up_until(now.saturating_sub(tl.timeout_ns), tl);
        let Some(schedule) = self.schedule.as_mut() else { return };
        let mut burst = 0;
        let horizon = now + schedule.slack_ns();
        loop {
            let due = schedule.due_ns();
            if due > horizon || due >= tl.end_ns {
                break;
            }
            let i = schedule.take();
            let measured = due >= tl.measure_ns;
            let conn = &mut self.conns[i];
            // Round robin: the first `conns` sends of a burst go to distinct connections, so
            // each touched connection is listed (and written) once.
            let first_visit = burst < schedule.conns();
            burst += 1;
            if conn.state != State::Up {
                if measured {
                    self.meter.counters.not_sent += 1;
                    self.meter.counters.scheduled += 1;
                    self.meter.given_up(now, due, true);
                }
            } else if !conn.has_room(self.plan.size, self.plan.backlog_cap) {
                // The server has stopped taking bytes on this connection and loadgen's own
                // backlog for it is full: this send cannot happen on time, or at all.
                if measured {
                    self.meter.counters.backlogged += 1;
                    self.meter.counters.scheduled += 1;
                    self.meter.given_up(now, due, true);
                }
            } else {
                // A message sent early (within the slack) is timed from when it leaves (the
                // write sets that): timed from its due time, the part of its round trip
                // before that would be lost.
                conn.queue(self.plan.size, due, now, measured, &mut self.meter);
                if measured {
                    self.meter.lagged(now.saturating_sub(due));
                }
                if first_visit {
                    self.dirty.push(i);
                }
            }
        }
        // The messages leave now, whatever their due time: uncorrected latency counts from
        // each write (one clock read per write: a batch of writes takes a while), corrected
        // latency from when they were due or, if that is later, from the write.
        while let Some(i) = self.dirty.pop() {
            self.flush(i, tl.now_ns());
        }
    }

    /// When sending stops, the sends that were due before `stopped_ns` but that a late
    /// loop never reached: they were scheduled and never reached the socket, so they count as
    /// backlogged rather than vanishing from the schedule.
    pub(super) fn skip_overdue(&mut self, stopped_ns: u64, tl: &Timeline) {
        self.give_up_until(stopped_ns, tl);
    }

    /// Gives up every send due before `until_ns` as backlogged (see [`crate::pace`]).
    fn give_up_until(&mut self, until_ns: u64, tl: &Timeline) {
        let Some(schedule) = self.schedule.as_mut() else { return };
        let cancelled = self.shared.cancel.is_cancelled();
        crate::pace::give_up_until(schedule, &mut self.meter, cancelled, until_ns, tl);
    }

    /// Sets up the sleep between sends that echoes do not interrupt: a poll holding only the
    /// timer. Without a timer, or without stamps, the loop sleeps on everything as before.
    pub(super) fn prepare_lazy_reads(&mut self) {
        let waits = match &self.timer {
            Some(timer) if self.stamps => {
                Poll::new().and_then(|poll| timer.register(poll.registry(), TIMER).map(|()| poll))
            }
            _ => return self.stamps = false,
        };
        match waits {
            Ok(poll) => self.waits = Some((poll, Events::with_capacity(1))),
            Err(_) => self.stamps = false,
        }
    }

    /// The timer is armed for the next send: with stamped echoes, sleeps until it fires (or
    /// `timeout`, the housekeeping bound, passes) without waking for echoes, and returns the
    /// zero timeout with which the loop then collects what came meanwhile. Without stamps,
    /// returns `timeout`: the loop's own poll sleeps, and wakes for echoes too. When the
    /// loop's last poll came back full (`backlog`), more sockets are ready than it took: it
    /// takes them at once rather than leave echoes waiting a whole sleep.
    pub(super) fn sleep_until_due(
        &mut self,
        timeout: Option<Duration>,
        backlog: bool,
        tl: &Timeline,
    ) -> Option<Duration> {
        let (Some((waits, events)), Some(timer), true) =
            (self.waits.as_mut(), self.timer.as_mut(), self.stamps)
        else {
            return timeout;
        };
        if backlog {
            return Some(Duration::ZERO);
        }
        // An expiry the loop's own poll already reported may still wait here: then sleep on
        // for the one armed now (at most once more, so the loop never hangs on it).
        for _ in 0..2 {
            match waits.poll(events, timeout) {
                Ok(()) if events.is_empty() => break,
                Ok(()) => {
                    if crate::pace::timer_fired(timer, &mut self.meter, tl.now_ns()) {
                        break;
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => break,
                Err(err) => {
                    self.meter.trouble(|| format!("epoll_wait failed on the send timer: {err}"));
                    self.stamps = false;
                    return timeout;
                }
            }
        }
        Some(Duration::ZERO)
    }

    /// Arms the timer for the next batch (see [`crate::pace::arm_timer`]).
    pub(super) fn arm_timer(&mut self, tl: &Timeline) -> Option<Duration> {
        let schedule = self.schedule.as_ref()?;
        crate::pace::arm_timer(schedule, self.timer.as_mut(), &mut self.meter, tl)
    }
}
