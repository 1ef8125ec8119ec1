//! Paired comparisons: how two servers measured in the same rounds compare on one figure, with
//! an interval and a verdict judged against a practical margin.
//!
//! Two servers measured in the same round shared that round's conditions (the machine's drift,
//! a noisy neighbour, the frequency), so the ratio of their figures in that round cancels what
//! they shared. A comparison summarises the rounds' ratios, never the two lists of figures: the
//! spread of the ratios is often far smaller than either list's (../shared/MEASURING.md).
//!
//! - **The ratio** is the median of the paired rounds' ratios `b / a`.
//! - **The interval** covers the true median ratio without assuming a distribution: sort the n
//!   ratios; `[r(k), r(n-k+1)]` covers it with confidence `1 - 2 P(Binomial(n, 1/2) <= k - 1)`.
//!   [`interval`] takes the narrowest such interval whose confidence is at least [`CONFIDENCE`];
//!   with fewer rounds than that needs (8), it takes `[min, max]` and states its lower
//!   confidence, and no verdict is drawn from it.
//! - **The verdict** is judged against [`MARGIN`]: two builds of one program can differ by a few
//!   percent through memory layout alone, so a smaller difference is no finding. Different:
//!   the whole interval lies beyond `1 + m` or below `1 / (1 + m)`. Equivalent: it lies wholly
//!   inside. Undecided otherwise: no measurable difference at this run's resolution.
//!
//! Why 99%: a run makes a few hundred comparisons. For two identical servers, "different" needs
//! every one of at least 8 rounds' ratios beyond the margin on the same side, which happens with
//! probability at most `2 p^8`, where `p` is the chance that one round's ratio clears the margin
//! (below 1/2, and about 0.35 when the paired ratios scatter by 8%): about 5e-4 a comparison,
//! or about one false call in 40 runs over the control's 50 or so comparisons. The control
//! (`--control`) measures this in every run: the report says when it failed.

use crate::plan::Point;
pub use crate::results::{Comparison, Verdict};
use crate::results::{RepeatStatus, Results, measured};

/// The practical margin: differences smaller than 3% are not findings.
pub const MARGIN: f64 = 0.03;

/// The confidence a verdict needs.
pub const CONFIDENCE: f64 = 0.99;

/// The rounds a verdict needs: the fewest whose `[min, max]` reaches [`CONFIDENCE`].
pub const ROUNDS_FOR_VERDICT: usize = 8;

/// The median of paired ratios with its distribution-free interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// The median ratio.
    pub ratio: f64,
    /// The interval's lower end.
    pub low: f64,
    /// Its upper end.
    pub high: f64,
    /// The confidence it covers the true median with.
    pub confidence: f64,
    /// The paired rounds it was made from.
    pub rounds: usize,
}

/// `P(Binomial(n, 1/2) <= k)`.
fn binomial_cdf_half(n: usize, k: usize) -> f64 {
    let mut term = 0.5f64.powi(n as i32);
    let mut sum = term;
    for i in 1..=k.min(n) {
        // C(n, i) = C(n, i - 1) * (n - i + 1) / i.
        term *= (n - i + 1) as f64 / i as f64;
        sum += term;
    }
    sum
}

/// The confidence of `[r(k), r(n-k+1)]` (1-based order statistics) for the median.
pub fn order_confidence(n: usize, k: usize) -> f64 {
    if k == 0 || 2 * k > n + 1 {
        return 0.0;
    }
    1.0 - 2.0 * binomial_cdf_half(n, k - 1)
}

/// The median of `ratios` with the narrowest order-statistic interval of at least
/// [`CONFIDENCE`], or `[min, max]` with its own confidence when there are too few. `None`
/// without a finite, positive ratio.
pub fn interval(ratios: &[f64]) -> Option<Interval> {
    let mut r: Vec<f64> = ratios.iter().copied().filter(|x| x.is_finite() && *x > 0.0).collect();
    if r.is_empty() {
        return None;
    }
    r.sort_by(f64::total_cmp);
    let n = r.len();
    let ratio = crate::results::median(r.clone());
    let mut k = 1;
    while order_confidence(n, k + 1) >= CONFIDENCE {
        k += 1;
    }
    Some(Interval {
        ratio,
        low: r[k - 1],
        high: r[n - k],
        confidence: order_confidence(n, k),
        rounds: n,
    })
}

impl Interval {
    /// The verdict at [`MARGIN`], drawn only at [`CONFIDENCE`] or more.
    pub fn verdict(&self) -> Verdict {
        let (up, down) = (1.0 + MARGIN, 1.0 / (1.0 + MARGIN));
        if self.confidence < CONFIDENCE {
            Verdict::Undecided
        } else if self.low > up || self.high < down {
            Verdict::Different
        } else if self.low >= down && self.high <= up {
            Verdict::Equivalent
        } else {
            Verdict::Undecided
        }
    }
}

/// One figure a comparison is made on: its name, where to read it in a repeat, and whether
/// more is better.
#[derive(Debug, Clone, Copy)]
pub struct Figure {
    /// Its name in the results ("msgs/s").
    pub name: &'static str,
    /// The figure, from one repeat's metrics; not finite (NaN) where it is unknown.
    pub of: fn(&crate::results::Metrics) -> f64,
    /// Whether more is better.
    pub higher_is_better: bool,
}

/// Server CPU per message: every scenario's second figure, netperf's service demand.
pub const CPU_PER_MSG: Figure = Figure {
    name: "server CPU us/msg",
    of: |m| m.server_cpu_per_msg_us.unwrap_or(f64::NAN),
    higher_is_better: false,
};

/// Messages (or connections) echoed per second.
pub const RATE: Figure = Figure { name: "msgs/s", of: |m| m.msgs_per_sec, higher_is_better: true };

/// The 99th percentile of latency.
pub const P99: Figure = Figure { name: "p99", of: |m| m.latency_us.p99, higher_is_better: false };

/// Compares `a` and `b` on `figure` from each one's figures by round (`(round, value)`),
/// pairing the rounds both have. `None` when no round pairs.
pub fn compare(
    (scenario, point): (&str, &str),
    figure: &Figure,
    (a, a_rounds): (&str, &[(u32, f64)]),
    (b, b_rounds): (&str, &[(u32, f64)]),
) -> Option<Comparison> {
    let ratios: Vec<f64> = a_rounds
        .iter()
        .filter_map(|&(round, va)| {
            let &(_, vb) = b_rounds.iter().find(|(r, _)| *r == round)?;
            (va.is_finite() && vb.is_finite() && va > 0.0 && vb > 0.0).then_some(vb / va)
        })
        .collect();
    let i = interval(&ratios)?;
    let verdict = i.verdict();
    let better = (verdict == Verdict::Different).then(|| {
        let b_bigger = i.ratio > 1.0;
        if b_bigger == figure.higher_is_better { b.to_string() } else { a.to_string() }
    });
    Some(Comparison {
        scenario: scenario.to_string(),
        point: point.to_string(),
        figure: figure.name.to_string(),
        a: a.to_string(),
        b: b.to_string(),
        ratio: i.ratio,
        low: i.low,
        high: i.high,
        confidence: i.confidence,
        better,
        verdict,
        rounds: i.rounds as u32,
        higher_is_better: figure.higher_is_better,
    })
}

/// Every pair of the servers that ran `point` (in the results' order), compared on `figure`
/// from the rounds each has: a repeat that was run again, or traced while others were not, is
/// left out, as in the summaries, and so is one that did not end well.
pub fn at_point(results: &Results, point: &Point, figure: &Figure) -> Vec<Comparison> {
    let by_round = rounds(results, point, figure);
    let mut out = Vec::new();
    for (i, (a, ra)) in by_round.iter().enumerate() {
        for (b, rb) in &by_round[i + 1..] {
            let at = (point.scenario.as_str(), point.label.as_str());
            out.extend(compare(at, figure, (a, ra), (b, rb)));
        }
    }
    out
}

/// Each server's `figure` at `point`, by round.
pub fn rounds<'a>(
    results: &'a Results,
    point: &Point,
    f: &Figure,
) -> Vec<(&'a str, Vec<(u32, f64)>)> {
    let at = results.models.iter().filter_map(|m| {
        let s = m.scenario(&point.scenario)?;
        Some((m.name.as_str(), s.points.iter().find(|p| &p.point == point)?))
    });
    at.map(|(name, p)| {
        let values = measured(&p.repeats)
            .filter(|r| r.round > 0 && r.status == RepeatStatus::Ok)
            .filter_map(|r| Some((r.round, (f.of)(r.metrics.as_ref()?))))
            .collect();
        (name, values)
    })
    .collect()
}

impl Comparison {
    /// Whether it names `x` and `y`, in either order.
    pub fn between(&self, x: &str, y: &str) -> bool {
        (self.a == x && self.b == y) || (self.a == y && self.b == x)
    }

    /// How many times `of`'s figure is the other's, with its interval: the ratio seen from
    /// `of` (b over a when `of` is b).
    pub fn seen_from(&self, of: &str) -> (f64, f64, f64) {
        if of == self.b {
            (self.ratio, self.low, self.high)
        } else {
            (1.0 / self.ratio, 1.0 / self.high, 1.0 / self.low)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confidence_matches_the_binomial_table() {
        // MEASURING.md's table: n = 5, k = 1: 93.8%; n = 8, k = 2: 93.0%; n = 12, k = 3: 96.1%.
        assert!((order_confidence(5, 1) - 0.9375).abs() < 1e-9);
        assert!((order_confidence(8, 2) - 0.9297).abs() < 1e-3);
        assert!((order_confidence(12, 3) - 0.9614).abs() < 1e-3);
        assert!((order_confidence(10, 2) - 0.9785).abs() < 1e-3);
    }

    #[test]
    fn few_rounds_give_no_verdict_however_far_apart() {
        let i = interval(&[2.0, 2.1, 1.9, 2.0, 2.05]).unwrap();
        assert_eq!((i.low, i.high), (1.9, 2.1));
        assert!(i.confidence < CONFIDENCE);
        assert_eq!(i.verdict(), Verdict::Undecided);
    }

    #[test]
    fn eight_rounds_beyond_the_margin_are_different() {
        let r = [1.2, 1.25, 1.3, 1.22, 1.18, 1.27, 1.21, 1.24];
        let i = interval(&r).unwrap();
        assert_eq!(i.rounds, 8);
        assert!(i.confidence >= CONFIDENCE);
        assert_eq!((i.low, i.high), (1.18, 1.3));
        assert_eq!(i.verdict(), Verdict::Different);
    }

    #[test]
    fn one_round_across_the_margin_leaves_it_undecided() {
        let r = [1.2, 1.25, 1.3, 1.22, 1.02, 1.27, 1.21, 1.24];
        assert_eq!(interval(&r).unwrap().verdict(), Verdict::Undecided);
    }

    #[test]
    fn ratios_inside_the_margin_are_equivalent() {
        let r = [1.01, 0.99, 1.0, 1.02, 0.98, 1.0, 1.01, 0.995];
        assert_eq!(interval(&r).unwrap().verdict(), Verdict::Equivalent);
    }

    #[test]
    fn twelve_rounds_narrow_the_interval() {
        let mut r: Vec<f64> = (0..12).map(|i| 1.0 + i as f64 / 100.0).collect();
        r.reverse();
        let i = interval(&r).unwrap();
        // k = 2 reaches 99.4% at n = 12: the second smallest and second largest.
        assert_eq!((i.low, i.high), (1.01, 1.10));
    }

    #[test]
    fn pairs_by_round_and_names_the_better() {
        let a: Vec<(u32, f64)> = (1..=8).map(|r| (r, 100.0)).collect();
        let mut b: Vec<(u32, f64)> = (1..=8).map(|r| (r, 150.0 + r as f64)).collect();
        // A round only b has is not paired.
        b.push((9, 1.0));
        let higher = Figure { name: "msgs/s", of: |m| m.msgs_per_sec, higher_is_better: true };
        let c = compare(("scale", "1 conn"), &higher, ("x", &a), ("y", &b)).unwrap();
        assert_eq!(c.rounds, 8);
        assert_eq!(c.better.as_deref(), Some("y"));
        let c = compare(("scale", "1 conn"), &CPU_PER_MSG, ("x", &a), ("y", &b)).unwrap();
        assert_eq!(c.better.as_deref(), Some("x"));
        assert!(c.seen_from("x").0 < 1.0);
    }
}
