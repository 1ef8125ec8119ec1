//! The caveats that bound what a run's numbers can say: the machine, the placement, and the
//! points where the generator was the limit, the repeats disagreed, or errors were counted.

use crate::disturb::{Disturbance, STEAL_LIMIT};
use crate::results::{Repeat, Results, median};
use crate::text::{cpu_list, join, plus_minus, thousands};

/// Standing caveats plus those this run earned (saturation, noise, errors, faults).
pub fn caveats(results: &Results) -> Vec<String> {
    let cores = results.environment.cores;
    let mut out = vec![format!(
        "This machine has {cores} CPUs shared by server, generator and harness. From about 10 \
         connections up, throughput measures the pair; server CPU per message is the fairer \
         comparison of the models."
    )];
    // The placement is stated once, under Environment.
    // A busy machine is said once, under the title.
    let mut points = 0;
    let mut saturated = Vec::new();
    let mut noisy = Vec::new();
    let mut errors = Vec::new();
    for m in &results.models {
        for s in &m.scenarios {
            for p in &s.points {
                let Some(sum) = &p.summary else { continue };
                points += 1;
                let at = format!("{} {} {}", m.name, s.scenario, p.point.label);
                if sum.saturated {
                    saturated.push(at.clone());
                }
                if sum.noisy {
                    noisy.push(format!("{at} ({})", plus_minus(sum.spread)));
                }
                if sum.errors > 0.0 {
                    errors.push(format!("{at} ({})", thousands(sum.errors)));
                }
            }
        }
    }
    if !saturated.is_empty() {
        out.push(format!(
            "The generator was saturated at {}. There the figure may be the generator's limit, \
             a lower bound for the server; loadgen's `generator.saturation` in results.json says \
             why.",
            some(&saturated, points)
        ));
    }
    if !noisy.is_empty() {
        out.push(format!(
            "Throughput's rounds spread beyond ±5% (noisy; ± as defined under How to read) at {}.",
            some(&noisy, points)
        ));
    }
    if !errors.is_empty() {
        out.push(format!("Errors were counted at {}.", some(&errors, points)));
    }
    out.extend(waited(results));
    if results.plan.repeats < 3 {
        out.push(format!(
            "{} round(s) per point (a scenario's own count is in the summary) and {:.1} s \
             windows: treat these numbers as rough.",
            results.plan.repeats,
            results.plan.duration.as_secs_f64()
        ));
    }
    out.push(
        "Server CPU is read from /proc over each measured window: the server's own figures are \
         in 10 ms ticks (so a window's CPU is good to about 40 ms), its children's in \
         nanoseconds. Memory is peak PSS read every 0.5 s at most (less often for a big tree, \
         so that reading it costs at most 5% of a CPU) and as each window closes, so a short \
         peak between reads can be missed."
            .into(),
    );
    out
}

/// Where loadgen's window waited past the warm-up for every connection's first echo: a
/// server still starting its processes or threads when the warm-up ended. Before loadgen
/// waited, those first echoes fell in the window and made the maxima (about 1 to 2 s for
/// fork, prefork and thread at 1,000 connections); now the wait is the server's start-up,
/// said here and left out of every latency.
fn waited(results: &Results) -> Option<String> {
    let mut at = Vec::new();
    for m in &results.models {
        for s in &m.scenarios {
            for p in &s.points {
                let waits: Vec<f64> = crate::results::measured(&p.repeats)
                    .filter_map(|r| r.loadgen.as_ref().map(|l| l.run.window_wait_secs))
                    .collect();
                let most = waits.iter().copied().fold(0.0, f64::max);
                // A wait under a millisecond is the last echo in flight, not a start-up.
                if most >= 0.001 {
                    let label = &p.point.label;
                    let secs = format!("{} s", crate::text::sig(most));
                    at.push((most, format!("{} {} {label} (up to {secs})", m.name, s.scenario)));
                }
            }
        }
    }
    if at.is_empty() {
        return None;
    }
    at.sort_by(|a, b| b.0.total_cmp(&a.0));
    let named: Vec<String> = at.iter().take(3).map(|(_, t)| t.clone()).collect();
    let more = at.len().saturating_sub(named.len());
    let more = if more > 0 { format!(" and {more} more") } else { String::new() };
    Some(format!(
        "The measured window opened only once every connection had its first echo, which took \
         longer than the warm-up at {}{more}: the server's start-up (a process or thread per \
         connection to create), not latency under load, so it is left out of every figure \
         (loadgen's `run.window_wait_secs`).",
        named.join(", ")
    ))
}

/// A warning when other work competed for the CPUs during the run.
///
/// The load average cannot tell: it counts the run's own server too, and a thread- or
/// process-per-connection server at 1,000 connections (or 4,000 idle ones all waking to close)
/// puts hundreds of tasks on the run queue of a quiet machine. Two figures measure competition
/// directly: how long loadgen's load thread waited for its own pinned CPU, and the steal the
/// hypervisor took from either side's CPUs (each repeat's [`Disturbance`]).
pub fn busy(results: &Results) -> Option<String> {
    let cores = results.environment.cores.max(1);
    let delays: Vec<f64> =
        repeats(results).filter_map(|r| r.metrics.as_ref()?.generator_run_delay).collect();
    let delay = (!delays.is_empty()).then(|| median(delays));
    let disturbances: Vec<&Disturbance> = repeats(results).filter_map(disturbance).collect();
    let stolen = disturbances.iter().filter(|d| d.disturbed().is_some()).count();
    if !delay.is_some_and(|d| d > 0.1) && stolen == 0 {
        return None;
    }
    let mut why = Vec::new();
    if let Some(d) = delay.filter(|&d| d > 0.1) {
        why.push(format!(
            "the generator's load thread waited for its CPU {:.0}% of the time (median)",
            d * 100.0
        ));
    }
    if stolen > 0 {
        why.push(format!(
            "the hypervisor took more than {:.0}% of a side's CPU time (steal) in {stolen} of {} \
             repeats",
            STEAL_LIMIT * 100.0,
            disturbances.len()
        ));
    }
    Some(format!(
        "**The machine was busy with other work during this run**: on {cores} CPUs, {}. Figures \
         taken while other processes compete for the CPUs are low and noisy; rerun on a quiet \
         machine before drawing conclusions.",
        join(&why)
    ))
}

/// What disturbed the repeats, on one line: the most steal either side lost in a repeat, the
/// generator's longest run delay, and the harness's own CPU per repeat.
pub fn disturbances(results: &Results) -> String {
    let all: Vec<&Disturbance> = repeats(results).filter_map(disturbance).collect();
    if all.is_empty() {
        return "not recorded (results from before steal was read)".into();
    }
    let max = |f: fn(&Disturbance) -> Option<f64>| {
        let v: Vec<f64> = all.iter().filter_map(|d| f(d)).collect();
        let m = v.iter().copied().fold(0.0, f64::max);
        if v.is_empty() { "unknown".to_string() } else { format!("max {:.1}%", m * 100.0) }
    };
    let harness = all.iter().map(|d| d.harness_cpu_seconds).sum::<f64>() / all.len() as f64;
    let mut line = format!(
        "steal on the server's CPUs: {} of a repeat; on the generator's: {}; generator run \
         delay: {}; harness CPU: {harness:.2} s per repeat",
        max(|d| d.server_steal),
        max(|d| d.generator_steal),
        max(|d| d.generator_run_delay),
    );
    let stolen = all.iter().filter(|d| d.disturbed().is_some()).count();
    if stolen > 0 {
        line.push_str(&format!(
            "; {stolen} of {} repeats above the {:.0}% steal limit",
            all.len(),
            STEAL_LIMIT * 100.0
        ));
    }
    line
}

/// Every repeat of the run.
fn repeats(r: &Results) -> impl Iterator<Item = &Repeat> {
    r.models.iter().flat_map(|m| {
        m.scenarios.iter().flat_map(|s| s.points.iter().flat_map(|p| p.repeats.iter()))
    })
}

fn disturbance(r: &Repeat) -> Option<&Disturbance> {
    r.disturbance.as_ref()
}

/// Lists `items` in full when there are few, else the first few and how many in all.
fn some(items: &[String], of: usize) -> String {
    const SHOWN: usize = 3;
    if items.len() <= SHOWN {
        return join(items);
    }
    format!("{} of {of} points, among them {}", items.len(), items[..SHOWN].join(", "))
}

/// What the placement does to the figures, in the machine's own numbers: which CPUs each side
/// had, what a message then crosses, and what the server's CPU count means for the models
/// that size a pool of workers by it.
pub fn placement_note(results: &Results) -> String {
    use crate::plan::Placement::*;
    let p = &results.placement;
    let (server, generator) = (cpu_list(&p.server_cpus), cpu_list(&p.generator_cpus));
    let mut note = match p.mode {
        Unpinned => "Placement: unpinned. The scheduler moves server and generator between CPUs \
                     as it likes, which makes low-concurrency figures vary between runs."
            .to_string(),
        _ if p.server_cpus.iter().any(|c| p.generator_cpus.contains(c)) => format!(
            "Placement: server on {server}, generator on {generator}: they share CPUs, so there \
             are fewer cross-CPU wake-ups, but they compete for the same cores."
        ),
        _ => format!(
            "Placement: server pinned to {server}, generator to {generator}. Every message \
             crosses CPUs (a cross-CPU wake-up costs about 35 us on the reference VM), so at low \
             concurrency wake-ups, not the model, bound the round trip. Compare models at equal \
             placement only."
        ),
    };
    let workers: Vec<String> = results
        .models
        .iter()
        .filter_map(|m| {
            let w = m.scenarios.iter().find_map(|s| s.server.workers)?;
            Some(format!("{} ran {w} worker{}", m.name, if w == 1 { "" } else { "s" }))
        })
        .collect();
    let server_cpus = p.server_cpus.len();
    if !workers.is_empty() && server_cpus > 0 {
        note.push_str(&format!(
            " The server had {server_cpus} CPU{}, and models with a pool of workers get one \
             worker per server CPU unless told otherwise ({}).",
            if server_cpus == 1 { "" } else { "s" },
            join(&workers)
        ));
        if server_cpus == 1 {
            note.push_str(
                " What more workers buy needs more CPUs (`--server-cpus`, e.g. 0-7 on 16 cores).",
            );
        }
    }
    note
}
