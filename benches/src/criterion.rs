//! The criterion benches' results (`cargo bench --bench roundtrip`: one round trip and one
//! connect-echo-close per model), read from criterion's own output and shown in the report.
//!
//! Criterion writes `<group>/<function>/new/benchmark.json` (the ids) and `estimates.json` (in
//! nanoseconds, each estimate with its confidence interval) under its home, `target/criterion`.
//! The figure taken is the one criterion prints as `time:`: the slope of its linear sampling
//! when it has one, else the mean. The roundtrip bench runs after the comparison and attaches
//! what it measured to the newest run folder ([`crate::render::attach`]).

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One criterion benchmark's figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bench {
    /// The group (`roundtrip`, `connect_echo_close`).
    pub group: String,
    /// The function within it: the model's name.
    pub model: String,
    /// Nanoseconds per iteration, criterion's point estimate.
    pub ns: f64,
    /// The confidence interval's bounds, in nanoseconds.
    pub lower_ns: f64,
    /// Its upper bound.
    pub upper_ns: f64,
    /// The interval's confidence level (0.95 by default).
    pub confidence: f64,
}

#[derive(Deserialize)]
struct Ids {
    group_id: String,
    function_id: Option<String>,
}

#[derive(Deserialize)]
struct Estimates {
    mean: Estimate,
    slope: Option<Estimate>,
}

#[derive(Deserialize)]
struct Estimate {
    point_estimate: f64,
    confidence_interval: Interval,
}

#[derive(Deserialize)]
struct Interval {
    confidence_level: f64,
    lower_bound: f64,
    upper_bound: f64,
}

/// Criterion's home: `$CRITERION_HOME`, else `criterion` beside the release folder.
pub fn home(release_dir: &Path) -> PathBuf {
    match std::env::var_os("CRITERION_HOME") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => release_dir.parent().unwrap_or(release_dir).join("criterion"),
    }
}

/// Every benchmark under `home` whose group is one of `groups`, in group then model order.
pub fn read(home: &Path, groups: &[&str]) -> Vec<Bench> {
    let mut out = Vec::new();
    for group in groups {
        let Ok(entries) = fs::read_dir(home.join(group)) else { continue };
        for entry in entries.flatten() {
            let new = entry.path().join("new");
            let ids = fs::read_to_string(new.join("benchmark.json")).ok();
            let est = fs::read_to_string(new.join("estimates.json")).ok();
            let ids: Option<Ids> = ids.and_then(|t| serde_json::from_str(&t).ok());
            let est: Option<Estimates> = est.and_then(|t| serde_json::from_str(&t).ok());
            let (Some(ids), Some(est)) = (ids, est) else { continue };
            let e = est.slope.unwrap_or(est.mean);
            out.push(Bench {
                group: ids.group_id,
                model: ids.function_id.unwrap_or_default(),
                ns: e.point_estimate,
                lower_ns: e.confidence_interval.lower_bound,
                upper_ns: e.confidence_interval.upper_bound,
                confidence: e.confidence_interval.confidence_level,
            });
        }
    }
    out.sort_by(|a, b| (&a.group, &a.model).cmp(&(&b.group, &b.model)));
    out
}
