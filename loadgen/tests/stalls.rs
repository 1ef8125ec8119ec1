//! A connection that stalls shows in the figures of the window it hurts, whenever the stall
//! began: during warm-up, just before the window opened, or inside it. A message still
//! outstanding when the window opens belongs to the window, so its timeout is counted and its
//! latency (at least `--timeout`) is in the histograms; and the first error described is
//! always one the counts include.

mod util;

use std::time::Duration;

use loadgen::{Config, Report};
use util::{EchoServer, Fault, run};

/// The window opens 420 ms after the run's first message.
const WARMUP: Duration = Duration::from_millis(420);

/// The three ways to load, each with what one stalled connection must cost it: every message
/// in flight on it times out, and that is one message, or the pipeline's depth.
fn modes() -> [(&'static str, Config, u64); 3] {
    let base = Config {
        connections: 8,
        threads: Some(1),
        warmup: WARMUP,
        duration: Duration::from_secs(1),
        timeout: Duration::from_millis(500),
        ..Config::default()
    };
    [
        ("closed loop", base.clone(), 1),
        ("pipelined", Config { pipeline: 4, ..base.clone() }, 4),
        // 10 msgs/s over 8 connections on one thread: a send every 100 ms from 0 (so one at
        // 400 ms, 20 ms before the window opens), each connection's every 800 ms. Its next
        // send comes after the timeout, so one message is in flight when it stalls.
        ("open loop", Config { rate: Some(10.0), ..base }, 1),
    ]
}

/// Runs every mode against a server that silences one connection `after` the first message.
fn stalled_runs(after: Duration) -> Vec<(&'static str, Report, u64)> {
    modes()
        .into_iter()
        .map(|(mode, config, in_flight)| {
            let server = EchoServer::start(Fault::Silence { after }, 64);
            (mode, run(&Config { addr: server.addr.clone(), ..config }), in_flight)
        })
        .collect()
}

/// The stall shows as exactly the messages it caught, timed out, at `--timeout` or more.
/// When the stall began before the window, the messages it caught were carried over into it.
fn assert_one_stall_counted(after: Duration) {
    for (mode, r, in_flight) in stalled_runs(after) {
        let (m, e) = (&r.messages, &r.errors);
        assert_eq!(e.timeout, in_flight, "{mode}: {m:?} {e:?}");
        assert_eq!((e.io, e.lost, e.mismatch), (0, 0, 0), "{mode}: {e:?}");
        let timeout_us = r.config.timeout.as_micros() as f64;
        assert!(r.latency_us.max >= timeout_us, "{mode}: max {} us", r.latency_us.max);
        // The timed-out messages are in the latency; the echoed ones are all the rest.
        let failures = e.timeout + m.backlogged + m.not_sent;
        assert_eq!(r.latency_us.count, m.received + failures, "{mode}: {m:?} {e:?}");
        assert_eq!(m.scheduled, m.sent + m.not_sent + m.backlogged, "{mode}: {m:?}");
        let first = e.first_error.as_deref().unwrap_or_default();
        assert!(first.contains("no echo within the timeout"), "{mode}: first error {first:?}");
        assert_eq!(e.first_warmup_error, None, "{mode}");
        if after < WARMUP {
            assert!(m.carried_over >= in_flight, "{mode}: {m:?}");
        }
        // The rate offered in the window leaves the carried-over messages out (all of them were
        // written: 64-byte messages never wait in loadgen's buffer here).
        let sent_in_window = (m.sent - m.carried_over) as f64 / r.run.measured_secs;
        assert_eq!(r.throughput.sent_per_sec, sent_in_window, "{mode}: {m:?}");
    }
}

#[test]
fn a_connection_that_stalls_during_warmup_times_out_in_the_window() {
    // Stalled 20 ms in, so the timeout (500 ms) falls in the window (from 420 ms): the
    // closed loops' message was queued then, the open loop's was due at 100 ms.
    assert_one_stall_counted(Duration::from_millis(20));
}

#[test]
fn a_connection_that_stalls_just_before_the_window_times_out_in_it() {
    // Stalled at 390 ms: the closed loops' message was queued about 30 ms before the window
    // opened, the open loop's was due at 400 ms, 20 ms before.
    assert_one_stall_counted(Duration::from_millis(390));
}

#[test]
fn a_connection_that_stalls_inside_the_window_times_out_in_it() {
    assert_one_stall_counted(Duration::from_millis(600));
}

#[test]
fn a_timeout_over_before_the_window_opens_is_not_counted_nor_called_the_first_error() {
    // Stalled 20 ms in with a 300 ms timeout and a 1 s warm-up: the message (the open loop's
    // was due at 100 ms) is given up, and its connection reopened, well before the window
    // opens. Nothing of it is the window's.
    let timeout = Duration::from_millis(300);
    for (mode, config, _) in modes() {
        let server = EchoServer::start(Fault::Silence { after: Duration::from_millis(20) }, 64);
        let r = run(&Config {
            addr: server.addr.clone(),
            warmup: Duration::from_secs(1),
            timeout,
            ..config
        });
        let e = &r.errors;
        assert_eq!((e.timeout, e.lost, e.io, e.connect), (0, 0, 0, 0), "{mode}: {e:?}");
        assert_eq!(e.first_error, None, "{mode}: an error the counts leave out");
        let warmup = e.first_warmup_error.as_deref().unwrap_or_default();
        assert!(warmup.contains("no echo within the timeout"), "{mode}: {warmup:?}");
        assert!(r.latency_us.max < timeout.as_micros() as f64, "{mode}: {:?}", r.latency_us);
        let text = loadgen::summary::render(&r);
        assert!(!text.contains("\nfirst error:"), "{mode}: {text}");
        assert!(text.contains("first error before the window (not counted)"), "{mode}: {text}");
    }
}
