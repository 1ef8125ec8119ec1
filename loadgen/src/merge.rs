//! `loadgen merge`: one set of percentiles from runs on several load machines.
//!
//! One machine rarely saturates a good server, so load comes from several, each running
//! loadgen against the same server at the same time with `--hlog` or `--json`. Percentiles
//! cannot be averaged, but histograms add exactly: merging sums every input's histograms
//! (all intervals of a log, per tag) and reads the percentiles off the sum. Counts and rates
//! from JSON inputs are summed too (the runs are assumed concurrent, so their rates add).
//! Give each run once: its log *or* its JSON, not both. The reports of a sharded run
//! (`--shard`) must come together, every shard once: merge refuses a missing, doubled or
//! foreign shard ([`crate::combine::check_shards`]), and interval logs beside them (a log
//! names no shard, so nothing could tell it apart).

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::hlog;
use crate::report::{Errors, Messages, Report};
use crate::stats::{self, Hist, Latency};
use crate::summary::{latency_row, thousands};

/// Flags of `loadgen merge`.
#[derive(Debug, Clone, clap::Args)]
pub struct MergeArgs {
    /// Interval logs (.hlog, from --hlog) or reports (.json, from --json) to combine.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Also write the merged result as JSON.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
}

/// The merged result (`--json` of `loadgen merge`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Merged {
    pub schema_version: u32,
    pub inputs: Vec<String>,
    /// Latency over every input (corrected, for open-loop inputs).
    pub latency_us: Latency,
    pub latency_us_uncorrected: Latency,
    /// Present when some input was a churn run.
    pub connect_latency_us: Option<Latency>,
    /// Inputs that were JSON reports; the sums below cover only those.
    pub json_inputs: usize,
    /// The run identity the inputs share when they are the shards of one run (`--shard`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// How many shards that run had.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<usize>,
    /// Sum of the JSON inputs' `throughput.msgs_per_sec`.
    pub msgs_per_sec: f64,
    /// Sum of the JSON inputs' `throughput.mib_per_sec`.
    pub mib_per_sec: f64,
    pub messages: Messages,
    pub errors: Errors,
    /// The merged histograms, encoded as in a report.
    pub latency_histogram: String,
    pub latency_uncorrected_histogram: String,
}

/// The histograms and sums of several inputs.
#[derive(Debug)]
pub struct Sums {
    pub latency: Hist,
    pub uncorrected: Hist,
    pub connect: Hist,
    pub reports: Vec<Report>,
    /// The inputs' run identity, when they are one run's shards.
    pub run_id: Option<String>,
}

/// Reads and adds up every input.
pub fn sum_files(files: &[PathBuf]) -> Result<Sums> {
    let mut sums = Sums {
        latency: stats::new_hist(),
        uncorrected: stats::new_hist(),
        connect: stats::new_hist(),
        reports: Vec::new(),
        run_id: None,
    };
    let mut names = Vec::new();
    let mut logs = Vec::new();
    for path in files {
        let is_json = std::fs::read(path)
            .map(|b| b.iter().find(|c| !c.is_ascii_whitespace()) == Some(&b'{'))
            .unwrap_or(false);
        if is_json {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let report = Report::from_json(&text)
                .with_context(|| format!("{}: not a loadgen report", path.display()))?;
            let h = &report.histograms;
            sums.latency.add(
                h.latency().with_context(|| format!("{}: latency histogram", path.display()))?,
            )?;
            sums.uncorrected.add(
                h.latency_uncorrected()
                    .with_context(|| format!("{}: histogram", path.display()))?,
            )?;
            if let Some(connect) = &h.connect {
                sums.connect.add(stats::decode(connect)?)?;
            }
            sums.reports.push(report);
            names.push(path.display().to_string());
        } else {
            logs.push(path.display().to_string());
            let totals = hlog::read_totals(path)?;
            let Some(latency) = totals.get(&None) else {
                bail!("{}: no untagged (latency) histograms", path.display());
            };
            sums.latency.add(latency)?;
            // Older logs had no `uncorrected` tag outside the open loop, where the untagged
            // latency was then the same figure (failures were not yet recorded in it).
            sums.uncorrected
                .add(totals.get(&Some(hlog::TAG_UNCORRECTED.to_owned())).unwrap_or(latency))?;
            if let Some(connect) = totals.get(&Some(hlog::TAG_CONNECT.to_owned())) {
                sums.connect.add(connect)?;
            }
        }
    }
    let inputs: Vec<(&str, &Report)> =
        names.iter().map(String::as_str).zip(&sums.reports).collect();
    sums.run_id = crate::combine::check_shards(&inputs)?;
    if let (Some(run), Some(log)) = (&sums.run_id, logs.first()) {
        bail!(
            "{log} is an interval log, which names no shard, beside the shards of run {run}: merge the shards' JSON reports alone"
        );
    }
    Ok(sums)
}

/// Merges the files into one result.
pub fn merge(files: &[PathBuf]) -> Result<Merged> {
    let sums = sum_files(files)?;
    let mut messages = Messages::default();
    let mut errors = Errors::default();
    let (mut msgs_per_sec, mut mib_per_sec) = (0.0, 0.0);
    for r in &sums.reports {
        msgs_per_sec += r.throughput.msgs_per_sec;
        mib_per_sec += r.throughput.mib_per_sec;
        let (m, e) = (&r.messages, &r.errors);
        messages.add(m);
        crate::combine::add_errors(&mut errors, e);
    }
    Ok(Merged {
        schema_version: crate::report::SCHEMA_VERSION,
        inputs: files.iter().map(|p| p.display().to_string()).collect(),
        latency_us: Latency::of(&sums.latency),
        latency_us_uncorrected: Latency::of(&sums.uncorrected),
        connect_latency_us: (!sums.connect.is_empty()).then(|| Latency::of(&sums.connect)),
        json_inputs: sums.reports.len(),
        shards: sums.reports.first().and_then(|r| r.shard.as_ref()).map(|s| s.shard.count),
        run_id: sums.run_id.clone(),
        msgs_per_sec,
        mib_per_sec,
        messages,
        errors,
        latency_histogram: stats::encode(&sums.latency)?,
        latency_uncorrected_histogram: stats::encode(&sums.uncorrected)?,
    })
}

/// `loadgen merge`: prints the merged percentiles and writes `--json`.
pub fn main(args: &MergeArgs) -> Result<i32> {
    let merged = merge(&args.files)?;
    print!("{}", render(&merged));
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&merged)? + "\n";
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(0)
}

/// The merged result for a terminal.
pub fn render(m: &Merged) -> String {
    let mut out = format!("merged {} inputs: {}\n", m.inputs.len(), m.inputs.join(", "));
    if let (Some(run), Some(n)) = (&m.run_id, m.shards) {
        let _ = writeln!(out, "all {n} shards of run {run}");
    }
    out.push('\n');
    let _ = writeln!(
        out,
        "{:<22}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}",
        "latency (us)", "p50", "p90", "p99", "p99.9", "p99.99", "max", "mean"
    );
    latency_row(&mut out, "message", &m.latency_us);
    if m.latency_us_uncorrected != m.latency_us {
        latency_row(&mut out, "from actual send", &m.latency_us_uncorrected);
    }
    if let Some(connect) = &m.connect_latency_us {
        latency_row(&mut out, "connect", connect);
    }
    let _ = writeln!(out, "  ({} latencies in all)", thousands(m.latency_us.count as f64));
    if m.json_inputs > 0 {
        let (msg, e) = (&m.messages, &m.errors);
        let _ = writeln!(
            out,
            "\nsum of {} reports: {} msgs/s, {:.2} MiB/s; sent {}, received {}",
            m.json_inputs,
            thousands(m.msgs_per_sec),
            m.mib_per_sec,
            thousands(msg.sent as f64),
            thousands(msg.received as f64)
        );
        let _ = writeln!(
            out,
            "errors: connect {}, io {}, timeout {}, mismatch {}, lost {}",
            e.connect, e.io, e.timeout, e.mismatch, e.lost
        );
    }
    out
}
