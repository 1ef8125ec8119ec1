//! nagle: "Why do some echoes take 40 ms?" One connection, each message written by the client
//! in two parts (`loadgen --split-writes`), against a server that leaves Nagle's algorithm on
//! (`--nagle`: TCP_NODELAY not set on accepted connections) and one that turns it off.
//!
//! The server echoes the first part at once: nothing of its own is unacknowledged. The
//! second part's echo is a small segment sent while the first echo is still unacknowledged,
//! so Nagle's algorithm holds it until that ACK arrives; and the client, having no data to
//! send back, delays its ACK (up to 40 ms on Linux) in the hope of piggybacking it. Each
//! message then waits for the delayed-ACK timer. Written in one part, the same server with
//! Nagle on is as fast as without: ping-pong leaves nothing unacknowledged when it writes.
//! This is the kernel's behaviour, not a model's, so one representative model (mio) shows it.

use anyhow::Result;

use super::{Column, Headline, Scenario, View, col};
use crate::charts::{Bars, Charts};
use crate::findings::NO_FIGURES;
use crate::plan::{Point, Profile, SMALL_MESSAGE};
use crate::registry::Model;
use crate::results::Summary;
use crate::text::{sig, times};

/// The nagle scenario.
#[derive(Debug)]
pub struct Nagle;

/// A point: Nagle left on at the server or not, each message in one write or two.
fn point(nagle: bool, split: bool, profile: Profile, x: f64) -> Point {
    let p = Point::closed("nagle", 1, SMALL_MESSAGE);
    let server_args = if nagle { vec!["--nagle".to_string()] } else { Vec::new() };
    // Standard: one repeat each. The effect is a hundredfold; more runs would not change what
    // it shows, and the window holds dozens of round trips even at 40 ms each.
    let repeats = (profile != Profile::Full).then_some(1);
    let label = match (nagle, split) {
        (true, true) => "Nagle, 2 writes",
        (false, true) => "TCP_NODELAY, 2 writes",
        (true, false) => "Nagle, 1 write",
        (false, false) => "TCP_NODELAY, 1 write",
    };
    Point { server_args, split_writes: split, repeats, ..p }.named(label, x)
}

/// The summaries of the three points: Nagle and two writes, TCP_NODELAY and two writes, Nagle
/// and one write.
fn three<'a>(view: &View<'a>) -> Option<(&'a str, [Option<&'a Summary>; 3])> {
    let points: Vec<&Point> = view.points().collect();
    let find = |nagle: bool, split: bool| {
        points.iter().find(|p| p.split_writes == split && p.server_args.is_empty() != nagle)
    };
    let wanted = [find(true, true), find(false, true), find(true, false)];
    view.runs().find_map(|(m, s)| {
        let get = |p: Option<&&Point>| p.and_then(|p| s.summary_of(p));
        let got = [get(wanted[0]), get(wanted[1]), get(wanted[2])];
        got.iter().any(Option::is_some).then_some((m.name.as_str(), got))
    })
}

fn ms(us: f64) -> String {
    if us >= 1000.0 { format!("{} ms", sig(us / 1000.0)) } else { format!("{} us", sig(us)) }
}

impl Scenario for Nagle {
    fn name(&self) -> &'static str {
        "nagle"
    }

    fn question(&self) -> &'static str {
        "Why do some echoes take 40 ms?"
    }

    fn setup(&self) -> String {
        format!(
            "One connection, closed loop, {SMALL_MESSAGE}-byte messages that the client writes \
             in two parts (`loadgen --split-writes`) or in one, against the server started \
             with `--nagle` (TCP_NODELAY left off on its connections) or without (TCP_NODELAY \
             set, the default). The client always sets TCP_NODELAY."
        )
    }

    fn runs(&self, model: &Model) -> bool {
        model.name == "mio"
    }

    fn models_note(&self) -> Option<&'static str> {
        Some(
            "mio only: Nagle's algorithm and delayed ACKs are the kernel's, the same under \
             every model, so one representative shows them.",
        )
    }

    fn points(&self, profile: Profile, _given: Option<&str>) -> Result<Vec<Point>> {
        Ok(vec![
            point(false, true, profile, 0.0),
            point(true, true, profile, 1.0),
            point(true, false, profile, 2.0),
        ])
    }

    fn headline(&self) -> Headline {
        Headline {
            name: "p50",
            figure: |m| m.latency_us.p50,
            higher_is_better: false,
            better: "faster",
            worse: "slower",
        }
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            ("server flags", |c| {
                let a = &c.point.point.server_args;
                if a.is_empty() { "-".into() } else { format!("`{}`", a.join(" ")) }
            }),
            ("writes per message", |c| {
                if c.point.point.split_writes { "2".into() } else { "1".into() }
            }),
            col::RATE,
            col::P50,
            col::P99,
            ("max us", |c| sig(c.summary.median.latency_us.max)),
        ]
    }

    fn findings(&self, view: &View<'_>) -> Vec<String> {
        let Some((model, [nagle, nodelay, one])) = three(view) else {
            return vec![NO_FIGURES.into()];
        };
        let mut out = Vec::new();
        if let (Some(n), Some(d)) = (nagle, nodelay) {
            let (a, b) = (n.median.latency_us.p50, d.median.latency_us.p50);
            let ratio = if b > 0.0 { a / b } else { f64::NAN };
            out.push(if a >= 20_000.0 && ratio >= 10.0 {
                format!(
                    "With Nagle's algorithm on at the server ({model}) and each message written \
                     in two parts, the median round trip was {}, against {} with TCP_NODELAY \
                     ({}): {} messages per second instead of {}.",
                    ms(a),
                    ms(b),
                    times(ratio),
                    sig(n.median.msgs_per_sec),
                    sig(d.median.msgs_per_sec)
                )
            } else {
                format!(
                    "With Nagle on at the server ({model}) and two writes per message the \
                     median round trip was {}, against {} with TCP_NODELAY ({}): the \
                     delayed-ACK wait did not show here (a kernel that acknowledges at once, \
                     in quick-ACK mode, never makes Nagle wait).",
                    ms(a),
                    ms(b),
                    times(ratio)
                )
            });
            if a >= 20_000.0 {
                out.push(
                    "Why: the server echoes the first part at once, since nothing of its own is \
                     unacknowledged. The echo of the second part is a small segment sent while \
                     the first echo is unacknowledged, so Nagle's algorithm holds it until the \
                     ACK comes; the client, with nothing to send back, delays that ACK (up to \
                     40 ms on Linux) hoping to piggyback it on data. Each message waits for \
                     the delayed-ACK timer. Set TCP_NODELAY on both ends and write each message \
                     with one call."
                        .into(),
                );
            }
        }
        if let (Some(o), Some(d)) = (one, nodelay) {
            out.push(format!(
                "Written in one part, the same server with Nagle on answered in {} (median): \
                 Nagle's algorithm holds a small segment only while earlier data is \
                 unacknowledged, and one write per round trip leaves none. The cost comes from \
                 the pair, a message in pieces and Nagle, not from Nagle alone ({} with \
                 TCP_NODELAY and two writes).",
                ms(o.median.latency_us.p50),
                ms(d.median.latency_us.p50)
            ));
        }
        if out.is_empty() { vec![NO_FIGURES.into()] } else { out }
    }

    fn charts(&self, view: &View<'_>, charts: &mut Charts) -> Result<()> {
        let Some((model, got)) = three(view) else { return Ok(()) };
        let p50 = |s: Option<&Summary>| s.map_or(f64::NAN, |s| s.median.latency_us.p50 / 1e3);
        let series: Vec<Bars> =
            vec![("median round trip".into(), got.iter().map(|s| p50(*s)).collect())];
        let groups: Vec<String> = ["Nagle, 2 writes", "TCP_NODELAY, 2 writes", "Nagle, 1 write"]
            .map(String::from)
            .to_vec();
        let t = format!("{model}: median round trip of one connection");
        charts.categories(self.name(), "nagle-latency.svg", &t, &groups, "latency (ms)", &series)
    }
}
