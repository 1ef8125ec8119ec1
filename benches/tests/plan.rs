//! The comparison plan: every profile stays within its time budget and runs every scenario.

use std::time::Duration;

use harness::CompareArgs;
use harness::plan::{Plan, Profile};
use harness::scenario::ALL;
use harness::text::{format_bytes, format_duration};

fn plan(extra: &[&str]) -> Plan {
    let mut argv = vec!["compare", "--placement", "unpinned", "--bin-dir", "/"];
    argv.extend(extra);
    CompareArgs::from_argv(argv).unwrap().options().unwrap().plan
}

/// The plan's estimate per server it runs: profiles are budgeted per model, since the
/// registry grows.
fn per_server(plan: &Plan) -> Duration {
    plan.estimate() / plan.servers() as u32
}

#[test]
fn quick_profile_fits_in_about_half_a_minute_a_model() {
    let quick = plan(&["--quick"]);
    assert_eq!(quick.profile, Profile::Quick);
    // About 20 s a model until the five lessons joined; a listen-queue overflow takes its
    // 1 s and 3 s SYN retransmissions whatever the profile.
    assert!(per_server(&quick) <= Duration::from_secs(30), "{:?}", per_server(&quick));
    // Every scenario still runs, so the quick profile exercises the whole pipeline.
    for scenario in ALL {
        assert!(quick.points_of(scenario.name()).count() >= 1, "{} has no point", scenario.name());
    }
}

#[test]
fn standard_profile_fits_in_twenty_minutes_for_every_model() {
    // The placement `cargo bench` uses (split), where cores' 1-CPU point is scale's.
    let argv = ["compare", "--bin-dir", "/"];
    let standard = CompareArgs::from_argv(argv).unwrap().options().unwrap().plan;
    // The lessons were held to 19 minutes to leave the last for udp and batch (about 32 s).
    let budget = Duration::from_secs(20 * 60);
    assert!(standard.estimate() <= budget, "{:?} for {}", standard.estimate(), standard.servers());
    // A verdict needs 8 paired rounds (compare.rs), and the control runs beside every model.
    assert!(standard.repeats >= harness::compare::ROUNDS_FOR_VERDICT as u32);
    assert_eq!(standard.control.as_deref(), Some("mio"));
    assert!(standard.server_names().contains(&"mio (control)".to_string()));
    assert_eq!(standard.budget, Some(budget));
    let scale: Vec<u32> = standard.points_of("scale").map(|p| p.connections).collect();
    assert_eq!(scale, [1, 10, 100, 1000]);
}

#[test]
fn latency_capacity_comes_from_a_scale_point_unless_scale_is_left_out() {
    for profile in [&["--quick"][..], &[], &["--full"]] {
        assert_eq!(plan(profile).capacity_probes, 0, "{profile:?}");
    }
    assert_eq!(plan(&["--scenarios", "latency"]).capacity_probes, 1);
    assert_eq!(plan(&["--scenarios", "latency", "--connections", "1,100"]).capacity_probes, 1);
}

#[test]
fn labels_read_naturally() {
    let p = plan(&[]);
    let labels: Vec<&str> = p.points.iter().map(|p| p.label.as_str()).collect();
    for want in ["1 conn", "1000 conns", "64 B", "1 MiB", "1 client", "1000 idle", "75% of slowest"]
    {
        assert!(labels.contains(&want), "{want} not in {labels:?}");
    }
    // The points the standard profile leaves out for its paired rounds stay in the full one.
    let full = plan(&["--full"]);
    let labels: Vec<&str> = full.points.iter().map(|p| p.label.as_str()).collect();
    for want in ["4 KiB", "8 clients", "4000 idle", "50% of slowest"] {
        assert!(labels.contains(&want), "{want} not in the full profile's {labels:?}");
    }
    assert_eq!(format_duration(Duration::from_secs(754)), "12 min 34 s");
    assert_eq!(format_bytes(65536), "64 KiB");
}

#[test]
fn each_scenario_takes_its_points_from_its_own_flag() {
    let p = plan(&["--connections", "2,3", "--sizes", "1K,2M", "--idle", "7", "--rates", "50%"]);
    let of = |s: &str| p.points_of(s).map(|p| p.label.clone()).collect::<Vec<_>>();
    assert_eq!(of("scale"), ["2 conns", "3 conns"]);
    assert_eq!(of("size"), ["1 KiB", "2 MiB"]);
    assert_eq!(
        of("idle"),
        ["7 idle", "7 idle, echoed once"],
        "each count silent, then after one echo"
    );
    assert_eq!(of("latency"), ["50% of slowest"]);
    // Typed in any order, the scenarios run in the list's order (latency after scale).
    assert_eq!(plan(&["--scenarios", "latency,scale"]).scenarios, ["scale", "latency"]);
    for (flag, value) in
        [("--connections", "0"), ("--sizes", "1X"), ("--rates", "300%"), ("--scenarios", "nope")]
    {
        let argv = ["compare", "--bin-dir", "/", flag, value];
        let err = CompareArgs::from_argv(argv).unwrap().options().unwrap_err().to_string();
        assert!(err.starts_with(flag), "{flag} {value}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

#[test]
fn split_placement_halves_the_cpus_and_cpu_lists_override_it() {
    use harness::plan::Placement;
    let cpus = Placement::Split.cpus(&[0, 1]);
    assert_eq!((cpus.server, cpus.generator), (vec![0], vec![1]));
    let cpus = Placement::Split.cpus(&(0..16).collect::<Vec<_>>());
    assert_eq!(cpus.server, (0..8).collect::<Vec<_>>());
    assert_eq!(cpus.generator, (8..16).collect::<Vec<_>>());
    let one = Placement::Split.cpus(&[3]);
    assert_eq!((one.server, one.generator), (vec![3], vec![3]), "one CPU is shared");
    assert!(Placement::Unpinned.cpus(&[0, 1]).server.is_empty());
    assert_eq!(harness::cli::parse_cpus("0-3,8"), Ok(vec![0, 1, 2, 3, 8]));
    assert!(harness::cli::parse_cpus("3-1").is_err());
    let p = plan(&["--server-cpus", "0", "--generator-cpus", "0", "--workers", "3"]);
    assert_eq!(p.placement, Placement::Custom);
    assert_eq!((p.cpus.server, p.cpus.generator, p.workers), (vec![0], vec![0], Some(3)));
    let err = CompareArgs::from_argv(["compare", "--bin-dir", "/", "--server-cpus", "4095"])
        .unwrap()
        .options()
        .unwrap_err();
    assert!(err.to_string().starts_with("--server-cpus: CPU 4095 is not one"), "{err}");
}

#[test]
fn the_control_is_a_second_model_and_must_be_one_the_run_has() {
    let p = plan(&["--models", "fork,thread"]);
    // Without mio, the control is the first model's twin.
    assert_eq!(p.control.as_deref(), Some("fork"));
    assert_eq!(p.server_names(), ["fork", "thread", "fork (control)"]);
    assert_eq!(plan(&["--control", "none"]).control, None);
    assert_eq!(plan(&["--quick"]).control, None, "the quick profile runs no control");
    let argv = ["compare", "--bin-dir", "/", "--models", "fork", "--control", "mio"];
    let err = CompareArgs::from_argv(argv).unwrap().options().unwrap_err().to_string();
    assert!(err.starts_with("--control mio"), "{err}");
    assert_eq!(plan(&["--seed", "42"]).seed, 42);
    let rounds = plan(&["--repeats", "12", "--max-rounds", "5"]);
    assert_eq!(
        (rounds.repeats, rounds.max_rounds),
        (12, Some(12)),
        "the most is never below the least"
    );
}
