//! Latency over a point's repeats from their histograms added together: percentiles cannot
//! be averaged, nor their medians taken, without losing the tail (a p99 that one repeat in
//! three reached is the p99 of the three together, while the median of the three p99s hides
//! it). Histograms add exactly, as `loadgen merge` adds them; this reuses loadgen's reading of
//! its interval logs ([`loadgen::hlog::read_totals`]) and of its encoded histograms.

use std::path::Path;

use loadgen::stats::{self, Hist, Latency};
use serde::{Deserialize, Serialize};

use super::{Percentiles, Repeat, measured};

/// The quantiles of the percentile spectrum, as HdrHistogram's percentile distribution and
/// wrk2 plot it: each "nine" and the half-way point to the next.
const SPECTRUM: [f64; 14] = [
    0.0, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999, 0.99995, 0.99999, 0.999995,
    0.999999,
];

/// A point's latency over all its measured repeats at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Merged {
    /// Repeats whose histograms were added.
    pub repeats: u32,
    /// Values recorded: messages echoed, and failed ones at their age.
    pub count: u64,
    /// Latency from the intended send time (corrected for coordinated omission), failed
    /// messages included, as loadgen's `latency_us`.
    pub latency_us: Percentiles,
    /// Latency from the actual send, echoed messages only, as `latency_us_uncorrected`.
    pub latency_us_uncorrected: Option<Percentiles>,
    /// How late the generator queued each message against its schedule (loadgen's
    /// `schedule_lag_us`); absent when the repeats did not keep its histogram.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_lag_us: Option<Percentiles>,
    /// The corrected latency's percentile spectrum: `[quantile, microseconds]` for each of
    /// 0, 50, 75, 90, 95, 99, 99.5, 99.9... % that the sample count resolves.
    pub spectrum: Vec<[f64; 2]>,
}

/// The histograms of one repeat.
#[derive(Debug, Clone, Default)]
pub struct Hists {
    /// Corrected latency.
    pub latency: Option<Hist>,
    /// Uncorrected latency.
    pub uncorrected: Option<Hist>,
    /// Send lag.
    pub lag: Option<Hist>,
}

/// The merge of the measured repeats of a point whose files are under `run_dir`; `None` when
/// no repeat has an interval log that reads.
pub fn merge(run_dir: &Path, repeats: &[Repeat]) -> Option<Merged> {
    let each: Vec<Hists> = measured(repeats)
        .filter(|r| r.metrics.is_some())
        .filter_map(|r| {
            let totals = loadgen::hlog::read_totals(&run_dir.join(r.hlog.as_ref()?)).ok()?;
            let lag = r.loadgen.as_ref().and_then(|l| l.histograms.schedule_lag.as_deref());
            Some(Hists {
                latency: totals.get(&None).cloned(),
                uncorrected: totals.get(&Some(loadgen::hlog::TAG_UNCORRECTED.into())).cloned(),
                lag: lag.and_then(|text| stats::decode(text).ok()),
            })
        })
        .collect();
    of(&each)
}

/// The merge of the histograms of each repeat; `None` when none has a latency histogram.
/// A figure that some repeat lacks is left out rather than merged from the others.
pub fn of(each: &[Hists]) -> Option<Merged> {
    let sum = |pick: &dyn Fn(&Hists) -> Option<&Hist>| -> Option<Hist> {
        let mut total = stats::new_hist();
        for h in each {
            total.add(pick(h)?).ok()?;
        }
        (!each.is_empty()).then_some(total)
    };
    let latency = sum(&|h| h.latency.as_ref()).filter(|h| !h.is_empty())?;
    let uncorrected = sum(&|h| h.uncorrected.as_ref()).filter(|h| !h.is_empty());
    let lag = sum(&|h| h.lag.as_ref()).filter(|h| !h.is_empty());
    let count = latency.len();
    let spectrum = SPECTRUM
        .iter()
        // Beyond 1 / (1 - q) samples, a quantile is only the largest sample again.
        .filter(|&&q| q == 0.0 || 1.0 / (1.0 - q) <= count as f64)
        .map(|&q| [q, latency.value_at_quantile(q) as f64 / 1_000.0])
        .collect();
    Some(Merged {
        repeats: each.len() as u32,
        count,
        latency_us: percentiles(&latency),
        latency_us_uncorrected: uncorrected.as_ref().map(percentiles),
        schedule_lag_us: lag.as_ref().map(percentiles),
        spectrum,
    })
}

fn percentiles(h: &Hist) -> Percentiles {
    Percentiles::from(&Latency::of(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A histogram of `n` values of `us` microseconds each.
    fn hist(values: &[(u64, u64)]) -> Hist {
        let mut h = stats::new_hist();
        for &(us, n) in values {
            h.record_n(us * 1_000, n).unwrap();
        }
        h
    }

    fn repeat(values: &[(u64, u64)]) -> Hists {
        Hists { latency: Some(hist(values)), uncorrected: Some(hist(values)), lag: None }
    }

    #[test]
    fn the_merged_p99_keeps_a_tail_that_the_median_of_p99s_hides() {
        // Two calm repeats and one whose last 6% waited 10 ms: each repeat's p99 is 100 us,
        // 100 us and 10 ms, so their median is 100 us; over all three, 2% of the messages
        // waited 10 ms, so the p99 of the three together is 10 ms.
        let calm = [(100, 10_000)];
        let stalled = [(100, 9_400), (10_000, 600)];
        let merged = of(&[repeat(&calm), repeat(&calm), repeat(&stalled)]).unwrap();
        let p99s: Vec<f64> = [&calm[..], &calm[..], &stalled[..]]
            .iter()
            .map(|v| percentiles(&hist(v)).p99)
            .collect();
        let median_of_p99s = crate::results::median(p99s);
        assert!((median_of_p99s - 100.0).abs() < 1.0, "{median_of_p99s}");
        assert!((merged.latency_us.p99 - 10_000.0).abs() < 10.0, "{:?}", merged.latency_us);
        assert_eq!((merged.repeats, merged.count), (3, 30_000));
        assert!(merged.schedule_lag_us.is_none(), "no repeat kept its lag");
    }

    #[test]
    fn the_spectrum_rises_and_stops_where_the_samples_do() {
        let merged = of(&[repeat(&[(50, 900), (400, 90), (3_000, 10)])]).unwrap();
        let q: Vec<f64> = merged.spectrum.iter().map(|p| p[0]).collect();
        // 1,000 samples resolve 99.9% (1 in 1,000), not 99.95%.
        assert_eq!(q.last(), Some(&0.999));
        assert!(merged.spectrum.windows(2).all(|w| w[0][1] <= w[1][1]));
        assert!((merged.spectrum[0][1] - 50.0).abs() < 1.0);
        assert!((merged.latency_us.max - 3_000.0).abs() < 5.0);
    }

    #[test]
    fn a_figure_missing_from_one_repeat_is_left_out_and_no_latency_is_no_merge() {
        let mut with_lag = repeat(&[(100, 10)]);
        with_lag.lag = Some(hist(&[(5, 10)]));
        let merged = of(&[with_lag.clone(), repeat(&[(100, 10)])]).unwrap();
        assert!(merged.schedule_lag_us.is_none());
        let lag = of(&[with_lag.clone(), with_lag]).unwrap().schedule_lag_us.unwrap();
        assert!((lag.p99 - 5.0).abs() < 0.1);
        assert!(of(&[]).is_none());
        assert!(of(&[Hists::default()]).is_none());
    }
}
