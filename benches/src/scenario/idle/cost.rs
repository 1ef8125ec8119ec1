//! What holding idle connections cost one model, per connection: PSS above the idle server's
//! baseline, the kernel's memory beside it, and the rules that say how far each figure can be
//! trusted.
//!
//! - **Page resolution.** PSS changes a page at a time (4 KiB; a shared page by its share), so
//!   a delta of a page or two over a thousand connections is "4 B" or "8 B" per connection
//!   whatever the model really keeps: the figure is the rounding. A delta under
//!   [`MIN_PAGES`] pages, where one page either way moves it by a quarter or more, is shown as
//!   "below page resolution: N pages over M connections" and never ranked.
//! - **Kernel memory** is /proc/meminfo's change from before the generator started to the read
//!   of the peak PSS (procstat's `Usage::kernel`), machine-wide: both ends of every connection
//!   (the generator's sockets cost the same for every model), the generator process's own
//!   stacks and page tables, and whatever else ran. Differences between models are the
//!   servers'; the absolute figure includes the generator's side.

use crate::procstat::KernelMemory;
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
                    p if p == 1.0 => "1 page".to_string(),
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
    /// Slab (SUnreclaim + SReclaimable): sockets and their structures.
    pub slab: f64,
    /// Kernel stacks.
    pub stacks: f64,
    /// Page tables.
    pub page_tables: f64,
    /// All three (the median of each repeat's sum).
    pub total: f64,
}

/// The connections a point holds.
pub fn conns_of(p: &PointResults) -> u32 {
    p.point.idle + p.point.connections
}

/// Each measured repeat's (round, PSS delta KiB, kernel delta) at `p`.
fn repeats(s: &ScenarioResults, p: &PointResults) -> Vec<(u32, f64, Option<KernelMemory>)> {
    let Some(base) = s.server.baseline else { return Vec::new() };
    measured(&p.repeats)
        .filter(|r| r.status == RepeatStatus::Ok)
        .filter_map(|r| {
            let pss = r.metrics.as_ref()?.server_peak_pss_kib - base.pss_kib as f64;
            Some((r.round, pss, r.server.as_ref().and_then(|u| u.kernel)))
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
        .filter_map(|(round, pss, k)| Some((round, (pss + k?.total_kib() as f64) / conns)))
        .collect()
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
    let kernels: Vec<(f64, KernelMemory)> =
        all.iter().filter_map(|&(_, pss, k)| Some((pss, k?))).collect();
    let med = |f: &dyn Fn(&(f64, KernelMemory)) -> f64| median(kernels.iter().map(f).collect());
    let (kernel, both) = if kernels.is_empty() {
        (None, None)
    } else {
        let kernel = KernelPerConn {
            slab: med(&|(_, k)| k.slab_kib() as f64) / n,
            stacks: med(&|(_, k)| k.kernel_stack_kib as f64) / n,
            page_tables: med(&|(_, k)| k.page_tables_kib as f64) / n,
            total: med(&|(_, k)| k.total_kib() as f64) / n,
        };
        (Some(kernel), Some(per_conn(med(&|(pss, k)| pss + k.total_kib() as f64), conns)))
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

/// What one echo on each idle connection added to the PSS per connection, in KiB, when the
/// rounds show it: every round after one echo above every silent round, and the medians at
/// least [`MIN_PAGES`] pages apart. `None` when they do not (no claim either way).
pub fn echo_added(silent: &[f64], echoed: &[f64], conns: u32) -> Option<f64> {
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
    fn an_echo_adds_memory_only_where_every_round_shows_it() {
        // tokio: 1.09 KiB silent, about 9.7 KiB after one echo, at 1,001 connections.
        let silent = [1090.0, 1100.0, 1095.0, 1089.0];
        let echoed = [9700.0, 9720.0, 9690.0, 9710.0];
        let added = echo_added(&silent, &echoed, 1001).unwrap();
        assert!((added - 8.6).abs() < 0.05, "{added}");
        // Overlapping rounds: no claim, however far apart the medians.
        assert_eq!(echo_added(&[100.0, 900.0, 120.0], &[800.0, 950.0, 990.0], 1001), None);
        // Every round above, but by less than four pages: within the rounding.
        assert_eq!(echo_added(&[64.0, 64.0], &[72.0, 76.0], 1001), None);
        assert_eq!(echo_added(&[], &[72.0], 1001), None);
    }
}
