//! The udp scenario's findings: where each curve bent, computed from the table's figures.

use super::{COUNTERS, TIMEOUT, held, loss, percent, reports};
use crate::findings::NO_FIGURES;
use crate::present::View;
use crate::text::{sig, thousands};

mod side;
use side::{comparison, headline, offered, sent_as_asked};

/// The p99 of echoes under which UDP's latency counts as bounded by the receive buffer
/// alone: a full buffer of small datagrams is a millisecond or two of work.
const BOUND_US: f64 = 5_000.0;

/// The loss the findings name the bend of UDP's curve by.
const LOSS_LIMIT: f64 = 0.01;

/// How far below its rate a generator's sends per second may fall and still count as the
/// load the rate names: a schedule a few messages short at the window's edges is the same load.
const SAME_LOAD: f64 = 0.02;

/// The findings: the one-line answer, TCP's and UDP's curve, whether both were offered the
/// same load, and then what the two did side by side.
pub(super) fn all(view: &View<'_>) -> Vec<String> {
    let curves = curves(view);
    if curves.is_empty() {
        return vec![NO_FIGURES.into()];
    }
    let tcp = curves.iter().find(|c| !c.1).map(|c| c.2.as_slice());
    let mut out: Vec<String> = headline(&curves).into_iter().collect();
    out.extend(curves.iter().map(|(name, datagram, steps)| {
        if *datagram { datagram_finding(name, steps, tcp) } else { stream_finding(name, steps) }
    }));
    out.extend(offered(&curves));
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
    /// The median of the echoes that came back, from their actual send.
    echoed_p50: f64,
    /// Messages the generator sent per second of the window (the mean over the repeats); NaN
    /// where no loadgen report says.
    sent: f64,
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
                        echoed_p50: echoed.p50,
                        sent: sent_per_sec(p).unwrap_or(f64::NAN),
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

/// The generator's sends per second of the window, the mean over a point's repeats.
fn sent_per_sec(p: &crate::results::PointResults) -> Option<f64> {
    let v: Vec<f64> = reports(p).map(|r| r.throughput.sent_per_sec).collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
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
                "its p99 never rose tenfold over these rates (the lowest {} at {} msgs/s, {} at \
                 {})",
                us(least.p99),
                thousands(least.rate),
                us(last.p99),
                thousands(last.rate)
            ) + if last.saturated {
                "; the generator was saturated at the top rate, so TCP's limit lies beyond what \
                 it could offer"
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
         offered it achieved {}{short}.",
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
             never passed {:.0}%. {}",
            percent(steps.iter().map(|s| s.ratio).fold(0.0, f64::max)),
            thousands(last.rate),
            thousands(last.achieved),
            LOSS_LIMIT * 100.0,
            latency(steps, steps[0], None)
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
    let latency = latency(steps, bend, tcp_p99);
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
         datagrams there ({} per run), achieving {}{}. {latency} The corrected p99 ({} \
         there) counts each lost datagram at the {timeout} timeout or more.{kernel}{spikes}{share}",
        LOSS_LIMIT * 100.0,
        thousands(bend.rate),
        percent(bend.ratio),
        thousands(bend.lost),
        thousands(bend.achieved),
        generator_caveat(&bend),
        us(bend.p99),
    )
}

/// What the latency of the echoes that came back did from `from` up: bounded only where the
/// p99 of echoes stayed within [`BOUND_US`] at every rate from there, said with how the p50
/// and p99 grew from the lowest rate. `tcp_p99` is TCP's p99 at `from`, for scale.
fn latency(steps: &[Step], from: Step, tcp_p99: Option<f64>) -> String {
    let first = steps[0];
    let above: Vec<&Step> = steps.iter().filter(|s| s.rate >= from.rate).collect();
    let Some(worst) = above.iter().max_by(|a, b| a.echoed_p99.total_cmp(&b.echoed_p99)) else {
        return String::new();
    };
    let tcp = tcp_p99.map_or(String::new(), |t| {
        format!("; TCP's p99 at {} msgs/s: {}", thousands(from.rate), us(t))
    });
    let last = steps[steps.len() - 1];
    let peak = if worst.rate == last.rate {
        String::new()
    } else {
        format!(", at most {} (at {} msgs/s)", us(worst.echoed_p99), thousands(worst.rate))
    };
    let growth = format!(
        "from {} msgs/s to {}, the echoes' p50 went from {} to {} and their p99 from {} to \
         {}{peak}{tcp}",
        thousands(first.rate),
        thousands(last.rate),
        us(first.echoed_p50),
        us(last.echoed_p50),
        us(first.echoed_p99),
        us(last.echoed_p99)
    );
    if worst.echoed_p99 < BOUND_US {
        format!(
            "The latency of the echoes that came back stayed within {} ms at every rate from \
             {} msgs/s up ({growth}), what a full receive buffer explains (256 small \
             datagrams, a millisecond or two of work).",
            BOUND_US / 1000.0,
            thousands(from.rate)
        )
    } else {
        let behind = if worst.saturated || !sent_as_asked(worst) {
            " The generator was saturated or behind its schedule there, so some of that wait \
             may be the generator's own, not the server's."
        } else {
            ""
        };
        format!(
            "Its latency did not stay bounded: {growth}. At {} msgs/s that is more than a full \
             receive buffer holds (256 small datagrams, a millisecond or two of work), so the \
             echoes also waited for something else: a CPU, the server's or the generator's.{behind}",
            thousands(worst.rate)
        )
    }
}

#[cfg(test)]
#[path = "findings_tests.rs"]
mod tests;
