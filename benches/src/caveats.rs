//! The caveats that bound what a run's numbers can say: the machine, the placement, and the
//! points where the generator was the limit, the repeats disagreed, or errors were counted.

use crate::results::{Results, median};
use crate::text::{cpu_list, join, thousands};

/// Standing caveats plus those this run earned (saturation, noise, errors, faults).
pub fn caveats(results: &Results) -> Vec<String> {
    let cores = results.environment.cores;
    let mut out = vec![format!(
        "This machine has {cores} CPUs shared by server, generator and harness. From about 10 \
         connections up, throughput measures the pair; server CPU per message is the fairer \
         comparison of the models."
    )];
    out.push(placement_note(results));
    out.extend(busy(results));
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
                    noisy.push(format!("{at} (±{:.0}%)", sum.spread * 100.0));
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
            "Throughput varied by more than 10% over the repeats (noisy) at {}.",
            some(&noisy, points)
        ));
    }
    if !errors.is_empty() {
        out.push(format!("Errors were counted at {}.", some(&errors, points)));
    }
    if results.plan.repeats < 3 {
        out.push(format!(
            "{} repeat(s) per point and {:.1} s windows: treat these numbers as rough.",
            results.plan.repeats,
            results.plan.duration.as_secs_f64()
        ));
    }
    out.push(
        "Server CPU is read from /proc over each measured window: the server's own figures are \
         in 10 ms ticks (so a window's CPU is good to about 40 ms), its children's in \
         nanoseconds. Memory is peak PSS sampled about every 0.5 s, so a short peak between \
         samples can be missed."
            .into(),
    );
    out
}

/// A warning when other work competed for the CPUs during the run.
///
/// The load average alone cannot tell: it counts the run's own server too, and a thread- or
/// process-per-connection server at 1,000 connections (or 4,000 idle ones all waking to close)
/// puts hundreds of tasks on the run queue of a quiet machine. How long loadgen's load thread
/// waited for its own pinned CPU measures competition directly, so that decides whenever
/// loadgen reported it; the load average decides only for results without it.
pub fn busy(results: &Results) -> Option<String> {
    let cores = results.environment.cores.max(1) as f64;
    let (lo, hi) = load_range(results)?;
    let delays: Vec<f64> = results
        .models
        .iter()
        .flat_map(|m| {
            m.scenarios.iter().flat_map(|s| s.points.iter().flat_map(|p| p.repeats.iter()))
        })
        .filter_map(|r| r.metrics.as_ref()?.generator_run_delay)
        .collect();
    let delay = (!delays.is_empty()).then(|| median(delays));
    let competed = match delay {
        Some(delay) => delay > 0.1,
        None => hi > 1.5 * cores,
    };
    if !competed {
        return None;
    }
    let waited = delay.map_or(String::new(), |d| {
        format!(
            ", and the generator's load thread waited for its CPU {:.0}% of the time (median)",
            d * 100.0
        )
    });
    Some(format!(
        "**The machine was busy with other work during this run**: the 1-minute load average \
         ranged from {lo:.1} to {hi:.1} on {cores} CPUs{waited}. Figures taken while other \
         processes compete for the CPUs are low and noisy; rerun on a quiet machine before \
         drawing conclusions."
    ))
}

/// Lists `items` in full when there are few, else the first few and how many in all.
fn some(items: &[String], of: usize) -> String {
    const SHOWN: usize = 6;
    if items.len() <= SHOWN {
        return join(items);
    }
    format!("{} of {of} points, among them {}", items.len(), items[..SHOWN].join(", "))
}

/// The range of the 1-minute load average loadgen recorded at each repeat: a busy machine
/// (other work running) shows here.
pub fn load_range(r: &Results) -> Option<(f64, f64)> {
    let loads: Vec<f64> = r
        .models
        .iter()
        .flat_map(|m| {
            m.scenarios.iter().flat_map(|s| s.points.iter().flat_map(|p| p.repeats.iter()))
        })
        .filter_map(|rep| Some(rep.loadgen.as_ref()?.environment.loadavg_1m))
        .collect();
    let lo = loads.iter().copied().fold(f64::MAX, f64::min);
    let hi = loads.iter().copied().fold(f64::MIN, f64::max);
    (!loads.is_empty()).then_some((lo, hi))
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
             crosses CPUs, and a cross-CPU wake-up is expensive in a virtual machine (about 35 us \
             on the reference VM), so at low concurrency the round trip is bounded by wake-ups \
             rather than by the model. Compare models at equal placement only."
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
             worker per server CPU unless told otherwise ({}). ",
            if server_cpus == 1 { "" } else { "s" },
            join(&workers)
        ));
        if server_cpus == 1 {
            note.push_str(
                "With one server CPU a multi-worker model cannot show what its workers buy: \
                 that needs a machine with more CPUs (`--server-cpus`, e.g. 0-7 on 16 cores).",
            );
        }
    }
    note
}
