//! The udp scenario's findings: where each curve bent, computed from the table's figures.

use super::{COUNTERS, TIMEOUT, held, loss, percent, reports};
use crate::findings::NO_FIGURES;
use crate::present::View;
use crate::text::{sig, thousands};

/// The p99 of echoes under which UDP's latency counts as bounded by the receive buffer
/// alone: a full buffer of small datagrams is a millisecond or two of work.
const BOUND_US: f64 = 5_000.0;

/// The loss the findings name the bend of UDP's curve by.
const LOSS_LIMIT: f64 = 0.01;

/// The findings, TCP's and UDP's curve and then the two side by side.
pub(super) fn all(view: &View<'_>) -> Vec<String> {
    let curves = curves(view);
    if curves.is_empty() {
        return vec![NO_FIGURES.into()];
    }
    let tcp = curves.iter().find(|c| !c.1).map(|c| c.2.as_slice());
    let mut out: Vec<String> = curves
        .iter()
        .map(|(name, datagram, steps)| {
            if *datagram { datagram_finding(name, steps, tcp) } else { stream_finding(name, steps) }
        })
        .collect();
    out.extend(comparison(&curves));
    out
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
                        rcvbuf: p.counter(COUNTERS[0]),
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

/// Where the stream model's p99 bent, and what it lost (nothing, for TCP).
fn stream_finding(name: &str, steps: &[Step]) -> String {
    let (first, last) = (steps[0], steps[steps.len() - 1]);
    let lost: f64 = steps.iter().map(|s| s.lost).sum();
    // Where the queue began to show: the first rate from which every p99 is ten times the
    // lowest p99 of the rates below it. A single run's tail on a busy machine is a stall, not
    // a trend, so a lone high p99 followed by a low one is no bend.
    let low = |i: usize| steps[..i].iter().min_by(|a, b| a.p99.total_cmp(&b.p99));
    let bend = (1..steps.len()).find_map(|i| {
        let l = low(i)?;
        steps[i..].iter().all(|s| s.p99 >= 10.0 * l.p99).then_some((&steps[i], l))
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
        None => {
            format!(
                "its p99 never rose tenfold over these rates (the lowest {} at {} \
                 msgs/s, {} at {}): a byte stream coalesces, so a server behind reads \
                 many messages per call and catches up",
                us(least.p99),
                thousands(least.rate),
                us(last.p99),
                thousands(last.rate)
            ) + if last.saturated {
                "; the generator was saturated at the top rate, so where TCP's curve \
                 bends lies beyond what it could offer"
            } else {
                ""
            }
        }
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
    format!(
        "TCP ({name}) lost {} messages over all rates{}; {bent}. At {} msgs/s \
         offered it achieved {}{short}. What it cannot take yet waits in the \
         socket queues.",
        thousands(lost),
        if lost == 0.0 { "" } else { " (unanswered when the run ended)" },
        thousands(last.rate),
        thousands(last.achieved)
    )
}

/// Where the datagram model's loss first passed [`LOSS_LIMIT`], what its latency did, and
/// what the kernel counted.
fn datagram_finding(name: &str, steps: &[Step], tcp: Option<&[Step]>) -> String {
    // The first rate from which every rate lost more than the limit: a server descheduled for
    // longer than its buffer lasts loses at a low rate too, once, on a busy machine.
    let from = (0..steps.len()).find(|&i| steps[i..].iter().all(|s| s.ratio > LOSS_LIMIT));
    let Some(bend) = from.map(|i| steps[i]) else {
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
    let spikes: Vec<String> = steps
        .iter()
        .filter(|s| s.rate < bend.rate && s.ratio > LOSS_LIMIT)
        .map(|s| format!("{} at {} msgs/s", percent(s.ratio), thousands(s.rate)))
        .collect();
    let spikes = if spikes.is_empty() {
        String::new()
    } else {
        format!(
            " Below that it lost {} too, though not at every rate between: a server \
             descheduled for longer than its buffer lasts loses at any rate, and a busy \
             machine deschedules it.",
            crate::text::join(&spikes)
        )
    };
    let tcp_p99 = tcp.and_then(|t| t.iter().find(|t| t.rate == bend.rate)).map(|t| t.p99);
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
    // The server's receive buffer holds 256 small datagrams, a millisecond or two of work: an
    // echo that waited longer waited for a CPU too.
    let tcp = tcp_p99.map_or(String::new(), |t| format!(" (TCP's p99 there: {})", us(t)));
    let latency = if bend.echoed_p99 < BOUND_US {
        format!(
            "Its latency stayed bounded instead: the echoes that came back there waited a p99 \
             of {}{tcp}, because the receive buffer bounds the queue (256 small datagrams, a \
             millisecond or two of work)",
            us(bend.echoed_p99)
        )
    } else {
        format!(
            "The echoes that came back there waited a p99 of {}{tcp}: more than the receive \
             buffer holds (256 small datagrams, a millisecond or two of work), so on this \
             machine they also waited for a CPU, the server's or the generator's",
            us(bend.echoed_p99)
        )
    };
    let last = steps[steps.len() - 1];
    let share = match last.cpu {
        Some(cpu) if last.utilization < 0.8 && cpu > 0.0 => format!(
            " The server used only {:.0}% of its CPU at {} msgs/s while losing {}: the rest of \
             that CPU went to other processes (see what disturbed the repeats, under \
             Environment), so its capacity here was its share. At {} us of CPU per datagram, a \
             whole CPU would echo about {} per second.",
            100.0 * last.utilization,
            thousands(last.rate),
            percent(last.ratio),
            sig(cpu),
            thousands(1e6 / cpu)
        ),
        _ => String::new(),
    };
    let timeout = humantime::format_duration(TIMEOUT);
    format!(
        "UDP ({name}) lost more than {:.0}% at every rate from {} msgs/s up: {} of the \
         datagrams there ({} per run), achieving {}{}. {latency}; the corrected p99 ({} there) counts each \
         lost datagram at the {timeout} timeout or more.{kernel}{spikes}{share}",
        LOSS_LIMIT * 100.0,
        thousands(bend.rate),
        percent(bend.ratio),
        thousands(bend.lost),
        thousands(bend.achieved),
        generator_caveat(&bend),
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
