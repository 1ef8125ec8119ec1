//! Turns one loadgen JSON report plus the server's /proc usage into the figures the report uses.
//!
//! The keys read here are the documented, stable ones of loadgen/SCHEMA.md. The whole report is
//! kept beside these figures in results.json, so a key this file does not read is not lost.

use serde_json::Value;

use super::procstat::Usage;
use super::results::{Metrics, Percentiles};

/// The figures of one repeat. `None` if the report lacks the throughput, which every
/// report has: then it is not a loadgen report.
pub fn metrics(report: &Value, usage: Option<&Usage>) -> Option<Metrics> {
    let msgs_per_sec = number(report, "/throughput/msgs_per_sec")?;
    let mut m = Metrics {
        msgs_per_sec,
        mib_per_sec: number(report, "/throughput/mib_per_sec").unwrap_or(0.0),
        sent: number(report, "/messages/sent").unwrap_or(0.0),
        received: number(report, "/messages/received").unwrap_or(0.0),
        // Summing every count under `errors` keeps a future error class from going unseen
        // (the first error's text sits there too, and is skipped as not a number).
        errors: report
            .pointer("/errors")
            .and_then(Value::as_object)
            .map(|o| o.values().filter_map(Value::as_f64).sum())
            .unwrap_or(0.0),
        latency_us: percentiles(report, "/latency_us").unwrap_or_default(),
        latency_us_uncorrected: percentiles(report, "/latency_us_uncorrected"),
        connect_us: percentiles(report, "/connect_latency_us"),
        generator_cpu_seconds: number(report, "/generator/cpu_seconds").unwrap_or(0.0),
        generator_cpu_per_msg_us: number(report, "/generator/cpu_us_per_msg"),
        generator_run_delay: number(report, "/generator/max_thread_run_delay"),
        generator_saturated: report
            .pointer("/generator/saturated")
            .and_then(Value::as_bool)
            .unwrap_or(false),
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
    Some(m)
}

/// The measured window's length in seconds as loadgen reports it (`run.measured_secs`).
pub fn measured_seconds(report: &Value) -> Option<f64> {
    number(report, "/run/measured_secs").filter(|s| *s > 0.0)
}

/// Seconds loadgen waited after the window for the last echoes (`run.drain_secs`).
pub fn drain_seconds(report: &Value) -> f64 {
    number(report, "/run/drain_secs").filter(|s| *s >= 0.0).unwrap_or(0.0)
}

fn number(report: &Value, pointer: &str) -> Option<f64> {
    report.pointer(pointer).and_then(Value::as_f64)
}

fn percentiles(report: &Value, pointer: &str) -> Option<Percentiles> {
    let p = report.pointer(pointer)?;
    let get = |k: &str| p.get(k).and_then(Value::as_f64);
    Some(Percentiles {
        p50: get("p50")?,
        p90: get("p90").unwrap_or(0.0),
        p99: get("p99").unwrap_or(0.0),
        p999: get("p999").unwrap_or(0.0),
        p9999: get("p9999").unwrap_or(0.0),
        max: get("max").unwrap_or(0.0),
        mean: get("mean").unwrap_or(0.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_documented_keys_and_divides_server_cpu_by_messages() {
        let report = json!({
            "throughput": {"msgs_per_sec": 100000.0, "mib_per_sec": 6.1},
            "messages": {"sent": 200000, "received": 199990},
            "latency_us": {"p50": 20.0, "p90": 30.0, "p99": 50.0, "p999": 90.0,
                           "p9999": 200.0, "max": 900.0, "mean": 22.0},
            "errors": {"connect": 0, "io": 4, "timeout": 6, "mismatch": 0},
            "generator": {"cpu_seconds": 1.5, "saturated": true}
        });
        let usage = Usage {
            window_seconds: 2.0,
            cpu_seconds: 1.0,
            ctx_voluntary: 1000,
            ctx_involuntary: 1000,
            ..Usage::default()
        };
        let m = metrics(&report, Some(&usage)).unwrap();
        assert_eq!(m.errors, 10.0);
        assert!(m.generator_saturated);
        assert_eq!(m.latency_us.p99, 50.0);
        assert!(m.latency_us_uncorrected.is_none());
        // 0.5 CPU-seconds per second over 100k msgs/s is 5 us per message.
        assert!((m.server_cpu_per_msg_us.unwrap() - 5.0).abs() < 1e-9);
        assert!((m.server_ctx_switches_per_msg.unwrap() - 0.01).abs() < 1e-12);
        assert!(metrics(&json!({"hello": 1}), None).is_none());
    }
}
