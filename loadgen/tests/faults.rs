//! Servers that misbehave: every fault is detected and counted, and the run still ends on time
//! with a report whose counts add up.

mod util;

use std::time::{Duration, Instant};

use loadgen::{Cancel, Config, Report};
use util::{EchoServer, Fault, quick, run};

#[test]
fn corrupted_echoes_are_counted_as_mismatches() {
    let server = EchoServer::start(Fault::Corrupt { every: 20 }, 64);
    let r = run(&Config { pipeline: 2, ..quick(&server.addr) });
    assert!(r.errors.mismatch > 0, "no mismatch found: {:?}", r.errors);
    // One in twenty, and the stream stays in step: the others still come back intact.
    assert!(r.messages.received > r.errors.mismatch * 10, "{:?} {:?}", r.messages, r.errors);
    assert_eq!((r.errors.io, r.errors.timeout), (0, 0));
    let first = r.errors.first_mismatch.expect("the first mismatch is described");
    assert!(first.contains("differs"), "{first}");
}

#[test]
fn short_messages_swapped_between_connections_are_caught() {
    // Two connections cross-wired: each gets the other's message of the same sequence number,
    // which differs only in the connection it names. Below 8 bytes that must still show.
    for size in 1..=7 {
        let server = EchoServer::start(Fault::Cross, size);
        let r = run(&Config {
            size,
            connections: 2,
            duration: Duration::from_millis(200),
            // Each side's last message has no partner to answer it: it times out, soon.
            timeout: Duration::from_millis(200),
            ..quick(&server.addr)
        });
        let (m, e) = (&r.messages, &r.errors);
        // A swapped echo passes by chance once in 256^size: for one byte, about 1 in 256.
        assert!(e.mismatch > 20 * m.received, "size {size}: {m:?} {e:?}");
    }
}

#[test]
fn echoes_out_of_order_are_caught_by_their_sequence_numbers() {
    let server = EchoServer::start(Fault::Replay { every: 25 }, 64);
    let r = run(&quick(&server.addr));
    assert!(r.errors.mismatch > 0, "no mismatch found: {:?}", r.errors);
    let first = r.errors.first_mismatch.expect("the first mismatch is described");
    // The replayed message names its own (earlier) sequence number.
    assert!(first.contains("claims"), "{first}");
}

#[test]
fn a_stall_shows_in_open_loop_percentiles_but_hides_in_closed_loop_ones() {
    // The server goes silent for 200 ms, 300 ms after it starts; the runs measure from
    // 100 ms to 1.1 s, so the stall sits inside the window.
    let stall =
        Fault::Stall { after: Duration::from_millis(300), length: Duration::from_millis(200) };
    let base = Config { connections: 1, duration: Duration::from_secs(1), ..quick("") };

    let closed_server = EchoServer::start(stall, 64);
    let closed = run(&Config { addr: closed_server.addr.clone(), ..base.clone() });
    // One message waited out the stall; the thousands around it did not.
    assert!(closed.latency_us.max >= 150_000.0, "closed max {}", closed.latency_us.max);
    assert!(closed.latency_us.p99 < 100_000.0, "closed p99 {}", closed.latency_us.p99);
    assert!(
        closed.messages.received > 1_000,
        "too few messages to judge: {}",
        closed.messages.received
    );

    let open_server = EchoServer::start(stall, 64);
    let open = run(&Config { addr: open_server.addr.clone(), rate: Some(1_000.0), ..base });
    // At 1,000/s, 200 of the 1,000 messages were scheduled during the stall: a fifth of them
    // waited 100 ms or more, so the 99th percentile sees it.
    assert!(open.latency_us.p99 >= 100_000.0, "open p99 {}", open.latency_us.p99);
    assert!(open.latency_us.p90 >= 10_000.0, "open p90 {}", open.latency_us.p90);
    assert_eq!((open.errors.timeout, open.errors.lost), (0, 0));
}

#[test]
fn throughput_counts_only_the_echoes_that_arrive_inside_the_window() {
    // Every echo comes back half a second late, so the last half second of the window's
    // messages arrive during the drain: they are received, but not served inside the window.
    let server = EchoServer::start(Fault::Delay { by: Duration::from_millis(500) }, 64);
    let r = run(&Config {
        rate: Some(1_000.0),
        duration: Duration::from_secs(1),
        timeout: Duration::from_secs(2),
        ..quick(&server.addr)
    });
    assert_eq!(r.messages.received, r.messages.sent, "{:?} {:?}", r.messages, r.errors);
    assert!(r.run.drain_secs >= 0.3, "the late echoes were not waited for: {:?}", r.run);
    // About 600 of the 1,000 echoes arrive inside the window (100 of them sent in warmup).
    let (arrived, sent) = (r.throughput.msgs_per_sec, r.throughput.sent_per_sec);
    assert!(arrived < 0.8 * sent, "{arrived} msgs/s counted against {sent} sent");
    assert!(arrived > 0.3 * sent, "{arrived} msgs/s counted against {sent} sent");
    assert_eq!(
        r.throughput.msgs_per_sec,
        r.messages.received_in_window as f64 / r.run.measured_secs
    );
}

#[test]
fn a_stalled_server_times_out_and_its_failures_stay_in_the_percentiles() {
    // Silent from 300 ms on, far past the end of the run: most messages never come back.
    let stall = Fault::Stall { after: Duration::from_millis(300), length: Duration::from_secs(30) };
    let timeout = Duration::from_millis(300);
    for rate in [Some(1_000.0), None] {
        let server = EchoServer::start(stall, 64);
        let started = Instant::now();
        let config =
            Config { rate, duration: Duration::from_secs(1), timeout, ..quick(&server.addr) };
        let r = run(&config);
        // Warmup, window and one timeout of drain, with slack for a loaded machine.
        let limit = config.warmup + config.duration + config.timeout + Duration::from_secs(2);
        assert!(started.elapsed() < limit, "took {:?}", started.elapsed());
        let (m, e) = (&r.messages, &r.errors);
        assert!(e.timeout > 0, "{rate:?}: no timeout counted: {e:?}");
        assert!(m.received > 0, "{rate:?}: nothing before the stall came back: {m:?}");
        // Every message given up is in the latency, at --timeout or more: the stall cannot
        // make the percentiles look better than the echoes before it.
        let failures = e.timeout + e.lost + m.backlogged + m.not_sent;
        assert_eq!(r.latency_us.count, m.received + failures, "{rate:?}: {m:?} {e:?}");
        assert_eq!(r.latency_us_uncorrected.count, m.received, "{rate:?}");
        let timeout_us = timeout.as_micros() as f64;
        assert!(r.latency_us.max >= timeout_us, "{rate:?}: max {}", r.latency_us.max);
        if failures > m.received / 50 {
            assert!(r.latency_us.p99 >= timeout_us, "{rate:?}: p99 {}", r.latency_us.p99);
        }
    }
}

#[test]
fn an_open_loop_counts_as_sent_only_what_the_server_took() {
    // The server stops reading 300 ms in and never resumes within the run. A Unix socket
    // buffers only about 200 KB, so most of what the schedule calls for cannot be written.
    let stall = Fault::Stall { after: Duration::from_millis(300), length: Duration::from_secs(30) };
    let server = EchoServer::start_unix(stall, 16 << 10, "stops-reading");
    let started = Instant::now();
    let r = run(&Config {
        size: 16 << 10,
        rate: Some(1_000.0),
        duration: Duration::from_secs(1),
        timeout: Duration::from_millis(300),
        ..quick(&server.addr)
    });
    let m = &r.messages;
    assert_eq!(m.scheduled, m.sent + m.not_sent + m.backlogged, "{m:?}");
    // The schedule is kept in the books even where it could not be kept on the wire.
    let due = m.scheduled - m.carried_over;
    assert!((998..=1_002).contains(&due), "one second at 1,000/s: {m:?}");
    // Written messages went unanswered (timeouts); unwritten ones were never sent at all.
    assert!(r.errors.timeout > 0 && m.backlogged > 0, "{m:?} {:?}", r.errors);
    assert!(m.sent < m.scheduled / 2, "a stalled server was credited with {m:?}");
    assert!(r.generator.saturated, "a schedule not kept is not flagged");
    // Warmup, window, one timeout of drain, and slack for a loaded machine.
    assert!(started.elapsed() < Duration::from_secs(4), "took {:?}", started.elapsed());
}

#[test]
fn sends_held_back_by_a_server_that_stops_reading_are_charged_from_their_schedule() {
    // The server stops *reading* for 400 ms. A Unix socket buffers about 200 KB (a dozen of
    // these 16 KiB messages), so the sends due during the stall cannot reach the socket:
    // they wait in loadgen's write buffer and go out in a burst when the server reads again.
    // Measured from the actual write they look fast; from their schedule, they waited.
    let stall =
        Fault::Stall { after: Duration::from_millis(500), length: Duration::from_millis(400) };
    let server = EchoServer::start_unix(stall, 16 << 10, "stops-reading-briefly");
    let r = run(&Config {
        size: 16 << 10,
        connections: 1,
        rate: Some(1_000.0),
        duration: Duration::from_secs(2),
        timeout: Duration::from_secs(3),
        ..quick(&server.addr)
    });
    let (m, e) = (&r.messages, &r.errors);
    assert_eq!((e.timeout, e.lost, m.backlogged, m.not_sent), (0, 0, 0, 0), "{m:?} {e:?}");
    let (corrected, uncorrected) = (&r.latency_us, &r.latency_us_uncorrected);
    // About 400 of the 2,000 messages were due during the stall: more than 1% waited 100 ms.
    assert!(corrected.p99 >= 100_000.0, "corrected p99 {} us", corrected.p99);
    // Only the dozen in the kernel's buffer waited once written: well under 1%.
    assert!(
        corrected.p99 > 5.0 * uncorrected.p99,
        "corrected p99 {} us, uncorrected p99 {} us",
        corrected.p99,
        uncorrected.p99
    );
}

#[test]
fn a_server_that_dies_mid_run_yields_a_finished_run_with_errors_counted() {
    let server = EchoServer::start(Fault::DieAfter(Duration::from_millis(400)), 64);
    let dir = tempdir("dies");
    let json = dir.join("r.json");
    let started = Instant::now();
    let config = Config {
        duration: Duration::from_secs(1),
        timeout: Duration::from_millis(500),
        json: Some(json.clone()),
        ..quick(&server.addr)
    };
    let r = run(&config);
    // Warmup, window and the drain's timeout, with slack for a loaded machine.
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert!(!r.run.short, "the run kept to its window: {:?}", r.run);
    assert!(r.errors.io > 0, "broken connections were not counted: {:?}", r.errors);
    assert!(r.errors.connect > 0, "refused reconnections were not counted: {:?}", r.errors);
    assert!(r.messages.received > 0);
    let written = Report::from_json(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(written.errors, r.errors);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_server_that_closes_every_connection_at_once_is_not_hammered() {
    let server = EchoServer::start(Fault::CloseAtOnce, 64);
    let r = run(&Config { duration: Duration::from_secs(1), ..quick(&server.addr) });
    assert!(r.errors.io > 0, "{:?}", r.errors);
    // Four connections over 1.1 s, each waiting 10, 20, 40... ms before trying again: about
    // 30 connections in all. Backing off afresh after every handshake made it 400.
    assert!(server.accepted() < 80, "{} connections in 1.1 s", server.accepted());
}

#[test]
fn initial_connections_that_fail_are_counted_even_before_the_window() {
    // Room for the probe only: the load connections' handshakes never complete, and their
    // first attempts time out during the warmup.
    let listener =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    listener.bind(&"127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap().into()).unwrap();
    listener.listen(0).unwrap();
    let addr = listener.local_addr().unwrap().as_socket().unwrap().to_string();
    let r = run(&Config {
        connections: 2,
        warmup: Duration::from_secs(1),
        duration: Duration::from_millis(200),
        timeout: Duration::from_millis(300),
        ..quick(&addr)
    });
    assert_eq!(r.connections.up_at_start, 0);
    assert!(r.errors.connect >= 2, "the failed first attempts were not counted: {:?}", r.errors);
    drop(listener);
}

#[test]
fn nothing_listening_is_one_clear_error() {
    // Bind a port, then free it: nothing listens there now.
    let addr =
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let started = Instant::now();
    let err = loadgen::run(&quick(&addr), &Cancel::new()).expect_err("a run with no server");
    let text = format!("{err:#}");
    assert!(text.contains("cannot connect") && text.contains("refused"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn a_unix_listener_with_a_full_backlog_is_a_clear_error_not_a_hang() {
    // A backlog of 0 holds one connection; once it is taken, a blocking Unix connect would
    // wait for an accept that never comes.
    let path = std::env::temp_dir().join(format!("loadgen-full-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener =
        socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None).unwrap();
    listener.bind(&socket2::SockAddr::unix(&path).unwrap()).unwrap();
    listener.listen(0).unwrap();
    let filler = std::os::unix::net::UnixStream::connect(&path).unwrap();
    let started = Instant::now();
    let config = Config {
        addr: format!("unix:{}", path.display()),
        timeout: Duration::from_millis(500),
        ..quick("")
    };
    let err = loadgen::run(&config, &Cancel::new()).expect_err("nothing can connect");
    let text = format!("{err:#}");
    assert!(text.contains("cannot connect") && text.contains("timed out"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    drop((filler, listener));
    let _ = std::fs::remove_file(&path);
}

#[test]
fn idle_ballast_that_cannot_connect_neither_hangs_nor_ignores_cancel() {
    // A TCP listener that never accepts, with room for one connection (the probe's): every
    // idle connect then waits for a SYN-ACK that does not come.
    let listener =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    listener.bind(&"127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap().into()).unwrap();
    listener.listen(0).unwrap();
    let addr = listener.local_addr().unwrap().as_socket().unwrap().to_string();
    let cancel = Cancel::new();
    let canceller = {
        let cancel = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            cancel.cancel();
        })
    };
    let started = Instant::now();
    // One at a time, ten idle connects with a 10 s timeout would take 100 s.
    let config = Config {
        idle: 10,
        timeout: Duration::from_secs(10),
        duration: Duration::from_secs(30),
        ..quick(&addr)
    };
    let r = loadgen::run(&config, &cancel).expect("the probe connects; the rest is counted");
    canceller.join().unwrap();
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    assert!(r.run.interrupted && r.is_consistent(), "{:?}", r.run);
    assert_eq!(r.connections.idle_requested, 10);
    assert!(r.connections.idle_opened < 10, "{:?}", r.connections);
    // Described, as an error before the window (the idle ballast is opened before the run).
    let described = r.errors.first_warmup_error.as_deref().unwrap_or_default();
    assert!(described.contains("idle connections"), "{:?}", r.errors);
    drop(listener);
}

#[test]
fn cancelling_ends_the_run_early_with_what_was_measured() {
    let server = EchoServer::start(Fault::None, 64);
    let cancel = Cancel::new();
    let canceller = {
        let cancel = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            cancel.cancel();
        })
    };
    let started = Instant::now();
    let config = Config { duration: Duration::from_secs(30), ..quick(&server.addr) };
    let r = loadgen::run(&config, &cancel).unwrap();
    canceller.join().unwrap();
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert!(r.run.interrupted && r.run.short, "{:?}", r.run);
    assert!(r.is_consistent());
    assert!(r.messages.received > 0);
    assert!(r.run.measured_secs > 0.2 && r.run.measured_secs < 5.0, "{:?}", r.run);
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("loadgen-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
