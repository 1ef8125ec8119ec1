//! UDP mode against an in-process datagram echo server, perfect or faulty, over real sockets:
//! loadgen's books agree with what the server did, datagram for datagram. Runs without warm-up
//! compare exactly (every datagram the server saw belongs to the window); the rest bound the
//! difference by what can still be in flight at the end.

mod util;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use loadgen::{Config, Mode, Report};
use util::run;
use util::udp::{DgramFault, UdpEcho};

const LOADGEN: &str = env!("CARGO_BIN_EXE_loadgen");

/// A short UDP run against `addr`: 4 sockets, no warm-up (so the window holds every datagram),
/// 400 ms measured. The timeout is long (a second) so that on a busy machine no echo is late
/// for want of a CPU and the counts compare exactly; a closed loop then fills its pipeline
/// slot by slot as datagrams are lost, which is enough to count. The test of refilling sets
/// a short one.
fn quick(addr: &str) -> Config {
    Config {
        addr: addr.to_owned(),
        connections: 4,
        duration: Duration::from_millis(400),
        warmup: Duration::ZERO,
        timeout: Duration::from_secs(1),
        ..Config::default()
    }
}

/// The UDP section, which every UDP report has.
fn udp(r: &Report) -> &loadgen::report::Datagrams {
    r.udp.as_ref().expect("a UDP run reports its datagrams")
}

fn assert_perfect(r: &Report) {
    let (m, e, u) = (&r.messages, &r.errors, udp(r));
    assert!(m.received > 0, "nothing came back");
    assert_eq!(m.sent, m.received, "{m:?} {e:?}");
    assert_eq!((e.connect, e.io, e.timeout, e.mismatch, e.lost), (0, 0, 0, 0, 0), "{e:?}");
    assert_eq!(
        (u.lost, u.corrupt, u.duplicated, u.reordered, u.late, u.unexpected),
        (0, 0, 0, 0, 0, 0)
    );
    assert_eq!(r.latency_us.count, m.received, "one latency per echo");
}

#[test]
fn a_perfect_server_echoes_every_datagram_in_a_closed_loop() {
    let server = UdpEcho::start(DgramFault::None);
    let r = run(&Config { pipeline: 4, threads: Some(2), ..quick(&server.addr) });
    assert_eq!(r.mode, Mode::Closed);
    assert_perfect(&r);
    assert!(r.target.starts_with("udp:127.0.0.1:"), "{}", r.target);
    assert_eq!(r.connections.up_at_start, 4);
    // Everything the server saw was loadgen's: the probe's datagram and the window's.
    assert_eq!(server.received(), r.messages.sent + 1);
    let kernel = udp(&r).kernel.as_ref().expect("the kernel's UDP counters");
    assert_eq!(kernel.family, "Udp");
    // Machine-wide, so at least this run's datagrams (both ways) went through them.
    assert!(kernel.out_datagrams >= 2 * r.messages.sent, "{kernel:?}");
}

#[test]
fn every_tenth_datagram_dropped_is_counted_lost_exactly() {
    for rate in [None, Some(2_000.0)] {
        let server = UdpEcho::start(DgramFault::Drop { every: 10 });
        let r = run(&Config {
            rate,
            pipeline: if rate.is_none() { 16 } else { 1 },
            ..quick(&server.addr)
        });
        let (m, u) = (&r.messages, udp(&r));
        assert_eq!(u.lost, server.dropped(), "{rate:?}: {m:?} {u:?}");
        assert_eq!(m.sent, m.received + u.lost, "{rate:?}: {m:?} {u:?}");
        assert_eq!(r.errors.lost, u.lost);
        // Every tenth of each socket's datagrams, the probe's socket aside.
        let per_socket = m.sent / 4;
        let least = (per_socket / 10 * 4).saturating_sub(4);
        assert!(u.lost >= least && u.lost <= m.sent / 10 + 4, "{rate:?}: {m:?} {u:?}");
        assert!((u.loss_ratio - 0.1).abs() < 0.02, "{rate:?}: loss {}", u.loss_ratio);
        assert_eq!((u.late, u.duplicated, u.corrupt), (0, 0, 0), "{rate:?}: {u:?}");
        // Lost datagrams are in the latency at the timeout or more; echoed ones are not.
        assert_eq!(r.latency_us.count, m.received + u.lost);
        assert!(r.latency_us.max >= 1e6, "{:?}", r.latency_us);
    }
}

#[test]
fn a_closed_loop_refills_a_lost_datagrams_slot_so_loss_does_not_stall_it() {
    // Every other datagram dropped, one datagram in flight per socket: without refilling,
    // the loop would stop at the first loss.
    let server = UdpEcho::start(DgramFault::Drop { every: 2 });
    let r = run(&Config { timeout: Duration::from_millis(20), ..quick(&server.addr) });
    let (m, u) = (&r.messages, udp(&r));
    // 400 ms, a loss every other datagram costing 20 ms: about ten losses per socket.
    assert!(u.lost >= 4 * 5, "the loop stalled: {m:?} {u:?}");
    assert_eq!(m.sent, m.received + u.lost);
    // Every datagram the server dropped is lost. With so short a timeout, one the server (on
    // a busy machine) echoed late is lost too, and counted late if its echo comes in time.
    assert!(u.lost - u.late >= server.dropped(), "{u:?}: {} dropped", server.dropped());
}

#[test]
fn duplicates_are_counted_and_not_received_twice() {
    let server = UdpEcho::start(DgramFault::Duplicate { every: 5 });
    let r = run(&Config { pipeline: 2, ..quick(&server.addr) });
    let (m, u) = (&r.messages, udp(&r));
    assert_eq!(m.sent, m.received, "{m:?} {u:?}");
    // The duplicates of each socket's last datagrams may come after loadgen stopped reading.
    let sent = server.duplicated();
    assert!(u.duplicated <= sent && u.duplicated + 4 >= sent, "{} of {sent}: {u:?}", u.duplicated);
    assert!(u.duplicated > 0);
    assert_eq!((u.lost, u.reordered, u.late, u.unexpected), (0, 0, 0, 0), "{u:?}");
}

#[test]
fn datagrams_echoed_out_of_order_are_counted_reordered_and_still_received() {
    let server = UdpEcho::start(DgramFault::Reorder { every: 5 });
    let r = run(&Config { pipeline: 4, ..quick(&server.addr) });
    let (m, u) = (&r.messages, udp(&r));
    assert_eq!(m.sent, m.received + u.lost, "{m:?} {u:?}");
    // A datagram held back when its socket stopped sending has no follower to release it.
    assert!(u.lost <= 4, "{u:?}");
    assert!(u.reordered > 0);
    assert_eq!(u.reordered, server.reordered(), "{u:?}");
    assert_eq!((u.duplicated, u.corrupt, u.late), (0, 0, 0), "{u:?}");
}

#[test]
fn corrupt_echoes_are_detected_and_counted_exactly() {
    let server = UdpEcho::start(DgramFault::Corrupt { every: 10 });
    let r = run(&Config { pipeline: 2, ..quick(&server.addr) });
    let (m, u) = (&r.messages, udp(&r));
    assert_eq!(u.corrupt, server.corrupted(), "{m:?} {u:?}");
    assert!(u.corrupt > 0);
    assert_eq!(r.errors.mismatch, u.corrupt);
    assert_eq!(m.sent, m.received + u.corrupt, "{m:?} {u:?}");
    let first = r.errors.first_mismatch.as_deref().expect("the first corrupt echo is described");
    assert!(first.contains("differs"), "{first}");
}

#[test]
fn the_open_loop_sends_the_scheduled_count() {
    let server = UdpEcho::start(DgramFault::None);
    let r = run(&Config {
        rate: Some(2_000.0),
        duration: Duration::from_millis(500),
        timeout: Duration::from_secs(1),
        ..quick(&server.addr)
    });
    assert_eq!(r.mode, Mode::Open);
    assert_perfect(&r);
    // 2,000 a second for half a second, every one of them sent on a loaded machine too.
    let m = &r.messages;
    assert!((999..=1_001).contains(&m.scheduled), "{m:?}");
    assert_eq!(m.sent, m.scheduled, "{m:?}");
    let lag = r.schedule_lag_us.expect("an open loop reports its send lag");
    assert_eq!(lag.count, m.sent);
    assert!(r.latency_us_uncorrected.count == m.received);
}

#[test]
fn a_stall_shows_in_the_open_loops_percentiles_and_a_long_one_as_loss() {
    // Silent for 200 ms from 100 ms on: the datagrams sent meanwhile wait in the kernel.
    let stall =
        DgramFault::Stall { after: Duration::from_millis(100), length: Duration::from_millis(200) };
    let server = UdpEcho::start(stall);
    let r = run(&Config {
        rate: Some(1_000.0),
        duration: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
        ..quick(&server.addr)
    });
    assert_perfect(&r);
    assert!(r.latency_us.p90 >= 10_000.0, "p90 {}", r.latency_us.p90);

    // Silent for good from 200 ms on: the rest is lost, and the run still ends on time.
    let stall =
        DgramFault::Stall { after: Duration::from_millis(200), length: Duration::from_secs(30) };
    let server = UdpEcho::start(stall);
    let started = Instant::now();
    let config = Config { rate: Some(1_000.0), ..quick(&server.addr) };
    let r = run(&config);
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    let (m, u) = (&r.messages, udp(&r));
    assert!(m.received > 0 && u.lost > 0, "{m:?} {u:?}");
    assert_eq!(m.sent, m.received + u.lost);
}

#[test]
fn a_server_that_dies_is_refused_and_the_run_still_ends_on_time() {
    for rate in [None, Some(1_000.0)] {
        let server = UdpEcho::start(DgramFault::DieAfter(Duration::from_millis(150)));
        let started = Instant::now();
        let r = run(&Config { rate, timeout: Duration::from_millis(20), ..quick(&server.addr) });
        assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
        let (m, u) = (&r.messages, udp(&r));
        assert!(m.received > 0, "{rate:?}: nothing before the death came back: {m:?}");
        // Over loopback the kernel answers each datagram to the closed port with ICMP port
        // unreachable, which the socket reports as a refusal.
        assert!(u.refused > 0, "{rate:?}: no refusal counted: {u:?}");
        assert!(u.lost > 0, "{rate:?}: {u:?}");
        assert_eq!(m.sent, m.received + u.lost, "{rate:?}: {m:?} {u:?}");
        // The refusal usually comes to the socket's next receive, not its next send: the
        // datagrams still went, and are lost.
        assert_eq!(m.scheduled, m.sent + m.not_sent + m.backlogged, "{m:?}");
        assert!(r.errors.first_error.is_some());
    }
}

#[test]
fn echoes_after_the_timeout_are_late_and_stay_lost() {
    // Silent for 300 ms from 100 ms on, then it echoes what queued meanwhile: those datagrams
    // were declared lost after 100 ms, and their echoes come late.
    let stall =
        DgramFault::Stall { after: Duration::from_millis(100), length: Duration::from_millis(300) };
    let server = UdpEcho::start(stall);
    let r = run(&Config {
        rate: Some(1_000.0),
        duration: Duration::from_millis(600),
        timeout: Duration::from_millis(100),
        ..quick(&server.addr)
    });
    let (m, u) = (&r.messages, udp(&r));
    assert!(u.late > 0, "{m:?} {u:?}");
    assert!(u.lost >= u.late, "a late echo belongs to a lost datagram: {u:?}");
    assert_eq!(m.sent, m.received + u.lost, "late echoes are not received: {m:?} {u:?}");
    assert_eq!(server.dropped(), 0);
}

#[test]
fn warm_up_datagrams_outstanding_when_the_window_opens_belong_to_it() {
    // Silent from 50 ms to 250 ms: what was sent just before the window opened (at 100 ms)
    // is still waiting then, and is the window's.
    let stall =
        DgramFault::Stall { after: Duration::from_millis(50), length: Duration::from_millis(200) };
    let server = UdpEcho::start(stall);
    let r = run(&Config {
        pipeline: 4,
        warmup: Duration::from_millis(100),
        timeout: Duration::from_secs(1),
        ..quick(&server.addr)
    });
    let m = &r.messages;
    assert_eq!(m.carried_over, 16, "four sockets' pipelines of four: {m:?}");
    assert_perfect(&r);
}

#[test]
fn ipv6_works_as_the_server_prints_it() {
    let Some(server) = UdpEcho::start_at("[::1]:0", DgramFault::None) else {
        eprintln!("skipped: this machine cannot bind [::1]");
        return;
    };
    assert!(server.addr.starts_with("udp:[::1]:"));
    let r = run(&Config { pipeline: 2, ..quick(&server.addr) });
    assert_perfect(&r);
    assert_eq!(r.target, server.addr);
    assert_eq!(udp(&r).kernel.as_ref().map(|k| k.family.as_str()), Some("Udp6"));
}

#[test]
fn unix_datagram_sockets_carry_load_and_leave_no_files() {
    let server = UdpEcho::start_unix(DgramFault::Drop { every: 10 }, "udp");
    let r = run(&Config { pipeline: 2, size: 1000, ..quick(&server.addr) });
    let (m, u) = (&r.messages, udp(&r));
    assert!(m.received > 0);
    assert_eq!(u.lost, server.dropped(), "{m:?} {u:?}");
    assert_eq!(m.sent, m.received + u.lost);
    assert!(r.target.starts_with("udp:unix:"));
    assert!(u.kernel.is_none(), "Unix datagrams have no UDP counters");
    // Each load thread's (and the probe's) own socket directory is gone.
    let prefix = format!("loadgen-{}-", std::process::id());
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn the_binary_runs_udp_and_writes_the_udp_section() {
    let server = UdpEcho::start(DgramFault::Drop { every: 20 });
    let json = std::env::temp_dir().join(format!("loadgen-udp-cli-{}.json", std::process::id()));
    let out = Command::new(LOADGEN)
        .args(["--addr", &server.addr, "-c", "2", "-p", "2", "--duration", "300ms"])
        .args(["--warmup", "0s", "--timeout", "1s", "--json", json.to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("datagrams    lost "), "{stdout}");
    assert!(stdout.contains("machine-wide"), "{stdout}");
    let report = Report::from_json(&std::fs::read_to_string(&json).unwrap()).unwrap();
    std::fs::remove_file(&json).unwrap();
    assert_eq!(report.schema_version, 2);
    assert!(report.is_consistent());
    assert_eq!(udp(&report).lost, server.dropped());

    // Without --timeout, UDP mode waits 200 ms for an echo, not TCP's 5 s.
    let out = Command::new(LOADGEN)
        .args(["--addr", &server.addr, "-c", "1", "--duration", "100ms", "--warmup", "0s"])
        .args(["--json", json.to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = Report::from_json(&std::fs::read_to_string(&json).unwrap()).unwrap();
    std::fs::remove_file(&json).unwrap();
    assert_eq!(report.config.timeout, Duration::from_millis(200));
}

#[test]
fn bad_combinations_and_a_silent_port_get_one_line() {
    let cases: &[&[&str]] = &[
        &["--addr", "udp:127.0.0.1:9", "--churn"],
        &["--addr", "udp:127.0.0.1:9", "--idle", "10"],
        &["--addr", "udp:127.0.0.1:9", "--size", "4"],
        &["--addr", "udp:127.0.0.1:9", "--size", "65508"],
        &["--addr", "udp:[::1]:9", "--size", "65528"],
        &["--addr", "udp:unix:"],
        &["--addr", "udp:"],
    ];
    for args in cases {
        let out = Command::new(LOADGEN).args(*args).stdin(Stdio::null()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?} printed:\n{stderr}");
        assert!(stderr.starts_with("loadgen: "), "{args:?}: {stderr}");
    }
    // A port nobody listens on: the kernel refuses at once, one line, status 1.
    let free = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = format!("udp:{}", free.local_addr().unwrap());
    drop(free);
    let out = Command::new(LOADGEN).args(["--addr", &addr]).stdin(Stdio::null()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("nothing listens"), "{stderr}");
}

#[test]
fn reports_of_schema_version_1_still_read_back() {
    // A version-1 report has no `udp` field; the harness reads old results through this type.
    let mut old = serde_json::to_value(Report::default()).unwrap();
    old["schema_version"] = 1.into();
    assert!(old.get("udp").is_none());
    let back: Report = serde_json::from_value(old).unwrap();
    assert!(back.udp.is_none());
}
