//! nagle: "Why do some echoes take 40 ms?" One connection of 64-byte messages against a server
//! that writes each echo in two pieces (`--buffer 32`: it holds at most 32 bytes of a
//! connection, so it reads and echoes a message in two halves), with Nagle's algorithm left on
//! (`--nagle`: TCP_NODELAY not set on accepted connections) or turned off.
//!
//! The first half of the echo leaves at once: nothing of the server's is unacknowledged. The
//! second half is a small segment while the first is still unacknowledged, so Nagle's
//! algorithm holds it until that ACK arrives; and the client, waiting for the rest of its echo
//! with nothing to send, delays its ACK (40 ms on Linux) in the hope of piggybacking it. Each
//! message then waits for the delayed-ACK timer: the write-write-read pattern of a server that
//! sends a header and then a body. Two more points pin down what does not cause it: the same
//! server writing each echo whole, and a client writing its message in two halves (measured
//! when `--split-writes` was added to loadgen: the second half carries the ACK of the first
//! half's echo, so nothing is left for Nagle to wait on). This is the kernel's behaviour, not a
//! model's, so one representative model (mio) shows it.

use anyhow::Result;

use crate::charts::{Bars, Charts};
use crate::findings::NO_FIGURES;
use crate::measure::{Headline, Measure};
use crate::plan::{Point, Profile, SMALL_MESSAGE};
use crate::present::{Column, Present, View, col};
use crate::registry::Model;
use crate::results::Summary;
use crate::text::{sig, times};

/// The nagle scenario.
#[derive(Debug)]
pub struct Nagle;

/// The server's buffer that makes it write a 64-byte echo in two pieces.
pub const SMALL_BUFFER: &str = "32";

/// The points, in an order that restarts the server least: (label, Nagle on, echo in two
/// pieces, message in two writes).
const POINTS: [(&str, bool, bool, bool); 4] = [
    ("TCP_NODELAY, echo in 2 pieces", false, true, false),
    ("Nagle, echo in 2 pieces", true, true, false),
    ("Nagle, echo whole", true, false, false),
    ("Nagle, message in 2 writes", true, false, true),
];

fn point(i: usize, profile: Profile) -> Point {
    let (label, nagle, pieces, split) = POINTS[i];
    let mut server_args = Vec::new();
    if nagle {
        server_args.push("--nagle".to_string());
    }
    if pieces {
        server_args.extend(["--buffer".to_string(), SMALL_BUFFER.to_string()]);
    }
    // One repeat but in the full profile: the effect is a thousandfold, and a window holds
    // dozens of round trips even at 40 ms each.
    let repeats = (profile != Profile::Full).then_some(1);
    let p = Point::closed("nagle", 1, SMALL_MESSAGE);
    Point { server_args, split_writes: split, repeats, ..p }.named(label, i as f64)
}

/// Each of the four points' summary, in [`POINTS`] order, for the first model that ran them.
fn four<'a>(view: &View<'a>) -> Option<(&'a str, [Option<&'a Summary>; 4])> {
    let points: Vec<&Point> = view.points().collect();
    view.runs().find_map(|(m, s)| {
        let get = |i: usize| {
            let p = points.iter().find(|p| p.label == POINTS[i].0)?;
            s.summary_of(p)
        };
        let got = [get(0), get(1), get(2), get(3)];
        got.iter().any(Option::is_some).then_some((m.name.as_str(), got))
    })
}

fn ms(us: f64) -> String {
    if us >= 1000.0 { format!("{} ms", sig(us / 1000.0)) } else { format!("{} us", sig(us)) }
}

impl Measure for Nagle {
    fn name(&self) -> &'static str {
        "nagle"
    }

    fn runs(&self, model: &Model) -> bool {
        model.name == "mio"
    }

    fn points(&self, profile: Profile, _given: Option<&str>) -> Result<Vec<Point>> {
        Ok((0..POINTS.len()).map(|i| point(i, profile)).collect())
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
}

impl Present for Nagle {
    fn question(&self) -> &'static str {
        "Why do some echoes take 40 ms?"
    }

    fn setup(&self) -> String {
        format!(
            "One connection, closed loop, {SMALL_MESSAGE}-byte messages. The server is started \
             with `--buffer {SMALL_BUFFER}` to make it write each echo in two pieces, with \
             `--nagle` to leave Nagle's algorithm on (TCP_NODELAY off); the last point has the \
             client write each message in two calls (`loadgen --split-writes`) instead. The \
             client always sets TCP_NODELAY."
        )
    }

    fn models_note(&self) -> Option<&'static str> {
        Some(
            "mio only: Nagle's algorithm and delayed ACKs are the kernel's, the same under \
             every model, so one representative shows them.",
        )
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            ("server flags", |c| {
                let a = &c.point.point.server_args;
                if a.is_empty() { "-".into() } else { format!("`{}`", a.join(" ")) }
            }),
            ("client writes per message", |c| {
                if c.point.point.split_writes { "2".into() } else { "1".into() }
            }),
            col::RATE,
            col::P50,
            col::P99,
            ("max us", |c| sig(c.summary.median.latency_us.max)),
        ]
    }

    fn findings(&self, view: &View<'_>) -> Vec<String> {
        let Some((model, [nodelay, nagle, whole, split])) = four(view) else {
            return vec![NO_FIGURES.into()];
        };
        let p50 = |s: Option<&Summary>| s.map(|s| s.median.latency_us.p50);
        let mut out = Vec::new();
        if let (Some(a), Some(b)) = (p50(nagle), p50(nodelay)) {
            let ratio = if b > 0.0 { a / b } else { f64::NAN };
            out.push(if a >= 20_000.0 && ratio >= 10.0 {
                format!(
                    "With Nagle's algorithm on and each echo written in two pieces, {model}'s \
                     median round trip was {}, against {} with TCP_NODELAY ({}). Why: the \
                     second piece is a small segment sent while the first is unacknowledged, so \
                     Nagle's algorithm holds it until the ACK comes; the client, with nothing to \
                     send until its echo is whole, delays that ACK (40 ms on Linux) hoping to \
                     piggyback it on data. Each message waits for the delayed-ACK timer.",
                    ms(a),
                    ms(b),
                    times(ratio)
                )
            } else {
                format!(
                    "With Nagle on and each echo in two pieces, {model}'s median round trip was \
                     {}, against {} with TCP_NODELAY ({}): the delayed-ACK wait did not show \
                     here (a client in quick-ACK mode acknowledges at once, and then Nagle has \
                     nothing to wait for).",
                    ms(a),
                    ms(b),
                    times(ratio)
                )
            });
        }
        // The explanations hold only where the figures show the effect they explain:
        // whole echoes fast and pieces slow, and a split client fast.
        if let (Some(w), Some(n)) = (p50(whole), p50(nagle))
            && w < 10_000.0
            && n >= 20_000.0
        {
            out.push(format!(
                "The same server with Nagle on but each echo written whole answered in {} \
                 (median, against {} in two pieces): Nagle holds a small segment only while \
                 earlier data is unacknowledged, and one write per round trip leaves none. It \
                 is the pair, an echo in pieces and Nagle, that costs.",
                ms(w),
                ms(n)
            ));
        }
        if let Some(s) = p50(split) {
            out.push(if s < 10_000.0 {
                format!(
                    "A client writing its message in two calls, against the server with Nagle \
                     on, waited {} (median), no delayed ACK: the server echoes the first half \
                     at once, and the client's second half then carries the acknowledgement of \
                     that echo.",
                    ms(s)
                )
            } else {
                format!(
                    "A client writing its message in two calls, against the server with Nagle \
                     on, waited {} (median): here the server read the halves apart and its \
                     second echo waited for a delayed ACK too.",
                    ms(s)
                )
            });
        }
        out.push(
            "The cure: set TCP_NODELAY on both ends (every model here does unless `--nagle`), \
             and write each message or response with one call."
                .into(),
        );
        out
    }

    fn charts(&self, view: &View<'_>, charts: &mut Charts) -> Result<()> {
        let Some((model, got)) = four(view) else { return Ok(()) };
        let p50 = |s: &Option<&Summary>| s.map_or(f64::NAN, |s| s.median.latency_us.p50 / 1e3);
        let series: Vec<Bars> = vec![("median round trip".into(), got.iter().map(p50).collect())];
        let groups: Vec<String> = POINTS.iter().map(|p| p.0.to_string()).collect();
        let t = format!("{model}: median round trip of one connection");
        charts.categories(self.name(), "nagle-latency.svg", &t, &groups, "latency (ms)", &series)
    }
}
