//! pipeline: "What does batching buy?" A closed loop over a few connections, each keeping 1,
//! 4, 16, 64 messages in flight (`loadgen --pipeline`): messages per second, server CPU per
//! message, and system calls per message, counted by strace in one extra traced repeat per
//! depth (its own throughput is the tracer's and is left out of the figures).
//!
//! With one message in flight a server makes a read and a write (and, for an event loop, a
//! share of a wait) for every message, and each round trip waits on wake-ups. With many in
//! flight, one read returns many messages' bytes and one write sends their echoes back: the
//! fixed cost of a call, and of a wake-up, is shared. Every model reads and writes, so every
//! model runs it.

use anyhow::{Result, bail};

use crate::charts::Charts;
use crate::findings::{NO_FIGURES, pair_limited, ranking};
use crate::measure::{Measure, PointsFlag};
use crate::plan::{Point, Profile, SMALL_MESSAGE, Trace};
use crate::present::{Cell, Column, Present, View, col};
use crate::results::{ScenarioResults, Summary};
use crate::strace::Syscalls as Counts;
use crate::text::{join, sig, thousands, times};

/// Connections of every point: a few, so that depth, not connection count, is the variable,
/// and a thread-per-connection model runs as many threads as an event loop has connections.
pub const CONNECTIONS: u32 = 4;

/// The pipeline scenario.
#[derive(Debug)]
pub struct Pipeline;

fn point(depth: u32, profile: Profile) -> Point {
    let p = Point::closed("pipeline", CONNECTIONS, SMALL_MESSAGE);
    // Standard: one measured repeat and one traced. The gain from batching is several times
    // over, far beyond run-to-run noise (a few percent here), and the traced repeat's counts
    // hardly vary; the full profile measures every depth as often as any other point.
    let repeats = (profile == Profile::Standard).then_some(1);
    // The quick profile skips the traced repeat: its counts would not be read, and CI time is
    // better spent on the pipeline itself (the syscalls scenario exercises tracing there).
    let trace = if profile == Profile::Quick { Trace::None } else { Trace::Extra };
    Point { pipeline: depth, trace, repeats, ..p }.named(format!("depth {depth}"), f64::from(depth))
}

/// The counts of a point's traced repeat.
fn counts_of<'a>(c: &Cell<'a>) -> Option<&'a Counts> {
    c.point.repeats.iter().find_map(|r| r.syscalls.as_ref())
}

/// System calls per message of `model`'s point at `depth`, if traced.
fn calls(s: &ScenarioResults, depth: u32) -> Option<f64> {
    let p = s.points.iter().find(|p| p.point.pipeline == depth)?;
    p.repeats.iter().find_map(|r| r.syscalls.as_ref()?.per_message())
}

impl Measure for Pipeline {
    fn name(&self) -> &'static str {
        "pipeline"
    }

    fn flag(&self) -> Option<PointsFlag> {
        Some(PointsFlag {
            long: "depths",
            value_name: "K,K,...",
            help: "Pipeline depths of the pipeline scenario, comma-separated (e.g. 1,16)",
        })
    }

    fn points(&self, profile: Profile, given: Option<&str>) -> Result<Vec<Point>> {
        let depths = match given {
            Some(text) => crate::measure::counts("depths", text)?,
            None => match profile {
                Profile::Quick => vec![1, 16],
                Profile::Standard | Profile::Full => vec![1, 4, 16, 64],
            },
        };
        if depths.iter().any(|&d| d > 4096) {
            bail!("--depths must be at most 4096 messages in flight per connection");
        }
        Ok(depths.into_iter().map(|d| point(d, profile)).collect())
    }
}

impl Present for Pipeline {
    fn question(&self) -> &'static str {
        "What does batching buy?"
    }

    fn setup(&self) -> String {
        format!(
            "Closed loop over {CONNECTIONS} connections of {SMALL_MESSAGE}-byte messages, each \
             connection keeping `depth` messages in flight. System calls per message come from \
             one more repeat per depth with `strace -c -f` attached (no warm-up; its throughput \
             is the tracer's and is left out of every other column)."
        )
    }

    fn models_note(&self) -> Option<&'static str> {
        Some(
            "every model: batching is about how each model reads and writes, and every model \
             does both.",
        )
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            col::RATE,
            col::SPREAD,
            col::P50,
            col::P99,
            col::CPU,
            ("calls/msg", |c| counts_of(c).and_then(Counts::per_message).map_or("-".into(), sig)),
            ("most frequent calls", |c| {
                counts_of(c).map_or("-".into(), |s| {
                    let top: Vec<String> =
                        s.top.iter().take(2).map(|(n, k)| format!("{n} {k}")).collect();
                    top.join(", ")
                })
            }),
        ]
    }

    fn answer(&self, view: &View<'_>) -> Option<String> {
        let points: Vec<&Point> = view.points().collect();
        let (first, last) = (points.first()?, points.last()?);
        let gains: Vec<f64> = view
            .runs()
            .filter_map(|(_, s)| {
                let (a, b) = (s.summary_of(first)?, s.summary_of(last)?);
                (a.median.msgs_per_sec > 0.0).then(|| b.median.msgs_per_sec / a.median.msgs_per_sec)
            })
            .collect();
        let lo = gains.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = gains.iter().copied().fold(0.0, f64::max);
        (!gains.is_empty() && first != last).then(|| {
            format!(
                "From {} to {} messages in flight, every model's throughput grew {} to {} (by \
                 median): batching pays in every model, and the order between models at depth \
                 {} is not decided.",
                first.pipeline,
                last.pipeline,
                times(lo),
                times(hi),
                last.pipeline
            )
        })
    }

    fn findings(&self, view: &View<'_>) -> Vec<String> {
        let points: Vec<&Point> = view.points().collect();
        let (Some(first), Some(last)) = (points.first(), points.last()) else {
            return vec![NO_FIGURES.into()];
        };
        let pairs: Vec<(&str, &Summary, &Summary, &ScenarioResults)> = view
            .runs()
            .filter_map(|(m, s)| {
                Some((m.name.as_str(), s.summary_of(first)?, s.summary_of(last)?, s))
            })
            .collect();
        if pairs.is_empty() || first == last {
            return vec![NO_FIGURES.into()];
        }
        // A model that echoed nothing at either end stalled there: no ratio says anything.
        let echoed = |s: &Summary| s.median.msgs_per_sec > 0.0;
        let gain: Vec<(&str, f64)> = pairs
            .iter()
            .filter(|(_, a, b, _)| echoed(a) && echoed(b))
            .map(|(n, a, b, _)| (*n, b.median.msgs_per_sec / a.median.msgs_per_sec))
            .collect();
        let stalled: Vec<String> = view
            .runs()
            .flat_map(|(m, s)| {
                let dead =
                    s.points.iter().filter(|p| p.summary.as_ref().is_some_and(|x| !echoed(x)));
                dead.map(move |p| format!("{} at {}", m.name, p.point.label))
            })
            .collect();
        let mut sorted = gain.clone();
        sorted.sort_by(|a, b| b.1.total_cmp(&a.1));
        let grew: Vec<String> = sorted.iter().map(|(n, g)| format!("{n} {}", times(*g))).collect();
        // A saturated generator at the deepest point capped the pair, not the server.
        let capped = pair_limited(view, last, &crate::compare::RATE).map_or(String::new(), |_| {
            format!(
                " (the generator was saturated at depth {} for most models, so these are lower \
                 bounds for the servers)",
                last.pipeline
            )
        });
        let mut out = vec![format!(
            "From {} to {} messages in flight per connection, throughput grew by: {}{capped}.",
            first.pipeline,
            last.pipeline,
            join(&grew)
        )];
        // Where the per-message cost went: CPU per message and calls per message, each
        // model's first depth against its last.
        // Where the per-message cost went: the span over the models of CPU per message and
        // calls per message, first depth against last (each model's own are in the table).
        let span = |v: Vec<f64>, unit: &str| {
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(0.0, f64::max);
            (!v.is_empty()).then(|| format!("{}-{}{unit}", sig(lo), sig(hi)))
        };
        let cpu = |f: fn(&(&str, &Summary, &Summary, &ScenarioResults)) -> Option<f64>| {
            pairs.iter().filter_map(f).collect::<Vec<f64>>()
        };
        let from = span(cpu(|p| p.1.median.server_cpu_per_msg_us), " us");
        let to = span(cpu(|p| p.2.median.server_cpu_per_msg_us), " us");
        let calls_from =
            span(pairs.iter().filter_map(|p| calls(p.3, first.pipeline)).collect(), "");
        let calls_to = span(pairs.iter().filter_map(|p| calls(p.3, last.pipeline)).collect(), "");
        if let (Some(from), Some(to)) = (from, to) {
            let calls = match (calls_from, calls_to) {
                (Some(a), Some(b)) => format!(", and system calls per message from {a} to {b}"),
                _ => String::new(),
            };
            out.push(format!(
                "Where the per-message cost went: server CPU per message fell from {from} at \
                 depth {} to {to} at depth {} over the models{calls}. A read that returns many \
                 messages' bytes, and a write that sends their echoes, cost about what one \
                 message's did: the trip into the kernel and the wake-up are paid once per \
                 batch instead of once per message.",
                first.pipeline, last.pipeline
            ));
        }
        let flat: Vec<String> = gain
            .iter()
            .filter(|(_, g)| *g < 1.5)
            .map(|(n, g)| format!("{n} {}", times(*g)))
            .collect();
        if !flat.is_empty() {
            out.push(format!(
                "Batching bought little for {}: its throughput at {} in flight was within 1.5x \
                 of one in flight, so something other than per-message calls set its pace there.",
                join(&flat),
                last.pipeline
            ));
        }
        let rate = &crate::compare::RATE;
        out.push(match pair_limited(view, last, rate) {
            Some(note) => format!(
                "At depth {}, {note}. Least first, each against the first in paired rounds: {}.",
                last.pipeline,
                ranking(view, last, &crate::compare::CPU_PER_MSG, &|v| format!("{} us", sig(v)))
            ),
            None => format!(
                "At depth {}, messages per second, most first, each against the first in \
                 paired rounds: {}.",
                last.pipeline,
                ranking(view, last, rate, &|v| format!("{} msgs/s", thousands(v)))
            ),
        });
        if !stalled.is_empty() {
            out.push(format!(
                "Nothing was echoed in the whole window by {}: the server stalled there (its \
                 p50 is how long the messages waited), so that point is left out of the ratios \
                 above.",
                join(&stalled)
            ));
        }
        if view.runs().any(|(_, s)| !s.notes.is_empty()) {
            out.push(
                "System calls were not counted for every model: see the notes under Models.".into(),
            );
        }
        out
    }

    fn charts(&self, view: &View<'_>, charts: &mut Charts) -> Result<()> {
        let s = view.series(|m| Some(m.msgs_per_sec));
        let t = format!("Throughput vs messages in flight ({CONNECTIONS} connections)");
        charts.lines(
            self.name(),
            "pipeline-throughput.svg",
            &t,
            "pipeline depth",
            "messages/s",
            &s,
        )?;
        // A linear axis: a figure of zero (a window too short for a CPU tick) has no place
        // on a log one.
        let s = view.series(|m| m.server_cpu_per_msg_us);
        let t = "Server CPU per message vs messages in flight";
        let y = "server CPU us per message";
        charts.lines(self.name(), "pipeline-cpu.svg", t, "pipeline depth", y, &s)
    }
}
