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

/// One connection, a send every 100 ms: the load thread sleeps 100 ms between sends, and
/// over TCP reads each echo only when it wakes for the next send.
fn slow(addr: &str) -> Config {
    Config {
        rate: Some(10.0),
        connections: 1,
        threads: Some(1),
        duration: Duration::from_millis(800),
        ..quick(addr)
    }
}

#[test]
fn echoes_read_at_the_next_send_are_timed_when_they_arrived() {
    let server = EchoServer::start(Fault::None, 64);
    let r = run(&slow(&server.addr));
    assert_clean(&r);
    assert_eq!(r.generator.echoes_stamped_by_kernel, Some(true), "{:?}", r.generator);
    // Each echo waited in the socket about 100 ms for the read. Timed by the read, the median
    // would be that long; timed by the kernel's stamp it is one loopback round trip.
    let median_us = r.latency_us_uncorrected.p50;
    assert!(median_us < 50_000.0, "median {median_us} us: timed by the read, not the arrival");
}

#[test]
fn over_a_unix_socket_echoes_are_read_as_they_come() {
    let server = EchoServer::start_unix(Fault::None, 64, "pacing");
    let r = run(&slow(&server.addr));
    assert_clean(&r);
    // No receive stamps on Unix sockets: the loop sleeps on the sockets too, and the
    // latency is still one round trip, not the time to the next send.
    assert_eq!(r.generator.echoes_stamped_by_kernel, Some(false), "{:?}", r.generator);
    let median_us = r.latency_us_uncorrected.p50;
    assert!(median_us < 50_000.0, "median {median_us} us: the echoes waited for the next send");
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
    let cost = g.wake_cost_us.expect("the open loop measures a wake-up");
    assert!(cost > 0.0, "a sleep and wake-up cost nothing?");
    // 16 wake-ups' cost, within 50 us and 1 ms, and at most ten send intervals (500 us),
    // in whole microseconds.
    let rule = (16.0 * cost).clamp(50.0, 1_000.0).min(500.0).floor();
    assert_eq!(g.send_slack_us, Some(rule), "{g:?}");
    let per = g.sends_per_wakeup.expect("the open loop counts its wake-ups");
    assert!(per >= 1.0, "{per} sends per wake-up");
    // Batching changes when messages leave, never how many.
    let m = &r.messages;
    assert_eq!((m.sent, m.received, m.not_sent, m.backlogged), (m.scheduled, m.scheduled, 0, 0));
}

#[test]
fn no_slack_sends_nothing_early() {
    let server = EchoServer::start(Fault::None, 64);
    // A send due every millisecond on one thread: with no slack each gets its own wake-up.
    let r = run(&Config {
        rate: Some(1_000.0),
        connections: 4,
        threads: Some(1),
        send_slack: Some(Duration::ZERO),
        ..quick(&server.addr)
    });
    assert_clean(&r);
    let g = &r.generator;
    assert_eq!(g.send_slack_us, Some(0.0));
    let per = g.sends_per_wakeup.expect("the open loop counts its wake-ups");
    // A wake-up more than a millisecond late (a busy machine) sends two; most send one.
    assert!((1.0..1.5).contains(&per), "{per} sends per wake-up without slack");
}
