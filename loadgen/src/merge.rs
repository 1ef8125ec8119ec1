//! `loadgen merge`: one set of percentiles from runs on several load machines.
//!
//! One machine rarely saturates a good server, so load comes from several, each running
//! loadgen against the same server at the same time with `--hlog` or `--json`. Percentiles
//! cannot be averaged, but histograms add exactly: merging sums every input's histograms
//! (all intervals of a log, per tag) and reads the percentiles off the sum. Counts and rates
//! from JSON inputs are summed too (the runs are assumed concurrent, so their rates add).
//! Give each run once: its log *or* its JSON, not both.

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
}

/// Reads and adds up every input.
pub fn sum_files(files: &[PathBuf]) -> Result<Sums> {
    let mut sums = Sums {
        latency: stats::new_hist(),
        uncorrected: stats::new_hist(),
        connect: stats::new_hist(),
        reports: Vec::new(),
    };
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
        } else {
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
        errors.connect += e.connect;
        errors.io += e.io;
        errors.timeout += e.timeout;
        errors.mismatch += e.mismatch;
        errors.lost += e.lost;
        errors.first_error = errors.first_error.take().or_else(|| e.first_error.clone());
        errors.first_warmup_error =
            errors.first_warmup_error.take().or_else(|| e.first_warmup_error.clone());
        errors.first_mismatch = errors.first_mismatch.take().or_else(|| e.first_mismatch.clone());
    }
    Ok(Merged {
        schema_version: crate::report::SCHEMA_VERSION,
        inputs: files.iter().map(|p| p.display().to_string()).collect(),
        latency_us: Latency::of(&sums.latency),
        latency_us_uncorrected: Latency::of(&sums.uncorrected),
        connect_latency_us: (!sums.connect.is_empty()).then(|| Latency::of(&sums.connect)),
        json_inputs: sums.reports.len(),
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
    let mut out = format!("merged {} inputs: {}\n\n", m.inputs.len(), m.inputs.join(", "));
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
