//! The comparison harness against real processes: servers that fail to start, crash, ignore
//! SIGTERM or leave children behind are reported as such; `echobench compare` goes on past them,
//! writes its report, and stops cleanly on Ctrl-C. The servers here are small shell scripts
//! that keep (or break) the ready-line contract; a run against the real echo-mio happens when
//! the last test.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use harness::results::{FaultKind, Results, RunStatus};
use harness::server::Server;

mod util;
use util::{bin_dir, built, scratch};

/// Writes an executable shell script `dir/name` with `body`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A server that keeps the contract except for echoing: ready line, exit 0 on SIGTERM.
const POLITE: &str = "trap 'exit 0' TERM\necho \"listening on ${FAKE_ADDR:-127.0.0.1:9}\"\n\
                      while :; do sleep 0.05; done";

#[test]
fn a_missing_binary_and_an_early_exit_fail_to_start_with_the_reason() {
    let dir = scratch("start");
    let missing = Server::start(&dir.join("echo-nothing"), &[], &[]).unwrap_err();
    assert_eq!(missing.kind, FaultKind::StartFailed);
    assert!(missing.detail.contains("does not exist"), "{}", missing.detail);

    let bad = script(&dir, "echo-bad", "echo 'echo-bad: --addr: invalid value' >&2\nexit 2");
    let early = Server::start(&bad, &[], &[]).unwrap_err();
    assert_eq!(early.kind, FaultKind::StartFailed);
    assert!(early.detail.contains("exited with status 2"), "{}", early.detail);
    assert_eq!(early.stderr_tail, ["echo-bad: --addr: invalid value"]);

    let chatty = script(&dir, "echo-chatty", "echo hello\nsleep 5");
    let wrong = Server::start(&chatty, &[], &[]).unwrap_err();
    assert!(wrong.detail.contains("not the ready line"), "{}", wrong.detail);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_polite_server_stops_cleanly_and_a_crash_is_noticed_once() {
    let dir = scratch("stop");
    let polite = script(&dir, "echo-polite", POLITE);
    let server = Server::start(&polite, &[], &[]).unwrap();
    assert_eq!(server.addr, "127.0.0.1:9");
    let stopped = server.stop();
    assert!(stopped.faults.is_empty(), "{:?}", stopped.faults);
    assert_eq!(stopped.code, Some(0));
    assert!(stopped.seconds.unwrap() < 2.0);

    let crashy = script(&dir, "echo-crashy", "echo 'listening on 127.0.0.1:9'\nsleep 0.2\nexit 3");
    let mut server = Server::start(&crashy, &[], &[]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut fault = None;
    while fault.is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        fault = server.check_alive();
    }
    let fault = fault.expect("the crash is noticed");
    assert_eq!(fault.kind, FaultKind::Crashed);
    assert!(fault.detail.contains("status 3"), "{}", fault.detail);
    assert!(server.stop().faults.is_empty(), "the crash was already reported");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ignoring_sigterm_or_leaving_children_behind_is_an_unclean_exit() {
    let dir = scratch("unclean");
    let stubborn = script(
        &dir,
        "echo-stubborn",
        "trap '' TERM\necho 'listening on 127.0.0.1:9'\nexec sleep 30",
    );
    let stopped = Server::start(&stubborn, &[], &[]).unwrap().stop();
    assert_eq!(stopped.faults.len(), 1, "{:?}", stopped.faults);
    assert_eq!(stopped.faults[0].kind, FaultKind::UncleanExit);
    assert!(stopped.faults[0].detail.contains("killed"));

    // The background sleep outlives the shell that started it.
    let leaky = script(&dir, "echo-leaky", &format!("sleep 30 &\n{POLITE}"));
    let stopped = Server::start(&leaky, &[], &[]).unwrap().stop();
    let kinds: Vec<FaultKind> = stopped.faults.iter().map(|f| f.kind).collect();
    assert_eq!(kinds, [FaultKind::LeftProcesses], "{:?}", stopped.faults);
    let _ = std::fs::remove_dir_all(&dir);
}

fn compare(bin: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_echobench"));
    // No control: these runs are about the pipeline, one server each (external.rs runs one).
    cmd.args(["compare", "--repeats", "1", "--control", "none"])
        .args(["--scenarios", "scale", "--connections", "1"])
        .args(["--warmup", "100ms", "--duration", "300ms"])
        .arg("--bin-dir")
        .arg(bin)
        .arg("--out")
        .arg(out)
        .args(extra);
    cmd
}

fn results(out: &Path) -> Results {
    let json = std::fs::read_to_string(out.join("latest/results.json")).unwrap();
    serde_json::from_str(&json).unwrap()
}

#[test]
fn a_run_goes_on_past_broken_servers_and_reports_them() {
    let bin = bin_dir("broken");
    // One server exits before its ready line, the other right after it.
    script(&bin, "echo-missing", "echo 'no such thing' >&2\nexit 1");
    script(&bin, "echo-crashy", "echo 'listening on 127.0.0.1:9'\nexit 3");
    let out = bin.join("results");
    let output: Output = compare(&bin, &out, &["--models", "missing,crashy"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "faults make the run fail: {stderr}");
    assert!(stderr.contains("fault(s) recorded"), "{stderr}");
    let r = results(&out);
    assert_eq!(r.status, RunStatus::Complete);
    let faults = |m: usize| {
        r.models[m].scenarios[0].server.faults.iter().map(|f| f.kind).collect::<Vec<_>>()
    };
    assert_eq!(faults(0), [FaultKind::StartFailed]);
    assert!(faults(1).contains(&FaultKind::Crashed), "{:?}", faults(1));
    let md = ["latest/report.md", "latest/details.md"]
        .map(|f| std::fs::read_to_string(out.join(f)).unwrap_or_default())
        .concat();
    assert!(md.contains("| missing | scale | failed to start |"), "{md}");
    assert!(md.contains("| crashy | scale | crashed |"), "{md}");
    let _ = std::fs::remove_dir_all(&bin);
}

#[test]
fn a_model_with_no_binary_is_refused_before_anything_is_written() {
    let bin = bin_dir("typo");
    script(&bin, "echo-crashy", "exit 3");
    let out = bin.join("results");
    let output: Output = compare(&bin, &out, &["--models", "crashy,nosuch"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("no echo-nosuch in"), "{stderr}");
    assert!(stderr.contains("models there: crashy"), "{stderr}");
    assert!(!out.exists(), "nothing may be written, latest/ least of all");
    let _ = std::fs::remove_dir_all(&bin);
}

#[test]
fn ctrl_c_stops_the_run_and_writes_what_was_measured() {
    let bin = bin_dir("ctrlc");
    // A listener that never reads: loadgen's connections open, its messages go unanswered.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    script(&bin, "echo-silent", POLITE);
    let out = bin.join("results");
    let mut child = compare(&bin, &out, &["--models", "silent", "--duration", "60s"])
        .env("FAKE_ADDR", silent.local_addr().unwrap().to_string())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first point to start, then press Ctrl-C.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 && !line.contains("[  1/") {
        line.clear();
    }
    std::thread::sleep(Duration::from_millis(500));
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let started = Instant::now();
    let status = child.wait().unwrap();
    assert!(started.elapsed() < Duration::from_secs(20), "the run stopped long after Ctrl-C");
    assert_eq!(status.code(), Some(130));
    let r = results(&out);
    assert_eq!(r.status, RunStatus::Interrupted);
    let server = &r.models[0].scenarios[0].server;
    assert!(server.faults.is_empty(), "the server was stopped cleanly: {:?}", server.faults);
    assert_eq!(server.exit_code, Some(0));
    assert!(
        std::fs::read_to_string(out.join("latest/report.md")).unwrap().contains("**interrupted**")
    );
    let _ = std::fs::remove_dir_all(&bin);
}

#[test]
fn a_quick_compare_of_echo_mio_end_to_end() {
    let bin = bin_dir("mio");
    std::os::unix::fs::symlink(built("echobench-mio", "echo-mio"), bin.join("echo-mio")).unwrap();
    let out = bin.join("results");
    let output =
        compare(&bin, &out, &["--models", "mio", "--scenarios", "scale,idle", "--idle", "50"])
            .output()
            .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let r = results(&out);
    let scale = &r.models[0].scenarios[0];
    let summary = scale.points[0].summary.as_ref().expect("scale has figures");
    assert!(summary.median.msgs_per_sec > 0.0);
    assert_eq!(summary.errors, 0.0);
    assert!(summary.median.server_cpu_seconds > 0.0, "the server's CPU was sampled");
    assert_eq!(scale.server.exit_code, Some(0));
    let idle = &r.models[0].scenarios[1].points[0].summary.as_ref().unwrap().median;
    assert_eq!(idle.server_peak_processes, 1.0);
    // The idle scenario's second point: every idle connection echoed once, then went quiet;
    // the kernel's memory was read beside PSS, the server tree's own too.
    let echoed = &r.models[0].scenarios[1].points[1];
    assert!(echoed.point.idle_echo);
    let repeat = &echoed.repeats[0];
    let connections = &repeat.loadgen.as_ref().unwrap().connections;
    assert_eq!(connections.idle_echoed, echoed.point.idle as usize, "{connections:?}");
    let usage = repeat.server.unwrap();
    assert!(usage.kernel.is_some() && usage.server_kernel.is_some(), "{usage:?}");
    for s in &r.models[0].scenarios {
        let repeat = &s.points[0].repeats[0];
        let d = repeat.disturbance.expect("every repeat records what disturbed it");
        for steal in [d.server_steal, d.generator_steal] {
            assert!(steal.is_some_and(|s| (0.0..=1.0).contains(&s)), "{d:?}");
        }
        assert!(d.generator_run_delay.is_some_and(|r| (0.0..=1.0).contains(&r)), "{d:?}");
        assert!(d.harness_cpu_seconds >= 0.0 && d.seconds >= 0.3, "{d:?}");
        // loadgen marked its window and the server's CPU was read at the marks: the window
        // is loadgen's 300 ms, not the span between two periodic samples.
        let window = repeat.server.unwrap().window_seconds;
        let measured = repeat.loadgen.as_ref().unwrap().run.measured_secs;
        assert!((window - measured).abs() < 0.05, "window {window} s, loadgen's {measured} s");
    }
    let run_dir = std::fs::read_dir(&out).unwrap().flatten().find(|e| e.file_name() != "latest");
    let hlogs = run_dir.unwrap().path().join("hlog");
    assert_eq!(std::fs::read_dir(hlogs).unwrap().count(), 3, "one histogram log per repeat");
    let _ = std::fs::remove_dir_all(&bin);
}
