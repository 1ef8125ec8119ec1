//! The open loop's sending over UDP: datagrams leave when the [`Schedule`] says, on whichever
//! socket it names, whether or not earlier echoes came back; a send that cannot happen is
//! counted, never queued (see TCP's `worker/open.rs`, which this follows).
//!
//! [`Schedule`]: crate::schedule::Schedule

use std::time::Duration;

use super::{Worker, full, socket_error};
use crate::meter::Timeline;

impl Worker {
    /// Sends every datagram the schedule has made due.
    pub(super) fn send_due(&mut self, now: u64, tl: &Timeline) {
        // Sends already older than the timeout are given up without a look (see TCP's
        // `send_due`): a generator that far behind would spend itself on stale ones.
        self.give_up_until(now.saturating_sub(tl.timeout_ns), tl);
        let Some(schedule) = self.schedule.as_mut() else { return };
        // As in TCP mode, one wake-up sends every datagram due within the slack.
        let horizon = now + schedule.slack_ns();
        loop {
            let due = schedule.due_ns();
            if due > horizon || due >= tl.end_ns {
                break;
            }
            let i = schedule.take();
            let measured = due >= tl.measure_ns;
            let sent_ns = tl.now_ns();
            // A datagram sent early is timed from when it left, as TCP's are: timed from its due
            // time, the part of its round trip before that would be lost.
            let intended = due.min(sent_ns);
            match self.flows[i].send(&mut self.wbuf, intended, sent_ns, measured, &mut self.meter) {
                Ok(()) => {
                    if measured {
                        self.meter.lagged(sent_ns.saturating_sub(due));
                    }
                }
                Err(err) => {
                    if measured {
                        let c = &mut self.meter.counters;
                        c.scheduled += 1;
                        // A full buffer is the generator's own backlog; anything else (a
                        // socket that could not be opened, a refusal) means it was not sent.
                        if full(&err) {
                            c.backlogged += 1
                        } else {
                            c.not_sent += 1
                        }
                        self.meter.given_up(sent_ns, due, true);
                    }
                    if !full(&err) && self.flows[i].socket.is_some() {
                        let id = self.flows[i].id;
                        socket_error(&mut self.meter, &mut self.udp, id, sent_ns, &err);
                    }
                }
            }
        }
    }

    /// Gives up every send due before `until_ns` as backlogged (see [`crate::pace`]).
    pub(super) fn give_up_until(&mut self, until_ns: u64, tl: &Timeline) {
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
