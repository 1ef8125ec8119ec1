//! A load thread's link to the run: the shared timeline, what the thread counts and times,
//! and the hand-off of each interval's histograms to the coordinating thread.
//!
//! Load threads never share a histogram or counter while running (no locks, no cache lines
//! bouncing between CPUs). Each fills its own [`Recorder`]. When an interval log is written,
//! the thread sends it to the coordinator at every interval boundary, and the coordinator
//! merges the threads' intervals, writes the log, sums the totals, and hands the emptied
//! recorder back for reuse (a recorder is about a megabyte: allocating one per interval per
//! thread would churn memory for nothing). Without a log the thread keeps one recorder for
//! the whole run and sends it at the end. Only a progress counter is shared, updated every
//! few milliseconds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crate::Cancel;
use crate::cpu::{self, CpuTime};
use crate::stats::{Counters, Recorder};

/// State every load thread and the coordinator share.
#[derive(Debug)]
pub struct Shared {
    /// The instant the run starts (warmup begins), set by the coordinator once every thread
    /// has its connections up; threads wait for it.
    pub start: OnceLock<Instant>,
    pub cancel: Cancel,
    /// Messages received in the measured window so far, per thread, for the progress bar.
    pub received: Vec<AtomicU64>,
}

/// What a load thread tells the coordinator.
#[derive(Debug)]
pub enum Msg {
    /// Connections are up (or have failed once); the thread waits for the start.
    Ready,
    /// The histograms of one interval of the measured window, numbered from 0.
    Interval { thread: usize, index: u64, recorder: Box<Recorder> },
    /// The thread has finished, with its last (partial) interval, numbered as in `Interval`.
    Done { thread: usize, last: Option<(u64, Box<Recorder>)>, result: Box<ThreadResult> },
}

/// A load thread's totals.
#[derive(Debug, Clone, Default)]
pub struct ThreadResult {
    pub counters: Counters,
    /// CPU time of this thread from the start of the measured window to its end.
    pub cpu: CpuTime,
    /// Time this thread was runnable but waiting for a CPU over the same span (`None`
    /// without scheduler statistics).
    pub run_delay_ns: Option<u64>,
    /// The CPU the thread was pinned to, if any.
    pub pinned: Option<usize>,
    /// Wall time over which `cpu` was spent.
    pub wall_ns: u64,
    /// When this thread stopped sending, in nanoseconds after the start.
    pub stopped_ns: u64,
    /// When this thread finished waiting for stragglers.
    pub finished_ns: u64,
    /// Connections up when the run started.
    pub initial_up: u64,
    /// The first error the window's figures include (see [`Meter::error`]).
    pub first_error: Option<String>,
    /// UDP mode's own counts (all zero in the other modes).
    pub udp: crate::udp::Counters,
    /// The first error before the window, which no figure includes.
    pub first_warmup_error: Option<String>,
    pub first_mismatch: Option<String>,
    /// The first thing that went wrong with the load thread itself (a CPU it could not be
    /// pinned to, no precise timer): a reason to doubt the generator, not the server.
    pub trouble: Option<String>,
    /// Open loop: every echo this thread read was timed by the kernel's receive stamp.
    pub echoes_stamped: bool,
    /// Open loop: how early this thread's sends could leave.
    pub send_slack_ns: Option<u64>,
}

/// The run's phases, as nanosecond offsets from the shared start.
#[derive(Debug, Clone, Copy)]
pub struct Timeline {
    pub base: Instant,
    /// Warmup ends and measurement starts.
    pub measure_ns: u64,
    /// Measurement ends: no message is sent after it.
    pub end_ns: u64,
    pub timeout_ns: u64,
}

impl Timeline {
    /// Nanoseconds since the start. One vDSO clock read, no system call.
    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }
}

/// How often a thread publishes its progress counter.
const PUBLISH_EVERY_NS: u64 = 50_000_000;

/// Everything one load thread counts and times.
#[derive(Debug)]
pub struct Meter {
    pub counters: Counters,
    /// Messages in flight on this thread, measured or not: the thread is done draining when
    /// this reaches zero.
    pub in_flight: u64,
    pub first_error: Option<String>,
    pub first_warmup_error: Option<String>,
    pub first_mismatch: Option<String>,
    pub trouble: Option<String>,
    /// Connections up when the run started.
    pub initial_up: u64,
    /// UDP mode's own counts, set by its load thread before [`Meter::finish`].
    pub udp: crate::udp::Counters,
    /// Whether to keep the uncorrected latency apart (the open loop); otherwise both are one.
    open: bool,
    recorder: Box<Recorder>,
    thread: usize,
    tx: Sender<Msg>,
    /// Recorders the coordinator has emptied and handed back.
    spares: Receiver<Box<Recorder>>,
    shared: Arc<Shared>,
    measure_ns: u64,
    /// `--timeout`: the least a given-up message is recorded at.
    timeout_ns: u64,
    /// Echoes arriving before this count towards throughput: the end of the window, or the
    /// moment sending stopped if the run was cancelled.
    window_end_ns: u64,
    /// Interval length of the log, or `None` when no log is written (one interval then).
    interval_ns: Option<u64>,
    index: u64,
    next_boundary_ns: u64,
    next_publish_ns: u64,
    cpu_start: Option<(CpuTime, Option<u64>, u64)>,
    /// The CPU this thread is pinned to, if any.
    pub pinned: Option<usize>,
    /// Open loop: every echo was timed by the kernel's receive stamp (set by the load thread).
    pub echoes_stamped: bool,
    /// Open loop: how early sends could leave (set by the load thread).
    pub send_slack_ns: Option<u64>,
}

impl Meter {
    pub fn new(
        thread: usize,
        open: bool,
        (tx, spares): (Sender<Msg>, Receiver<Box<Recorder>>),
        shared: Arc<Shared>,
        interval_ns: Option<u64>,
    ) -> Meter {
        Meter {
            counters: Counters::default(),
            in_flight: 0,
            first_error: None,
            first_warmup_error: None,
            first_mismatch: None,
            trouble: None,
            initial_up: 0,
            udp: crate::udp::Counters::default(),
            open,
            recorder: Box::new(Recorder::new()),
            thread,
            tx,
            spares,
            shared,
            measure_ns: u64::MAX,
            timeout_ns: 0,
            window_end_ns: u64::MAX,
            interval_ns,
            index: 0,
            next_boundary_ns: u64::MAX,
            next_publish_ns: 0,
            cpu_start: None,
            pinned: None,
            echoes_stamped: false,
            send_slack_ns: None,
        }
    }

    /// Tells the coordinator the connections are up.
    pub fn ready(&self) {
        // A closed channel means the coordinator has gone; the thread will notice the cancel.
        let _ = self.tx.send(Msg::Ready);
    }

    /// Sets the timeline once the coordinator has started the run.
    pub fn begin(&mut self, timeline: &Timeline) {
        self.measure_ns = timeline.measure_ns;
        self.window_end_ns = timeline.end_ns;
        self.timeout_ns = timeline.timeout_ns;
        self.next_boundary_ns =
            self.interval_ns.map_or(u64::MAX, |length| timeline.measure_ns.saturating_add(length));
    }

    /// An intact echo arrived at `now_ns`, of any message (warmup's included): throughput
    /// counts the arrivals inside the window, so the drain after it cannot inflate the rate.
    #[inline]
    pub fn echoed(&mut self, now_ns: u64) {
        if now_ns >= self.measure_ns && now_ns < self.window_end_ns {
            self.counters.received_in_window += 1;
        }
    }

    /// Sending stopped at `stopped_ns` (at the window's end, or earlier when cancelled):
    /// later arrivals no longer count towards throughput.
    pub fn stop_window(&mut self, stopped_ns: u64) {
        self.window_end_ns = self.window_end_ns.min(stopped_ns);
    }

    /// A message sent inside the window came back intact.
    #[inline]
    pub fn received(&mut self, now_ns: u64, intended_ns: u64, sent_ns: u64) {
        self.counters.received += 1;
        self.recorder.corrected.saturating_record(now_ns.saturating_sub(intended_ns));
        if self.open {
            self.recorder.uncorrected.saturating_record(now_ns.saturating_sub(sent_ns));
        }
    }

    /// A message meant for the window was given up at `now_ns` (timed out, lost, or never
    /// sent on schedule): it goes into the latency at its age, at least `--timeout` unless
    /// `floor` is false (the run was cancelled: its age is all that is known).
    pub fn given_up(&mut self, now_ns: u64, intended_ns: u64, floor: bool) {
        let age = now_ns.saturating_sub(intended_ns);
        let age = if floor { age.max(self.timeout_ns) } else { age };
        self.recorder.failed.saturating_record(age);
    }

    /// `count` sends given up in bulk, each recorded at `--timeout`: the least any of them
    /// waited (they were already that late). Only for a rate far beyond the generator.
    pub fn given_up_in_bulk(&mut self, count: u64) {
        if count > 0 {
            self.recorder.failed.saturating_record_n(self.timeout_ns, count);
        }
    }

    /// A churn connection became usable `ns` after its `connect`.
    pub fn connected_after(&mut self, ns: u64) {
        self.recorder.connect.saturating_record(ns);
    }

    /// An open-loop message left `ns` after its scheduled time.
    #[inline]
    pub fn lagged(&mut self, ns: u64) {
        self.recorder.lag.saturating_record(ns);
    }

    /// Describes an error: as the first error when `counted` (the window's figures include
    /// it), else as the first of the warm-up, which no figure includes. Kept apart, the
    /// report's first error can never describe something its counts leave out. Only the
    /// first of each is formatted, so a storm of errors costs nothing extra.
    pub fn error(&mut self, counted: bool, describe: impl FnOnce() -> String) {
        let slot = if counted { &mut self.first_error } else { &mut self.first_warmup_error };
        if slot.is_none() {
            *slot = Some(describe());
        }
    }

    /// Something went wrong with the load thread itself rather than with the server.
    pub fn trouble(&mut self, describe: impl FnOnce() -> String) {
        if self.trouble.is_none() {
            self.trouble = Some(describe());
        }
    }

    /// Whether a message queued before the window and given its outcome (echoed, timed out,
    /// lost) at `now_ns` belongs to the window: it was still outstanding when the window
    /// opened, so what happens to it from then on is the window's. Without this, a
    /// connection that stalls during warm-up would be dead for the whole window and no
    /// figure would say so. (A run cancelled before its window opened has no window.)
    #[inline]
    pub fn adopts(&self, now_ns: u64) -> bool {
        now_ns >= self.measure_ns && self.window_end_ns > self.measure_ns
    }

    /// Whether `now_ns` is inside the measured part of the run (errors before it are warmup).
    pub fn measuring(&self, now_ns: u64) -> bool {
        now_ns >= self.measure_ns
    }

    /// Called on every pass of the thread's loop: starts the CPU clock when measurement
    /// begins, hands over an interval at each boundary, and publishes progress.
    #[inline]
    pub fn tick(&mut self, now_ns: u64) {
        if now_ns >= self.next_boundary_ns
            && let Some(length) = self.interval_ns
        {
            self.send_interval();
            let intervals_done = (now_ns - self.measure_ns) / length;
            self.index = intervals_done;
            self.next_boundary_ns = self.measure_ns + (intervals_done + 1) * length;
        }
        if self.cpu_start.is_none() && now_ns >= self.measure_ns {
            self.cpu_start = Some((CpuTime::thread(), cpu::thread_run_delay_ns(), now_ns));
        }
        if now_ns >= self.next_publish_ns {
            self.next_publish_ns = now_ns + PUBLISH_EVERY_NS;
            self.shared.received[self.thread].store(self.counters.received, Ordering::Relaxed);
        }
    }

    fn send_interval(&mut self) {
        // A recorder handed back is already empty; a new one is needed only while the
        // coordinator has not caught up (normally just for the first two intervals).
        let fresh = self.spares.try_recv().unwrap_or_default();
        let recorder = std::mem::replace(&mut self.recorder, fresh);
        let _ = self.tx.send(Msg::Interval { thread: self.thread, index: self.index, recorder });
    }

    /// Sends the thread's totals and its last interval.
    pub fn finish(mut self, stopped_ns: u64, finished_ns: u64) {
        self.shared.received[self.thread].store(self.counters.received, Ordering::Relaxed);
        let last =
            (self.measure_ns != u64::MAX).then(|| (self.index, std::mem::take(&mut self.recorder)));
        let (cpu, run_delay_ns, wall_ns) = match self.cpu_start {
            Some((start, delay, at)) => (
                CpuTime::thread().since(&start),
                delay.zip(cpu::thread_run_delay_ns()).map(|(a, b)| b.saturating_sub(a)),
                finished_ns.saturating_sub(at),
            ),
            None => (CpuTime::default(), None, 0),
        };
        let result = ThreadResult {
            counters: self.counters,
            cpu,
            run_delay_ns,
            pinned: self.pinned,
            wall_ns,
            stopped_ns,
            finished_ns,
            initial_up: self.initial_up,
            first_error: self.first_error.take(),
            udp: self.udp,
            first_warmup_error: self.first_warmup_error.take(),
            first_mismatch: self.first_mismatch.take(),
            trouble: self.trouble.take(),
            echoes_stamped: self.echoes_stamped,
            send_slack_ns: self.send_slack_ns,
        };
        let _ = self.tx.send(Msg::Done { thread: self.thread, last, result: Box::new(result) });
    }
}
