//! `report.md`: the comparison a reader sees on GitHub without running anything.
//!
//! Order: what was run and where, the headlines, the environment, any faults, then one section
//! per scenario (its question, a table of medians, its charts, the findings), the caveats, how
//! to read the figures, and the files. Everything is written from the results alone, so the
//! same function renders a finished run, an interrupted one, or a synthetic one in tests.

use std::fmt::Write;

use crate::baseline::Baseline;
use crate::caveats::{self, caveats};
use crate::charts::Chart;
use crate::measure;
use crate::present::{Cell, Scenario, View};
use crate::registry;
use crate::results::{FaultKind, ModelResults, PointResults, Results, RunStatus, Summary};
use crate::text::{cpu_list, format_duration, thousands};

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
    header(&mut md, results, &run);
    if let Some(base) = baseline {
        crate::baseline::section(&mut md, results, scenarios, base);
    }
    crate::noise::section(&mut md, results);
    environment(&mut md, results);
    models(&mut md, results);
    faults(&mut md, results);
    for &scenario in &run {
        section(&mut md, results, scenario, charts, baseline);
    }
    criterion(&mut md, results);
    let _ = writeln!(md, "## Caveats\n");
    for c in caveats(results) {
        let _ = writeln!(md, "- {c}");
    }
    reading(&mut md);
    md
}

fn header(md: &mut String, r: &Results, run: &[&dyn Scenario]) {
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
        "Measured {} on `{}`, {} profile: {} of {} warm-up + {} per point, every server of a \
         scenario once a round in a shuffled order (seed {}), {} in all (estimated {}). Status: \
         {status}.\n",
        r.started_at.get(..10).unwrap_or(&r.started_at),
        r.environment.host,
        r.plan.profile.name(),
        rounds(r),
        format_duration(r.plan.warmup),
        format_duration(r.plan.duration),
        r.seed.unwrap_or(r.plan.seed),
        format_duration(std::time::Duration::from_secs_f64(r.elapsed_seconds)),
        format_duration(std::time::Duration::from_secs_f64(r.estimated_seconds)),
    );
    let _ = writeln!(
        md,
        "Reproduce with `cargo bench --bench compare` (the standard profile), \
         `ECHOBENCH_QUICK=1 cargo bench --bench compare` for a one-minute smoke run, or see \
         `echobench compare --help` for every option.\n"
    );
    if let Some(warning) = caveats::busy(r) {
        let _ = writeln!(md, "> {warning}\n");
    }
    let _ = writeln!(md, "## Headlines\n");
    for &scenario in run {
        let view = View { results: r, scenario: scenario.name() };
        if let Some(first) = scenario.findings(&view).into_iter().next() {
            let _ = writeln!(md, "- *{}* {first}", scenario.name());
        }
    }
    md.push('\n');
}

/// "8 to 10 rounds (each scenario's own in its table)": the rounds the plan asked of a point.
fn rounds(r: &Results) -> String {
    let (least, most) = (r.plan.repeats, r.plan.max_rounds.unwrap_or(r.plan.repeats));
    let range = if most > least { format!("{least} to {most}") } else { least.to_string() };
    format!("{range} round(s) (a scenario may run fewer: see its notes)")
}

fn environment(md: &mut String, r: &Results) {
    let e = &r.environment;
    let or = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".into());
    let num = |v: Option<u64>| v.map_or("unknown".into(), |n| n.to_string());
    let rows = [
        ("CPU", format!("{} ({} CPUs)", or(&e.cpu_model), e.cores)),
        ("Kernel", or(&e.kernel)),
        ("Virtualization", e.virtualization.clone().unwrap_or_else(|| "none detected".into())),
        ("net.core.somaxconn", num(e.somaxconn)),
        ("net.ipv4.tcp_tw_reuse", num(e.tcp_tw_reuse)),
        ("net.ipv4.tcp_syn_linear_timeouts", num(e.tcp_syn_linear_timeouts)),
        ("Ephemeral ports", or(&e.ip_local_port_range)),
        ("Descriptor limit (soft)", num(e.fd_limit)),
        ("What disturbed the repeats", caveats::disturbances(r)),
        ("Harness's own CPU (sampling /proc)", format!("{:.1} s", r.harness_cpu_seconds)),
        ("Server placement", cpu_list(&r.placement.server_cpus)),
        ("Generator placement", cpu_list(&r.placement.generator_cpus)),
        ("Commit", or(&e.git_commit)),
    ];
    let _ = writeln!(md, "## Environment\n\n| | |\n|---|---|");
    for (k, v) in rows {
        let _ = writeln!(md, "| {k} | {v} |");
    }
    if let Some(generators) = crate::hosts::describe_generators(r) {
        let _ = writeln!(md, "| Generators | {} |", cell(&generators));
    }
    let _ = writeln!(md, "\n{}\n", caveats::placement_note(r));
}

fn faults(md: &mut String, r: &Results) {
    let all: Vec<_> = r
        .models
        .iter()
        .flat_map(|m| {
            m.scenarios.iter().flat_map(move |s| s.server.faults.iter().map(move |f| (m, s, f)))
        })
        .collect();
    if all.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "## Faults\n\nThe run went on past each of these; see results.json for the raw record.\n"
    );
    let _ = writeln!(md, "| Model | Scenario | Fault | Detail |\n|---|---|---|---|");
    for (m, s, f) in &all {
        let kind = match f.kind {
            FaultKind::StartFailed => "failed to start",
            FaultKind::Crashed => "crashed",
            FaultKind::UncleanExit => "unclean exit",
            FaultKind::LeftProcesses => "left processes",
            FaultKind::GeneratorFailed => "generator failed",
        };
        let _ = writeln!(md, "| {} | {} | {kind} | {} |", m.name, s.scenario, cell(&f.detail));
    }
    md.push('\n');
    for (m, s, f) in all.iter().filter(|(_, _, f)| !f.stderr_tail.is_empty()) {
        let _ = writeln!(
            md,
            "<details><summary>{} {}: server stderr tail</summary>\n\n```",
            m.name, s.scenario
        );
        for line in &f.stderr_tail {
            let _ = writeln!(md, "{line}");
        }
        let _ = writeln!(md, "```\n</details>\n");
    }
}

fn section(
    md: &mut String,
    r: &Results,
    scenario: &dyn Scenario,
    charts: &[Chart],
    baseline: Option<&Baseline>,
) {
    let name = scenario.name();
    let _ = writeln!(md, "## {name}: {}\n", scenario.question());
    let _ = writeln!(md, "*{}*\n", scenario.setup());
    if let Some(note) = scenario.models_note() {
        let _ = writeln!(md, "*Models: {note}*\n");
    }
    if !scenario.counters().is_empty() {
        let _ = writeln!(
            md,
            "*Kernel counters ({}) are read from /proc/net/netstat and /proc/net/snmp before \
             and after each repeat. They are machine-wide: every socket on this machine counts, \
             not only the server's, so on a busy machine they include others' drops.*\n",
            scenario.counters().join(", ")
        );
    }
    let cols = scenario.columns();
    let mut head: Vec<String> = cols.iter().map(|(h, _)| h.to_string()).collect();
    let headline = scenario.headline();
    if baseline.is_some() {
        head.push(format!("{} change", headline.name));
    }
    let _ = writeln!(md, "| point | model | {} | notes |", head.join(" | "));
    let _ = writeln!(md, "|---|---|{}---|", "--:|".repeat(head.len()));
    let mut rows = 0;
    for point in r.plan.points_of(name) {
        for m in &r.models {
            let Some(s) = m.scenario(name) else { continue };
            let here = s.points.iter().find(|p| &p.point == point);
            let model = model_label(m, here.and_then(|p| p.server.as_ref()?.workers));
            let blank = " |".repeat(head.len());
            let Some(p) = s.points.iter().find(|p| &p.point == point) else {
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
                notes(p, sum, r.plan.repeats_of(point))
            );
            rows += 1;
        }
    }
    if rows == 0 {
        let _ = writeln!(md, "\nNo figures for this scenario (see Faults).");
    }
    md.push('\n');
    for c in charts.iter().filter(|c| c.scenario == name) {
        let _ = writeln!(md, "![{}]({})\n", c.title, c.file);
    }
    let _ = writeln!(md, "**Findings**\n");
    for f in scenario.findings(&View { results: r, scenario: name }) {
        let _ = writeln!(md, "- {f}");
    }
    md.push('\n');
}

/// The model as the tables name it: with its worker count when it has a pool of workers (the
/// point's own, when its server recorded one), so that a figure is never read as a model's
/// best when it ran on one worker.
fn model_label(m: &ModelResults, at_point: Option<u32>) -> String {
    // A point's own server (cores restarts it with more workers) says best what ran there.
    // The charts name models the same way, so the naming lives with the results.
    m.label(at_point)
}

/// What ran: each model's shape, the flags and workers it was given, and the threads and
/// processes it had when idle (its size at steady state).
fn models(md: &mut String, r: &Results) {
    let _ = writeln!(md, "## Models\n");
    let _ = writeln!(md, "| Model | Shape | Started with | Idle threads | Idle processes |");
    let _ = writeln!(md, "|---|---|---|--:|--:|");
    let mut notes = Vec::new();
    for m in &r.models {
        let server = m.scenarios.iter().map(|s| &s.server).find(|s| s.baseline.is_some());
        let base = server.and_then(|s| s.baseline);
        let (shape, started) = match &m.external {
            Some(e) => {
                let how = match e.pid {
                    Some(pid) => format!("by you, at {} (pid {pid})", e.addr),
                    None => {
                        notes.push(format!(
                            "{} was started by you and named without its pid, so its CPU, \
                             memory and threads are not measured (\"-\" in the tables): give \
                             `--external {}={},pid=PID` to have them sampled.",
                            m.name, m.name, e.addr
                        ));
                        format!("by you, at {}", e.addr)
                    }
                };
                ("your server (`--external`)", how)
            }
            None => {
                let shape = registry::find(&m.name).map_or("(not in the registry)", |x| x.shape);
                let args = server.map(|s| s.args.join(" ")).filter(|a| !a.is_empty());
                let args = args.map(|a| format!(" {a}")).unwrap_or_default();
                (shape, format!("`--addr 127.0.0.1:0{args}`"))
            }
        };
        let _ = writeln!(
            md,
            "| {} | {shape} | {started} | {} | {} |",
            m.name,
            base.map_or("-".into(), |b| b.threads.to_string()),
            base.map_or("-".into(), |b| b.processes.to_string()),
        );
        if !r.plan.scenarios.iter().any(|s| r.plan.runs_server(s, &m.name)) {
            notes.push(format!(
                "{} ran in none of this run's scenarios: each scenario chooses its models (a \
                 datagram server, say, has no connection for a stream scenario to load).",
                m.name
            ));
        }
        for s in &m.scenarios {
            if let Some(why) = &s.skipped {
                notes.push(format!("{} {}: {why}.", m.name, s.scenario));
            }
            for note in &s.notes {
                notes.push(format!("{} {}: {note}.", m.name, s.scenario));
            }
            // A server that spreads connections over workers or children says at exit how
            // evenly it did ("connections per worker: min 3, median 12, max 40"): the spread
            // that hashing or an accept queue produced.
            for line in s.server.stderr_tail.iter().filter(|l| l.contains("connections per ")) {
                let said = line.split_once(": ").map_or(line.as_str(), |(_, rest)| rest);
                notes.push(format!("{} after {}, by its own count: {said}.", m.name, s.scenario));
            }
        }
    }
    md.push('\n');
    for note in notes {
        let _ = writeln!(md, "- {note}");
    }
    md.push('\n');
}

fn notes(p: &PointResults, s: &Summary, planned: u32) -> String {
    let mut n = Vec::new();
    if s.noisy {
        n.push("noisy".to_string());
    }
    if s.saturated {
        n.push("generator saturated".into());
    }
    if s.errors > 0.0 {
        n.push(format!("{} errors", thousands(s.errors)));
    }
    // A server that echoed nothing for a whole window stalled (or the point measures no
    // window, as a burst does: its figures are its own columns).
    if s.median.msgs_per_sec == 0.0 && p.point.burst.is_none() {
        n.push("nothing echoed in the window".into());
    }
    if s.repeats < planned {
        n.push(format!("{} of {planned} rounds", s.repeats));
    } else if s.repeats > planned {
        n.push(format!("{} rounds", s.repeats));
    }
    if p.repeats.iter().any(|r| r.status != crate::results::RepeatStatus::Ok) {
        n.push("incomplete".into());
    }
    if let Some(from) = &p.copied_from {
        n.push(format!("measured in {from}"));
    }
    n.join(", ")
}

/// The criterion benches' figures, when `cargo bench` attached them.
fn criterion(md: &mut String, r: &Results) {
    if r.criterion.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "## Criterion: one message, one connection\n\n*`cargo bench --bench roundtrip`: \
         `roundtrip` is one {} B message written and its echo read over a long-lived \
         connection; `connect_echo_close` connects, sends it, half-closes and reads the echo \
         to the end. Server pinned to CPU 0, client to CPU 1; criterion's estimate with its \
         confidence interval.*\n",
        crate::plan::SMALL_MESSAGE
    );
    let _ = writeln!(md, "| bench | model | time | interval |\n|---|---|--:|--:|");
    let us = |ns: f64| format!("{} us", crate::text::sig(ns / 1000.0));
    for b in &r.criterion {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} to {} ({:.0}%) |",
            b.group,
            b.model,
            us(b.ns),
            us(b.lower_ns),
            us(b.upper_ns),
            b.confidence * 100.0
        );
    }
    crate::criterion_notes::write(md, r);
    md.push('\n');
}

fn reading(md: &mut String) {
    let _ = writeln!(
        md,
        "\n## How to read this\n\n\
         - **msgs/s**: echoed messages per second over the measured window (warm-up excluded).\n\
         - **spread**: half the range of throughput over the repeats, relative to the median; \
         *noisy* marks a full range above 10%.\n\
         - **server CPU**: user+system time of the server's whole process tree (reaped children \
         included) from /proc, over the window; per message, and as % of one core.\n\
         - **PSS**: proportional set size of anonymous and shared memory (the binary's and \
         libraries' file pages left out) summed over the tree, so pages shared between forked \
         processes are counted once.\n\
         - **p50/p99 us**: latency percentiles from loadgen's HdrHistogram, in microseconds.\n\
         - **generator saturated**: loadgen used nearly all its CPU, so it, not the server, may \
         have set the pace.\n\n\
         ## Files\n\n\
         - `results.json`: every raw figure, including each repeat's full loadgen report \
         (schema: results/SCHEMA.md in the repository).\n\
         - `results.csv`: one row per point per repeat.\n\
         - `hlog/`: HdrHistogram interval logs per repeat (`loadgen merge` or the HdrHistogram \
         tools read them).\n\
         - `charts/`: the SVG charts above."
    );
}

/// Makes text safe inside a table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}
