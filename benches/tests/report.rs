//! The comparison report from a synthetic run: every model appears, findings name winners from
//! the numbers, faults and interruptions are reported, and the files parse back.

use std::time::SystemTime;

use harness::disturb::Disturbance;
use harness::plan::{Placement, Point, Profile};
use harness::procstat::Usage;
use harness::results::*;
use harness::scenario::{self, ALL};
use harness::{CompareArgs, charts, csv, env::Environment, output::Output, render, report};

mod util;
use util::scratch;

/// The suite's four models as the synthetic run has them.
const MODELS: [&str; 4] = ["fork", "thread", "mio", "hybrid"];

/// A loadgen report that says `msgs_per_sec`, for the raw record a rerender reads.
fn loadgen_report(msgs_per_sec: f64, loadavg: f64) -> loadgen::Report {
    let mut r = loadgen::Report::default();
    r.throughput.msgs_per_sec = msgs_per_sec;
    r.environment.loadavg_1m = loadavg;
    r
}

/// Throughput of `model` at `x` in the synthetic run: mio best, then hybrid, thread, fork.
fn rate(model: &str, x: f64) -> f64 {
    let k = match model {
        "mio" => 150_000.0,
        "hybrid" => 120_000.0,
        "thread" => 60_000.0,
        _ => 30_000.0,
    };
    k * (1.0 + x.log10().max(0.0)) / 4.0
}

fn metrics(model: &str, point: &Point, repeat: u32) -> Metrics {
    let r = rate(model, point.x) * (1.0 + 0.01 * f64::from(repeat));
    let cpu_us = match model {
        "fork" => 20.0,
        "thread" => 9.0,
        "hybrid" => 4.0,
        _ => 3.0,
    };
    let idle_kib = match model {
        "fork" => 120.0,
        "thread" => 40.0,
        _ => 4.0,
    };
    let conns = f64::from(point.connections + point.idle);
    let lat = Percentiles {
        p50: 1e6 / r * 10.0,
        p90: 2e6 / r * 10.0,
        p99: 4e6 / r * 10.0,
        p999: 9e6 / r * 10.0,
        p9999: 2e7 / r * 10.0,
        max: 5e7 / r * 10.0,
        mean: 1.1e6 / r * 10.0,
    };
    Metrics {
        msgs_per_sec: r,
        mib_per_sec: r * point.size as f64 / 1048576.0,
        sent: r * 2.0,
        received: r * 2.0,
        errors: 0.0,
        latency_us: lat,
        latency_us_uncorrected: point
            .rate_fraction
            .map(|_| Percentiles { p999: lat.p999 / 3.0, ..lat }),
        connect_us: point.churn.then_some(lat),
        generator_cpu_seconds: 1.0,
        generator_cpu_per_msg_us: Some(4.0),
        generator_run_delay: Some(0.02),
        generator_saturated: model == "mio" && point.connections == 1000,
        server_cpu_seconds: r * cpu_us / 1e6 * 2.0,
        server_cpu_utilization: r * cpu_us / 1e6,
        server_cpu_per_msg_us: Some(cpu_us),
        server_ctx_switches_per_msg: Some(match model {
            "fork" | "thread" => 1.2,
            "hybrid" => 0.2,
            _ => 0.01,
        }),
        server_peak_pss_kib: 2000.0 + idle_kib * conns,
        server_peak_threads: if model == "thread" { 1.0 + conns } else { 2.0 },
        server_peak_processes: if model == "fork" { 1.0 + conns } else { 1.0 },
    }
}

fn synthetic(status: RunStatus) -> Results {
    synthetic_of(status, &MODELS)
}

/// A standard run of every built-in scenario for `models`, with figures made up from
/// [`rate`] and [`metrics`].
fn synthetic_of(status: RunStatus, models: &[&str]) -> Results {
    // The plan of these models, so that each scenario chooses among them.
    let list = models.join(",");
    let argv = ["compare", "--placement", "unpinned", "--bin-dir", "/", "--models", &list];
    let plan = CompareArgs::from_argv(argv).unwrap().options().unwrap().plan;
    let mut results = Results {
        schema_version: SCHEMA_VERSION,
        harness_version: "test".into(),
        started_at: "2026-11-21T12:00:00Z".into(),
        finished_at: Some("2026-11-21T12:13:00Z".into()),
        status,
        elapsed_seconds: 780.0,
        estimated_seconds: 800.0,
        harness_cpu_seconds: 1.5,
        plan: plan.clone(),
        placement: PlacementRecord {
            mode: Placement::Split,
            server_cpus: vec![0],
            generator_cpus: vec![1],
            server_cpu: None,
            generator_cpu: None,
        },
        environment: Environment { host: "testhost".into(), cores: 2, ..Environment::default() },
        models: Vec::new(),
        seed: Some(1),
        order: Vec::new(),
        comparisons: Vec::new(),
        criterion: Vec::new(),
    };
    for &model in models {
        let mut m = ModelResults {
            name: model.into(),
            binary: format!("/bin/echo-{model}"),
            external: None,
            control_of: None,
            scenarios: vec![],
        };
        for scenario in plan.scenarios.iter().filter(|s| plan.runs_server(s, model)) {
            let server = ServerRecord {
                workers: (model == "hybrid").then_some(1),
                baseline: Some(Baseline {
                    pss_kib: 2000,
                    threads: if model == "thread" { 1 } else { 2 },
                    processes: 1,
                }),
                exit_code: Some(0),
                stderr_tail: vec![
                    format!("echo-{model}: shut down after serving 12 connections"),
                    format!("echo-{model}: connections per worker: min 5, median 6, max 7"),
                ],
                ..ServerRecord::default()
            };
            let mut s = ScenarioResults {
                scenario: scenario.clone(),
                server,
                capacity: None,
                skipped: None,
                points: vec![],
                notes: vec![],
            };
            for point in plan.points_of(scenario) {
                let repeats: Vec<Repeat> = (1..=plan.repeats)
                    .map(|index| Repeat {
                        index,
                        round: index,
                        started_at: None,
                        replaced: None,
                        status: RepeatStatus::Ok,
                        wall_seconds: 2.7,
                        metrics: Some(metrics(model, point, index)),
                        server: Some(Usage {
                            window_seconds: 2.0,
                            samples: 14,
                            ..Usage::default()
                        }),
                        hlog: Some(format!("hlog/{model}-{index}.hlog")),
                        loadgen: Some(loadgen_report(1.0, 0.5)),
                        syscalls: (scenario == "syscalls").then(|| harness::strace::Syscalls {
                            total: if model == "mio" { 2_000 } else { 6_000 },
                            errors: 10,
                            top: vec![("sendto".into(), 1000)],
                            messages: 1_000,
                        }),
                        traced: scenario == "syscalls",
                        stops: None,
                        counters: Default::default(),
                        disturbance: Some(Disturbance {
                            seconds: 2.7,
                            server_steal: Some(0.004),
                            generator_steal: Some(0.001),
                            generator_run_delay: Some(0.03),
                            harness_cpu_seconds: 0.02,
                        }),
                        generators: None,
                    })
                    .collect();
                let target_rate = point.rate_fraction.map(|f| f * rate(model, 10.0));
                let summary = Summary::of(&repeats);
                let server = None;
                s.points.push(PointResults {
                    point: point.clone(),
                    target_rate,
                    offered: None,
                    repeats,
                    summary,
                    merged: None,
                    server,
                    copied_from: None,
                });
            }
            m.scenarios.push(s);
        }
        results.models.push(m);
    }
    results
}

/// The report and its companion, details.md, as one text: a finding the report leaves out
/// for details.md is still the run's finding.
fn full(
    results: &Results,
    scenarios: &[&dyn harness::present::Scenario],
    charts: &[charts::Chart],
    baseline: Option<&harness::baseline::Baseline>,
) -> String {
    let report = report::render(results, scenarios, charts, baseline);
    format!("{report}\n{}", report::details(results, scenarios))
}

#[test]
fn the_report_covers_every_model_and_names_winners_from_the_numbers() {
    let results = synthetic(RunStatus::Complete);
    let md = full(&results, ALL, &[], None);
    for scenario in ALL {
        let heading = format!("## {}: {}", scenario.name(), scenario.question());
        assert!(md.contains(&heading), "{heading}");
    }
    // Every model that ran a scenario is in its table: as a column where the table is turned
    // (models as columns, one row per figure and point), as rows otherwise.
    for scenario in ALL {
        let section = md.split(&format!("## {}: ", scenario.name())).nth(1).unwrap();
        let section = section.split("\n## ").next().unwrap();
        for m in results.models.iter().filter(|m| m.scenario(scenario.name()).is_some()) {
            assert!(
                section.contains(&format!(" {} ", m.name)),
                "{} in {}",
                m.name,
                scenario.name()
            );
        }
    }
    // Each lesson says which models it runs and why.
    assert!(md.contains("*Models: mio only: the lesson is about the measurement"), "{md}");
    // mio has the highest throughput and the least CPU per message in the synthetic data, in
    // every one of its 8 paired rounds: each other server is called worse, with its interval.
    assert!(
        md.contains("most first, each against the first in paired rounds: **mio** 156,750 msgs/s; worse: hybrid 0.80x (0.80-0.80), thread 0.40x (0.40-0.40), fork 0.20x (0.20-0.20)."),
        "{md}"
    );
    assert!(md.contains("Server CPU per message at 1000 conns, least first: **mio**"), "{md}");
    // Memory per connection is derived (peak less baseline), not paired: listed by median,
    // least first, with no claim of order.
    assert!(md.contains("whole peak PSS): mio 4.00 KiB, hybrid 4.00 KiB, thread 40.0 KiB, fork"));
    assert!(!md.contains("used by **fork**"), "fork holds the most memory per connection");
    // The whys come from the secondary figures: context switches, CPU per connection, counts.
    assert!(
        md.contains("Why: fork (a process per connection) switched context 1.20 times"),
        "{md}"
    );
    assert!(md.contains("Why: for every connection fork creates and later reaps a whole process"));
    assert!(md.contains("fork keeps a process per connection (PSS 120 KiB)"), "{md}");
    assert!(md.contains("mio keeps no thread or process per connection (PSS 4.00 KiB)"), "{md}");
    // Saturation and placement caveats come from the data and the plan.
    assert!(md.contains("The generator was saturated at mio scale 1000 conns."), "{md}");
    assert!(md.contains("server pinned to CPU 0, generator to CPU 1"));
    // What the one server CPU means for a model with workers is said, with its count.
    assert!(md.contains("The server had 1 CPU"), "{md}");
    assert!(md.contains("hybrid ran 1 worker"), "{md}");
    assert!(md.contains("**hybrid**: an acceptor feeding event-loop workers"), "{md}");
    // No ratio or figure without a meaning is ever printed.
    // Whole words: "/proc/meminfo" in the idle scenario's set-up is no infinity.
    let words: Vec<&str> = md.split(|c: char| !c.is_alphanumeric()).collect();
    for bad in ["NaN", "inf"] {
        assert!(!words.contains(&bad), "{bad} in the report");
    }
    assert!(!md.contains("0.000 KiB"), "{md}");
    // A server's own account of how it spread connections is in the appendix, after Caveats.
    let appendix = md.find("## Appendix").expect("an appendix");
    assert!(appendix > md.find("## Caveats").unwrap());
    assert!(md[appendix..].contains("hybrid (per worker): scale 5/6/7, size 5/6/7"), "{md}");
    assert!(md[appendix..].contains("Threads/processes of each server when idle"), "{md}");
    // System calls per message come from the traced repeats: mio's 2,000 calls for 1,000.
    assert!(md.contains("so not compared in paired rounds): mio 2.00 calls, fork 6.00"), "{md}");
    // Open loop: the corrected p99.9 is 3x the uncorrected one in the synthetic data.
    assert!(md.contains("queueing that a closed loop would hide"), "{md}");
    assert!(!md.contains("## Faults"), "a clean run has no Faults section");
    assert!(!md.contains("busy with other work"), "a quiet run has no busy-machine warning");
}

#[test]
fn a_busy_machine_is_announced_at_the_top() {
    let mut results = synthetic(RunStatus::Complete);
    for m in &mut results.models {
        for s in &mut m.scenarios {
            for p in &mut s.points {
                for r in &mut p.repeats {
                    r.loadgen = Some(loadgen_report(1.0, 9.5));
                    r.metrics.as_mut().unwrap().generator_run_delay = Some(0.4);
                }
            }
        }
    }
    let md = full(&results, ALL, &[], None);
    let banner = md.find("> **The machine was busy with other work").expect("a banner");
    assert!(banner < md.find("## Summary").unwrap(), "the warning comes before the summary");
    assert!(md.contains("on 2 CPUs, the generator's load thread waited"), "{md}");
    assert!(md.contains("waited for its CPU 40% of the time (median)"), "{md}");
    assert!(!md.contains("load average"), "the load average is no longer shown: {md}");
}

#[test]
fn steal_above_the_limit_is_a_busy_machine_and_the_disturbance_line_counts_it() {
    let mut results = synthetic(RunStatus::Complete);
    let md = full(&results, ALL, &[], None);
    assert!(
        md.contains(
            "- **What disturbed the repeats**: steal on the server's CPUs: max 0.4% of a repeat; \
             on the generator's: max 0.1%; generator run delay: max 3.0%; harness CPU: 0.02 s \
             per repeat;"
        ),
        "{md}"
    );
    let first = &mut results.models[0].scenarios[0].points[0].repeats[0];
    first.disturbance.as_mut().unwrap().generator_steal = Some(0.12);
    let md = full(&results, ALL, &[], None);
    assert!(md.contains("on the generator's: max 12.0%"), "{md}");
    assert!(md.contains("repeats above the 5% steal limit"), "{md}");
    assert!(md.contains("(steal) in 1 of "), "{md}");
}

#[test]
fn results_without_a_disturbance_still_render() {
    let mut results = synthetic(RunStatus::Complete);
    for m in &mut results.models {
        for s in &mut m.scenarios {
            for p in &mut s.points {
                p.repeats.iter_mut().for_each(|r| r.disturbance = None);
            }
        }
    }
    let json = serde_json::to_string(&results).unwrap();
    assert!(!json.contains("disturbance"), "an absent record is not written");
    let back: Results = serde_json::from_str(&json).unwrap();
    let md = full(&back, ALL, &[], None);
    assert!(md.contains("- **What disturbed the repeats**: not recorded"), "{md}");
}

#[test]
fn a_high_load_average_from_the_servers_own_threads_is_not_a_busy_machine() {
    // A thread-per-connection server at 1,000 connections raises the load average by itself;
    // the generator, on its own CPU, waited little, so nothing else competed.
    let mut results = synthetic(RunStatus::Complete);
    for m in &mut results.models {
        for s in &mut m.scenarios {
            for p in &mut s.points {
                for r in &mut p.repeats {
                    r.loadgen = Some(loadgen_report(1.0, 167.0));
                    r.metrics.as_mut().unwrap().generator_run_delay = Some(0.01);
                }
            }
        }
    }
    let md = full(&results, ALL, &[], None);
    assert!(!md.contains("busy with other work"), "{md}");
    assert!(!md.contains("167.00"), "the load average is not shown: {md}");
}

#[test]
fn faults_and_interruptions_are_reported_with_the_stderr_tail() {
    let mut results = synthetic(RunStatus::Interrupted);
    let crashed = &mut results.models[0].scenarios[1];
    crashed.server.faults.push(Fault {
        kind: FaultKind::Crashed,
        detail: "the server exited under load (was killed by signal 11)".into(),
        stderr_tail: vec!["segfault at 0x0".into()],
    });
    crashed.points.truncate(1);
    crashed.points[0].repeats.truncate(1);
    crashed.points[0].repeats[0].status = RepeatStatus::ServerDied;
    crashed.points[0].summary = Summary::of(&crashed.points[0].repeats);
    let md = full(&results, ALL, &[], None);
    assert!(md.contains("**interrupted**"));
    assert!(md.contains("| fork | size | crashed | the server exited under load"), "{md}");
    assert!(md.contains("segfault at 0x0"));
    assert!(md.contains("64 B, 1 of 8 rounds: fork; 64 B, incomplete: fork"), "{md}");
    let size = md.split("## size").nth(1).unwrap();
    assert!(size.contains("| MiB/s | 1 MiB | not run |"), "points the crash prevented: {size}");
    assert_eq!(harness::fault_count(&results), 1);
}

/// What a run leaves: results.json (the measuring side's), then the report drawn from it.
fn write(out: &Output, results: &Results) {
    out.save(results).unwrap();
    let errors = render::render(&out.run_dir, results, ALL, None).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
}

/// Every scenario's charts of `results`, drawn into `dir` without an error.
fn draw(results: &Results, dir: &std::path::Path) -> Vec<charts::Chart> {
    let (drawn, errors) = render::charts(results, ALL, dir);
    assert!(errors.is_empty(), "{errors:?}");
    drawn
}

#[test]
fn files_are_written_pointed_to_by_latest_and_parse_back() {
    let root = scratch("output");
    // A latest/ left by an older harness, a copy of a run, gives way to the link.
    std::fs::create_dir_all(root.join("latest/charts")).unwrap();
    std::fs::write(root.join("latest/report.md"), "old copy").unwrap();
    let results = synthetic(RunStatus::Complete);
    let out = Output::create(&root, "test host", Profile::Full, SystemTime::UNIX_EPOCH).unwrap();
    assert!(out.run_dir.ends_with("1970-01-01-test_host-full"));
    write(&out, &results);
    let latest = out.latest_dir.clone().expect("a full run points latest at itself");
    let target = std::fs::read_link(&latest).expect("latest is a symbolic link");
    assert_eq!(target, std::path::Path::new("1970-01-01-test_host-full"), "a relative link");
    let page = std::fs::read_to_string(root.join("latest.md")).unwrap();
    assert!(page.contains("[`1970-01-01-test_host-full`](1970-01-01-test_host-full/report.md)"));
    for dir in [&out.run_dir, &latest] {
        let json = std::fs::read_to_string(dir.join("results.json")).unwrap();
        let back: Results = serde_json::from_str(&json).unwrap();
        assert_eq!(back.schema_version, SCHEMA_VERSION);
        assert_eq!(back.models.len(), 4);
        // serde_json parses floats to within an ulp, so compare figures, not text.
        let rate = |r: &Results| {
            r.models[2].scenarios[0].points[3].summary.as_ref().unwrap().median.msgs_per_sec
        };
        assert!((rate(&back) - rate(&results)).abs() < 1e-6);
        assert_eq!(back.models[3].scenarios[4].points[1].repeats.len(), 8);
        let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
        assert!(md.contains("![Throughput vs connections"), "charts are embedded");
        let svg = std::fs::read_to_string(dir.join("charts/scale-throughput.svg")).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("<text") && svg.contains("mio"));
    }
    // --rerender recomputes every figure from the raw loadgen reports kept in results.json
    // (the synthetic ones report 1 msg/s) and rewrites the files.
    let (_, errors) = render::rerender(&out.run_dir, ALL, None).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    let json = std::fs::read_to_string(out.run_dir.join("results.json")).unwrap();
    let back: Results = serde_json::from_str(&json).unwrap();
    let summary = back.models[0].scenarios[0].points[0].summary.as_ref().unwrap();
    assert_eq!(summary.median.msgs_per_sec, 1.0);
    // A quick run keeps to its own folder and leaves latest/ alone: its figures are rough.
    let quick = Output::create(&root, "test host", Profile::Quick, SystemTime::UNIX_EPOCH).unwrap();
    assert!(quick.run_dir.ends_with("1970-01-01-test_host-quick"));
    assert!(quick.latest_dir.is_none());
    write(&quick, &results);
    assert!(quick.run_dir.join("report.md").is_file());
    let kept = std::fs::read_to_string(latest.join("results.json")).unwrap();
    assert!(kept.contains("\"harness_version\": \"test\""), "latest/ is still the full run");
    // A second run the same day gets its own folder, and latest points at it.
    let again = Output::create(&root, "test host", Profile::Full, SystemTime::UNIX_EPOCH).unwrap();
    assert!(again.run_dir.ends_with("1970-01-01-test_host-full-2"));
    assert!(!again.latest_dir.unwrap().join("report.md").exists());
    let page = std::fs::read_to_string(root.join("latest.md")).unwrap();
    assert!(page.contains("(1970-01-01-test_host-full-2/report.md)"), "{page}");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn the_csv_has_a_row_per_repeat_and_every_column() {
    let results = synthetic(RunStatus::Complete);
    let text = csv::render(&results);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], csv::COLUMNS.join(","));
    let points: usize =
        results.models.iter().flat_map(|m| &m.scenarios).map(|s| s.points.len()).sum();
    assert_eq!(lines.len() - 1, points * results.plan.repeats as usize);
    assert!(points > 4 * 18, "the lessons' points are rows too");
    for line in &lines[1..] {
        assert_eq!(fields(line), csv::COLUMNS.len(), "{line}");
    }
    // A label with a comma ("2 CPUs, shared") is quoted.
    assert!(text.contains(",\"TCP_NODELAY, echo in 2 pieces\","), "{text}");
    assert!(lines.iter().any(|l| l.starts_with("mio,scale,100 conns,100,64,0,false,,,2,ok,")));
}

/// The fields of one CSV line, quoted ones (which may hold commas) counted once.
fn fields(line: &str) -> usize {
    let mut quoted = false;
    1 + line
        .chars()
        .filter(|&c| {
            if c == '"' {
                quoted = !quoted;
            }
            c == ',' && !quoted
        })
        .count()
}

#[test]
fn charts_are_drawn_only_for_scenarios_with_figures() {
    let dir = scratch("charts");
    let mut results = synthetic(RunStatus::Complete);
    for m in &mut results.models {
        m.scenarios.retain(|s| s.scenario == "size");
    }
    let drawn = draw(&results, &dir);
    assert_eq!(drawn.len(), 1, "{drawn:?}");
    assert_eq!(drawn[0].scenario, "size");
    assert!(dir.join("size-throughput.svg").is_file());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn twelve_models_each_get_their_own_colour_in_every_chart() {
    let dir = scratch("palette");
    // The registry's models first (they take the palette's first colours), then as many
    // models the registry does not know as make twelve.
    let mut owned: Vec<String> =
        harness::registry::MODELS.iter().take(12).map(|m| m.name.to_string()).collect();
    let fillers = 12 - owned.len();
    owned.extend((0..fillers).map(|i| format!("m{}", i + 1)));
    let names: Vec<&str> = owned.iter().map(String::as_str).collect();
    let results = synthetic_of(RunStatus::Complete, &names);
    let drawn = draw(&results, &dir);
    // Seven for the first scenarios (idle two), three for latency (one per rate), two for
    // pipeline, one each for stall, nagle and cores, two for udp (batch has none), and the
    // summary's.
    assert_eq!(drawn.len(), 17, "every chart is drawn: {drawn:?}");
    let summary = drawn.iter().find(|c| c.scenario == charts::SUMMARY).expect("a summary chart");
    assert_eq!(summary.file, "charts/summary.svg");
    assert!(dir.join("summary.svg").is_file());
    let svg = std::fs::read_to_string(dir.join("scale-throughput.svg")).unwrap().to_uppercase();
    for (i, c) in charts::PALETTE.iter().enumerate() {
        // A datagram model runs no stream scenario, so it has no line in scale's chart.
        let datagram = harness::registry::find(names[i])
            .is_some_and(|m| m.transport == harness::registry::Transport::Datagram);
        if datagram {
            continue;
        }
        let hex = format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2);
        assert!(svg.contains(&hex), "model {} ({}) has no line of its colour {hex}", i, names[i]);
    }
    let distinct: std::collections::HashSet<_> = charts::PALETTE.iter().collect();
    assert_eq!(distinct.len(), 12, "twelve different colours");
    let md = full(&results, ALL, &drawn, None);
    if fillers > 0 {
        assert!(md.contains(&format!("**m{fillers}**: (not in the registry)")), "{md}");
    }
    // Each model with a neighbour in the registry is set beside it once, in the Pairs section,
    // with the second figure. With 1 worker each, the balancing the lesson names cannot act,
    // and the line says so instead of naming it.
    let pairs = md.split("## Pairs").nth(1).expect("a Pairs section");
    assert!(pairs.contains("**reuseport against hybrid** (with 1 worker there is nothing to steal or balance; the difference is the cost of the machinery)"), "{pairs}");
    assert!(!pairs.contains("the kernel balancing by hash"), "{pairs}");
    assert!(pairs.contains("scale CPU/msg 0.75x (0.75-0.75) better"), "{pairs}");
    assert_eq!(md.matches("reuseport against hybrid").count(), 1, "said once: {md}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_memory_figure_too_small_for_kib_reads_in_bytes_and_a_ratio_to_zero_as_a_dash() {
    let mut results = synthetic(RunStatus::Complete);
    // mio's peak memory equals its baseline: nothing per connection, and every other model's
    // ratio to it has no meaning.
    for m in results.models.iter_mut().filter(|m| m.name == "mio") {
        for s in m.scenarios.iter_mut().filter(|s| s.scenario == "idle") {
            for p in &mut s.points {
                for r in &mut p.repeats {
                    r.metrics.as_mut().unwrap().server_peak_pss_kib = 2000.0;
                }
                p.summary = Summary::of(&p.repeats);
            }
        }
    }
    let md = full(&results, ALL, &[], None);
    // A delta of no page at all is below page resolution, named apart and not ranked.
    assert!(
        md.contains("claimed (the paired rounds compare the whole peak PSS): hybrid 4.00 KiB,")
    );
    assert!(md.contains("not ranked: mio (0 pages over 1,001 connections)"), "{md}");
    let words: Vec<&str> = md.split(|c: char| !c.is_alphanumeric()).collect();
    for bad in ["NaN", "inf"] {
        assert!(!words.contains(&bad), "{bad} in the report");
    }
    assert!(!md.contains("0.000 KiB"), "{md}");
    assert_eq!(harness::text::memory(0.5), "512 B");
    assert_eq!(harness::text::memory(67.1), "67.1 KiB");
    assert_eq!(scenario::find(ALL, "idle").map(|s| s.name()), Some("idle"));
}

#[test]
fn a_baseline_adds_a_change_column_and_a_changes_section_at_the_top() {
    use harness::baseline::Baseline;
    let old = synthetic(RunStatus::Complete);
    let mut new = synthetic(RunStatus::Complete);
    // mio at 100 connections lost a fifth of its throughput in every repeat; fork's idle
    // point is gone from the new run, and a new model appears.
    let slow = |m: &mut ModelResults| {
        let p = m.scenarios[0].points.iter_mut().find(|p| p.point.label == "100 conns").unwrap();
        for r in &mut p.repeats {
            r.metrics.as_mut().unwrap().msgs_per_sec *= 0.8;
        }
        p.summary = Summary::of(&p.repeats);
    };
    slow(new.models.iter_mut().find(|m| m.name == "mio").unwrap());
    new.models[0].scenarios[3].points.pop();
    new.environment.host = "elsewhere".into();
    // The synthetic run has no control: hybrid is the reference the runs are read through.
    let base =
        Baseline { dir: "results/old".into(), results: old, reference: Some("hybrid".into()) };
    let md = full(&new, ALL, &[], Some(&base));
    let changes = md.find("## Changes since the baseline").expect("a Changes section");
    assert!(changes < md.find("## Environment").unwrap(), "it comes near the top");
    assert!(md.contains("through its ratio to **hybrid** (named by --reference)"), "{md}");
    // Eight rounds in each run: mio's fifth less, relative to the reference, is called.
    assert!(md.contains("| -20.0% slower (abs -20.0%) |"), "{md}");
    assert!(md.contains("| +0.0% within noise (abs +0.0%) |"), "{md}");
    assert!(md.contains("| reference (abs +0.0%) |"), "{md}");
    assert!(md.contains("The reference itself may have changed**: "), "{md}");
    assert!(md.contains("another machine (testhost,"), "{md}");
    assert!(md.contains("fork idle 1000 idle, echoed once (baseline only)"), "{md}");
    assert!(md.contains("| msgs/s change | notes |"), "{md}");
    let error = harness::check_regressions(&new, ALL, &base, 10.0).unwrap_err().to_string();
    assert!(error.contains("mio scale 100 conns"), "{error}");
    harness::check_regressions(&new, ALL, &base, 25.0).expect("20% is not more than 25%");
}

#[test]
fn criterions_own_figures_are_read_and_added_to_the_newest_run() {
    let root = scratch("criterion");
    let home = root.join("criterion");
    for (group, model, ns) in
        [("roundtrip", "mio", 41_000.0), ("connect_echo_close", "fork", 390_000.0)]
    {
        let new = home.join(group).join(model).join("new");
        std::fs::create_dir_all(&new).unwrap();
        let ids =
            format!("{{\"group_id\":\"{group}\",\"function_id\":\"{model}\",\"value_str\":null}}");
        std::fs::write(new.join("benchmark.json"), ids).unwrap();
        let e = |x: f64| {
            format!(
                "{{\"confidence_interval\":{{\"confidence_level\":0.95,\"lower_bound\":{},\
                 \"upper_bound\":{}}},\"point_estimate\":{x},\"standard_error\":1.0}}",
                x * 0.98,
                x * 1.03
            )
        };
        let est = format!("{{\"mean\":{},\"median\":{},\"slope\":{}}}", e(ns * 2.0), e(ns), e(ns));
        std::fs::write(new.join("estimates.json"), est).unwrap();
    }
    let benches = harness::criterion::read(&home, &["roundtrip", "connect_echo_close"]);
    assert_eq!(benches.len(), 2);
    assert_eq!((benches[1].group.as_str(), benches[1].ns), ("roundtrip", 41_000.0), "the slope");
    let results = synthetic(RunStatus::Complete);
    let out = Output::create(&root, "h", Profile::Standard, SystemTime::UNIX_EPOCH).unwrap();
    write(&out, &results);
    let dir = render::attach(&root, benches, ALL).unwrap().unwrap();
    assert_eq!(dir, out.run_dir);
    for d in [&out.run_dir, &root.join("latest")] {
        let md = std::fs::read_to_string(d.join("details.md")).unwrap();
        assert!(md.contains("## Criterion: one message, one connection"), "{md}");
        assert!(md.contains("| roundtrip (us) | - | 41.0 (40.2-42.2) |"), "{md}");
        assert!(md.contains("its 95% confidence interval"), "{md}");
    }
    let _ = std::fs::remove_dir_all(&root);
}

/// Sets every repeat's latency percentiles of `model`'s point `label` in `scenario` to `p`.
fn set_latency(r: &mut Results, model: &str, scenario: &str, label: &str, p: Percentiles) {
    let m = r.models.iter_mut().find(|m| m.name == model).unwrap();
    let s = m.scenarios.iter_mut().find(|s| s.scenario == scenario).unwrap();
    let point = s.points.iter_mut().find(|x| x.point.label == label).unwrap();
    for rep in &mut point.repeats {
        rep.metrics.as_mut().unwrap().latency_us = p;
    }
    point.summary = Summary::of(&point.repeats);
}

#[test]
fn the_lessons_findings_come_from_their_figures() {
    let mut r = synthetic(RunStatus::Complete);
    let lat = |p50: f64, p999: f64| Percentiles {
        p50,
        p90: p50 * 2.0,
        p99: p999 / 2.0,
        p999,
        p9999: p999,
        max: p999,
        mean: p50,
    };
    set_latency(&mut r, "mio", "stall", "closed loop", lat(80.0, 2_000.0));
    set_latency(&mut r, "mio", "stall", "open loop", lat(300.0, 95_000.0));
    set_latency(&mut r, "mio", "nagle", "Nagle, echo in 2 pieces", lat(44_000.0, 48_000.0));
    set_latency(&mut r, "mio", "nagle", "TCP_NODELAY, echo in 2 pieces", lat(50.0, 900.0));
    let md = full(&r, ALL, &[], None);
    // The stall: the open loop's p99.9 against the 100 ms stall, the closed loop's far below.
    assert!(md.contains("only the open loop's p99.9 comes near it (95% of the stall"), "{md}");
    assert!(md.contains("the closed loop's is 2.0%"), "{md}");
    // Nagle: the two medians and their ratio, and the interaction named.
    assert!(md.contains("median round trip was 44.0 ms, against 50.0 us with TCP_NODELAY (880x)"));
    assert!(md.contains("delays that ACK (40 ms on Linux)"), "{md}");
    // Turned around, the figures say the effect did not show, and the why is not claimed.
    set_latency(&mut r, "mio", "nagle", "Nagle, echo in 2 pieces", lat(60.0, 900.0));
    let md = full(&r, ALL, &[], None);
    assert!(md.contains("the delayed-ACK wait did not show here"), "{md}");
    // Backlog: 17 connects at once and 63 after the 3 s retransmission, from each connection's
    // own record, and the kernel's count beside them; the histogram is drawn.
    use loadgen::report::burst::{Burst, BurstConnection, Outcome};
    let m = r.models.iter_mut().find(|m| m.name == "mio").unwrap();
    let s = m.scenarios.iter_mut().find(|s| s.scenario == "backlog").unwrap();
    let p = s.points.iter_mut().find(|p| p.point.label == "backlog 16").unwrap();
    let each = (0..80)
        .map(|i| {
            let connect: f64 = if i < 17 { 900.0 } else { 3_010_000.0 };
            let echo = Some(connect.max(1_200_000.0) + 300.0);
            BurstConnection { connect_us: Some(connect), echo_us: echo, outcome: Outcome::Echoed }
        })
        .collect();
    let burst = Some(Burst { connections: 80, each, ..Burst::default() });
    let report = loadgen::Report { burst, ..Default::default() };
    p.repeats.truncate(1);
    p.repeats[0].loadgen = Some(report);
    p.repeats[0].counters =
        [("TcpExt:ListenOverflows".to_string(), 126), ("TcpExt:ListenDrops".to_string(), 126)]
            .into();
    let md = full(&r, ALL, &[], None);
    assert!(md.contains("in mio, 17 at once and 63 after about 3 s"), "{md}");
    assert!(md.contains("A stall of 1.2 s cost them 3.01 s"), "{md}");
    assert!(md.contains("126 listen overflows and 126 listen drops, for 63 connections"), "{md}");
    assert!(md.contains("| at once | backlog 16 | - | - | 17 | - |"), "{md}");
    assert!(
        md.contains("1 s, 3 s and 7 s after the first SYN (the wait doubles"),
        "no linear timeouts"
    );
    assert!(md.contains("machine-wide"), "the counters are said to be machine-wide");
    let dir = scratch("backlog-chart");
    let drawn = draw(&r, &dir);
    assert!(drawn.iter().any(|c| c.file == "charts/backlog-connect.svg"), "{drawn:?}");
    let _ = std::fs::remove_dir_all(&dir);
    // Pipeline and cores speak of their own points.
    assert!(md.contains("From 1 to 64 messages in flight per connection, throughput grew by"));
    assert!(md.contains("Throughput against the server's 1 CPU"), "{md}");
    assert!(md.contains("*Models: the models with a pool of workers"), "{md}");
}

#[test]
fn the_latency_findings_say_how_loadgen_paced_its_sends() {
    let mut results = synthetic(RunStatus::Complete);
    let md = full(&results, ALL, &[], None);
    assert!(!md.contains("At each wake-up loadgen sent"), "no generator said how it paced");
    for (k, repeat) in results
        .models
        .iter_mut()
        .flat_map(|m| &mut m.scenarios)
        .filter(|s| s.scenario == "latency")
        .flat_map(|s| &mut s.points)
        .flat_map(|p| &mut p.repeats)
        .enumerate()
    {
        let g = &mut repeat.loadgen.as_mut().unwrap().generator;
        g.send_slack_us = Some(if k == 0 { 400.0 } else { 500.0 });
        g.sends_per_wakeup = Some(8.0);
        g.echoes_stamped_by_kernel = Some(true);
    }
    let md = full(&results, ALL, &[], None);
    // The section in details.md, the last: it holds every finding.
    let latency = md.rsplit("## latency").next().expect("a latency section");
    assert!(latency.contains("every message due within the next 400 to 500 us"), "{latency}");
    assert!(latency.contains("8.0 per wake-up"), "{latency}");
    assert!(latency.contains("timed by the kernel's receive stamps"), "{latency}");
}

#[test]
fn a_lead_the_paired_rounds_do_not_back_is_not_called_a_lead() {
    let mut results = synthetic(RunStatus::Complete);
    // hybrid at 1000 connections: the same as mio in half the rounds and 15% slower in the
    // others, so its median is about 8% below mio's (beyond the old 5% tie threshold) while its
    // paired ratios straddle 1: no lead the run can back.
    for m in results.models.iter_mut().filter(|m| m.name == "hybrid") {
        let p = m.scenarios[0].points.iter_mut().find(|p| p.point.label == "1000 conns").unwrap();
        let mio_rate = rate("mio", p.point.x);
        for r in &mut p.repeats {
            let k = if r.round % 2 == 0 { 1.0 } else { 0.85 };
            r.metrics.as_mut().unwrap().msgs_per_sec =
                mio_rate * (1.0 + 0.01 * f64::from(r.round)) * k;
        }
        p.summary = Summary::of(&p.repeats);
    }
    let md = full(&results, ALL, &[], None);
    let line = md.lines().find(|l| l.starts_with("- At 1000 conns, messages")).expect("a ranking");
    assert!(line.contains("**mio**"), "{line}");
    assert!(line.contains("so no single server leads"), "{line}");
    assert!(line.contains("no measurable difference: hybrid"), "{line}");
}

/// A scale scenario whose charts cannot be drawn.
#[derive(Debug)]
struct Inkless;

impl scenario::Measure for Inkless {
    fn name(&self) -> &'static str {
        "scale"
    }

    fn points(&self, _profile: Profile, _given: Option<&str>) -> anyhow::Result<Vec<Point>> {
        Ok(Vec::new())
    }
}

impl scenario::Present for Inkless {
    fn question(&self) -> &'static str {
        "Can a report be drawn without one chart?"
    }

    fn setup(&self) -> String {
        String::new()
    }

    fn columns(&self) -> Vec<scenario::Column> {
        vec![scenario::col::RATE]
    }

    fn findings(&self, _view: &scenario::View<'_>) -> Vec<String> {
        Vec::new()
    }

    fn charts(&self, _view: &scenario::View<'_>, _c: &mut charts::Charts) -> anyhow::Result<()> {
        anyhow::bail!("out of ink")
    }
}

#[test]
fn a_chart_that_fails_costs_that_chart_and_is_recorded() {
    let dir = scratch("inkless");
    let results = synthetic(RunStatus::Complete);
    let mut list: Vec<&dyn scenario::Scenario> = vec![&Inkless];
    list.extend(ALL.iter().copied().filter(|s| s.name() != "scale"));
    let errors = render::render(&dir, &results, &list, None).unwrap();
    assert_eq!(errors, ["cannot draw scale's charts: out of ink"]);
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("## Rendering errors\n\n- cannot draw scale's charts: out of ink"), "{md}");
    assert!(dir.join("charts/size-throughput.svg").is_file(), "the other scenarios' charts");
    assert!(dir.join("results.csv").is_file());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_repeat_run_again_is_left_out_of_the_pairs_and_the_medians() {
    let mut results = synthetic(RunStatus::Complete);
    // A repeat of fork at 1000 connections that steal disturbed, with an absurd figure, and
    // its rerun in the same round: the pairs and the medians must use the rerun only.
    for m in results.models.iter_mut().filter(|m| m.name == "fork") {
        let p = m.scenarios[0].points.iter_mut().find(|p| p.point.label == "1000 conns").unwrap();
        let mut bad = p.repeats[0].clone();
        bad.replaced = Some("The hypervisor took 9.0% of the server's CPU time".into());
        bad.metrics.as_mut().unwrap().msgs_per_sec = 1e9;
        p.repeats.insert(0, bad);
        p.summary = Summary::of(&p.repeats);
        assert!(p.summary.as_ref().unwrap().median.msgs_per_sec < 1e6);
    }
    let md = full(&results, ALL, &[], None);
    let line = md.lines().find(|l| l.starts_with("- At 1000 conns, messages")).expect("a ranking");
    assert!(line.contains(", fork 0.20x (0.20-0.20)."), "{line}");
    assert!(md.contains("| msgs/s | 1000 conns | 31,350 |"), "the rerun's median: {md}");
}

#[test]
fn the_noise_floor_says_when_the_run_called_its_twins_different() {
    use harness::compare::{Comparison, Verdict};
    let mut results = synthetic(RunStatus::Complete);
    let mut control = results.models.iter().find(|m| m.name == "mio").unwrap().clone();
    control.name = "mio (control)".into();
    control.control_of = Some("mio".into());
    results.models.push(control);
    let twin = |point: &str, low: f64, high: f64, verdict: Verdict| Comparison {
        scenario: "scale".into(),
        point: point.into(),
        figure: "msgs/s".into(),
        a: "mio".into(),
        b: "mio (control)".into(),
        ratio: (low + high) / 2.0,
        low,
        high,
        confidence: 0.992,
        better: (verdict == Verdict::Different).then(|| "mio".into()),
        verdict,
        rounds: 8,
        higher_is_better: true,
    };
    results.comparisons = vec![
        twin("1 conn", 0.94, 1.06, Verdict::Undecided),
        twin("10 conns", 0.99, 1.01, Verdict::Equivalent),
    ];
    let md = full(&results, ALL, &[], None);
    assert!(
        md.contains(
            "| msgs/s | 2 points (scale) | 0.94-1.06 | 1 equivalent, 1 no measurable difference |"
        ),
        "{md}"
    );
    assert!(md.contains("never called the twins different"), "{md}");
    assert!(md.contains("the widest intervals above are how far"), "{md}");
    assert!(!md.contains("could not tell noise"), "{md}");
    results.comparisons.push(twin("100 conns", 0.90, 0.95, Verdict::Different));
    let md = full(&results, ALL, &[], None);
    assert!(
        md.contains(
            "**This run could not tell noise from real differences** at scale 100 conns (msgs/s)"
        ),
        "{md}"
    );
    assert!(!md.contains("never called the twins different"), "{md}");
}

#[test]
fn kernel_memory_per_connection_sits_beside_pss_and_ranks_only_when_called() {
    use harness::procstat::{KernelMemory, TreeKernel};
    let mut results = synthetic(RunStatus::Complete);
    // At 1,001 connections: every model's slab grew 4,004 KiB (4 KiB a connection, both ends);
    // thread's tree added 1,000 kernel stacks (16 KiB each) and 4,004 KiB of page tables. The
    // machine's own stack and page-table figures fell (another process exited): they must not
    // count against the server.
    for m in results.models.iter_mut() {
        let (stacks, page_tables) = if m.name == "thread" { (16_000, 4004) } else { (0, 0) };
        for s in m.scenarios.iter_mut().filter(|s| s.scenario == "idle") {
            for p in &mut s.points {
                for (i, r) in p.repeats.iter_mut().enumerate() {
                    let usage = r.server.as_mut().unwrap();
                    usage.kernel = Some(KernelMemory {
                        slab_unreclaimable_kib: 3004 + i as i64,
                        slab_reclaimable_kib: 1000,
                        kernel_stack_kib: -500,
                        page_tables_kib: -9000,
                    });
                    usage.server_kernel =
                        Some(TreeKernel { kernel_stack_kib: stacks, page_tables_kib: page_tables });
                }
            }
        }
    }
    let md = full(&results, ALL, &[], None);
    // thread: 40 KiB of PSS, 4 of slab, 16 of stacks and 4 of page tables a connection.
    assert!(md.contains("| 1000 idle | thread | 40.0 KiB | 24.0 KiB | 64.0 KiB |"), "{md}");
    assert!(md.contains("| 1000 idle | mio | 4.00 KiB | 4.00 KiB | 8.00 KiB |"), "{md}");
    assert!(md.contains("(PSS 40.0 KiB, kernel 24.0 KiB (slab 4.00 KiB, kernel stacks 16.0 KiB,"));
    // mio and hybrid have the same figures every round: equivalent, so neither holds least.
    assert!(md.contains("the run could not tell mio from hybrid"), "{md}");
    assert!(md.contains("thread 64.0 KiB, 8.0x (7.99-8.00), larger"), "{md}");
}

/// Fills `results.comparisons` as the runner does: every pair at every point, on the
/// scenario's headline figure and on server CPU per message.
fn compared(results: &mut Results) {
    use harness::compare::{self, Figure};
    let mut all = Vec::new();
    for point in &results.plan.points {
        let Some(s) = ALL.iter().find(|s| s.name() == point.scenario) else { continue };
        let h = s.headline();
        let f = Figure { name: h.name, of: h.figure, higher_is_better: h.higher_is_better };
        all.extend(compare::at_point(results, point, &f));
        if h.name != compare::CPU_PER_MSG.name {
            all.extend(compare::at_point(results, point, &compare::CPU_PER_MSG));
        }
    }
    results.comparisons = all;
}

/// The summary's row of `scenario`.
fn summary_row<'a>(md: &'a str, scenario: &str) -> &'a str {
    let summary = md.split("## Summary").nth(1).expect("a summary").split("\n## ").next().unwrap();
    let head = format!("| **{scenario}**: ");
    summary.lines().find(|l| l.starts_with(&head)).expect("a row for the scenario")
}

#[test]
fn the_summary_comes_first_and_its_verdicts_are_the_stored_comparisons() {
    let mut results = synthetic(RunStatus::Complete);
    compared(&mut results);
    let md = full(&results, ALL, &[], None);
    let summary = md.find("## Summary").unwrap();
    assert!(summary < md.find("## Environment").unwrap(), "the summary comes before Environment");
    assert!(!md.contains("## Headlines"), "no headlines repeat the findings");
    // mio leads in every round by 1.25x: the stored comparisons call every pair different.
    let row = summary_row(&md, "scale");
    assert!(row.contains("| shown | 8 |"), "{row}");
    assert!(
        row.contains("At 1000 conns, mio is best on throughput (msgs/s) (156,750 msgs/s); the next, hybrid, 0.80x (0.80-0.80)."),
        "{row}"
    );
    // The answer is one sentence: it names the leader and the next, not every model.
    assert!(!row.contains("fork"), "{row}");
    // The same medians, but comparisons that held every pair undecided with enough rounds: the
    // verdict follows the stored comparisons, not a ranking of the medians.
    for c in results.comparisons.iter_mut().filter(|c| c.scenario == "scale") {
        c.verdict = harness::compare::Verdict::Undecided;
        c.better = None;
    }
    let md = full(&results, ALL, &[], None);
    let row = summary_row(&md, "scale");
    assert!(row.contains("| no measurable difference | 8 |"), "{row}");
    assert!(row.contains("mio, hybrid, thread and fork could not be told apart"), "{row}");
    // Too few rounds for a verdict: not measurable here, and why.
    for c in results.comparisons.iter_mut().filter(|c| c.scenario == "scale") {
        c.confidence = 0.75;
        c.rounds = 2;
    }
    let md = full(&results, ALL, &[], None);
    let row = summary_row(&md, "scale");
    assert!(row.contains("not measurable on this machine: 2 rounds (a verdict needs 8)"), "{row}");
    // A scenario of one model has nothing to pair, whatever its figures.
    assert!(summary_row(&md, "nagle").contains("not measurable on this machine: one model"));
    // The rule the verdicts follow is stated under the table.
    assert!(md.contains("Verdicts are read from results.json's `comparisons`"), "{md}");
}

#[test]
fn a_point_the_generator_saturated_is_ranked_by_cpu_not_by_throughput() {
    // poll beside the suite's four, so that a pair (poll against mio) is compared too.
    let mut results =
        synthetic_of(RunStatus::Complete, &["fork", "thread", "mio", "hybrid", "poll"]);
    for m in &mut results.models {
        let p = m.scenarios[0].points.iter_mut().find(|p| p.point.label == "1000 conns").unwrap();
        for r in &mut p.repeats {
            r.metrics.as_mut().unwrap().generator_saturated = true;
        }
        p.summary = Summary::of(&p.repeats);
    }
    compared(&mut results);
    let md = full(&results, ALL, &[], None);
    let scale = md.split("## scale").nth(1).unwrap().split("\n## ").next().unwrap();
    // The old sentence ranked servers by msgs/s here; the pair set that pace, not the server.
    assert!(!scale.contains("messages per second, most first"), "{scale}");
    assert!(
        scale.contains("At 1000 conns, no ranking by msgs/s: the generator was saturated for 5 of 5 models, so the pair, not the server, set the pace (pair-limited)"),
        "{scale}"
    );
    assert!(scale.contains("at saturation it is CPU share over throughput"), "{scale}");
    assert!(scale.contains("**mio** 3.00 us; equivalent within 3%: poll 1.00x (1.00-1.00); worse: hybrid 1.33x (1.33-1.33)"), "{scale}");
    assert!(!scale.contains("So mio served"), "{scale}");
    let row = summary_row(&md, "scale");
    assert!(row.contains("At 1000 conns (pair-limited: the generator was saturated for most models), on server CPU per message: mio and poll could not be told apart"), "{row}");
    // A pair compares no throughput there either.
    let pairs = md.split("## Pairs").nth(1).unwrap();
    assert!(!pairs.contains("scale msgs/s"), "{pairs}");
    assert!(pairs.contains("scale CPU/msg 1.00x (1.00-1.00)"), "{pairs}");
}

#[test]
fn plus_minus_means_half_the_range_in_the_caveats_as_in_the_tables() {
    let mut results = synthetic(RunStatus::Complete);
    let p = &mut results.models[0].scenarios[0].points[0];
    let x = p.repeats[0].metrics.as_ref().unwrap().msgs_per_sec;
    for (i, r) in p.repeats.iter_mut().enumerate() {
        let k = match i {
            0 => 0.89,
            1 => 1.11,
            _ => 1.0,
        };
        r.metrics.as_mut().unwrap().msgs_per_sec = x * k;
    }
    p.summary = Summary::of(&p.repeats);
    let spread = p.summary.as_ref().unwrap().spread;
    assert!((spread - 0.22).abs() < 0.01, "the full range is 22% of the median: {spread}");
    let md = full(&results, ALL, &[], None);
    // The caveats once printed the full range (±22%) where the table printed half (±11%).
    assert!(md.contains("fork scale 1 conn (±11%)"), "{md}");
    assert!(!md.contains("±22%"), "{md}");
    assert!(md.contains("**±** is always half the range"), "the meaning is stated once");
}

#[test]
fn poll_beside_idle_connections_is_linked_to_poll_among_busy_ones() {
    let mut results = synthetic_of(RunStatus::Complete, &["mio", "poll"]);
    let busy_and_idle = |r: &Results| {
        let md = full(r, ALL, &[], None);
        md.lines().find(|l| l.starts_with("- poll against mio, busy and idle")).map(String::from)
    };
    // As cheap as mio per message everywhere: nothing to link.
    compared(&mut results);
    assert_eq!(busy_and_idle(&results), None);
    // Beside idle connections poll pays 8x mio's CPU per message: that contrast is the lesson.
    let poll = results.models.iter_mut().find(|m| m.name == "poll").unwrap();
    let idle = poll.scenarios.iter_mut().find(|s| s.scenario == "idle").unwrap();
    for p in &mut idle.points {
        for r in &mut p.repeats {
            r.metrics.as_mut().unwrap().server_cpu_per_msg_us = Some(24.0);
        }
        p.summary = Summary::of(&p.repeats);
    }
    compared(&mut results);
    let line = busy_and_idle(&results).expect("the contrast, said once");
    assert!(
        line.contains("poll's server CPU per message was 1.00x (1.00-1.00) mio's at 1000 conns (equivalent within 3%), yet 8.0x (8.00-8.00) at 1000 idle, echoed once (worse)"),
        "{line}"
    );
}

#[test]
fn a_window_that_waited_for_first_echoes_is_named_as_start_up() {
    let mut results = synthetic(RunStatus::Complete);
    let md = full(&results, ALL, &[], None);
    assert!(!md.contains("first echo"), "no wait, no sentence");
    // fork's 1000-connection point waited 0.8 s past the warm-up in one round.
    let fork = results.models.iter_mut().find(|m| m.name == "fork").unwrap();
    let scale = fork.scenarios.iter_mut().find(|s| s.scenario == "scale").unwrap();
    let point = scale.points.iter_mut().find(|p| p.point.label == "1000 conns").unwrap();
    point.repeats[0].loadgen.as_mut().unwrap().run.window_wait_secs = 0.8;
    let md = full(&results, ALL, &[], None);
    assert!(md.contains("had its first echo, which took longer than the warm-up at fork scale 1000 conns (up to 0.800 s)"), "{md}");
}

#[test]
fn the_control_never_stands_as_latencys_least_or_most() {
    let mut results = synthetic(RunStatus::Complete);
    compared(&mut results);
    let md = full(&results, ALL, &[], None);
    let latency = md.split("## latency").nth(1).unwrap();
    assert!(latency.contains("least mio 3.00 us"), "mio is least in the synthetic run: {latency}");
    // The same figures with mio as a control of hybrid: the yardstick never stands as least.
    let mio = results.models.iter_mut().find(|m| m.name == "mio").unwrap();
    mio.control_of = Some("hybrid".into());
    let md = full(&results, ALL, &[], None);
    let latency = md.split("## latency").nth(1).unwrap();
    assert!(!latency.contains("least mio"), "{latency}");
    assert!(latency.contains("least hybrid 4.00 us"), "{latency}");
}
