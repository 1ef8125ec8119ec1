//! idle: "What does holding a connection cost?" Thousands of silent connections beside one
//! active client; the server's memory, threads and processes per connection, and whether the
//! active client notices the crowd.

use anyhow::Result;

use crate::charts::Charts;
use crate::compare;
use crate::findings::{NO_FIGURES, listing, neighbours, ranking};
use crate::measure::{Headline, Measure, PointsFlag, counts};
use crate::plan::{Point, Profile, SMALL_MESSAGE};
use crate::present::{Cell, Column, Present, View, col};
use crate::results::{PointResults, ScenarioResults};
use crate::text::{join, memory, sig, thousands};

/// Peak PSS in MiB, smaller being better.
const PSS_MIB: compare::Figure = compare::Figure {
    name: "peak PSS",
    of: |m| m.server_peak_pss_kib / 1024.0,
    higher_is_better: false,
};

/// The idle scenario.
#[derive(Debug)]
pub struct Idle;

fn point(idle: u32) -> Point {
    let p = Point::closed("idle", 1, SMALL_MESSAGE);
    Point { idle, ..p }.named(format!("{idle} idle"), f64::from(idle))
}

/// What holding idle connections cost one model, per connection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IdleCost {
    /// PSS above the idle server's baseline, in KiB per connection.
    pub kib_per_conn: f64,
    /// Threads above baseline per connection.
    pub threads_per_conn: f64,
    /// Processes above baseline per connection.
    pub processes_per_conn: f64,
}

/// The cost per connection of an idle point: (peak - baseline) / connections held, counting the
/// one active connection too.
pub fn idle_cost(s: &ScenarioResults, p: &PointResults) -> Option<IdleCost> {
    let base = s.server.baseline?;
    let m = &p.summary.as_ref()?.median;
    let conns = f64::from(p.point.idle + p.point.connections);
    let per = |peak: f64, base: f64| ((peak - base) / conns).max(0.0);
    Some(IdleCost {
        kib_per_conn: per(m.server_peak_pss_kib, base.pss_kib as f64),
        threads_per_conn: per(m.server_peak_threads, f64::from(base.threads)),
        processes_per_conn: per(m.server_peak_processes, f64::from(base.processes)),
    })
}

impl Measure for Idle {
    fn name(&self) -> &'static str {
        "idle"
    }

    fn flag(&self) -> Option<PointsFlag> {
        Some(PointsFlag {
            long: "idle",
            value_name: "N,N,...",
            help: "Idle connection counts of the idle scenario, comma-separated",
        })
    }

    fn points(&self, profile: Profile, given: Option<&str>) -> Result<Vec<Point>> {
        let idle = match given {
            Some(text) => counts("idle", text)?,
            None => match profile {
                Profile::Quick => vec![200],
                // One count in the standard profile (8 paired rounds a point): a thousand
                // connections resolve a page of PSS to 4 bytes each. The full profile adds more.
                Profile::Standard => vec![1000],
                Profile::Full => vec![1000, 4000, 8000],
            },
        };
        Ok(idle.into_iter().map(point).collect())
    }

    fn headline(&self) -> Headline {
        Headline {
            name: "peak PSS",
            figure: |m| m.server_peak_pss_kib,
            higher_is_better: false,
            better: "smaller",
            worse: "larger",
        }
    }
}

impl Present for Idle {
    fn question(&self) -> &'static str {
        "What does holding a connection cost?"
    }

    fn setup(&self) -> String {
        "Thousands of connections open and silent, plus one active closed-loop client. Memory \
         per connection is (peak PSS - idle server PSS) / connections."
            .into()
    }

    fn columns(&self) -> Vec<Column> {
        let per_conn: Column = ("PSS per conn", |c: &Cell<'_>| {
            idle_cost(c.scenario, c.point).map_or("-".into(), |k| memory(k.kib_per_conn))
        });
        vec![
            per_conn,
            col::PSS,
            col::THREADS,
            col::PROCESSES,
            ("active p50 us", |c| sig(c.summary.median.latency_us.p50)),
            ("active p99 us", |c| sig(c.summary.median.latency_us.p99)),
            col::UTIL,
        ]
    }

    fn findings(&self, view: &View<'_>) -> Vec<String> {
        let Some((point, _)) = view.deciding() else {
            return vec![NO_FIGURES.into()];
        };
        let mut costs = Vec::new();
        let mut latency = Vec::new();
        for (m, s) in view.runs() {
            let Some(p) = s.points.iter().find(|p| &p.point == point) else { continue };
            if let Some(c) = idle_cost(s, p) {
                costs.push((m.name.as_str(), c));
            }
            if let Some(sum) = &p.summary {
                latency.push((m.name.as_str(), sum.median.latency_us.p99));
            }
        }
        let mut out = Vec::new();
        let kib: Vec<(&str, f64)> = costs.iter().map(|(n, c)| (*n, c.kib_per_conn)).collect();
        if !kib.is_empty() {
            out.push(format!(
                "Holding {} idle connections beside {} active, memory (PSS) per connection, by \
                 median: {}. The paired rounds compare the servers' peak PSS (results.json's \
                 comparisons); the table's per-connection figure subtracts each idle baseline.",
                thousands(f64::from(point.idle)),
                point.connections,
                listing(&kib, false, &|v| memory(v))
            ));
            out.extend(why(&costs));
        }
        out.extend(neighbours(
            view,
            &[
                ("the active client's p99", compare::P99, " us"),
                ("server CPU per message", compare::CPU_PER_MSG, " us"),
                ("peak PSS", PSS_MIB, " MiB"),
            ],
        ));
        if !latency.is_empty() {
            out.push(format!(
                "The one active client's p99 beside them, lowest first: {}.",
                ranking(view, point, &compare::P99, &|v| format!("{} us", sig(v)))
            ));
        }
        out
    }

    fn charts(&self, view: &View<'_>, charts: &mut Charts) -> Result<()> {
        // Bytes, not KiB: an event loop's cost per connection is tens of bytes. Each repeat's
        // own peak gives the range.
        let s = view.series_of(|s, p| {
            let Some(base) = s.server.baseline else { return Vec::new() };
            let conns = f64::from(p.point.idle + p.point.connections);
            let per = |m: &crate::results::Metrics| {
                ((m.server_peak_pss_kib - base.pss_kib as f64) / conns).max(0.0) * 1024.0
            };
            p.repeats.iter().filter_map(|r| r.metrics.as_ref().map(per)).collect()
        });
        let t = "Server memory (PSS) per idle connection";
        charts.bars(
            self.name(),
            "idle-memory.svg",
            t,
            "idle connections",
            "bytes per connection",
            &s,
        )
    }
}

/// What each model keeps per silent connection (threads, processes), from the counts.
fn why(costs: &[(&str, IdleCost)]) -> Option<String> {
    let parts: Vec<String> = costs
        .iter()
        .map(|(model, c)| {
            let what = if c.processes_per_conn >= 0.5 {
                "a whole process per connection"
            } else if c.threads_per_conn >= 0.5 {
                "a thread per connection, with its stack"
            } else {
                "only each connection's state"
            };
            format!("{model} keeps {what} ({} each)", memory(c.kib_per_conn))
        })
        .collect();
    (!parts.is_empty()).then(|| {
        format!(
            "Why: {}. Kernel socket buffers are not in PSS: they cost every model alike.",
            join(&parts)
        )
    })
}
