//! The generator's own CPU: where its threads may run, and how much time they spend.
//!
//! A load generator that is itself saturated measures itself, not the server. So each load
//! thread reads its own CPU time (`getrusage(RUSAGE_THREAD)`, user plus system) at the start
//! and end of the measured window, and the run compares it with the wall time.
//!
//! CPU time alone misses a generator that is starved rather than busy: a thread that waits
//! for a CPU (because other threads, of loadgen or of anyone, hold it) uses little CPU yet
//! sends late and reads echoes late. The kernel counts that wait as the thread's *run delay*
//! (time runnable but not running, the second field of `/proc/thread-self/schedstat`), so
//! each load thread reads that too.

use std::time::Duration;

use anyhow::{Context, Result};
use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::sys::resource::{UsageWho, getrusage};
use nix::unistd::Pid;

/// CPU time consumed, split the way the kernel accounts it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTime {
    pub user: Duration,
    pub system: Duration,
}

impl CpuTime {
    /// The calling thread's CPU time so far.
    pub fn thread() -> CpuTime {
        CpuTime::of(UsageWho::RUSAGE_THREAD)
    }

    /// The whole process's CPU time so far (every thread, live or finished).
    pub fn process() -> CpuTime {
        CpuTime::of(UsageWho::RUSAGE_SELF)
    }

    fn of(who: UsageWho) -> CpuTime {
        // getrusage cannot fail for these arguments; zero keeps a report going if it ever did.
        match getrusage(who) {
            Ok(usage) => CpuTime {
                user: to_duration(usage.user_time()),
                system: to_duration(usage.system_time()),
            },
            Err(_) => CpuTime::default(),
        }
    }

    pub fn total(&self) -> Duration {
        self.user + self.system
    }

    /// The time spent between `earlier` and `self`.
    pub fn since(&self, earlier: &CpuTime) -> CpuTime {
        CpuTime {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }

    pub fn add(&self, other: &CpuTime) -> CpuTime {
        CpuTime { user: self.user + other.user, system: self.system + other.system }
    }
}

/// The calling thread's run delay so far: nanoseconds it spent runnable, waiting for a CPU.
/// `None` if the kernel does not keep scheduler statistics (no `CONFIG_SCHED_INFO`).
pub fn thread_run_delay_ns() -> Option<u64> {
    // "on-CPU ns, run-queue wait ns, time slices"; a few microseconds to read, twice a run.
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().nth(1)?.parse().ok()
}

fn to_duration(tv: nix::sys::time::TimeVal) -> Duration {
    Duration::from_secs(tv.tv_sec().max(0) as u64)
        + Duration::from_micros(tv.tv_usec().max(0) as u64)
}

/// The CPUs this process may run on (its affinity mask), in ascending order.
pub fn allowed_cpus() -> Result<Vec<usize>> {
    let set = sched_getaffinity(Pid::from_raw(0))?;
    Ok((0..CpuSet::count()).filter(|&cpu| set.is_set(cpu).unwrap_or(false)).collect())
}

/// Restricts the calling thread to `cpus`, returning the mask it had so it can be restored.
pub fn pin_current_thread(cpus: &[usize]) -> Result<CpuSet> {
    let previous =
        sched_getaffinity(Pid::from_raw(0)).context("cannot read the thread's CPU affinity")?;
    let mut set = CpuSet::new();
    for &cpu in cpus {
        set.set(cpu).with_context(|| format!("CPU {cpu} is out of range"))?;
    }
    // Pid 0 means the calling thread: affinity is per thread on Linux.
    sched_setaffinity(Pid::from_raw(0), &set)
        .with_context(|| format!("cannot pin a thread to CPUs {cpus:?}"))?;
    Ok(previous)
}

/// Puts back a mask that [`pin_current_thread`] returned.
pub fn restore_affinity(previous: &CpuSet) {
    // Failing to restore only leaves the caller's thread pinned; nothing to report it to.
    let _ = sched_setaffinity(Pid::from_raw(0), previous);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_cpu_time_grows_with_work() {
        // Spin until the thread's own clock moves; the wall-clock bound only stops a hang.
        let before = CpuTime::thread();
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while CpuTime::thread().since(&before).total() < Duration::from_millis(10) {
            assert!(start.elapsed() < Duration::from_secs(10), "thread CPU time never moved");
            for _ in 0..10_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(1));
            }
        }
        assert!(CpuTime::process().total() >= Duration::from_millis(10));
    }

    #[test]
    fn run_delay_is_read_where_the_kernel_keeps_it() {
        // Every Linux kernel this suite targets has schedstat; a missing file would silently
        // blind the saturation verdict, so it fails here instead.
        let first = thread_run_delay_ns().expect("/proc/thread-self/schedstat is readable");
        std::thread::yield_now();
        assert!(thread_run_delay_ns().unwrap() >= first);
    }

    #[test]
    fn this_process_may_run_somewhere() {
        assert!(!allowed_cpus().unwrap().is_empty());
    }
}
