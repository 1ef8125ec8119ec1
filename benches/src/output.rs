//! The run folder: `results/<date>-<host>/`, where the measuring side writes results.json
//! after every repeat and mirrors it into `results/latest/`, so that a crash or Ctrl-C leaves
//! everything measured up to then. A quick run keeps to its own folder
//! (`<date>-<host>-quick`): its figures are too rough to stand as the newest report, so
//! `latest/` stays the newest standard or full run.
//!
//! This module writes only what was measured (results.json, and the histogram logs loadgen
//! writes into [`HLOG_DIR`]). The report, the CSV and the charts are drawn from results.json
//! by [`crate::render`], at the end of a run or by `echobench rerender`, and then mirrored
//! with [`Output::mirror`].

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};

use crate::plan::Profile;
use crate::results::Results;

/// Where a run writes.
#[derive(Debug, Clone)]
pub struct Output {
    /// `results/<date>-<host>[-profile]` (with `-2`, `-3`... if that exists already).
    pub run_dir: PathBuf,
    /// `results/latest`: a copy of the newest trustworthy run, the one a reader opens; `None`
    /// for a quick run, which leaves it alone.
    pub latest_dir: Option<PathBuf>,
}

/// Subfolder of the HdrHistogram logs.
pub const HLOG_DIR: &str = "hlog";

impl Output {
    /// Creates a fresh run folder under `root` and, unless the profile is quick, empties
    /// `root/latest` for it.
    pub fn create(root: &Path, host: &str, profile: Profile, now: SystemTime) -> Result<Output> {
        let date = humantime::format_rfc3339_seconds(now).to_string();
        let host: String = host
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' })
            .collect();
        let mut name = format!("{}-{host}", &date[..10]);
        if profile != Profile::Standard {
            name = format!("{name}-{}", profile.name());
        }
        let mut run_dir = root.join(&name);
        let mut n = 2;
        while run_dir.exists() {
            run_dir = root.join(format!("{name}-{n}"));
            n += 1;
        }
        fs::create_dir_all(run_dir.join(HLOG_DIR))
            .with_context(|| format!("cannot create {}", run_dir.display()))?;
        if profile == Profile::Quick {
            return Ok(Output { run_dir, latest_dir: None });
        }
        let latest_dir = root.join("latest");
        if latest_dir.exists() {
            fs::remove_dir_all(&latest_dir)
                .with_context(|| format!("cannot empty {}", latest_dir.display()))?;
        }
        fs::create_dir_all(&latest_dir)
            .with_context(|| format!("cannot create {}", latest_dir.display()))?;
        Ok(Output { run_dir, latest_dir: Some(latest_dir) })
    }

    /// Where the generator writes the histogram log named `name`: the absolute path, and the
    /// path relative to the run folder that results.json records.
    pub fn hlog_path(&self, name: &str) -> (PathBuf, String) {
        let relative = format!("{HLOG_DIR}/{name}.hlog");
        (self.run_dir.join(&relative), relative)
    }

    /// A scratch path for the generator's JSON report (it is embedded in results.json).
    pub fn scratch_json(&self) -> PathBuf {
        self.run_dir.join(".loadgen.json")
    }

    /// Writes results.json, then mirrors the run folder to latest (if this run has it): what
    /// the runner calls after every repeat.
    pub fn save(&self, results: &Results) -> Result<()> {
        write_json(&self.run_dir, results)?;
        self.mirror()
    }

    /// Mirrors the run folder to latest (if this run has it), after the report was drawn.
    pub fn mirror(&self) -> Result<()> {
        match &self.latest_dir {
            Some(latest) => mirror(&self.run_dir, latest),
            None => Ok(()),
        }
    }

    /// Removes scratch files once the run is over.
    pub fn finish(&self) {
        let _ = fs::remove_file(self.scratch_json());
    }
}

/// Writes `dir/results.json`, indented by one space: readable, at about two thirds the size
/// of the usual indentation (every repeat nests loadgen's whole report).
pub fn write_json(dir: &Path, results: &Results) -> Result<()> {
    use serde::Serialize;
    let mut bytes = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b" ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut bytes, formatter);
    results.serialize(&mut serializer).context("cannot encode results")?;
    bytes.push(b'\n');
    write_atomic(&dir.join("results.json"), &bytes)
}

/// Writes through a temporary file and a rename, so a reader (or a crash) never sees half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// Copies `from` into `to`, recursively. Histogram logs never change once written, so those
/// already copied are skipped; everything else is overwritten. Scratch files stay behind.
fn mirror(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for entry in fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        let (src, dst) = (entry.path(), to.join(&name));
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        if entry.file_type()?.is_dir() {
            mirror(&src, &dst)?;
        } else if !(dst.exists() && src.extension().is_some_and(|e| e == "hlog")) {
            fs::copy(&src, &dst).with_context(|| format!("cannot copy to {}", dst.display()))?;
        }
    }
    Ok(())
}
