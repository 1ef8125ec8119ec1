//! The modes behind the harness's lessons, against real sockets: `--split-writes` really
//! sends every message as two segments, and `--burst` sees a full listen backlog the way
//! clients do (SYNs dropped, retransmitted a second later) and counts what it could not open.

mod util;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use loadgen::report::burst::Outcome;
use loadgen::{Config, Mode, Report};
use socket2::{Domain, Socket, Type};
use util::{quick, run};

const LOADGEN: &str = env!("CARGO_BIN_EXE_loadgen");

/// What a raw echo connection saw: payload bytes, and data segments by the kernel's count.
#[derive(Debug)]
struct Seen {
    bytes: u64,
    data_segments: u32,
}

/// A one-connection-at-a-time echo server that writes back whatever each `read` returns and,
/// once the client closes, reports what the busiest connection saw (loadgen's probe sends
/// nothing, so the load connection is the one with bytes).
fn raw_echo() -> (SocketAddr, thread::JoinHandle<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let mut busiest = Seen { bytes: 0, data_segments: 0 };
        // The probe connection, then the load connection.
        for _ in 0..2 {
            let (mut stream, _) = listener.accept().unwrap();
            stream.set_nodelay(true).unwrap();
            let mut buf = [0u8; 64 * 1024];
            let mut bytes = 0;
            while let Ok(n @ 1..) = stream.read(&mut buf) {
                bytes += n as u64;
                if stream.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let data_segments = tcp_info(&stream).tcpi_data_segs_in;
            if bytes > busiest.bytes {
                busiest = Seen { bytes, data_segments };
            }
        }
        busiest
    });
    (addr, server)
}

fn tcp_info(socket: &impl AsRawFd) -> libc::tcp_info {
    // SAFETY: an all-zero tcp_info is a valid value of this plain C struct.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: the pointer and length describe `info`, and the descriptor is an open socket.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    assert_eq!(rc, 0, "TCP_INFO: {}", std::io::Error::last_os_error());
    info
}

#[test]
fn split_writes_send_every_message_as_two_segments() {
    for split_writes in [false, true] {
        let (addr, server) = raw_echo();
        let config = Config { connections: 1, split_writes, ..quick(&addr.to_string()) };
        let r = run(&config);
        assert!(r.messages.received > 100, "{:?}", r.messages);
        assert_eq!(r.errors.mismatch + r.errors.io + r.errors.timeout, 0, "{:?}", r.errors);
        let seen = server.join().unwrap();
        // Warm-up included: the server counts every message it was sent.
        let messages = seen.bytes / config.size as u64;
        let per_message = f64::from(seen.data_segments) / messages as f64;
        eprintln!("split {split_writes}: {messages} messages, {per_message:.2} segments each");
        // A closed loop of one connection with TCP_NODELAY: each write is one segment.
        let expected = if split_writes { 2.0 } else { 1.0 };
        assert!((per_message - expected).abs() < 0.1, "{per_message:.2} segments per message");
    }
}

/// Runs `loadgen` with `args` plus `--json`, and reads its report back.
fn loadgen_report(name: &str, args: &[&str]) -> Report {
    let json =
        std::env::temp_dir().join(format!("loadgen-lessons-{name}-{}.json", std::process::id()));
    let out = Command::new(LOADGEN)
        .args(args)
        .args(["--json", json.to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .expect("run loadgen");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {stderr}");
    assert!(stdout.contains("burst") && !stderr.contains("panicked"), "{stdout}\n{stderr}");
    let report = Report::from_json(&std::fs::read_to_string(&json).unwrap()).unwrap();
    std::fs::remove_file(&json).unwrap();
    assert!(report.is_consistent(), "{:?} {:?}", report.messages, report.errors);
    report
}

/// The length of a listening socket's accept queue (TCP_INFO reports it as `unacked`).
fn accept_queue(listener: &TcpListener) -> u32 {
    tcp_info(listener).tcpi_unacked
}

#[test]
fn a_burst_beyond_the_backlog_waits_for_syn_retransmits() {
    const BACKLOG: i32 = 4;
    const BURST: usize = 20;
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into()).unwrap();
    socket.listen(BACKLOG).unwrap();
    let listener = TcpListener::from(socket);
    let addr = listener.local_addr().unwrap().to_string();
    // The server "stopped": it accepts nothing until its queue is full (backlog + 1 completed
    // handshakes; the SYNs after those are dropped), and then 300 ms longer, as a server
    // resumed after a pause. Then it echoes every connection, one thread each.
    let server = thread::spawn(move || {
        let began = Instant::now();
        // Polling the kernel's own count: nothing else can say when the queue fills.
        while accept_queue(&listener) <= BACKLOG as u32 {
            assert!(began.elapsed() < Duration::from_secs(10), "the burst never filled the queue");
            thread::sleep(Duration::from_millis(1));
        }
        // The pause is the experiment, not a wait for something to happen.
        thread::sleep(Duration::from_millis(300));
        let mut served = 0;
        while served < BURST {
            let (mut stream, _) = listener.accept().unwrap();
            served += 1;
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = stream.read(&mut buf) {
                    if stream.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    let r = loadgen_report("backlog", &["--addr", &addr, "--burst", "20", "--timeout", "5s"]);
    server.join().unwrap();
    assert_eq!(r.mode, Mode::Burst);
    let burst = r.burst.expect("a burst section");
    assert_eq!(burst.each.len(), BURST);
    assert_eq!(burst.outcomes.total(), BURST as u64, "{:?}", burst.outcomes);
    assert_eq!(burst.outcomes.echoed, BURST as u64, "{:?}", burst.outcomes);
    let connect: Vec<f64> = burst.each.iter().filter_map(|c| c.connect_us).collect();
    let at_once = connect.iter().filter(|&&us| us < 500_000.0).count();
    let retried = connect.iter().filter(|&&us| us >= 800_000.0).count();
    eprintln!(
        "connect latencies (ms): {:?}",
        connect.iter().map(|us| (us / 1e3).round()).collect::<Vec<_>>()
    );
    // The queue took backlog + 1 at once; the rest waited for their SYN's retransmission.
    assert!(at_once >= 1 && retried >= 1, "{at_once} at once, {retried} after a retransmit");
    assert_eq!(at_once + retried, BURST, "every connect either at once or retransmitted");
    assert_eq!(r.messages.sent, BURST as u64);
    assert!(burst.each.iter().all(|c| c.outcome == Outcome::Echoed && c.echo_us >= c.connect_us));
}

#[test]
fn a_burst_at_a_closed_port_counts_refusals() {
    let addr = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let r = loadgen_report("refused", &["--addr", &addr, "--burst", "30", "--timeout", "2s"]);
    let burst = r.burst.expect("a burst section");
    assert_eq!(burst.outcomes.refused, 30, "{:?}", burst.outcomes);
    assert_eq!(r.errors.connect, 30);
    assert_eq!((r.messages.sent, r.messages.received), (0, 0));
    assert_eq!(burst.connect_us.count, 0);
    assert!(burst.each.iter().all(|c| c.connect_us.is_none() && c.outcome == Outcome::Refused));
}

#[test]
fn impossible_lesson_flags_are_one_line_errors() {
    let cases: &[&[&str]] = &[
        &["--burst", "10", "--rate", "100"],
        &["--burst", "10", "--churn"],
        &["--burst", "10", "--pipeline", "2"],
        &["--burst", "10", "--idle", "5"],
        &["--burst", "0"],
        &["--split-writes", "--size", "1"],
    ];
    for args in cases {
        let out = Command::new(LOADGEN).args(*args).stdin(Stdio::null()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?} printed:\n{stderr}");
        assert!(stderr.starts_with("loadgen: error: --"), "{args:?}: {stderr}");
    }
}
