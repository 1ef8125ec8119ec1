//! latency: "What does a user wait under load?" An open loop at fixed fractions of each
//! model's own closed-loop capacity, with latency measured from the intended send time.

use anyhow::{Result, bail};

use super::scale::{self, LATENCY_CONNECTIONS};
use crate::charts::{Charts, Dot, Series};
use crate::findings::{NO_FIGURES, open_loop_pacing, ranking};
use crate::measure::{Headline, Measure, PointsFlag};
use crate::plan::{Point, Profile, SMALL_MESSAGE};
use crate::present::{Column, Present, View, col};
use crate::results::{ModelResults, Percentiles, Summary};
use crate::text::{sig, thousands, times};

/// Connections of the open loop: scale's [`LATENCY_CONNECTIONS`], whose throughput is the
/// capacity the fractions refer to.
pub const CONNECTIONS: u32 = LATENCY_CONNECTIONS;

/// The latency scenario.
#[derive(Debug)]
pub struct Latency;

fn point(fraction: f64) -> Point {
    let p = Point::closed("latency", CONNECTIONS, SMALL_MESSAGE);
    Point { rate_fraction: Some(fraction), ..p }
        .named(format!("{:.0}% load", fraction * 100.0), fraction)
}

impl Measure for Latency {
    fn name(&self) -> &'static str {
        "latency"
    }

    fn flag(&self) -> Option<PointsFlag> {
        Some(PointsFlag {
            long: "fractions",
            value_name: "F,F,...",
            help: "Fractions of capacity of the latency scenario, comma-separated (e.g. 0.25,0.5)",
        })
    }

    fn points(&self, profile: Profile, given: Option<&str>) -> Result<Vec<Point>> {
        let fractions = match given {
            Some(text) => {
                let f: Result<Vec<f64>, _> = text.split(',').map(|v| v.trim().parse()).collect();
                match f {
                    Ok(f) if f.iter().all(|&x| x > 0.0 && x <= 2.0) => f,
                    _ => bail!("--fractions must lie in (0, 2], e.g. 0.25,0.5,0.75"),
                }
            }
            None => match profile {
                Profile::Quick => vec![0.25, 0.75],
                // A quarter and three quarters in the standard profile (8 paired rounds a
                // point): light and heavy load; the full profile fills in between.
                Profile::Standard => vec![0.25, 0.75],
                Profile::Full => vec![0.25, 0.5, 0.75, 0.9],
            },
        };
        Ok(fractions.into_iter().map(point).collect())
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
        "What does a user wait under load?"
    }

    fn setup(&self) -> String {
        format!(
            "Open loop over {CONNECTIONS} connections at fixed fractions of each model's \
             closed-loop capacity at {CONNECTIONS} connections. Latency is measured from the \
             intended send time (corrected for coordinated omission)."
        )
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            ("target msgs/s", |c| c.point.target_rate.map_or("-".into(), thousands)),
            ("achieved", |c| thousands(c.summary.median.msgs_per_sec)),
            col::P50,
            col::P99,
            ("p99.9 us", |c| sig(c.summary.median.latency_us.p999)),
            ("max us", |c| sig(c.summary.median.latency_us.max)),
            ("uncorrected p99.9", |c| {
                c.summary.median.latency_us_uncorrected.map_or("-".into(), |u| sig(u.p999))
            }),
            col::UTIL,
        ]
    }

    fn findings(&self, view: &View<'_>) -> Vec<String> {
        let at: Vec<(&str, &Point, &Summary, Option<f64>)> = view
            .runs()
            .filter_map(|(m, _)| {
                let (p, s, target) = highest_load(m)?;
                Some((m.name.as_str(), p, s, target))
            })
            .collect();
        let Some(&(_, point, _, _)) = at.first() else {
            return vec![NO_FIGURES.into()];
        };
        let mut out = vec![format!(
            "At {} of each model's own capacity, p99 latency, lowest first, each against the \
             first in paired rounds: {}. Each model runs at its own rate here, so this compares \
             how gracefully each behaves near its limit.",
            point.label.replace(" load", ""),
            ranking(view, point, &crate::compare::P99, &|v| format!("{} us", sig(v)))
        )];
        for &(name, _, s, target) in &at {
            if let Some(target) = target
                && s.median.msgs_per_sec < 0.95 * target
            {
                out.push(format!(
                    "{name} achieved only {:.0}% of its target rate ({} of {} msgs/s): its \
                     capacity under an open loop is lower than the closed-loop figure it was \
                     derived from.",
                    100.0 * s.median.msgs_per_sec / target,
                    thousands(s.median.msgs_per_sec),
                    thousands(target)
                ));
            }
            if let Some(u) = s.median.latency_us_uncorrected {
                let c = s.median.latency_us.p999;
                if u.p999 > 0.0 && c / u.p999 >= 2.0 {
                    out.push(format!(
                        "{name}'s p99.9 measured from the intended send time is {} us, {} the \
                         {} us measured from the actual send: queueing that a closed loop would \
                         hide.",
                        sig(c),
                        times(c / u.p999),
                        sig(u.p999)
                    ));
                }
            }
        }
        out.extend(open_loop_pacing(view));
        out
    }

    fn charts(&self, view: &View<'_>, charts: &mut Charts) -> Result<()> {
        let mut fraction = 0.0;
        let mut series: Vec<Series> = Vec::new();
        for (m, s) in view.runs() {
            let Some((point, _, _)) = highest_load(m) else { continue };
            let Some(p) = s.points.iter().find(|p| &p.point == point) else { continue };
            fraction = point.rate_fraction.unwrap_or(0.0);
            let percentiles = |l: &Percentiles| [l.p50, l.p90, l.p99, l.p999, l.p9999, l.max];
            let each: Vec<[f64; 6]> = p
                .repeats
                .iter()
                .filter_map(|r| Some(percentiles(&r.metrics.as_ref()?.latency_us)))
                .collect();
            // Percentile i along x; a log axis needs every value above zero.
            let dots = (0..6)
                .filter_map(|i| Dot::of(i as f64, each.iter().map(|v| v[i].max(0.1)).collect()))
                .collect();
            series.push((m.name.clone(), dots));
        }
        let t = format!("Latency percentiles at {:.0}% of each model's capacity", fraction * 100.0);
        charts.spectrum(self.name(), "latency-spectrum.svg", &t, &series)
    }
}

/// A model's latency point at the highest load fraction it completed, with its target rate.
fn highest_load(m: &ModelResults) -> Option<(&Point, &Summary, Option<f64>)> {
    let s = m.scenario("latency")?;
    s.points
        .iter()
        .filter_map(|p| Some((&p.point, p.summary.as_ref()?, p.target_rate)))
        .max_by(|a, b| a.0.x.total_cmp(&b.0.x))
}
