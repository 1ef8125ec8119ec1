//! Each mode against a real echo server over real sockets: the counts add up, and the figures
//! each mode promises are there.

mod util;

use std::time::Duration;

use loadgen::{Config, Mode, Report};
use util::{EchoServer, Fault, quick, run};

/// A short run: every load loop in these tests is bounded by its duration and timeout.
fn assert_clean(r: &Report) {
    let e = &r.errors;
    assert_eq!((e.connect, e.io, e.timeout, e.mismatch, e.lost), (0, 0, 0, 0, 0), "errors: {e:?}");
    assert!(r.messages.received > 0, "nothing came back");
    assert_eq!(r.latency_us.count, r.messages.received, "one latency per echo");
}

#[test]
fn closed_loop_with_a_pipeline_counts_every_message() {
    let server = EchoServer::start(Fault::None, 64);
    let r = run(&Config { connections: 8, pipeline: 4, threads: Some(2), ..quick(&server.addr) });
    assert_eq!(r.mode, Mode::Closed);
    assert_clean(&r);
    assert_eq!(r.messages.sent, r.messages.received);
    assert_eq!(r.latency_us, r.latency_us_uncorrected, "a closed loop has one latency");
    assert_eq!(r.connections.up_at_start, 8);
    assert!(r.throughput.msgs_per_sec > 0.0 && r.throughput.mib_per_sec > 0.0);
    assert!(r.run.measured_secs >= 0.39 && !r.run.short && !r.run.interrupted, "{:?}", r.run);
    assert!(r.generator.cpu_seconds > 0.0);
}

#[test]
fn open_loop_sends_on_schedule_and_reports_the_rate_it_achieved() {
    let server = EchoServer::start(Fault::None, 64);
    let r = run(&Config {
        rate: Some(2_000.0),
        duration: Duration::from_millis(500),
        ..quick(&server.addr)
    });
    assert_eq!(r.mode, Mode::Open);
    assert_clean(&r);
    // The schedule alone decides what is sent: 2,000/s over half a second.
    assert!((900..=1_100).contains(&r.messages.sent), "sent {}", r.messages.sent);
    let ratio = r.throughput.achieved_ratio.expect("an open loop reports its achieved rate");
    assert!((0.9..=1.1).contains(&ratio), "achieved {ratio}");
    assert_eq!(r.throughput.target_msgs_per_sec, Some(2_000.0));
    let lag = r.schedule_lag_us.expect("an open loop reports its send lag");
    // Warm-up messages still in flight when the window opened are counted in `sent` but
    // were not sent by the window's schedule, so they have no lag in it.
    assert_eq!(lag.count, r.messages.sent - r.messages.carried_over);
}

#[test]
fn open_loop_sends_exactly_what_the_schedule_holds_when_it_batches_its_sends() {
    // 20k msgs/s on two threads: each thread has a send due every 100 us, so a wake-up sends
    // several due within the slack at once. Batching must change when messages leave, never
    // how many: exactly rate x window, each sent, echoed and given one lag.
    let server = EchoServer::start(Fault::None, 64);
    let r = run(&Config {
        rate: Some(20_000.0),
        connections: 8,
        threads: Some(2),
        ..quick(&server.addr)
    });
    assert_clean(&r);
    let m = &r.messages;
    // 20,000/s over the 400 ms window; the warm-up's messages still in flight when it opened
    // belong to it as well and are counted apart.
    assert_eq!(m.scheduled - m.carried_over, 8_000, "{m:?}");
    assert_eq!((m.sent, m.received, m.not_sent, m.backlogged), (m.scheduled, m.scheduled, 0, 0));
    let lag = r.schedule_lag_us.expect("an open loop reports its send lag");
    assert_eq!(lag.count, m.sent - m.carried_over, "one lag per send the window scheduled");
}

#[test]
fn churn_opens_a_connection_per_message_and_times_the_connects() {
    let server = EchoServer::start(Fault::None, 64);
    let r =
        run(&Config { churn: true, duration: Duration::from_millis(300), ..quick(&server.addr) });
    assert_eq!(r.mode, Mode::Churn);
    assert_clean(&r);
    let connect = r.connect_latency_us.expect("churn reports connect latency");
    assert!(connect.count > 0);
    // Each measured message needed its own connection (the first ones were opened before).
    assert!(r.connections.established + r.connections.up_at_start >= r.messages.received);
    assert!(server.accepted() >= r.messages.received);
    // Spread over loopback source addresses (16 by default), each with its own ports.
    let peers = server.peers();
    assert!(peers.len() >= 8, "connections came from only {peers:?}");
    assert!(peers.iter().all(|ip| ip.to_string().starts_with("127.")), "{peers:?}");
}

#[test]
fn idle_ballast_is_held_open_and_silent() {
    let server = EchoServer::start(Fault::None, 64);
    let r = run(&Config { idle: 20, connections: 2, ..quick(&server.addr) });
    assert_clean(&r);
    assert_eq!(r.connections.idle_opened, 20);
    assert_eq!(r.connections.idle_closed_by_server, 0);
    assert_eq!(r.connections.idle_echoed, 0, "silent: nothing sent, nothing echoed");
    assert!(server.accepted() >= 23, "probe, 2 load and 20 idle connections");
}

#[test]
fn idle_echo_works_over_unix_sockets_and_checks_the_echo() {
    let server = EchoServer::start_unix(Fault::None, 100, "idle-echo");
    let config = Config { idle: 12, idle_echo: true, size: 100, ..quick(&server.addr) };
    let r = run(&config);
    assert_clean(&r);
    assert_eq!((r.connections.idle_opened, r.connections.idle_echoed), (12, 12));
    // A server that corrupts every message fails every idle connection's echo: none is kept
    // as ballast, and the first failure is described.
    let corrupt = EchoServer::start(Fault::Corrupt { every: 1 }, 64);
    let config = Config { idle: 5, idle_echo: true, ..quick(&corrupt.addr) };
    let r = loadgen::run(&config, &loadgen::Cancel::new()).expect("the run fails");
    assert_eq!((r.connections.idle_opened, r.connections.idle_echoed), (0, 0));
    let described = r.errors.first_warmup_error.unwrap_or_default();
    assert!(described.contains("the echo differed"), "{described}");
}

#[test]
fn unix_sockets_carry_load_too() {
    let server = EchoServer::start_unix(Fault::None, 100, "modes");
    let r = run(&Config { size: 100, pipeline: 2, ..quick(&server.addr) });
    assert_clean(&r);
    assert!(r.target.starts_with("unix:"));
    let churn = run(&Config {
        size: 100,
        churn: true,
        duration: Duration::from_millis(200),
        ..quick(&server.addr)
    });
    assert_clean(&churn);
}

#[test]
fn ipv6_addresses_work_as_the_servers_print_them() {
    let Some(server) = EchoServer::start_at("[::1]:0", Fault::None, 64) else {
        eprintln!("skipped: this machine cannot bind [::1]");
        return;
    };
    assert!(server.addr.starts_with("[::1]:"));
    let r = run(&quick(&server.addr));
    assert_clean(&r);
    assert_eq!(r.target, server.addr);
}

#[test]
fn large_messages_arrive_in_pieces_and_are_still_checked() {
    let server = EchoServer::start(Fault::None, 200_000);
    let r = run(&Config { size: 200_000, connections: 2, pipeline: 2, ..quick(&server.addr) });
    assert_clean(&r);
    assert_eq!(r.messages.bytes_received, r.messages.received * 200_000);
}

#[test]
fn a_generator_that_cannot_keep_up_says_so_and_a_light_run_does_not() {
    let server = EchoServer::start(Fault::None, 64);
    // Twenty million messages a second on one connection: no generator sends that.
    let hopeless = run(&Config { rate: Some(20e6), connections: 1, ..quick(&server.addr) });
    assert!(hopeless.generator.saturated, "not flagged: {:?}", hopeless.generator);
    assert!(!hopeless.generator.saturation.is_empty());

    // A hundred messages a second leaves the generator idle nearly all the time.
    let light = run(&Config { rate: Some(100.0), connections: 1, ..quick(&server.addr) });
    let g = &light.generator;
    assert!(g.run_delay_seconds.is_some(), "no run delay read");
    assert!(g.max_thread_utilization < 0.5 && g.max_thread_demand.unwrap() < 0.9, "{g:?}");
    // On a machine busy with other work (these tests share theirs, and run beside each
    // other), a light generator can still be woken late, and saying so is right. What says
    // whether it was is its own run delay (time its threads waited for a CPU), not the load
    // average, which lags by a minute: a generator that never waited must not be flagged.
    let waited = g.run_delay_seconds.unwrap_or(0.0);
    if waited < 0.001 {
        assert!(!g.saturated, "flagged though it never waited for a CPU: {:?}", g.saturation);
    } else {
        eprintln!("the generator waited {waited:.4} s for a CPU: {:?}", g.saturation);
    }
}

#[test]
fn load_threads_sharing_one_cpu_are_measured_there() {
    let server = EchoServer::start(Fault::None, 64);
    let cpu = loadgen_cpu();
    let r = run(&Config { threads: Some(2), cpus: vec![cpu], pipeline: 32, ..quick(&server.addr) });
    assert_clean(&r);
    let g = &r.generator;
    assert_eq!(g.pinned_cpus.len(), 1, "{g:?}");
    assert_eq!((g.pinned_cpus[0].cpu, g.pinned_cpus[0].threads), (cpu, 2));
    assert!(g.pinned_cpus[0].utilization > 0.0, "{g:?}");
    // Two runnable threads on one CPU wait for each other.
    assert!(g.run_delay_seconds.unwrap() > 0.0, "{g:?}");
}

/// The first CPU this process may run on.
fn loadgen_cpu() -> usize {
    let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).unwrap();
    (0..nix::sched::CpuSet::count()).find(|&c| set.is_set(c).unwrap_or(false)).unwrap()
}
