//! HdrHistogram interval logs: written during a run (`--hlog`), read back by `loadgen merge`.
//!
//! The format is the one the Java `HistogramLogWriter` writes and `HistogramLogReader` /
//! `HistogramLogProcessor` read: a header, then one line per interval and tag,
//! `[Tag=NAME,]START,LENGTH,MAX,BASE64`, where BASE64 is the compressed V2 encoding (the only
//! one the Java reader decodes). Values are nanoseconds; MAX is printed in milliseconds, as
//! the Java writer does by default. Untagged lines hold the message latency (corrected in the
//! open loop), so tools that ignore tags see the honest figure; `Tag=uncorrected` and
//! `Tag=connect` hold the others.
//!
//! The Rust crate's `IntervalLogWriter` omits the `#[Histogram log format version 1.3]` line and
//! the column legend, and borrows its output for its whole life; the line format is simple
//! enough to write here directly, with the crate's own serializer.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};

use crate::stats::{self, Hist};

/// The tag of the uncorrected open-loop latency.
pub const TAG_UNCORRECTED: &str = "uncorrected";
/// The tag of churn's connect latency.
pub const TAG_CONNECT: &str = "connect";

/// An interval log being written.
#[derive(Debug)]
pub struct HlogWriter {
    out: BufWriter<File>,
}

impl HlogWriter {
    /// Creates (or truncates) the file now, so a bad path fails before any load is applied.
    pub fn create(path: &Path) -> Result<HlogWriter> {
        let file =
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(HlogWriter { out: BufWriter::new(file) })
    }

    /// Writes the header; interval timestamps are then seconds after `base`.
    pub fn header(&mut self, base: SystemTime, comment: &str) -> Result<()> {
        let secs = base.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64();
        let when = humantime::format_rfc3339_millis(base);
        let out = &mut self.out;
        writeln!(out, "#[{comment}]")?;
        writeln!(out, "#[Histogram log format version 1.3]")?;
        writeln!(out, "#[StartTime: {secs:.3} (seconds since epoch), {when}]")?;
        writeln!(out, "#[BaseTime: {secs:.3} (seconds since epoch)]")?;
        writeln!(
            out,
            "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
        )?;
        Ok(())
    }

    /// Writes one interval's histogram; `start` is its offset from the header's base time.
    pub fn interval(
        &mut self,
        tag: Option<&str>,
        start: Duration,
        length: Duration,
        hist: &Hist,
    ) -> Result<()> {
        if let Some(tag) = tag {
            write!(self.out, "Tag={tag},")?;
        }
        let max_ms = hist.max() as f64 / 1e6;
        let encoded = stats::encode(hist)?;
        writeln!(
            self.out,
            "{:.3},{:.3},{max_ms:.3},{encoded}",
            start.as_secs_f64(),
            length.as_secs_f64()
        )?;
        Ok(())
    }

    pub fn finish(mut self) -> Result<()> {
        self.out.flush().context("cannot write the interval log")
    }
}

/// Every interval of a log, summed per tag (`None` is the untagged latency).
pub fn read_totals(path: &Path) -> Result<BTreeMap<Option<String>, Hist>> {
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut totals: BTreeMap<Option<String>, Hist> = BTreeMap::new();
    let mut intervals = 0;
    for entry in IntervalLogIterator::new(&text) {
        let entry = entry
            .map_err(|err| anyhow::anyhow!("{}: not an interval log ({err:?})", path.display()))?;
        if let LogEntry::Interval(interval) = entry {
            let hist = stats::decode(interval.encoded_histogram()).with_context(|| {
                format!("{}: bad histogram in interval {intervals}", path.display())
            })?;
            let tag = interval.tag().map(|t| t.as_str().to_owned());
            let total = totals.entry(tag).or_insert_with(stats::new_hist);
            total.add(&hist).context("cannot add histograms")?;
            intervals += 1;
        }
    }
    if intervals == 0 {
        bail!("{}: no interval histograms in this log", path.display());
    }
    Ok(totals)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_log_reads_back_per_tag() {
        let dir = std::env::temp_dir().join(format!("loadgen-hlog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.hlog");
        let mut a = stats::new_hist();
        let mut b = stats::new_hist();
        a.saturating_record(1_000);
        b.saturating_record(2_000_000);
        let mut w = HlogWriter::create(&path).unwrap();
        w.header(SystemTime::now(), "test").unwrap();
        w.interval(None, Duration::ZERO, Duration::from_secs(1), &a).unwrap();
        w.interval(None, Duration::from_secs(1), Duration::from_secs(1), &b).unwrap();
        w.interval(Some(TAG_UNCORRECTED), Duration::ZERO, Duration::from_secs(1), &a).unwrap();
        w.finish().unwrap();
        let totals = read_totals(&path).unwrap();
        let mut both = a.clone();
        both.add(&b).unwrap();
        assert_eq!(totals[&None], both);
        assert_eq!(totals[&Some(TAG_UNCORRECTED.to_owned())], a);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("#[Histogram log format version 1.3]"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
