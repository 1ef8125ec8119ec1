//! The idle scenario's sentences, from the costs in [`super::cost`]: the one-line answer, the
//! ranking of PSS + kernel memory per connection (as far as the paired rounds and the page
//! resolution allow), and what each model keeps per idle connection.

use super::cost::{IdleCost, PerConn};
use crate::compare::{self, Figure, Verdict};
use crate::text::{join, memory, times};

/// PSS + kernel memory per connection: compared here from the rounds the scenario pairs
/// itself ([`super::cost::both_by_round`]); `of` is not used.
const BOTH: Figure =
    Figure { name: "PSS + kernel per conn", of: |_| f64::NAN, higher_is_better: false };

/// One model's entry in the ranking: its median and its rounds.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    /// The model.
    pub name: &'a str,
    /// PSS + kernel per connection, or below page resolution.
    pub both: PerConn,
    /// Each paired round's value, KiB per connection.
    pub rounds: Vec<(u32, f64)>,
}

/// The comparison of `b` with `a` on PSS + kernel, from their rounds.
fn pair(at: (&str, &str), a: &Entry<'_>, b: &Entry<'_>) -> Option<compare::Comparison> {
    compare::compare(at, &BOTH, (a.name, &a.rounds), (b.name, &b.rounds))
}

/// "**mio** 2.10 KiB (tokio 3.20 KiB, 1.52x (1.40-1.60), larger; ...)": the models whose sum
/// is resolved, least first by median, each with its paired ratio to the least and the
/// verdict; a least is named alone only where every other is called larger. Models below page
/// resolution are named apart and not ranked. `at` is (scenario, point label).
pub fn rank_both(at: (&str, &str), entries: &[Entry<'_>]) -> String {
    let mut ranked: Vec<(&Entry<'_>, f64)> =
        entries.iter().filter_map(|e| Some((e, e.both.kib()?))).collect();
    ranked.sort_by(|a, b| a.1.total_cmp(&b.1));
    let below: Vec<String> =
        entries.iter().filter(|e| e.both.kib().is_none()).map(|e| e.name.to_string()).collect();
    let apart = if below.is_empty() {
        String::new()
    } else {
        format!("; not ranked, below page resolution: {}", join(&below))
    };
    let Some(&(best, bv)) = ranked.first() else {
        return format!("no model resolved{apart}");
    };
    if ranked.len() == 1 {
        return format!("{}: {} (the only one resolved){apart}", best.name, memory(bv));
    }
    let pairs: Vec<Option<compare::Comparison>> =
        ranked[1..].iter().map(|(e, _)| pair(at, best, e)).collect();
    if pairs.iter().all(Option::is_none) {
        let medians: Vec<String> =
            ranked.iter().map(|(e, v)| format!("{} {}", e.name, memory(*v))).collect();
        return format!("no order (no paired rounds; medians: {}){apart}", medians.join(", "));
    }
    let mut tied = Vec::new();
    let others: Vec<String> = ranked[1..]
        .iter()
        .zip(&pairs)
        .map(|(&(e, v), c)| {
            let Some(c) = c else {
                tied.push(e.name.to_string());
                return format!("{} {}, not paired", e.name, memory(v));
            };
            let (r, lo, hi) = c.seen_from(e.name);
            let verdict = match (c.verdict, c.better.as_deref()) {
                (Verdict::Different, Some(b)) if b == best.name => "larger".to_string(),
                (Verdict::Different, _) => "smaller".to_string(),
                (Verdict::Equivalent, _) => {
                    format!("equivalent within {:.0}%", compare::MARGIN * 100.0)
                }
                (Verdict::Undecided, _) if c.confidence < compare::CONFIDENCE => {
                    format!("not decided in {} rounds", c.rounds)
                }
                (Verdict::Undecided, _) => "no measurable difference".to_string(),
            };
            if c.better.as_deref() != Some(best.name) {
                tied.push(e.name.to_string());
            }
            format!("{} {}, {} ({lo:.2}-{hi:.2}), {verdict}", e.name, memory(v), times(r))
        })
        .collect();
    let mut out = format!("**{}** {} ({})", best.name, memory(bv), others.join("; "));
    if !tied.is_empty() {
        out.push_str(&format!(
            "; the run could not tell {} from {}, so no single model holds least",
            best.name,
            join(&tied)
        ));
    }
    out.push_str(&apart);
    out
}

/// The scenario's one-line answer: the least and the most `what` ("PSS + kernel memory", or
/// "PSS" in a file without kernel figures) per silent connection by median, and whether the
/// paired rounds call the most the larger. `None` with fewer than two resolved figures.
pub fn answer(at: (&str, &str), entries: &[Entry<'_>], what: &str) -> Option<String> {
    let mut ranked: Vec<(&Entry<'_>, f64)> =
        entries.iter().filter_map(|e| Some((e, e.both.kib()?))).collect();
    ranked.sort_by(|a, b| a.1.total_cmp(&b.1));
    let (&(lo, lv), &(hi, hv)) = (ranked.first()?, ranked.last()?);
    if ranked.len() < 2 {
        return None;
    }
    // A ratio needs both rounds' sums above zero, and the machine-wide slab can fall while a
    // round holds its connections: such rounds drop out, and too few left decide nothing,
    // which is not the same as a difference the rounds could not see.
    let verdict = match pair(at, lo, hi) {
        Some(c) if c.better.as_deref() == Some(lo.name) => {
            format!("{} the larger in paired rounds", hi.name)
        }
        Some(c) if (c.rounds as usize) < compare::ROUNDS_FOR_VERDICT => format!(
            "only {} rounds had a usable kernel reading for both, too few for a paired verdict",
            c.rounds
        ),
        _ => "the paired rounds could not tell them apart".to_string(),
    };
    let below: Vec<String> =
        entries.iter().filter(|e| e.both.kib().is_none()).map(|e| e.name.to_string()).collect();
    let below = if below.is_empty() {
        String::new()
    } else {
        format!(" ({} below page resolution)", join(&below))
    };
    Some(format!(
        "An idle connection cost {} ({}) to {} ({}) of {what}{below}; {verdict}.",
        memory(lv),
        lo.name,
        memory(hv),
        hi.name
    ))
}

/// What one model keeps per idle connection, from its silent cost, the cost after one echo
/// (when measured), and what one echo added (when every round shows it: see
/// [`super::cost::echo_added`]).
pub fn keeps(
    model: &str,
    silent: &IdleCost,
    echoed: Option<&IdleCost>,
    added_kib: Option<f64>,
) -> String {
    let what = if silent.processes_per_conn >= 0.5 {
        "a process per connection"
    } else if silent.threads_per_conn >= 0.5 {
        "a thread per connection, with its stack"
    } else {
        "no thread or process per connection"
    };
    let kernel = silent.kernel.map_or(String::new(), |k| {
        let mut parts = vec![format!("slab {}", memory(k.slab))];
        // A kernel stack or page tables per connection are a task's; say them when they are.
        if k.stacks >= 1.0 {
            parts.push(format!("kernel stacks {}", memory(k.stacks)));
        }
        if k.page_tables >= 1.0 {
            parts.push(format!("page tables {}", memory(k.page_tables)));
        }
        format!(", kernel {} ({})", memory(k.total), parts.join(", "))
    });
    let mut out = format!("{model} keeps {what} (PSS {}{kernel})", silent.pss.text());
    match (echoed, added_kib) {
        (_, Some(added)) => out.push_str(&format!(
            "; after one echo {} more PSS per connection, kept while it stays open (a buffer)",
            memory(added)
        )),
        (Some(e), None) => out.push_str(&format!(
            "; after one echo PSS {} (no increase shown in every round)",
            e.pss.text()
        )),
        (None, None) => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::cost::{KernelPerConn, per_conn};
    use super::*;

    fn entry<'a>(name: &'a str, delta_kib: f64, rounds: &[f64]) -> Entry<'a> {
        let rounds = rounds.iter().enumerate().map(|(i, v)| (i as u32 + 1, *v)).collect();
        Entry { name, both: per_conn(delta_kib, 1001), rounds }
    }

    #[test]
    fn below_page_resolution_is_named_apart_and_never_ranked() {
        // poll's median is below mio's, but both are a page or two: no order between them.
        let e = [
            entry("mio", 8.0, &[0.008; 8]),
            entry("poll", 4.0, &[0.004; 8]),
            entry("fork", 95_000.0, &[95.0, 96.0, 94.0, 95.5, 95.0, 94.5, 96.0, 95.2]),
        ];
        let text = rank_both(("idle", "1000 idle"), &e);
        assert!(text.starts_with("fork: 94.9 KiB (the only one resolved)"), "{text}");
        assert!(text.ends_with("below page resolution: mio and poll"), "{text}");
        assert!(!text.contains("poll 4") && !text.contains("**"), "{text}");
    }

    #[test]
    fn a_least_is_named_only_where_every_other_is_called_larger() {
        let r = |v: f64| [v, v * 1.01, v * 0.99, v, v * 1.02, v * 0.98, v, v * 1.01];
        let called = [
            entry("mio", 2_500.0, &r(2.5)),
            entry("thread", 40_000.0, &r(40.0)),
            entry("fork", 95_000.0, &r(95.0)),
        ];
        let text = rank_both(("idle", "1000 idle"), &called);
        assert!(text.starts_with("**mio** 2.50 KiB (thread 40.0 KiB, 16x"), "{text}");
        assert!(!text.contains("could not tell"), "{text}");
        // tokio's rounds cross mio's: the medians differ by 4%, the run cannot order them.
        let crossing = [2.6, 2.4, 2.7, 2.5, 2.3, 2.8, 2.6, 2.5];
        let e = [entry("mio", 2_500.0, &r(2.5)), entry("tokio", 2_600.0, &crossing)];
        let text = rank_both(("idle", "1000 idle"), &e);
        assert!(text.contains("could not tell mio from tokio"), "{text}");
        let answer = answer(("idle", "1000 idle"), &e, "PSS + kernel memory").unwrap();
        assert!(answer.ends_with("could not tell them apart."), "{answer}");
        let answer = super::answer(("idle", "1000 idle"), &called, "PSS + kernel memory").unwrap();
        assert_eq!(
            answer,
            "An idle connection cost 2.50 KiB (mio) to 94.9 KiB (fork) of PSS + kernel memory; \
             fork the larger in paired rounds."
        );
    }

    #[test]
    fn too_few_rounds_with_a_kernel_reading_decide_nothing_and_say_so() {
        // The same 16x apart as above, but only five rounds kept a usable kernel reading: no
        // verdict, and the answer must not read as "no difference".
        let r = |v: f64| [v, v * 1.01, v * 0.99, v, v * 1.02];
        let e = [entry("mio", 2_500.0, &r(2.5)), entry("thread", 40_000.0, &r(40.0))];
        let answer = answer(("idle", "1000 idle"), &e, "PSS + kernel memory").unwrap();
        assert!(
            answer.ends_with(
                "only 5 rounds had a usable kernel reading for both, too few for a paired verdict."
            ),
            "{answer}"
        );
        assert!(!answer.contains("could not tell"), "{answer}");
    }

    #[test]
    fn the_answer_leaves_out_what_the_pages_cannot_resolve() {
        let r = |v: f64| [v, v * 1.01, v * 0.99, v, v * 1.02, v * 0.98, v, v * 1.01];
        let e = [
            entry("mio", 8.0, &r(0.008)),
            entry("tokio", 1_170.0, &r(1.17)),
            entry("fork", 70_600.0, &r(70.6)),
        ];
        let answer = answer(("idle", "1000 idle"), &e, "PSS").unwrap();
        assert_eq!(
            answer,
            "An idle connection cost 1.17 KiB (tokio) to 70.5 KiB (fork) of PSS (mio below page \
             resolution); fork the larger in paired rounds."
        );
    }

    #[test]
    fn a_kept_buffer_is_said_only_when_the_echo_added_it() {
        let cost = |pss: f64, threads: f64| IdleCost {
            conns: 1001,
            pss_delta_kib: pss,
            pss: per_conn(pss, 1001),
            kernel: Some(KernelPerConn { slab: 2.0, stacks: 0.0, page_tables: 0.0, total: 2.0 }),
            both: None,
            threads_per_conn: threads,
            processes_per_conn: 0.0,
        };
        let silent = cost(1100.0, 0.0);
        let echoed = cost(9700.0, 0.0);
        let text = keeps("tokio", &silent, Some(&echoed), Some(8.6));
        assert!(text.contains("after one echo 8.60 KiB more PSS per connection"), "{text}");
        assert!(text.contains("(a buffer)"), "{text}");
        // The same medians without the rounds to back the increase: no buffer is claimed.
        let text = keeps("tokio", &silent, Some(&echoed), None);
        assert!(!text.contains("buffer"), "{text}");
        assert!(text.contains("PSS 9.69 KiB (no increase shown in every round)"), "{text}");
        // A thread's kernel stack is named when the figures hold one.
        let mut thread = cost(26_000.0, 1.0);
        thread.kernel =
            Some(KernelPerConn { slab: 2.5, stacks: 16.0, page_tables: 4.0, total: 22.5 });
        let text = keeps("thread", &thread, None, None);
        assert!(text.starts_with("thread keeps a thread per connection, with its stack"), "{text}");
        assert!(text.contains("kernel stacks 16.0 KiB, page tables 4.00 KiB"), "{text}");
    }
}
