//! `report.md`: the comparison a reader sees on GitHub without running anything.
//!
//! Order: what was run and where, the summary (one row per scenario, its verdict from the
//! paired comparisons, and the chart that sums the run up), the noise floor, the environment
//! and models, any faults, then one section per scenario (its question, a compact table of the
//! figures its findings use, its charts, the findings), the caveats, the appendix (the
//! bookkeeping a reader rarely needs), how to read the figures, and the files. Everything is
//! written from the results alone, so the same function renders a finished run, an
//! interrupted one, or a synthetic one in tests. Every figure a table leaves out is in
//! results.csv (per round) and results.json (medians per point), and the report says so.

use std::fmt::Write;

use crate::baseline::Baseline;
use crate::caveats::{self, caveats};
use crate::charts::Chart;
use crate::measure;
use crate::present::{Cell, Column, Scenario, View};
use crate::results::{ModelResults, PointResults, Results, RunStatus, Summary};
use crate::text::{format_duration, join};

mod parts;
pub mod summary;

/// Renders the whole report.
pub fn render(
    results: &Results,
    scenarios: &[&dyn Scenario],
    charts: &[Chart],
    baseline: Option<&Baseline>,
) -> String {
    let mut md = String::new();
    let run: Vec<&dyn Scenario> =
        results.plan.scenarios.iter().filter_map(|n| measure::find(scenarios, n)).collect();
    header(&mut md, results);
    summary::section(&mut md, results, &run, charts);
    if let Some(base) = baseline {
        crate::baseline::section(&mut md, results, scenarios, base);
    }
    crate::noise::section(&mut md, results);
    parts::environment(&mut md, results);
    parts::models(&mut md, results);
    parts::faults(&mut md, results);
    for &scenario in &run {
        section(&mut md, results, scenario, charts, baseline);
    }
    let _ = writeln!(md, "## Caveats\n");
    for c in caveats(results) {
        let _ = writeln!(md, "- {c}");
    }
    md.push('\n');
    let _ = writeln!(
        md,
        "## In full\n\n[details.md](details.md) holds every finding of every scenario (this page \
         keeps each one's first and its explanations), the pairs of the lineage, the \
         criterion benches and the appendix of per-worker and per-child spreads; results.csv \
         and results.json every figure.\n"
    );
    parts::reading(&mut md);
    compact_headings(&md)
}

/// How many of a scenario's findings report.md keeps (besides its "why"s): the first, its
/// answer. Every finding is in details.md.
const KEPT: usize = 1;

/// Whether report.md keeps a scenario's `i`th finding `f`: the first [`KEPT`], and every
/// explanation (a finding that starts "Why"), so each comparison keeps its reason.
fn kept_finding(i: usize, f: &str) -> bool {
    i < KEPT || f.starts_with("Why")
}

/// The anchor GitHub gives a heading: lower case, punctuation other than `-` and `_` dropped,
/// spaces turned into `-`.
fn anchor(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// details.md: every finding of every scenario, the pairs of the lineage, the criterion
/// benches and the appendix: what report.md leaves out to stay one read long.
pub fn details(results: &Results, scenarios: &[&dyn Scenario]) -> String {
    let mut md = String::new();
    let run: Vec<&dyn Scenario> =
        results.plan.scenarios.iter().filter_map(|n| measure::find(scenarios, n)).collect();
    let _ = writeln!(
        md,
        "# echobench: the findings in full\n\nThe companion of [report.md](report.md): every \
         finding of every scenario, in order, then what each step of the models' lineage buys, \
         the criterion benches and the appendix. The tables, charts and caveats are in the \
         report.\n"
    );
    for &scenario in &run {
        let view = View { results, scenario: scenario.name() };
        let _ = writeln!(md, "## {}: {}\n", scenario.name(), scenario.question());
        if let Some(note) = scenario.models_note() {
            let _ = writeln!(md, "*Models: {note}*\n");
        }
        if !scenario.counters().is_empty() {
            let _ = writeln!(
                md,
                "*Kernel counters ({}): machine-wide, read before and after each round.*\n",
                scenario.counters().join(", ")
            );
        }
        for f in scenario.findings(&view).iter().filter(|f| !control_only(f, results)) {
            let _ = writeln!(md, "- {f}");
        }
        md.push('\n');
    }
    let pairs = crate::findings::pairs(results, &run);
    if !pairs.is_empty() {
        let _ = writeln!(
            md,
            "## Pairs: what each step of the lineage buys\n\n*Each model against the one it \
             is best read against (the registry's lineage), in every scenario that ran both, at \
             the point its findings rank, where the rounds sufficed for a verdict: the first \
             model's paired ratio to the second, with its interval (CPU: server CPU).*\n"
        );
        for p in pairs {
            let _ = writeln!(md, "- {p}");
        }
        md.push('\n');
    }
    parts::criterion(&mut md, results);
    parts::appendix(&mut md, results);
    compact_headings(&md)
}

/// The report with no blank line after a heading: a heading is a block of its own in
/// Markdown, so the blank line adds length and nothing else.
fn compact_headings(md: &str) -> String {
    let mut out = String::with_capacity(md.len());
    let (mut after_heading, mut fenced) = (false, false);
    for line in md.lines() {
        if after_heading && line.is_empty() {
            after_heading = false;
            continue;
        }
        // A server's stderr quoted in a fence may have lines that start with '#'.
        fenced ^= line.starts_with("```");
        after_heading =
            !fenced && line.trim_start_matches('#').starts_with(' ') && line.starts_with('#');
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Whether a finding is about a control alone (a second instance of a model, whose every
/// difference from its twin is noise): the noise floor section reports the control, and
/// its figures are in the tables, so its own sentences are left out.
fn control_only(finding: &str, r: &Results) -> bool {
    let controls: Vec<&str> =
        r.models.iter().filter(|m| m.control_of.is_some()).map(|m| m.name.as_str()).collect();
    let Some(control) = controls.iter().find(|c| finding.contains(**c)) else { return false };
    let rest = finding.replace(control, "");
    let word = |name: &str| {
        rest.match_indices(name).any(|(i, _)| {
            let before = rest[..i].chars().next_back().is_none_or(|c| !c.is_alphanumeric());
            let after = rest[i + name.len()..].chars().next().is_none_or(|c| !c.is_alphanumeric());
            before && after
        })
    };
    !r.models.iter().filter(|m| m.control_of.is_none()).any(|m| word(&m.name))
}

fn header(md: &mut String, r: &Results) {
    let models = r.plan.models.join(", ");
    let _ = writeln!(md, "# echobench: {models} compared\n");
    let status = match r.status {
        RunStatus::Complete => "complete".to_string(),
        RunStatus::Interrupted => {
            "**interrupted** (Ctrl-C): only what was measured is shown".into()
        }
        RunStatus::Running => {
            "**in progress or cut short**: only what was measured is shown".into()
        }
    };
    let _ = writeln!(
        md,
        "Measured {} on `{}`, {} profile: each point {} warm-up + {} measured, every server of a \
         scenario once a round in a shuffled order (seed {}), as many rounds as the summary \
         says per scenario; {} in all (estimated {}). Status: {status}. Reproduce with `cargo \
         bench --bench compare`, or see `echobench compare --help`.\n",
        r.started_at.get(..10).unwrap_or(&r.started_at),
        r.environment.host,
        r.plan.profile.name(),
        format_duration(r.plan.warmup),
        format_duration(r.plan.duration),
        r.seed.unwrap_or(r.plan.seed),
        format_duration(std::time::Duration::from_secs_f64(r.elapsed_seconds)),
        format_duration(std::time::Duration::from_secs_f64(r.estimated_seconds)),
    );
    if let Some(warning) = caveats::busy(r) {
        let _ = writeln!(md, "> {warning}\n");
    }
}

/// The columns a scenario's table keeps: its own choice, else the column of its headline
/// figure (its first column when none is named so) and server CPU per message (or per
/// connection).
pub fn kept(scenario: &dyn Scenario) -> Vec<Column> {
    let all = scenario.columns();
    let mut chosen = scenario.key_columns();
    if chosen.is_empty() {
        let name = scenario.headline().name;
        let headline = |h: &str| h == name || h.strip_prefix(name).is_some_and(|r| r == " us");
        let first = all.iter().find(|(h, _)| headline(h)).or(all.first());
        chosen.extend(first.map(|(h, _)| *h));
        chosen.extend(all.iter().map(|(h, _)| *h).filter(|h| h.starts_with("server CPU us/")));
    }
    all.iter().filter(|(h, _)| chosen.contains(h)).copied().collect()
}

fn section(
    md: &mut String,
    r: &Results,
    scenario: &dyn Scenario,
    charts: &[Chart],
    baseline: Option<&Baseline>,
) {
    let name = scenario.name();
    let view = View { results: r, scenario: name };
    let _ = writeln!(md, "## {name}: {}\n", scenario.question());
    let _ = writeln!(md, "*{}*\n", scenario.setup());
    let models: Vec<&ModelResults> =
        r.models.iter().filter(|m| m.scenario(name).is_some()).collect();
    if models
        .iter()
        .all(|m| m.scenario(name).is_none_or(|s| s.points.iter().all(|p| p.summary.is_none())))
    {
        let _ = writeln!(md, "No figures for this scenario (see Faults).\n");
    } else if baseline.is_some() || models.len() <= kept(scenario).len() {
        // One row per point and model, unless turning the table (models as its columns, one
        // row per figure and point) makes it shorter.
        by_row(md, r, scenario, &models, baseline);
    } else {
        turned(md, r, scenario, &models);
    }
    let images: Vec<String> = charts
        .iter()
        .filter(|c| c.scenario == name)
        .map(|c| format!("![{}]({})", c.title, c.file))
        .collect();
    if !images.is_empty() {
        // The findings' list follows the images' paragraph directly: a list may interrupt a
        // paragraph in Markdown.
        let _ = writeln!(md, "{}", images.join(" "));
    }
    let findings: Vec<String> =
        scenario.findings(&view).into_iter().filter(|f| !control_only(f, r)).collect();
    for (_, f) in findings.iter().enumerate().filter(|(i, f)| kept_finding(*i, f)) {
        let _ = writeln!(md, "- {f}");
    }
    let more = findings.iter().enumerate().filter(|(i, f)| !kept_finding(*i, f)).count();
    if more > 0 {
        let anchor = anchor(&format!("{name}: {}", scenario.question()));
        let _ = writeln!(md, "- *{more} more in [details.md](details.md#{anchor}).*");
    }
    md.push('\n');
}

/// One row per point and model, the kept columns, and the notes.
fn by_row(
    md: &mut String,
    r: &Results,
    scenario: &dyn Scenario,
    models: &[&ModelResults],
    baseline: Option<&Baseline>,
) {
    let name = scenario.name();
    let cols = kept(scenario);
    let mut head: Vec<String> = cols.iter().map(|(h, _)| h.to_string()).collect();
    let headline = scenario.headline();
    if baseline.is_some() {
        head.push(format!("{} change", headline.name));
    }
    let _ = writeln!(md, "| point | model | {} | notes |", head.join(" | "));
    let _ = writeln!(md, "|---|---|{}---|", "--:|".repeat(head.len()));
    for point in r.plan.points_of(name) {
        for m in models {
            let Some(s) = m.scenario(name) else { continue };
            let here = s.points.iter().find(|p| &p.point == point);
            let model = model_label(m, here.and_then(|p| p.server.as_ref()?.workers));
            let blank = " |".repeat(head.len());
            let Some(p) = here else {
                let _ = writeln!(md, "| {} | {model} |{blank} not run |", point.label);
                continue;
            };
            let Some(sum) = &p.summary else {
                let _ = writeln!(md, "| {} | {model} |{blank} no figures |", point.label);
                continue;
            };
            let cell = Cell { model: m, scenario: s, point: p, summary: sum };
            let mut cells: Vec<String> = cols.iter().map(|(_, f)| f(&cell)).collect();
            if let Some(base) = baseline {
                cells.push(crate::baseline::cell(r, base, &m.name, p, &headline));
            }
            let _ = writeln!(
                md,
                "| {} | {model} | {} | {} |",
                point.label,
                cells.join(" | "),
                notes(p, sum, r.plan.repeats_of(point)).join(", ")
            );
        }
    }
    md.push('\n');
}

/// Models as columns, one row per kept figure and point: a cell marked `*` was measured with
/// the generator saturated; the other notes follow the table in one line.
fn turned(md: &mut String, r: &Results, scenario: &dyn Scenario, models: &[&ModelResults]) {
    let name = scenario.name();
    let cols = kept(scenario);
    // A model whose worker count changed between points (cores) is named without one.
    let heads: Vec<String> = models
        .iter()
        .map(|m| {
            let mut w: Vec<Option<u32>> = m
                .scenario(name)
                .map(|s| s.points.iter().map(|p| p.server.as_ref().and_then(|x| x.workers)))
                .into_iter()
                .flatten()
                .collect();
            w.dedup();
            if w.len() > 1 { m.name.clone() } else { model_label(m, w.first().copied().flatten()) }
        })
        .collect();
    let _ = writeln!(md, "| figure | point | {} |", heads.join(" | "));
    let _ = writeln!(md, "|---|---|{}", "--:|".repeat(heads.len()));
    let (mut saturated, mut other) = (false, Vec::new());
    for (h, f) in &cols {
        for point in r.plan.points_of(name) {
            let cells: Vec<String> = models
                .iter()
                .map(|m| {
                    let Some(s) = m.scenario(name) else { return "-".into() };
                    let Some(p) = s.points.iter().find(|p| &p.point == point) else {
                        return "not run".into();
                    };
                    let Some(sum) = &p.summary else { return "no figures".into() };
                    let mark = if sum.saturated { "*" } else { "" };
                    saturated |= sum.saturated;
                    if h == &cols[0].0 {
                        for n in notes(p, sum, r.plan.repeats_of(point)) {
                            if n != SATURATED {
                                other.push((point.label.clone(), n, m.name.clone()));
                            }
                        }
                    }
                    format!("{}{mark}", f(&Cell { model: m, scenario: s, point: p, summary: sum }))
                })
                .collect();
            let _ = writeln!(md, "| {h} | {} | {} |", point.label, cells.join(" | "));
        }
    }
    let mut after: Vec<String> = Vec::new();
    if saturated {
        after.push("\\* generator saturated.".to_string());
    }
    after.extend(grouped(&other, models.len()));
    if !after.is_empty() {
        let _ = writeln!(md, "\n{}", after.join(" "));
    }
    md.push('\n');
}

/// The notes of a turned table in one sentence, each note once per point with the models it
/// concerns: "depth 1, measured in size: every model".
fn grouped(notes: &[(String, String, String)], models: usize) -> Option<String> {
    let mut groups: Vec<(&str, &str, Vec<String>)> = Vec::new();
    for (point, note, model) in notes {
        match groups.iter_mut().find(|(p, n, _)| p == point && n == note) {
            Some((_, _, names)) => names.push(model.clone()),
            None => groups.push((point, note, vec![model.clone()])),
        }
    }
    let parts: Vec<String> = groups
        .iter()
        .map(|(point, note, names)| {
            let who = if names.len() == models { "every model".into() } else { join(names) };
            format!("{point}, {note}: {who}")
        })
        .collect();
    (!parts.is_empty()).then(|| format!("Notes: {}.", parts.join("; ")))
}

/// The note of a point whose generator was saturated.
const SATURATED: &str = "generator saturated";

/// The model as the tables name it: with its worker count when it has a pool of workers (the
/// point's own, when its server recorded one), so that a figure is never read as a model's
/// best when it ran on one worker.
pub fn model_label(m: &ModelResults, at_point: Option<u32>) -> String {
    // A point's own server (cores restarts it with more workers) says best what ran there.
    // The charts name models the same way, so the naming lives with the results.
    m.label(at_point)
}

/// What a table says beside a point's figures: the generator's saturation, errors, a window
/// with nothing echoed, rounds other than planned, an incomplete point, figures measured in
/// another scenario. (How much the rounds varied is in results.json's `summary.spread`.)
fn notes(p: &PointResults, s: &Summary, planned: u32) -> Vec<String> {
    let mut n = Vec::new();
    if s.saturated {
        n.push(SATURATED.to_string());
    }
    if s.errors > 0.0 {
        n.push(format!("{} errors", crate::text::thousands(s.errors)));
    }
    // A server that echoed nothing for a whole window stalled (or the point measures no
    // window, as a burst does: its figures are its own columns).
    if s.median.msgs_per_sec == 0.0 && p.point.burst.is_none() {
        n.push("nothing echoed in the window".into());
    }
    if s.repeats < planned {
        n.push(format!("{} of {planned} rounds", s.repeats));
    }
    if p.repeats.iter().any(|r| r.status != crate::results::RepeatStatus::Ok) {
        n.push("incomplete".into());
    }
    if let Some(from) = &p.copied_from {
        n.push(format!("measured in {from}"));
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_get_githubs_anchors() {
        let heading = "scale: How does each model hold up as connections grow?";
        assert_eq!(anchor(heading), "scale-how-does-each-model-hold-up-as-connections-grow");
        assert_eq!(
            anchor("nagle: Why do some echoes take 40 ms?"),
            "nagle-why-do-some-echoes-take-40-ms"
        );
    }

    #[test]
    fn the_report_keeps_two_findings_and_every_why() {
        let kept: Vec<usize> = ["a", "b", "c", "Why: d", "e"]
            .iter()
            .enumerate()
            .filter(|(i, f)| kept_finding(*i, f))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(kept, [0, 3]);
    }
}
