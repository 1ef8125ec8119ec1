//! The `loadgen` binary: bad input, no server, the files it writes, `merge`, and Ctrl-C.

mod util;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use loadgen::Report;
use util::{EchoServer, Fault};

const LOADGEN: &str = env!("CARGO_BIN_EXE_loadgen");

fn loadgen(args: &[&str]) -> Output {
    Command::new(LOADGEN).args(args).stdin(Stdio::null()).output().expect("run loadgen")
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("loadgen-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A short run's flags against `addr`.
fn quick<'a>(addr: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--addr",
        addr,
        "--connections",
        "4",
        "--duration",
        "300ms",
        "--warmup",
        "100ms",
        "--timeout",
        "1s",
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn nonsense_is_refused_with_one_line_and_no_panic() {
    let cases: &[&[&str]] = &[
        &["--connections", "0"],
        &["--size", "0"],
        &["--rate", "100", "--churn"],
        &["--pipeline", "4", "--rate", "1000"],
        &["--addr", "nonsense"],
        &["--duration", "soon"],
        &["--connections", "-3"],
        &["--no-such-flag"],
        &["merge"],
        // Values that once overflowed the clock arithmetic or asked for unbounded memory.
        &["--duration", "1e19"],
        &["--warmup", "600years"],
        &["--timeout", "1e19"],
        &["--hlog-interval", "1ms"],
        &["--rate", "1e300"],
        &["--rate", "1e-300"],
        &["--idle", "18446744073709551615"],
        &["--pipeline", "100000000000"],
        &["--churn", "--source-addrs", "100000000000"],
        // A send slack outside the open loop, beyond its bound, or not a time.
        &["--send-slack", "100us"],
        &["--rate", "1000", "--send-slack", "11ms"],
        &["--rate", "1000", "--send-slack", "soon"],
        // Start times: not a time, long past, or further ahead than any plan.
        &["--start-at", "tomorrow"],
        &["--start-at", "@1000000000"],
        &["--start-at", "2099-01-01T00:00:00Z"],
    ];
    for args in cases {
        let out = loadgen(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?} printed:\n{stderr}");
        assert!(stderr.starts_with("loadgen: "), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn nothing_listening_fails_at_once_with_one_line() {
    let addr =
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let started = Instant::now();
    let out = loadgen(&["--addr", &addr, "--duration", "30s"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("cannot connect") && stderr.contains(&addr), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn json_and_hlog_parse_back_and_agree() {
    let server = EchoServer::start(Fault::None, 64);
    let dir = tempdir("files");
    let (json, hlog) = (dir.join("run.json"), dir.join("run.hlog"));
    let out = loadgen(&quick(
        &server.addr,
        &[
            "--rate",
            "2000",
            "--hlog-interval",
            "100ms",
            "--json",
            path(&json),
            "--hlog",
            path(&hlog),
        ],
    ));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("throughput") && stdout.contains("from schedule"), "{stdout}");

    // The documented keys are there, by name.
    let text = std::fs::read_to_string(&json).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    for key in [
        "/schema_version",
        "/throughput/msgs_per_sec",
        "/throughput/mib_per_sec",
        "/messages/sent",
        "/messages/received",
        "/latency_us/p50",
        "/latency_us/p9999",
        "/latency_us/mean",
        "/latency_us_uncorrected/p999",
        "/errors/connect",
        "/errors/io",
        "/errors/timeout",
        "/errors/mismatch",
        "/generator/cpu_seconds",
        "/generator/saturated",
        "/config/connections",
        "/environment/cpu_model",
        "/environment/kernel",
        "/histograms/latency",
    ] {
        assert!(value.pointer(key).is_some(), "{key} missing from the JSON");
    }
    let report = Report::from_json(&text).unwrap();
    assert!(report.is_consistent());
    assert_eq!(report.config.rate, Some(2000.0));

    // The log's intervals add up to the report's histograms, tag by tag.
    let totals = loadgen::hlog::read_totals(&hlog).unwrap();
    assert_eq!(totals[&None], report.histograms.latency().unwrap());
    assert_eq!(
        totals[&Some("uncorrected".to_owned())],
        report.histograms.latency_uncorrected().unwrap()
    );
    let log = std::fs::read_to_string(&hlog).unwrap();
    assert!(log.contains("#[Histogram log format version 1.3]") && log.contains("#[StartTime: "));
    // 300 ms in 100 ms intervals, each with its tagged twin.
    assert!(log.lines().filter(|l| l.starts_with("Tag=uncorrected,")).count() >= 3, "{log}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn merging_two_logs_gives_the_histogram_of_both() {
    let server = EchoServer::start(Fault::None, 64);
    let dir = tempdir("merge");
    let mut expected = loadgen::stats::new_hist();
    let mut inputs = Vec::new();
    for name in ["a", "b"] {
        let (json, hlog) = (dir.join(format!("{name}.json")), dir.join(format!("{name}.hlog")));
        let out = loadgen(&quick(&server.addr, &["--json", path(&json), "--hlog", path(&hlog)]));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let report = Report::from_json(&std::fs::read_to_string(&json).unwrap()).unwrap();
        expected.add(report.histograms.latency().unwrap()).unwrap();
        inputs.push((json, hlog));
    }
    let merged_json = dir.join("merged.json");
    let out =
        loadgen(&["merge", path(&inputs[0].1), path(&inputs[1].1), "--json", path(&merged_json)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("merged 2 inputs"));
    let merged: loadgen::merge::Merged =
        serde_json::from_str(&std::fs::read_to_string(&merged_json).unwrap()).unwrap();
    assert_eq!(loadgen::stats::decode(&merged.latency_histogram).unwrap(), expected);
    // Compared after the same trip through JSON text: serde_json's default float parser may
    // round the last bit of a mean differently from the value that was written.
    assert_eq!(merged.latency_us, via_json(&loadgen::stats::Latency::of(&expected)));

    // The JSON reports merge to the same histogram, and their counts add up.
    let from_json = loadgen::merge::merge(&[inputs[0].0.clone(), inputs[1].0.clone()]).unwrap();
    assert_eq!(via_json(&from_json.latency_us), merged.latency_us);
    assert_eq!(from_json.json_inputs, 2);
    assert_eq!(from_json.messages.received, expected.len());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ctrl_c_stops_the_run_and_writes_what_was_measured() {
    let server = EchoServer::start(Fault::None, 64);
    let dir = tempdir("sigint");
    let json = dir.join("r.json");
    let mut child: Child = Command::new(LOADGEN)
        .args([
            "--addr",
            &server.addr,
            "--duration",
            "60s",
            "--warmup",
            "0s",
            "--json",
            path(&json),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the load is flowing (the probe and the ten connections are in), then a bit.
    let started = Instant::now();
    while server.accepted() < 11 {
        assert!(started.elapsed() < Duration::from_secs(10), "loadgen never connected");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "loadgen ignored SIGINT");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stdout = String::new();
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(stdout.contains("(interrupted)"), "{stdout}");
    let report = Report::from_json(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(report.run.interrupted && report.messages.received > 0 && report.is_consistent());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `value` written as JSON and read back, as the merged file was.
fn via_json<T: serde::Serialize + serde::de::DeserializeOwned>(value: &T) -> T {
    serde_json::from_str(&serde_json::to_string(value).unwrap()).unwrap()
}

#[test]
fn marks_announce_the_window_as_it_opens_and_closes() {
    use std::io::{BufRead, BufReader};
    let server = EchoServer::start(Fault::None, 64);
    let dir = tempdir("marks");
    let json = dir.join("marks.json");
    let args = quick(&server.addr, &["--marks", "--json", path(&json)]);
    let mut child =
        Command::new(LOADGEN).args(&args).stdout(Stdio::piped()).spawn().expect("run loadgen");
    // Each mark is timed as it arrives, the way the harness reads them.
    let mut marks = Vec::new();
    let mut other = 0;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        match loadgen::Mark::parse(&line) {
            Some(mark) => marks.push((mark, Instant::now())),
            None => other += 1,
        }
    }
    assert!(child.wait().unwrap().success());
    let kinds: Vec<loadgen::Mark> = marks.iter().map(|(m, _)| *m).collect();
    assert_eq!(kinds, [loadgen::Mark::Start, loadgen::Mark::End], "in order, once each");
    assert!(other > 0, "the summary still follows the marks");
    // The marks are as far apart as the window loadgen reports (300 ms), within a timer
    // wake-up and a pipe's read each (40 ms allows for a busy machine); a mark printed with
    // the summary, or at the end of the drain, would miss by the whole window.
    let apart = marks[1].1.duration_since(marks[0].1).as_secs_f64();
    let report = Report::from_json(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(report.config.marks);
    let measured = report.run.measured_secs;
    assert!((apart - measured).abs() < 0.04, "marks {apart:.3} s apart, window {measured:.3} s");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn without_marks_nothing_but_the_summary_is_printed() {
    let server = EchoServer::start(Fault::None, 64);
    let out = loadgen(&quick(&server.addr, &[]));
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.lines().all(|l| loadgen::Mark::parse(l).is_none()), "{stdout}");
    assert!(!stdout.is_empty());
}

#[test]
fn idle_echo_connections_each_echo_once_before_going_quiet() {
    let server = EchoServer::start(Fault::None, 64);
    let dir = tempdir("idle-echo");
    let json = dir.join("idle.json");
    let args = quick(&server.addr, &["--idle", "30", "--idle-echo", "--json", path(&json)]);
    let out = loadgen(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("30 idle connections open (each echoed one message first)"),
        "{stdout}"
    );
    let report = Report::from_json(&std::fs::read_to_string(&json).unwrap()).unwrap();
    // The report says what the ballast did: asked for, and each one's echo came back whole.
    assert!(report.config.idle_echo);
    let c = &report.connections;
    assert_eq!((c.idle_requested, c.idle_opened, c.idle_echoed), (30, 30, 30), "{c:?}");
    assert_eq!(c.idle_closed_by_server, 0, "{c:?}");
    // The ballast's echoes are not the load's: no error, and the load's counts add up.
    assert!(report.is_consistent());
    assert_eq!(report.errors.first_warmup_error, None);
    // Without the flag the ballast never sends.
    let silent = dir.join("silent.json");
    let out = loadgen(&quick(&server.addr, &["--idle", "30", "--json", path(&silent)]));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = Report::from_json(&std::fs::read_to_string(&silent).unwrap()).unwrap();
    assert!(!report.config.idle_echo);
    assert_eq!((report.connections.idle_opened, report.connections.idle_echoed), (30, 0));
    // Asked for without a ballast, it is refused in one line.
    let out = loadgen(&quick(&server.addr, &["--idle-echo"]));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--idle-echo needs --idle"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
