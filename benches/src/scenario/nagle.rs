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
//! sends a header and then a body. Two more points: the same server writing each echo whole,
//! which should never wait, and a client writing its message in two halves. There most round
//! trips do not wait, but some do: about 1 and 7 in a thousand in results/2026-12-07-vm-3 (at commit 4336477) and
//! -vm-2 (the reference VM), which cut the point's throughput by 41% and 68% against whole
//! echoes. Their wait matches the echo-in-pieces point's, as if the server had read those
//! messages' halves apart and so written their echoes in two pieces; the run cannot show that.
//! The findings estimate how many waited from the figures the results keep (`waits.rs`). This
//! is the kernel's behaviour, not a model's, so one representative model (mio) shows it.

use anyhow::Result;

use crate::charts::{Bars, Charts};
use crate::findings::NO_FIGURES;
use crate::measure::{Headline, Measure};
use crate::plan::{Point, Profile, SMALL_MESSAGE};
use crate::present::{Column, Present, View, col};
use crate::registry::Model;
use crate::results::{PointResults, Summary};
use crate::text::{sig, thousands, times};

mod waits;
use waits::{DELACK_US, THRESHOLD_US, Waits};

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

/// Each of the four points' results, in [`POINTS`] order, for the first model that ran them.
fn four<'a>(view: &View<'a>) -> Option<(&'a str, [Option<&'a PointResults>; 4])> {
    let points: Vec<&Point> = view.points().collect();
    view.runs().find_map(|(m, s)| {
        let get = |i: usize| {
            let p = points.iter().find(|p| p.label == POINTS[i].0)?;
            s.points.iter().find(|r| &r.point == *p).filter(|r| r.summary.is_some())
        };
        let got = [get(0), get(1), get(2), get(3)];
        got.iter().any(Option::is_some).then_some((m.name.as_str(), got))
    })
}

/// Three significant figures without trailing zeros: "0.1", "0.673".
fn trimmed(v: f64) -> String {
    let s = sig(v);
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

fn summary(p: Option<&PointResults>) -> Option<&Summary> {
    p.and_then(|p| p.summary.as_ref())
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
        let p50 = |p: Option<&PointResults>| summary(p).map(|s| s.median.latency_us.p50);
        let rate = |p: Option<&PointResults>| summary(p).map(|s| s.median.msgs_per_sec);
        let mut out = Vec::new();
        if let (Some(a), Some(b)) = (p50(nagle), p50(nodelay)) {
            let ratio = if b > 0.0 { a / b } else { f64::NAN };
            // The first finding is the scenario's one-line answer; the why follows it.
            if a >= 20_000.0 && ratio >= 10.0 {
                out.push(format!(
                    "With Nagle's algorithm on and each echo written in two pieces, {model}'s \
                     median round trip was {}, against {} with TCP_NODELAY ({}).",
                    ms(a),
                    ms(b),
                    times(ratio)
                ));
                out.push(
                    "Why: the second piece is a small segment sent while the first is \
                     unacknowledged, so Nagle's algorithm holds it until the ACK comes; the \
                     client, with nothing to send until its echo is whole, delays that ACK (40 \
                     ms on Linux) hoping to piggyback it on data. Each message waits for the \
                     delayed-ACK timer."
                        .into(),
                );
            } else {
                out.push(format!(
                    "With Nagle on and each echo in two pieces, {model}'s median round trip was \
                     {}, against {} with TCP_NODELAY ({}): the delayed-ACK wait did not show \
                     here.",
                    ms(a),
                    ms(b),
                    times(ratio)
                ));
            }
        }
        // The explanations hold only where the figures show the effect they explain:
        // whole echoes fast and pieces slow.
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
        if let (Some(p), Some(s50), Some(r)) = (split, p50(split), rate(split)) {
            // One wait is what the point with every echo in pieces measured for each round
            // trip, when it did (its median at the timer's scale).
            let measured = p50(nagle).filter(|&n| n > THRESHOLD_US);
            let w = waits::estimate(&waits::Repeat::of(p), measured.unwrap_or(DELACK_US));
            out.push(split_finding(s50, r, rate(whole), w, measured.is_some()));
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
        let p50 = |p: &Option<&PointResults>| {
            summary(*p).map_or(f64::NAN, |s| s.median.latency_us.p50 / 1e3)
        };
        let series: Vec<Bars> = vec![("median round trip".into(), got.iter().map(p50).collect())];
        let groups: Vec<String> = POINTS.iter().map(|p| p.0.to_string()).collect();
        let t = format!("{model}: median round trip of one connection");
        charts.categories(self.name(), "nagle-latency.svg", &t, &groups, "latency (ms)", &series)
    }
}

/// The finding of the client that writes its message in two calls: its median, and how many
/// of its round trips waited for the delayed-ACK timer all the same (`waits`), with what that
/// cost its throughput against whole echoes (`whole_rate`). `measured` says whether the wait's
/// length came from the run (the point with every echo in pieces) or from Linux's timer.
fn split_finding(
    p50: f64,
    rate: f64,
    whole_rate: Option<f64>,
    waits: Option<Waits>,
    measured: bool,
) -> String {
    let head = format!(
        "A client writing its message in two calls, against the server with Nagle on, had a \
         median round trip of {}",
        ms(p50)
    );
    let Some(w) = waits.filter(|w| w.waited > 0.0) else {
        return format!(
            "{head}, and none of its round trips reached {}: none waited for the delayed-ACK \
             timer.",
            ms(THRESHOLD_US)
        );
    };
    let pct = |r: f64| format!("{}%", trimmed(100.0 * r));
    let bounds = if w.share_low == w.share_high {
        String::new()
    } else {
        format!(
            "; its percentiles put that share between {} and {}",
            pct(w.share_low),
            pct(w.share_high)
        )
    };
    let wait = if measured {
        format!(
            "the {} that every round trip of the point with each echo in two pieces waited",
            ms(w.wait_us)
        )
    } else {
        format!("Linux's {} delayed-ACK timer", ms(w.wait_us))
    };
    let cost = w.wait_seconds / w.window_seconds.max(f64::MIN_POSITIVE);
    let gap = match whole_rate {
        Some(whole) if cost >= 0.25 && whole > 1.1 * rate => format!(
            ": those waits, not the median, set this point's {} msgs/s against {} for whole \
             echoes",
            thousands(rate),
            thousands(whole)
        ),
        _ => String::new(),
    };
    format!(
        "{head}, but about {} of its {} round trips ({}{bounds}) took {} or more, each about \
         {wait}. The count is an estimate: the time above the median (round trips x (mean - \
         median)) divided by that wait. Together they took about {} s of the {} s \
         measured ({}){gap}. The same wait as that point's is consistent with the server having \
         read the two halves apart for these round trips and written its echo in two pieces; \
         the run does not show which round trips did, or why only these.",
        thousands(w.waited),
        thousands(w.messages),
        pct(w.waited / w.messages),
        ms(THRESHOLD_US),
        sig(w.wait_seconds),
        sig(w.window_seconds),
        pct(cost),
    )
}

#[cfg(test)]
mod tests {
    use super::waits::{Repeat, estimate};
    use super::*;

    /// The split-writes point of 2026-12-07 (vm-2): 2,475 msgs/s against 7,707 for whole
    /// echoes, median 115 us, max 60 ms.
    fn vm2() -> Option<Waits> {
        let tail =
            [(156.5, 0.1), (386.3, 0.01), (44171.3, 0.001), (60194.8, 0.0001), (60194.8, 0.0)];
        let r = Repeat { messages: 3713.0, seconds: 1.5, mean: 406.9, p50: 114.8, tail };
        estimate(&[r], 44_007.0)
    }

    #[test]
    fn a_fast_median_with_timer_waits_says_how_many_waited_and_what_they_cost() {
        let s = split_finding(114.8, 2475.0, Some(7707.0), vm2(), true);
        // The old sentence: "waited 115 us (median), no delayed ACK".
        assert!(!s.contains("no delayed ACK"), "{s}");
        assert!(s.contains("about 25 of its 3,713 round trips (0.673%"), "{s}");
        assert!(s.contains("between 0.1% and 1%"), "{s}");
        assert!(s.contains("2,475 msgs/s against 7,707"), "{s}");
        assert!(s.contains("44.0 ms that every round trip"), "{s}");
    }

    #[test]
    fn without_a_round_trip_at_the_threshold_it_says_none_waited() {
        let tail = [(80.0, 0.1), (114.0, 0.01), (191.0, 0.001), (1219.0, 0.0001), (1219.0, 0.0)];
        let r = Repeat { messages: 7000.0, seconds: 0.5, mean: 70.0, p50: 68.0, tail };
        let s = split_finding(68.0, 14_000.0, Some(14_500.0), estimate(&[r], 44_000.0), true);
        assert!(s.contains("none waited for the delayed-ACK timer"), "{s}");
    }

    #[test]
    fn waits_too_few_to_matter_are_not_called_the_cause_of_a_gap() {
        let tail =
            [(80.0, 0.1), (114.0, 0.01), (191.0, 0.001), (41_000.0, 0.0001), (44_000.0, 0.0)];
        let r = Repeat { messages: 20_000.0, seconds: 1.5, mean: 72.5, p50: 68.0, tail };
        let s = split_finding(68.0, 9_000.0, Some(14_500.0), estimate(&[r], 44_000.0), true);
        assert!(s.contains("about 2 of its 20,000"), "{s}");
        assert!(!s.contains("set this point's"), "{s}");
    }
}
