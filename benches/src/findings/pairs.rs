//! The report's Pairs section: each model against the neighbour the registry names for it,
//! once for the whole run, and what the run's configuration let the pair's lesson show.

use super::{against, interval_text, pair_limited};
use crate::compare::{self, Figure, Verdict};
use crate::plan::Point;
use crate::present::View;
use crate::text::join;

/// One line per model and the neighbour the registry names for it, over every scenario of
/// `run` that ran both, each at its deciding point: "tokio against mio (lesson): scale 1000
/// conns: server CPU per message 1.09x (0.99-1.12), no measurable difference; churn 1 client:
/// ...". Each ratio is the paired rounds' with its interval and verdict; a throughput the
/// generator capped at a point is left out there. The lesson names a mechanism among workers
/// only where the run gave the pair more than one worker ([`lesson`]).
pub fn pairs(
    results: &crate::results::Results,
    run: &[&dyn crate::present::Scenario],
) -> Vec<String> {
    let mut out = Vec::new();
    for m in results.models.iter().filter(|m| m.control_of.is_none()) {
        let Some(n) = crate::registry::find(&m.name).and_then(|x| x.against) else { continue };
        // Each verdict with the figures it was given, in the order first met: "different:
        // churn (1 client) conns/s 2.5x (2.36-2.82) better, ...".
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        let mut workers = Vec::new();
        for &scenario in run {
            let view = View { results, scenario: scenario.name() };
            let Some((point, at)) = view.deciding() else { continue };
            if !at.iter().any(|(x, _)| *x == m.name) || !at.iter().any(|(x, _)| *x == n.model) {
                continue;
            }
            let mut figures = scenario.pair_figures();
            if figures.is_empty() {
                let h = scenario.headline();
                let f = Figure { name: h.name, of: h.figure, higher_is_better: h.higher_is_better };
                figures.push((h.name, f));
                if h.name != compare::CPU_PER_MSG.name {
                    figures.push(("CPU/msg", compare::CPU_PER_MSG));
                }
            }
            let mut any = false;
            // Only comparisons with the rounds a verdict needs: the rest decide nothing.
            for (label, f) in
                figures.iter().filter(|(_, f)| pair_limited(&view, point, f).is_none())
            {
                let Some((c, _)) = against(&view, point, f, &m.name, n.model) else { continue };
                if c.confidence < compare::CONFIDENCE {
                    continue;
                }
                let (r, lo, hi) = c.seen_from(&m.name);
                let (verdict, word) = match (c.verdict, c.better.as_deref()) {
                    (Verdict::Different, Some(b)) if b == m.name => ("different", " better"),
                    (Verdict::Different, _) => ("different", " worse"),
                    (Verdict::Equivalent, _) => ("equivalent within 3%", ""),
                    (Verdict::Undecided, _) => ("no measurable difference", ""),
                };
                let item =
                    format!("{} {label} {}{word}", scenario.name(), interval_text(r, lo, hi));
                match groups.iter_mut().find(|(v, _)| v == verdict) {
                    Some((_, items)) => items.push(item),
                    None => groups.push((verdict.to_string(), vec![item])),
                }
                any = true;
            }
            if any {
                let w = [workers_at(&view, point, &m.name), workers_at(&view, point, n.model)];
                workers.push((scenario.name(), w.into_iter().flatten().max()));
            }
        }
        groups.sort_by_key(|(v, _)| v != "different");
        if !groups.is_empty() {
            let parts: Vec<String> =
                groups.iter().map(|(v, items)| format!("{v}: {}", items.join(", "))).collect();
            out.push(format!(
                "**{} against {}** ({}): {}.",
                m.name,
                n.model,
                lesson_over(n.lesson, &workers),
                parts.join("; ")
            ));
        }
    }
    if let Some(scale) = run.iter().find(|s| s.name() == "scale") {
        let view = View { results, scenario: scale.name() };
        if let Some((busy, _)) = view.deciding() {
            out.extend(idle_contrast(&view, busy));
        }
    }
    out
}

/// A lesson over several scenarios, each with the most workers the pair ran there: as it is
/// where every scenario gave more than one worker (or the lesson needs none), what cannot be
/// shown where none did, and where only some did, which.
pub fn lesson_over(text: &str, workers: &[(&str, Option<u32>)]) -> String {
    let acting: Vec<String> = workers
        .iter()
        .filter(|(_, w)| w.is_some_and(|w| w > 1))
        .map(|(s, _)| s.to_string())
        .collect();
    let all: Vec<Option<u32>> = workers.iter().map(|(_, w)| *w).collect();
    if acting.is_empty() || acting.len() == workers.len() {
        return lesson(text, &all);
    }
    let changed = lesson(text, &[Some(1)]);
    if changed == text {
        return text.to_string();
    }
    format!(
        "{changed}, except in {}, the one place with more workers, where it is {text}",
        join(&acting)
    )
}

/// The worker count `model` ran with at `point` (the point's own server's, else the
/// scenario's), when it has a pool of workers.
pub fn workers_at(view: &View<'_>, point: &Point, model: &str) -> Option<u32> {
    let (_, s) = view.runs().find(|(m, _)| m.name == model)?;
    let here = s.points.iter().find(|p| &p.point == point)?;
    here.server.as_ref().and_then(|x| x.workers).or(s.server.workers)
}

/// A pair's lesson as the run's configuration lets it stand: a lesson about a mechanism among
/// workers (work-stealing, balancing) where no model of the pair had more than one worker
/// becomes what this run can show instead.
pub fn lesson(lesson: &str, workers: &[Option<u32>]) -> String {
    let among_workers = lesson.contains("steal") || lesson.contains("balanc");
    let most = workers.iter().flatten().copied().max();
    match most {
        Some(n) if among_workers && n <= 1 => format!(
            "with {n} worker there is nothing to steal or balance; the difference is the cost \
             of the machinery"
        ),
        _ => lesson.to_string(),
    }
}

/// Where idle connections turn a pair around: a model as cheap as its neighbour per message
/// among busy connections at `busy`, but dearer beside idle ones at the idle scenario's
/// deciding point, both by the paired rounds. Said once, from the scale section, where both
/// scenarios ran: poll(2) scans every descriptor per wake-up, so idle connections cost it.
pub fn idle_contrast(view: &View<'_>, busy: &Point) -> Vec<String> {
    let idle = View { results: view.results, scenario: "idle" };
    let Some((quiet, _)) = idle.deciding() else { return Vec::new() };
    let cpu = &compare::CPU_PER_MSG;
    let mut out = Vec::new();
    for (name, _) in view.at(busy) {
        let Some(n) = crate::registry::find(name).and_then(|m| m.against) else { continue };
        let Some((b, btext)) = against(view, busy, cpu, name, n.model) else { continue };
        let Some((i, itext)) = against(&idle, quiet, cpu, name, n.model) else { continue };
        let dearer_idle = i.verdict == Verdict::Different && i.better.as_deref() == Some(n.model);
        let not_dearer_busy = b.better.as_deref() != Some(n.model);
        if dearer_idle && not_dearer_busy {
            let split = |t: &str| {
                let (r, v) = t.split_once("), ").unwrap_or((t, ""));
                (format!("{r})"), v.to_string())
            };
            let ((r1, v1), (r2, v2)) = (split(&btext), split(&itext));
            out.push(format!(
                "{name} against {m}, busy and idle: {name}'s server CPU per message was {r1} \
                 {m}'s at {} ({v1}), yet {r2} at {} ({v2}). The difference the pair teaches \
                 ({}) grows with the connections held, not with the messages served.",
                busy.label,
                quiet.label,
                n.lesson,
                m = n.model,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{lesson, lesson_over};

    const STEALING: &str = "what a work-stealing runtime and a task per connection cost";
    const BALANCING: &str = "the kernel balancing by hash against an acceptor balancing by load";

    #[test]
    fn a_mechanism_among_workers_is_named_only_where_there_were_workers() {
        // One worker: nothing to steal or balance, whatever the lesson says.
        for text in [STEALING, BALANCING] {
            let one = lesson(text, &[Some(1), None]);
            assert!(one.starts_with("with 1 worker there is nothing to steal or balance"), "{one}");
            assert!(!one.contains(text), "{one}");
            assert_eq!(lesson(text, &[Some(4), None]), text, "four workers let it act");
        }
        // A lesson about no workers stands as it is.
        let epoll = "what epoll removed: scanning every descriptor per wake-up";
        assert_eq!(lesson(epoll, &[None, None]), epoll);
    }

    #[test]
    fn over_several_scenarios_the_lesson_says_where_it_could_act() {
        let all_one = lesson_over(STEALING, &[("scale", Some(1)), ("churn", Some(1))]);
        assert!(all_one.starts_with("with 1 worker"), "{all_one}");
        let mixed = lesson_over(STEALING, &[("scale", Some(1)), ("cores", Some(2))]);
        assert!(mixed.contains("except in cores, the one place with more workers"), "{mixed}");
        assert_eq!(lesson_over(STEALING, &[("cores", Some(2))]), STEALING);
    }
}
