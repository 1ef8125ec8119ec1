//! Stopping a server on a schedule (SIGSTOP, then SIGCONT), and the promise that a stopped
//! server is never left behind.
//!
//! The lessons backlog and stall freeze the server to show what clients then see. A frozen
//! server that outlives its repeat would be a disaster: it holds its port, its connections
//! and, after the harness is gone, nothing would ever wake it (a stopped process ignores
//! SIGTERM until it is continued). So every SIGSTOP is paired with a SIGCONT on every path:
//!
//! - [`Stopper`] is a guard: its `Drop` resumes the server, so a repeat that ends early (the
//!   generator crashed, hung and was killed, or timed out) or a panic that unwinds through the
//!   runner resumes it too.
//! - The schedule runs on a thread that asks [`interrupted`] before every SIGSTOP: after
//!   Ctrl-C it stops nothing more.
//! - The Ctrl-C handler itself resumes the group that is stopped right now (the group is kept
//!   in an atomic, and `kill` is async-signal-safe), so even the second Ctrl-C, which leaves
//!   at once through `_exit`, leaves no stopped server behind.
//! - If the harness is killed outright (SIGKILL, which nothing can catch), the server's
//!   process group becomes orphaned, and the kernel sends every stopped member of an orphaned
//!   group SIGHUP and SIGCONT (POSIX job control): it wakes and ends.
//!
//! The signals go to the server's process group, which the harness created for it
//! (`process_group(0)` in [`crate::server`]): one `kill(-pgid)` stops the root, every thread
//! and every forked child at once, including a child forked a moment ago, which a walk of
//! /proc followed by a signal per process could miss.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::interrupt::interrupted;
use crate::plan::Stops;

/// The process group that is stopped right now (0: none), for the Ctrl-C handler. One is
/// enough: the harness runs one repeat, so one schedule, at a time (tests that run several
/// harnesses in one process never press Ctrl-C in it; each guard still resumes its own).
static STOPPED_GROUP: AtomicI32 = AtomicI32::new(0);

/// Resumes the group that is stopped right now, if any. Async-signal-safe (an atomic load and
/// `kill`), so the Ctrl-C handler calls it.
pub fn resume_from_signal_handler() {
    let group = STOPPED_GROUP.load(Ordering::SeqCst);
    if group > 0 {
        // SAFETY: kill takes two integers and touches no memory; it is async-signal-safe.
        unsafe { libc::kill(-group, libc::SIGCONT) };
    }
}

/// A stop schedule applied to one server's process group while a repeat runs. Dropping it
/// (or calling [`Stopper::finish`]) ends the schedule and resumes the server.
#[derive(Debug)]
pub struct Stopper {
    group: i32,
    cancel: Option<mpsc::Sender<()>>,
    schedule: Option<thread::JoinHandle<u32>>,
}

impl Stopper {
    /// Starts `stops` on the process group `group` (the server's pid, which leads its group),
    /// making no new stop from `until` on (the end of the measured window: a stop during the
    /// generator's final wait for its last echoes would only prolong it, and a repeating
    /// schedule would keep doing so). A schedule whose first stop is at zero stops the server
    /// before this returns, so the generator started next finds it stopped.
    pub fn start(group: u32, stops: Stops, until: Duration) -> Stopper {
        let group = group as i32;
        let started = Instant::now();
        if stops.after.is_zero() && !interrupted() {
            stop(group);
        }
        let (cancel, cancelled) = mpsc::channel::<()>();
        let schedule = thread::Builder::new()
            .name("stopper".into())
            .spawn(move || run(group, stops, started, until, &cancelled))
            .ok();
        if schedule.is_none() {
            // No thread, no schedule: never leave the server stopped for want of one.
            resume(group);
        }
        Stopper { group, cancel: Some(cancel), schedule }
    }

    /// Ends the schedule, resumes the server, and returns how many stops were made.
    pub fn finish(mut self) -> u32 {
        self.end()
    }

    fn end(&mut self) -> u32 {
        drop(self.cancel.take());
        let stops = self.schedule.take().and_then(|t| t.join().ok()).unwrap_or(0);
        resume(self.group);
        stops
    }
}

impl Drop for Stopper {
    fn drop(&mut self) {
        self.end();
    }
}

/// The schedule: sleeps until each edge (waking at once when cancelled), stopping and
/// resuming the group. Returns the number of stops, the first one included.
fn run(
    group: i32,
    stops: Stops,
    started: Instant,
    until: Duration,
    cancelled: &mpsc::Receiver<()>,
) -> u32 {
    let mut count = 0;
    let mut at = stops.after;
    loop {
        // The first stop at zero was made by `start`.
        if !at.is_zero() || count > 0 {
            if at >= until {
                return count;
            }
            if !wait_until(started + at, cancelled) || interrupted() {
                return count;
            }
            stop(group);
        }
        count += 1;
        let resumed = wait_until(started + at + stops.length, cancelled);
        resume(group);
        match stops.every {
            Some(every) if resumed && !every.is_zero() => at += every,
            _ => return count,
        }
    }
}

/// Sleeps until `when`; `false` if cancelled first (the channel's sender was dropped).
fn wait_until(when: Instant, cancelled: &mpsc::Receiver<()>) -> bool {
    let left = when.saturating_duration_since(Instant::now());
    // Nothing is ever sent: the only message is the sender's drop (Disconnected).
    matches!(cancelled.recv_timeout(left), Err(mpsc::RecvTimeoutError::Timeout))
}

fn stop(group: i32) {
    // Recorded before the signal, so a Ctrl-C arriving in between still resumes it; and
    // asked again after it, so a Ctrl-C whose handler ran just before the signal (and found
    // nothing stopped yet) cannot leave it stopped either.
    STOPPED_GROUP.store(group, Ordering::SeqCst);
    let _ = killpg(Pid::from_raw(group), Signal::SIGSTOP);
    if interrupted() {
        resume(group);
    }
}

fn resume(group: i32) {
    let _ = killpg(Pid::from_raw(group), Signal::SIGCONT);
    let _ = STOPPED_GROUP.compare_exchange(group, 0, Ordering::SeqCst, Ordering::SeqCst);
}
