//! The report's side of a comparison with a baseline: the "Changes" section and the tables'
//! change cells.

use std::fmt::Write;
use std::path::Path;

use super::{Baseline, Row, Verdict, absolute, change, changes, describe, find, reference};
use crate::compare::{CONFIDENCE, MARGIN, ROUNDS_FOR_VERDICT};
use crate::measure::Headline;
use crate::present::Scenario;
use crate::results::{PointResults, Results};
use crate::text::cpu_list;

/// The table's change cell for `model` at `point`: the change relative to the reference (or
/// "reference"), with the absolute change beside it.
pub fn cell(
    results: &Results,
    base: &Baseline,
    model: &str,
    point: &PointResults,
    h: &Headline,
) -> String {
    let Some(old) = find(base, model, &point.point) else { return "new".into() };
    let abs = absolute(point, old, h).map(|a| format!("abs {:+.1}%", a * 100.0));
    let rel = reference(results, base).ok().map(|r| {
        if r.name == model {
            return "reference".to_string();
        }
        let c = change(results, base, &r.name, model, &point.point, h);
        c.map_or("not paired".into(), |c| describe(&c, h))
    });
    match (rel, abs) {
        (Some(rel), Some(abs)) => format!("{rel} ({abs})"),
        (Some(only), None) | (None, Some(only)) => only,
        (None, None) => "-".into(),
    }
}

/// Why the reference itself may have changed between the runs: its code or the machine.
fn reference_moved(results: &Results, base: &Baseline, reference: &str) -> Vec<String> {
    let (b, mut out) = (&base.results, Vec::new());
    let (e, f) = (&results.environment, &b.environment);
    let commit = |c: &Option<String>| c.clone().unwrap_or_else(|| "unknown".into());
    let dirty = |c: &Option<String>| c.as_deref().is_none_or(|c| c.contains("uncommitted"));
    if e.git_commit != f.git_commit || dirty(&e.git_commit) || dirty(&f.git_commit) {
        out.push(format!(
            "its code may differ (commit {} in the baseline, {} here)",
            commit(&f.git_commit),
            commit(&e.git_commit)
        ));
    }
    if let (Some(new), Some(old)) = (results.model(reference), b.model(reference)) {
        let file = |m: &crate::results::ModelResults| {
            let path = Path::new(&m.binary);
            (m.external.is_some(), path.file_name().map(|n| n.to_string_lossy().into_owned()))
        };
        if new.external.is_some() && old.external.is_some() {
            out.push("it is a server you started, whose code the harness cannot see".into());
        } else if file(new) != file(old) {
            out.push(format!(
                "another binary ({} in the baseline, {} here)",
                old.binary, new.binary
            ));
        }
    }
    let machine = |e: &crate::env::Environment| {
        let cpu = e.cpu_model.as_deref().unwrap_or("unknown CPU");
        let kernel = e.kernel.as_deref().unwrap_or("unknown kernel");
        format!("{}, {cpu}, {} CPUs, kernel {kernel}", e.host, e.cores)
    };
    if machine(e) != machine(f) {
        out.push(format!("another machine ({} in the baseline; {} here)", machine(f), machine(e)));
    }
    let (p, q) = (&results.placement, &b.placement);
    if (&p.server_cpus, &p.generator_cpus) != (&q.server_cpus, &q.generator_cpus) {
        out.push(format!(
            "another placement (server {}, generator {} in the baseline; server {}, generator {} \
             here)",
            cpu_list(&q.server_cpus),
            cpu_list(&q.generator_cpus),
            cpu_list(&p.server_cpus),
            cpu_list(&p.generator_cpus)
        ));
    }
    out
}

/// The report's "Changes" section.
pub fn section(md: &mut String, results: &Results, scenarios: &[&dyn Scenario], base: &Baseline) {
    let b = &base.results;
    let _ = writeln!(md, "## Changes since the baseline\n");
    let _ = write!(
        md,
        "Against `{}` (measured {}, commit {}). ",
        base.dir.display(),
        b.started_at.get(..10).unwrap_or(&b.started_at),
        b.environment.git_commit.as_deref().unwrap_or("unknown"),
    );
    let c = match changes(results, scenarios, base) {
        Ok(c) => c,
        Err(why) => {
            let _ = writeln!(md, "**It cannot be compared with this run**: {why}.\n");
            let _ = writeln!(
                md,
                "The tables' change column shows only the absolute change (`abs`), which moves \
                 with the machine.\n"
            );
            return;
        }
    };
    let r = &c.reference.name;
    let _ = writeln!(
        md,
        "Each server is read through its ratio to **{r}** ({}), measured in the same rounds of \
         the same run, which cancels the machine's speed. A change is called only where the two \
         runs' {:.0}% intervals of that ratio are apart by more than {:.0}% (the new one wholly \
         above the old one's top × {m}, or wholly below its bottom ÷ {m}), which takes {} \
         rounds in each run. The percentage is how far the median ratio moved; `abs` is the \
         server's own median against the baseline's, which moves with the machine and decides \
         nothing.\n",
        c.reference.chosen,
        CONFIDENCE * 100.0,
        MARGIN * 100.0,
        ROUNDS_FOR_VERDICT,
        m = 1.0 + MARGIN,
    );
    let moved = reference_moved(results, base, r);
    if !moved.is_empty() {
        let _ = writeln!(
            md,
            "> **The reference itself may have changed**: {}. A change of the reference moves \
             every ratio alike: when every server moved the same way, suspect it.\n",
            moved.join("; ")
        );
    }
    let called: Vec<&Row<'_>> = c
        .rows
        .iter()
        .filter(|x| matches!(x.change.verdict, Verdict::Better | Verdict::Worse))
        .collect();
    let decided = c.rows.iter().filter(|x| x.change.verdict != Verdict::FewRounds).count();
    if called.is_empty() && decided > 0 {
        let _ = writeln!(
            md,
            "No server changed relative to {r} beyond the margin ({decided} comparisons with a \
             verdict).\n"
        );
    }
    for x in &called {
        let (h, ch) = (&x.headline, &x.change);
        let abs = ch.absolute.map_or(String::new(), |a| format!("; abs {:+.1}%", a * 100.0));
        let _ = writeln!(
            md,
            "- {} {} {}: {} {} relative to {r} (ratio {:.3} [{:.3}, {:.3}], was {:.3} [{:.3}, \
             {:.3}]){abs}",
            x.model,
            x.scenario,
            x.point,
            h.name,
            describe(ch, h),
            ch.new.ratio,
            ch.new.low,
            ch.new.high,
            ch.old.ratio,
            ch.old.low,
            ch.old.high,
        );
    }
    if !called.is_empty() {
        md.push('\n');
    }
    let few = c.rows.len() - decided;
    if few > 0 {
        let _ = writeln!(
            md,
            "{few} of {} comparisons had fewer than {ROUNDS_FOR_VERDICT} rounds in a run: no \
             verdict.\n",
            c.rows.len()
        );
    }
    if !c.unpaired.is_empty() {
        let _ = writeln!(
            md,
            "Not compared (no round measured them with {r} in one of the runs): {}.\n",
            c.unpaired.join("; ")
        );
    }
    let missing = missing(results, base);
    if !missing.is_empty() {
        let _ = writeln!(md, "Not compared (only one side has them): {}.\n", missing.join("; "));
    }
}

/// Models and points that only one of the two runs has.
fn missing(results: &Results, base: &Baseline) -> Vec<String> {
    let b = &base.results;
    // A scenario one run left out whole is named once, not point by point for every server.
    let only = |of: &Results, other: &Results, side: &str| {
        let names = of.plan.scenarios.iter().filter(|s| !other.plan.scenarios.contains(s));
        names.map(|s| format!("{s} (every point: {side} only)")).collect::<Vec<_>>()
    };
    let mut out = only(results, b, "new");
    out.extend(only(b, results, "baseline"));
    let in_both = |s: &str| {
        results.plan.scenarios.iter().any(|x| x == s) && b.plan.scenarios.iter().any(|x| x == s)
    };
    for m in &results.models {
        if b.model(&m.name).is_none() {
            out.push(format!("{} (new)", m.name));
            continue;
        }
        for s in m.scenarios.iter().filter(|s| in_both(&s.scenario)) {
            for p in s.points.iter().filter(|p| find(base, &m.name, &p.point).is_none()) {
                out.push(format!("{} {} {} (new)", m.name, s.scenario, p.point.label));
            }
        }
    }
    for m in &b.models {
        let Some(now) = results.model(&m.name) else {
            out.push(format!("{} (baseline only)", m.name));
            continue;
        };
        for s in m.scenarios.iter().filter(|s| in_both(&s.scenario)) {
            let here = now.scenario(&s.scenario);
            for p in &s.points {
                let found =
                    here.is_some_and(|h| h.points.iter().any(|x| x.point.same_load(&p.point)));
                if !found {
                    out.push(format!(
                        "{} {} {} (baseline only)",
                        m.name, s.scenario, p.point.label
                    ));
                }
            }
        }
    }
    out
}
