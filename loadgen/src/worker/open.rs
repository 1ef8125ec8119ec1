//! The open loop's sending: messages leave when the [`Schedule`](crate::schedule::Schedule)
//! says, on whichever connection it names, whether or not earlier echoes came back.
//!
//! A send that cannot happen is accounted for, never dropped from the books: its connection
//! is down (`not_sent`), its connection's unwritten backlog is full because the server is not
//! reading (`backlogged`), or the generator itself is so far behind that the send is already
//! older than `--timeout` (`backlogged`, given up in bulk so that a hopeless `--rate` cannot
//! keep the loop counting for ever).
//!
//! The loop never spins: a wake-up sends every message due within [`SEND_SLACK_NS`] from
//! now, the later ones a little early, and the loop sleeps until the next one is due. A
//! wake-up costs more than a send here (a timer to re-arm, a sleep and a wake-up, and, when
//! the server is asleep too, a wake-up of the server's thread charged to the sender), so one
//! that happens anyway takes the next messages with it. A message that leaves early is timed
//! from when it left (its "intended" time is then its actual one), so no latency is
//! understated and its lag is 0.

use std::time::Duration;

use super::Worker;
use crate::conn::State;
use crate::meter::Timeline;
use crate::schedule::SEND_SLACK_NS;

impl Worker {
    /// Sends every message the schedule has made due, then writes each touched connection once.
    pub(super) fn send_due(&mut self, now: u64, tl: &Timeline) {
        // Sends already older than the timeout are given up without a look: a generator
        // that far behind (a rate beyond it) would otherwise spend itself sending stale ones.
        self.give_up_until(now.saturating_sub(tl.timeout_ns), tl);
        let Some(schedule) = self.schedule.as_mut() else { return };
        let mut burst = 0;
        let horizon = now + SEND_SLACK_NS;
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
                // A message sent early (within the slack) is timed from when it leaves: timed
                // from its due time, the part of its round trip before that would be lost.
                conn.queue(self.plan.size, due.min(now), now, measured, &mut self.meter);
                if measured {
                    self.meter.lagged(now.saturating_sub(due));
                }
                if first_visit {
                    self.dirty.push(i);
                }
            }
        }
        if !self.dirty.is_empty() {
            // The messages leave now, whatever their due time: uncorrected latency counts
            // from here, corrected latency from when they were due.
            let now = tl.now_ns();
            while let Some(i) = self.dirty.pop() {
                self.flush(i, now);
            }
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

    /// Arms the timer for the next batch (see [`crate::pace::arm_timer`]).
    pub(super) fn arm_timer(&mut self, tl: &Timeline) -> Option<Duration> {
        let schedule = self.schedule.as_ref()?;
        crate::pace::arm_timer(schedule, self.timer.as_mut(), &mut self.meter, tl)
    }
}
