//! The latency scenario against real servers: every model is offered the same rates (a
//! fraction of the slowest one's capacity, and a fixed rate), each point records how its rate
//! was chosen, its latency merged over the rounds with the generator's send lag, and the
//! report draws a nines chart per rate.

use std::process::Command;

use harness::results::{Chosen, Results};

mod util;
use util::{bin_dir, built};

#[test]
fn every_model_is_offered_the_same_rates_and_the_figures_are_merged() {
    let bin = bin_dir("latency");
    for (package, name) in [("echobench-mio", "echo-mio"), ("echobench-poll", "echo-poll")] {
        std::os::unix::fs::symlink(built(package, name), bin.join(name)).unwrap();
    }
    let out = bin.join("results");
    let output = Command::new(env!("CARGO_BIN_EXE_echobench"))
        .args(["compare", "--repeats", "1", "--control", "none", "--models", "mio,poll"])
        .args(["--scenarios", "latency", "--rates", "50%,2k"])
        .args(["--warmup", "100ms", "--duration", "300ms"])
        .arg("--bin-dir")
        .arg(&bin)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let json = std::fs::read_to_string(out.join("latest/results.json")).unwrap();
    let r: Results = serde_json::from_str(&json).unwrap();
    let runs: Vec<_> = r.models.iter().map(|m| m.scenario("latency").unwrap()).collect();
    let capacities: Vec<f64> = runs.iter().map(|s| s.capacity.unwrap().msgs_per_sec).collect();
    let slowest = capacities.iter().copied().fold(f64::MAX, f64::min);
    let slowest_name = &r.models[capacities.iter().position(|&c| c == slowest).unwrap()].name;
    for (i, want) in [(0, (slowest * 0.5).round()), (1, 2_000.0)] {
        for s in &runs {
            let p = &s.points[i];
            assert_eq!(
                p.target_rate,
                Some(want),
                "{}: the same rate for every model",
                p.point.label
            );
            let offered = p.offered.as_ref().expect("how the rate was chosen");
            let merged = p.merged.as_ref().expect("latency merged over the rounds");
            assert!(merged.count > 0 && !merged.spectrum.is_empty(), "{merged:?}");
            assert!(merged.schedule_lag_us.is_some(), "the send lag is kept and merged");
            if i == 0 {
                assert_eq!(offered.chosen, Chosen::Slowest);
                assert_eq!(offered.capacity, Some(slowest));
                assert_eq!(offered.server.as_ref(), Some(slowest_name));
            } else {
                assert_eq!(offered.chosen, Chosen::Fixed);
            }
        }
    }
    let run_dir = out.join("latest");
    assert!(run_dir.join("charts/latency-nines-1.svg").is_file());
    assert!(run_dir.join("charts/latency-nines-2.svg").is_file());
    let md = [run_dir.join("report.md"), run_dir.join("details.md")]
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .concat();
    assert!(md.contains("of the slowest model's capacity"), "{md}");
    assert!(md.contains("server CPU per message"), "{md}");
    let _ = std::fs::remove_dir_all(&bin);
}
