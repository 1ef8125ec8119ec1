//! Several generators against one server, as from several load machines: one `--start-at`
//! lines up their windows, and `loadgen merge` adds their results up.

mod util;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use loadgen::Report;
use loadgen::merge::Merged;
use util::{EchoServer, Fault};

const LOADGEN: &str = env!("CARGO_BIN_EXE_loadgen");

/// How far from the start time a window may be reported to begin. The start is exact by
/// construction (the threads' clock is set to the instant asked for), so this only has to
/// hold the few microseconds between two clock reads, and a preemption between them.
const MARGIN: Duration = Duration::from_millis(50);

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn secs_since_epoch(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

#[test]
fn two_generators_given_one_start_time_begin_together_and_merge_to_their_sum() {
    let server = EchoServer::start(Fault::None, 64);
    let dir = std::env::temp_dir().join(format!("loadgen-several-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Far enough ahead for both processes to start and connect on a loaded machine.
    let start = SystemTime::now() + Duration::from_secs(2);
    let since_epoch = start.duration_since(UNIX_EPOCH).unwrap();
    // The same instant in both accepted forms, one per generator.
    let forms = [
        humantime::format_rfc3339_nanos(start).to_string(),
        format!("@{}.{:09}", since_epoch.as_secs(), since_epoch.subsec_nanos()),
    ];
    let (warmup, duration) = (Duration::from_millis(200), Duration::from_millis(400));
    let files: Vec<(PathBuf, PathBuf)> = ["a", "b"]
        .iter()
        .map(|name| (dir.join(format!("{name}.json")), dir.join(format!("{name}.hlog"))))
        .collect();
    let children: Vec<_> = forms
        .iter()
        .zip(&files)
        .map(|(start_at, (json, hlog))| {
            let args = [
                "--addr",
                server.addr.as_str(),
                "--connections",
                "4",
                "--rate",
                "2000",
                "--warmup",
                "200ms",
                "--duration",
                "400ms",
                "--timeout",
                "1s",
                "--start-at",
                start_at,
                "--json",
                path(json),
                "--hlog",
                path(hlog),
            ];
            Command::new(LOADGEN)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start loadgen")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    // They really waited: neither could have finished its window before start + warm-up +
    // duration.
    assert!(SystemTime::now() >= start + warmup + duration, "a generator did not wait");

    let reports: Vec<Report> = files
        .iter()
        .map(|(json, _)| Report::from_json(&std::fs::read_to_string(json).unwrap()).unwrap())
        .collect();
    for (r, form) in reports.iter().zip(&forms) {
        assert_eq!(r.config.start_at, Some(start), "{form} was read as another instant");
        let began = r.run.began_at.as_deref().expect("the report says when the run began");
        let began = humantime::parse_rfc3339(began).unwrap();
        let off = began.duration_since(start).unwrap_or_else(|e| e.duration());
        assert!(off < MARGIN, "began at {began:?}, {off:?} from the start asked for");
        // Each generator scheduled exactly its share of the window: 2,000/s for 400 ms.
        assert_eq!(r.messages.scheduled - r.messages.carried_over, 800, "{:?}", r.messages);
        assert_eq!(r.messages.received, r.messages.scheduled, "{:?}", r.errors);
        // A light load, and two seconds of waiting: the process must have slept through
        // both (a coordinator polling its channel without a timeout once did not).
        let cpu = r.generator.process_cpu_seconds;
        assert!(cpu < 0.5, "{form}: {cpu} s of CPU for a light run and a wait");
    }
    // The interval logs' start is the window's: the start time plus the warm-up.
    for (_, hlog) in &files {
        let log = std::fs::read_to_string(hlog).unwrap();
        let line = log.lines().find(|l| l.starts_with("#[StartTime: ")).unwrap();
        let logged: f64 = line["#[StartTime: ".len()..].split(' ').next().unwrap().parse().unwrap();
        let window = secs_since_epoch(start + warmup);
        assert!((logged - window).abs() < MARGIN.as_secs_f64(), "{line} against {window}");
    }

    // Merged from the JSON reports: every count is the sum of the two.
    let merged_json = dir.join("merged.json");
    let (a, b) = (path(&files[0].0), path(&files[1].0));
    let out = Command::new(LOADGEN).args(["merge", a, b, "--json", path(&merged_json)]).output();
    let out = out.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let merged: Merged =
        serde_json::from_str(&std::fs::read_to_string(&merged_json).unwrap()).unwrap();
    let sum = |f: fn(&Report) -> u64| reports.iter().map(f).sum::<u64>();
    assert_eq!(merged.json_inputs, 2);
    assert_eq!(merged.messages.sent, sum(|r| r.messages.sent));
    assert_eq!(merged.messages.received, sum(|r| r.messages.received));
    assert_eq!(merged.messages.scheduled, sum(|r| r.messages.scheduled));
    assert_eq!(merged.latency_us.count, sum(|r| r.latency_us.count));
    let rates: f64 = reports.iter().map(|r| r.throughput.msgs_per_sec).sum();
    assert!((merged.msgs_per_sec - rates).abs() < 1e-6, "{} against {rates}", merged.msgs_per_sec);

    // Merged from the interval logs: the same latencies, counted once each.
    let (a, b) = (path(&files[0].1), path(&files[1].1));
    let merged_hlog = loadgen::merge::merge(&[a.into(), b.into()]).unwrap();
    assert_eq!(merged_hlog.latency_us.count, merged.latency_us.count);
    std::fs::remove_dir_all(&dir).unwrap();
}
