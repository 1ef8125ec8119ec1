//! The summary's lines for `--burst`: how the connections ended, and when they connected.

use std::fmt::Write;

use super::latency_row;
use crate::report::Burst;

/// Outcome counts, then the connect and echo latencies (from the burst's start).
pub fn render(out: &mut String, b: &Burst) {
    let o = &b.outcomes;
    let _ = writeln!(
        out,
        "burst        {} connections, all started within {:.1} ms: echoed {}   refused {}   \
         connect timeout {}   error {}   echo timeout {}   mismatch {}",
        b.connections,
        b.opening_us / 1e3,
        o.echoed,
        o.refused,
        o.connect_timeout,
        o.error,
        o.echo_timeout,
        o.mismatch
    );
    let _ = writeln!(
        out,
        "\n{:<22}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}",
        "from burst start (us)", "p50", "p90", "p99", "p99.9", "p99.99", "max", "mean"
    );
    latency_row(out, "connected", &b.connect_us);
    latency_row(out, "echoed", &b.echo_us);
}
