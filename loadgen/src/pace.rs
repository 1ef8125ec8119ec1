//! What the open loops of both transports share: arming the timer for the next batch of sends,
//! and giving up the sends a late loop can no longer make. TCP's load thread
//! (`worker/open.rs`) and UDP's (`udp/worker/open.rs`) differ in how a message leaves, not in
//! when it is due or how a missed one is booked, so that part is written once, here.

use std::time::Duration;

use crate::meter::{Meter, Timeline};
use crate::schedule::{SEND_SLACK_NS, Schedule, Timer};

/// At most this many overdue sends are given up one by one, each at its own age; beyond it
/// (only a rate far beyond the generator does that) they go in bulk, at `--timeout`.
const EXACT_GIVE_UP: u64 = 10_000;

/// Gives up every send due before `until_ns` (within the window) as backlogged: one by one at
/// its own age when there are few, in bulk at `--timeout` when there are many. A send given
/// up after a cancel is not counted as the server's timeout.
pub(crate) fn give_up_until(
    schedule: &mut Schedule,
    meter: &mut Meter,
    cancelled: bool,
    until_ns: u64,
    tl: &Timeline,
) {
    let until_ns = until_ns.min(tl.end_ns);
    if schedule.due_ns() >= until_ns {
        return;
    }
    let end = schedule.index_at(until_ns);
    let measured_from = schedule.index_at(tl.measure_ns).min(end);
    let counted = end - measured_from.max(schedule.next());
    meter.counters.scheduled += counted;
    meter.counters.backlogged += counted;
    if counted > EXACT_GIVE_UP {
        meter.given_up_in_bulk(counted);
        schedule.skip_to(end);
        return;
    }
    let now = tl.now_ns();
    while schedule.next() < end {
        let due = schedule.due_ns();
        if due >= tl.measure_ns {
            meter.given_up(now, due, !cancelled);
        }
        schedule.take();
    }
}

/// Arms `timer` for the schedule's next batch; returns a zero poll timeout if its first send
/// is already within the slack (time has passed since the loop last sent), else `None`: the
/// timer wakes the loop. The loop never spins: a wake-up costs more than a send here.
pub(crate) fn arm_timer(
    schedule: &Schedule,
    timer: Option<&mut Timer>,
    meter: &mut Meter,
    tl: &Timeline,
) -> Option<Duration> {
    let due = schedule.due_ns();
    if due >= tl.end_ns {
        return None;
    }
    let now = tl.now_ns();
    if due <= now + SEND_SLACK_NS {
        return Some(Duration::ZERO);
    }
    if let Err(err) = timer?.wait_for(due, now) {
        meter.trouble(|| format!("cannot arm the send timer: {err}"));
    }
    None
}
