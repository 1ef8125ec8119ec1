//! What the open loops of both transports share: how early a send may leave (the slack),
//! arming the timer for the next batch of sends, and giving up the sends a late loop can no
//! longer make. TCP's load thread (`worker/open.rs`) and UDP's (`udp/worker/open.rs`) differ
//! in how a message leaves, not in when it is due or how a missed one is booked, so that part
//! is written once, here.

use std::io;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Registry, Token};

use crate::meter::{Meter, Timeline};
use crate::schedule::{Schedule, Timer};

/// How early the open loop may send a message: a wake-up sends every message due within the
/// slack, so the loop wakes once per batch rather than once per message.
///
/// A sleeping thread's wake-up is what the open loop's CPU goes on. On this project's 2-vCPU
/// virtual machine one sleep and wake-up costs the thread about 30 us of CPU with no work in
/// it (a C loop of `clock_nanosleep` measured the same), so a loop that woke for each send at
/// 20k msgs/s (a send every 50 us) spent 0.6 of a core on sleeping alone, and all of a core
/// once it spun the last microseconds instead. On a physical machine a wake-up costs a few
/// microseconds. So the slack is not one figure for every machine: loadgen measures what a
/// sleep and wake-up costs where it runs (on the thread's CPU clock across the sleep: 12 to 20
/// us here; the rest of the 30 falls outside the two clock reads), and
/// without `--send-slack` allows [`AUTO_FACTOR`] times that, between [`MIN_AUTO_NS`] and
/// [`MAX_AUTO_NS`] (in steps of [`AUTO_STEP_NS`], so that runs on one machine mostly agree).
/// A wake-up of the loop costs two to three times the bare sleep measured (re-arming the
/// timer, the poll that collects what came meanwhile, waking the server's thread for the
/// batch's first message), so where the rate fills batches the loop's wake-ups cost about a
/// tenth of a core. Below one send per slack, each send gets its own wake-up.
///
/// The price is that sends due close together leave together, up to the slack early, and
/// reach the server as a small burst (the report gives the slack and the sends per wake-up).
/// So the slack is never more than [`MAX_BATCH`] of a thread's send intervals, given or not:
/// at high rates a batch would otherwise grow to dozens of messages queueing at the server
/// (and the loop's wake-ups then cost more than a tenth of a core). A message that leaves early
/// is timed from when it was written, so no latency is understated and its lag is 0.
/// `--send-slack 0` sends nothing early, for schedules that must be exact whatever the CPU:
/// the loop then sleeps until each send, and a wake-up that comes late shows as lag.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pacing {
    /// The most a send may leave early: `--send-slack`, or chosen from `wake_cost_ns`.
    pub cap_ns: u64,
    /// What one sleep and wake-up cost a thread here, measured at the start; `None` if it
    /// could not be (no timer: the load threads then say so, and their sends may be late).
    pub wake_cost_ns: Option<u64>,
}

/// The automatic slack's multiple of one wake-up's cost.
pub const AUTO_FACTOR: u64 = 32;
/// The automatic slack's bounds: at least this, even where wake-ups are nearly free, since a
/// batch costs the server fewer wake-ups too; at most this, close to the grain at which other
/// open-loop generators (wrk2's millisecond timers) send.
pub const MIN_AUTO_NS: u64 = 50_000;
pub const MAX_AUTO_NS: u64 = 1_000_000;
/// The automatic slack's step.
pub const AUTO_STEP_NS: u64 = 50_000;
/// The slack is at most this many of a thread's send intervals, so one pass of the loop sends
/// at most this many messages and the one due.
pub const MAX_BATCH: f64 = 10.0;
/// Sleeps timed to find a wake-up's cost, each this long; the median counts.
const CALIBRATION_SLEEPS: usize = 51;
const CALIBRATION_SLEEP_NS: u64 = 100_000;

impl Pacing {
    /// Measures a wake-up's cost (about 6 ms), for the slack `--send-slack` gives or, when
    /// `None`, the one chosen from it (the least, if the cost could not be measured).
    pub fn new(send_slack: Option<Duration>) -> Pacing {
        let wake_cost_ns = wake_cost_ns().ok();
        let cap_ns = match send_slack {
            Some(slack) => u64::try_from(slack.as_nanos()).unwrap_or(u64::MAX),
            None => wake_cost_ns.map_or(MIN_AUTO_NS, auto_slack_ns),
        };
        Pacing { cap_ns, wake_cost_ns }
    }

    /// The slack of a load thread whose sends fall due `interval_ns` apart.
    pub fn slack_ns(&self, interval_ns: f64) -> u64 {
        self.cap_ns.min((MAX_BATCH * interval_ns) as u64)
    }
}

/// The slack loadgen chooses for a wake-up that costs `wake_cost_ns`.
pub fn auto_slack_ns(wake_cost_ns: u64) -> u64 {
    (AUTO_FACTOR * wake_cost_ns).clamp(MIN_AUTO_NS, MAX_AUTO_NS) / AUTO_STEP_NS * AUTO_STEP_NS
}

/// The slack loadgen would choose on this machine, measured now (about 6 ms): for a caller
/// that runs loadgen many times, to pass as `--send-slack` so that every run batches alike
/// (the comparison harness does).
pub fn auto_send_slack() -> io::Result<Duration> {
    Ok(Duration::from_nanos(auto_slack_ns(wake_cost_ns()?)))
}

/// The CPU time one sleep on a timer and the wake-up after it cost the calling thread: the
/// median of a few short sleeps, each timed by the thread's own CPU clock (so a sleep that
/// was woken late by other work costs no more for it).
pub fn wake_cost_ns() -> io::Result<u64> {
    let mut timer = Timer::new(0)?;
    let mut poll = Poll::new()?;
    timer.register(poll.registry(), Token(0))?;
    let mut events = Events::with_capacity(1);
    let base = Instant::now();
    let mut costs = Vec::with_capacity(CALIBRATION_SLEEPS);
    for _ in 0..CALIBRATION_SLEEPS {
        let now = base.elapsed().as_nanos() as u64;
        timer.arm(now + CALIBRATION_SLEEP_NS, now)?;
        let before = thread_cpu_ns();
        // The timeout only bounds a timer that never fires.
        poll.poll(&mut events, Some(Duration::from_millis(50)))?;
        costs.push(thread_cpu_ns().saturating_sub(before));
    }
    costs.sort_unstable();
    Ok(costs[costs.len() / 2])
}

/// The calling thread's CPU time in nanoseconds, the slice it is running in included
/// (`getrusage` counts whole microseconds, and only the slices already over).
fn thread_cpu_ns() -> u64 {
    use nix::time::{ClockId, clock_gettime};
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map_or(0, |t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
}

/// At most this many overdue sends are given up one by one, each at its own age; beyond it
/// (only a rate far beyond the generator does that) they go in bulk, at `--timeout`.
const EXACT_GIVE_UP: u64 = 10_000;

/// The open loop's timer, registered in `registry` under `token`; `None` if none could be
/// made, which the report notes: sends may then be late. The thread's slack, which the timer
/// is made for, goes into the report here too (`generator.send_slack_us`).
pub(crate) fn timer(
    schedule: &Schedule,
    registry: &Registry,
    token: Token,
    meter: &mut Meter,
) -> Option<Timer> {
    meter.send_slack_ns = Some(schedule.slack_ns());
    let made =
        Timer::new(schedule.slack_ns()).and_then(|t| t.register(registry, token).map(|()| t));
    made.map_err(|err| meter.trouble(|| format!("no precise timer, sends may be late: {err}"))).ok()
}

/// The send timer's event woke the loop at `woke_ns`: the timer learns its lateness, and a
/// wake-up in the window is counted. Returns whether it was the armed deadline's expiry.
pub(crate) fn timer_fired(timer: &mut Timer, meter: &mut Meter, woke_ns: u64) -> bool {
    let fired = timer.fired(woke_ns);
    if fired && meter.measuring(woke_ns) {
        meter.counters.timer_wakeups += 1;
    }
    fired
}

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
/// is due sooner than a wake-up takes and the slack lets it go now, else `None`: the loop
/// sleeps and the timer wakes it. The loop never spins: a wake-up costs more than a send.
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
    // A send due sooner than a wake-up takes goes now, early, if the slack allows; with less
    // slack than that the loop still sleeps (and may wake late): it never spins.
    if due <= now + schedule.min_sleep_ns().min(schedule.slack_ns()) {
        return Some(Duration::ZERO);
    }
    if let Err(err) = timer?.wait_for(due, now) {
        meter.trouble(|| format!("cannot arm the send timer: {err}"));
    }
    None
}
