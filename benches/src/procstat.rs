//! What a server process tree costs, read from /proc while it runs.
//!
//! The server is a tree: one process for the thread, mio and hybrid models, one per connection
//! for fork. Each figure needs care to count every member once:
//!
//! - Members: the root plus every process whose parent chain leads to it, found by reading
//!   the parent pid in every `/proc/PID/stat`. (`task/*/children` would list a root's
//!   children in one read, but only on kernels built with CONFIG_PROC_CHILDREN; 6.18 here has
//!   it. Most of a walk's cost is reading the members themselves, which it would not save.)
//! - CPU: the root's utime+stime (its exited threads included) plus its cutime+cstime, which
//!   is where the kernel adds a child's time once the root has reaped it; plus every live
//!   descendant's run time from `task/*/schedstat`, in nanoseconds. Why not every member's
//!   utime+stime? They are whole 10 ms ticks per process, truncated: a fork server's hundred
//!   children each doing 17 ms of work read as 0 or 1 tick each, and the sum lost most of the
//!   CPU in a test here. The root's figures are one truncation each (error under 40 ms, not
//!   cumulative); the user/system split comes from the tick counts, in proportion.
//! - Memory: PSS from `smaps_rollup`, summed. A page shared by N processes counts 1/N in each,
//!   so the sum is the tree's real footprint; summed RSS would count fork's shared pages N times.
//! - Kernel memory (procstat/memory.rs), beside each PSS read: /proc/meminfo's slab, kernel
//!   stack and page-table figures (machine-wide: both ends of every connection), and the
//!   tree's own page tables (`VmPTE`) and kernel stacks (one per thread).
//! - Context switches: `/proc/PID/status` has only the main thread's, so every task's
//!   `task/TID/status` is read (a one-thread process's own `status` is its one task's). Tasks
//!   that exit between two snapshots are lost; the tracker keeps a running total so that a
//!   task that exits after being seen keeps what it contributed. CPU and switches are read at
//!   the measured window's edges only, and the peaks between them ([`Sampler`]).

use std::collections::HashMap;
use std::fs;
use std::io;
use std::thread;
use std::time::{Duration, Instant};

use loadgen::Mark;

mod memory;
mod sampler;
mod usage;
pub use memory::{
    KERNEL_STACK_KIB, KernelMemory, TreeKernel, pss_without_files, read_page_tables_kib,
    read_pss_kib,
};
pub use sampler::{Marker, PEAK_PACE, PEAK_PERIOD, Sampler};
pub use usage::Usage;

/// The tree at one instant. CPU and context switches are running totals; diff two snapshots.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    /// When it was taken.
    pub at: Instant,
    /// CPU time of the tree so far, reaped children included, in nanoseconds.
    pub cpu_ns: u64,
    /// User CPU in clock ticks, as /proc/PID/stat counts it: only for the user/system split.
    pub user_ticks: u64,
    /// System CPU in clock ticks, likewise.
    pub sys_ticks: u64,
    /// Voluntary context switches seen so far over every task sampled.
    pub ctx_voluntary: u64,
    /// Involuntary (preempted) context switches, likewise.
    pub ctx_involuntary: u64,
    /// Processes in the tree.
    pub processes: u32,
    /// Threads over all processes of the tree.
    pub threads: u32,
    /// Summed PSS in KiB, when this snapshot read it.
    pub pss_kib: Option<u64>,
    /// The kernel's memory, machine-wide, read right after PSS; the sampler's first snapshot
    /// carries the reading made before the generator started.
    pub kernel: Option<KernelMemory>,
    /// The tree's page tables in KiB (summed `VmPTE`), read with PSS.
    pub page_tables_kib: Option<u64>,
    /// Whether the CPU and switch figures were read; a snapshot taken only for the peaks
    /// ([`Snapshot::peaks`]) leaves them at 0.
    pub cpu: bool,
    /// The generator's mark this snapshot answered (taken the moment it came), if any.
    pub mark: Option<Mark>,
}

impl Snapshot {
    /// Reads only what the peaks need: the members and their threads (one walk of
    /// `/proc/*/stat`), and PSS when `with_pss`. About a third of a full snapshot's reads,
    /// which add every task's `status` and `schedstat`.
    pub fn peaks(root: u32, with_pss: bool) -> io::Result<Snapshot> {
        let started = Instant::now();
        let members = tree(root)?;
        let at = started + started.elapsed() / 2;
        let pss = with_pss.then(|| members.iter().map(|p| read_pss_kib(p.pid).unwrap_or(0)).sum());
        let kernel = if with_pss { KernelMemory::read().ok() } else { None };
        let page_tables = with_pss.then(|| tree_page_tables_kib(&members));
        Ok(Snapshot {
            at,
            cpu_ns: 0,
            user_ticks: 0,
            sys_ticks: 0,
            ctx_voluntary: 0,
            ctx_involuntary: 0,
            processes: members.len() as u32,
            threads: members.iter().map(|p| p.threads).sum(),
            pss_kib: pss,
            kernel,
            page_tables_kib: page_tables,
            cpu: false,
            mark: None,
        })
    }
}

/// Seconds per clock tick (the unit of CPU times in /proc), normally 0.01.
pub fn clock_tick() -> f64 {
    // SAFETY: sysconf takes an integer and returns one; it touches no memory of ours.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 { 1.0 / hz as f64 } else { 0.01 }
}

/// One process as read from `/proc/PID/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// Its pid.
    pub pid: u32,
    /// Its parent's pid.
    pub ppid: u32,
    /// Start time since boot in ticks: with the pid, it names the process for good.
    pub start: u64,
    utime: u64,
    stime: u64,
    cutime: u64,
    cstime: u64,
    threads: u32,
}

/// Reads `/proc/PID/stat`. The command name sits in parentheses and may itself hold spaces and
/// parentheses, so the fields are counted from the last ')'.
pub fn read_stat(pid: u32) -> io::Result<ProcStat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let bad = || io::Error::new(io::ErrorKind::InvalidData, format!("odd /proc/{pid}/stat"));
    let rest = text.rsplit_once(')').ok_or_else(bad)?.1;
    // Field n of proc(5) (1-based, pid is 1, comm is 2) is at index n - 3 of what follows.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> io::Result<u64> {
        fields.get(n - 3).and_then(|f| f.parse().ok()).ok_or_else(bad)
    };
    Ok(ProcStat {
        pid,
        ppid: field(4)? as u32,
        utime: field(14)?,
        stime: field(15)?,
        cutime: field(16)?,
        cstime: field(17)?,
        threads: field(20)? as u32,
        start: field(22)?,
    })
}

/// The root and every live descendant, root first. Fails only if the root itself is gone.
pub fn tree(root: u32) -> io::Result<Vec<ProcStat>> {
    let root_stat = read_stat(root)?;
    let mut by_parent: HashMap<u32, Vec<ProcStat>> = HashMap::new();
    for entry in fs::read_dir("/proc")?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        // Processes come and go while we scan; one that vanished is simply not a member.
        if let Ok(stat) = read_stat(pid) {
            by_parent.entry(stat.ppid).or_default().push(stat);
        }
    }
    let mut members = vec![root_stat];
    let mut next = 0;
    while next < members.len() {
        if let Some(children) = by_parent.remove(&members[next].pid) {
            members.extend(children);
        }
        next += 1;
    }
    Ok(members)
}

/// Waits until the tree under `root` has at most `processes` members (a forking server has
/// reaped the children of the previous run), or `limit` passes; returns whether it settled.
///
/// A repeat that starts while the last one's children are still exiting would measure their
/// teardown as its own work, so the harness lets the tree settle first. It polls /proc, the
/// only place that says when a server outside this process has reaped its children.
pub fn wait_for_processes(root: u32, processes: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        match tree(root) {
            Ok(members) if members.len() as u32 <= processes => return true,
            Err(_) => return false,
            Ok(_) if Instant::now() >= deadline => return false,
            Ok(_) => thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Keeps the running totals that make snapshots of a changing tree comparable.
#[derive(Debug)]
pub struct Tracker {
    root: u32,
    /// Last counts seen per task id: (voluntary, involuntary).
    tasks: HashMap<u32, (u64, u64)>,
    voluntary: u64,
    involuntary: u64,
    first: bool,
}

impl Tracker {
    /// Starts tracking the tree under `root`.
    pub fn new(root: u32) -> Tracker {
        Tracker { root, tasks: HashMap::new(), voluntary: 0, involuntary: 0, first: true }
    }

    /// Reads the tree now; PSS too when `with_pss`. Fails once the root is gone.
    pub fn snapshot(&mut self, with_pss: bool) -> io::Result<Snapshot> {
        let tick_ns = (clock_tick() * 1e9) as u64;
        let started = Instant::now();
        let members = tree(self.root)?;
        let root = &members[0];
        let mut snap = Snapshot {
            at: started,
            cpu_ns: (root.utime + root.stime + root.cutime + root.cstime) * tick_ns,
            user_ticks: root.cutime,
            sys_ticks: root.cstime,
            ctx_voluntary: 0,
            ctx_involuntary: 0,
            processes: members.len() as u32,
            threads: 0,
            pss_kib: None,
            kernel: None,
            page_tables_kib: None,
            cpu: true,
            mark: None,
        };
        // Each descendant read, with its run time then.
        let mut read = Vec::with_capacity(members.len());
        for (i, p) in members.iter().enumerate() {
            snap.user_ticks += p.utime;
            snap.sys_ticks += p.stime;
            snap.threads += p.threads;
            let run_ns = self.read_tasks(p.pid, p.threads);
            if i > 0 {
                snap.cpu_ns += run_ns;
                read.push((p.pid, run_ns));
            }
        }
        // Children the root reaped while the tree was being read: their whole lifetimes went
        // into its cutime after it was read above. One reaped before its turn came is counted
        // nowhere yet; one reaped after it was read is counted already. So the root is read
        // again, the growth of its cutime added, and the run time of the children read and
        // gone since taken back out of it. (Before, the read was made again, up to three
        // times, until no child was reaped during it: for a forking server tearing down
        // thousands of children as loadgen exited, that put the window's end 0.3 s late and
        // the teardown's CPU into the window.)
        if let Ok(now) = read_stat(self.root) {
            let grew =
                now.cutime.saturating_sub(root.cutime) + now.cstime.saturating_sub(root.cstime);
            if grew > 0 {
                let counted: u64 = read
                    .iter()
                    .filter(|(pid, _)| !std::path::Path::new(&format!("/proc/{pid}")).exists())
                    .map(|&(_, run_ns)| run_ns)
                    .sum();
                snap.cpu_ns += (grew * tick_ns).saturating_sub(counted);
                snap.user_ticks += now.cutime.saturating_sub(root.cutime);
                snap.sys_ticks += now.cstime.saturating_sub(root.cstime);
            }
        }
        // Reading a thousand processes takes a while, so the CPU figures were taken over a span
        // of time; date them at its middle. Reading PSS (smaps_rollup walks every mapping) is far
        // slower still, so it comes after: timing it into the CPU span once made a 2 s window's
        // CPU read 1.5 s too long for a forking server with 1,000 children.
        snap.at = started + started.elapsed() / 2;
        let pss: u64 = if with_pss {
            members.iter().map(|p| read_pss_kib(p.pid).unwrap_or(0)).sum()
        } else {
            0
        };
        // On the first snapshot every count is history from before the window: keep it as the
        // baseline, so that only switches that happen from now on add to the totals.
        self.first = false;
        snap.ctx_voluntary = self.voluntary;
        snap.ctx_involuntary = self.involuntary;
        snap.pss_kib = with_pss.then_some(pss);
        snap.kernel = if with_pss { KernelMemory::read().ok() } else { None };
        snap.page_tables_kib = with_pss.then(|| tree_page_tables_kib(&members));
        Ok(snap)
    }

    /// Reads every task (thread) of `pid`: adds its context switches to the running totals and
    /// returns the tasks' summed run time in nanoseconds (`schedstat`'s first field).
    ///
    /// A process with one thread (each child of a forking server) is read at /proc/PID, whose
    /// `status` and `schedstat` are then its one task's: listing its task folder would add a
    /// third of the reads, thousands of them for a forking server.
    fn read_tasks(&mut self, pid: u32, threads: u32) -> u64 {
        let dirs: Vec<(u32, std::path::PathBuf)> = if threads == 1 {
            vec![(pid, format!("/proc/{pid}").into())]
        } else {
            let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else { return 0 };
            tasks
                .flatten()
                .filter_map(|t| Some((t.file_name().to_str()?.parse().ok()?, t.path())))
                .collect()
        };
        let mut run_ns = 0;
        for (tid, path) in dirs {
            let Ok(status) = fs::read_to_string(path.join("status")) else { continue };
            let now = (status_field(&status, "voluntary_ctxt_switches:"), {
                status_field(&status, "nonvoluntary_ctxt_switches:")
            });
            // A task first seen after the first snapshot was born during the window (or just
            // before it), so all of its switches belong to the window.
            let before = match self.tasks.get(&tid) {
                Some(&seen) => seen,
                None if self.first => now,
                None => (0, 0),
            };
            self.voluntary += now.0.saturating_sub(before.0);
            self.involuntary += now.1.saturating_sub(before.1);
            self.tasks.insert(tid, now);
            if let Ok(schedstat) = fs::read_to_string(path.join("schedstat")) {
                let first = schedstat.split_whitespace().next();
                run_ns += first.and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
            }
        }
        run_ns
    }
}

fn status_field(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// The page tables of every process of the tree, in KiB; a process gone meanwhile counts 0.
fn tree_page_tables_kib(members: &[ProcStat]) -> u64 {
    members.iter().map(|p| read_page_tables_kib(p.pid).unwrap_or(0)).sum()
}
