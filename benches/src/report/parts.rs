//! The report's standing parts around the scenarios: the environment, the models, the faults,
//! criterion's figures, the appendix (the bookkeeping a reader rarely needs) and how to read
//! the figures.

use std::fmt::Write;

use crate::caveats;
use crate::registry;
use crate::results::{FaultKind, Results};
use crate::text::{join, sig};

/// The machine, on a few lines: what it is, its network settings, placement, disturbances.
pub fn environment(md: &mut String, r: &Results) {
    let e = &r.environment;
    let or = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".into());
    let num = |v: Option<u64>| v.map_or("unknown".into(), |n| n.to_string());
    let _ = writeln!(md, "## Environment\n");
    let _ = writeln!(
        md,
        "- **Machine**: {} ({} CPUs), kernel {}, {}; commit {}. net.core.somaxconn {}, \
         net.ipv4.tcp_tw_reuse {}, net.ipv4.tcp_syn_linear_timeouts {}, ephemeral ports {}, \
         descriptor limit (soft) {}.",
        or(&e.cpu_model),
        e.cores,
        or(&e.kernel),
        e.virtualization.clone().unwrap_or_else(|| "no virtualization detected".into()),
        or(&e.git_commit),
        num(e.somaxconn),
        num(e.tcp_tw_reuse),
        num(e.tcp_syn_linear_timeouts),
        or(&e.ip_local_port_range),
        num(e.fd_limit)
    );
    let _ = writeln!(
        md,
        "- **What disturbed the repeats**: {}; the harness's own CPU (sampling /proc): {:.1} s.",
        caveats::disturbances(r),
        r.harness_cpu_seconds
    );
    if let Some(generators) = crate::hosts::describe_generators(r) {
        let _ = writeln!(md, "- **Generators**: {}", cell(&generators));
    }
    let _ = writeln!(md, "- **{}\n", caveats::placement_note(r).replacen(": ", "**: ", 1));
}

/// What ran: each model's shape and the flags it was given, on one line each group; the notes
/// a scenario left on a model. Threads and processes when idle, and the servers' own counts of
/// how they spread connections, are in the appendix.
pub fn models(md: &mut String, r: &Results) {
    let _ = writeln!(md, "## Models\n");
    let mut shapes = Vec::new();
    let mut by_args: Vec<(String, Vec<String>)> = Vec::new();
    let mut notes = Vec::new();
    for m in &r.models {
        let server = m.scenarios.iter().map(|s| &s.server).find(|s| s.baseline.is_some());
        match &m.external {
            Some(e) => {
                let pid = e.pid.map_or(String::new(), |pid| format!(" (pid {pid})"));
                shapes.push(format!(
                    "**{}**: your server (`--external`), started by you at {}{pid}",
                    m.name, e.addr
                ));
                if e.pid.is_none() {
                    notes.push(format!(
                        "{} was started by you and named without its pid, so its CPU, memory \
                         and threads are not measured (\"-\" in the tables): give `--external \
                         {}={},pid=PID` to have them sampled.",
                        m.name, m.name, e.addr
                    ));
                }
            }
            None => {
                let shape = match (registry::find(&m.name), &m.control_of) {
                    (Some(x), _) => x.shape.to_string(),
                    (None, Some(of)) => format!("a second {of}, the control"),
                    (None, None) => "(not in the registry)".into(),
                };
                shapes.push(format!("**{}**: {shape}", m.name));
                let args = server.map(|s| s.args.join(" ")).unwrap_or_default();
                match by_args.iter_mut().find(|(a, _)| *a == args) {
                    Some((_, names)) => names.push(m.name.clone()),
                    None => by_args.push((args, vec![m.name.clone()])),
                }
            }
        }
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
        }
    }
    let _ = write!(md, "{}.", shapes.join("; "));
    let started: Vec<String> = by_args
        .iter()
        .map(|(args, names)| {
            let flags = if args.is_empty() { String::new() } else { format!(" {args}") };
            format!("`--addr 127.0.0.1:0{flags}`: {}", join(names))
        })
        .collect();
    if !started.is_empty() {
        let _ = write!(md, " Started with {}.", started.join("; "));
    }
    md.push_str("\n\n");
    for note in &notes {
        let _ = writeln!(md, "- {note}");
    }
    if !notes.is_empty() {
        md.push('\n');
    }
}

pub fn faults(md: &mut String, r: &Results) {
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

/// The criterion benches' figures, when `cargo bench` attached them: one row per model.
pub fn criterion(md: &mut String, r: &Results) {
    if r.criterion.is_empty() {
        return;
    }
    let mut groups: Vec<&str> = r.criterion.iter().map(|b| b.group.as_str()).collect();
    groups.dedup();
    groups.sort_unstable();
    groups.dedup();
    let mut models: Vec<&str> = r.criterion.iter().map(|b| b.model.as_str()).collect();
    models.sort_unstable();
    models.dedup();
    let confidence = r.criterion.first().map_or(0.95, |b| b.confidence);
    let _ = writeln!(
        md,
        "## Criterion: one message, one connection\n\n*`cargo bench --bench roundtrip`: \
         `roundtrip` is one {} B message written and its echo read over a long-lived \
         connection; `connect_echo_close` connects, sends it, half-closes and reads the echo \
         to the end. Server pinned to CPU 0, client to CPU 1; criterion's estimate with its \
         {:.0}% confidence interval.*\n",
        crate::plan::SMALL_MESSAGE,
        confidence * 100.0
    );
    // One row per bench, the models as columns: two rows instead of one per model.
    let _ =
        writeln!(md, "| bench | {} |\n|---|{}", models.join(" | "), "--:|".repeat(models.len()));
    let us = |ns: f64| sig(ns / 1000.0);
    for g in &groups {
        let cells: Vec<String> = models
            .iter()
            .map(|model| {
                let b = r.criterion.iter().find(|b| b.model == *model && b.group == *g);
                b.map_or("-".into(), |b| {
                    format!("{} ({}-{})", us(b.ns), us(b.lower_ns), us(b.upper_ns))
                })
            })
            .collect();
        let _ = writeln!(md, "| {g} (us) | {} |", cells.join(" | "));
    }
    crate::criterion_notes::write(md, r);
    md.push('\n');
}

/// The bookkeeping: how servers with workers or children spread their connections, by their
/// own count at exit, and each model's threads and processes when idle.
pub fn appendix(md: &mut String, r: &Results) {
    let _ = writeln!(md, "## Appendix\n");
    let mut spreads = Vec::new();
    for m in &r.models {
        // A server that spreads connections over workers or children says at exit how evenly
        // it did ("connections per worker: min 3, median 12, max 40"): the spread that
        // hashing or an accept queue produced.
        let mut per = "";
        let said: Vec<String> = m
            .scenarios
            .iter()
            .flat_map(|s| {
                let lines = s.server.stderr_tail.iter().filter(|l| l.contains("connections per "));
                lines.map(|l| (s.scenario.as_str(), l.as_str())).collect::<Vec<_>>()
            })
            .map(|(scenario, line)| {
                per = if line.contains("per child") { "child" } else { "worker" };
                format!("{scenario} {}", spread(line))
            })
            .collect();
        if !said.is_empty() {
            spreads.push(format!("{} (per {per}): {}", m.name, said.join(", ")));
        }
    }
    if !spreads.is_empty() {
        let _ = writeln!(
            md,
            "Connections per worker or child, min/median/max of the scenario's connections, as \
             each server counted them at exit (its whole line, with children and workers, is in \
             results.json's `server.stderr_tail`): {}.\n",
            spreads.join("; ")
        );
    }
    let idle: Vec<String> = r
        .models
        .iter()
        .filter_map(|m| {
            let base = m.scenarios.iter().find_map(|s| s.server.baseline)?;
            Some(format!("{} {}/{}", m.name, base.threads, base.processes))
        })
        .collect();
    if !idle.is_empty() {
        let _ = writeln!(
            md,
            "Threads/processes of each server when idle (its size at steady state): {}.\n",
            idle.join(", ")
        );
    }
}

/// "0/1/22 of 8924" from a server's "connections per child: min 0, median 1, max 22 (8924
/// connections, ...)" or "... (by worker: 10 12)"; the line as it is when it reads otherwise.
pub fn spread(line: &str) -> String {
    let after = |key: &str| -> Option<u64> {
        let rest = &line[line.find(key)? + key.len()..];
        rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
    };
    let total = after("(").or_else(|| {
        let by = &line[line.find("by worker: ")? + "by worker: ".len()..];
        let n = by.trim_end_matches(')').split_whitespace().map(|w| w.parse::<u64>().ok());
        n.sum::<Option<u64>>()
    });
    match (after("min "), after("median "), after("max ")) {
        (Some(a), Some(b), Some(c)) => {
            let of = total.map_or(String::new(), |t| format!(" of {t}"));
            format!("{a}/{b}/{c}{of}")
        }
        _ => line.split_once(": ").map_or(line, |(_, rest)| rest).to_string(),
    }
}

pub fn reading(md: &mut String) {
    let _ = writeln!(
        md,
        "## How to read this and the files\n\n\
         - **Tables** are medians over a point's rounds and keep only the figures the findings \
         use. Every other figure, at every point, is in `results.csv` (one row per point per \
         round) and `results.json` (each point's medians in `summary`, strace counts and \
         loadgen's full report in each repeat). `*` marks a cell measured with the generator \
         saturated: loadgen used nearly all its CPU, so it, not the server, may have set the \
         pace.\n\
         - **±** is always half the range of a point's throughput over its rounds, relative \
         to the median; *noisy* means beyond ±5%.\n\
         - **A paired ratio** \"0.93x (0.85-1.02)\" is the median of the rounds' ratios with \
         its distribution-free interval; the verdict (different, equivalent within 3%, or \
         undecided) is results.json's `comparisons`.\n\
         - **server CPU**: user+system time of the server's process tree (reaped children \
         included) over the window, per message or as % of one core. **PSS**: proportional \
         set size of anonymous and shared memory, summed over the tree.\n\
         - **Files**: `details.md` (every finding), `results.json` (every raw figure; \
         results/SCHEMA.md), `results.csv`, `hlog/` (histogram logs, for `loadgen merge`), \
         `charts/`."
    );
}

/// Makes text safe inside a table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::spread;

    #[test]
    fn a_servers_count_reads_as_min_median_max_of_all() {
        let child = "connections per child: min 0, median 1, max 22 (8924 connections, 8656 \
                     children, at most 1008 at once)";
        assert_eq!(spread(child), "0/1/22 of 8924");
        let worker = "connections per worker: min 100, median 102, max 102 (by worker: 102 100)";
        assert_eq!(spread(worker), "100/102/102 of 202");
        assert_eq!(spread("connections per worker: min 5, median 6, max 7"), "5/6/7");
        assert_eq!(spread("connections per worker: unknown"), "unknown");
    }
}
