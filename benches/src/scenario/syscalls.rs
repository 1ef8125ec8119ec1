//! syscalls: "How many system calls does each model make per message?" One short closed-loop
//! point with `strace -c -f` attached to the server: the figure that explains why a model
//! that batches (an event loop's one `epoll_wait` for many connections, io_uring's one
//! `io_uring_enter` for many operations) spends less CPU per message than one that does not.
//!
//! strace slows the traced server many times over, so this scenario's throughput and latency
//! say nothing about the model; only the counts are read. One repeat: the counts per message
//! hardly move between runs.

use std::time::Duration;

use anyhow::Result;

use crate::findings::{NO_FIGURES, figure, listing};
use crate::measure::{Measure, PointsFlag, counts};
use crate::plan::{Point, Profile, SMALL_MESSAGE, Trace, plural};
use crate::present::{Cell, Column, Present, View};
use crate::registry::PerConnection;
use crate::results::Summary;
use crate::strace::Syscalls as Counts;
use crate::text::{join, sig};

/// The syscalls scenario.
#[derive(Debug)]
pub struct Syscalls;

/// A traced point has no warm-up: every message of the run is then counted in
/// `messages.received`, as every call is.
fn point(connections: u32) -> Point {
    let p = Point::closed("syscalls", connections, SMALL_MESSAGE);
    Point { repeats: Some(1), trace: Trace::Every, warmup: Some(Duration::ZERO), ..p }
        .named(plural(connections, "conn"), f64::from(connections))
}

/// The counts of a point's (first) traced repeat.
fn counts_of<'a>(c: &Cell<'a>) -> Option<&'a Counts> {
    c.point.repeats.iter().find_map(|r| r.syscalls.as_ref())
}

impl Measure for Syscalls {
    fn name(&self) -> &'static str {
        "syscalls"
    }

    fn flag(&self) -> Option<PointsFlag> {
        Some(PointsFlag {
            long: "syscall-connections",
            value_name: "N,N,...",
            help: "Connection counts of the syscalls scenario, comma-separated",
        })
    }

    fn points(&self, _profile: Profile, given: Option<&str>) -> Result<Vec<Point>> {
        let counts = match given {
            Some(text) => counts("syscall-connections", text)?,
            None => vec![100],
        };
        Ok(counts.into_iter().map(point).collect())
    }

    fn tools(&self) -> &'static [&'static str] {
        &["strace"]
    }
}

impl Present for Syscalls {
    fn question(&self) -> &'static str {
        "How many system calls does each model make per message?"
    }

    fn setup(&self) -> String {
        format!(
            "Closed loop, {SMALL_MESSAGE}-byte messages, no warm-up, one repeat, with `strace -c -f` \
             attached to the server's process tree (every thread and child it creates). strace \
             slows the server many times over, so only the counts mean anything here: calls \
             while loadgen ran, divided by the messages echoed."
        )
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            ("calls/msg", |c| counts_of(c).and_then(Counts::per_message).map_or("-".into(), sig)),
            ("calls", |c| counts_of(c).map_or("-".into(), |s| s.total.to_string())),
            ("failed", |c| counts_of(c).map_or("-".into(), |s| s.errors.to_string())),
            ("messages", |c| counts_of(c).map_or("-".into(), |s| s.messages.to_string())),
            ("most frequent", |c| counts_of(c).map_or("-".into(), top)),
        ]
    }

    fn findings(&self, view: &View<'_>) -> Vec<String> {
        let Some((point, _)) = view.deciding() else { return vec![NO_FIGURES.into()] };
        let per: Vec<(&str, f64)> = view
            .runs()
            .filter_map(|(m, s)| {
                let p = s.points.iter().find(|p| &p.point == point)?;
                let c = p.repeats.iter().find_map(|r| r.syscalls.as_ref())?;
                Some((m.name.as_str(), c.per_message()?))
            })
            .collect();
        if per.is_empty() {
            return vec![NO_FIGURES.into()];
        }
        let mut out = vec![format!(
            "At {}, system calls per message, fewest first (counted in one traced run each, \
             so not compared in paired rounds): {}.",
            point.label,
            listing(&per, false, &|v| format!("{} calls", sig(v)))
        )];
        // The CPU the same models spent per message in the scale scenario, beside it: the
        // calls are what that CPU mostly goes to.
        let scale = View { results: view.results, scenario: "scale" };
        let same = scale.points().find(|p| p.connections == point.connections);
        if let Some(p) = same {
            let cpu = figure(&scale.at(p), |s: &Summary| {
                s.median.server_cpu_per_msg_us.unwrap_or(f64::NAN)
            });
            let pairs: Vec<String> = per
                .iter()
                .filter_map(|(m, calls)| {
                    let us = cpu.iter().find(|(n, _)| n == m)?.1;
                    us.is_finite().then(|| format!("{m} {} calls and {} us", sig(*calls), sig(us)))
                })
                .collect();
            if pairs.len() >= 2 {
                out.push(format!(
                    "Beside the server CPU per message each spent in scale at {} (untraced): {}.",
                    p.label,
                    join(&pairs)
                ));
                out.extend(why(&per, &cpu));
            }
        }
        // Failed calls are mostly reads that found a socket drained: say so where they are
        // a large share.
        for (m, s) in view.runs() {
            let Some(c) =
                s.points.iter().find_map(|p| p.repeats.iter().find_map(|r| r.syscalls.as_ref()))
            else {
                continue;
            };
            if c.total > 0 && c.errors * 10 > c.total {
                out.push(format!(
                    "{} of {m}'s {} calls failed ({:.0}%): reads that found the socket drained \
                     (EAGAIN), the price of reading until the kernel says there is no more.",
                    c.errors,
                    c.total,
                    100.0 * c.errors as f64 / c.total as f64,
                    m = m.name
                ));
            }
        }
        out
    }
}

/// Whether fewer calls went with less CPU: said either way, from the two rankings.
fn why(calls: &[(&str, f64)], cpu: &[(&str, f64)]) -> Option<String> {
    fn least<'a>(v: &[(&'a str, f64)]) -> Option<&'a str> {
        v.iter().filter(|(_, x)| x.is_finite()).min_by(|a, b| a.1.total_cmp(&b.1)).map(|x| x.0)
    }
    let fewest = least(calls)?;
    let cheapest = least(cpu)?;
    Some(if fewest == cheapest {
        format!(
            "{fewest} made the fewest calls and spent the least CPU per message: each call is a \
             trip into the kernel, and a model that serves many connections per call pays fewer."
        )
    } else {
        let blocking = crate::registry::find(fewest).is_some_and(|m| {
            matches!(m.per_connection, PerConnection::Process | PerConnection::Thread)
        });
        let between = if blocking {
            "what happens between them: each of its blocked threads or processes is woken for \
             every message (see context switches in scale), an event loop is not"
        } else {
            "what each call costs and what happens between them"
        };
        format!(
            "Fewer calls did not mean less CPU here: {fewest} made the fewest, but {cheapest} \
             spent the least CPU per message. What separates them is not the number of calls \
             but {between}."
        )
    })
}

/// "recvfrom 8,275, sendto 7,842, epoll_wait 74": the three most frequent calls.
fn top(c: &Counts) -> String {
    let parts: Vec<String> = c.top.iter().take(3).map(|(n, k)| format!("{n} {k}")).collect();
    parts.join(", ")
}
