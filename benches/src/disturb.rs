//! What disturbed a repeat: CPU the hypervisor took from the server's or the generator's CPUs
//! (steal), time the generator's busiest load thread waited for its CPU (run delay), and the
//! CPU the harness itself spent meanwhile.
//!
//! These separate interference from the figures' own noise. The load average cannot: it
//! counts the server's own threads, so a thread-per-connection server at 1,000 connections
//! reads 85 on a quiet 2-CPU machine (reference run 2026-12-07-vm-2: "1.10 to 85.65"), and it
//! says nothing about a hypervisor.
//!
//! - Steal is read from /proc/stat before the generator starts and after it exits: one line
//!   per CPU (`cpuN`), the 8th value steal, in USER_HZ ticks (10 ms here). Its fraction of the
//!   CPUs' time over the repeat is what the server or the generator could not have, whatever
//!   it did. Ticks make it coarse: over a 2 s repeat one tick is 0.5%.
//! - Run delay comes from loadgen's own report (`generator.max_thread_run_delay`, from each
//!   load thread's /proc/thread-self/schedstat over its window): the busiest thread's share.
//! - The harness's CPU is `getrusage(RUSAGE_SELF)` (every thread of the harness, finished
//!   ones included; its children, server and generator, excluded), before and after.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Steal above this fraction of a side's CPU time over a repeat marks the repeat disturbed.
///
/// 5% of a window taken by the hypervisor can move a throughput figure by 5% by itself, more
/// than the 3% margin within which two servers are called equivalent (MEASURING.md), while a
/// quiet virtual machine shows well under 1%. The runner runs such a repeat once more.
pub const STEAL_LIMIT: f64 = 0.05;

/// What disturbed one repeat, as results.json records it (`Repeat::disturbance`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Disturbance {
    /// Seconds between the two reads of /proc/stat and of the harness's CPU: the generator's
    /// whole run, connection set-up and drain included.
    pub seconds: f64,
    /// Steal on the server's CPUs (all CPUs when it was not pinned) as a fraction of their
    /// time over `seconds`; absent when /proc/stat could not be read.
    pub server_steal: Option<f64>,
    /// The same on the generator's CPUs.
    pub generator_steal: Option<f64>,
    /// Fraction of its window that loadgen's busiest load thread was runnable but waiting for
    /// a CPU; absent without loadgen's report or without scheduler statistics.
    pub generator_run_delay: Option<f64>,
    /// CPU seconds the harness used over `seconds` (sampling /proc, reading the generator's
    /// output), its children excluded.
    pub harness_cpu_seconds: f64,
}

impl Disturbance {
    /// Why the repeat's figures should not be trusted, in one sentence, or `None` when they
    /// may be: steal above [`STEAL_LIMIT`] on the server's or the generator's CPUs.
    pub fn disturbed(&self) -> Option<String> {
        let over = |steal: Option<f64>| steal.filter(|&s| s > STEAL_LIMIT);
        let pct = |s: f64| format!("{:.1}%", s * 100.0);
        let which = match (over(self.server_steal), over(self.generator_steal)) {
            (None, None) => return None,
            (Some(s), None) => format!("{} of the server's CPU time", pct(s)),
            (None, Some(g)) => format!("{} of the generator's CPU time", pct(g)),
            (Some(s), Some(g)) => {
                format!("{} of the server's CPU time and {} of the generator's", pct(s), pct(g))
            }
        };
        Some(format!(
            "The hypervisor took {which} during the repeat (steal; the limit is {:.0}%).",
            STEAL_LIMIT * 100.0
        ))
    }
}

/// Busy and steal ticks of one CPU, from its /proc/stat line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTicks {
    /// Every tick of the CPU's time: user, nice, system, idle, iowait, irq, softirq, steal
    /// (guest time is already inside user and nice, so it is not added again).
    pub total: u64,
    /// Ticks stolen by the hypervisor.
    pub steal: u64,
}

/// The `cpuN` lines of a /proc/stat text, by CPU number; the machine-wide `cpu` line is left
/// out. A CPU whose line has fewer than 8 values (kernels before 2.6.11) reads as no steal.
pub fn parse_stat(text: &str) -> BTreeMap<usize, CpuTicks> {
    let mut cpus = BTreeMap::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some(cpu) = fields.next().and_then(|f| f.strip_prefix("cpu")) else { continue };
        let Ok(n) = cpu.parse::<usize>() else { continue };
        let values: Vec<u64> = fields.take(8).filter_map(|f| f.parse().ok()).collect();
        let steal = values.get(7).copied().unwrap_or(0);
        cpus.insert(n, CpuTicks { total: values.iter().sum(), steal });
    }
    cpus
}

/// Steal on `cpus` between two readings, as a fraction of those CPUs' time; every CPU when
/// `cpus` is empty (not pinned). `None` when no tick passed on them (or none of them exists).
pub fn steal_between(
    before: &BTreeMap<usize, CpuTicks>,
    after: &BTreeMap<usize, CpuTicks>,
    cpus: &[usize],
) -> Option<f64> {
    let chosen: Vec<usize> =
        if cpus.is_empty() { after.keys().copied().collect() } else { cpus.to_vec() };
    let (mut total, mut steal) = (0u64, 0u64);
    for cpu in chosen {
        let (Some(b), Some(a)) = (before.get(&cpu), after.get(&cpu)) else { continue };
        total += a.total.saturating_sub(b.total);
        steal += a.steal.saturating_sub(b.steal);
    }
    (total > 0).then(|| steal as f64 / total as f64)
}

/// The readings taken as a repeat starts, finished into a [`Disturbance`] when it ends.
#[derive(Debug)]
pub struct Probe {
    at: Instant,
    stat: Option<BTreeMap<usize, CpuTicks>>,
    harness: Duration,
}

impl Probe {
    /// Reads /proc/stat and the harness's CPU now.
    pub fn start() -> Probe {
        Probe { at: Instant::now(), stat: read_stat(), harness: harness_cpu() }
    }

    /// Reads them again and makes the repeat's record: steal on `server_cpus` and on
    /// `generator_cpus` (empty: every CPU), with the generator's `run_delay` from its report.
    pub fn finish(
        self,
        server_cpus: &[usize],
        generator_cpus: &[usize],
        run_delay: Option<f64>,
    ) -> Disturbance {
        let after = read_stat();
        let harness = harness_cpu().saturating_sub(self.harness);
        let steal = |cpus: &[usize]| {
            let (before, after) = (self.stat.as_ref()?, after.as_ref()?);
            Some(steal_between(before, after, cpus).unwrap_or(0.0))
        };
        Disturbance {
            seconds: self.at.elapsed().as_secs_f64(),
            server_steal: steal(server_cpus),
            generator_steal: steal(generator_cpus),
            generator_run_delay: run_delay,
            harness_cpu_seconds: harness.as_secs_f64(),
        }
    }
}

fn read_stat() -> Option<BTreeMap<usize, CpuTicks>> {
    std::fs::read_to_string("/proc/stat").ok().map(|t| parse_stat(&t))
}

/// The harness's CPU so far, every thread included, children excluded.
fn harness_cpu() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    let Ok(usage) = getrusage(UsageWho::RUSAGE_SELF) else { return Duration::ZERO };
    let micros = |tv: nix::sys::time::TimeVal| {
        Duration::from_secs(tv.tv_sec().max(0) as u64)
            + Duration::from_micros(tv.tv_usec().max(0) as u64)
    };
    micros(usage.user_time()) + micros(usage.system_time())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// /proc/stat as this 2-CPU machine writes it (values invented), with a CPU 2 line to show
    /// that only the chosen CPUs count.
    const BEFORE: &str = "cpu  300 0 200 9000 10 0 5 30 0 0
cpu0 100 0 100 4000 5 0 2 10 0 0
cpu1 100 0 50 4000 5 0 3 20 0 0
cpu2 100 0 50 1000 0 0 0 0 0 0
intr 12345 0 0
ctxt 999
";
    const AFTER: &str = "cpu  600 0 400 9500 10 0 5 130 0 0
cpu0 150 0 100 4140 5 0 2 10 0 0
cpu1 250 0 150 4050 5 0 3 120 0 0
cpu2 200 0 150 1300 0 0 0 0 0 0
";

    #[test]
    fn stat_lines_give_each_cpus_total_and_steal() {
        let cpus = parse_stat(BEFORE);
        assert_eq!(cpus.len(), 3, "the machine-wide line and the others are left out");
        assert_eq!(cpus[&0], CpuTicks { total: 4217, steal: 10 });
        assert_eq!(cpus[&1].steal, 20);
    }

    #[test]
    fn steal_is_a_fraction_of_the_chosen_cpus_time() {
        let (b, a) = (parse_stat(BEFORE), parse_stat(AFTER));
        // CPU 0: 190 ticks passed, none stolen. CPU 1: 400 passed, 100 stolen.
        assert_eq!(steal_between(&b, &a, &[0]), Some(0.0));
        assert_eq!(steal_between(&b, &a, &[1]), Some(0.25));
        // Unpinned: all three CPUs, 190 + 400 + 500 ticks, 100 stolen.
        let all = steal_between(&b, &a, &[]).unwrap();
        assert!((all - 100.0 / 1090.0).abs() < 1e-12, "{all}");
        assert_eq!(steal_between(&b, &a, &[7]), None, "no such CPU");
    }

    #[test]
    fn old_kernels_without_a_steal_column_read_as_no_steal() {
        let cpus = parse_stat("cpu0 1 2 3 4 5 6 7\n");
        assert_eq!(cpus[&0], CpuTicks { total: 28, steal: 0 });
    }

    #[test]
    fn a_repeat_is_disturbed_only_by_steal_above_the_limit() {
        let quiet = Disturbance {
            seconds: 2.0,
            server_steal: Some(STEAL_LIMIT),
            generator_steal: Some(0.01),
            generator_run_delay: Some(0.5),
            harness_cpu_seconds: 1.0,
        };
        assert_eq!(quiet.disturbed(), None, "at the limit, and run delay alone, is not steal");
        let server = Disturbance { server_steal: Some(0.072), ..quiet };
        let why = server.disturbed().expect("steal above the limit");
        assert!(why.contains("7.2% of the server's CPU time"), "{why}");
        assert!(!why.contains("generator"), "{why}");
        let both = Disturbance { generator_steal: Some(0.2), ..server };
        let why = both.disturbed().unwrap();
        assert!(why.contains("7.2%") && why.contains("20.0% of the generator's"), "{why}");
        let unread = Disturbance { server_steal: None, generator_steal: None, ..quiet };
        assert_eq!(unread.disturbed(), None);
    }

    #[test]
    fn a_probe_reads_this_machine() {
        let probe = Probe::start();
        // Some CPU for the harness to count.
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        let d = probe.finish(&[0], &[], Some(0.1));
        assert!(d.seconds > 0.0);
        assert!(d.harness_cpu_seconds > 0.0, "{d:?}");
        let steal = d.server_steal.expect("/proc/stat is readable here");
        assert!((0.0..=1.0).contains(&steal), "{d:?}");
        assert_eq!(d.generator_run_delay, Some(0.1));
    }
}
