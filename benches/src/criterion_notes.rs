//! What criterion's round trip measures beside the scale scenario's one connection, and how far
//! its order of the models holds: the notes under the report's criterion table.
//!
//! The two measure one client on one connection, and can rank the models differently (fork
//! first in criterion, hybrid first in scale, in 2026-12-07-vm-2). They are not the same
//! measurement. Criterion times each model in one stretch of a few seconds, one model after
//! another, on one long-lived connection; its interval covers the sampling noise within that
//! stretch, not how the machine drifted between the stretches, which on a shared virtual
//! machine is often larger. Scale's one-connection point alternates the models within each
//! round and compares them by the ratio of the same round's figures, which cancels that drift.
//! So criterion's order is stated only where scale's paired rounds call the same pair
//! different the same way; elsewhere the notes say that the difference is within the noise
//! that the paired rounds show.

use crate::compare::{self, Comparison, Verdict};
use crate::criterion::Bench;
use crate::results::Results;
use crate::text::{sig, times};

/// The criterion group that a round trip over one connection is timed in.
const ROUNDTRIP: &str = "roundtrip";

/// Writes the notes under the criterion table, when the run has criterion's figures.
pub fn write(md: &mut String, r: &Results) {
    for line in findings(r) {
        md.push_str(&format!("- {line}\n"));
    }
}

/// The notes: what each measures, then how far criterion's order of the round trip holds
/// against scale's paired rounds at one connection.
pub fn findings(r: &Results) -> Vec<String> {
    let benches: Vec<&Bench> = r.criterion.iter().filter(|b| b.group == ROUNDTRIP).collect();
    if benches.is_empty() {
        return Vec::new();
    }
    let point = r.plan.points_of("scale").find(|p| p.connections == 1 && p.rate.is_none());
    let paired = point.map(|p| compare::at_point(r, p, &compare::RATE)).unwrap_or_default();
    let rounds = paired.iter().map(|c| c.rounds).max().unwrap_or(0);
    let label = point.map_or("1 conn".to_string(), |p| p.label.clone());
    let scale = if rounds == 0 {
        format!(
            "Scale at {label} is the same one client in a closed loop; this run has no paired rounds there."
        )
    } else {
        format!(
            "Scale at {label} is the same one client in a closed loop, but measured in {rounds} \
             rounds that alternate the models, each pair compared by the ratio of the same \
             round's figures (99% interval), which cancels that drift."
        )
    };
    let mut out = vec![format!(
        "What each measures: criterion times each model in one stretch of a few seconds, one \
         model after another, with one client writing a message and reading its echo over one \
         long-lived connection; its interval covers the sampling noise within that stretch, not \
         how the machine drifted between the models' stretches. {scale}"
    )];
    out.extend(order(&benches, &paired, &label));
    out
}

/// Criterion's fastest against each other model, checked against scale's paired verdicts on
/// msgs/s at one connection (a round trip's time is the inverse of one connection's rate).
fn order(benches: &[&Bench], paired: &[Comparison], label: &str) -> Option<String> {
    let mut b: Vec<&&Bench> = benches.iter().collect();
    b.sort_by(|x, y| x.ns.total_cmp(&y.ns));
    let (fast, slow) = (b.first()?, b.last()?);
    if b.len() < 2 {
        return None;
    }
    let span = format!(
        "Criterion's round trips span {} ({}) to {} ({}), {} from fastest to slowest",
        us(fast.ns),
        fast.model,
        us(slow.ns),
        slow.model,
        times(slow.ns / fast.ns)
    );
    if paired.is_empty() {
        return Some(format!(
            "{span}; this run has no paired rounds at scale's {label}, so nothing checks that \
             order and this section ranks no model."
        ));
    }
    // Each pair criterion's intervals separate, with what scale's rounds said of it.
    let (mut separated, mut confirmed, mut contradicted) = (0, Vec::new(), Vec::new());
    let (mut lo, mut hi) = (f64::INFINITY, 0.0f64);
    for (i, x) in b.iter().enumerate() {
        for y in &b[i + 1..] {
            if x.upper_ns >= y.lower_ns {
                continue;
            }
            separated += 1;
            let Some(c) = paired.iter().find(|c| c.between(&x.model, &y.model)) else { continue };
            let (r, l, h) = c.seen_from(&x.model);
            lo = lo.min(l);
            hi = hi.max(h);
            let text = format!(
                "{} faster than {} (criterion {}, scale {} ({l:.2}-{h:.2}))",
                x.model,
                y.model,
                times(y.ns / x.ns),
                times(r)
            );
            match (&c.verdict, c.better.as_deref()) {
                (Verdict::Different, Some(m)) if m == x.model => confirmed.push(text),
                (Verdict::Different, _) => contradicted.push(text),
                _ => {}
            }
        }
    }
    let called = paired.iter().filter(|c| c.verdict == Verdict::Different).count();
    let mut s = format!(
        "{span}; its intervals separate {separated} pairs of models. Scale's paired rounds at \
         {label} called {called} of their {} pairs different on msgs/s",
        paired.len()
    );
    if lo.is_finite() {
        s.push_str(&format!(
            ", their intervals for the pairs criterion separates spanning {lo:.2} to {hi:.2}"
        ));
    }
    if confirmed.is_empty() {
        s.push_str(
            ". No order of criterion's is confirmed by them, so this section ranks no model: \
             its differences lie within the noise that the paired rounds show.",
        );
    } else {
        s.push_str(&format!(
            ". Only where both agree is an order stated: {}.",
            crate::text::join(&confirmed)
        ));
    }
    if !contradicted.is_empty() {
        s.push_str(&format!(
            " The paired rounds call the opposite order for {}: there criterion's figure is \
             the drift between its stretches, not the models.",
            crate::text::join(&contradicted)
        ));
    }
    Some(s)
}

fn us(ns: f64) -> String {
    format!("{} us", sig(ns / 1000.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bench(model: &str, us: f64, half: f64) -> Bench {
        Bench {
            group: ROUNDTRIP.into(),
            model: model.into(),
            ns: us * 1e3,
            lower_ns: (us - half) * 1e3,
            upper_ns: (us + half) * 1e3,
            confidence: 0.95,
        }
    }

    /// Rates of `a` and `b` at 1 conn over 10 rounds, `b / a` scattering by `spread` about
    /// `ratio`.
    fn paired(a: &str, b: &str, ratio: f64, spread: f64) -> Comparison {
        let ra: Vec<(u32, f64)> = (1..=10).map(|r| (r, 10_000.0)).collect();
        let rb: Vec<(u32, f64)> = (1..=10)
            .map(|r| (r, 10_000.0 * ratio * (1.0 + spread * (f64::from(r) - 5.5) / 4.5)))
            .collect();
        compare::compare(("scale", "1 conn"), &compare::RATE, (a, &ra), (b, &rb)).unwrap()
    }

    /// 2026-12-07-vm-2: criterion put fork first with tight intervals; scale at one
    /// connection measured hybrid fastest, and its paired rounds told none of them apart.
    fn vm2() -> (Vec<Bench>, Vec<Comparison>) {
        let b =
            vec![bench("fork", 99.0, 3.0), bench("hybrid", 115.0, 4.5), bench("mio", 111.0, 1.5)];
        let p = vec![
            paired("fork", "hybrid", 1.3, 0.3),
            paired("fork", "mio", 1.05, 0.2),
            paired("hybrid", "mio", 0.8, 0.3),
        ];
        (b, p)
    }

    #[test]
    fn an_order_within_the_paired_noise_is_not_a_ranking() {
        let (b, p) = vm2();
        let refs: Vec<&Bench> = b.iter().collect();
        let s = order(&refs, &p, "1 conn").unwrap();
        assert!(s.contains("99.0 us (fork) to 115 us (hybrid)"), "{s}");
        assert!(s.contains("its intervals separate 2 pairs"), "{s}");
        assert!(s.contains("called 0 of their 3 pairs"), "{s}");
        assert!(s.contains("ranks no model"), "{s}");
    }

    #[test]
    fn an_order_the_paired_rounds_call_the_same_way_is_stated() {
        let (b, mut p) = vm2();
        // fork's rate 1.25x hybrid's in every round: fork faster, as criterion says.
        p[0] = paired("hybrid", "fork", 1.25, 0.02);
        let refs: Vec<&Bench> = b.iter().collect();
        let s = order(&refs, &p, "1 conn").unwrap();
        assert!(
            s.contains("Only where both agree is an order stated: fork faster than hybrid"),
            "{s}"
        );
        // And the opposite call is said to contradict criterion.
        p[0] = paired("fork", "hybrid", 1.25, 0.02);
        let s = order(&refs, &p, "1 conn").unwrap();
        assert!(s.contains("call the opposite order for fork faster than hybrid"), "{s}");
        assert!(s.contains("ranks no model"), "{s}");
    }
}
