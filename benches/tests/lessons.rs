//! The lessons, each shown to exist in a short run on this machine against the real echo-mio
//! and loadgen (assertions on the measured figures, with margins wide enough for a shared,
//! noisy 2-CPU machine), and the promise that a server stopped with SIGSTOP is resumed
//! whatever ends the run: a panic, Ctrl-C, a second Ctrl-C, the harness killed outright.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use harness::CompareArgs;
use harness::plan::Stops;
use harness::results::{Results, Summary};
use harness::scenario::placements;
use harness::stopper::Stopper;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

mod util;
use util::{bin_dir, built};

/// A bin folder with loadgen and echo-mio.
fn mio_bin(name: &str) -> PathBuf {
    let bin = bin_dir(name);
    std::os::unix::fs::symlink(built("echobench-mio", "echo-mio"), bin.join("echo-mio")).unwrap();
    bin
}

/// Runs the harness in-process on mio: `scenarios`, with `extra` flags (a profile, say).
fn run(name: &str, scenarios: &str, extra: &[&str]) -> Results {
    let bin = mio_bin(name);
    let out = bin.join("results");
    let argv = ["compare", "--models", "mio", "--scenarios", scenarios]
        .into_iter()
        .chain(extra.iter().copied())
        .map(String::from)
        .chain(["--bin-dir".into(), bin.display().to_string()])
        .chain(["--out".into(), out.display().to_string()]);
    let mut options = CompareArgs::from_argv(argv).unwrap().options().unwrap();
    options.handle_ctrl_c = false;
    let outcome = harness::run(&options).unwrap();
    let md = [outcome.run_dir.join("report.md"), outcome.run_dir.join("details.md")]
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .concat();
    for s in scenarios.split(',') {
        assert!(md.contains(&format!("## {s}: ")), "{s} is rendered: {md}");
    }
    let _ = std::fs::remove_dir_all(&bin);
    outcome.results
}

/// mio's summary at the point labelled `label` of `scenario`.
fn at<'a>(r: &'a Results, scenario: &str, label: &str) -> &'a Summary {
    let s = r.models[0].scenario(scenario).expect("the scenario ran");
    let p = s.points.iter().find(|p| p.point.label == label).expect("the point ran");
    p.summary.as_ref().expect("the point has figures")
}

#[test]
fn a_stall_shows_in_the_open_loop_and_hides_from_the_closed_one() {
    let r = run("stall", "stall", &["--quick"]);
    let closed = &at(&r, "stall", "closed loop").median.latency_us;
    let open = &at(&r, "stall", "open loop").median.latency_us;
    // The stall is 100 ms. The open loop's p99.9, from the intended send time, sees it; the
    // closed loop's p99 does not.
    assert!(open.p999 >= 50_000.0, "open-loop p99.9 {} us", open.p999);
    assert!(closed.p99 < 50_000.0, "closed-loop p99 {} us", closed.p99);
    assert!(open.p999 > 3.0 * closed.p99, "open p99.9 {} vs closed p99 {}", open.p999, closed.p99);
    let s = r.models[0].scenario("stall").unwrap();
    let stops: Vec<u32> =
        s.points.iter().flat_map(|p| p.repeats.iter().filter_map(|r| r.stops)).collect();
    assert!(stops.iter().all(|&n| n == 2), "two stops in each two-second window: {stops:?}");
}

#[test]
fn batching_serves_more_messages_per_second_and_fewer_calls_per_message() {
    // The standard profile's points (one measured repeat, one traced), in short windows.
    let r = run(
        "pipeline",
        "pipeline",
        &["--depths", "1,16", "--warmup", "100ms", "--duration", "600ms"],
    );
    let (one, sixteen) = (at(&r, "pipeline", "depth 1"), at(&r, "pipeline", "depth 16"));
    assert!(
        sixteen.median.msgs_per_sec > one.median.msgs_per_sec,
        "depth 16 {} msgs/s against depth 1 {}",
        sixteen.median.msgs_per_sec,
        one.median.msgs_per_sec
    );
    // The traced repeat's figures stay out of the summary; its counts are the calls.
    let s = r.models[0].scenario("pipeline").unwrap();
    let calls = |depth: u32| {
        let p = s.points.iter().find(|p| p.point.pipeline == depth).unwrap();
        assert_eq!(p.summary.as_ref().unwrap().repeats, 1, "only the untraced repeat");
        p.repeats.iter().find_map(|r| r.syscalls.as_ref()?.per_message())
    };
    if harness::scenario::installed("strace") {
        let (a, b) = (calls(1).expect("depth 1 traced"), calls(16).expect("depth 16 traced"));
        assert!(b < a, "calls per message: depth 16 {b}, depth 1 {a}");
    } else {
        eprintln!("skipped: strace not installed");
        assert!(s.notes.iter().any(|n| n.contains("strace not installed")), "{:?}", s.notes);
    }
}

#[test]
fn an_echo_in_two_pieces_under_nagle_waits_for_the_delayed_ack() {
    let r = run("nagle", "nagle", &["--quick"]);
    let held = at(&r, "nagle", "Nagle, echo in 2 pieces").median.latency_us.p50;
    let prompt = at(&r, "nagle", "TCP_NODELAY, echo in 2 pieces").median.latency_us.p50;
    // The delayed ACK is 40 ms at least; a busy machine makes it longer, never shorter.
    assert!(held >= 20_000.0, "with --nagle the median was only {held} us");
    assert!(prompt < 5_000.0, "with TCP_NODELAY the median was {prompt} us");
    let whole = at(&r, "nagle", "Nagle, echo whole").median.latency_us.p50;
    assert!(whole < 5_000.0, "Nagle alone, each echo whole: {whole} us");
}

#[test]
fn a_burst_past_a_small_backlog_waits_for_syn_retransmissions() {
    let r = run("backlog", "backlog", &["--quick"]);
    let s = r.models[0].scenario("backlog").unwrap();
    let small = s.points.iter().find(|p| p.point.label == "backlog 16").unwrap();
    let repeat = &small.repeats[0];
    let burst = repeat.loadgen.as_ref().and_then(|l| l.burst.as_ref()).expect("a burst report");
    assert_eq!(burst.each.len(), 80);
    let slow = burst.each.iter().filter_map(|c| c.connect_us).filter(|&us| us >= 800_000.0);
    assert!(slow.count() >= 1, "no connect waited for a retransmission: {:?}", burst.each);
    let overflows = repeat.counters.get("TcpExt:ListenOverflows").copied().unwrap_or(0);
    assert!(overflows > 0, "the kernel counted no listen overflow: {:?}", repeat.counters);
    assert_eq!(repeat.stops, Some(1), "stopped once, and resumed");
    // The default backlog holds the whole burst: every connect at once.
    let default = s.points.iter().find(|p| p.point.label == "default backlog").unwrap();
    let burst = default.repeats[0].loadgen.as_ref().and_then(|l| l.burst.as_ref()).unwrap();
    let late = burst.each.iter().filter_map(|c| c.connect_us).filter(|&us| us >= 800_000.0);
    assert_eq!(late.count(), 0, "{:?}", burst.each);
    assert_eq!(burst.outcomes.echoed, 80);
}

#[test]
fn the_server_cpus_of_cores_follow_the_cpus_the_machine_allows() {
    let two = placements(&[0, 1]);
    let servers: Vec<Vec<usize>> = two.iter().map(|c| c.server.clone()).collect();
    let generators: Vec<Vec<usize>> = two.iter().map(|c| c.generator.clone()).collect();
    assert_eq!(servers, [vec![0], vec![0, 1]], "one CPU alone, then both shared");
    assert_eq!(generators, [vec![1], vec![0, 1]]);
    let sixteen = placements(&(0..16).collect::<Vec<_>>());
    let counts: Vec<usize> = sixteen.iter().map(|c| c.server.len()).collect();
    assert_eq!(counts, [1, 2, 4, 8], "1, 2, 4 and 8 server CPUs, none shared");
    for c in &sixteen {
        assert_eq!(c.generator, (8..16).collect::<Vec<_>>());
        assert!(c.server.iter().all(|s| *s < 8));
    }
    let twelve = placements(&(0..12).collect::<Vec<_>>());
    let counts: Vec<usize> = twelve.iter().map(|c| c.server.len()).collect();
    assert_eq!(counts, [1, 2, 4, 6], "the whole half ends the list");
    assert_eq!(placements(&[3]).len(), 1, "one CPU: one point, shared");
}

/// The state letter of a process (`R`, `S`, `T`...), if it exists.
fn state(pid: u32) -> Option<char> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    text.rsplit_once(')')?.1.trim_start().chars().next()
}

#[test]
fn a_panic_while_the_server_is_stopped_resumes_it() {
    let mut child = Command::new("sleep").arg("30").process_group(0).spawn().unwrap();
    let pid = child.id();
    let stops = Stops { after: Duration::ZERO, length: Duration::from_secs(60), every: None };
    let caught = std::panic::catch_unwind(|| {
        let _guard = Stopper::start(pid, stops, Duration::from_secs(60));
        assert_eq!(state(pid), Some('T'), "stopped at once");
        panic!("the repeat failed");
    });
    assert!(caught.is_err());
    assert_ne!(state(pid), Some('T'), "the guard resumed it while unwinding");
    // A schedule that ends on its own resumes it too, and counts its stops.
    let stops = Stops {
        after: Duration::from_millis(10),
        length: Duration::from_millis(20),
        every: Some(Duration::from_millis(50)),
    };
    let guard = Stopper::start(pid, stops, Duration::from_millis(120));
    std::thread::sleep(Duration::from_millis(300));
    let made = guard.finish();
    // Stops at 10, 60 and 110 ms; none from 120 ms on, though the schedule ran to 300 ms.
    assert_eq!(made, 3, "{made} stops before 120 ms");
    assert_ne!(state(pid), Some('T'));
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The harness as a child process, killed and reaped if a test fails before it exits.
struct Harness(Child);

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `echobench compare` on the stall scenario with long windows and returns it with the
/// pid of its echo-mio once that is stopped (SIGSTOP) for the first time.
fn harness_during_a_stall(bin: &Path) -> (Harness, u32) {
    let out = bin.join("results");
    let child = Command::new(env!("CARGO_BIN_EXE_echobench"))
        .args(["compare", "--quick", "--models", "mio", "--scenarios", "stall"])
        .args(["--duration", "60s", "--repeats", "1"])
        .arg("--bin-dir")
        .arg(bin)
        .arg("--out")
        .arg(&out)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Harness(child);
    let mut stderr = BufReader::new(child.0.stderr.take().unwrap());
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 && !line.contains("[  1/") {
        line.clear();
    }
    // Keep draining, so the harness never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let tree = harness::procstat::tree(child.0.id()).unwrap_or_default();
        let server = tree.iter().map(|p| p.pid).find(|&pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "echo-mio")
                && state(pid) == Some('T')
        });
        if let Some(pid) = server {
            return (child, pid);
        }
        assert!(Instant::now() < deadline, "the server was never seen stopped");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits (bounded) for `pid` to be gone, asserting it is never seen stopped meanwhile.
fn gone_and_never_left_stopped(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Some(s) = state(pid) {
        assert!(s != 'T' || Instant::now() < deadline, "the server was left stopped");
        assert!(Instant::now() < deadline, "the server is still there, state {s}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_bounded(child: &mut Child) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        assert!(Instant::now() < deadline, "the harness did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn ctrl_c_during_a_stall_resumes_the_server_and_stops_it_cleanly() {
    let bin = mio_bin("stall-ctrlc");
    let (mut child, server) = harness_during_a_stall(&bin);
    kill(Pid::from_raw(child.0.id() as i32), Signal::SIGINT).unwrap();
    assert_eq!(wait_bounded(&mut child.0), Some(130));
    gone_and_never_left_stopped(server);
    // A stopped server would have ignored SIGTERM until killed: it exited cleanly, so it was
    // running when the harness asked it to stop.
    let runs = std::fs::read_dir(bin.join("results")).unwrap().flatten();
    let run = runs.map(|e| e.path()).find(|p| p.join("results.json").is_file()).unwrap();
    let json = std::fs::read_to_string(run.join("results.json")).unwrap();
    let r: Results = serde_json::from_str(&json).unwrap();
    let record = &r.models[0].scenario("stall").unwrap().server;
    assert!(record.faults.is_empty(), "{:?}", record.faults);
    assert_eq!(record.exit_code, Some(0));
    let _ = std::fs::remove_dir_all(&bin);
}

#[test]
fn a_second_ctrl_c_or_a_kill_during_a_stall_leaves_no_stopped_server() {
    // Two Ctrl-Cs: the second leaves at once through _exit, and its handler resumes first.
    let bin = mio_bin("stall-twice");
    let (mut child, server) = harness_during_a_stall(&bin);
    let pid = Pid::from_raw(child.0.id() as i32);
    kill(pid, Signal::SIGINT).unwrap();
    kill(pid, Signal::SIGINT).unwrap();
    assert_eq!(wait_bounded(&mut child.0), Some(130));
    gone_and_never_left_stopped(server);
    // SIGKILL, which nothing can catch: the orphaned process group is continued by the kernel.
    let (mut child, server) = harness_during_a_stall(&bin);
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    gone_and_never_left_stopped(server);
    let _ = std::fs::remove_dir_all(&bin);
}

#[test]
fn the_lessons_choose_their_models() {
    let plan =
        CompareArgs::from_argv(["compare", "--bin-dir", "/"]).unwrap().options().unwrap().plan;
    let runs = |s: &str| -> Vec<&str> {
        plan.models.iter().map(String::as_str).filter(|m| plan.runs_server(s, m)).collect()
    };
    assert_eq!(runs("stall"), ["mio"]);
    assert_eq!(runs("nagle"), ["mio"]);
    // Every stream model, and no datagram server (echo-udp): it has no connection to load.
    let streams: Vec<&str> =
        plan.models.iter().map(String::as_str).filter(|m| *m != "udp").collect();
    assert!(plan.models.iter().any(|m| m == "udp"), "the registry has the datagram server");
    assert_eq!(runs("pipeline"), streams);
    assert_eq!(runs("backlog"), streams);
    assert_eq!(runs("scale"), streams);
    let cores = runs("cores");
    assert!(cores.contains(&"mio") && cores.contains(&"hybrid") && cores.contains(&"tokio"));
    assert!(!cores.contains(&"thread") && !cores.contains(&"fork"), "{cores:?}");
    assert!(!cores.contains(&"udp"), "a datagram server with workers is not cores' either");
    // A model the registry does not know runs the scenarios for every stream model only.
    let argv = ["compare", "--bin-dir", "/", "--models", "mine,mio"];
    let plan = CompareArgs::from_argv(argv).unwrap().options().unwrap().plan;
    assert!(plan.runs_server("pipeline", "mine") && !plan.runs_server("stall", "mine"));
}

#[test]
fn without_strace_pipeline_runs_and_says_its_calls_were_skipped() {
    let bin = mio_bin("nostrace");
    let out = bin.join("results");
    // An empty PATH: no strace to be found (every binary the harness runs is named by path).
    let status = Command::new(env!("CARGO_BIN_EXE_echobench"))
        .args(["compare", "--models", "mio", "--scenarios", "pipeline", "--depths", "1"])
        .args(["--warmup", "100ms", "--duration", "300ms"])
        .arg("--bin-dir")
        .arg(&bin)
        .arg("--out")
        .arg(&out)
        .env("PATH", "")
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let json = std::fs::read_to_string(out.join("latest/results.json")).unwrap();
    let r: Results = serde_json::from_str(&json).unwrap();
    let s = r.models[0].scenario("pipeline").unwrap();
    assert_eq!(s.notes, ["calls/msg skipped: strace not installed"]);
    let p = &s.points[0];
    assert_eq!(p.repeats.len(), 1, "the measured repeat ran, the traced one did not");
    assert!(p.summary.as_ref().unwrap().median.msgs_per_sec > 0.0);
    let md = ["latest/report.md", "latest/details.md"]
        .map(|f| std::fs::read_to_string(out.join(f)).unwrap_or_default())
        .concat();
    assert!(md.contains("- mio pipeline: calls/msg skipped: strace not installed."), "{md}");
    let _ = std::fs::remove_dir_all(&bin);
}
