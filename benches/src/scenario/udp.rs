//! udp: "What does UDP trade away, and what does it buy?" A TCP server (mio) and the datagram
//! server (echo-udp) under the same open-loop rates, from well below to beyond what either
//! takes, with latency measured from the intended send time and every datagram accounted for.
//!
//! The two answer overload in opposite ways. TCP never drops: when the server falls behind,
//! bytes wait in its receive queue and then in the client's send queue, the windows close,
//! and every message is late by the whole queue ahead of it, so the p99 climbs while nothing
//! is lost. UDP has no window: the server's receive buffer (`net.core.rmem_default`, 256 small
//! datagrams here) bounds the wait, and a datagram that finds it full is dropped by the kernel
//! and counted in `/proc/net/snmp` (`Udp: RcvbufErrors`, and `InErrors`). So the latency of the
//! echoes that come back should stay bounded, and loss is how UDP says "too much".
//!
//! TCP also has a way out UDP lacks: a byte stream coalesces. A server behind on a TCP
//! connection reads many messages with one call, so its cost per message falls as load grows;
//! a datagram server pays every datagram's system calls and packet whatever the load (batching
//! with `recvmmsg` saves the calls, not the packets: see the batch scenario). On loopback that
//! should make TCP the one with more capacity.
//!
//! That is the textbook; the findings say only what the run showed: where each curve bent,
//! whether the echoes' latency stayed bounded at every rate, whether the generator sent both
//! transports the load their rate names, and whether TCP was overloaded at all (on a 2-CPU
//! machine the generator often saturates first).

use std::time::Duration;

use anyhow::{Result, bail};

use crate::charts::Charts;
use crate::measure::{Headline, Measure, PointsFlag};
use crate::plan::{Point, Profile, SMALL_MESSAGE};
use crate::present::{Column, Present, View, col};
use crate::registry::{Model, Transport};
use crate::results::{PointResults, measured};
use crate::text::{sig, thousands};

mod findings;

/// Sockets (UDP) or connections (TCP) the rate is spread over.
pub const CONNECTIONS: u32 = 10;

/// How long loadgen waits for a datagram's echo before it counts it lost. On loopback a full
/// receive buffer of small datagrams drains in about a millisecond, so an echo not back in
/// 50 ms was dropped; a shorter wait would also count as lost the echoes of a server that a
/// busy 2-CPU machine merely descheduled. A lost datagram enters the corrected latency at this
/// age or more.
pub const TIMEOUT: Duration = Duration::from_millis(50);

/// The kernel counters that say where datagrams were dropped (machine-wide).
pub const COUNTERS: [&str; 2] = ["Udp:RcvbufErrors", "Udp:InErrors"];

/// The udp scenario.
#[derive(Debug)]
pub struct Udp;

fn point(rate: f64, profile: Profile) -> Point {
    // One repeat but in the full profile: the effects are tenfold and more, and a window at
    // the lowest rate still holds 15,000 datagrams.
    let repeats = (profile != Profile::Full).then_some(1);
    let p = Point::closed("udp", CONNECTIONS, SMALL_MESSAGE);
    Point { rate: Some(rate), repeats, ..p }.named(format!("{} msgs/s", thousands(rate)), rate)
}

/// Parses "10k,50k,1.5M": rates above zero, `k` and `M` allowed.
fn rates(text: &str) -> Result<Vec<f64>> {
    let one = |v: &str| -> Option<f64> {
        let v = v.trim();
        let (digits, scale) = match v.char_indices().last()? {
            (i, 'k' | 'K') => (&v[..i], 1e3),
            (i, 'm' | 'M') => (&v[..i], 1e6),
            _ => (v, 1.0),
        };
        let rate = digits.parse::<f64>().ok()? * scale;
        (rate.is_finite() && rate >= 1.0).then_some(rate.round())
    };
    match text.split(',').map(one).collect::<Option<Vec<f64>>>() {
        Some(r) if !r.is_empty() => Ok(r),
        _ => bail!("--udp-rates needs rates of 1 msg/s or more, comma-separated (got {text:?})"),
    }
}

/// The loadgen reports of a point's measured repeats.
fn reports(p: &PointResults) -> impl Iterator<Item = &loadgen::Report> {
    measured(&p.repeats).filter_map(|r| r.loadgen.as_ref())
}

/// Messages sent and never echoed, per repeat, and their share of those sent: a datagram
/// lost (or corrupt), or a TCP message still unanswered when the run ended.
fn loss(p: &PointResults) -> Option<(f64, f64)> {
    let (mut sent, mut lost, mut n) = (0u64, 0u64, 0u32);
    for r in reports(p) {
        sent += r.messages.sent;
        lost += r.messages.sent.saturating_sub(r.messages.received);
        n += 1;
    }
    (n > 0).then(|| {
        (lost as f64 / f64::from(n), if sent > 0 { lost as f64 / sent as f64 } else { 0.0 })
    })
}

/// Sends the open loop's schedule called for that never left the generator, per repeat: it
/// fell behind its schedule, or (TCP) the connection's buffers were full.
fn held(p: &PointResults) -> f64 {
    let v: Vec<u64> = reports(p).map(|r| r.messages.backlogged + r.messages.not_sent).collect();
    if v.is_empty() { 0.0 } else { v.iter().sum::<u64>() as f64 / v.len() as f64 }
}

/// A kernel counter's growth per repeat of a point (the mean).
fn percent(ratio: f64) -> String {
    if ratio == 0.0 { "0%".into() } else { format!("{}%", sig(ratio * 100.0)) }
}

impl Measure for Udp {
    fn name(&self) -> &'static str {
        "udp"
    }

    fn flag(&self) -> Option<PointsFlag> {
        Some(PointsFlag {
            long: "udp-rates",
            value_name: "R,R,...",
            help: "Open-loop rates of the udp scenario, msgs/s, comma-separated (e.g. 10k,50k)",
        })
    }

    fn points(&self, profile: Profile, given: Option<&str>) -> Result<Vec<Point>> {
        let rates = match given {
            Some(text) => rates(text)?,
            None => match profile {
                Profile::Quick => vec![10e3, 300e3],
                Profile::Standard => vec![10e3, 30e3, 100e3, 300e3],
                Profile::Full => vec![10e3, 30e3, 60e3, 100e3, 200e3, 300e3],
            },
        };
        Ok(rates.into_iter().map(|r| point(r, profile)).collect())
    }

    fn runs(&self, model: &Model) -> bool {
        model.name == "mio" || model.transport == Transport::Datagram
    }

    fn datagram(&self, _point: &Point, config: &mut loadgen::Config) {
        config.timeout = TIMEOUT;
    }

    fn counters(&self) -> &'static [&'static str] {
        &COUNTERS
    }

    fn headline(&self) -> Headline {
        crate::measure::P99
    }
}

impl Present for Udp {
    fn question(&self) -> &'static str {
        "What does UDP trade away, and what does it buy?"
    }

    fn setup(&self) -> String {
        let timeout = humantime::format_duration(TIMEOUT);
        format!(
            "Open loop at the same fixed total rates for both, over {CONNECTIONS} TCP \
             connections (mio) or {CONNECTIONS} UDP sockets (echo-udp, default receive buffer, \
             `--batch 1`), {SMALL_MESSAGE}-byte messages, one server thread each. Latency \
             counts from the intended send; a datagram unanswered within {timeout} is lost and \
             counts at that age. The kernel counters are machine-wide."
        )
    }

    fn models_note(&self) -> Option<&'static str> {
        Some(
            "mio and the datagram server: one TCP model stands for all (what TCP does under \
             overload is the kernel's, the same under every model), beside the one UDP model.",
        )
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            ("target msgs/s", |c| c.point.target_rate.map_or("-".into(), thousands)),
            ("achieved", |c| thousands(c.summary.median.msgs_per_sec)),
            ("lost", |c| {
                loss(c.point)
                    .map_or("-".into(), |(n, r)| format!("{} ({})", thousands(n), percent(r)))
            }),
            col::P50,
            col::P99,
            ("p99 of echoes us", |c| {
                c.summary.median.latency_us_uncorrected.map_or("-".into(), |u| sig(u.p99))
            }),
            ("RcvbufErrors", |c| c.point.counter(COUNTERS[0]).map_or("-".into(), thousands)),
            ("InErrors", |c| c.point.counter(COUNTERS[1]).map_or("-".into(), thousands)),
            col::UTIL,
        ]
    }

    fn findings(&self, view: &View<'_>) -> Vec<String> {
        findings::all(view)
    }

    fn charts(&self, view: &View<'_>, charts: &mut Charts) -> Result<()> {
        let t =
            format!("p99 latency (from the intended send) vs offered rate, {CONNECTIONS} sockets");
        let s = view.series(|m| Some(m.latency_us.p99.max(1.0)));
        charts.log_lines(self.name(), "udp-p99.svg", &t, "offered msgs/s", "p99 us", &s)?;
        let s = view.series_of(|_, p| {
            reports(p)
                .map(|r| {
                    let lost = r.messages.sent.saturating_sub(r.messages.received) as f64;
                    100.0 * lost / (r.messages.sent.max(1)) as f64
                })
                .collect()
        });
        let t = "Messages lost vs offered rate";
        charts.lines(self.name(), "udp-loss.svg", t, "offered msgs/s", "lost (% of sent)", &s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_take_suffixes_and_refuse_nonsense() {
        assert_eq!(rates("10k, 1.5M,200").unwrap(), [10e3, 1.5e6, 200.0]);
        for bad in ["", "0", "-5k", "fast", "10k,,20k", "1e400"] {
            let err = rates(bad).unwrap_err().to_string();
            assert!(err.starts_with("--udp-rates"), "{bad}: {err}");
        }
    }
}
