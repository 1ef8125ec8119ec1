//! The thread that watches a server tree during a repeat, costing the generator as little CPU
//! as it can.
//!
//! CPU time and context switches are running totals, so two reads at the measured window's
//! edges give the window's figures; reads in between add nothing. The sampler takes those two
//! when loadgen marks the window's start and end (`loadgen --marks`, forwarded through a
//! [`Marker`]), one when it starts (a run without marks falls back to it), and one when it is
//! stopped.
//!
//! Peaks (PSS, threads, processes) need reads in between, but not many: a server's footprint
//! grows while connections open and then holds. So the peaks are read every [`PEAK_PERIOD`] at
//! most, and never more often than [`PEAK_PACE`] times the last read took: a read of a forking
//! server's 4,000 children (walking /proc and each one's `smaps_rollup`) that takes 200 ms
//! waits 4 s for the next. PSS is also read right after the CPU at the window's start, when
//! every connection is up (a read paced by a 0.2 s walk may not fall inside a short window),
//! and the peaks once more as the window closes, when the load has run longest and the
//! generator measures no more.
//!
//! The sampler's thread keeps off the generator's CPUs when it can ([`Sampler::start_avoiding`]):
//! what reading costs then falls on the server's side, whose figures are CPU time (which
//! reading does not add to) rather than the generator's, which measures latency.
//!
//! Before, the sampler read the whole tree (every task's `status` and `schedstat` too) every
//! 150 ms and PSS every 500 ms, backing off to a fifth of a CPU: in the reference run
//! 2026-12-07-vm-2 loadgen's load thread waited for its CPU 18% of a repeat against the fork
//! server with 4,000 idle connections.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use loadgen::Mark;

use super::{KernelMemory, Snapshot, Tracker};

/// How often the peaks are read, at most.
pub const PEAK_PERIOD: Duration = Duration::from_millis(500);

/// The pause after a read of the peaks is at least this many times what the read took, so
/// that reading the peaks costs at most 1/20 (5%) of a CPU however big the tree.
pub const PEAK_PACE: u32 = 20;

/// What the sampler's owner tells it.
#[derive(Debug)]
enum Cmd {
    Mark(Mark),
    Stop,
}

/// A thread that snapshots a tree until told to stop.
#[derive(Debug)]
pub struct Sampler {
    tx: mpsc::Sender<Cmd>,
    handle: thread::JoinHandle<Vec<Snapshot>>,
}

/// Tells a [`Sampler`] that the generator's window has just opened or closed; it reads the
/// tree's CPU at once. Cheap to clone and to send to another thread.
#[derive(Debug, Clone)]
pub struct Marker(mpsc::Sender<Cmd>);

impl Marker {
    /// Passes on `mark`; a sampler that has stopped ignores it.
    pub fn mark(&self, mark: Mark) {
        let _ = self.0.send(Cmd::Mark(mark));
    }
}

impl Sampler {
    /// Starts sampling the tree under `root` right away.
    pub fn start(root: u32) -> std::io::Result<Sampler> {
        Sampler::start_avoiding(root, &[])
    }

    /// Starts sampling the tree under `root` right away, from a thread kept off `cpus` (the
    /// generator's) when any other CPU is allowed: a read of a big tree takes a CPU for a
    /// while, and on the generator's CPU it delays the load it is measuring.
    pub fn start_avoiding(root: u32, cpus: &[usize]) -> std::io::Result<Sampler> {
        let (tx, rx) = mpsc::channel();
        let avoid = cpus.to_vec();
        // The kernel's memory before the generator starts, read here rather than on the
        // thread, which may not run before the generator has opened its connections.
        let kernel_before = KernelMemory::read().ok();
        let handle = thread::Builder::new().name("procstat".into()).spawn(move || {
            keep_off(&avoid);
            ahead_of_the_server();
            let mut tracker = Tracker::new(root);
            let mut samples = Vec::new();
            // The root is gone: the server died or is stopping; what we have is the record.
            let Ok(mut first) = tracker.snapshot(true) else { return samples };
            first.kernel = kernel_before;
            samples.push(first);
            let mut pause = PEAK_PERIOD;
            loop {
                match rx.recv_timeout(pause) {
                    Err(RecvTimeoutError::Timeout) => {
                        let began = Instant::now();
                        let Ok(snap) = Snapshot::peaks(root, true) else { break };
                        samples.push(snap);
                        pause = PEAK_PERIOD.max(began.elapsed() * PEAK_PACE);
                    }
                    Ok(Cmd::Mark(mark)) => {
                        // PSS is read after the CPU, so it does not blur the edge. At the start
                        // every connection is up; at the end the load has run longest, but a
                        // big tree may already be tearing down while it is read.
                        let Ok(mut snap) = tracker.snapshot(mark == Mark::Start) else { break };
                        snap.mark = Some(mark);
                        samples.push(snap);
                        if mark == Mark::End
                            && let Ok(peaks) = Snapshot::peaks(root, true)
                        {
                            samples.push(peaks);
                        }
                    }
                    // Asked to stop (or the owner is gone): take one last snapshot, so that a
                    // run without marks ends its window as close to the end of the load as
                    // possible.
                    Ok(Cmd::Stop) | Err(RecvTimeoutError::Disconnected) => {
                        if let Ok(snap) = tracker.snapshot(false) {
                            samples.push(snap);
                        }
                        break;
                    }
                }
            }
            samples
        })?;
        Ok(Sampler { tx, handle })
    }

    /// A handle for the generator's marks.
    pub fn marker(&self) -> Marker {
        Marker(self.tx.clone())
    }

    /// Stops sampling and returns every snapshot, oldest first.
    pub fn finish(self) -> Vec<Snapshot> {
        let _ = self.tx.send(Cmd::Stop);
        self.handle.join().unwrap_or_default()
    }
}

/// Gives the calling thread the highest nice value it may take (-20 as root), so that a read
/// at a window's mark is not queued behind the server it measures. Kept off the generator's
/// CPUs, the sampler shares the server's, and at nice 0 it waited there behind a thousand
/// busy processes or threads of a forking or threaded server: the window's first read took so
/// long that it was still going when the window closed, and the tree's CPU in the window came
/// out a ninth of what it was (fork at 1,000 connections: 1.0 against 9 us a message, and
/// `window_seconds` 0.3 of a 0.5 s window). The sampler reads at the two marks and, paced, for
/// peaks (at most 5% of a CPU), so running first costs the server little. Without the right
/// to lower it (not root), the thread keeps its nice value.
fn ahead_of_the_server() {
    // SAFETY: gettid and setpriority take plain integers and touch no memory of ours; on Linux
    // PRIO_PROCESS with a thread id sets that one thread's nice value.
    unsafe {
        let tid = libc::gettid();
        let _ = libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, -20);
    }
}

/// Moves the calling thread off `cpus`, onto the other CPUs it may run on; leaves it where it
/// is when there are none (or `cpus` is empty).
fn keep_off(cpus: &[usize]) {
    use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
    use nix::unistd::Pid;
    if cpus.is_empty() {
        return;
    }
    let Ok(allowed) = sched_getaffinity(Pid::from_raw(0)) else { return };
    let mut rest = CpuSet::new();
    let mut any = false;
    for cpu in (0..CpuSet::count()).filter(|c| !cpus.contains(c)) {
        if allowed.is_set(cpu).unwrap_or(false) && rest.set(cpu).is_ok() {
            any = true;
        }
    }
    if any {
        let _ = sched_setaffinity(Pid::from_raw(0), &rest);
    }
}
