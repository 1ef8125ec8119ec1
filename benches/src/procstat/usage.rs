//! What the tree cost over one point: the figures results.json keeps, made from the
//! sampler's snapshots.

use std::time::Instant;

use loadgen::Mark;
use serde::{Deserialize, Serialize};

use super::{KERNEL_STACK_KIB, KernelMemory, Snapshot, TreeKernel};

/// What the tree cost over one point, as results.json records it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Length of the window the CPU and switch figures cover, in seconds.
    pub window_seconds: f64,
    /// CPU seconds (user + system) of the whole tree in the window.
    pub cpu_seconds: f64,
    /// The part of `cpu_seconds` spent in user mode, split in proportion to the tick counts;
    /// absent when no tick fell in the window.
    pub cpu_user_seconds: Option<f64>,
    /// The part spent in the kernel, likewise.
    pub cpu_sys_seconds: Option<f64>,
    /// Voluntary context switches in the window.
    pub ctx_voluntary: u64,
    /// Involuntary context switches in the window.
    pub ctx_involuntary: u64,
    /// Highest summed PSS seen during the point, in KiB.
    pub peak_pss_kib: u64,
    /// Most threads seen at once.
    pub peak_threads: u32,
    /// Most processes seen at once.
    pub peak_processes: u32,
    /// Snapshots taken during the point.
    pub samples: u32,
    /// How the kernel's memory changed, machine-wide, from just before the generator started
    /// to the read of the peak PSS: socket structures and buffers of both ends (the
    /// generator's too), kernel stacks and page tables of new tasks (the generator's own
    /// process too). Absent when /proc/meminfo could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<KernelMemory>,
    /// How the server tree's own kernel stacks and page tables changed from the first
    /// snapshot (the idle tree, before the generator started) to the read of the peak PSS:
    /// the server's alone, unlike `kernel`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_kernel: Option<TreeKernel>,
}

impl Usage {
    /// Measures `samples` over the window `from..to`: CPU and switches between the snapshots
    /// taken at the generator's marks when there are both (the window's edges as loadgen saw
    /// them: `from` and `to` are then not needed), else between the first CPU snapshot at or
    /// after `from` and the last at or before `to` (or the outermost CPU snapshots if the window
    /// holds fewer than two); peaks over all of them.
    pub fn over(samples: &[Snapshot], from: Instant, to: Instant) -> Option<Usage> {
        let cpu: Vec<&Snapshot> = samples.iter().filter(|s| s.cpu).collect();
        let marked = |mark| cpu.iter().copied().find(|s| s.mark == Some(mark));
        let inside: Vec<&Snapshot> =
            cpu.iter().copied().filter(|s| s.at >= from && s.at <= to).collect();
        let (first, last) = match (marked(Mark::Start), marked(Mark::End)) {
            (Some(start), Some(end)) => (start, end),
            _ if inside.len() >= 2 => (inside[0], inside[inside.len() - 1]),
            _ => (*cpu.first()?, *cpu.last()?),
        };
        let cpu = last.cpu_ns.saturating_sub(first.cpu_ns) as f64 / 1e9;
        let user = last.user_ticks.saturating_sub(first.user_ticks) as f64;
        let sys = last.sys_ticks.saturating_sub(first.sys_ticks) as f64;
        let ticks = user + sys;
        // The kernel's memory at the peak's read, against the first reading (before load).
        let peak = samples.iter().filter(|s| s.pss_kib.is_some()).max_by_key(|s| s.pss_kib);
        let before = samples.iter().find_map(|s| s.kernel);
        let kernel = peak.and_then(|p| p.kernel).zip(before).map(|(at, b)| at.since(&b));
        let idle_tree = samples.first().filter(|s| s.page_tables_kib.is_some());
        let server_kernel = peak.zip(idle_tree).and_then(|(p, f)| {
            Some(TreeKernel {
                kernel_stack_kib: (i64::from(p.threads) - i64::from(f.threads)) * KERNEL_STACK_KIB,
                page_tables_kib: p.page_tables_kib? as i64 - f.page_tables_kib? as i64,
            })
        });
        Some(Usage {
            window_seconds: last.at.duration_since(first.at).as_secs_f64(),
            cpu_seconds: cpu,
            cpu_user_seconds: (ticks > 0.0).then(|| cpu * user / ticks),
            cpu_sys_seconds: (ticks > 0.0).then(|| cpu * sys / ticks),
            ctx_voluntary: last.ctx_voluntary.saturating_sub(first.ctx_voluntary),
            ctx_involuntary: last.ctx_involuntary.saturating_sub(first.ctx_involuntary),
            peak_pss_kib: samples.iter().filter_map(|s| s.pss_kib).max().unwrap_or(0),
            peak_threads: samples.iter().map(|s| s.threads).max().unwrap_or(0),
            peak_processes: samples.iter().map(|s| s.processes).max().unwrap_or(0),
            samples: samples.len() as u32,
            kernel,
            server_kernel,
        })
    }
}
