//! The "why" behind a finding, told from a second measurement rather than asserted: context
//! switches per message explain throughput, threads and processes per connection explain
//! memory, the narrowing gap between models explains big messages.
//!
//! Each explanation is given only when the numbers bear it out (say, the slower model really
//! switched context several times as often); otherwise the report says nothing it cannot show.

use super::results::Summary;
use super::text::{sig, times};

/// How each of the suite's models schedules connections, for the prose.
pub fn shape(model: &str) -> Option<&'static str> {
    match model {
        "fork" => Some("a process per connection"),
        "thread" => Some("a thread per connection"),
        "mio" => Some("one event loop on one thread"),
        "hybrid" => Some("an acceptor feeding event-loop workers"),
        _ => None,
    }
}

fn named(model: &str) -> String {
    match shape(model) {
        Some(shape) => format!("{model} ({shape})"),
        None => model.to_string(),
    }
}

/// Throughput: the slowest model against the fastest, by context switches per message.
pub fn scale(at: &[(&str, &Summary)]) -> Option<String> {
    let mut by_rate: Vec<&(&str, &Summary)> = at.iter().collect();
    by_rate.sort_by(|a, b| b.1.median.msgs_per_sec.total_cmp(&a.1.median.msgs_per_sec));
    let (best, worst) = (by_rate.first()?, by_rate.last()?);
    let b = best.1.median.server_ctx_switches_per_msg?;
    let w = worst.1.median.server_ctx_switches_per_msg?;
    (by_rate.len() >= 2 && w >= 0.1 && w > 2.0 * b).then(|| {
        format!(
            "Why: {} switched context {} times per message, {} {} times. A thread or process \
             blocked on one connection must be woken for each of its messages; an event loop \
             is woken once for every connection that became ready meanwhile, and on 2 CPUs each \
             wake-up is time neither side spends echoing.",
            named(worst.0),
            sig(w),
            named(best.0),
            sig(b)
        )
    })
}

/// Churn: what the costliest model does per connection that the cheapest does not.
pub fn churn(at: &[(&str, &Summary)]) -> Option<String> {
    let cpu = |s: &Summary| s.median.server_cpu_per_msg_us;
    let mut by_cpu: Vec<(&str, f64)> = at.iter().filter_map(|(n, s)| Some((*n, cpu(s)?))).collect();
    by_cpu.sort_by(|a, b| a.1.total_cmp(&b.1));
    let (&(cheap, c), &(dear, d)) = (by_cpu.first()?, by_cpu.last()?);
    let creates = match dear {
        "fork" => "creates and later reaps a whole process",
        "thread" => "creates and tears down a thread",
        _ => return None,
    };
    (c > 0.0 && d > 1.5 * c).then(|| {
        format!(
            "Why: for every connection {dear} {creates}, which cost it {} us of server CPU per \
             connection, {} {}'s {} us, where a connection is a socket registered in a loop that \
             already exists.",
            sig(d),
            times(d / c),
            cheap,
            sig(c)
        )
    })
}

/// Idle: what each model keeps per silent connection (threads, processes), from the counts.
pub fn idle(costs: &[(&str, f64, f64, f64)]) -> Option<String> {
    // (model, KiB, threads, processes) per connection.
    let parts: Vec<String> = costs
        .iter()
        .map(|&(model, kib, threads, processes)| {
            let what = if processes >= 0.5 {
                "a whole process per connection"
            } else if threads >= 0.5 {
                "a thread per connection, with its stack"
            } else {
                "only each connection's state"
            };
            format!("{model} keeps {what} ({} KiB each)", sig(kib))
        })
        .collect();
    (!parts.is_empty()).then(|| {
        format!(
            "Why: {}. Kernel socket buffers are not in PSS: they cost every model alike.",
            super::text::join(&parts)
        )
    })
}

/// Size: whether the gap between models narrows as messages grow, and what that means.
pub fn size(first: &[(&str, f64)], last: &[(&str, f64)], labels: (&str, &str)) -> Option<String> {
    let gap = |v: &[(&str, f64)]| {
        let hi = v.iter().map(|x| x.1).fold(0.0, f64::max);
        let lo = v.iter().map(|x| x.1).fold(f64::MAX, f64::min);
        (v.len() >= 2 && lo > 0.0).then(|| hi / lo)
    };
    let (g0, g1) = (gap(first)?, gap(last)?);
    (g1 < g0 * 0.8).then(|| {
        format!(
            "Why: the gap between the fastest and slowest model narrows from {} at {} to {} at \
             {}: with big messages most time goes to copying bytes through the kernel, which \
             costs every model the same, and less to scheduling connections, where they differ.",
            times(g0),
            labels.0,
            times(g1),
            labels.1
        )
    })
}
