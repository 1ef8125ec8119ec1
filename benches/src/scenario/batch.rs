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
        if let (Some(a), Some(b)) = (cpu(one), cpu(many)) {
            out.push(format!(
                "{model} spent {} us of server CPU per datagram with `--batch {}` against {} us \
                 with `--batch 1` ({:+.0}%), and echoed {} against {} datagrams per second \
                 ({:+.0}%). Batching cuts the system calls per datagram about {}-fold at best; \
                 the CPU falls far less because most of it is per datagram, not per call: \
                 building each packet and, on loopback, delivering each echo into the \
                 client's socket.",
                sig(b),
                BATCHES[1],
                sig(a),
                100.0 * (b / a - 1.0),
                thousands(rate(many)),
                thousands(rate(one)),
                100.0 * (rate(many) / rate(one) - 1.0),
                BATCHES[1],
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
