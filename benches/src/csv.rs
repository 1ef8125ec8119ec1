//! `results.csv`: one row per point per repeat, for spreadsheets and scripts.
//!
//! Columns are documented in results/SCHEMA.md. Empty cells mean "not measured" (for example
//! the uncorrected latency of a closed loop, which is the same as the corrected one).

use std::fmt::Write;

use crate::results::{Metrics, Percentiles, Repeat, RepeatStatus, Results};

/// The header row.
pub const COLUMNS: &[&str] = &[
    "model",
    "scenario",
    "point",
    "connections",
    "size_bytes",
    "idle",
    "churn",
    "rate_fraction",
    "target_rate",
    "repeat",
    "status",
    "msgs_per_sec",
    "mib_per_sec",
    "sent",
    "received",
    "errors",
    "p50_us",
    "p90_us",
    "p99_us",
    "p999_us",
    "p9999_us",
    "max_us",
    "mean_us",
    "uncorrected_p50_us",
    "uncorrected_p99_us",
    "uncorrected_p999_us",
    "connect_p50_us",
    "connect_p99_us",
    "server_cpu_seconds",
    "server_cpu_utilization",
    "server_cpu_per_msg_us",
    "server_ctx_switches_per_msg",
    "server_peak_pss_kib",
    "server_peak_threads",
    "server_peak_processes",
    "generator_cpu_seconds",
    "generator_cpu_per_msg_us",
    "generator_run_delay",
    "generator_saturated",
    "window_seconds",
    "wall_seconds",
    "hlog",
    "pipeline",
    "server_args",
    "server_cpus",
    "traced",
    "stops",
    "kernel_counters",
];

/// The columns after `hlog`: the point's set-up and what the harness did around the repeat.
const POINT_TAIL: usize = 6;

/// Renders every repeat of `results` as CSV.
pub fn render(results: &Results) -> String {
    let mut out = COLUMNS.join(",");
    out.push('\n');
    for model in &results.models {
        for scenario in &model.scenarios {
            for point in &scenario.points {
                for repeat in &point.repeats {
                    let p = &point.point;
                    let mut cells = vec![
                        model.name.clone(),
                        p.scenario.to_string(),
                        p.label.clone(),
                        p.connections.to_string(),
                        p.size.to_string(),
                        p.idle.to_string(),
                        p.churn.to_string(),
                        opt(p.rate_fraction),
                        opt(point.target_rate),
                        repeat.index.to_string(),
                        status(repeat.status).into(),
                    ];
                    cells.extend(metric_cells(repeat));
                    let setup = point.server.as_ref();
                    let counters: Vec<String> =
                        repeat.counters.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    cells.extend([
                        p.pipeline.to_string(),
                        setup.map(|s| s.args.join(" ")).unwrap_or_default(),
                        setup.map(|s| crate::text::cpu_ids(&s.cpus)).unwrap_or_default(),
                        repeat.traced.to_string(),
                        repeat.stops.map(|n| n.to_string()).unwrap_or_default(),
                        counters.join(" "),
                    ]);
                    let line: Vec<String> = cells.iter().map(|c| quote(c)).collect();
                    let _ = writeln!(out, "{}", line.join(","));
                }
            }
        }
    }
    out
}

fn metric_cells(repeat: &Repeat) -> Vec<String> {
    let tail = [
        repeat.server.map_or(String::new(), |u| num(u.window_seconds)),
        num(repeat.wall_seconds),
        repeat.hlog.clone().unwrap_or_default(),
    ];
    let Some(m) = &repeat.metrics else {
        let blanks = COLUMNS.len() - 11 - tail.len() - POINT_TAIL;
        return std::iter::repeat_n(String::new(), blanks).chain(tail).collect();
    };
    let l = &m.latency_us;
    let unc = |f: fn(&Percentiles) -> f64| opt(m.latency_us_uncorrected.as_ref().map(f));
    let con = |f: fn(&Percentiles) -> f64| opt(m.connect_us.as_ref().map(f));
    let mut cells = vec![
        num(m.msgs_per_sec),
        num(m.mib_per_sec),
        num(m.sent),
        num(m.received),
        num(m.errors),
        num(l.p50),
        num(l.p90),
        num(l.p99),
        num(l.p999),
        num(l.p9999),
        num(l.max),
        num(l.mean),
        unc(|p| p.p50),
        unc(|p| p.p99),
        unc(|p| p.p999),
        con(|p| p.p50),
        con(|p| p.p99),
    ];
    cells.extend(server_cells(m));
    cells.extend(tail);
    cells
}

fn server_cells(m: &Metrics) -> Vec<String> {
    vec![
        num(m.server_cpu_seconds),
        num(m.server_cpu_utilization),
        opt(m.server_cpu_per_msg_us),
        opt(m.server_ctx_switches_per_msg),
        num(m.server_peak_pss_kib),
        num(m.server_peak_threads),
        num(m.server_peak_processes),
        num(m.generator_cpu_seconds),
        opt(m.generator_cpu_per_msg_us),
        opt(m.generator_run_delay),
        m.generator_saturated.to_string(),
    ]
}

fn status(s: RepeatStatus) -> &'static str {
    match s {
        RepeatStatus::Ok => "ok",
        RepeatStatus::Interrupted => "interrupted",
        RepeatStatus::GeneratorFailed => "generator_failed",
        RepeatStatus::ServerDied => "server_died",
    }
}

/// Up to 4 decimals, trailing zeros trimmed: compact but exact enough for every unit here.
fn num(x: f64) -> String {
    let s = format!("{x:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" { "0".into() } else { s.to_string() }
}

fn opt(x: Option<f64>) -> String {
    x.map(num).unwrap_or_default()
}

fn quote(cell: &str) -> String {
    if cell.contains([',', '"', '\n']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_string()
    }
}
