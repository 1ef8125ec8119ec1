//! stall: "What does a benchmark miss when the server stalls?" The server is stopped with
//! SIGSTOP for 100 ms of every second of the run (a garbage-collection pause, a page-fault
//! storm, a noisy neighbour), and measured three ways: a closed loop, and an open loop whose
//! latency is counted from the actual send (uncorrected) and from the intended send time
//! (corrected for coordinated omission).
//!
//! A closed-loop client waits for each echo before sending the next message, so while the
//! server is stopped it sends nothing: the stall costs it one slow sample per connection, and
//! its percentiles hardly move. The users of a real service keep arriving during a stall; an
//! open loop keeps sending on schedule too, so every message due during the stall waits, and
//! latency from the intended send time shows it. This is about the measurement, not about a
//! model, so one representative model (mio) shows it.

use std::time::Duration;

use anyhow::Result;

use crate::charts::{Bars, Charts};
use crate::findings::NO_FIGURES;
use crate::measure::{Headline, Measure};
use crate::plan::{Point, Profile, SMALL_MESSAGE, Stops};
use crate::present::{Column, Present, View, col};
use crate::registry::Model;
use crate::results::{Percentiles, Summary};
use crate::text::{format_duration, sig, thousands};

/// Connections of both loads.
pub const CONNECTIONS: u32 = 10;

/// The open loop's total rate: well below any model's capacity at 10 connections, so that the
/// queue a stall leaves drains before the next one.
pub const RATE: f64 = 10_000.0;

/// How long each stop lasts.
pub const STALL: Duration = Duration::from_millis(100);

/// A stop every this long.
pub const PERIOD: Duration = Duration::from_secs(1);

/// The stall scenario.
#[derive(Debug)]
pub struct Stall;

/// The stop schedule: the first stop 250 ms into the measured window, then one per period,
/// so that a window of N seconds holds N stops whatever the warm-up.
fn stops(warmup: Duration) -> Stops {
    Stops { after: warmup + Duration::from_millis(250), length: STALL, every: Some(PERIOD) }
}

fn point(open: bool, profile: Profile) -> Point {
    let timing = profile.timing();
    // Two seconds (two stalls) in every profile but the full one: one stall per window would
    // make p99.9 hinge on where it fell.
    let duration = timing.duration.max(Duration::from_secs(2));
    let p = Point::closed("stall", CONNECTIONS, SMALL_MESSAGE);
    // Standard: two repeats; a stall costs the open loop's p99.9 a hundredfold, far beyond
    // the difference between two runs.
    let repeats = (profile == Profile::Standard).then_some(2);
    let p = Point { stops: Some(stops(timing.warmup)), duration: Some(duration), repeats, ..p };
    if open {
        Point { rate: Some(RATE), ..p }.named("open loop", 1.0)
    } else {
        p.named("closed loop", 0.0)
    }
}

/// The closed loop's and the open loop's summaries.
fn both<'a>(view: &View<'a>) -> Option<(&'a str, &'a Summary, &'a Summary, Stops)> {
    let points: Vec<&Point> = view.points().collect();
    let closed = points.iter().find(|p| p.rate.is_none())?;
    let open = points.iter().find(|p| p.rate.is_some())?;
    view.runs().find_map(|(m, s)| {
        Some((m.name.as_str(), s.summary_of(closed)?, s.summary_of(open)?, open.stops?))
    })
}

/// A percentile of the open loop measured from the actual send ("-" for the closed loop).
fn uncorrected(c: &crate::present::Cell<'_>, f: fn(&Percentiles) -> f64) -> String {
    c.summary.median.latency_us_uncorrected.map_or("-".into(), |u| sig(f(&u)))
}

fn ms(us: f64) -> String {
    format!("{} ms", sig(us / 1000.0))
}

impl Measure for Stall {
    fn name(&self) -> &'static str {
        "stall"
    }

    fn runs(&self, model: &Model) -> bool {
        model.name == "mio"
    }

    fn points(&self, profile: Profile, _given: Option<&str>) -> Result<Vec<Point>> {
        Ok(vec![point(false, profile), point(true, profile)])
    }

    fn headline(&self) -> Headline {
        Headline {
            name: "p99.9",
            figure: |m| m.latency_us.p999,
            higher_is_better: false,
            better: "faster",
            worse: "slower",
        }
    }
}

impl Present for Stall {
    fn question(&self) -> &'static str {
        "What does a benchmark miss when the server stalls?"
    }

    fn setup(&self) -> String {
        format!(
            "The server's whole process tree is stopped (SIGSTOP) for {} of every {} of the run \
             and then resumed (SIGCONT). {CONNECTIONS} connections of {SMALL_MESSAGE}-byte \
             messages, once as a closed loop and once as an open loop at {} msgs/s; the open \
             loop's latency is read both from each message's actual send and from its intended \
             send time.",
            format_duration(STALL),
            format_duration(PERIOD),
            thousands(RATE)
        )
    }

    fn models_note(&self) -> Option<&'static str> {
        Some(
            "mio only: the lesson is about the measurement, not the model, so one \
             representative shows it.",
        )
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            ("achieved msgs/s", |c| thousands(c.summary.median.msgs_per_sec)),
            col::P50,
            col::P99,
            ("p99.9 us", |c| sig(c.summary.median.latency_us.p999)),
            ("max us", |c| sig(c.summary.median.latency_us.max)),
            ("uncorrected p99 us", |c| uncorrected(c, |p| p.p99)),
            ("uncorrected p99.9 us", |c| uncorrected(c, |p| p.p999)),
            ("stops", |c| {
                let n: Vec<String> =
                    c.point.repeats.iter().filter_map(|r| r.stops).map(|n| n.to_string()).collect();
                if n.is_empty() { "-".into() } else { n.join(", ") }
            }),
        ]
    }

    fn findings(&self, view: &View<'_>) -> Vec<String> {
        let Some((model, closed, open, stops)) = both(view) else {
            return vec![NO_FIGURES.into()];
        };
        let (c, o) = (&closed.median.latency_us, &open.median.latency_us);
        let stall_us = stops.length.as_secs_f64() * 1e6;
        let mut out = vec![format!(
            "With {model} stopped for {} of every {}, the closed loop reported p99 {} and p99.9 \
             {}; the open loop, measured from each message's intended send time, p99 {} and \
             p99.9 {}. The stall lasted {}: {}.",
            format_duration(stops.length),
            format_duration(stops.every.unwrap_or(stops.length)),
            ms(c.p99),
            ms(c.p999),
            ms(o.p99),
            ms(o.p999),
            format_duration(stops.length),
            verdict(c.p999, o.p999, stall_us),
        )];
        out.push(
            "Why: a closed-loop client sends its next message only after the last echo came \
             back, so while the server is stopped it sends nothing, and each connection records \
             one slow sample per stall among thousands of fast ones. Real clients keep arriving \
             during a stall; every message due meanwhile waits. Measuring from the intended \
             send time counts that wait (the correction for coordinated omission)."
                .into(),
        );
        if let Some(u) = open.median.latency_us_uncorrected {
            let same = u.p999 >= 0.5 * o.p999;
            out.push(if same {
                format!(
                    "Measured from the actual send, the open loop read about the same (p99.9 \
                     {}): loadgen kept sending on schedule through the stall (the kernel \
                     queued the bytes for the stopped server), so the sends were not late and \
                     the correction changed little. It matters when the generator itself falls \
                     behind.",
                    ms(u.p999)
                )
            } else {
                format!(
                    "Measured from the actual send, the open loop read only p99.9 {}: its sends \
                     were themselves delayed by the stall, and a latency counted from a late \
                     send leaves the delay out.",
                    ms(u.p999)
                )
            });
        }
        let share = stops.length.as_secs_f64() / stops.every.unwrap_or(PERIOD).as_secs_f64();
        out.push(format!(
            "The server was stopped {:.0}% of the time, so about {:.0}% of the open loop's \
             messages met a stall: its p90 was {} and its median {}, against the closed loop's \
             {} and {}.",
            share * 100.0,
            share * 100.0,
            ms(o.p90),
            ms(o.p50),
            ms(c.p90),
            ms(c.p50)
        ));
        out
    }

    fn charts(&self, view: &View<'_>, charts: &mut Charts) -> Result<()> {
        let Some((model, closed, open, stops)) = both(view) else { return Ok(()) };
        let unc = open.median.latency_us_uncorrected.unwrap_or_default();
        let groups =
            ["closed loop", "open loop, from actual send", "open loop, from intended send"];
        let (c, o) = (closed.median.latency_us, open.median.latency_us);
        let series: Vec<Bars> = vec![
            ("p99".into(), vec![c.p99 / 1e3, unc.p99 / 1e3, o.p99 / 1e3]),
            ("p99.9".into(), vec![c.p999 / 1e3, unc.p999 / 1e3, o.p999 / 1e3]),
        ];
        let t = format!(
            "{model} stopped {} every {}: what each measurement saw",
            format_duration(stops.length),
            format_duration(stops.every.unwrap_or(PERIOD))
        );
        let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        charts.categories(
            self.name(),
            "stall-percentiles.svg",
            &t,
            &groups,
            "latency (ms)",
            &series,
        )
    }
}

/// Which measurement told the truth, from the figures: the open loop's p99.9 against the
/// stall's length and against the closed loop's.
fn verdict(closed: f64, open: f64, stall: f64) -> String {
    if open >= 0.5 * stall && closed < 0.5 * stall {
        format!(
            "only the open loop's p99.9 comes near it ({:.0}% of the stall; the closed loop's is \
             {:.1}%)",
            100.0 * open / stall,
            100.0 * closed / stall
        )
    } else if open >= 0.5 * stall {
        "both loops' p99.9 show it here: with this few messages per stall the closed loop's \
         slow samples reached its 99.9th percentile too"
            .into()
    } else if closed >= 0.5 * stall {
        format!(
            "here the closed loop's p99.9 shows it ({:.0}% of the stall) and the open loop's \
             does not ({:.0}%): an open loop this slow sends too few messages during a stall \
             for them to reach its 99.9th percentile",
            100.0 * closed / stall,
            100.0 * open / stall
        )
    } else {
        format!(
            "neither p99.9 comes near it here (the open loop's is {:.0}% of the stall): the run \
             was too short or too slow for the stalls to reach its 99.9th percentile",
            100.0 * open / stall
        )
    }
}
