//! The udp and batch scenarios in a short run on this machine against the real echo-mio,
//! echo-udp and loadgen: UDP loses what it cannot take and TCP loses nothing, with margins
//! wide enough for a shared, noisy 2-CPU machine; and both sections render.
//!
//! Whether a server falls behind cannot be left to the machine: a debug loadgen sends about
//! as fast as a debug echo-udp echoes, so 400k asked may be echoed almost whole. The test
//! forces it: while the run goes, it stops both servers (SIGSTOP) for 30 ms of every 150 ms.
//! A stopped UDP server's receive buffer (256 small datagrams) overflows within the first
//! few milliseconds at the high rate, while at 2k a stop queues 60 datagrams that wait less
//! than the 50 ms timeout; a stopped TCP server only makes its clients wait.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use harness::CompareArgs;
use harness::results::{PointResults, Results};

mod util;
use util::{bin_dir, built};

/// A bin folder with loadgen, echo-mio and echo-udp.
fn bin(name: &str) -> PathBuf {
    let bin = bin_dir(name);
    for (package, binary) in [("echobench-mio", "echo-mio"), ("echobench-udp", "echo-udp")] {
        std::os::unix::fs::symlink(built(package, binary), bin.join(binary)).unwrap();
    }
    bin
}

/// The processes among this test's children named `comm` (the harness starts the servers).
fn children_named(comm: &str) -> Vec<Pid> {
    let me = std::process::id().to_string();
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| {
        let pid: i32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // "pid (comm) state ppid ...": the comm may hold spaces, so split at its last ')'.
        let (head, rest) = stat.rsplit_once(") ")?;
        let name = head.split_once(" (")?.1;
        let ppid = rest.split_whitespace().nth(1)?;
        (name == comm && ppid == me).then_some(Pid::from_raw(pid))
    })
    .collect()
}

/// Stops echo-udp and echo-mio for 30 ms of every 150 ms until `done`, and resumes them
/// before it returns.
fn stall_servers(done: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !done.load(Ordering::Relaxed) {
            let servers: Vec<Pid> =
                ["echo-udp", "echo-mio"].iter().flat_map(|c| children_named(c)).collect();
            for &pid in &servers {
                let _ = kill(pid, Signal::SIGSTOP);
            }
            std::thread::sleep(Duration::from_millis(30));
            for &pid in &servers {
                let _ = kill(pid, Signal::SIGCONT);
            }
            std::thread::sleep(Duration::from_millis(120));
        }
    })
}

/// Messages sent and never echoed, as a share of those sent, over a point's repeats.
fn loss(p: &PointResults) -> f64 {
    let reports = p.repeats.iter().filter_map(|r| r.loadgen.as_ref());
    let (sent, received) =
        reports.fold((0, 0), |(s, r), l| (s + l.messages.sent, r + l.messages.received));
    assert!(sent > 0, "{} sent nothing", p.point.label);
    (sent - received) as f64 / sent as f64
}

/// The point of `model` at `rate` in the udp scenario.
fn at<'a>(r: &'a Results, model: &str, rate: f64) -> &'a PointResults {
    let m = r.models.iter().find(|m| m.name == model).expect("the model ran");
    let s = m.scenario("udp").expect("udp ran");
    s.points.iter().find(|p| p.point.rate == Some(rate)).expect("the rate ran")
}

#[test]
fn udp_loses_beyond_its_capacity_where_tcp_waits_and_both_sections_render() {
    let bin = bin("udp");
    let out = bin.join("results");
    // The server pinned to one CPU (split placement), offered far more than one CPU echoes as
    // datagrams (about 160k a second with the whole CPU), and far less.
    let argv = [
        "compare",
        "--models",
        "mio,udp",
        "--scenarios",
        "udp,batch",
        "--quick",
        "--udp-rates",
        "2k,400k",
        "--placement",
        "split",
    ]
    .into_iter()
    .map(String::from)
    .chain(["--bin-dir".into(), bin.display().to_string()])
    .chain(["--out".into(), out.display().to_string()]);
    let mut options = CompareArgs::from_argv(argv).unwrap().options().unwrap();
    options.handle_ctrl_c = false;
    let done = Arc::new(AtomicBool::new(false));
    let stalls = stall_servers(done.clone());
    let outcome = harness::run(&options);
    done.store(true, Ordering::Relaxed);
    stalls.join().unwrap();
    let outcome = outcome.unwrap();
    let r = &outcome.results;

    // mio runs udp but not batch; echo-udp runs both.
    let mio = r.models.iter().find(|m| m.name == "mio").unwrap();
    assert!(mio.scenario("batch").is_none(), "batch is the datagram server's only");
    for rate in [2e3, 4e5] {
        assert_eq!(loss(at(r, "mio", rate)), 0.0, "TCP at {rate} msgs/s loses nothing");
    }
    let (low, high) = (loss(at(r, "udp", 2e3)), loss(at(r, "udp", 4e5)));
    assert!(high > 0.01, "UDP far beyond capacity lost {:.2}%", high * 100.0);
    assert!(low < 0.02 && low * 3.0 < high, "UDP at 2k lost {:.2}%", low * 100.0);
    // The datagram runs were in loadgen's UDP mode, with the scenario's short timeout.
    let udp = at(r, "udp", 4e5).repeats[0].loadgen.as_ref().unwrap();
    assert!(udp.udp.as_ref().is_some_and(|u| u.lost > 0), "{:?}", udp.udp);
    assert_eq!(udp.config.timeout, std::time::Duration::from_millis(50));
    assert!(at(r, "udp", 4e5).repeats[0].counters.contains_key("Udp:RcvbufErrors"));

    let md = [outcome.run_dir.join("report.md"), outcome.run_dir.join("details.md")]
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .concat();
    for want in [
        "## udp: What does UDP trade away, and what does it buy?",
        // The counters are named in the setup; their figures are in results.json and .csv.
        "Kernel counters (Udp:RcvbufErrors",
        "UDP (udp) lost more than 1% at every rate from",
        "TCP (mio) lost 0 messages",
        "udp-p99.svg",
        "udp-loss.svg",
        "## batch: What does batching buy a datagram server?",
        "`--batch 32`",
    ] {
        assert!(md.contains(want), "{want:?} is not in the report:\n{md}");
    }
    for chart in ["udp-p99.svg", "udp-loss.svg"] {
        assert!(outcome.run_dir.join("charts").join(chart).is_file(), "{chart} drawn");
    }
    let _ = std::fs::remove_dir_all(&bin);
}
