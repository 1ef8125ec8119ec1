//! A load thread: one mio event loop driving its share of the connections, in any mode.
//!
//! - Closed loop: a connection starts with `--pipeline` messages in flight and sends one more
//!   for every echo that completes.
//! - Open loop: the [`Schedule`] says when the next message is due and on which connection;
//!   it goes out then whether or not earlier echoes came back.
//! - Churn: a closed loop of one message per connection, where the connection is closed once
//!   its echo is back and a new one is opened in its place.
//!
//! The cost per message is what the kernel forces: one `read` that may carry many echoes and
//! one `write` that may carry many messages. Streams are registered once for both readable
//! and writable events (edge-triggered), so no `epoll_ctl` happens per message, and a short
//! read ends the read loop without the extra `read` that would only return `WouldBlock`.

use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender};
use std::time::Duration;

use mio::{Events, Poll, Token};

use crate::config::Mode;
use crate::conn::{Conn, Loss, State};
use crate::meter::{Meter, Msg, Shared, Timeline};
use crate::phase::{Gate, PENDING, Phase};
use crate::rxstamp;
use crate::schedule::{Schedule, Timer};
use crate::stats::Recorder;
use crate::target::Target;

mod conns;
mod open;

/// What the coordinator hands each load thread.
#[derive(Debug)]
pub struct Plan {
    pub thread: usize,
    /// Global ids of this thread's connections (churn: of its connection slots).
    pub ids: Vec<u32>,
    pub cpu: Option<usize>,
    pub target: Target,
    pub mode: Mode,
    pub size: usize,
    pub pipeline: usize,
    /// `--split-writes`: each message in two write calls.
    pub split_writes: bool,
    pub warmup: Duration,
    pub duration: Duration,
    pub timeout: Duration,
    /// The interval log's interval, or `None` when no log is written.
    pub interval: Option<Duration>,
    /// Open loop: the most bytes a connection may have queued and not yet written. Sends due
    /// beyond it are counted as backlogged instead of buffered without bound.
    pub backlog_cap: usize,
    /// Open loop only.
    pub schedule: Option<Schedule>,
    /// Churn only: source addresses to rotate through.
    pub sources: Vec<IpAddr>,
    /// When the measured window opens (see [`Gate`]); the thread reports its connections'
    /// first echoes to it.
    pub gate: Arc<Gate>,
}

/// The timerfd's token; connections use their index.
const TIMER: Token = Token(usize::MAX - 1);
/// How often timeouts, reconnections and phase changes are checked when nothing else wakes
/// the loop.
const HOUSEKEEPING_NS: u64 = 10_000_000;
/// Bytes read per call: many echoes at once, but small enough to stay in cache.
const READ_BUF: usize = 64 * 1024;

/// Nanoseconds in `d`: `Config::validate` bounds every duration (30 days), so offsets from
/// the start fit a u64 with room to spare, and saturate rather than wrap if a caller skipped
/// the checks.
fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Runs one load thread to completion; everything it measured goes to the coordinator.
pub fn thread_main(
    mut plan: Plan,
    poll: Poll,
    shared: Arc<Shared>,
    channels: (Sender<Msg>, Receiver<Box<Recorder>>),
) {
    // The closed loop never has more than its pipeline in flight; the open loop's queue
    // grows to what the server leaves unanswered, from a modest start.
    let in_flight = if plan.mode == Mode::Open { 16 } else { plan.pipeline };
    let meter = Meter::new(
        plan.thread,
        plan.mode == Mode::Open,
        channels,
        shared.clone(),
        plan.interval.map(|length| length.as_nanos() as u64),
    );
    let stamps = plan.mode == Mode::Open;
    let mut worker = Worker {
        conns: plan.ids.iter().map(|&id| Conn::new(id, in_flight, in_flight * plan.size)).collect(),
        schedule: plan.schedule.take(),
        plan,
        poll,
        rbuf: vec![0; READ_BUF],
        meter,
        shared,
        timer: None,
        waits: None,
        stamps,
        slept: false,
        control: rxstamp::Control::new(),
        dirty: Vec::new(),
        next_source: 0,
        settled: Vec::new(),
        unsettled: 0,
        primed: false,
    };
    worker.settled = vec![false; worker.conns.len()];
    worker.unsettled = worker.conns.len();
    worker.dirty.reserve(worker.conns.len());
    if let Some(cpu) = worker.plan.cpu {
        match crate::cpu::pin_current_thread(&[cpu]) {
            Ok(_) => worker.meter.pinned = Some(cpu),
            Err(err) => worker.meter.trouble(|| format!("{err:#}")),
        }
    }
    worker.run();
}

struct Worker {
    plan: Plan,
    poll: Poll,
    conns: Vec<Conn>,
    rbuf: Vec<u8>,
    meter: Meter,
    shared: Arc<Shared>,
    schedule: Option<Schedule>,
    timer: Option<Timer>,
    /// Open loop: a poll that holds only the timer, to sleep on between sends while echoes
    /// wait in their sockets (see [`rxstamp`]).
    waits: Option<(Poll, Events)>,
    /// Open loop: every connection has the kernel stamp what it receives, so echoes are
    /// timed by that stamp and read at the next send rather than as they come.
    stamps: bool,
    /// Open loop: the loop slept before this pass, so echoes may have waited a while unread.
    slept: bool,
    control: rxstamp::Control,
    /// Open loop: connections given messages since the last flush.
    dirty: Vec<usize>,
    /// Churn: which source address the next connection binds.
    next_source: usize,
    /// Per connection (in churn: per slot): its first message has had an outcome, an echo
    /// or a failure (a timeout, a broken connection). See [`Gate`].
    settled: Vec<bool>,
    /// Connections not settled yet.
    unsettled: usize,
    /// None of this thread's connections waits for its first echo any more (see [`Gate`]).
    primed: bool,
}

impl Worker {
    fn run(mut self) {
        let timeline = self.connect_and_wait();
        self.meter.begin(&timeline);
        if let Some(schedule) = &self.schedule {
            self.timer = crate::pace::timer(schedule, self.poll.registry(), TIMER, &mut self.meter);
            self.prepare_lazy_reads();
        }
        let mut tl = timeline;
        self.meter.initial_up = self.conns.iter().filter(|c| c.state == State::Up).count() as u64;
        let mut events = Events::with_capacity(1024);
        for i in 0..self.conns.len() {
            if self.conns[i].state == State::Up {
                self.on_connected(i, 0, &tl);
            }
        }
        let mut phase = Phase::new(HOUSEKEEPING_NS);
        // The last poll returned as many events as it takes: more may be ready.
        let mut events_full = false;
        loop {
            if tl.measure_ns == PENDING
                && let Some(open) = self.plan.gate.open_ns()
            {
                // The coordinator has opened the window (see `Gate`): from here on it is
                // as if its edges had been known from the start.
                tl.measure_ns = open;
                tl.end_ns = open.saturating_add(duration_ns(self.plan.duration));
                self.meter.begin(&tl);
            }
            let now = tl.now_ns();
            self.meter.tick(now);
            let cancelled = self.shared.cancel.is_cancelled();
            if let Some(stopped_ns) = phase.stop(now, cancelled, &tl) {
                self.meter.stop_window(stopped_ns);
                // What fell due before the end goes out now, late (and its lag says so);
                // only what cannot go at all is given up.
                if self.schedule.is_some() {
                    self.send_due(now, &tl);
                }
                self.skip_overdue(stopped_ns, &tl);
            }
            if phase.done(now, cancelled, self.meter.in_flight) {
                break;
            }
            let sending = phase.sending();
            if phase.housekeeping_due(now) {
                self.housekeeping(now, sending, &tl);
                if !self.primed {
                    self.count_waiting();
                }
            }
            let mut timeout = Some(phase.timeout(now, &tl));
            if sending && self.schedule.is_some() {
                self.send_due(now, &tl);
                // The loop sleeps (on its timer, or on everything) unless a send is due at
                // once or more sockets are ready than its last poll took.
                self.slept = false;
                timeout = match self.arm_timer(&tl) {
                    Some(zero) => Some(zero),
                    None => {
                        self.slept = !events_full;
                        self.sleep_until_due(timeout, events_full, &tl)
                    }
                };
            }
            if let Err(err) = self.poll.poll(&mut events, timeout)
                && err.kind() != io::ErrorKind::Interrupted
            {
                self.meter.trouble(|| format!("epoll_wait failed, the thread stopped: {err}"));
                break;
            }
            // The moment the poll returned, read once: the timer's lateness is measured to it,
            // not to wherever its event falls in the list after other events' work.
            let woke = if self.timer.is_some() && !events.is_empty() { tl.now_ns() } else { 0 };
            let mut taken = 0;
            for event in &events {
                taken += 1;
                let i = event.token().0;
                if event.token() == TIMER {
                    if let Some(timer) = self.timer.as_mut() {
                        crate::pace::timer_fired(timer, &mut self.meter, woke);
                    }
                    continue;
                }
                if i >= self.conns.len() {
                    continue;
                }
                let closed = event.is_read_closed() || event.is_error();
                self.on_event(i, event.is_writable(), event.is_readable(), closed, sending, &tl);
            }
            events_full = taken >= events.capacity();
        }
        let end = tl.now_ns();
        let loss = if self.shared.cancel.is_cancelled() { Loss::Cancelled } else { Loss::Timeout };
        for conn in &mut self.conns {
            if conn.in_flight() > 0 && conn.fail(end, loss, &mut self.meter) > 0 {
                let id = conn.id;
                self.meter.error(true, || match loss {
                    Loss::Timeout => format!("connection {id}: no echo by the end of the drain"),
                    _ => format!("connection {id}: messages in flight when the run was cancelled"),
                });
            }
        }
        self.meter.echoes_stamped = self.stamps;
        self.meter.finish(phase.stopped_ns(), end);
    }

    /// A message of connection `i` was echoed, or the connection failed: if that was its
    /// first outcome, this thread may be primed.
    fn settled(&mut self, i: usize) {
        if !self.settled[i] {
            self.settled[i] = true;
            self.unsettled -= 1;
            if self.unsettled == 0 && !self.primed {
                self.count_waiting();
            }
        }
    }

    /// Counts the connections that wait for their first echo (up, with a message out, no
    /// outcome yet) and tells the gate; none left primes the thread. A connection that is
    /// down or still connecting is not waited for: its errors are counted as they come.
    fn count_waiting(&mut self) {
        let waiting = match self.unsettled {
            0 => 0,
            _ => self
                .conns
                .iter()
                .zip(&self.settled)
                .filter(|(c, settled)| !**settled && c.state == State::Up && c.in_flight() > 0)
                .count(),
        };
        // Callers count only while the thread is not primed, so the gate hears 0 once.
        self.plan.gate.count(self.plan.thread, waiting);
        self.primed = waiting == 0;
    }

    /// Opens every connection, tells the coordinator, and waits for the start signal. Each
    /// connection is then up, down (its first failure already reported), or still trying.
    fn connect_and_wait(&mut self) -> Timeline {
        let began = std::time::Instant::now();
        for i in 0..self.conns.len() {
            self.start_connect(i, 0);
        }
        let deadline = began.checked_add(self.plan.timeout).unwrap_or(began);
        let mut events = Events::with_capacity(1024);
        let mut told = false;
        loop {
            let connecting = self.conns.iter().any(|c| matches!(c.state, State::Connecting { .. }));
            if !told
                && (!connecting
                    || std::time::Instant::now() >= deadline
                    || self.shared.cancel.is_cancelled())
            {
                self.meter.ready();
                told = true;
            }
            if told && let Some(&start) = self.shared.start.get() {
                // The window's edges are not known yet: the gate opens it once every
                // connection has echoed, and the loop reads its decision on every pass.
                return Timeline {
                    base: start,
                    measure_ns: PENDING,
                    end_ns: PENDING,
                    timeout_ns: duration_ns(self.plan.timeout),
                };
            }
            if told {
                // Waiting for the other threads: asleep, not polling, so that hundreds of
                // threads waiting do not starve the coordinator still starting the last ones.
                // It wakes this thread once the start is set (events that come meanwhile wait
                // in the epoll set for the first poll of the run).
                std::thread::park_timeout(Duration::from_millis(50));
                continue;
            }
            // Connection events wake the poll; the timeout only bounds the deadline's lateness.
            let _ = self.poll.poll(&mut events, Some(Duration::from_millis(10)));
            for event in &events {
                let i = event.token().0;
                if i < self.conns.len() {
                    self.finish_connect(i, 0);
                }
            }
        }
    }
}
