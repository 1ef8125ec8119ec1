//! idle: "What does holding a connection cost?" Thousands of idle connections beside one
//! active client, at each count twice: connections that never spoke, and connections that
//! echoed one message first (as a keep-alive connection has). The server's memory per
//! connection, both halves (its PSS, and the kernel's memory beside it), its threads and
//! processes, and whether the active client notices the crowd.

use anyhow::Result;

use crate::charts::Charts;
use crate::compare;
use crate::findings::{NO_FIGURES, listing, ranking};
use crate::measure::{Headline, Measure, PointsFlag, counts};
use crate::plan::{Point, Profile, SMALL_MESSAGE};
use crate::present::{Cell, Column, Present, View, col};
use crate::results::ScenarioResults;
use crate::text::{join, memory, sig, thousands};

mod cost;
mod prose;
pub use cost::{IdleCost, idle_cost};
use cost::{MIN_PAGES, PAGE_KIB, echo_added};
use prose::{Entry, answer, keeps, rank_both};

/// The idle scenario.
#[derive(Debug)]
pub struct Idle;

/// A point of `idle` connections; with `echo`, each echoes one message before going quiet.
fn point(idle: u32, echo: bool) -> Point {
    let p = Point::closed("idle", 1, SMALL_MESSAGE);
    let label = if echo { format!("{idle} idle, echoed once") } else { format!("{idle} idle") };
    Point { idle, idle_echo: echo, ..p }.named(label, f64::from(idle))
}

impl Measure for Idle {
    fn name(&self) -> &'static str {
        "idle"
    }

    fn flag(&self) -> Option<PointsFlag> {
        Some(PointsFlag {
            long: "idle",
            value_name: "N,N,...",
            help: "Idle connection counts of the idle scenario, comma-separated (each measured \
                   silent and after one echo)",
        })
    }

    fn points(&self, profile: Profile, given: Option<&str>) -> Result<Vec<Point>> {
        let idle = match given {
            Some(text) => counts("idle", text)?,
            None => match profile {
                Profile::Quick => vec![200],
                // One count in the standard profile (8 paired rounds a point, silent and after
                // one echo): a thousand connections resolve a delta of four pages (the least
                // counted, cost::MIN_PAGES) to 16 bytes each. The full profile adds more.
                Profile::Standard => vec![1000],
                Profile::Full => vec![1000, 4000, 8000],
            },
        };
        // Silent first, then after one echo, at each count: a server keeps the heap its
        // connections grew after they close (the allocator does not give it back), so a
        // silent point measured after an echoed one read the echoed one's peak (tokio: 9.3
        // KiB a connection silent, against 1.1 KiB measured first). With several counts (the
        // full profile) a silent point can still follow a bigger echoed one (tokio's 1,000
        // after one echo hold more than its 4,000 silent): its figure is then an upper bound.
        Ok(idle.into_iter().flat_map(|n| [point(n, false), point(n, true)]).collect())
    }

    fn loadgen(&self, point: &Point, config: &mut loadgen::Config) {
        config.idle_echo = point.idle_echo;
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
        "Idle connections beside one active client, each count twice: silent, and after each \
         echoed one message (`loadgen --idle-echo`). PSS per connection is (peak - idle server) / \
         connections, unranked below 4 pages. Kernel memory is the server's own stacks and page \
         tables plus /proc/meminfo's Slab, which is machine-wide: both ends of every \
         connection, and whatever else ran."
            .into()
    }

    fn columns(&self) -> Vec<Column> {
        let pss: Column = ("PSS per conn", |c: &Cell<'_>| {
            idle_cost(c.scenario, c.point).map_or("-".into(), |k| k.pss.text())
        });
        let kernel: Column = ("kernel per conn", |c: &Cell<'_>| {
            let k = idle_cost(c.scenario, c.point).and_then(|k| k.kernel);
            k.map_or("-".into(), |k| memory(k.total))
        });
        let both: Column = ("PSS + kernel per conn", |c: &Cell<'_>| {
            let b = idle_cost(c.scenario, c.point).and_then(|k| k.both);
            b.map_or("-".into(), |b| b.text())
        });
        vec![
            pss,
            kernel,
            both,
            col::PSS,
            col::THREADS,
            col::PROCESSES,
            ("active p50 us", |c| sig(c.summary.median.latency_us.p50)),
            ("active p99 us", |c| sig(c.summary.median.latency_us.p99)),
            col::UTIL,
        ]
    }

    fn key_columns(&self) -> Vec<&'static str> {
        vec!["PSS per conn", "kernel per conn", "PSS + kernel per conn", "active p99 us"]
    }

    /// The first finding: least and most PSS + kernel memory per silent connection, with the
    /// paired verdict on that sum (the default would rank the whole peak PSS).
    fn answer(&self, view: &View<'_>) -> Option<String> {
        self.findings(view).into_iter().next().filter(|f| f != NO_FIGURES)
    }

    fn findings(&self, view: &View<'_>) -> Vec<String> {
        let Some((point, _)) = view.deciding() else {
            return vec![NO_FIGURES.into()];
        };
        // The deciding point (the last with the most models: the largest count after one
        // echo) and its twin at the same count: the silent point and the echoed one.
        let twin = view.points().find(|p| p.idle == point.idle && p.idle_echo != point.idle_echo);
        let (silent, echoed) =
            if point.idle_echo { (twin, Some(point)) } else { (Some(point), twin) };
        let mut out = Vec::new();
        if let Some(s) = silent {
            // The one-line answer: PSS + kernel, or PSS alone in a file without kernel figures.
            // The control is the run's yardstick, not a model: it never stands as an answer.
            let control = |e: &Entry<'_>| {
                view.results.models.iter().any(|m| m.name == e.name && m.control_of.is_some())
            };
            let both: Vec<Entry<'_>> =
                entries(view, s).into_iter().filter(|e| !control(e)).collect();
            let pss: Vec<Entry<'_>> =
                pss_entries(view, s).into_iter().filter(|e| !control(e)).collect();
            out.extend(if both.is_empty() {
                answer((self.name(), &s.label), &pss, "PSS")
            } else {
                answer((self.name(), &s.label), &both, "PSS + kernel memory")
            });
        }
        for p in [silent, echoed].into_iter().flatten() {
            out.extend(pss_listing(view, p));
        }
        if let Some(s) = silent {
            out.extend(kernel_listing(view, s));
        }
        for p in [silent, echoed].into_iter().flatten() {
            let e = entries(view, p);
            if e.iter().any(|e| !e.rounds.is_empty()) {
                out.push(format!(
                    "PSS + kernel memory per connection at {}, least first, each against the least \
                     in paired rounds: {}.",
                    p.label,
                    rank_both((self.name(), &p.label), &e)
                ));
            }
        }
        if let Some(s) = silent {
            out.extend(why(view, s, echoed));
        }
        if !view.at(point).is_empty() {
            out.push(format!(
                "The one active client's p99 beside {}, lowest first: {}.",
                point.label,
                ranking(view, point, &compare::P99, &|v| format!("{} us", sig(v)))
            ));
        }
        out
    }

    fn charts(&self, view: &View<'_>, charts: &mut Charts) -> Result<()> {
        for (echo, file, title) in [
            (false, "idle-memory.svg", "Server memory (PSS) per idle connection, silent"),
            (
                true,
                "idle-memory-echoed.svg",
                "Server memory (PSS) per idle connection, after one echo",
            ),
        ] {
            // Bytes, not KiB: an event loop's cost per connection is tens of bytes. Each
            // repeat's own peak gives the range.
            let s = view.series_of(|s, p| {
                if p.point.idle_echo != echo {
                    return Vec::new();
                }
                let conns = f64::from(cost::conns_of(p));
                cost::pss_deltas(s, p).into_iter().map(|d| d.max(0.0) / conns * 1024.0).collect()
            });
            charts.bars(
                self.name(),
                file,
                title,
                "idle connections",
                "bytes per connection",
                &s,
            )?;
        }
        Ok(())
    }
}

/// Each model's PSS + kernel per connection at `point`, with its rounds.
fn entries<'a>(view: &View<'a>, point: &Point) -> Vec<Entry<'a>> {
    at_point(view, point)
        .into_iter()
        .filter_map(|(name, s, c)| {
            let p = s.points.iter().find(|p| &p.point == point)?;
            Some(Entry { name, both: c.both?, rounds: cost::both_by_round(s, p) })
        })
        .collect()
}

/// Each model's PSS per connection at `point`, with its rounds.
fn pss_entries<'a>(view: &View<'a>, point: &Point) -> Vec<Entry<'a>> {
    at_point(view, point)
        .into_iter()
        .filter_map(|(name, s, c)| {
            let p = s.points.iter().find(|p| &p.point == point)?;
            Some(Entry { name, both: c.pss, rounds: cost::pss_by_round(s, p) })
        })
        .collect()
}

/// Each model's cost at `point`, with its scenario results.
fn at_point<'a>(view: &View<'a>, point: &Point) -> Vec<(&'a str, &'a ScenarioResults, IdleCost)> {
    view.runs()
        .filter_map(|(m, s)| {
            let p = s.points.iter().find(|p| &p.point == point)?;
            Some((m.name.as_str(), s, idle_cost(s, p)?))
        })
        .collect()
}

/// PSS per connection at `point` by median, no order claimed; those below page resolution
/// named apart with their pages.
fn pss_listing(view: &View<'_>, point: &Point) -> Option<String> {
    let costs = at_point(view, point);
    let resolved: Vec<(&str, f64)> =
        costs.iter().filter_map(|(n, _, c)| Some((*n, c.pss.kib()?))).collect();
    let below: Vec<String> = costs
        .iter()
        .filter(|(_, _, c)| c.pss.kib().is_none())
        .map(|(n, _, c)| {
            format!("{n} ({})", c.pss.text().trim_start_matches("below page resolution: "))
        })
        .collect();
    let conns = costs.first()?.2.conns;
    let mut text = format!(
        "PSS per connection at {} ({} connections), by median with no order claimed (the paired \
         rounds compare the whole peak PSS): {}",
        point.label,
        thousands(f64::from(conns)),
        if resolved.is_empty() {
            "none resolved".into()
        } else {
            listing(&resolved, false, &|v| memory(v))
        }
    );
    if !below.is_empty() {
        text.push_str(&format!(
            "; below page resolution (under {} pages of {} KiB, at most {} a connection here), \
             not ranked: {}",
            MIN_PAGES,
            PAGE_KIB,
            memory(MIN_PAGES * PAGE_KIB / f64::from(conns)),
            join(&below)
        ));
    }
    Some(text + ".")
}

/// The kernel's memory per connection at `point` by median, machine-wide, with what it holds.
fn kernel_listing(view: &View<'_>, point: &Point) -> Option<String> {
    let costs = at_point(view, point);
    let kernel: Vec<(&str, f64)> =
        costs.iter().filter_map(|(n, _, c)| Some((*n, c.kernel?.total))).collect();
    if kernel.is_empty() {
        return None;
    }
    let negative = if kernel.iter().any(|(_, v)| *v < 0.0) {
        " A negative figure is the machine freeing more slab meanwhile than the connections took."
    } else {
        ""
    };
    Some(format!(
        "The kernel's memory per connection at {} (the server's own kernel stacks and page \
         tables, plus the machine's slab), by median with no order claimed: {}. The slab is \
         machine-wide: it holds both ends of every connection, the generator's side the same \
         for every model.{negative}",
        point.label,
        listing(&kernel, false, &|v| memory(v))
    ))
}

/// What each model keeps per idle connection, from the silent point and (when measured) the
/// one after one echo.
fn why(view: &View<'_>, silent: &Point, echoed: Option<&Point>) -> Option<String> {
    let parts: Vec<String> = at_point(view, silent)
        .into_iter()
        .map(|(model, s, c)| {
            let find = |p: &Point| s.points.iter().find(|x| &x.point == p);
            let e = echoed.and_then(find);
            let after = e.and_then(|e| idle_cost(s, e));
            let added = match (find(silent), e) {
                (Some(sp), Some(ep)) => {
                    echo_added(&cost::pss_deltas(s, sp), &cost::pss_deltas(s, ep), c.conns)
                }
                _ => None,
            };
            keeps(model, &c, after.as_ref(), added)
        })
        .collect();
    (!parts.is_empty())
        .then(|| format!("What each model keeps per idle connection: {}.", parts.join("; ")))
}
