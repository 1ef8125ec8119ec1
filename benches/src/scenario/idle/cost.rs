//! What holding idle connections cost one model, per connection: PSS above the idle server's
//! baseline, the kernel's memory beside it, and the rules that say how far each figure can be
//! trusted.
//!
//! - **Page resolution.** PSS changes a page at a time (4 KiB; a shared page by its share), so
//!   a delta of a page or two over a thousand connections is "4 B" or "8 B" per connection
//!   whatever the model really keeps: the figure is the rounding. A delta under
//!   [`MIN_PAGES`] pages, where one page either way moves it by a quarter or more, is shown as
//!   "below page resolution: N pages over M connections" and never ranked.
//! - **Kernel memory** is the change from before the generator started to the read of the
//!   peak PSS of: /proc/meminfo's slab (procstat's `Usage::kernel`), machine-wide, so both
//!   ends of every connection (the generator's sockets cost the same for every model) and
//!   whatever else ran; and the server tree's own kernel stacks and page tables
//!   (`Usage::server_kernel`: its threads and `VmPTE`), the server's alone. Files without
//!   the tree's own figures fall back to meminfo's, machine-wide (the generator process's
//!   own stacks and page tables then count too).

use crate::procstat::{KernelMemory, TreeKernel};
use crate::results::{PointResults, RepeatStatus, ScenarioResults, measured, median};
use crate::text::{memory, thousands};

/// The page size the resolution is worked out from: 4 KiB, the base page of x86-64 and of
/// most aarch64 Linux kernels (the run records no other).
pub const PAGE_KIB: f64 = 4.0;

/// The fewest pages a delta needs to be resolved: at 4, one page of rounding is at most a
/// quarter of the figure.
pub const MIN_PAGES: f64 = 4.0;

/// A memory delta spread over the connections that caused it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PerConn {
    /// KiB per connection.
    Kib(f64),
    /// The whole delta was fewer than [`MIN_PAGES`] pages: no per-connection figure.
    BelowPages {
        /// The delta in pages (a fraction where pages are shared; 0 when it was negative).
        pages: f64,
        /// The connections it is spread over.
        conns: u32,
    },
}

/// `delta_kib` over `conns` connections, or below page resolution.
pub fn per_conn(delta_kib: f64, conns: u32) -> PerConn {
    let pages = delta_kib / PAGE_KIB;
    if pages < MIN_PAGES || conns == 0 {
        PerConn::BelowPages { pages: pages.max(0.0), conns }
    } else {
        PerConn::Kib(delta_kib / f64::from(conns))
    }
}

impl PerConn {
    /// The figure per connection, when resolved.
    pub fn kib(&self) -> Option<f64> {
        match *self {
            PerConn::Kib(k) => Some(k),
            PerConn::BelowPages { .. } => None,
        }
    }

    /// "1.17 KiB", or "below page resolution: 2 pages over 1,001 connections".
    pub fn text(&self) -> String {
        match *self {
            PerConn::Kib(k) => memory(k),
            PerConn::BelowPages { pages, conns } => {
                let pages = match pages {
                    1.0 => "1 page".to_string(),
                    p if p == p.round() => format!("{p:.0} pages"),
                    p => format!("{p:.1} pages"),
                };
                format!(
                    "below page resolution: {pages} over {} connections",
                    thousands(f64::from(conns))
                )
            }
        }
    }
}

/// What holding a point's idle connections cost one model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IdleCost {
    /// Connections held: the idle ones and the active one(s).
    pub conns: u32,
    /// Median peak PSS above the idle baseline, KiB (may be negative: noise).
    pub pss_delta_kib: f64,
    /// That per connection, or below page resolution.
    pub pss: PerConn,
    /// The kernel's memory per connection (median over the repeats), machine-wide, KiB.
    pub kernel: Option<KernelPerConn>,
    /// PSS + kernel per connection (median of each repeat's sum), or below page resolution.
    pub both: Option<PerConn>,
    /// Threads above baseline per connection.
    pub threads_per_conn: f64,
    /// Processes above baseline per connection.
    pub processes_per_conn: f64,
}

/// The kernel's memory per connection, by kind, in KiB (medians over the repeats).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KernelPerConn {
    /// Slab (SUnreclaim + SReclaimable), machine-wide: sockets and their structures.
    pub slab: f64,
    /// The server tree's kernel stacks.
    pub stacks: f64,
    /// The server tree's page tables.
    pub page_tables: f64,
    /// All three (the median of each repeat's sum).
    pub total: f64,
}

/// The connections a point holds.
pub fn conns_of(p: &PointResults) -> u32 {
    p.point.idle + p.point.connections
}

/// The kernel memory of one repeat that this scenario counts, in KiB: machine-wide slab, and
/// the server tree's own kernel stacks and page tables (meminfo's where a file lacks them).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Kernel {
    /// Slab (SUnreclaim + SReclaimable), machine-wide.
    pub slab: f64,
    /// Kernel stacks.
    pub stacks: f64,
    /// Page tables.
    pub page_tables: f64,
}

impl Kernel {
    /// From the machine's change and the tree's own, when read.
    pub fn of(machine: &KernelMemory, own: Option<&TreeKernel>) -> Kernel {
        let (stacks, page_tables) = match own {
            Some(t) => (t.kernel_stack_kib, t.page_tables_kib),
            None => (machine.kernel_stack_kib, machine.page_tables_kib),
        };
        Kernel {
            slab: machine.slab_kib() as f64,
            stacks: stacks as f64,
            page_tables: page_tables as f64,
        }
    }

    /// All three.
    pub fn total(&self) -> f64 {
        self.slab + self.stacks + self.page_tables
    }
}

/// Each measured repeat's (round, PSS delta KiB, kernel delta) at `p`.
fn repeats(s: &ScenarioResults, p: &PointResults) -> Vec<(u32, f64, Option<Kernel>)> {
    let Some(base) = s.server.baseline else { return Vec::new() };
    measured(&p.repeats)
        .filter(|r| r.status == RepeatStatus::Ok)
        .filter_map(|r| {
            let pss = r.metrics.as_ref()?.server_peak_pss_kib - base.pss_kib as f64;
            let usage = r.server.as_ref();
            let kernel =
                usage.and_then(|u| Some(Kernel::of(u.kernel.as_ref()?, u.server_kernel.as_ref())));
            Some((r.round, pss, kernel))
        })
        .collect()
}

/// Each paired round's PSS + kernel per connection in KiB (rounds without a kernel reading
/// left out): what the comparisons of that sum pair.
pub fn both_by_round(s: &ScenarioResults, p: &PointResults) -> Vec<(u32, f64)> {
    let conns = f64::from(conns_of(p));
    repeats(s, p)
        .into_iter()
        .filter(|(round, _, _)| *round > 0)
        .filter_map(|(round, pss, k)| Some((round, (pss + k?.total()) / conns)))
        .collect()
}

/// Each paired round's PSS per connection in KiB: what [`both_by_round`] pairs, for a file
/// without kernel figures.
pub fn pss_by_round(s: &ScenarioResults, p: &PointResults) -> Vec<(u32, f64)> {
    let conns = f64::from(conns_of(p));
    let all = repeats(s, p).into_iter().filter(|(round, _, _)| *round > 0);
    all.map(|(round, pss, _)| (round, pss / conns)).collect()
}

/// Each measured repeat's PSS delta in KiB, the whole point's (not per connection).
pub fn pss_deltas(s: &ScenarioResults, p: &PointResults) -> Vec<f64> {
    repeats(s, p).into_iter().map(|(_, pss, _)| pss).collect()
}

/// The cost per connection of an idle point: (peak - baseline) / connections held, counting
/// the active connection too; the kernel's beside it.
pub fn idle_cost(s: &ScenarioResults, p: &PointResults) -> Option<IdleCost> {
    let base = s.server.baseline?;
    let m = &p.summary.as_ref()?.median;
    let conns = conns_of(p);
    let n = f64::from(conns);
    let per = |peak: f64, base: f64| ((peak - base) / n).max(0.0);
    let pss_delta_kib = m.server_peak_pss_kib - base.pss_kib as f64;
    let all = repeats(s, p);
    let kernels: Vec<(f64, Kernel)> =
        all.iter().filter_map(|&(_, pss, k)| Some((pss, k?))).collect();
    let med = |f: &dyn Fn(&(f64, Kernel)) -> f64| median(kernels.iter().map(f).collect());
    let (kernel, both) = if kernels.is_empty() {
        (None, None)
    } else {
        let kernel = KernelPerConn {
            slab: med(&|(_, k)| k.slab) / n,
            stacks: med(&|(_, k)| k.stacks) / n,
            page_tables: med(&|(_, k)| k.page_tables) / n,
            total: med(&|(_, k)| k.total()) / n,
        };
        (Some(kernel), Some(per_conn(med(&|(pss, k)| pss + k.total()), conns)))
    };
    Some(IdleCost {
        conns,
        pss_delta_kib,
        pss: per_conn(pss_delta_kib, conns),
        kernel,
        both,
        threads_per_conn: per(m.server_peak_threads, f64::from(base.threads)),
        processes_per_conn: per(m.server_peak_processes, f64::from(base.processes)),
    })
}

/// The fewest rounds on each side [`echo_added`] needs: with 4 and 4, every round of one side
/// above every round of the other happens by chance once in 70 (1 / C(8, 4)).
pub const MIN_ECHO_ROUNDS: usize = 4;

/// What one echo on each idle connection added to the PSS per connection, in KiB, when the
/// rounds show it: at least [`MIN_ECHO_ROUNDS`] on each side, every round after one echo above
/// every silent round, and the medians at least [`MIN_PAGES`] pages apart. `None` when they do
/// not (no claim either way).
pub fn echo_added(silent: &[f64], echoed: &[f64], conns: u32) -> Option<f64> {
    if silent.len().min(echoed.len()) < MIN_ECHO_ROUNDS {
        return None;
    }
    let max_silent = silent.iter().copied().reduce(f64::max)?;
    let min_echoed = echoed.iter().copied().reduce(f64::min)?;
    let diff = median(echoed.to_vec()) - median(silent.to_vec());
    (min_echoed > max_silent && diff >= MIN_PAGES * PAGE_KIB && conns > 0)
        .then(|| diff / f64::from(conns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_or_two_over_many_connections_is_below_resolution() {
        // Two pages over 1,001 connections would read "8.2 B": the rounding, not a figure.
        let two = per_conn(8.0, 1001);
        assert_eq!(two, PerConn::BelowPages { pages: 2.0, conns: 1001 });
        assert_eq!(two.kib(), None);
        assert_eq!(two.text(), "below page resolution: 2 pages over 1,001 connections");
        assert_eq!(
            per_conn(4.0, 1001).text(),
            "below page resolution: 1 page over 1,001 connections"
        );
        // A peak below the baseline is no negative cost.
        assert_eq!(per_conn(-12.0, 201), PerConn::BelowPages { pages: 0.0, conns: 201 });
        // Sixteen pages (mio's 64 KiB slab at 1,001 connections) are resolved: 65.5 B each.
        let mio = per_conn(64.0, 1001);
        assert!((mio.kib().unwrap() * 1024.0 - 65.47).abs() < 0.01, "{mio:?}");
        // The limit is in pages, not bytes per connection: the same 12 KiB is 3 pages.
        assert!(per_conn(12.0, 10).kib().is_none());
        assert!(per_conn(16.0, 10).kib().is_some());
    }

    #[test]
    fn kernel_memory_per_connection_takes_the_trees_own_stacks_and_page_tables() {
        // The machine freed 20 MiB of page tables meanwhile (another process exited), while
        // the server's 1,000 new threads took 16 MiB of stacks and 4 MiB of page tables.
        let machine = KernelMemory {
            slab_unreclaimable_kib: 3000,
            slab_reclaimable_kib: 1000,
            kernel_stack_kib: 16_000,
            page_tables_kib: -20_000,
        };
        let own = TreeKernel { kernel_stack_kib: 16_000, page_tables_kib: 4000 };
        let k = Kernel::of(&machine, Some(&own));
        assert_eq!(
            (k.slab, k.stacks, k.page_tables, k.total()),
            (4000.0, 16_000.0, 4000.0, 24_000.0)
        );
        // Without the tree's own figures (an older file), meminfo's: machine-wide.
        assert_eq!(Kernel::of(&machine, None).total(), 0.0);
    }

    #[test]
    fn an_echo_adds_memory_only_where_every_round_shows_it() {
        // tokio: 1.09 KiB silent, about 9.7 KiB after one echo, at 1,001 connections.
        let silent = [1090.0, 1100.0, 1095.0, 1089.0];
        let echoed = [9700.0, 9720.0, 9690.0, 9710.0];
        let added = echo_added(&silent, &echoed, 1001).unwrap();
        assert!((added - 8.6).abs() < 0.05, "{added}");
        // Overlapping rounds: no claim, however far apart the medians.
        let (silent, echoed) = ([100.0, 900.0, 120.0, 110.0], [800.0, 950.0, 990.0, 970.0]);
        assert_eq!(echo_added(&silent, &echoed, 1001), None);
        // Every round above, but by less than four pages: within the rounding.
        assert_eq!(echo_added(&[64.0; 4], &[72.0, 76.0, 72.0, 72.0], 1001), None);
        // One round each: every round above every other means nothing yet.
        assert_eq!(echo_added(&[1090.0], &[9700.0], 1001), None);
        assert_eq!(echo_added(&[], &[72.0], 1001), None);
    }
}
