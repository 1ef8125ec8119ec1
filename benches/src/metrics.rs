//! Turns one loadgen report plus the server's /proc usage into the figures the report uses.
//!
//! The report is loadgen's own type ([`loadgen::Report`]), so a field renamed there fails to
//! compile here instead of quietly reading as 0. The whole report is kept beside these figures
//! in results.json, so a field this file does not read is not lost.

use loadgen::stats::Latency;
use loadgen::{Mode, Report};

use crate::procstat::Usage;
use crate::results::{Metrics, Percentiles};

/// The figures of one repeat.
pub fn metrics(report: &Report, usage: Option<&Usage>) -> Metrics {
    let e = &report.errors;
    let g = &report.generator;
    let msgs_per_sec = report.throughput.msgs_per_sec;
    let mut m = Metrics {
        msgs_per_sec,
        mib_per_sec: report.throughput.mib_per_sec,
        sent: report.messages.sent as f64,
        received: report.messages.received as f64,
        errors: (e.connect + e.io + e.timeout + e.mismatch + e.lost) as f64,
        latency_us: percentiles(&report.latency_us),
        // In a closed loop the uncorrected figure is the corrected one: not repeated.
        latency_us_uncorrected: (report.mode == Mode::Open)
            .then(|| percentiles(&report.latency_us_uncorrected)),
        connect_us: report.connect_latency_us.as_ref().map(percentiles),
        generator_cpu_seconds: g.cpu_seconds,
        generator_cpu_per_msg_us: g.cpu_us_per_msg,
        generator_run_delay: g.max_thread_run_delay,
        generator_saturated: g.saturated,
        ..Metrics::default()
    };
    if let Some(u) = usage {
        m.server_cpu_seconds = u.cpu_seconds;
        m.server_peak_pss_kib = u.peak_pss_kib as f64;
        m.server_peak_threads = f64::from(u.peak_threads);
        m.server_peak_processes = f64::from(u.peak_processes);
        if u.window_seconds > 0.0 {
            // Rates over the sampled window divided by the message rate over loadgen's window:
            // both windows cover the same steady load, and neither needs the other's clock.
            m.server_cpu_utilization = u.cpu_seconds / u.window_seconds;
            if msgs_per_sec > 0.0 {
                m.server_cpu_per_msg_us = Some(m.server_cpu_utilization / msgs_per_sec * 1e6);
                let switches = (u.ctx_voluntary + u.ctx_involuntary) as f64 / u.window_seconds;
                m.server_ctx_switches_per_msg = Some(switches / msgs_per_sec);
            }
        }
    }
    m
}

fn percentiles(l: &Latency) -> Percentiles {
    Percentiles::from(l)
}
