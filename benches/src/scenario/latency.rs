//! latency: "What does a user wait under load, and what does each model spend serving it?"
//! An open loop at the same absolute rates for every model (fractions of the slowest model's
//! closed-loop capacity, one above it, or rates given with `--rates`), with latency measured
//! from the intended send time and merged over the rounds, and the server CPU per message
//! each model spends at equal work (netperf's service demand).

use anyhow::{Result, bail};

use super::scale::{self, LATENCY_CONNECTIONS};
use crate::charts::Charts;
use crate::findings::{NO_FIGURES, open_loop_pacing};
use crate::measure::{Headline, Measure, PointsFlag};
use crate::plan::{Basis, Point, Profile, SMALL_MESSAGE};
use crate::present::{Column, Present, View, col};
use crate::text::{sig, thousands};

mod findings;
use findings::{
    at, headline, lag_finding, lag_made, lag_p99, latency, overload, per_rate, queueing_finding,
    rate_phrase, uncorrected,
};

/// Connections of the open loop: scale's [`LATENCY_CONNECTIONS`], whose throughput is the
/// capacity the fractions refer to.
pub const CONNECTIONS: u32 = LATENCY_CONNECTIONS;

/// The latency scenario.
#[derive(Debug)]
pub struct Latency;

/// One load of the scenario, as `--rates` spells it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    /// A fraction of a capacity: one common to every server, or each model's own (`None`).
    Fraction(f64, Option<Basis>),
    /// Messages per second, the same for every server.
    Rate(f64),
}

impl Load {
    /// The point that offers this load; `order` (1-based) is its x, since a common rate is
    /// known only once the capacities are measured.
    fn point(self, order: usize) -> Point {
        let p = Point::closed("latency", CONNECTIONS, SMALL_MESSAGE);
        let (label, p) = match self {
            Load::Fraction(f, basis) => {
                let whose = basis.map_or("own".to_string(), |b| format!("of {}", b.word()));
                let label = format!("{:.0}% {whose}", f * 100.0);
                (label, Point { rate_fraction: Some(f), rate_basis: basis, ..p })
            }
            Load::Rate(r) => (format!("{} msgs/s", thousands(r)), Point { rate: Some(r), ..p }),
        };
        p.named(label, order as f64)
    }
}

/// The loads `--rates` gives: "25%" (of the slowest model's capacity), "90%median",
/// "100%fastest", "50%own" (each model's own), or a rate in msgs/s ("50000", "50k").
pub fn parse_loads(text: &str) -> Result<Vec<Load>> {
    let one = |item: &str| -> Option<Load> {
        let item = item.trim();
        if let Some((pct, basis)) = item.split_once('%') {
            let f: f64 = pct.trim().parse::<f64>().ok()? / 100.0;
            let basis = match basis.trim() {
                "" | "slowest" => Some(Basis::Slowest),
                "median" => Some(Basis::Median),
                "fastest" => Some(Basis::Fastest),
                "own" => None,
                _ => return None,
            };
            return (f > 0.0 && f <= 2.0).then_some(Load::Fraction(f, basis));
        }
        let (digits, scale) = match item.strip_suffix(['k', 'K']) {
            Some(d) => (d, 1e3),
            None => (item, 1.0),
        };
        let r = digits.parse::<f64>().ok()? * scale;
        (r.is_finite() && (1.0..=1e9).contains(&r)).then_some(Load::Rate(r))
    };
    let loads: Option<Vec<Load>> = text.split(',').map(one).collect();
    match loads {
        Some(l) if !l.is_empty() => Ok(l),
        _ => bail!(
            "--rates takes percentages of a capacity up to 200% (25%, 90%median, 100%fastest, \
             50%own) or rates in msgs/s (50000, 50k), comma-separated; got {text:?}"
        ),
    }
}

impl Measure for Latency {
    fn name(&self) -> &'static str {
        "latency"
    }

    fn flag(&self) -> Option<PointsFlag> {
        Some(PointsFlag {
            long: "rates",
            value_name: "LOAD,...",
            help: "Loads of the latency scenario, the same for every model: 25% (of the slowest \
                   model's capacity), 90%median, 100%fastest, 50%own, or msgs/s (50000, 50k)",
        })
    }

    fn points(&self, profile: Profile, given: Option<&str>) -> Result<Vec<Point>> {
        let slowest = |f| Load::Fraction(f, Some(Basis::Slowest));
        // Above the slowest model's capacity: the models that cannot sustain it show as
        // overloaded there, the others how they behave near their limit.
        let above = Load::Fraction(0.9, Some(Basis::Median));
        let loads = match given {
            Some(text) => parse_loads(text)?,
            None => match profile {
                Profile::Quick => vec![slowest(0.75), above],
                // Three points of 8 to 10 rounds keep the standard run near its 20 minutes:
                // light and heavy load that every model sustains, and one past some.
                Profile::Standard => vec![slowest(0.25), slowest(0.75), above],
                Profile::Full => vec![
                    slowest(0.25),
                    slowest(0.5),
                    slowest(0.75),
                    slowest(0.9),
                    above,
                    Load::Fraction(0.9, Some(Basis::Fastest)),
                ],
            },
        };
        Ok(loads.into_iter().enumerate().map(|(i, l)| l.point(i + 1)).collect())
    }

    fn capacity_point(&self) -> Option<Point> {
        Some(scale::point(CONNECTIONS))
    }

    fn headline(&self) -> Headline {
        crate::measure::P99
    }
}

impl Present for Latency {
    fn question(&self) -> &'static str {
        "What does a user wait under load, and what does each model spend serving it?"
    }

    fn setup(&self) -> String {
        format!(
            "Open loop over {CONNECTIONS} connections, every model offered the same rates: \
             fractions of the slowest model's capacity, and one above it (of the median \
             model's) where the slower ones show as overloaded. Latency counts from the \
             intended send and comes from all rounds' histograms added together."
        )
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            ("offered msgs/s", |c| {
                let rate = c.point.target_rate.map_or("-".into(), thousands);
                if overload(c.point).is_some() { format!("{rate} overloaded") } else { rate }
            }),
            ("achieved", |c| thousands(c.summary.median.msgs_per_sec)),
            ("p50 us", |c| latency(c.point).map_or("-".into(), |l| sig(l.p50))),
            ("p99 us", |c| latency(c.point).map_or("-".into(), |l| sig(l.p99))),
            ("p99.9 us", |c| latency(c.point).map_or("-".into(), |l| sig(l.p999))),
            ("max us", |c| latency(c.point).map_or("-".into(), |l| sig(l.max))),
            ("uncorrected p99.9", |c| uncorrected(c.point).map_or("-".into(), |u| sig(u.p999))),
            ("send lag p99", |c| lag_p99(c.point).map_or("-".into(), sig)),
            col::CPU,
        ]
    }

    /// The first finding: server CPU per message at the highest rate every model sustained.
    fn answer(&self, view: &View<'_>) -> Option<String> {
        headline(view).map(|(_, said)| said)
    }

    /// The verdict is the paired rounds' on CPU per message at that rate, as the answer says.
    fn summary_at<'a>(&self, view: &View<'a>) -> Option<(&'a Point, crate::compare::Figure)> {
        headline(view).map(|(p, _)| (p, crate::compare::CPU_PER_MSG))
    }

    fn findings(&self, view: &View<'_>) -> Vec<String> {
        let Some((said, at_point)) = headline(view).map(|(p, s)| (s, p)) else {
            return vec![NO_FIGURES.into()];
        };
        let mut out = vec![said];
        let points: Vec<&Point> = view.points().collect();
        out.extend(points.iter().filter_map(|p| per_rate(view, p, *p != at_point)));
        for point in &points {
            let rows = at(view, point);
            // An overloaded model's latency is its queue, whatever the generator's lag.
            let lag: Vec<(&str, f64, f64)> = rows
                .iter()
                .filter(|(_, p)| overload(p).is_none())
                .filter_map(|(n, p)| Some((*n, lag_p99(p)?, latency(p)?.p99)))
                .collect();
            out.extend(lag_finding(&rate_phrase(&rows, point), &lag));
            // Where the lag makes the latency, the gap between the figures from the intended
            // and the actual send is the generator's lateness too, not a server's queue.
            let queued: Vec<(&str, f64, f64)> = rows
                .iter()
                .filter(|(n, p)| {
                    overload(p).is_none() && !lag.iter().any(|l| l.0 == *n && lag_made(l))
                })
                .filter_map(|(n, p)| Some((*n, latency(p)?.p999, uncorrected(p)?.p999)))
                .collect();
            out.extend(queueing_finding(&rate_phrase(&rows, point), &queued));
        }
        out.extend(open_loop_pacing(view));
        out
    }

    fn charts(&self, view: &View<'_>, charts: &mut Charts) -> Result<()> {
        for (i, point) in view.points().enumerate() {
            let rows = at(view, point);
            let lines: Vec<(String, Vec<[f64; 2]>)> = rows
                .iter()
                .filter_map(|(n, p)| {
                    // Named as the tables name it, with its workers.
                    let model = view.results.models.iter().find(|m| m.name == *n)?;
                    let label = model.label(p.server.as_ref().and_then(|s| s.workers));
                    let name = match overload(p) {
                        Some(_) => format!("{label} (overloaded)"),
                        None => label,
                    };
                    Some((name, spectrum(p)?))
                })
                .collect();
            let title = format!("Latency by percentile at {}", rate_phrase(&rows, point));
            let file = format!("latency-nines-{}.svg", i + 1);
            charts.nines(self.name(), &file, &title, &lines)?;
        }
        Ok(())
    }
}

/// The points of a model's line on the nines chart: the merged spectrum and the largest
/// sample at the rank of the last one; for an older file without merged histograms, the
/// medians of the rounds' percentiles.
fn spectrum(p: &crate::results::PointResults) -> Option<Vec<[f64; 2]>> {
    let Some(m) = &p.merged else {
        let l = p.summary.as_ref()?.median.latency_us;
        let q = [0.5, 0.9, 0.99, 0.999, 0.9999];
        return Some(
            q.into_iter()
                .zip([l.p50, l.p90, l.p99, l.p999, l.p9999])
                .map(|(q, v)| [q, v])
                .collect(),
        );
    };
    let mut dots = m.spectrum.clone();
    let last = 1.0 - 1.0 / m.count.max(1) as f64;
    if dots.last().is_some_and(|d| d[0] < last) {
        dots.push([last, m.latency_us.max]);
    }
    Some(dots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_fractions_of_a_basis_and_fixed_rates_and_refuse_the_rest() {
        let loads = parse_loads("25%, 90%median,100%fastest,50%own,50k,1200").unwrap();
        assert_eq!(
            loads,
            [
                Load::Fraction(0.25, Some(Basis::Slowest)),
                Load::Fraction(0.9, Some(Basis::Median)),
                Load::Fraction(1.0, Some(Basis::Fastest)),
                Load::Fraction(0.5, None),
                Load::Rate(50_000.0),
                Load::Rate(1_200.0),
            ]
        );
        for bad in ["", "0%", "300%", "25%slow", "-5", "abc", "25,,50", "1e12"] {
            let e = parse_loads(bad).unwrap_err().to_string();
            assert!(e.starts_with("--rates takes") && !e.contains('\n'), "{bad}: {e}");
        }
        let points = Latency.points(Profile::Standard, None).unwrap();
        assert_eq!(points.len(), 3);
        assert!(points[..2].iter().all(|p| p.rate_basis == Some(Basis::Slowest)));
        assert_eq!(points[2].rate_basis, Some(Basis::Median));
        assert_eq!(points[1].label, "75% of slowest");
    }
}
