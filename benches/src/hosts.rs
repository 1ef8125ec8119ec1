//! The generators of a run, as the report's Environment table names them (`--generator`).

use crate::generators::Generators;
use crate::results::Results;

/// The generators of a run for the report's Environment table, from its first repeat that
/// ran on other machines: each one's launcher, host, CPUs and load threads, and the widest
/// spread of start times over the run.
pub fn describe_generators(results: &Results) -> Option<String> {
    let remote = results.plan.remote.as_ref().filter(|r| !r.generators.is_empty())?;
    let repeats = results
        .models
        .iter()
        .flat_map(|m| &m.scenarios)
        .flat_map(|s| &s.points)
        .flat_map(|p| &p.repeats)
        .filter_map(|r| r.generators.as_ref());
    let mut widest: Option<f64> = None;
    let mut shown: Option<&Generators> = None;
    for g in repeats {
        if g.each.len() == remote.generators.len() && g.each.iter().all(|e| e.failure.is_none()) {
            shown.get_or_insert(g);
        }
        widest = match (widest, g.start_spread_ms) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
    let each: Vec<String> = match shown {
        Some(g) => g
            .each
            .iter()
            .map(|e| {
                format!(
                    "`{}` on {} ({} CPUs, {} load threads)",
                    e.launcher, e.host, e.cpus, e.threads
                )
            })
            .collect(),
        None => remote.generators.iter().map(|l| format!("`{l}` (no report)")).collect(),
    };
    let spread = widest.map_or(String::new(), |s| format!("; start times at most {s:.1} ms apart"));
    let addr = remote.server_addr.as_deref().unwrap_or("127.0.0.1");
    Some(format!("{} generators: {}{spread}; servers bound to {addr}", each.len(), each.join(", ")))
}
