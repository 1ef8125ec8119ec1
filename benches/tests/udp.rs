//! The udp and batch scenarios in a short run on this machine against the real echo-mio,
//! echo-udp and loadgen: UDP loses what it cannot take and TCP loses nothing, with margins
//! wide enough for a shared, noisy 2-CPU machine; and both sections render.

use std::path::PathBuf;

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
    let outcome = harness::run(&options).unwrap();
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
