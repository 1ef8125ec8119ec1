//! syscalls: "How many system calls does each model make per message?" One short closed-loop
//! point with `strace -c -f` attached to the server: how far a model that batches (an event
//! loop's one `epoll_wait` for many connections, io_uring's one `io_uring_enter` for many
//! operations) cuts its calls. Whether fewer calls buy less CPU is a separate question: the
//! findings set the counts beside the untraced server CPU per message of the scale scenario
//! at the same connections, and say how far the two orders agree and what the paired rounds
//! call each difference in CPU.
//!
//! strace slows the traced server many times over, so this scenario's throughput and latency
//! say nothing about the model; only the counts are read. One repeat: the counts per message
//! hardly move between runs.

use std::time::Duration;

use anyhow::Result;

use crate::compare::{self, Comparison};
use crate::findings::{NO_FIGURES, figure, listing};
use crate::measure::{Measure, PointsFlag, counts};
use crate::plan::{Point, Profile, SMALL_MESSAGE, Trace, plural};
use crate::present::{Cell, Column, Present, View};
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
        let mut out = Vec::new();
        out.extend(headline(&point.label, &per));
        out.push(format!(
            "At {}, system calls per message, fewest first (counted in one traced run each, \
             so not compared in paired rounds): {}.",
            point.label,
            listing(&per, false, &|v| format!("{} calls", sig(v)))
        ));
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
                let paired = compare::at_point(view.results, p, &compare::CPU_PER_MSG);
                out.extend(why(&per, &cpu, &paired));
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

/// The one-line answer: the range of calls per message, and which model made the fewest.
fn headline(point: &str, calls: &[(&str, f64)]) -> Option<String> {
    let mut v: Vec<&(&str, f64)> = calls.iter().filter(|(_, c)| c.is_finite()).collect();
    v.sort_by(|a, b| a.1.total_cmp(&b.1));
    let (least, most) = (v.first()?, v.last()?);
    if v.len() < 2 {
        return None;
    }
    let next = v[1];
    Some(format!(
        "At {point}, {} made {} system calls per message, the others {} ({}) to {} ({}), \
         counted in one traced run each.",
        least.0,
        sig(least.1),
        sig(next.1),
        next.0,
        sig(most.1),
        most.0
    ))
}

/// Spearman's rank correlation of two figures over the models both have, ties given their
/// mean rank; `None` with fewer than three models or a figure that does not vary.
pub fn spearman(pairs: &[(f64, f64)]) -> Option<f64> {
    fn ranks(v: &[f64]) -> Vec<f64> {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
        let mut r = vec![0.0; v.len()];
        let mut i = 0;
        while i < idx.len() {
            let mut j = i;
            while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
                j += 1;
            }
            for &k in &idx[i..=j] {
                r[k] = (i + j) as f64 / 2.0 + 1.0;
            }
            i = j + 1;
        }
        r
    }
    if pairs.len() < 3 {
        return None;
    }
    let a = ranks(&pairs.iter().map(|p| p.0).collect::<Vec<_>>());
    let b = ranks(&pairs.iter().map(|p| p.1).collect::<Vec<_>>());
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(&b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    (va > 0.0 && vb > 0.0).then(|| cov / (va * vb).sqrt())
}

/// "0.96x (0.90-1.02), no measurable difference": how `of` stands against `other` on server
/// CPU per message in the paired rounds, or `None` where they were not paired.
fn paired_text(paired: &[Comparison], of: &str, other: &str) -> Option<(Comparison, String)> {
    let c = paired.iter().find(|c| c.between(of, other))?.clone();
    let (r, lo, hi) = c.seen_from(of);
    let verdict = match (&c.verdict, &c.better) {
        (compare::Verdict::Different, Some(b)) if b == of => "less, called by the paired rounds",
        (compare::Verdict::Different, _) => "more, called by the paired rounds",
        (compare::Verdict::Equivalent, _) => "equivalent within 3%",
        (compare::Verdict::Undecided, _) => "no measurable difference",
    };
    Some((c, format!("{} ({:.2}-{:.2}), {verdict}", crate::text::times(r), lo, hi)))
}

/// What fewer calls bought in CPU: how far the models' orders by calls and by CPU agree
/// (Spearman), a pair the paired rounds call the other way round when there is one, and the
/// model with the fewest calls against the cheapest of the rest. Said as far as the figures
/// show it: an order the paired rounds do not call is not an order.
fn why(calls: &[(&str, f64)], cpu: &[(&str, f64)], paired: &[Comparison]) -> Vec<String> {
    let both: Vec<(&str, f64, f64)> = calls
        .iter()
        .filter_map(|&(m, c)| {
            let u = cpu.iter().find(|(n, _)| *n == m)?.1;
            (c.is_finite() && u.is_finite()).then_some((m, c, u))
        })
        .collect();
    let mut out = Vec::new();
    if let Some(rho) = spearman(&both.iter().map(|b| (b.1, b.2)).collect::<Vec<_>>()) {
        // The clearest pair against "fewer calls, less CPU": fewer calls, yet called more CPU.
        let mut against: Vec<(&str, f64, f64, &str, f64, f64, String)> = Vec::new();
        for a in &both {
            for b in &both {
                if a.1 < b.1
                    && let Some((c, text)) = paired_text(paired, a.0, b.0)
                    && c.verdict == compare::Verdict::Different
                    && c.better.as_deref() == Some(b.0)
                {
                    against.push((a.0, a.1, a.2, b.0, b.1, b.2, text));
                }
            }
        }
        against.sort_by(|x, y| (y.2 / y.5).total_cmp(&(x.2 / x.5)));
        let example = against.first().map_or(String::new(), |(a, ac, au, b, bc, bu, text)| {
            format!(
                ": {a} made fewer calls than {b} ({} against {}) yet spent more CPU per message \
                 ({} against {} us, {text})",
                sig(*ac),
                sig(*bc),
                sig(*au),
                sig(*bu)
            )
        });
        out.push(if rho >= 0.7 {
            format!(
                "Across the {} models, fewer calls went with less CPU per message: the two \
                 orders agree at a rank correlation of {rho:.2} (Spearman){example}. An \
                 agreement of orders is no proof that the calls are the cost.",
                both.len()
            )
        } else {
            format!(
                "The number of calls does not order the CPU: across the {} models the two \
                 orders agree only at a rank correlation of {rho:.2} (Spearman, 1 would be the \
                 same order){example}.",
                both.len()
            )
        });
    }
    // The model with the fewest calls against the cheapest of the others by median.
    let fewest = both.iter().min_by(|a, b| a.1.total_cmp(&b.1));
    let cheapest =
        fewest.and_then(|f| both.iter().filter(|b| b.0 != f.0).min_by(|a, b| a.2.total_cmp(&b.2)));
    let unpaired = |f: &(&str, f64, f64), o: &(&str, f64, f64)| {
        format!(
            "{} made {}x fewer calls per message than {}, the cheapest of the others by median \
             ({} against {}); the run has no paired rounds of the two at scale's point, so their \
             server CPU per message ({} against {} us by median) is not compared.",
            f.0,
            sig(o.1 / f.1),
            o.0,
            sig(f.1),
            sig(o.1),
            sig(f.2),
            sig(o.2)
        )
    };
    if let (Some(f), Some(o)) = (fewest, cheapest)
        && f.1 > 0.0
        && paired_text(paired, f.0, o.0).is_none()
    {
        out.push(unpaired(f, o));
    }
    if let (Some(f), Some(o)) = (fewest, cheapest)
        && f.1 > 0.0
        && let Some((c, text)) = paired_text(paired, f.0, o.0)
    {
        let fewer = o.1 / f.1;
        let (r, _, _) = c.seen_from(f.0);
        let lesson = if fewer >= 5.0 && r > 0.5 {
            let cut = match c.verdict {
                compare::Verdict::Different if r < 1.0 => {
                    format!("a {:.0}% cut in CPU per message", (1.0 - r) * 100.0)
                }
                compare::Verdict::Different => "no cut in CPU per message (it spent more)".into(),
                _ => "no measurable cut in CPU per message".to_string(),
            };
            format!(
                " So {}x fewer calls bought {cut}: most of the cost is per message, not per \
                 call, as the batch scenario finds for datagrams.",
                sig(fewer)
            )
        } else {
            String::new()
        };
        out.push(format!(
            "{} made {}x fewer calls per message than {}, the cheapest of the others by median \
             ({} against {}); its server CPU per message against {}'s in scale's paired rounds: \
             {text}.{lesson}",
            f.0,
            sig(fewer),
            o.0,
            sig(f.1),
            sig(o.1),
            o.0
        ));
    }
    out
}

#[cfg(test)]
#[path = "syscalls_tests.rs"]
mod tests;

/// "recvfrom 8,275, sendto 7,842, epoll_wait 74": the three most frequent calls.
fn top(c: &Counts) -> String {
    let parts: Vec<String> = c.top.iter().take(3).map(|(n, k)| format!("{n} {k}")).collect();
    parts.join(", ")
}
