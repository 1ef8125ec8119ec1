//! The readable summary printed on stdout after a run (the JSON holds the same figures).

use std::fmt::Write;

use crate::config::Mode;
use crate::report::{Datagrams, Report};
use crate::stats::Latency;

mod burst;

/// Formats the whole report for a terminal.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let c = &r.config;
    let mode = match r.mode {
        Mode::Closed => format!("closed loop, pipeline {}", c.pipeline),
        Mode::Open => format!("open loop at {} msgs/s", thousands(c.rate.unwrap_or(0.0))),
        Mode::Churn => "churn (a new connection per message)".to_owned(),
        Mode::Burst => "a burst of connections opened at once, one message each".to_owned(),
    };
    let pinned = if r.generator.cpus.is_empty() {
        String::new()
    } else {
        format!(
            " on CPU {}",
            r.generator.cpus.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(",")
        )
    };
    let threads = plural(r.generator.threads as u64, "thread");
    let conn = if r.udp.is_some() { "socket" } else { "connection" };
    let conns = plural(r.connections.requested as u64, conn);
    let _ = writeln!(
        out,
        "{} -> {}: {mode}, {conns} x {} B, {threads}{pinned}",
        r.tool, r.target, c.size
    );
    let mut window =
        format!("measured {:.2} s after {:.2} s warmup", r.run.measured_secs, r.run.warmup_secs);
    if r.run.window_wait_secs > 0.0 {
        // The window waited for first echoes (see README, "When the window opens").
        let _ = write!(window, " and {:.2} s for first echoes", r.run.window_wait_secs);
    }
    if c.idle > 0 {
        let _ = write!(window, ", {} idle connections open", r.connections.idle_opened);
        if c.idle_echo {
            let _ = write!(window, " (each echoed one message first)");
        }
    }
    if c.start_at.is_some()
        && let Some(began) = &r.run.began_at
    {
        // Said only when asked for: then whether it began on time is the point.
        let _ = write!(window, ", warmup began {began}");
    }
    if r.run.interrupted {
        window.push_str(" (interrupted)");
    }
    match &r.burst {
        Some(b) => burst::render(&mut out, b),
        None => drop(writeln!(out, "{window}\n")),
    }

    let t = &r.throughput;
    let _ = write!(
        out,
        "throughput   {} msgs/s   {:.2} MiB/s",
        thousands(t.msgs_per_sec),
        t.mib_per_sec
    );
    if let (Some(target), Some(ratio)) = (t.target_msgs_per_sec, t.achieved_ratio) {
        let _ = write!(
            out,
            "   (sent {} of {} msgs/s asked, {:.1}%)",
            thousands(t.sent_per_sec),
            thousands(target),
            ratio * 100.0
        );
    }
    let m = &r.messages;
    let _ = write!(
        out,
        "\nmessages     sent {}   received {}",
        thousands(m.sent as f64),
        thousands(m.received as f64)
    );
    if m.not_sent > 0 {
        let _ = write!(out, "   not sent (connection down) {}", thousands(m.not_sent as f64));
    }
    if m.backlogged > 0 {
        let _ = write!(out, "   never written (backlog) {}", thousands(m.backlogged as f64));
    }
    let e = &r.errors;
    let _ = writeln!(
        out,
        "\nerrors       connect {}   io {}   timeout {}   mismatch {}   lost {}",
        e.connect, e.io, e.timeout, e.mismatch, e.lost
    );
    let cn = &r.connections;
    let opened = match r.mode {
        Mode::Churn => "opened",
        _ => "reopened",
    };
    if let Some(udp) = &r.udp {
        datagram_lines(&mut out, r, udp);
        let _ = writeln!(out, "sockets      {} of {} open", cn.up_at_start, cn.requested);
    } else if r.mode == Mode::Burst {
        // A burst opens all its connections after the start: none is up at it.
        let _ = writeln!(out, "connections  {} of {} opened", cn.established, cn.requested);
    } else {
        let _ = writeln!(
            out,
            "connections  {} of {} up at start   {opened} {}",
            cn.up_at_start,
            cn.requested,
            thousands(cn.established as f64)
        );
    }

    let _ = writeln!(
        out,
        "\n{:<22}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}",
        "latency (us)", "p50", "p90", "p99", "p99.9", "p99.99", "max", "mean"
    );
    match r.mode {
        Mode::Open => {
            latency_row(&mut out, "from schedule", &r.latency_us);
            latency_row(&mut out, "from actual send", &r.latency_us_uncorrected);
        }
        _ => {
            latency_row(&mut out, "message", &r.latency_us);
            // The failures are in the row above; the echoes alone, when they differ.
            if r.latency_us_uncorrected.count != r.latency_us.count {
                latency_row(&mut out, "echoed only", &r.latency_us_uncorrected);
            }
        }
    }
    if let Some(connect) = &r.connect_latency_us {
        latency_row(&mut out, "connect", connect);
    }
    if let Some(lag) = &r.schedule_lag_us {
        latency_row(&mut out, "send lag", lag);
    }

    let g = &r.generator;
    let waited = match g.max_thread_run_delay {
        Some(delay) => format!(", longest wait for a CPU {:.0}% of the time", delay * 100.0),
        None => String::new(),
    };
    let _ = writeln!(
        out,
        "\ngenerator    CPU {:.2} s over {} (busiest at {:.0}% of a CPU{waited}), {} us per message",
        g.cpu_seconds,
        plural(g.threads as u64, "thread"),
        g.max_thread_utilization * 100.0,
        g.cpu_us_per_msg.map_or("-".to_owned(), |us| format!("{us:.2}"))
    );
    if let Some(line) = pacing(r) {
        let _ = writeln!(out, "pacing       {line}");
    }
    for p in g.pinned_cpus.iter().filter(|p| p.threads > 1) {
        let _ = writeln!(
            out,
            "             CPU {} ran {} load threads, together {:.0}% of it",
            p.cpu,
            p.threads,
            p.utilization * 100.0
        );
    }
    for reason in &g.saturation {
        let _ = writeln!(
            out,
            "warning: the generator was saturated: {reason}; these figures measure loadgen as much as the server"
        );
    }
    if let Some(err) = &e.first_error {
        let _ = writeln!(out, "first error: {err}");
    }
    if let Some(err) = &e.first_warmup_error {
        let _ = writeln!(out, "first error before the window (not counted): {err}");
    }
    if let Some(mismatch) = &e.first_mismatch {
        let _ = writeln!(out, "first mismatch: {mismatch}");
    }
    if !r.is_consistent() {
        let _ = writeln!(out, "warning: the message counts do not add up; this is a loadgen bug");
    }
    out
}

/// The open loop's pacing in one line: how early sends could leave and how many left
/// together, where that slack came from, and what the echoes were timed by.
fn pacing(r: &Report) -> Option<String> {
    let g = &r.generator;
    let slack = g.send_slack_us?;
    let mut line = match slack {
        0.0 => "no send left early".to_owned(),
        _ => format!("sends could leave up to {} us early", us(slack)),
    };
    if let Some(per) = g.sends_per_wakeup {
        line.push_str(&format!(", {per:.1} per wake-up of the send timer"));
    }
    match (r.config.send_slack, g.wake_cost_us) {
        (None, Some(cost)) => line.push_str(&format!(
            "; chosen from the {} us of CPU one sleep and wake-up cost here (--send-slack sets it)",
            us(cost)
        )),
        (Some(_), _) => line.push_str(" (--send-slack)"),
        (None, None) => line.push_str(" (the least: a wake-up's cost could not be measured)"),
    }
    if g.echoes_stamped_by_kernel == Some(true) {
        line.push_str("; echoes timed by the kernel's receive stamps");
    }
    Some(line)
}

/// UDP mode: what became of the datagrams, and the kernel's counters (machine-wide).
fn datagram_lines(out: &mut String, r: &Report, u: &Datagrams) {
    let _ = writeln!(
        out,
        "datagrams    lost {} ({:.2}%)   corrupt {}   duplicated {}   reordered {}   late {}   \
         unexpected {}   refused {}",
        thousands(u.lost as f64),
        u.loss_ratio * 100.0,
        u.corrupt,
        u.duplicated,
        u.reordered,
        u.late,
        u.unexpected,
        u.refused
    );
    match &u.kernel {
        Some(k) => {
            let _ = writeln!(
                out,
                "kernel {:<6}InErrors +{}   RcvbufErrors +{}   SndbufErrors +{}   NoPorts +{}   \
                 (machine-wide: every process's datagrams, over the whole run)",
                k.family, k.in_errors, k.rcvbuf_errors, k.sndbuf_errors, k.no_ports
            );
        }
        None if r.target.starts_with("udp:unix:") => {
            let _ = writeln!(out, "kernel       (Unix datagram sockets have no loss counters)");
        }
        None => {
            let _ = writeln!(out, "kernel       (the UDP counters in /proc/net could not be read)");
        }
    }
    // A closed loop refills a lost datagram's slot only once it is declared lost.
    if r.mode == Mode::Closed && u.lost > 0 && r.config.timeout.as_millis() >= 100 {
        let _ = writeln!(
            out,
            "note: each lost datagram held its pipeline slot for --timeout ({:?}); a shorter \
             --timeout keeps a closed loop busy over a lossy path",
            r.config.timeout
        );
    }
}

/// One row of the latency table; `-` in every column when nothing was measured.
pub fn latency_row(out: &mut String, label: &str, l: &Latency) {
    if l.count == 0 {
        let _ = writeln!(out, "  {label:<20}{}", format!("{:>9}", "-").repeat(7));
        return;
    }
    let _ = writeln!(
        out,
        "  {label:<20}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}",
        us(l.p50),
        us(l.p90),
        us(l.p99),
        us(l.p999),
        us(l.p9999),
        us(l.max),
        us(l.mean)
    );
}

/// A microsecond figure with precision that suits its size, in at most 8 characters so the
/// 9-wide columns never run together: seconds (`4.43s`) from a second up.
fn us(v: f64) -> String {
    if v < 100.0 {
        format!("{v:.1}")
    } else if v < 1e6 {
        thousands(v)
    } else if v < 1e9 {
        format!("{:.2}s", v / 1e6)
    } else {
        format!("{:.0}s", v / 1e6)
    }
}

/// `1234567.8` as `1,234,568`.
pub fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn plural(n: u64, what: &str) -> String {
    if n == 1 { format!("1 {what}") } else { format!("{n} {what}s") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_columns_never_run_together() {
        for (v, text) in
            [(12.34, "12.3"), (4_429.0, "4,429"), (4_429_185.0, "4.43s"), (3.6e9, "3600s")]
        {
            assert_eq!(us(v), text);
        }
        let mut row = String::new();
        let huge = Latency {
            count: 1,
            p50: 4_429_185.0,
            p90: 4_966_056.0,
            max: 3.6e9,
            ..Latency::default()
        };
        latency_row(&mut row, "message", &huge);
        assert!(row.contains(" 4.43s ") && row.contains(" 4.97s "), "{row}");
    }

    #[test]
    fn big_numbers_get_separators() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1234567.8), "1,234,568");
    }
}
