//! Counting and timing: the histograms each load thread fills, the counters beside them, and
//! the percentile summary the report prints.
//!
//! Latencies are recorded in nanoseconds into HdrHistograms with three significant digits (so
//! any figure is within 0.1% of the truth) and reported in microseconds. Recording costs a
//! few nanoseconds and never allocates, so it can happen for every message.

use anyhow::{Context, Result};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

/// One latency histogram, in nanoseconds.
pub type Hist = Histogram<u64>;

/// The largest latency a histogram holds exactly: one hour. Longer ones are recorded as one
/// hour (`saturating_record`) rather than lost.
const HIGHEST_NS: u64 = 3_600 * 1_000_000_000;

/// An empty histogram with loadgen's bounds.
pub fn new_hist() -> Hist {
    Histogram::new_with_bounds(1, HIGHEST_NS, 3).expect("constant histogram bounds are valid")
}

/// Everything one thread times during one interval of the run.
#[derive(Debug, Clone)]
pub struct Recorder {
    /// Latency of the messages whose echo came back intact. In the open loop it counts from
    /// the *intended* send time, so a stall delays every message scheduled during it (the
    /// coordinated-omission correction); in the closed loop and churn, from when the message
    /// was queued.
    pub corrected: Hist,
    /// Open loop only (while recording): latency from the moment the kernel took the
    /// message's last byte. See [`Recorder::fold_failures`].
    pub uncorrected: Hist,
    /// Messages given up (timed out, lost, never sent on schedule), each at its age then and
    /// never less than `--timeout`: without them a stall longer than the timeout would
    /// *improve* the percentiles, the worst messages having vanished from the histogram.
    pub failed: Hist,
    /// Churn only: from `connect` to the connection being usable.
    pub connect: Hist,
    /// Open loop only: how late each message left against its schedule. Large values mean
    /// the generator could not keep up.
    pub lag: Hist,
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder {
            corrected: new_hist(),
            uncorrected: new_hist(),
            failed: new_hist(),
            connect: new_hist(),
            lag: new_hist(),
        }
    }

    /// Empties every histogram, keeping its memory, so the recorder can be used again.
    pub fn reset(&mut self) {
        self.corrected.reset();
        self.uncorrected.reset();
        self.failed.reset();
        self.connect.reset();
        self.lag.reset();
    }

    /// Turns what was recorded into what is reported, in place (no allocation): afterwards
    /// `corrected` is the reported latency, failures included, and `uncorrected` the latency
    /// of the messages that came back, from their actual send (outside the open loop, where
    /// there is no schedule, that is the same measurement as `corrected` before the
    /// failures are added).
    pub fn fold_failures(&mut self, open: bool) -> Result<()> {
        if !open {
            self.uncorrected.add(&self.corrected).context("cannot merge histograms")?;
        }
        self.corrected.add(&self.failed).context("cannot merge histograms")?;
        self.failed.reset();
        Ok(())
    }

    /// Adds another recorder's counts into this one.
    pub fn add(&mut self, other: &Recorder) -> Result<()> {
        self.corrected.add(&other.corrected).context("cannot merge histograms")?;
        self.uncorrected.add(&other.uncorrected).context("cannot merge histograms")?;
        self.failed.add(&other.failed).context("cannot merge histograms")?;
        self.connect.add(&other.connect).context("cannot merge histograms")?;
        self.lag.add(&other.lag).context("cannot merge histograms")?;
        Ok(())
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

/// What one thread counted over the measured window. Only messages *sent* inside the window
/// are counted; each ends up in exactly one of received, mismatch, timeout or lost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Messages wholly written to the socket (the kernel accepted their last byte).
    pub sent: u64,
    /// Messages whose echo came back whole and correct.
    pub received: u64,
    /// Intact echoes that arrived inside the measured window, whenever their message was
    /// sent (warmup included): what throughput counts. Echoes that arrive during the drain
    /// after the window count in `received` but not here.
    pub received_in_window: u64,
    /// Messages whose echo came back whole but differed from what was sent.
    pub mismatch: u64,
    /// Messages whose echo had not come back after `--timeout`.
    pub timeout: u64,
    /// Messages in flight on a connection that broke, or when the run was cancelled.
    pub lost: u64,
    /// Open loop: sends the schedule called for while their connection was down.
    pub not_sent: u64,
    /// Messages meant for the window that never wholly reached the socket: the open loop's
    /// sends due while their connection's unwritten backlog was at its cap, and messages
    /// still unwritten when their connection failed or the run ended.
    pub backlogged: u64,
    /// Messages meant for the window: sent + not_sent + backlogged.
    pub scheduled: u64,
    /// Warm-up messages still outstanding when the window opened, adopted by it (part of
    /// `scheduled`), and how many of them count in `sent`.
    pub carried: u64,
    pub carried_sent: u64,
    /// Open loop: how often, in the window, the send timer woke the load thread (`sent` over
    /// this is how many messages one wake-up sent).
    #[serde(default)]
    pub timer_wakeups: u64,
    /// Connections established.
    pub connects: u64,
    /// Connection attempts that failed or timed out.
    pub connect_errors: u64,
    /// Established connections that broke: reset, closed early, or an unexpected byte.
    pub io_errors: u64,
}

impl Counters {
    pub fn add(&mut self, o: &Counters) {
        self.sent += o.sent;
        self.received += o.received;
        self.received_in_window += o.received_in_window;
        self.mismatch += o.mismatch;
        self.timeout += o.timeout;
        self.lost += o.lost;
        self.not_sent += o.not_sent;
        self.backlogged += o.backlogged;
        self.scheduled += o.scheduled;
        self.carried += o.carried;
        self.carried_sent += o.carried_sent;
        self.timer_wakeups += o.timer_wakeups;
        self.connects += o.connects;
        self.connect_errors += o.connect_errors;
        self.io_errors += o.io_errors;
    }
}

/// The percentiles of one histogram, in microseconds. In JSON, an empty histogram's figures
/// are `null` (nothing was measured), not zeros that would read as "instant".
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(into = "LatencyJson", from = "LatencyJson")]
pub struct Latency {
    /// Values recorded.
    pub count: u64,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub p9999: f64,
    pub max: f64,
    pub mean: f64,
    pub stdev: f64,
}

impl Latency {
    /// Summarises a nanosecond histogram; an empty one gives all zeros here (`count` 0) and
    /// `null`s in JSON.
    pub fn of(hist: &Hist) -> Latency {
        if hist.is_empty() {
            return Latency::default();
        }
        let us = |ns: u64| ns as f64 / 1_000.0;
        Latency {
            count: hist.len(),
            min: us(hist.min()),
            p50: us(hist.value_at_quantile(0.50)),
            p90: us(hist.value_at_quantile(0.90)),
            p99: us(hist.value_at_quantile(0.99)),
            p999: us(hist.value_at_quantile(0.999)),
            p9999: us(hist.value_at_quantile(0.9999)),
            max: us(hist.max()),
            mean: hist.mean() / 1_000.0,
            stdev: hist.stdev() / 1_000.0,
        }
    }
}

/// [`Latency`] as JSON: the same fields, each `null` when `count` is 0.
#[derive(Serialize, Deserialize)]
struct LatencyJson {
    count: u64,
    min: Option<f64>,
    p50: Option<f64>,
    p90: Option<f64>,
    p99: Option<f64>,
    p999: Option<f64>,
    p9999: Option<f64>,
    max: Option<f64>,
    mean: Option<f64>,
    stdev: Option<f64>,
}

impl From<Latency> for LatencyJson {
    fn from(l: Latency) -> LatencyJson {
        let v = |x: f64| (l.count > 0).then_some(x);
        LatencyJson {
            count: l.count,
            min: v(l.min),
            p50: v(l.p50),
            p90: v(l.p90),
            p99: v(l.p99),
            p999: v(l.p999),
            p9999: v(l.p9999),
            max: v(l.max),
            mean: v(l.mean),
            stdev: v(l.stdev),
        }
    }
}

impl From<LatencyJson> for Latency {
    fn from(j: LatencyJson) -> Latency {
        let v = |x: Option<f64>| x.unwrap_or(0.0);
        Latency {
            count: j.count,
            min: v(j.min),
            p50: v(j.p50),
            p90: v(j.p90),
            p99: v(j.p99),
            p999: v(j.p999),
            p9999: v(j.p9999),
            max: v(j.max),
            mean: v(j.mean),
            stdev: v(j.stdev),
        }
    }
}

/// A histogram as the HdrHistogram tools exchange it: compressed V2, then base64 (the same
/// text that follows the timestamps on an interval-log line).
pub fn encode(hist: &Hist) -> Result<String> {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(hist, &mut bytes)
        .context("cannot serialize a histogram")?;
    Ok(BASE64.encode(bytes))
}

/// Reads back what [`encode`] wrote (or any V2 histogram, compressed or not, in base64).
pub fn decode(text: &str) -> Result<Hist> {
    let bytes = BASE64.decode(text.trim()).context("histogram is not valid base64")?;
    let hist: Hist = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .context("cannot decode a histogram")?;
    // Decoded histograms keep their own bounds; widen them to ours so they add up.
    let mut widened = new_hist();
    widened.add(&hist).context("histogram does not fit loadgen's bounds")?;
    Ok(widened)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_survive_encoding() {
        let mut hist = new_hist();
        for v in [1_000, 2_000, 50_000_000, HIGHEST_NS * 2] {
            hist.saturating_record(v);
        }
        let back = decode(&encode(&hist).unwrap()).unwrap();
        assert_eq!(back, hist);
        assert!(decode("not base64!").is_err());
    }

    #[test]
    fn percentiles_are_reported_in_microseconds() {
        let mut hist = new_hist();
        for ns in 1..=1000u64 {
            hist.saturating_record(ns * 1_000);
        }
        let l = Latency::of(&hist);
        assert_eq!(l.count, 1000);
        assert!((l.p50 - 500.0).abs() < 1.0, "p50 {}", l.p50);
        assert!((l.max - 1000.0).abs() < 1.0, "max {}", l.max);
        assert_eq!(Latency::of(&new_hist()), Latency::default());
    }

    #[test]
    fn nothing_measured_is_null_in_json_not_zero() {
        let empty = serde_json::to_value(Latency::of(&new_hist())).unwrap();
        assert_eq!(empty["count"], 0);
        assert!(empty["p99"].is_null() && empty["mean"].is_null(), "{empty}");
        let mut hist = new_hist();
        hist.saturating_record(2_000);
        let some = Latency::of(&hist);
        let json = serde_json::to_value(some).unwrap();
        assert!((json["p50"].as_f64().unwrap() - 2.0).abs() < 0.01, "{json}");
        assert_eq!(serde_json::from_value::<Latency>(json).unwrap(), some);
    }
}
