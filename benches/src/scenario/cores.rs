//! cores: "What does another core buy each model?" The same closed loop with the server given
//! 1, 2, 4... CPUs, as many as the machine can give while keeping CPUs for the generator;
//! the models with a pool of workers get one worker per server CPU, and one single-loop
//! model (mio) is the flat line that more CPUs cannot help.
//!
//! The points come from the CPUs this process may use ([`placements`]): the first half for
//! the server (1, 2, 4... CPUs of it, and the whole half), the second half for the generator.
//! A machine whose half is a single CPU (2 CPUs) can also give the server every CPU, shared
//! with the generator; that point is marked as shared, and the findings say what it can and
//! cannot show.

use anyhow::Result;

use crate::charts::Charts;
use crate::findings::{NO_FIGURES, pair_limited};
use crate::measure::Measure;
use crate::plan::{Cpus, Point, Profile, SMALL_MESSAGE, plural};
use crate::present::{Column, Present, View, col};
use crate::registry::{CpuUse, Model, Transport};
use crate::text::{cpu_list, join, times};

/// Connections of every point: enough that a pool of workers has work for each.
pub const CONNECTIONS: u32 = 100;

/// The cores scenario.
#[derive(Debug)]
pub struct Cores;

/// Where server and generator run at each point, on a machine whose harness may use
/// `allowed`: the server on the first 1, 2, 4... CPUs of the first half (and the whole half),
/// the generator on the second half; and when the half is a single CPU, every CPU shared.
pub fn placements(allowed: &[usize]) -> Vec<Cpus> {
    let half = (allowed.len() / 2).max(1).min(allowed.len());
    let (pool, rest) = allowed.split_at(half);
    let generator = if rest.is_empty() { pool } else { rest };
    let mut counts: Vec<usize> = (0..).map(|k| 1 << k).take_while(|&n| n <= pool.len()).collect();
    if counts.last() != Some(&pool.len()) {
        counts.push(pool.len());
    }
    let mut out: Vec<Cpus> = counts
        .into_iter()
        .map(|n| Cpus { server: pool[..n].to_vec(), generator: generator.to_vec() })
        .collect();
    if pool.len() == 1 && allowed.len() > 1 {
        out.push(Cpus { server: allowed.to_vec(), generator: allowed.to_vec() });
    }
    out
}

/// Whether the server shares a CPU with the generator at this point.
fn shared(p: &Point) -> bool {
    p.cpus.as_ref().is_some_and(|c| c.server.iter().any(|s| c.generator.contains(s)))
}

fn point(cpus: Cpus, profile: Profile) -> Point {
    let n = cpus.server.len() as u32;
    let mut label = plural(n, "CPU");
    if cpus.server.iter().any(|s| cpus.generator.contains(s)) {
        label.push_str(", shared");
    }
    let p = Point::closed("cores", CONNECTIONS, SMALL_MESSAGE);
    // Standard: two repeats. What a second core buys is tens of percent or nothing at all,
    // and the table shows the two runs' spread beside it.
    let repeats = (profile == Profile::Standard).then_some(2);
    Point { cpus: Some(cpus), repeats, ..p }.named(label, f64::from(n))
}

impl Measure for Cores {
    fn name(&self) -> &'static str {
        "cores"
    }

    fn runs(&self, model: &Model) -> bool {
        let pool = matches!(model.cpus, CpuUse::Workers { .. });
        model.transport == Transport::Stream && (pool || model.name == "mio")
    }

    fn points(&self, profile: Profile, _given: Option<&str>) -> Result<Vec<Point>> {
        let allowed = crate::env::allowed_cpus()?;
        Ok(placements(&allowed).into_iter().map(|c| point(c, profile)).collect())
    }
}

impl Present for Cores {
    fn question(&self) -> &'static str {
        "What does another core buy each model?"
    }

    fn setup(&self) -> String {
        format!(
            "Closed loop, {CONNECTIONS} connections of {SMALL_MESSAGE}-byte messages, the server \
             pinned to 1, 2, 4... CPUs (as many as the machine can give while the generator \
             keeps its own) and restarted for each count; a model with workers runs one per \
             server CPU. \"shared\": the server and the generator run on the same CPUs."
        )
    }

    fn models_note(&self) -> Option<&'static str> {
        Some(
            "the models with a pool of workers, which more CPUs can help, and mio, one event \
             loop on one thread, as the flat line they cannot.",
        )
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            ("server CPUs", |c| {
                c.point.point.cpus.as_ref().map_or("-".into(), |x| cpu_list(&x.server))
            }),
            ("generator CPUs", |c| {
                c.point.point.cpus.as_ref().map_or("-".into(), |x| cpu_list(&x.generator))
            }),
            ("workers", |c| {
                c.point
                    .server
                    .as_ref()
                    .and_then(|s| s.workers)
                    .map_or("-".into(), |w| w.to_string())
            }),
            col::RATE,
            col::SPREAD,
            col::P99,
            col::CPU,
            col::UTIL,
            ("generator CPU us/msg", |c| {
                c.summary.median.generator_cpu_per_msg_us.map_or("-".into(), crate::text::sig)
            }),
        ]
    }

    fn key_columns(&self) -> Vec<&'static str> {
        vec!["workers", "msgs/s", "server CPU us/msg"]
    }

    fn answer(&self, view: &View<'_>) -> Option<String> {
        let points: Vec<&Point> = view.points().collect();
        let first = *points.first()?;
        let last = *points.last().filter(|l| **l != first)?;
        let ratios: Vec<String> = view
            .runs()
            .filter(|(m, _)| m.control_of.is_none())
            .filter_map(|(m, s)| {
                let (a, b) = (s.summary_of(first)?, s.summary_of(last)?);
                (a.median.msgs_per_sec > 0.0).then(|| {
                    format!("{} {}", m.name, times(b.median.msgs_per_sec / a.median.msgs_per_sec))
                })
            })
            .collect();
        let at: Vec<(&str, &crate::results::Summary)> = view.at(last);
        let limited = pair_limited(view, last, &crate::compare::RATE)
            .map_or("", |_| ", with the generator saturated, so what the pair got, not the server");
        (!ratios.is_empty() && !at.is_empty()).then(|| {
            format!(
                "Throughput at {} against {} (by median{limited}): {}.",
                last.label,
                first.label,
                join(&ratios)
            )
        })
    }

    fn limit(&self, view: &View<'_>) -> Option<String> {
        // What workers buy needs CPUs of the server's own beyond the first.
        let own = view.points().filter(|p| !shared(p)).map(|p| p.x).fold(0.0, f64::max);
        (own < 2.0).then(|| {
            format!(
                "the server never had 2 CPUs of its own on this {}-CPU machine, and more \
                 workers need more CPUs to act",
                view.cores()
            )
        })
    }

    fn findings(&self, view: &View<'_>) -> Vec<String> {
        let points: Vec<&Point> = view.points().collect();
        let Some(first) = points.first() else { return vec![NO_FIGURES.into()] };
        let mut out = Vec::new();
        // Each model from its fewest CPUs to each larger count.
        let mut gains = Vec::new();
        for (m, s) in view.runs() {
            let Some(base) = s.summary_of(first).map(|x| x.median.msgs_per_sec) else { continue };
            let steps: Vec<String> = points[1..]
                .iter()
                .filter_map(|p| {
                    let r = s.summary_of(p)?.median.msgs_per_sec;
                    (base > 0.0).then(|| format!("{} at {}", times(r / base), p.label))
                })
                .collect();
            if !steps.is_empty() {
                gains.push(format!("{} {}", m.name, steps.join(", ")));
            }
        }
        if gains.is_empty() {
            return vec![NO_FIGURES.into()];
        }
        let capped = points.iter().filter_map(|p| pair_limited(view, p, &crate::compare::RATE));
        let note = if capped.count() > 0 {
            " (the generator was saturated for most models, so these ratios are what the pair \
             got, not the server alone)"
        } else {
            ""
        };
        out.push(format!(
            "Throughput against the server's {}{note}: {}.",
            first.label,
            join(&gains)
        ));
        // Whether the server used what it was given: its CPU use at the last point.
        if let Some(last) = points.last().filter(|l| *l != first) {
            let used: Vec<String> = view
                .runs()
                .filter_map(|(m, s)| {
                    let u = s.summary_of(last)?.median.server_cpu_utilization;
                    Some(format!("{} {:.0}%", m.name, u * 100.0))
                })
                .collect();
            if !used.is_empty() {
                out.push(format!(
                    "Server CPU at {} (100% is one whole CPU): {}. A single event loop cannot \
                     use more than one CPU however many it is given.",
                    last.label,
                    join(&used)
                ));
            }
        }
        out.push(self.what_it_shows(&points, view.cores()));
        out
    }

    fn charts(&self, view: &View<'_>, charts: &mut Charts) -> Result<()> {
        let s = view.series(|m| Some(m.msgs_per_sec));
        let t = format!("Throughput vs server CPUs ({CONNECTIONS} connections)");
        charts.lines(self.name(), "cores-throughput.svg", &t, "server CPUs", "messages/s", &s)
    }
}

impl Cores {
    /// What this run's points can and cannot show, from their placements.
    fn what_it_shows(&self, points: &[&Point], cores: usize) -> String {
        let alone: Vec<&str> =
            points.iter().filter(|p| !shared(p)).map(|p| p.label.as_str()).collect();
        let most = points.iter().filter(|p| !shared(p)).map(|p| p.x).fold(0.0, f64::max);
        let mut text = format!(
            "On this machine ({cores} CPUs) the server had CPUs of its own at {}.",
            if alone.is_empty() {
                "no point".to_string()
            } else {
                join(&alone.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            }
        );
        if let Some(s) = points.iter().find(|p| shared(p)) {
            text.push_str(&format!(
                " At {} it shared every CPU with the generator, which needs about as much CPU \
                 per message: a gain there is what a second core buys the pair, and a loss that \
                 the generator lost more than the server gained.{} With 16 CPUs this scenario \
                 runs 1, 2, 4 and 8 server CPUs, the generator on the other 8.",
                s.label,
                match most as u32 {
                    0 => String::new(),
                    m => format!(" It cannot show what a model does with {} CPUs of its own.", m * 2),
                }
            ));
        }
        text
    }
}
