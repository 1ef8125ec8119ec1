//! The run folder: `results/<date>-<host>/`, where the measuring side writes results.json
//! after every repeat, so that a crash or Ctrl-C leaves everything measured up to then.
//! `results/latest` points at the newest standard or full run: a relative symbolic link (for
//! tools, `echobench rerender results/latest`) and a short page, `results/latest.md`, naming
//! the run (for a reader on the web, where a link to a folder is not followed). Neither is a
//! copy. A quick run keeps to its own folder (`<date>-<host>-quick`) and leaves them alone:
//! its figures are too rough to stand as the newest report.
//!
//! This module writes only what was measured (results.json, and the histogram logs loadgen
//! writes into [`HLOG_DIR`]). The report, the CSV and the charts are drawn from results.json
//! by [`crate::render`], at the end of a run or by `echobench rerender`.

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
    /// `results/latest`: a link to the newest trustworthy run, the one a reader opens; `None`
    /// for a quick run, which leaves it alone.
    pub latest_dir: Option<PathBuf>,
}

/// Subfolder of the HdrHistogram logs.
pub const HLOG_DIR: &str = "hlog";

impl Output {
    /// Creates a fresh run folder under `root` and, unless the profile is quick, points
    /// `root/latest` and `root/latest.md` at it.
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
        let latest_dir = point_latest(root, &run_dir)?;
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

    /// Writes results.json: what the runner calls after every repeat.
    pub fn save(&self, results: &Results) -> Result<()> {
        write_json(&self.run_dir, results)
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

/// Points `root/latest` at `run_dir` (a relative symbolic link, swapped in by a rename so
/// that a reader never finds it missing) and writes `root/latest.md` naming the run. An older
/// `latest/` that was a copy of a run (before the link) is removed first.
fn point_latest(root: &Path, run_dir: &Path) -> Result<PathBuf> {
    let latest = root.join("latest");
    let name = run_dir.file_name().context("the run folder has no name")?;
    if fs::symlink_metadata(&latest).is_ok_and(|m| m.is_dir()) {
        fs::remove_dir_all(&latest)
            .with_context(|| format!("cannot remove the old copy {}", latest.display()))?;
    }
    let tmp = root.join(".latest.tmp");
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(name, &tmp)
        .with_context(|| format!("cannot create a link {}", tmp.display()))?;
    fs::rename(&tmp, &latest).with_context(|| format!("cannot replace {}", latest.display()))?;
    let name = name.to_string_lossy();
    let page = format!(
        "# The newest run\n\n[`{name}`]({name}/report.md) is the newest standard or full run \
         in this folder: its [report]({name}/report.md), [results.json]({name}/results.json) \
         and [results.csv]({name}/results.csv).\n\n`latest` is a symbolic link to the same \
         folder, for tools (`echobench rerender results/latest`). Both are rewritten when a \
         standard or full run starts; a quick run leaves them alone. How to read a run: \
         [README.md](README.md).\n"
    );
    write_atomic(&root.join("latest.md"), page.as_bytes())?;
    Ok(latest)
}
