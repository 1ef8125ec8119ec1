//! The chart that sums a run up: each model's server CPU per message (netperf's service
//! demand) at one load every model sustained, with the interval of its median, as horizontal
//! bars sorted least first. The report shows it in its summary section.
//!
//! Which load: among every scenario's points, those where every model was offered the same
//! fixed open-loop rate and sustained it (achieved within [`SUSTAINED`] of it, generator not
//! saturated); the highest such rate, since a busier server shows its cost per message with
//! the least idle overhead. A run without one falls back to the scale scenario's lowest
//! connection count, a closed loop where every model achieves about the same rate, and the
//! chart's title says so.

use anyhow::Result;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

use super::axis::{above, log_range, log_ticks, logged, wants_log};
use super::legend::{Area, SIZE};
use super::{Charts, compact};
use crate::compare::{self, CPU_PER_MSG, Interval};
use crate::point::Point;
use crate::results::{Results, measured};
use crate::text::{sig, thousands};

/// The name the summary chart is registered under (its [`Chart::scenario`](super::Chart::scenario)); its file is
/// `charts/summary.svg`.
pub const SUMMARY: &str = "summary";

/// How far below the offered rate a model may fall and still have sustained it: open loop
/// sends on a schedule, so a server that keeps up echoes all of it, less what the window's
/// edges cut.
pub const SUSTAINED: f64 = 0.05;

/// What the bars' order is, and is not.
const ORDER: &str = "Least first; the paired comparisons, not this order, say which differ.";

/// The scenario whose lowest point is the fallback: one connection, closed loop.
const FALLBACK: &str = "scale";

/// What the chooser reads of one planned point: for each model with figures there, its name,
/// the rate it achieved and whether the generator was saturated.
#[derive(Debug)]
pub struct Candidate<'a> {
    /// The point.
    pub point: &'a Point,
    /// The rate every model was offered: the point's fixed rate, or the common rate the run
    /// chose for a point whose rate is a fraction of one capacity shared by all (latency's).
    pub offered: Option<f64>,
    /// Each model's name, achieved msgs/s and saturation.
    pub models: Vec<(&'a str, f64, bool)>,
}

/// The point the summary chart shows, by its place among the candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// A fixed rate every model was offered and sustained.
    Common(usize),
    /// No such rate: the scale scenario's lowest point.
    Fallback(usize),
}

/// Chooses the summary's point. A common rate must have been run by as many models as any
/// point of the run (a rate only a few models ran, udp's, sums nothing up) and sustained by
/// every one of them; the highest wins. Else the fallback, if the run has it.
pub fn choose(candidates: &[Candidate<'_>]) -> Option<Choice> {
    let full = candidates.iter().map(|c| c.models.len()).max()?;
    let sustained = |c: &Candidate<'_>| {
        let rate = c.offered?;
        let all = c.models.len() == full
            && full >= 2
            && c.point.stops.is_none()
            && c.models.iter().all(|&(_, got, sat)| !sat && got >= rate * (1.0 - SUSTAINED));
        all.then_some(rate)
    };
    let mut best: Option<(usize, f64)> = None;
    for (i, c) in candidates.iter().enumerate() {
        if let Some(rate) = sustained(c)
            && best.is_none_or(|(_, b)| rate > b)
        {
            best = Some((i, rate));
        }
    }
    if let Some((i, _)) = best {
        return Some(Choice::Common(i));
    }
    let fallback = candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| c.point.scenario == FALLBACK && !c.models.is_empty())
        .min_by(|(_, a), (_, b)| a.point.x.total_cmp(&b.point.x));
    fallback.map(|(i, _)| Choice::Fallback(i))
}

/// Every planned point with what the chooser reads of it.
fn candidates(results: &Results) -> Vec<Candidate<'_>> {
    let of = |point: &Point| {
        let models = results.models.iter().filter_map(|m| {
            let p = m.scenario(&point.scenario)?.points.iter().find(|p| &p.point == point)?;
            let s = p.summary.as_ref()?;
            Some((m.name.as_str(), s.median.msgs_per_sec, s.saturated))
        });
        models.collect()
    };
    // A common rate is known only once the run chose it: every model's target rate then.
    let common = |point: &Point| {
        point.rate.or_else(|| {
            point.rate_basis?;
            let targets = results.models.iter().filter_map(|m| {
                let s = m.scenario(&point.scenario)?;
                s.points.iter().find(|p| &p.point == point)?.target_rate
            });
            targets.reduce(|a, b| if (a - b).abs() <= 1e-6 * a.abs() { a } else { f64::NAN })
        })
    };
    let candidate = |point| Candidate { point, offered: common(point), models: of(point) };
    results.plan.points.iter().map(candidate).collect()
}

/// Each model's server CPU per message at `point`: its rounds' figures (a model measured
/// before rounds were numbered: its measured repeats'), the median and its interval.
fn intervals<'a>(results: &'a Results, point: &Point) -> Vec<(&'a str, Interval)> {
    compare::rounds(results, point, &CPU_PER_MSG)
        .into_iter()
        .filter_map(|(name, rounds)| {
            let mut values: Vec<f64> = rounds.iter().map(|&(_, v)| v).collect();
            if values.is_empty() {
                let m = results.models.iter().find(|m| m.name == name)?;
                let p = m.scenario(&point.scenario)?.points.iter().find(|p| &p.point == point)?;
                let repeats = measured(&p.repeats).filter_map(|r| r.metrics.as_ref());
                values = repeats.filter_map(|m| m.server_cpu_per_msg_us).collect();
            }
            Some((name, compare::interval(&values)?))
        })
        .collect()
}

impl Charts {
    /// Draws `summary.svg` from `results` and registers it as [`SUMMARY`]; nothing when the
    /// run has no point to show.
    pub fn summary(&mut self, results: &Results) -> Result<()> {
        let candidates = candidates(results);
        let (chosen, fallback) = match choose(&candidates) {
            Some(Choice::Common(i)) => (&candidates[i], false),
            Some(Choice::Fallback(i)) => (&candidates[i], true),
            None => return Ok(()),
        };
        let point = chosen.point;
        let achieved = chosen.models.iter().map(|&(_, got, _)| got);
        let achieved = achieved.fold((f64::MAX, f64::MIN), |(l, h), v| (l.min(v), h.max(v)));
        let mut bars = intervals(results, point);
        if bars.is_empty() {
            return Ok(());
        }
        bars.sort_by(|a, b| a.1.ratio.total_cmp(&b.1.ratio));
        let title = match (fallback, chosen.offered) {
            (false, Some(rate)) => format!(
                "Server CPU per message at {} msgs/s, offered to every model ({}, {})",
                thousands(rate),
                point.scenario,
                point.label
            ),
            _ => format!(
                "Server CPU per message at {} {} (fallback: no fixed rate every model sustained)",
                point.scenario, point.label
            ),
        };
        let file = "summary.svg";
        let notes = notes(point, fallback, achieved, &bars);
        let drawn = draw(self, &point.scenario, file, &title, &notes, &bars);
        let what = format!("{title}. {}", notes.join(" "));
        self.add(SUMMARY, file, &what, drawn)?;
        Ok(())
    }
}

/// The lines under the title: the load, and what the whiskers are with the confidence they
/// reach.
fn notes(
    point: &Point,
    fallback: bool,
    (slowest, fastest): (f64, f64),
    bars: &[(&str, Interval)],
) -> Vec<String> {
    let conns = match point.connections {
        1 => "1 connection".to_string(),
        n => format!("{} connections", thousands(f64::from(n))),
    };
    let load = if fallback {
        format!(
            "Closed loop, {conns}: each model at its own rate, here {} to {} msgs/s.",
            thousands(slowest),
            thousands(fastest)
        )
    } else {
        format!(
            "Open loop, {conns}: every model kept up (achieved {} to {} msgs/s), generator not \
             saturated.",
            thousands(slowest),
            thousands(fastest)
        )
    };
    let conf = |f: fn(f64, f64) -> f64| bars.iter().map(|(_, i)| i.confidence).reduce(f);
    let rounds = |f: fn(usize, usize) -> usize| bars.iter().map(|(_, i)| i.rounds).reduce(f);
    let (lo, hi) = (conf(f64::min).unwrap_or(0.0), conf(f64::max).unwrap_or(0.0));
    let (fewest, most) = (rounds(usize::min).unwrap_or(0), rounds(usize::max).unwrap_or(0));
    let pct = |c: f64| format!("{:.1}%", c * 100.0);
    let confidence =
        if pct(lo) == pct(hi) { pct(lo) } else { format!("{} to {}", pct(lo), pct(hi)) };
    let count = if fewest == most { fewest.to_string() } else { format!("{fewest} to {most}") };
    let mut whiskers = format!(
        "Bar: median over {count} rounds. Whiskers: its order-statistic interval \
         (no distribution assumed), {confidence} confidence"
    );
    if lo < compare::CONFIDENCE {
        whiskers.push_str(&format!(
            "; fewer rounds than {} needs, so it is min to max",
            pct(compare::CONFIDENCE)
        ));
    }
    whiskers.push('.');
    vec![load, whiskers, ORDER.to_string()]
}

/// What the bars are drawn from.
struct Row<'a> {
    charts: &'a Charts,
    scenario: &'a str,
    bars: &'a [(&'a str, Interval)],
}

fn draw(
    charts: &Charts,
    scenario: &str,
    file: &str,
    title: &str,
    notes: &[String],
    bars: &[(&str, Interval)],
) -> Result<bool> {
    let path = charts.dir.join(file);
    let root = SVGBackend::new(&path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut body = root.titled(title, ("sans-serif", 18))?;
    for line in notes {
        body = body.titled(line, ("sans-serif", 13))?;
    }
    let (lo, hi) =
        bars.iter().fold((f64::MAX, f64::MIN), |(l, h), (_, i)| (l.min(i.low), h.max(i.high)));
    let log = wants_log(bars.iter().flat_map(|(_, i)| [i.low, i.ratio, i.high]));
    let on = Row { charts, scenario, bars };
    if log {
        // Room right of the widest whisker for its figures.
        let r = log_range(lo, hi, 2.5);
        let ticks = log_ticks(r.start, r.end);
        let axis = (r.start, r.end);
        draw_bars(&on, &body, r.log_scale().with_key_points(ticks), axis, true)?;
    } else {
        let top = hi * 1.3;
        draw_bars(&on, &body, 0.0..top, (0.0, top), false)?;
    }
    root.present()?;
    Ok(true)
}

fn draw_bars<X>(on: &Row<'_>, area: &Area<'_>, x: X, axis: (f64, f64), log: bool) -> Result<()>
where
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    let Row { charts, scenario, bars } = *on;
    let (base, _) = axis;
    let n = bars.len();
    // The least is drawn on top: plotters' y grows upwards.
    let row = |i: usize| (n - 1 - i) as f64;
    let names: Vec<String> = bars.iter().map(|(m, _)| charts.label(scenario, m)).collect();
    let mut chart = ChartBuilder::on(area)
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(190)
        .build_cartesian_2d(x, -0.5..n as f64 - 0.5)?;
    let fy = |y: &f64| {
        let i = y.round();
        let on = (y - i).abs() < 0.01 && i >= 0.0 && (i as usize) < n;
        if on { names[n - 1 - i as usize].clone() } else { String::new() }
    };
    let desc = "server CPU per message (us)";
    chart
        .configure_mesh()
        .disable_y_mesh()
        .light_line_style(WHITE)
        .x_desc(if log { logged(desc) } else { desc.to_string() })
        .y_labels(2 * n + 1)
        .y_label_formatter(&fy)
        .x_label_formatter(&|x| compact(*x))
        .draw()?;
    for (i, (model, iv)) in bars.iter().enumerate() {
        let c = charts.colour(model);
        let y = row(i);
        chart
            .draw_series([Rectangle::new([(base, y - 0.35), (iv.ratio, y + 0.35)], c.filled())])?;
        let whisker =
            ErrorBar::new_horizontal(y, iv.low, iv.ratio, iv.high, BLACK.stroke_width(1), 8);
        chart.draw_series([whisker])?;
        let font = ("sans-serif", 12).into_font().color(&BLACK);
        let label = format!("{} ({} to {})", sig(iv.ratio), sig(iv.low), sig(iv.high));
        let at = above(iv.high, 0.01, axis, log);
        chart.draw_series([Text::new(label, (at, y + 0.15), font)])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_rate(scenario: &str, rate: Option<f64>, x: f64) -> Point {
        let mut p = Point::closed(scenario, 50, 64);
        (p.rate, p.x) = (rate, x);
        p
    }

    /// Every model at `got` times the offered rate (or `got` msgs/s in closed loop).
    fn all<'a>(p: &'a Point, got: f64) -> Candidate<'a> {
        let rate = p.rate.map_or(got, |r| r * got);
        Candidate {
            point: p,
            offered: p.rate,
            models: vec![("mio", rate, false), ("fork", rate, false)],
        }
    }

    #[test]
    fn the_highest_common_rate_every_model_sustained_wins_over_the_fallback() {
        let scale = at_rate("scale", None, 1.0);
        let low = at_rate("latency", Some(10_000.0), 10_000.0);
        let high = at_rate("latency", Some(50_000.0), 50_000.0);
        let c = [all(&scale, 15_000.0), all(&low, 1.0), all(&high, 0.98)];
        assert_eq!(choose(&c), Some(Choice::Common(2)));
    }

    #[test]
    fn a_rate_the_run_chose_for_every_model_counts_as_common() {
        // Latency's points have no fixed rate: a fraction of the slowest model's capacity,
        // known only once the run measured it, and offered to every model alike.
        let scale = at_rate("scale", None, 1.0);
        let chosen = at_rate("latency", None, 1.0);
        let mut c = [all(&scale, 15_000.0), all(&chosen, 20_000.0)];
        assert_eq!(choose(&c), Some(Choice::Fallback(0)), "no rate known: the fallback");
        c[1].offered = Some(20_000.0);
        assert_eq!(choose(&c), Some(Choice::Common(1)));
    }

    #[test]
    fn a_model_that_did_not_sustain_the_rate_excludes_that_point() {
        let scale = at_rate("scale", None, 1.0);
        let low = at_rate("latency", Some(10_000.0), 10_000.0);
        let high = at_rate("latency", Some(50_000.0), 50_000.0);
        // fork fell 10% short at the higher rate: the lower one is shown.
        let mut short = all(&high, 1.0);
        short.models[1].1 = 45_000.0;
        let c = [all(&scale, 15_000.0), all(&low, 1.0), short];
        assert_eq!(choose(&c), Some(Choice::Common(1)));
        // A saturated generator excludes it too, however much was achieved.
        let mut saturated = all(&high, 1.0);
        saturated.models[0].2 = true;
        let c = [all(&scale, 15_000.0), all(&low, 1.0), saturated];
        assert_eq!(choose(&c), Some(Choice::Common(1)));
    }

    #[test]
    fn without_a_common_rate_the_scale_scenarios_lowest_point_is_the_fallback() {
        let ten = at_rate("scale", None, 10.0);
        let one = at_rate("scale", None, 1.0);
        // Latency today: each model at a fraction of its own capacity, no fixed rate.
        let own = at_rate("latency", None, 0.75);
        // A fixed rate that only some of the models ran (udp's) sums nothing up.
        let udp = at_rate("udp", Some(10_000.0), 10_000.0);
        let few =
            Candidate { point: &udp, offered: udp.rate, models: vec![("mio", 10_000.0, false)] };
        let c = [all(&ten, 250_000.0), all(&one, 15_000.0), all(&own, 60_000.0), few];
        assert_eq!(choose(&c), Some(Choice::Fallback(1)));
        // Nor does a rate every model fell short of: still the fallback.
        let missed = at_rate("latency", Some(1e6), 1e6);
        let c = [all(&one, 15_000.0), all(&missed, 0.5)];
        assert_eq!(choose(&c), Some(Choice::Fallback(0)));
        assert_eq!(choose(&[all(&own, 60_000.0)]), None);
    }
}
