//! Turning a burst's connections into a [`Report`]: the `burst` section, and the usual
//! sections filled in so that the accounting invariant holds as in every other mode.

use std::time::SystemTime;

use crate::config::Config;
use crate::cpu::CpuTime;
use crate::env::Environment;
use crate::report::burst::{Burst, BurstConnection, Outcome, Outcomes};
use crate::report::{
    Connections, Errors, Generator, Histograms, Messages, Report, RunInfo, SCHEMA_VERSION,
    Throughput,
};
use crate::stats::{self, Latency, Recorder};
use crate::target::Target;

use super::Measured;

/// Everything the burst's run gathered.
#[derive(Debug)]
pub struct Parts<'a> {
    pub config: &'a Config,
    pub target: &'a Target,
    pub started_at: SystemTime,
    pub environment: Environment,
    pub measured: Measured,
    /// The burst thread's CPU time over the burst, and the whole process's.
    pub cpu: CpuTime,
    pub process_cpu: CpuTime,
}

/// Builds the report, and the histograms the interval log takes (in the recorder:
/// `corrected` the message latency with failures, `uncorrected` the echoes alone, `connect`
/// the connect latency from the burst's start).
pub fn report(p: Parts<'_>) -> (Report, Recorder) {
    let m = &p.measured;
    let timeout_ns = u64::try_from(p.config.timeout.as_nanos()).unwrap_or(u64::MAX);
    let mut rec = Recorder::new();
    let mut echo = stats::new_hist();
    let mut outcomes = Outcomes::default();
    let mut messages = Messages::default();
    let mut errors = Errors::default();
    let mut established = 0;
    let us = |ns: u64| ns as f64 / 1e3;
    for slot in &m.slots {
        let outcome = slot.outcome.unwrap_or(Outcome::Error);
        outcomes.count(outcome);
        if let Some(at) = slot.connect_ns {
            established += 1;
            rec.connect.saturating_record(at.max(1));
        }
        // Every connection that connected had one message meant for it; a connection that
        // failed before its last byte was written never sent it.
        if slot.connect_ns.is_some() {
            messages.scheduled += 1;
            if slot.sent() {
                messages.sent += 1;
            } else {
                messages.backlogged += 1;
            }
        }
        match (outcome, slot.sent()) {
            (Outcome::Echoed, _) => {
                messages.received += 1;
                let arrived = slot.echo_ns.unwrap_or(slot.sent_ns);
                rec.corrected.saturating_record(arrived.saturating_sub(slot.sent_ns).max(1));
                echo.saturating_record(arrived.max(1));
            }
            (Outcome::Mismatch, true) => errors.mismatch += 1,
            // Bytes that came before the message was sent: not an echo of it.
            (Outcome::Mismatch, false) => errors.io += 1,
            (Outcome::Refused | Outcome::ConnectTimeout, _) => errors.connect += 1,
            (Outcome::Error, _) if slot.connect_ns.is_none() => errors.connect += 1,
            (Outcome::Error, sent) => {
                errors.io += 1;
                errors.lost += u64::from(sent);
            }
            (Outcome::EchoTimeout, sent) => errors.timeout += u64::from(sent),
        }
        // A message given up counts in the latency at its age then, never below --timeout.
        if slot.sent() && matches!(outcome, Outcome::Error | Outcome::EchoTimeout) {
            let age = m.finished_ns.saturating_sub(slot.sent_ns).max(timeout_ns);
            rec.failed.saturating_record(age);
        }
        if errors.first_error.is_none() && outcome != Outcome::Echoed {
            errors.first_error = Some(describe(outcome, slot.why.as_deref(), p.target));
        }
    }
    errors.first_mismatch =
        m.slots.iter().find(|s| s.outcome == Some(Outcome::Mismatch)).and_then(|s| s.why.clone());
    // Histograms of one shape always add; a failure would show as a short count.
    let _ = rec.fold_failures(false);
    let size = p.config.size as u64;
    messages.received_in_window = messages.received;
    messages.bytes_sent = messages.sent * size;
    messages.bytes_received = messages.received * size;
    let secs = m.finished_ns as f64 / 1e9;
    let per_sec = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
    let each = m
        .slots
        .iter()
        .map(|s| BurstConnection {
            connect_us: s.connect_ns.map(us),
            echo_us: s.echo_ns.map(us),
            outcome: s.outcome.unwrap_or(Outcome::Error),
        })
        .collect();
    let burst = Burst {
        connections: m.slots.len(),
        opening_us: us(m.opening_ns),
        outcomes,
        connect_us: Latency::of(&rec.connect),
        echo_us: Latency::of(&echo),
        each,
    };
    let mut config = p.config.clone();
    config.threads = Some(1);
    let report = Report {
        schema_version: SCHEMA_VERSION,
        tool: crate::tool(),
        started_at: humantime::format_rfc3339_millis(p.started_at).to_string(),
        mode: config.mode(),
        target: p.target.to_string(),
        run: RunInfo {
            // A burst has no warm-up: its connects begin as soon as loadgen has started.
            began_at: Some(humantime::format_rfc3339_micros(p.started_at).to_string()),
            warmup_secs: 0.0,
            window_wait_secs: 0.0,
            measured_secs: secs,
            drain_secs: 0.0,
            interrupted: m.interrupted,
            short: m.interrupted,
        },
        throughput: Throughput {
            msgs_per_sec: per_sec(messages.received),
            mib_per_sec: per_sec(messages.received * size) / (1 << 20) as f64,
            sent_per_sec: per_sec(messages.sent),
            ..Throughput::default()
        },
        latency_us: Latency::of(&rec.corrected),
        latency_us_uncorrected: Latency::of(&rec.uncorrected),
        connect_latency_us: Some(burst.connect_us),
        messages,
        errors,
        connections: Connections {
            requested: m.slots.len(),
            up_at_start: 0,
            established,
            ..Connections::default()
        },
        generator: generator(&p, secs, m),
        environment: p.environment,
        histograms: Histograms {
            latency: encode(&rec.corrected),
            latency_uncorrected: encode(&rec.uncorrected),
            connect: Some(encode(&rec.connect)),
            schedule_lag: None,
        },
        shard: None,
        burst: Some(burst),
        config,
        // Whatever else a report holds is for the other modes (an open loop's schedule lag).
        ..Report::default()
    };
    (report, rec)
}

/// The one thread's CPU over the burst's wall time. A burst waits on the server for nearly
/// all of it, so no saturation verdict is made.
fn generator(p: &Parts<'_>, secs: f64, m: &Measured) -> Generator {
    let received = m.slots.iter().filter(|s| s.outcome == Some(Outcome::Echoed)).count();
    let cpu = p.cpu.total().as_secs_f64();
    Generator {
        threads: 1,
        cpus: p.config.cpus.clone(),
        cpu_seconds: cpu,
        user_seconds: p.cpu.user.as_secs_f64(),
        system_seconds: p.cpu.system.as_secs_f64(),
        process_cpu_seconds: p.process_cpu.total().as_secs_f64(),
        max_thread_utilization: if secs > 0.0 { cpu / secs } else { 0.0 },
        cpu_us_per_msg: (received > 0).then(|| cpu * 1e6 / received as f64),
        ..Generator::default()
    }
}

fn describe(outcome: Outcome, why: Option<&str>, target: &Target) -> String {
    match (outcome, why) {
        (_, Some(why)) => why.to_owned(),
        (Outcome::ConnectTimeout, None) => format!("connecting to {target} timed out"),
        _ => format!("a connection of the burst ended as {outcome:?}"),
    }
}

fn encode(hist: &stats::Hist) -> String {
    stats::encode(hist).unwrap_or_default()
}
