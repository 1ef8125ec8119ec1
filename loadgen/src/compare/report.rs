//! `report.md`: the comparison a reader sees on GitHub without running anything.
//!
//! Order: what was run and where, the headlines, the environment, any faults, then one section
//! per scenario (its question, a table of medians, its charts, the findings), the caveats, how
//! to read the figures, and the files. Everything is written from the results alone, so the
//! same function renders a finished run, an interrupted one, or a synthetic one in tests.

use std::fmt::Write;

use super::caveats::{self, caveats};
use super::charts::Chart;
use super::findings::{idle_cost, scenario_findings};
use super::plan::Scenario;
use super::results::{FaultKind, PointResults, Results, RunStatus, Summary};
use super::text::{format_duration, sig, thousands};

/// Renders the whole report.
pub fn render(results: &Results, charts: &[Chart]) -> String {
    let mut md = String::new();
    header(&mut md, results);
    environment(&mut md, results);
    faults(&mut md, results);
    for &scenario in &results.plan.scenarios {
        section(&mut md, results, scenario, charts);
    }
    let _ = writeln!(md, "## Caveats\n");
    for c in caveats(results) {
        let _ = writeln!(md, "- {c}");
    }
    reading(&mut md);
    md
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
        "Measured {} on `{}`, {} profile: {} repeat(s) of {} warm-up + {} per point, {} in all \
         (estimated {}). Status: {status}.\n",
        r.started_at.get(..10).unwrap_or(&r.started_at),
        r.environment.host,
        r.plan.profile.name(),
        r.plan.repeats,
        format_duration(r.plan.warmup),
        format_duration(r.plan.duration),
        format_duration(std::time::Duration::from_secs_f64(r.elapsed_seconds)),
        format_duration(std::time::Duration::from_secs_f64(r.estimated_seconds)),
    );
    let _ = writeln!(
        md,
        "Reproduce with `cargo bench --bench compare` (the standard profile; at most 15 minutes \
         on 2 cores), `ECHOBENCH_QUICK=1 cargo bench --bench compare` for a one-minute smoke \
         run, or see `loadgen compare --help` for every option.\n"
    );
    if let Some(warning) = caveats::busy(r) {
        let _ = writeln!(md, "> {warning}\n");
    }
    let _ = writeln!(md, "## Headlines\n");
    for &scenario in &r.plan.scenarios {
        if let Some(first) = scenario_findings(r, scenario).into_iter().next() {
            let _ = writeln!(md, "- *{}* {first}", scenario.name());
        }
    }
    md.push('\n');
}

fn environment(md: &mut String, r: &Results) {
    let e = &r.environment;
    let or = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".into());
    let num = |v: Option<u64>| v.map_or("unknown".into(), |n| n.to_string());
    let pin = |c: Option<usize>| c.map_or("unpinned".into(), |c| format!("CPU {c}"));
    let rows = [
        ("CPU", format!("{} ({} CPUs)", or(&e.cpu_model), e.cores)),
        ("Kernel", or(&e.kernel)),
        ("Virtualization", e.virtualization.clone().unwrap_or_else(|| "none detected".into())),
        ("net.core.somaxconn", num(e.somaxconn)),
        ("net.ipv4.tcp_tw_reuse", num(e.tcp_tw_reuse)),
        ("Ephemeral ports", or(&e.ip_local_port_range)),
        ("Descriptor limit (soft)", num(e.fd_limit)),
        ("Load average (1 min) seen by the generator, the servers' own threads included", {
            caveats::load_range(r)
                .map_or("unknown".into(), |(lo, hi)| format!("{lo:.2} to {hi:.2}"))
        }),
        ("Harness's own CPU (sampling /proc)", format!("{:.1} s", r.harness_cpu_seconds)),
        ("Server placement", pin(r.placement.server_cpu)),
        ("Generator placement", pin(r.placement.generator_cpu)),
        ("Commit", or(&e.git_commit)),
    ];
    let _ = writeln!(md, "## Environment\n\n| | |\n|---|---|");
    for (k, v) in rows {
        let _ = writeln!(md, "| {k} | {v} |");
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

/// One column of a scenario table: header and how to print a point's cell.
type Column = (&'static str, fn(&PointResults, &Summary, Option<f64>) -> String);

fn columns(scenario: Scenario) -> Vec<Column> {
    let rate: Column = ("msgs/s", |_, s, _| thousands(s.median.msgs_per_sec));
    let spread: Column =
        (
            "spread",
            |_, s, _| if s.repeats > 1 { format!("±{:.0}%", s.spread * 50.0) } else { "-".into() },
        );
    let p50: Column = ("p50 us", |_, s, _| sig(s.median.latency_us.p50));
    let p99: Column = ("p99 us", |_, s, _| sig(s.median.latency_us.p99));
    let cpu: Column =
        ("server CPU us/msg", |_, s, _| s.median.server_cpu_per_msg_us.map_or("-".into(), sig));
    let util: Column =
        ("server CPU %", |_, s, _| format!("{:.0}", s.median.server_cpu_utilization * 100.0));
    let threads: Column = ("threads", |_, s, _| thousands(s.median.server_peak_threads));
    let procs: Column = ("processes", |_, s, _| thousands(s.median.server_peak_processes));
    let pss: Column = ("PSS MiB", |_, s, _| sig(s.median.server_peak_pss_kib / 1024.0));
    match scenario {
        Scenario::Scale => vec![
            rate,
            spread,
            p50,
            p99,
            cpu,
            util,
            ("ctx switches/msg", |_, s, _| {
                s.median.server_ctx_switches_per_msg.map_or("-".into(), sig)
            }),
            ("generator CPU us/msg", |_, s, _| {
                s.median.generator_cpu_per_msg_us.map_or("-".into(), sig)
            }),
            threads,
            procs,
            pss,
        ],
        Scenario::Size => vec![
            ("MiB/s", |_, s, _| sig(s.median.mib_per_sec)),
            rate,
            spread,
            p50,
            p99,
            cpu,
            util,
            pss,
        ],
        Scenario::Churn => vec![
            ("conns/s", |_, s, _| thousands(s.median.msgs_per_sec)),
            spread,
            ("connect p50 us", |_, s, _| s.median.connect_us.map_or("-".into(), |c| sig(c.p50))),
            ("connect p99 us", |_, s, _| s.median.connect_us.map_or("-".into(), |c| sig(c.p99))),
            p99,
            ("server CPU us/conn", |_, s, _| {
                s.median.server_cpu_per_msg_us.map_or("-".into(), sig)
            }),
            util,
            threads,
            procs,
        ],
        Scenario::Idle => vec![
            ("PSS KiB/conn", |_, _, k| k.map_or("-".into(), sig)),
            pss,
            threads,
            procs,
            ("active p50 us", |_, s, _| sig(s.median.latency_us.p50)),
            ("active p99 us", |_, s, _| sig(s.median.latency_us.p99)),
            util,
        ],
        Scenario::Latency => vec![
            ("target msgs/s", |p, _, _| p.target_rate.map_or("-".into(), thousands)),
            ("achieved", |_, s, _| thousands(s.median.msgs_per_sec)),
            p50,
            p99,
            ("p99.9 us", |_, s, _| sig(s.median.latency_us.p999)),
            ("max us", |_, s, _| sig(s.median.latency_us.max)),
            ("uncorrected p99.9", |_, s, _| {
                s.median.latency_us_uncorrected.map_or("-".into(), |u| sig(u.p999))
            }),
            util,
        ],
    }
}

fn section(md: &mut String, r: &Results, scenario: Scenario, charts: &[Chart]) {
    let _ = writeln!(md, "## {}: {}\n", scenario.name(), scenario.question());
    let _ = writeln!(md, "*{}*\n", setup(scenario));
    let cols = columns(scenario);
    let head: Vec<&str> = cols.iter().map(|(h, _)| *h).collect();
    let _ = writeln!(md, "| point | model | {} | notes |", head.join(" | "));
    let _ = writeln!(md, "|---|---|{}---|", "--:|".repeat(cols.len()));
    let mut rows = 0;
    for point in r.plan.points_of(scenario) {
        for m in &r.models {
            let Some(s) = m.scenario(scenario) else { continue };
            let blank = " |".repeat(cols.len());
            let Some(p) = s.points.iter().find(|p| &p.point == point) else {
                let _ = writeln!(md, "| {} | {} |{blank} not run |", point.label(), m.name);
                continue;
            };
            let Some(sum) = &p.summary else {
                let _ = writeln!(md, "| {} | {} |{blank} no figures |", point.label(), m.name);
                continue;
            };
            let kib = idle_cost(s, p).map(|c| c.kib_per_conn);
            let cells: Vec<String> = cols.iter().map(|(_, f)| f(p, sum, kib)).collect();
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                point.label(),
                m.name,
                cells.join(" | "),
                notes(p, sum, r.plan.repeats)
            );
            rows += 1;
        }
    }
    if rows == 0 {
        let _ = writeln!(md, "\nNo figures for this scenario (see Faults).");
    }
    md.push('\n');
    for c in charts.iter().filter(|c| c.scenario == scenario) {
        let _ = writeln!(md, "![{}]({})\n", c.title, c.file);
    }
    let _ = writeln!(md, "**Findings**\n");
    for f in scenario_findings(r, scenario) {
        let _ = writeln!(md, "- {f}");
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
    if s.repeats < planned {
        n.push(format!("{} of {planned} repeats", s.repeats));
    }
    if p.repeats.iter().any(|r| r.status != super::results::RepeatStatus::Ok) {
        n.push("incomplete".into());
    }
    n.join(", ")
}

fn setup(scenario: Scenario) -> &'static str {
    match scenario {
        Scenario::Scale => {
            "Closed loop: each connection sends a 64-byte message and waits for its echo. Rows are medians over the repeats."
        }
        Scenario::Size => {
            "Closed loop over 4 connections, growing message sizes. MiB/s counts payload echoed."
        }
        Scenario::Churn => {
            "Each client connects, sends 64 bytes, reads the echo and closes, over and over. Server CPU per connection covers accept, echo and teardown."
        }
        Scenario::Idle => {
            "Thousands of connections open and silent, plus one active closed-loop client. Memory per connection is (peak PSS - idle server PSS) / connections."
        }
        Scenario::Latency => {
            "Open loop over 10 connections at fixed fractions of each model's closed-loop capacity at 10 connections. Latency is measured from the intended send time (corrected for coordinated omission)."
        }
    }
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
         - **PSS**: proportional set size summed over the tree, so pages shared between forked \
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
