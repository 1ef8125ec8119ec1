//! `--shard I/N`: generators given the whole load's flags each run their share, their
//! `--json -` reports merge to the whole, and `loadgen merge` refuses what is not one run.

mod util;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

use loadgen::Report;
use loadgen::merge::Merged;
use util::{EchoServer, Fault};

const LOADGEN: &str = env!("CARGO_BIN_EXE_loadgen");

/// Runs the shards `1/n..=n/n` of `args` at once, all given one start time far enough ahead
/// for every process to start and connect on a loaded machine; returns each one's output.
fn shards(addr: &str, n: usize, args: &[&str]) -> Vec<Output> {
    let start = SystemTime::now() + Duration::from_secs(2);
    let start = humantime::format_rfc3339_nanos(start).to_string();
    let children: Vec<_> = (1..=n)
        .map(|i| {
            Command::new(LOADGEN)
                .args(["--addr", addr, "--start-at", &start, "--json", "-"])
                .args(["--shard", &format!("{i}/{n}")])
                .args(["--warmup", "200ms", "--duration", "400ms", "--timeout", "1s"])
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start loadgen")
        })
        .collect();
    children.into_iter().map(|c| c.wait_with_output().unwrap()).collect()
}

/// The report a shard wrote on stdout: nothing else may be there.
fn report(out: &Output) -> Report {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("latency (us)"), "the summary goes to stderr: {stderr}");
    Report::from_json(std::str::from_utf8(&out.stdout).unwrap()).expect("stdout is the report")
}

fn write(dir: &Path, name: &str, out: &Output) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, &out.stdout).unwrap();
    path
}

fn merge(files: &[&Path]) -> Output {
    Command::new(LOADGEN).arg("merge").args(files).output().unwrap()
}

/// A refusal: non-zero status and one line on stderr containing `what`.
fn refused(out: &Output, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "accepted; stdout: {}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(stderr.trim().lines().count(), 1, "not one line: {stderr}");
    assert!(stderr.contains(what), "{stderr:?} does not say {what:?}");
}

#[test]
fn two_shards_run_their_shares_and_merge_to_the_sum_and_merge_refuses_other_runs() {
    let server = EchoServer::start(Fault::None, 64);
    let dir = std::env::temp_dir().join(format!("loadgen-shards-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let load = ["--connections", "5", "--idle", "3", "--rate", "2000"];
    let outs = shards(&server.addr, 2, &load);
    let reports: Vec<Report> = outs.iter().map(report).collect();
    let shares: Vec<_> = reports
        .iter()
        .map(|r| {
            let s = r.shard.as_ref().expect("a shard's report names its shard");
            (s.shard.index, s.first_connection, s.connections, s.idle)
        })
        .collect();
    // The remainder goes to the first shard: 3 + 2 connections, 2 + 1 idle.
    assert_eq!(shares, [(1, 0, 3, 2), (2, 3, 2, 1)]);
    assert_eq!(
        reports[0].shard.as_ref().unwrap().run_id,
        reports[1].shard.as_ref().unwrap().run_id
    );
    for r in &reports {
        // The configuration is the whole load's; the counts are the shard's.
        assert_eq!((r.config.connections, r.config.idle, r.config.rate), (5, 3, Some(2000.0)));
        let own = r.shard.as_ref().unwrap();
        assert_eq!(r.connections.requested, own.connections);
        assert_eq!(r.connections.idle_opened, own.idle);
        // Its share of 2,000/s over 400 ms: 800 x 3/5 and 800 x 2/5 sends.
        let window = r.messages.scheduled - r.messages.carried_over;
        assert_eq!(window, 800 * own.connections as u64 / 5, "{:?}", r.messages);
        assert_eq!(r.messages.received, r.messages.scheduled, "{:?}", r.errors);
    }
    let (a, b) = (write(&dir, "a.json", &outs[0]), write(&dir, "b.json", &outs[1]));
    let merged_json = dir.join("merged.json");
    let out = Command::new(LOADGEN)
        .args(["merge"])
        .args([&b, &a])
        .arg("--json")
        .arg(&merged_json)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("all 2 shards of run"));
    let merged: Merged =
        serde_json::from_str(&std::fs::read_to_string(&merged_json).unwrap()).unwrap();
    let sum = |f: fn(&Report) -> u64| reports.iter().map(f).sum::<u64>();
    assert_eq!(merged.shards, Some(2));
    assert_eq!(merged.messages.received, sum(|r| r.messages.received));
    assert_eq!(merged.messages.scheduled, sum(|r| r.messages.scheduled));
    assert_eq!(merged.latency_us.count, sum(|r| r.latency_us.count));
    // The library's merge, as the harness uses it, gives the same sums in a whole report.
    let whole = loadgen::combine::merge_reports(&reports).unwrap();
    assert_eq!(whole.messages, merged.messages);
    assert_eq!(whole.connections.requested, 5);
    assert_eq!(whole.connections.idle_opened, 3);
    // The same histogram, so the same percentiles; the standard deviation is a float sum
    // whose order may differ between the two, so it agrees to rounding only.
    let (w, m) = (&whole.latency_us, &merged.latency_us);
    assert_eq!((w.count, w.min, w.p50, w.p99, w.max), (m.count, m.min, m.p50, m.p99, m.max));
    assert!((w.mean - m.mean).abs() <= 1e-9 * m.mean.abs(), "{w:?} against {m:?}");
    assert!((w.stdev - m.stdev).abs() <= 1e-9 * m.stdev.abs(), "{w:?} against {m:?}");
    assert!(whole.is_consistent());

    // A missing shard, a doubled one, and a shard of another run are each refused.
    refused(&merge(&[&a]), "missing shard 2/2");
    refused(&merge(&[&a, &a]), "given twice");
    let other = shards(&server.addr, 2, &load);
    let foreign = write(&dir, "c.json", &other[1]);
    refused(&merge(&[&a, &foreign]), "belongs to run");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_echo_crossed_between_two_shards_connections_fails_verification() {
    // The server cross-wires the first two connections that send, one from each shard. Had
    // both shards numbered their connection 0, each would get back exactly the bytes it sent.
    let server = EchoServer::start(Fault::Cross, 64);
    let outs = shards(&server.addr, 2, &["--connections", "2", "--threads", "1"]);
    for r in outs.iter().map(report) {
        assert!(r.errors.mismatch > 0, "a crossed echo passed: {:?}", r.errors);
    }
}

#[test]
fn impossible_shards_are_refused_with_one_line() {
    let start = humantime::format_rfc3339(SystemTime::now() + Duration::from_secs(30)).to_string();
    for (shard, extra, what) in [
        ("0/2", None, "between 1 and 2"),
        ("3/2", None, "between 1 and 2"),
        ("1/0", None, "number of shards"),
        ("x", None, "not a shard"),
        ("2/3", Some("2"), "cannot give each of 3 shards"),
    ] {
        let mut cmd = Command::new(LOADGEN);
        cmd.args(["--addr", "127.0.0.1:9", "--start-at", &start, "--shard", shard]);
        if let Some(c) = extra {
            cmd.args(["--connections", c]);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{shard}");
        refused(&out, what);
    }
    let out = Command::new(LOADGEN).args(["--shard", "1/2"]).output().unwrap();
    refused(&out, "--shard needs --start-at");
}
