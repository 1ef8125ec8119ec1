//! The reports of one sharded run (`--shard`) combined into the report of the whole load, and
//! the check that they are one run's, every shard once. `loadgen merge` checks its JSON inputs
//! with [`check_shards`]; the echobench harness merges its generators' reports with
//! [`merge_reports`] and treats the result as if one loadgen had applied the whole load.
//!
//! Histograms are added and every percentile read off the sum (percentiles of parts cannot
//! be combined); counts, rates (the shards ran at the same time, so their rates add) and CPU
//! times are summed; worst-of figures (a thread's utilization, a run delay) take the worst.

use anyhow::{Context, Result, bail, ensure};

use crate::report::{Connections, Datagrams, Errors, Generator, Histograms, Report, Throughput};
use crate::stats::{self, Hist, Latency};

/// Checks that `reports` (each named by its file, or by the generator it came from) are the
/// shards of one run, each once and none missing: the run identity and shard count agree,
/// and the indices are exactly 1..=N. Reports without a shard (runs started by hand with one
/// `--start-at`) pass when none of them is a shard. Returns the run identity, if sharded.
pub fn check_shards(reports: &[(&str, &Report)]) -> Result<Option<String>> {
    let Some((first_name, first)) = reports.iter().find_map(|(n, r)| Some((n, r.shard.as_ref()?)))
    else {
        return Ok(None);
    };
    let (run_id, count) = (&first.run_id, first.shard.count);
    let mut seen: Vec<Option<&str>> = vec![None; count];
    for (name, report) in reports {
        let Some(info) = &report.shard else {
            bail!(
                "{name} is not a shard, but {first_name} is shard {} of run {run_id}: merge \
                 one run's shards together",
                first.shard
            );
        };
        ensure!(
            info.run_id == *run_id,
            "{name} belongs to run {}, not to run {run_id} of {first_name} (another load or \
             another --start-at)",
            info.run_id
        );
        ensure!(
            info.shard.count == count,
            "{name} is shard {} but {first_name} is shard {}: one run has one number of shards",
            info.shard,
            first.shard
        );
        let slot = &mut seen[info.shard.index - 1];
        if let Some(other) = slot {
            bail!("shard {} of run {run_id} is given twice: {other} and {name}", info.shard);
        }
        *slot = Some(name);
    }
    let missing: Vec<String> = seen
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_none())
        .map(|(i, _)| format!("{}/{count}", i + 1))
        .collect();
    ensure!(
        missing.is_empty(),
        "run {run_id} is missing shard{} {} (got {} of {count})",
        if missing.len() > 1 { "s" } else { "" },
        missing.join(", "),
        count - missing.len()
    );
    Ok(Some(run_id.clone()))
}

/// One report for the whole load from its shards' reports (checked with [`check_shards`]).
/// The configuration is the whole load's, its `threads` the sum over the shards; the
/// environment is the first shard's (each generator's own is in its report).
pub fn merge_reports(reports: &[Report]) -> Result<Report> {
    let named: Vec<(String, &Report)> = reports
        .iter()
        .enumerate()
        .map(|(i, r)| {
            (
                r.shard
                    .as_ref()
                    .map_or(format!("report {}", i + 1), |s| format!("shard {}", s.shard)),
                r,
            )
        })
        .collect();
    let refs: Vec<(&str, &Report)> = named.iter().map(|(n, r)| (n.as_str(), *r)).collect();
    check_shards(&refs)?;
    let Some(first) = reports.first() else { bail!("no reports to merge") };
    ensure!(reports.iter().all(|r| r.burst.is_none()), "burst reports cannot be merged");
    let hist = |pick: fn(&Histograms) -> Option<&String>| -> Result<Option<Hist>> {
        let mut sum: Option<Hist> = None;
        for (name, r) in &named {
            if let Some(text) = pick(&r.histograms) {
                let h = stats::decode(text).with_context(|| format!("{name}: histogram"))?;
                sum.get_or_insert_with(stats::new_hist).add(h)?;
            }
        }
        Ok(sum)
    };
    let latency = hist(|h| Some(&h.latency))?.context("no latency histogram")?;
    let uncorrected = hist(|h| Some(&h.latency_uncorrected))?.context("no latency histogram")?;
    let connect = hist(|h| h.connect.as_ref())?;
    let lag = hist(|h| h.schedule_lag.as_ref())?;

    let mut config = first.config.clone();
    config.shard = None;
    config.threads = Some(reports.iter().map(|r| r.generator.threads).sum());
    let mut merged = Report {
        schema_version: crate::report::SCHEMA_VERSION,
        tool: first.tool.clone(),
        started_at: earliest(reports.iter().map(|r| Some(r.started_at.as_str())))
            .unwrap_or_default(),
        mode: first.mode,
        target: first.target.clone(),
        config,
        run: first.run.clone(),
        throughput: Throughput::default(),
        messages: Default::default(),
        latency_us: Latency::of(&latency),
        latency_us_uncorrected: Latency::of(&uncorrected),
        connect_latency_us: connect.as_ref().map(Latency::of),
        schedule_lag_us: lag.as_ref().map(Latency::of),
        errors: Errors::default(),
        connections: Connections::default(),
        generator: generator(reports),
        environment: first.environment.clone(),
        burst: None,
        udp: udp(reports),
        shard: None,
        histograms: Histograms {
            latency: stats::encode(&latency)?,
            latency_uncorrected: stats::encode(&uncorrected)?,
            connect: connect.as_ref().map(stats::encode).transpose()?,
            schedule_lag: lag.as_ref().map(stats::encode).transpose()?,
        },
    };
    merged.run.began_at = earliest(reports.iter().map(|r| r.run.began_at.as_deref()));
    for r in reports {
        let (run, t) = (&mut merged.run, &mut merged.throughput);
        run.measured_secs = run.measured_secs.max(r.run.measured_secs);
        run.drain_secs = run.drain_secs.max(r.run.drain_secs);
        run.interrupted |= r.run.interrupted;
        run.short |= r.run.short;
        t.msgs_per_sec += r.throughput.msgs_per_sec;
        t.mib_per_sec += r.throughput.mib_per_sec;
        t.sent_per_sec += r.throughput.sent_per_sec;
        if let Some(target) = r.throughput.target_msgs_per_sec {
            *t.target_msgs_per_sec.get_or_insert(0.0) += target;
        }
        merged.messages.add(&r.messages);
        add_errors(&mut merged.errors, &r.errors);
        let (c, o) = (&mut merged.connections, &r.connections);
        c.requested += o.requested;
        c.up_at_start += o.up_at_start;
        c.established += o.established;
        c.idle_requested += o.idle_requested;
        c.idle_opened += o.idle_opened;
        c.idle_echoed += o.idle_echoed;
        c.idle_closed_by_server += o.idle_closed_by_server;
    }
    let t = &mut merged.throughput;
    t.achieved_ratio = t.target_msgs_per_sec.filter(|&x| x > 0.0).map(|x| t.sent_per_sec / x);
    let g = &mut merged.generator;
    g.cpu_us_per_msg = (merged.messages.received > 0)
        .then(|| g.cpu_seconds * 1e6 / merged.messages.received as f64);
    Ok(merged)
}

/// Adds one report's errors; the first error of each kind is the first report's that has one.
pub fn add_errors(sum: &mut Errors, e: &Errors) {
    sum.connect += e.connect;
    sum.io += e.io;
    sum.timeout += e.timeout;
    sum.mismatch += e.mismatch;
    sum.lost += e.lost;
    sum.first_error = sum.first_error.take().or_else(|| e.first_error.clone());
    sum.first_warmup_error = sum.first_warmup_error.take().or_else(|| e.first_warmup_error.clone());
    sum.first_mismatch = sum.first_mismatch.take().or_else(|| e.first_mismatch.clone());
}

/// The earliest of some RFC 3339 times (all UTC, so the text sorts like the time once the
/// fractions are padded alike; the parsed times are compared to be sure).
fn earliest<'a>(times: impl Iterator<Item = Option<&'a str>>) -> Option<String> {
    times
        .flatten()
        .filter_map(|t| Some((humantime::parse_rfc3339(t).ok()?, t)))
        .min_by_key(|(at, _)| *at)
        .map(|(_, t)| t.to_owned())
}

/// The generators together: CPU summed, the worst thread's figures the worst of all, and
/// every saturation reason kept, each naming its shard.
fn generator(reports: &[Report]) -> Generator {
    let mut g = Generator::default();
    let max = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let mut wakeups = (0.0, 0);
    for r in reports {
        let o = &r.generator;
        g.threads += o.threads;
        g.cpu_seconds += o.cpu_seconds;
        g.user_seconds += o.user_seconds;
        g.system_seconds += o.system_seconds;
        g.process_cpu_seconds += o.process_cpu_seconds;
        g.spin_seconds += o.spin_seconds;
        g.max_thread_utilization = g.max_thread_utilization.max(o.max_thread_utilization);
        g.run_delay_seconds = match (g.run_delay_seconds, o.run_delay_seconds) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        g.max_thread_run_delay = max(g.max_thread_run_delay, o.max_thread_run_delay);
        g.max_thread_demand = max(g.max_thread_demand, o.max_thread_demand);
        g.send_slack_us = max(g.send_slack_us, o.send_slack_us);
        g.wake_cost_us = max(g.wake_cost_us, o.wake_cost_us);
        if let Some(s) = o.sends_per_wakeup {
            wakeups = (wakeups.0 + s, wakeups.1 + 1);
        }
        g.echoes_stamped_by_kernel = match (g.echoes_stamped_by_kernel, o.echoes_stamped_by_kernel)
        {
            (Some(a), Some(b)) => Some(a && b),
            (a, b) => a.or(b),
        };
        g.saturated |= o.saturated;
        let who = r.shard.as_ref().map_or(String::new(), |s| format!("shard {}: ", s.shard));
        g.saturation.extend(o.saturation.iter().map(|reason| format!("{who}{reason}")));
    }
    g.sends_per_wakeup = (wakeups.1 > 0).then(|| wakeups.0 / wakeups.1 as f64);
    g
}

/// UDP mode's counts summed. The kernel's counters are machine-wide: with more than one
/// generator they are of other machines, or of one machine counted twice, so they are left
/// out.
fn udp(reports: &[Report]) -> Option<Datagrams> {
    let mut parts = reports.iter().filter_map(|r| r.udp.as_ref()).peekable();
    parts.peek()?;
    let mut d = Datagrams::default();
    let mut n = 0;
    for o in parts {
        n += 1;
        d.lost += o.lost;
        d.corrupt += o.corrupt;
        d.duplicated += o.duplicated;
        d.reordered += o.reordered;
        d.late += o.late;
        d.unexpected += o.unexpected;
        d.refused += o.refused;
        d.kernel = o.kernel.clone();
    }
    if n > 1 {
        d.kernel = None;
    }
    let sent: u64 = reports.iter().map(|r| r.messages.sent).sum();
    d.loss_ratio = if sent > 0 { d.lost as f64 / sent as f64 } else { 0.0 };
    Some(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::{Shard, ShardInfo};

    fn shard(index: usize, count: usize, run: &str) -> Report {
        let mut latency = stats::new_hist();
        latency.record(1_000 * index as u64).unwrap();
        let encoded = stats::encode(&latency).unwrap();
        Report {
            shard: Some(ShardInfo {
                shard: Shard { index, count },
                run_id: run.to_owned(),
                first_connection: 0,
                connections: 1,
                idle: 0,
                rate: None,
            }),
            messages: crate::report::Messages { sent: 10, received: 10, ..Default::default() },
            histograms: Histograms {
                latency: encoded.clone(),
                latency_uncorrected: encoded,
                ..Default::default()
            },
            ..Report::default()
        }
    }

    fn refused(reports: &[Report]) -> String {
        merge_reports(reports).unwrap_err().to_string()
    }

    #[test]
    fn one_runs_shards_merge_into_sums_and_merged_histograms() {
        let merged = merge_reports(&[shard(2, 2, "a"), shard(1, 2, "a")]).unwrap();
        assert_eq!(merged.messages.received, 20);
        assert_eq!(merged.latency_us.count, 2);
        // The percentiles are read off the added histograms, not averaged.
        assert!(merged.latency_us.max >= 1.99 && merged.latency_us.p50 < 1.01, "{merged:?}");
        assert!(merged.shard.is_none());
    }

    #[test]
    fn a_missing_doubled_or_foreign_shard_is_refused() {
        let missing = refused(&[shard(1, 3, "a"), shard(3, 3, "a")]);
        assert!(missing.contains("missing shard 2/3"), "{missing}");
        let doubled = refused(&[shard(1, 2, "a"), shard(1, 2, "a")]);
        assert!(doubled.contains("given twice"), "{doubled}");
        let foreign = refused(&[shard(1, 2, "a"), shard(2, 2, "b")]);
        assert!(foreign.contains("belongs to run b"), "{foreign}");
        let counts = refused(&[shard(1, 2, "a"), shard(2, 3, "a")]);
        assert!(counts.contains("one number of shards"), "{counts}");
        let mut plain = shard(2, 2, "a");
        plain.shard = None;
        let mixed = refused(&[shard(1, 2, "a"), plain]);
        assert!(mixed.contains("is not a shard"), "{mixed}");
        assert!(!missing.contains('\n') && !mixed.contains('\n'));
    }
}
