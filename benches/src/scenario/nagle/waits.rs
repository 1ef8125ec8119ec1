//! How many round trips of a point waited for the delayed-ACK timer, from the figures the
//! results keep: each repeat's messages, mean and percentiles of latency, and its window.
//!
//! The results keep no histogram (the hlog files hold them, beside results.json), so the count
//! is estimated, and bracketed by the percentiles. One connection in a closed loop spends its
//! whole window in round trips, back to back, so the time above the median adds up to the
//! waits: `messages x (mean - p50)`. Divided by the length of one wait (what the point with
//! every echo in two pieces measured for each of its round trips), that is how many waited. The
//! percentiles bound the same count independently: a percentile below the threshold caps the
//! share above it, one at or above it sets a floor.

use crate::results::{PointResults, measured};

/// A round trip this long or longer waited for a timer, not for the server: a normal round
/// trip here takes well under a millisecond, and Linux's shortest delayed-ACK wait is 40 ms
/// (`TCP_DELACK_MIN`), so half of that separates the two with room on both sides.
pub const THRESHOLD_US: f64 = 20_000.0;

/// Linux's shortest delayed-ACK wait, used when the run has no point that measured it.
pub const DELACK_US: f64 = 40_000.0;

/// One repeat's figures that the estimate needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Repeat {
    /// Round trips completed.
    pub messages: f64,
    /// Its window, seconds.
    pub seconds: f64,
    /// Mean, median and the higher percentiles of its latency, us, with the share of round
    /// trips each percentile leaves above it.
    pub mean: f64,
    pub p50: f64,
    pub tail: [(f64, f64); 5],
}

impl Repeat {
    /// The figures of each measured repeat of `p`.
    pub fn of(p: &PointResults) -> Vec<Repeat> {
        measured(&p.repeats)
            .filter_map(|r| {
                let m = r.metrics.as_ref()?;
                let l = &m.latency_us;
                let seconds = r.loadgen.as_ref().map_or(0.0, |g| g.run.measured_secs);
                Some(Repeat {
                    messages: m.received,
                    seconds,
                    mean: l.mean,
                    p50: l.p50,
                    tail: [
                        (l.p90, 0.1),
                        (l.p99, 0.01),
                        (l.p999, 0.001),
                        (l.p9999, 0.0001),
                        (l.max, 0.0),
                    ],
                })
            })
            .collect()
    }
}

/// What the estimate found over a point's repeats.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Waits {
    /// Round trips, all repeats together.
    pub messages: f64,
    /// Round trips estimated to have waited for the timer.
    pub waited: f64,
    /// The share of round trips above [`THRESHOLD_US`], as the percentiles bound it.
    pub share_low: f64,
    pub share_high: f64,
    /// The time those waits took, and the windows' total, seconds.
    pub wait_seconds: f64,
    pub window_seconds: f64,
    /// The length of one wait the estimate divided by, us.
    pub wait_us: f64,
}

/// Estimates the waits of `repeats`, each about `wait_us` long. `None` without round trips.
pub fn estimate(repeats: &[Repeat], wait_us: f64) -> Option<Waits> {
    let messages: f64 = repeats.iter().map(|r| r.messages).sum();
    if messages <= 0.0 || wait_us.is_nan() || wait_us <= THRESHOLD_US {
        return None;
    }
    let (mut excess_us, mut low, mut high, mut window) = (0.0, 0.0f64, 0.0, 0.0);
    for r in repeats.iter().filter(|r| r.messages > 0.0) {
        excess_us += r.messages * (r.mean - r.p50).max(0.0);
        window += r.seconds;
        // Within one repeat: the highest share some percentile at or above the threshold
        // guarantees, and the lowest share a percentile below it allows. The maximum (share 0)
        // at or above it means one round trip at least.
        let floor = r
            .tail
            .iter()
            .filter(|(v, _)| *v >= THRESHOLD_US)
            .map(|&(_, s)| (s * r.messages).max(1.0))
            .fold(0.0, f64::max);
        let cap = r
            .tail
            .iter()
            .filter(|(v, _)| *v < THRESHOLD_US)
            .map(|&(_, s)| s * r.messages)
            .fold(r.messages, f64::min);
        // The median above the threshold: more than half waited.
        let (floor, cap) =
            if r.p50 >= THRESHOLD_US { (0.5 * r.messages, r.messages) } else { (floor, cap) };
        low += floor;
        high += cap;
    }
    let p50 = repeats.iter().map(|r| r.p50).fold(0.0, f64::max);
    // Each wait adds its length less the round trip it replaced; the estimate is kept within
    // what the percentiles allow.
    let raw = excess_us / (wait_us - p50).max(1.0);
    let waited = raw.clamp(low, high.max(low)).round();
    Some(Waits {
        messages,
        waited,
        share_low: low / messages,
        share_high: high.max(low) / messages,
        wait_seconds: waited * wait_us / 1e6,
        window_seconds: window,
        wait_us,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The split-writes point of the run of 2026-12-07 (vm-2): 3,713 round trips in 1.5 s,
    /// median 115 us, mean 407 us, p99 386 us, p99.9 44.2 ms, max 60.2 ms.
    fn split_vm2() -> Repeat {
        Repeat {
            messages: 3713.0,
            seconds: 1.5,
            mean: 406.9,
            p50: 114.8,
            tail: [
                (156.5, 0.1),
                (386.3, 0.01),
                (44171.3, 0.001),
                (60194.8, 0.0001),
                (60194.8, 0.0),
            ],
        }
    }

    #[test]
    fn a_median_far_below_the_timer_still_hides_the_round_trips_that_waited() {
        // The old sentence said "no delayed ACK" from the median alone; the mean says that
        // about 25 round trips waited 44 ms, most of the window.
        let w = estimate(&[split_vm2()], 44_007.0).unwrap();
        assert_eq!(w.waited, 25.0);
        assert!((0.001..=0.01).contains(&(w.waited / w.messages)));
        assert!((w.share_low - 0.001).abs() < 1e-9 && (w.share_high - 0.01).abs() < 1e-9);
        assert!(w.wait_seconds > 0.5 * w.window_seconds, "{w:?}");
    }

    #[test]
    fn no_percentile_at_the_threshold_means_none_waited() {
        let r = Repeat {
            messages: 7000.0,
            seconds: 0.5,
            mean: 70.0,
            p50: 68.0,
            tail: [(80.0, 0.1), (114.0, 0.01), (191.0, 0.001), (1219.0, 0.0001), (1219.0, 0.0)],
        };
        let w = estimate(&[r], 44_000.0).unwrap();
        assert_eq!((w.waited, w.share_low), (0.0, 0.0));
    }

    #[test]
    fn the_percentiles_keep_a_stall_inflated_mean_in_bounds() {
        // A mean pulled up by one long stall would estimate hundreds of waits; the p99 below
        // the threshold caps the count at 1% of the round trips.
        let r = Repeat { mean: 5_000.0, ..split_vm2() };
        let w = estimate(&[r], 44_000.0).unwrap();
        assert_eq!(w.waited, (0.01f64 * 3713.0).round());
    }
}
