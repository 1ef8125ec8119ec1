//! The open loop's sending over UDP: datagrams leave when the [`Schedule`] says, on whichever
//! socket it names, whether or not earlier echoes came back; a send that cannot happen is
//! counted, never queued (see TCP's `worker/open.rs`, which this follows).
//!
//! [`Schedule`]: crate::schedule::Schedule

use std::time::Duration;

use super::{EXACT_GIVE_UP, Worker, full, socket_error};
use crate::meter::Timeline;

impl Worker {
    /// Sends every datagram the schedule has made due.
    pub(super) fn send_due(&mut self, now: u64, tl: &Timeline) {
        // Sends already older than the timeout are given up without a look (see TCP's
        // `send_due`): a generator that far behind would spend itself on stale ones.
        self.give_up_until(now.saturating_sub(tl.timeout_ns), tl);
        let Some(schedule) = self.schedule.as_mut() else { return };
        loop {
            let due = schedule.due_ns();
            if due > now || due >= tl.end_ns {
                break;
            }
            let i = schedule.take();
            let measured = due >= tl.measure_ns;
            let sent_ns = tl.now_ns();
            match self.flows[i].send(&mut self.wbuf, due, sent_ns, measured, &mut self.meter) {
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

    /// Gives up every send due before `until_ns` (within the window) as backlogged: one by
    /// one at its own age when there are few, in bulk at `--timeout` when there are many.
    pub(super) fn give_up_until(&mut self, until_ns: u64, tl: &Timeline) {
        let Some(schedule) = self.schedule.as_mut() else { return };
        let until_ns = until_ns.min(tl.end_ns);
        if schedule.due_ns() >= until_ns {
            return;
        }
        let cancelled = self.shared.cancel.is_cancelled();
        let end = schedule.index_at(until_ns);
        let measured_from = schedule.index_at(tl.measure_ns).min(end);
        let counted = end - measured_from.max(schedule.next());
        self.meter.counters.scheduled += counted;
        self.meter.counters.backlogged += counted;
        if counted > EXACT_GIVE_UP {
            self.meter.given_up_in_bulk(counted);
            schedule.skip_to(end);
            return;
        }
        let now = tl.now_ns();
        while schedule.next() < end {
            let due = schedule.due_ns();
            if due >= tl.measure_ns {
                self.meter.given_up(now, due, !cancelled);
            }
            schedule.take();
        }
    }

    /// Arms the timer for the next due send; returns a zero poll timeout if it is due already
    /// or so close that the loop should spin rather than sleep (then `spinning` is set).
    pub(super) fn arm_timer(&mut self, tl: &Timeline) -> Option<Duration> {
        self.spinning = false;
        let due = self.schedule.as_ref()?.due_ns();
        if due >= tl.end_ns {
            return None;
        }
        let now = tl.now_ns();
        if due <= now {
            return Some(Duration::ZERO);
        }
        let timer = self.timer.as_mut()?;
        match timer.wait_for(due, now) {
            Ok(timeout) => {
                self.spinning = timeout.is_some();
                timeout
            }
            Err(err) => {
                self.meter.trouble(|| format!("cannot arm the send timer: {err}"));
                None
            }
        }
    }
}
