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
//! echoes that come back stays bounded, and loss is how UDP says "too much".
//!
//! TCP also has a way out UDP lacks: a byte stream coalesces. A server behind on a TCP
//! connection reads many messages with one call, so its cost per message falls as load grows;
//! a datagram server pays every datagram's system calls and packet whatever the load (batching
//! with `recvmmsg` saves the calls, not the packets: see the batch scenario). On loopback that
//! makes TCP the one with more capacity; the findings say where each curve bent.

use anyhow::{Result, bail};

use super::{Column, Headline, PointsFlag, Scenario, View, col};
use crate::charts::Charts;
use crate::findings::NO_FIGURES;
use crate::plan::{Point, Profile, SMALL_MESSAGE};
use crate::registry::{Model, Transport};
use crate::results::{PointResults, measured};
use crate::text::{sig, thousands};

/// Sockets (UDP) or connections (TCP) the rate is spread over.
pub const CONNECTIONS: u32 = 10;

/// How long loadgen waits for a datagram's echo before it counts it lost. On loopback a full
/// receive buffer of small datagrams drains in about a millisecond, so an echo not back in
/// 50 ms was dropped; a shorter wait would also count as lost the echoes of a server that a
/// busy 2-CPU machine merely descheduled. A lost datagram enters the corrected latency at this
/// age, so it is the ceiling of UDP's p99 once more than 1% is lost.
pub const TIMEOUT: &str = "50ms";

/// [`TIMEOUT`] in microseconds.
const TIMEOUT_US: f64 = 50_000.0;

/// The kernel counters that say where datagrams were dropped (machine-wide).
pub const COUNTERS: [&str; 2] = ["Udp:RcvbufErrors", "Udp:InErrors"];

/// The loss the findings name the bend of UDP's curve by.
const LOSS_LIMIT: f64 = 0.01;

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
fn counter(p: &PointResults, name: &str) -> Option<f64> {
    let v: Vec<i64> = measured(&p.repeats).filter_map(|r| r.counters.get(name).copied()).collect();
    (!v.is_empty()).then(|| v.iter().sum::<i64>() as f64 / v.len() as f64)
}

fn percent(ratio: f64) -> String {
    if ratio == 0.0 { "0%".into() } else { format!("{}%", sig(ratio * 100.0)) }
}

/// One model's figures at one rate.
#[derive(Debug, Clone, Copy)]
struct Step {
    rate: f64,
    achieved: f64,
    p50: f64,
    p99: f64,
    echoed_p99: f64,
    lost: f64,
    ratio: f64,
    rcvbuf: Option<f64>,
    /// Sends the schedule called for that never left (per repeat).
    held: f64,
    /// Server CPU per message (us) and as a share of one CPU.
    cpu: Option<f64>,
    utilization: f64,
    saturated: bool,
}

/// Each model's steps, in rising rate, with whether it is the datagram model.
fn curves<'a>(view: &View<'a>) -> Vec<(&'a str, bool, Vec<Step>)> {
    view.runs()
        .map(|(m, s)| {
            let mut steps: Vec<Step> = s
                .points
                .iter()
                .filter_map(|p| {
                    let sum = p.summary.as_ref()?;
                    let (lost, ratio) = loss(p)?;
                    let echoed = sum.median.latency_us_uncorrected.unwrap_or(sum.median.latency_us);
                    Some(Step {
                        rate: p.target_rate.or(p.point.rate)?,
                        achieved: sum.median.msgs_per_sec,
                        p50: sum.median.latency_us.p50,
                        p99: sum.median.latency_us.p99,
                        echoed_p99: echoed.p99,
                        lost,
                        ratio,
                        rcvbuf: counter(p, COUNTERS[0]),
                        held: held(p),
                        cpu: sum.median.server_cpu_per_msg_us,
                        utilization: sum.median.server_cpu_utilization,
                        saturated: sum.saturated,
                    })
                })
                .collect();
            steps.sort_by(|a, b| a.rate.total_cmp(&b.rate));
            let datagram = reports_of(s).any(|r| r.udp.is_some());
            (m.name.as_str(), datagram, steps)
        })
        .filter(|(_, _, steps)| !steps.is_empty())
        .collect()
}

fn reports_of(s: &crate::results::ScenarioResults) -> impl Iterator<Item = &loadgen::Report> {
    s.points.iter().flat_map(reports)
}

fn us(v: f64) -> String {
    if v >= 1000.0 { format!("{} ms", sig(v / 1000.0)) } else { format!("{} us", sig(v)) }
}

/// "(the generator was saturated there: ...)" when it was, for a sentence about `step`.
fn generator_caveat(step: &Step) -> &'static str {
    if step.saturated {
        " (the generator was saturated there: its own CPU, not only the server, limited what \
         was offered and read, so the server's own limit may lie higher)"
    } else {
        ""
    }
}

impl Scenario for Udp {
    fn name(&self) -> &'static str {
        "udp"
    }

    fn question(&self) -> &'static str {
        "What does UDP trade away, and what does it buy?"
    }

    fn setup(&self) -> String {
        format!(
            "Open loop at the same fixed total rates for both, over {CONNECTIONS} TCP \
             connections (mio) or {CONNECTIONS} UDP sockets (echo-udp, default receive buffer, \
             `--batch 1`), {SMALL_MESSAGE}-byte messages. Latency is measured from the \
             intended send time; a datagram with no echo within {TIMEOUT} is lost and counts \
             in it at that age (`loadgen --timeout {TIMEOUT}` for UDP; TCP keeps loadgen's \
             5 s). Both servers run one thread on one CPU, so the rates mean the same on a \
             bigger machine. The kernel counters are machine-wide: every socket's drops \
             count, the generator's too."
        )
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

    fn models_note(&self) -> Option<&'static str> {
        Some(
            "mio and the datagram server: one TCP model stands for all (what TCP does under \
             overload is the kernel's, the same under every model), beside the one UDP model.",
        )
    }

    fn datagram_args(&self, _point: &Point) -> Vec<String> {
        vec!["--timeout".into(), TIMEOUT.into()]
    }

    fn counters(&self) -> &'static [&'static str] {
        &COUNTERS
    }

    fn headline(&self) -> Headline {
        Headline {
            name: "p99",
            figure: |m| m.latency_us.p99,
            higher_is_better: false,
            better: "faster",
            worse: "slower",
        }
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
            ("RcvbufErrors", |c| counter(c.point, COUNTERS[0]).map_or("-".into(), thousands)),
            ("InErrors", |c| counter(c.point, COUNTERS[1]).map_or("-".into(), thousands)),
            col::UTIL,
        ]
    }

    fn findings(&self, view: &View<'_>) -> Vec<String> {
        let curves = curves(view);
        if curves.is_empty() {
            return vec![NO_FIGURES.into()];
        }
        let mut out = Vec::new();
        for (name, datagram, steps) in &curves {
            let (first, last) = (steps[0], steps[steps.len() - 1]);
            if *datagram {
                out.push(datagram_finding(name, steps));
            } else {
                let lost: f64 = steps.iter().map(|s| s.lost).sum();
                // Where the queue began to show: the first rate whose p99 is ten times the
                // lowest p99 of a lower rate (a busy machine's tail at a low rate is noise).
                let low = |i: usize| steps[..i].iter().min_by(|a, b| a.p99.total_cmp(&b.p99));
                let bend = (1..steps.len()).find_map(|i| {
                    Some((&steps[i], low(i)?)).filter(|(s, l)| s.p99 >= 10.0 * l.p99)
                });
                let least = steps.iter().min_by(|a, b| a.p99.total_cmp(&b.p99)).unwrap_or(&first);
                let bent = match bend {
                    Some((b, l)) => format!(
                        "its p99 first rose tenfold at {} msgs/s ({} against {} at {}){}",
                        thousands(b.rate),
                        us(b.p99),
                        us(l.p99),
                        thousands(l.rate),
                        generator_caveat(b)
                    ),
                    None => format!(
                        "its p99 never rose tenfold over these rates (the lowest {} at {} \
                         msgs/s, {} at {}): a byte stream coalesces, so a server behind reads \
                         many messages per call and catches up",
                        us(least.p99),
                        thousands(least.rate),
                        us(last.p99),
                        thousands(last.rate)
                    ),
                };
                let short = if last.achieved < 0.95 * last.rate {
                    format!(
                        ": the rest was not dropped but never sent in the window ({} per run \
                         held back: the generator behind its schedule, or the connection's \
                         buffers full, which is TCP's flow control pushing back on the sender)",
                        thousands(last.held)
                    )
                } else {
                    String::new()
                };
                out.push(format!(
                    "TCP ({name}) lost {} messages over all rates{}; {bent}. At {} msgs/s \
                     offered it achieved {}{short}. What it cannot take yet waits in the \
                     socket queues.",
                    thousands(lost),
                    if lost == 0.0 { "" } else { " (unanswered when the run ended)" },
                    thousands(last.rate),
                    thousands(last.achieved)
                ));
            }
        }
        out.extend(comparison(&curves));
        out
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

/// Where the datagram model's loss first passed [`LOSS_LIMIT`], what its latency did, and
/// what the kernel counted.
fn datagram_finding(name: &str, steps: &[Step]) -> String {
    let Some(bend) = steps.iter().find(|s| s.ratio > LOSS_LIMIT) else {
        let last = steps[steps.len() - 1];
        return format!(
            "UDP ({name}) lost at most {} at any rate up to {} msgs/s (achieved {}): its loss \
             never passed {:.0}%, so these rates stayed within what it takes.",
            percent(steps.iter().map(|s| s.ratio).fold(0.0, f64::max)),
            thousands(last.rate),
            thousands(last.achieved),
            LOSS_LIMIT * 100.0
        );
    };
    let kernel = match bend.rcvbuf {
        Some(r) if bend.lost > 0.0 => format!(
            " The kernel's RcvbufErrors rose by {} in that run against {} datagrams lost{}: \
             {} dropped at a full receive buffer (the server's, or the generator's: the \
             counter is machine-wide), not on the wire or in the server.",
            thousands(r),
            thousands(bend.lost),
            if r >= 0.9 * bend.lost { "" } else { " (the rest came back later than the timeout)" },
            if r >= 0.9 * bend.lost { "they were" } else { "most were" }
        ),
        _ => String::new(),
    };
    // The server's receive buffer holds a few hundred small datagrams, a millisecond or two of
    // work: an echo that waited longer than the timeout waited somewhere else.
    let latency = if bend.echoed_p99 < TIMEOUT_US {
        format!(
            "Its latency stayed bounded instead: the echoes that came back there waited a p99 \
             of {}, because the receive buffer bounds the queue",
            us(bend.echoed_p99)
        )
    } else {
        format!(
            "The echoes that came back there waited a p99 of {}: longer than a full receive \
             buffer explains (a few hundred datagrams, a millisecond or two of work), so they \
             waited for a CPU (the server's or the generator's), not in the server's queue",
            us(bend.echoed_p99)
        )
    };
    let last = steps[steps.len() - 1];
    let share = match last.cpu {
        Some(cpu) if last.utilization < 0.8 && cpu > 0.0 => format!(
            " The server used only {:.0}% of its CPU at {} msgs/s while losing {}: the rest of \
             that CPU went to other processes (see the load average in the caveats), so its \
             capacity here was its share. At {} us of CPU per datagram, a whole CPU would \
             echo about {} per second.",
            100.0 * last.utilization,
            thousands(last.rate),
            percent(last.ratio),
            sig(cpu),
            thousands(1e6 / cpu)
        ),
        _ => String::new(),
    };
    format!(
        "UDP ({name}) first lost more than {:.0}% at {} msgs/s offered: {} of the datagrams \
         ({} per run), achieving {}{}. {latency}; the corrected p99 ({} there) counts each \
         lost datagram at the {TIMEOUT} timeout or more.{kernel}{share}",
        LOSS_LIMIT * 100.0,
        thousands(bend.rate),
        percent(bend.ratio),
        thousands(bend.lost),
        thousands(bend.achieved),
        generator_caveat(bend),
        us(bend.p99),
    )
}

/// TCP against UDP at the highest rate both ran.
fn comparison(curves: &[(&str, bool, Vec<Step>)]) -> Option<String> {
    let tcp = curves.iter().find(|c| !c.1)?;
    let udp = curves.iter().find(|c| c.1)?;
    let t = tcp.2.iter().rev().find(|t| udp.2.iter().any(|u| u.rate == t.rate))?;
    let u = udp.2.iter().find(|u| u.rate == t.rate)?;
    Some(format!(
        "At {} msgs/s, the highest rate both ran: TCP ({}) achieved {} with a p50 of {} and \
         lost {}; UDP ({}) achieved {} with a p50 of {} and lost {}. The trade: TCP turns \
         overload into waiting, UDP into loss, and an application over UDP must decide itself \
         what a lost message means (resend it, and wait after all, or do without).",
        thousands(t.rate),
        tcp.0,
        thousands(t.achieved),
        us(t.p50),
        percent(t.ratio),
        udp.0,
        thousands(u.achieved),
        us(u.p50),
        percent(u.ratio)
    ))
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
