//! backlog: "What happens when connections arrive faster than the server accepts them?" The
//! server's whole tree is stopped (SIGSTOP), a burst of five times the listen backlog opens
//! its connections at once (`loadgen --burst`), and the server is resumed (SIGCONT) after a
//! fixed pause; every connection's connect latency and outcome is recorded, and the kernel's
//! own counters of dropped handshakes are read before and after.
//!
//! The kernel completes handshakes for a listener by itself, with no help from the process,
//! and queues them until the process accepts: up to the backlog (`listen(fd, 16)` holds 17).
//! A SYN that finds the queue full is dropped, silently (`ListenOverflows`, `ListenDrops`),
//! and the client retransmits it: after 1 s, then, on kernels since 6.5, every second for the
//! first `net.ipv4.tcp_syn_linear_timeouts` (4) tries, and only then doubling (older kernels
//! double from the first: retries at 1 s, 3 s and 7 s). So a connect either completes at once or waits a
//! whole retransmission: the connect-latency histogram has steps, not a slope.
//! With the default backlog the same burst all connects at once and only the echoes wait for
//! the server. How fast each model drains its queue once resumed decides how many wait, so
//! every model runs it.

use std::time::Duration;

use anyhow::Result;

use crate::charts::{Charts, Dot, Series};
use crate::findings::NO_FIGURES;
use crate::measure::{Headline, Measure};
use crate::plan::{Point, Profile, SMALL_MESSAGE, Stops};
use crate::present::{Column, Present, View};
use crate::results::{PointResults, ScenarioResults};
use crate::text::{format_duration, grouped, join, sig};

/// The small listen backlog.
pub const BACKLOG: u32 = 16;

/// Connections opened at once: five times the small backlog.
pub const BURST: u32 = 5 * BACKLOG;

/// How long the server stays stopped from before the burst: past the first SYN
/// retransmission (1 s), so that it too finds the queue full and the connections that missed
/// the queue wait for the next one (2 s with linear SYN timeouts, 3 s without), well after the
/// server is running again.
pub const PAUSE: Duration = Duration::from_millis(1200);

/// The bound on each connect and each echo (`loadgen --timeout`): past the 7 s retransmission.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The counters the kernel keeps of handshakes a full queue turned away.
const COUNTERS: [&str; 2] = ["TcpExt:ListenOverflows", "TcpExt:ListenDrops"];

/// Histogram bins of the connect-latency chart.
const BIN: f64 = 0.1;

/// The backlog scenario.
#[derive(Debug)]
pub struct Backlog;

fn point(small: bool) -> Point {
    let p = Point::closed("backlog", BURST, SMALL_MESSAGE);
    let stops = Stops { after: Duration::ZERO, length: PAUSE, every: None };
    let (label, args, expected) = if small {
        // The 3 s retransmission, and its echo.
        (format!("backlog {BACKLOG}"), vec!["--backlog".into(), BACKLOG.to_string()], 3.2)
    } else {
        ("default backlog".to_string(), Vec::new(), PAUSE.as_secs_f64() + 0.2)
    };
    // One repeat: each holds eighty connections' latencies, and the kernel's behaviour does
    // not vary between runs; the counters are machine-wide and say the same.
    Point {
        burst: Some(BURST),
        stops: Some(stops),
        server_args: args,
        repeats: Some(1),
        duration: Some(Duration::from_secs_f64(expected)),
        ..p
    }
    .named(label, if small { f64::from(BACKLOG) } else { 0.0 })
}

/// Every connect latency of a point, in seconds (connected ones), over its repeats.
fn connects(p: &PointResults) -> Vec<f64> {
    let bursts = p.repeats.iter().filter_map(|r| r.loadgen.as_ref()?.burst.as_ref());
    bursts.flat_map(|b| b.each.iter().filter_map(|c| c.connect_us)).map(|us| us / 1e6).collect()
}

/// How many connects of a point completed at once, after about 1, 2 and 3 s, and later: a
/// SYN dropped by a full queue is retransmitted after whole seconds (1, 2, 3, 4 s with linear
/// SYN timeouts; 1, 3, 7 s without).
fn steps(p: &PointResults) -> [usize; 5] {
    let mut out = [0; 5];
    for t in connects(p) {
        out[(t.round() as usize).min(4)] += 1;
    }
    out
}

/// Connections of a point that did not get their echo back, over its repeats.
fn failed(p: &PointResults) -> u64 {
    let bursts = p.repeats.iter().filter_map(|r| r.loadgen.as_ref()?.burst.as_ref());
    bursts.map(|b| b.outcomes.total() - b.outcomes.echoed).sum()
}

/// The latest echo of a point, in seconds.
fn last_echo(p: &PointResults) -> Option<f64> {
    let bursts = p.repeats.iter().filter_map(|r| r.loadgen.as_ref()?.burst.as_ref());
    let echoes = bursts.flat_map(|b| b.each.iter().filter_map(|c| c.echo_us));
    echoes.map(|us| us / 1e6).reduce(f64::max)
}

/// When a client retries a dropped SYN on the machine that ran this, from its
/// `net.ipv4.tcp_syn_linear_timeouts`.
fn schedule(linear: Option<u64>) -> String {
    match linear {
        Some(n) if n > 0 => format!(
            "after 1 s, and every second after that for its first {n} tries \
             (net.ipv4.tcp_syn_linear_timeouts = {n}; before Linux 6.5 the wait doubled, so the \
             retries came 1 s, 3 s and 7 s after the first SYN)"
        ),
        _ => "1 s, 3 s and 7 s after the first SYN (the wait doubles each time)".into(),
    }
}

/// "about 3 s" or "1 to 3 s": the connect latencies of those that waited, from the slowest
/// step that holds any.
fn cost(small: &[(&str, &PointResults)]) -> String {
    let waited: Vec<f64> =
        small.iter().flat_map(|(_, p)| connects(p)).filter(|&t| t >= 0.5).collect();
    let lo = waited.iter().copied().fold(f64::MAX, f64::min);
    let hi = waited.iter().copied().fold(0.0, f64::max);
    match waited.len() {
        0 => "nothing".into(),
        _ if hi - lo < 0.5 => format!("{} s", sig(hi)),
        _ => format!("{} to {} s", sig(lo), sig(hi)),
    }
}

/// Whether any repeat of the point has loadgen's burst report.
fn has_burst(p: &PointResults) -> bool {
    p.repeats.iter().any(|r| r.loadgen.as_ref().is_some_and(|l| l.burst.is_some()))
}

/// The small-backlog point of a model, if it has burst figures.
fn small_of(s: &ScenarioResults) -> Option<&PointResults> {
    s.points.iter().find(|p| !p.point.server_args.is_empty() && has_burst(p))
}

/// The default-backlog point of a model, if it has burst figures.
fn default_of(s: &ScenarioResults) -> Option<&PointResults> {
    s.points.iter().find(|p| p.point.server_args.is_empty() && has_burst(p))
}

/// A cell from a point's burst figures, "-" without them.
fn cell(p: &PointResults, f: impl Fn(&PointResults) -> String) -> String {
    if has_burst(p) { f(p) } else { "-".into() }
}

impl Measure for Backlog {
    fn name(&self) -> &'static str {
        "backlog"
    }

    fn points(&self, _profile: Profile, _given: Option<&str>) -> Result<Vec<Point>> {
        Ok(vec![point(true), point(false)])
    }

    fn loadgen(&self, _point: &Point, config: &mut loadgen::Config) {
        config.timeout = TIMEOUT;
    }

    fn counters(&self) -> &'static [&'static str] {
        &COUNTERS
    }

    fn headline(&self) -> Headline {
        Headline {
            name: "connect p99",
            figure: |m| m.connect_us.map_or(0.0, |c| c.p99),
            higher_is_better: false,
            better: "faster",
            worse: "slower",
        }
    }
}

impl Present for Backlog {
    fn key_columns(&self) -> Vec<&'static str> {
        // How many connected at once and when the last echo came tell the story; the other
        // buckets are in the findings, and every one in results.json.
        vec!["at once", "last echo s"]
    }

    fn question(&self) -> &'static str {
        "What happens when connections arrive faster than the server accepts them?"
    }

    fn setup(&self) -> String {
        let timeout = humantime::format_duration(TIMEOUT);
        format!(
            "The server's whole process tree is stopped (SIGSTOP); {BURST} connections are \
             opened at once (`loadgen --burst {BURST}`), each sending one {SMALL_MESSAGE}-byte \
             message; the server is resumed (SIGCONT) {} after it was stopped. Once with \
             `--backlog {BACKLOG}`, once with the server's default. Every connect and echo is \
             bounded by {timeout}; latencies count from the burst's start.",
            format_duration(PAUSE)
        )
    }

    fn models_note(&self) -> Option<&'static str> {
        Some(
            "every model: how fast each drains its accept queue once resumed decides how many \
             connections wait for a retransmission.",
        )
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            ("at once", |c| cell(c.point, |p| steps(p)[0].to_string())),
            ("after ~1 s", |c| cell(c.point, |p| steps(p)[1].to_string())),
            ("after ~2 s", |c| cell(c.point, |p| steps(p)[2].to_string())),
            ("after ~3 s", |c| cell(c.point, |p| steps(p)[3].to_string())),
            ("later", |c| cell(c.point, |p| steps(p)[4].to_string())),
            ("no echo", |c| cell(c.point, |p| failed(p).to_string())),
            ("last echo s", |c| last_echo(c.point).map_or("-".into(), sig)),
            ("ListenOverflows", |c| {
                c.point.counter(COUNTERS[0]).map_or("-".into(), |v| format!("{v:.0}"))
            }),
            ("ListenDrops", |c| {
                c.point.counter(COUNTERS[1]).map_or("-".into(), |v| format!("{v:.0}"))
            }),
        ]
    }

    fn findings(&self, view: &View<'_>) -> Vec<String> {
        let small: Vec<(&str, &PointResults)> =
            view.runs().filter_map(|(m, s)| Some((m.name.as_str(), small_of(s)?))).collect();
        if small.is_empty() {
            return vec![NO_FIGURES.into()];
        }
        let mut out = Vec::new();
        let each: Vec<(&str, String)> = small
            .iter()
            .map(|&(m, p)| {
                let [now, one, two, three, later] = steps(p);
                let mut parts = vec![format!("{now} at once")];
                parts.extend((one > 0).then(|| format!("{one} after about 1 s")));
                parts.extend((two > 0).then(|| format!("{two} after about 2 s")));
                parts.extend((three > 0).then(|| format!("{three} after about 3 s")));
                parts.extend((later > 0).then(|| format!("{later} later")));
                (m, join(&parts))
            })
            .collect();
        let waited: usize = small.iter().map(|(_, p)| steps(p)[1..].iter().sum::<usize>()).sum();
        out.push(format!(
            "With `--backlog {BACKLOG}` and {BURST} connections at once against a server stopped \
             for {}, the connects completed: {}. {} of them waited for a SYN retransmission: \
             the kernel queues completed handshakes up to the backlog while the process does \
             not accept, and drops the SYNs beyond it without a word; the client tries again \
             {}. A stall of {} cost them {}: a dropped SYN waits for the client's \
             retransmission timer, not for the server.",
            format_duration(PAUSE),
            grouped(&each),
            waited,
            schedule(view.results.environment.tcp_syn_linear_timeouts),
            format_duration(PAUSE),
            cost(&small)
        ));
        let at_once: Vec<usize> = small.iter().map(|(_, p)| steps(p)[0]).collect();
        if let (Some(lo), Some(hi)) = (at_once.iter().min(), at_once.iter().max()) {
            let range = if lo == hi { lo.to_string() } else { format!("{lo} to {hi}") };
            out.push(format!(
                "Against the backlog of {BACKLOG}: {range} connected at once (Linux's queue \
                 holds the backlog plus one); the rest of the {BURST} waited."
            ));
        }
        let counted = small.iter().find(|(_, p)| p.counter(COUNTERS[0]).is_some());
        if let Some(&(name, p)) = counted
            && let (Some(o), Some(d)) = (p.counter(COUNTERS[0]), p.counter(COUNTERS[1]))
        {
            let late = steps(p)[1..].iter().sum::<usize>();
            out.push(format!(
                "The kernel's own count over {}'s burst: {o:.0} listen overflows and {d:.0} listen \
                 drops, for {late} connections that waited: a SYN is counted each time it finds \
                 the queue full, the first one and every retransmission (and the counters are \
                 machine-wide, so other sockets' drops count too).",
                name
            ));
        }
        let defaults: Vec<(&str, &PointResults)> =
            view.runs().filter_map(|(m, s)| Some((m.name.as_str(), default_of(s)?))).collect();
        if !defaults.is_empty() {
            let each: Vec<(&str, String)> = defaults
                .iter()
                .map(|&(m, p)| (m, format!("{} of {BURST} at once", steps(p)[0])))
                .collect();
            let last: Vec<f64> = defaults.iter().filter_map(|(_, p)| last_echo(p)).collect();
            let lo = last.iter().copied().fold(f64::MAX, f64::min);
            let hi = last.iter().copied().fold(0.0, f64::max);
            let last = match last.len() {
                0 => String::new(),
                _ if hi - lo < 0.05 => format!(", the last echo at {} s", sig(hi)),
                _ => format!(", the last echo at {} to {} s", sig(lo), sig(hi)),
            };
            out.push(format!(
                "With the default backlog: {}{last}. The queue held every handshake, so the \
                 connects did not wait; the echoes waited for the server to be resumed ({}).",
                grouped(&each),
                format_duration(PAUSE)
            ));
        }
        out
    }

    fn charts(&self, view: &View<'_>, charts: &mut Charts) -> Result<()> {
        let series: Vec<Series> = view
            .runs()
            .filter_map(|(m, s)| {
                let times = connects(small_of(s)?);
                if times.is_empty() {
                    return None;
                }
                let top = times.iter().copied().fold(0.0, f64::max);
                let bins = (top / BIN).floor() as usize + 1;
                let mut counts = vec![0.0; bins];
                for t in times {
                    counts[((t / BIN).floor() as usize).min(bins - 1)] += 1.0;
                }
                let dots = counts
                    .into_iter()
                    .enumerate()
                    .map(|(i, n)| Dot { x: i as f64 * BIN, y: n, lo: n, hi: n })
                    .collect();
                Some((m.name.clone(), dots))
            })
            .collect();
        let t = format!("Connect latency of {BURST} connections at once, backlog {BACKLOG}");
        let y = format!("connections per {} ms", (BIN * 1000.0) as u32);
        charts.histogram(
            self.name(),
            "backlog-connect.svg",
            &t,
            "seconds from the burst's start",
            &y,
            &series,
        )
    }
}
