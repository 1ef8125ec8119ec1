//! churn: "What does a new connection cost?" Clients that open a connection for every message;
//! connections per second and server CPU per connection.

use anyhow::Result;

use crate::charts::Charts;
use crate::compare::{self, RATE};
use crate::findings::{NO_FIGURES, called, figure, ranking};
use crate::measure::{Headline, Measure, PointsFlag, counts};
use crate::plan::{Point, Profile, SMALL_MESSAGE, plural};
use crate::present::{Column, Present, View, col};
use crate::registry::{self, PerConnection};
use crate::results::Summary;
use crate::text::{sig, thousands, times};

/// The 99th percentile of connect latency, lower being better.
const CONNECT_P99: compare::Figure = compare::Figure {
    name: "connect p99",
    of: |m| m.connect_us.map_or(f64::NAN, |c| c.p99),
    higher_is_better: false,
};

/// The churn scenario.
#[derive(Debug)]
pub struct Churn;

fn point(clients: u32) -> Point {
    let p = Point::closed("churn", clients, SMALL_MESSAGE);
    Point { churn: true, ..p }.named(plural(clients, "client"), f64::from(clients))
}

impl Measure for Churn {
    fn name(&self) -> &'static str {
        "churn"
    }

    fn flag(&self) -> Option<PointsFlag> {
        Some(PointsFlag {
            long: "churn-clients",
            value_name: "N,N,...",
            help: "Concurrent clients of the churn scenario, comma-separated",
        })
    }

    fn points(&self, profile: Profile, given: Option<&str>) -> Result<Vec<Point>> {
        let clients = match given {
            Some(text) => counts("churn-clients", text)?,
            None => match profile {
                Profile::Quick => vec![4],
                // One client in the standard profile (8 paired rounds a point): the cost of a
                // connection itself. Eight clients, where accepting in parallel helps, are in
                // the full profile.
                Profile::Standard => vec![1],
                Profile::Full => vec![1, 8, 32],
            },
        };
        Ok(clients.into_iter().map(point).collect())
    }

    fn unit(&self) -> &'static str {
        "conn"
    }

    fn headline(&self) -> Headline {
        Headline { name: "conns/s", ..crate::measure::THROUGHPUT }
    }
}

impl Present for Churn {
    fn question(&self) -> &'static str {
        "What does a new connection cost?"
    }

    fn setup(&self) -> String {
        format!(
            "Each client connects, sends {SMALL_MESSAGE} bytes, reads the echo and closes, over \
             and over. Server CPU per connection covers accept, echo and teardown."
        )
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            ("conns/s", |c| thousands(c.summary.median.msgs_per_sec)),
            col::SPREAD,
            ("connect p50 us", |c| c.summary.median.connect_us.map_or("-".into(), |l| sig(l.p50))),
            ("connect p99 us", |c| c.summary.median.connect_us.map_or("-".into(), |l| sig(l.p99))),
            col::P99,
            ("server CPU us/conn", |c| {
                c.summary.median.server_cpu_per_msg_us.map_or("-".into(), sig)
            }),
            col::UTIL,
            col::THREADS,
            col::PROCESSES,
        ]
    }

    fn pair_figures(&self) -> Vec<(&'static str, compare::Figure)> {
        vec![("conns/s", RATE), ("CPU/conn", compare::CPU_PER_MSG)]
    }

    fn findings(&self, view: &View<'_>) -> Vec<String> {
        let Some((point, at)) = view.deciding() else {
            return vec![NO_FIGURES.into()];
        };
        let mut out = vec![
            format!(
                "With {} each opening a connection per message, connections accepted and \
                 served per second, most first, each against the first in paired rounds: {}.",
                point.label,
                ranking(view, point, &RATE, &|v| format!("{}/s", thousands(v)))
            ),
            format!(
                "Server CPU per connection (accept, echo, close), least first: {}.",
                ranking(view, point, &compare::CPU_PER_MSG, &|v| format!("{} us", sig(v)))
            ),
        ];
        out.extend(why(view, point, &at));
        let connect = figure(&at, |s| s.median.connect_us.map_or(f64::NAN, |c| c.p99));
        if connect.iter().any(|(_, v)| v.is_finite()) {
            out.push(format!(
                "Connect latency p99, lowest first: {}.",
                ranking(view, point, &CONNECT_P99, &|v| format!("{} us", sig(v)))
            ));
        }
        out
    }

    fn charts(&self, view: &View<'_>, charts: &mut Charts) -> Result<()> {
        let s = view.series(|m| Some(m.msgs_per_sec));
        let t = "New connections per second under churn";
        charts.bars(self.name(), "churn-rate.svg", t, "concurrent clients", "connections/s", &s)
    }
}

/// What the costliest model creates per connection that the cheapest does not, from the
/// registry's description of the model and the CPU figures.
/// Why the dearest connection cost what it did: said only where the run's paired rounds call
/// its CPU per connection different from the cheapest's.
fn why(view: &View<'_>, point: &Point, at: &[(&str, &Summary)]) -> Option<String> {
    let cpu = |s: &Summary| s.median.server_cpu_per_msg_us;
    let mut by_cpu: Vec<(&str, f64)> = at.iter().filter_map(|(n, s)| Some((*n, cpu(s)?))).collect();
    by_cpu.sort_by(|a, b| a.1.total_cmp(&b.1));
    let (&(cheap, c), &(dear, d)) = (by_cpu.first()?, by_cpu.last()?);
    let creates = match registry::find(dear)?.per_connection {
        PerConnection::Process => "creates and later reaps a whole process",
        PerConnection::Thread => "creates and tears down a thread",
        PerConnection::Pooled | PerConnection::State => return None,
    };
    let cheap_is_state =
        registry::find(cheap).is_some_and(|m| m.per_connection == PerConnection::State);
    let there = if cheap_is_state {
        ", where a connection is a socket registered in a loop that already exists"
    } else {
        ""
    };
    let real = called(view, point, &compare::CPU_PER_MSG, cheap, dear);
    (real && c > 0.0 && d > 1.5 * c).then(|| {
        format!(
            "Why: for every connection {dear} {creates}, which cost it {} us of server CPU per \
             connection, {} {cheap}'s {} us{there}.",
            sig(d),
            times(d / c),
            sig(c)
        )
    })
}
