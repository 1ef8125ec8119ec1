//! scale: "How does each model hold up as connections grow?" A closed loop of small messages
//! over growing connection counts; the throughput, CPU per message and context switches.

use anyhow::Result;

use crate::charts::Charts;
use crate::compare::{self, RATE};
use crate::findings::{NO_FIGURES, called, pair_limited, ranking};
use crate::measure::{Measure, PointsFlag, counts};
use crate::plan::{Point, Profile, SMALL_MESSAGE, plural};
use crate::present::{Cell, Column, Present, View, col};
use crate::registry::named;
use crate::results::Summary;
use crate::text::{sig, thousands, times};

/// Context switches per message, fewer being better.
const CTX_PER_MSG: compare::Figure = compare::Figure {
    name: "context switches/msg",
    of: |m| m.server_ctx_switches_per_msg.unwrap_or(f64::NAN),
    higher_is_better: false,
};

/// The scale scenario.
#[derive(Debug)]
pub struct Scale;

/// Connections of the latency scenario's open loop. Scale always measures this count, so the
/// capacity latency's fractions refer to comes from a measured point rather than a probe. (It
/// is defined here, not in latency.rs, so that the two files refer to each other one way.)
pub const LATENCY_CONNECTIONS: u32 = 10;

/// The scale point at `connections`: also the closed-loop capacity the latency scenario scales.
pub fn point(connections: u32) -> Point {
    Point::closed("scale", connections, SMALL_MESSAGE)
        .named(plural(connections, "conn"), f64::from(connections))
}

impl Measure for Scale {
    fn name(&self) -> &'static str {
        "scale"
    }

    fn flag(&self) -> Option<PointsFlag> {
        Some(PointsFlag {
            long: "connections",
            value_name: "N,N,...",
            help: "Connection counts of the scale scenario, comma-separated",
        })
    }

    fn points(&self, profile: Profile, given: Option<&str>) -> Result<Vec<Point>> {
        // The latency scenario's connection count is always among them.
        let lat = LATENCY_CONNECTIONS;
        let counts = match given {
            Some(text) => counts("connections", text)?,
            None => match profile {
                Profile::Quick => vec![1, lat, 100],
                Profile::Standard => vec![1, lat, 100, 1000],
                Profile::Full => vec![1, lat, 100, 1000, 4000],
            },
        };
        Ok(counts.into_iter().map(point).collect())
    }
}

impl Present for Scale {
    fn question(&self) -> &'static str {
        "How does each model hold up as connections grow?"
    }

    fn setup(&self) -> String {
        format!(
            "Closed loop: each connection sends a {SMALL_MESSAGE}-byte message and waits for its \
             echo."
        )
    }

    fn columns(&self) -> Vec<Column> {
        let switches: Column = ("ctx switches/msg", |c: &Cell<'_>| {
            c.summary.median.server_ctx_switches_per_msg.map_or("-".into(), sig)
        });
        let generator: Column = ("generator CPU us/msg", |c: &Cell<'_>| {
            c.summary.median.generator_cpu_per_msg_us.map_or("-".into(), sig)
        });
        vec![
            col::RATE,
            col::SPREAD,
            col::P50,
            col::P99,
            col::CPU,
            col::UTIL,
            switches,
            generator,
            col::THREADS,
            col::PROCESSES,
            col::PSS,
        ]
    }

    fn pair_figures(&self) -> Vec<(&'static str, compare::Figure)> {
        vec![("msgs/s", RATE), ("CPU/msg", compare::CPU_PER_MSG), ("ctx switches/msg", CTX_PER_MSG)]
    }

    fn findings(&self, view: &View<'_>) -> Vec<String> {
        let Some((point, at)) = view.deciding() else {
            return vec![NO_FIGURES.into()];
        };
        let cpu = ranking(view, point, &compare::CPU_PER_MSG, &|v| format!("{} us", sig(v)));
        // Where the generator set the pace for most models, throughput ranks no server.
        let mut out = match pair_limited(view, point, &RATE) {
            Some(note) => vec![format!(
                "At {}, {note}. Least first, each against the first in paired rounds: {cpu}.",
                point.label
            )],
            None => vec![
                format!(
                    "At {}, messages per second, most first, each against the first in paired \
                     rounds: {}.",
                    point.label,
                    ranking(view, point, &RATE, &|v| format!("{} msgs/s", thousands(v)))
                ),
                format!("Server CPU per message at {}, least first: {cpu}.", point.label),
            ],
        };
        out.extend(why(view, point, &at));
        out.extend(low_concurrency(view));
        out
    }

    fn charts(&self, view: &View<'_>, charts: &mut Charts) -> Result<()> {
        let t = format!("Throughput vs connections ({SMALL_MESSAGE} B messages, closed loop)");
        let s = view.series(|m| Some(m.msgs_per_sec));
        charts.lines(self.name(), "scale-throughput.svg", &t, "connections", "messages/s", &s)?;
        let s = view.series(|m| m.server_cpu_per_msg_us);
        let (t, y) = ("Server CPU per message vs connections", "server CPU us per message");
        charts.lines(self.name(), "scale-cpu.svg", t, "connections", y, &s)
    }
}

/// Why the slowest model trails the fastest, when context switches per message show it.
/// Why the fastest beat the slowest, from their context switches: said only where the run's
/// paired rounds call both the throughput and the switches different.
fn why(view: &View<'_>, point: &Point, at: &[(&str, &Summary)]) -> Option<String> {
    let cores = view.cores();
    let mut by_rate: Vec<&(&str, &Summary)> = at.iter().collect();
    by_rate.sort_by(|a, b| b.1.median.msgs_per_sec.total_cmp(&a.1.median.msgs_per_sec));
    let (best, worst) = (by_rate.first()?, by_rate.last()?);
    let b = best.1.median.server_ctx_switches_per_msg?;
    let w = worst.1.median.server_ctx_switches_per_msg?;
    let real = called(view, point, &RATE, best.0, worst.0)
        && called(view, point, &CTX_PER_MSG, best.0, worst.0);
    (by_rate.len() >= 2 && real && w >= 0.1 && w > 2.0 * b).then(|| {
        format!(
            "Why: {} switched context {} times per message, {} {} times. A thread or process \
             blocked on one connection must be woken for each of its messages; an event loop \
             is woken once for every connection that became ready meanwhile, and on {cores} \
             CPUs shared by server and generator each wake-up is time neither side spends \
             echoing.",
            named(worst.0),
            sig(w),
            named(best.0),
            sig(b)
        )
    })
}

/// At one connection the round trip, not the server, sets the pace; say how close models are.
fn low_concurrency(view: &View<'_>) -> Option<String> {
    let first = view.points().next()?;
    if first.connections != 1 {
        return None;
    }
    let rates: Vec<f64> = view.at(first).iter().map(|(_, s)| s.median.msgs_per_sec).collect();
    let lo = rates.iter().copied().fold(f64::MAX, f64::min);
    let hi = rates.iter().copied().fold(0.0, f64::max);
    (rates.len() >= 2 && lo > 0.0).then(|| {
        format!(
            "At 1 connection every model served between {} and {} msgs/s (a {} range): with one \
             message in flight, each round trip waits on wake-ups, so placement matters more \
             than the model (see Environment).",
            thousands(lo),
            thousands(hi),
            times(hi / lo)
        )
    })
}
