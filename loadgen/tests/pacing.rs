//! The open loop's pacing against a real echo server: echoes left in their sockets until the
//! next send are still timed when they arrived (the kernel's receive stamp), the slack loadgen
//! chose is the one its rule gives and the report says so, and `--send-slack 0` sends nothing
//! early. Nothing here times loadgen's speed; the figures checked are its own bookkeeping.

mod util;

use std::time::Duration;

use loadgen::{Config, Report};
use util::{EchoServer, Fault, quick, run};

fn assert_clean(r: &Report) {
    let e = &r.errors;
    assert_eq!((e.connect, e.io, e.timeout, e.mismatch, e.lost), (0, 0, 0, 0, 0), "errors: {e:?}");
    assert!(r.messages.received > 0, "nothing came back");
}

/// One connection, a send every 100 ms: over TCP the load thread reads each echo only when
/// it next wakes, which is at its 10 ms housekeeping bound at the latest, so an echo waits
/// about 10 ms in its socket before it is read.
fn slow(addr: &str) -> Config {
    Config {
        rate: Some(10.0),
        connections: 1,
        threads: Some(1),
        duration: Duration::from_millis(800),
        ..quick(addr)
    }
}

/// The median of a run whose echoes waited about 10 ms for the read: timed by the read it
/// would be about 10 ms; by the arrival, one loopback round trip (tens of microseconds). The
/// bound between the two leaves a busy machine's round trip a wide margin.
const WELL_BELOW_THE_READ_DELAY_US: f64 = 3_000.0;

/// Runs [`slow`] against `server` and checks what timed its echoes: the kernel's stamps
/// (`stamped`) or reads made as the echoes came. Either way the median is one round trip.
fn assert_timed_at_arrival(server: &EchoServer, stamped: bool) {
    let r = run(&slow(&server.addr));
    assert_clean(&r);
    assert_eq!(r.generator.echoes_stamped_by_kernel, Some(stamped), "{:?}", r.generator);
    let median_us = r.latency_us_uncorrected.p50;
    assert!(
        median_us < WELL_BELOW_THE_READ_DELAY_US,
        "median {median_us} us: timed by a read made later, not by the arrival"
    );
}

#[test]
fn echoes_read_at_the_next_wake_up_are_timed_when_they_arrived() {
    assert_timed_at_arrival(&EchoServer::start(Fault::None, 64), true);
}

#[test]
fn over_a_unix_socket_echoes_are_read_as_they_come() {
    // No receive stamps on Unix sockets: the loop sleeps on the sockets too, and reads each
    // echo as it comes.
    assert_timed_at_arrival(&EchoServer::start_unix(Fault::None, 64, "pacing"), false);
}

#[test]
fn the_automatic_slack_follows_its_rule_and_the_report_gives_it() {
    let server = EchoServer::start(Fault::None, 64);
    // One thread with a send due every 50 us.
    let r = run(&Config {
        rate: Some(20_000.0),
        connections: 8,
        threads: Some(1),
        ..quick(&server.addr)
    });
    assert_clean(&r);
    let g = &r.generator;
    let cost_ns = (g.wake_cost_us.expect("the open loop measures a wake-up") * 1e3).round() as u64;
    assert!(cost_ns > 0, "a sleep and wake-up cost nothing?");
    // 32 wake-ups' cost, within 50 us and 1 ms in steps of 50 us, and at most ten send
    // intervals (500 us).
    let rule_ns = ((32 * cost_ns).clamp(50_000, 1_000_000) / 50_000 * 50_000).min(500_000);
    assert_eq!(g.send_slack_us, Some(rule_ns as f64 / 1e3), "{g:?}");
    assert!(g.sends_per_wakeup.is_some(), "the open loop counts its timer's wake-ups");
    // Batching changes when messages leave, never how many.
    let m = &r.messages;
    assert_eq!((m.sent, m.received, m.not_sent, m.backlogged), (m.scheduled, m.scheduled, 0, 0));
}

/// Sends per wake-up of the send timer at a send every 500 us (one thread), with `slack`.
fn sends_per_wakeup(slack: Duration) -> (f64, Option<f64>) {
    let server = EchoServer::start(Fault::None, 64);
    let r = run(&Config {
        rate: Some(2_000.0),
        connections: 4,
        threads: Some(1),
        send_slack: Some(slack),
        ..quick(&server.addr)
    });
    assert_clean(&r);
    let g = &r.generator;
    (g.sends_per_wakeup.expect("the open loop counts its timer's wake-ups"), g.send_slack_us)
}

#[test]
fn the_slack_decides_how_many_sends_a_wake_up_takes() {
    // No slack: each send its own wake-up (a wake-up over 500 us late, on a busy machine,
    // takes two).
    let (per, slack) = sends_per_wakeup(Duration::ZERO);
    assert_eq!(slack, Some(0.0));
    assert!((1.0..1.5).contains(&per), "{per} sends per wake-up without slack");
    // 2 ms of slack (within ten intervals): the wake-up due at t sends everything due by
    // t + 2 ms, five sends.
    let (per, slack) = sends_per_wakeup(Duration::from_millis(2));
    assert_eq!(slack, Some(2_000.0));
    assert!(per >= 3.0, "{per} sends per wake-up with 2 ms of slack");
}
