//! batch: "What does batching buy a datagram server?" echo-udp with `--batch 1` (one
//! `recvfrom` and one `sendto` per datagram) against `--batch 32` (`recvmmsg` and `sendmmsg`
//! moving up to 32 datagrams per call), under the same closed-loop pipelined load.
//!
//! Batching saves what is paid per system call (entering the kernel, finding and locking the
//! socket), not what is paid per datagram (a packet built, routed and, on loopback, delivered
//! into the client's socket on the server's CPU). And it saves only when the queue holds
//! several datagrams, which a pipelined load keeps it doing. So the figure to read is the
//! server's CPU per datagram; the rate follows it only where the server is the limit.

use std::time::Duration;

use anyhow::Result;

use crate::compare::{self, Comparison, Verdict};
use crate::findings::NO_FIGURES;
use crate::measure::Measure;
use crate::plan::{Point, Profile, SMALL_MESSAGE};
use crate::present::{Column, Present, View, col};
use crate::registry::{Model, Transport};
use crate::results::Summary;
use crate::text::{sig, thousands};

/// Sockets of the closed loop.
pub const SOCKETS: u32 = 10;

/// Datagrams in flight on each socket.
pub const PIPELINE: u32 = 8;

/// The batch sizes compared.
pub const BATCHES: [u32; 2] = [1, 32];

/// A lost datagram's slot in a closed loop is refilled only when it is declared lost, so the
/// wait must be short (loadgen's README): on loopback an echo not back in 10 ms was dropped.
pub const TIMEOUT: Duration = Duration::from_millis(10);

/// The batch scenario.
#[derive(Debug)]
pub struct Batch;

fn point(batch: u32, profile: Profile) -> Point {
    let p = Point::closed("batch", SOCKETS, SMALL_MESSAGE);
    let repeats = (profile == Profile::Quick).then_some(1);
    let server_args = vec!["--batch".to_string(), batch.to_string()];
    Point { pipeline: PIPELINE, server_args, repeats, ..p }
        .named(format!("--batch {batch}"), f64::from(batch))
}

/// The summary of each batch size, in [`BATCHES`] order, for the first model that has any.
fn both<'a>(view: &View<'a>) -> Option<(&'a str, [Option<&'a Summary>; 2])> {
    let points: Vec<&Point> = view.points().collect();
    view.runs().find_map(|(m, s)| {
        let get = |b: u32| s.summary_of(points.iter().find(|p| p.x == f64::from(b))?);
        let got = [get(BATCHES[0]), get(BATCHES[1])];
        got.iter().any(Option::is_some).then_some((m.name.as_str(), got))
    })
}

/// Lost datagrams as a share of those sent, over the summary's repeats (the median's).
fn lost(s: &Summary) -> f64 {
    let m = &s.median;
    if m.sent > 0.0 { (m.sent - m.received).max(0.0) / m.sent } else { 0.0 }
}

/// The server CPU per datagram of `--batch 32` against `--batch 1` for `model`, paired by
/// round: the two points of one round ran minutes apart at most, and the ratio of the same
/// round's figures cancels what drifted between rounds. `None` without paired rounds.
fn by_round(view: &View<'_>, model: &str) -> Option<Comparison> {
    let points: Vec<&Point> = view.points().collect();
    let of = |b: u32| {
        let p = points.iter().find(|p| p.x == f64::from(b))?;
        let all = compare::rounds(view.results, p, &compare::CPU_PER_MSG);
        all.into_iter().find(|(n, _)| *n == model).map(|(_, r)| r)
    };
    let (one, many) = (of(BATCHES[0])?, of(BATCHES[1])?);
    let (a, b) = (format!("--batch {}", BATCHES[0]), format!("--batch {}", BATCHES[1]));
    compare::compare(("batch", "batch sizes"), &compare::CPU_PER_MSG, (&a, &one), (&b, &many))
}

/// The one-line answer: what `--batch 32` did to the server CPU per datagram, by the paired
/// rounds' verdict.
fn headline(model: &str, c: &Comparison) -> String {
    let verdict = match c.verdict {
        Verdict::Different if c.ratio < 1.0 => "less, called by the paired rounds",
        Verdict::Different => "more, called by the paired rounds",
        Verdict::Equivalent => "equivalent within 3%",
        Verdict::Undecided if c.confidence < compare::CONFIDENCE => "too few rounds to decide",
        Verdict::Undecided => "no measurable difference",
    };
    format!(
        "With `--batch {}`, {model} spent {} ({:.2}-{:.2}) the server CPU per datagram it spent \
         with `--batch 1` over {} paired rounds: {verdict}.",
        BATCHES[1],
        crate::text::times(c.ratio),
        c.low,
        c.high,
        c.rounds
    )
}

/// What the CPU ratio of `--batch 32` to `--batch 1` says of where the cost lies: the calls
/// fell about 32-fold at best, so a ratio far above 1/32 means most of the cost is per
/// datagram, not per call; a ratio near it would mean the calls were most of it.
fn lesson(ratio: f64) -> String {
    let calls =
        format!("Batching cuts the system calls per datagram about {}-fold at best", BATCHES[1]);
    if ratio > 0.5 {
        format!(
            "{calls}; the CPU per datagram went to {} of what it was, far less of a change, so \
             most of it is per datagram, not per call: building each packet and, on loopback, \
             delivering each echo into the client's socket.",
            crate::text::times(ratio)
        )
    } else {
        format!(
            "{calls}, and the CPU fell to {} of what it was: the calls were a large part of \
             this server's cost.",
            crate::text::times(ratio)
        )
    }
}

impl Measure for Batch {
    fn name(&self) -> &'static str {
        "batch"
    }

    fn runs(&self, model: &Model) -> bool {
        model.transport == Transport::Datagram
    }

    fn points(&self, profile: Profile, _given: Option<&str>) -> Result<Vec<Point>> {
        Ok(BATCHES.iter().map(|&b| point(b, profile)).collect())
    }

    fn loadgen(&self, _point: &Point, config: &mut loadgen::Config) {
        config.timeout = TIMEOUT;
    }
}

impl Present for Batch {
    fn question(&self) -> &'static str {
        "What does batching buy a datagram server?"
    }

    fn setup(&self) -> String {
        let timeout = humantime::format_duration(TIMEOUT);
        format!(
            "Closed loop over {SOCKETS} UDP sockets with {PIPELINE} datagrams in flight on \
             each (`loadgen --pipeline {PIPELINE} --timeout {timeout}`), {SMALL_MESSAGE}-byte \
             datagrams, against echo-udp started with `--batch 1` and with `--batch 32`."
        )
    }

    fn models_note(&self) -> Option<&'static str> {
        Some("the datagram server only: `--batch` is its flag (`recvmmsg`/`sendmmsg`).")
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            ("server flags", |c| format!("`{}`", c.point.point.server_args.join(" "))),
            col::RATE,
            col::SPREAD,
            col::CPU,
            col::UTIL,
            ("lost", |c| format!("{}%", sig(lost(c.summary) * 100.0))),
            col::P99,
        ]
    }

    fn findings(&self, view: &View<'_>) -> Vec<String> {
        let Some((model, [Some(one), Some(many)])) = both(view) else {
            return vec![NO_FIGURES.into()];
        };
        let cpu = |s: &Summary| s.median.server_cpu_per_msg_us;
        let rate = |s: &Summary| s.median.msgs_per_sec;
        let mut out = Vec::new();
        let paired = by_round(view, model);
        out.extend(paired.as_ref().map(|c| headline(model, c)));
        if let (Some(a), Some(b)) = (cpu(one), cpu(many)) {
            out.push(format!(
                "{model} spent {} us of server CPU per datagram with `--batch {}` against {} us \
                 with `--batch 1` ({:+.0}% by median), and echoed {} against {} datagrams per \
                 second ({:+.0}%). {}",
                sig(b),
                BATCHES[1],
                sig(a),
                100.0 * (b / a - 1.0),
                thousands(rate(many)),
                thousands(rate(one)),
                100.0 * (rate(many) / rate(one) - 1.0),
                lesson(paired.as_ref().map_or(b / a, |c| c.ratio)),
            ));
        }
        let utilization = |s: &Summary| s.median.server_cpu_utilization;
        if utilization(one) < 0.8 && utilization(many) < 0.8 {
            out.push(format!(
                "The server ran {:.0}% and {:.0}% of the window, short of a whole CPU: the \
                 rates were bounded by the closed loop, the generator or the CPU other \
                 processes left the server, not by the batch size, so the CPU per datagram is \
                 the figure to compare.",
                100.0 * utilization(one),
                100.0 * utilization(many)
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_per_datagram_lesson_follows_the_ratio() {
        // The old sentence said "the CPU falls far less" whatever the figures.
        assert!(lesson(0.99).contains("most of it is per datagram"));
        let s = lesson(0.3);
        assert!(!s.contains("falls far less") && !s.contains("fell far less"), "{s}");
        assert!(s.contains("a large part"), "{s}");
    }

    #[test]
    fn the_headline_takes_the_paired_verdict_not_the_medians() {
        let one: Vec<(u32, f64)> = (1..=8).map(|r| (r, 1.75)).collect();
        // Medians 1% apart, but scattered by 10% from round to round: no verdict.
        let many: Vec<(u32, f64)> =
            (1..=8).map(|r| (r, 1.73 * (1.0 + 0.1 * (f64::from(r) - 4.5) / 3.5))).collect();
        let c = compare::compare(("batch", "x"), &compare::CPU_PER_MSG, ("1", &one), ("32", &many))
            .unwrap();
        assert!(
            headline("udp", &c).contains("no measurable difference"),
            "{}",
            headline("udp", &c)
        );
        let many: Vec<(u32, f64)> = (1..=8).map(|r| (r, 0.9 + 0.001 * f64::from(r))).collect();
        let c = compare::compare(("batch", "x"), &compare::CPU_PER_MSG, ("1", &one), ("32", &many))
            .unwrap();
        assert!(headline("udp", &c).contains("less, called by the paired rounds"));
    }
}
