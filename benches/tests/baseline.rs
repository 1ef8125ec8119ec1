//! Comparing a run with a baseline (`--baseline`): read through a reference server measured in
//! the same rounds, a machine that got faster changes nothing, a server that got slower than
//! the reference is called worse, and a baseline without rounds says it cannot be compared.

use harness::baseline::{self, Baseline, Verdict};
use harness::plan::Placement;
use harness::results::*;
use harness::scenario::{ALL, THROUGHPUT};
use harness::{CompareArgs, check_regressions, env::Environment, report};

mod util;

/// The control: a second instance of mio, the reference by default.
const CONTROL: &str = "mio (control)";

/// Each server's throughput on the baseline's machine.
const SERVERS: [(&str, f64); 4] =
    [("mio", 100_000.0), (CONTROL, 100_000.0), ("thread", 50_000.0), ("hybrid", 120_000.0)];

/// A deterministic number in [-1, 1) for one round of one server at one point of one run.
fn jitter(run: u64, round: u32, server: u64, point: u64) -> f64 {
    let h = (run * 7_919 + u64::from(round) * 104_729 + server * 1_299_709 + point * 15_485_863)
        .wrapping_mul(2_654_435_761)
        % 1_000;
    h as f64 / 500.0 - 1.0
}

/// How a synthetic run was measured.
struct Run {
    /// Seeds its noise: two runs differ round by round.
    seed: u64,
    /// The machine's speed: every figure is multiplied by it.
    speed: f64,
    /// Rounds per point.
    rounds: u32,
    /// Whether repeats carry their round (false: a schema version 2 file, rounds 0).
    numbered: bool,
    /// The servers it ran.
    servers: Vec<&'static str>,
    /// A server whose own figure is multiplied by a factor, relative to the others.
    own: Option<(&'static str, f64)>,
}

impl Run {
    fn new(seed: u64, speed: f64) -> Run {
        let servers = SERVERS.iter().map(|(s, _)| *s).collect();
        Run { seed, speed, rounds: 10, numbered: true, servers, own: None }
    }
}

/// The scale scenario's points for `run.servers`, with throughput drifting by up to ±10% from
/// round to round for all servers alike (the machine) and by ±1% for each server alone.
fn synthetic(run: &Run) -> Results {
    let argv = ["compare", "--placement", "unpinned", "--bin-dir", "/", "--scenarios", "scale"];
    let plan = CompareArgs::from_argv(argv).unwrap().options().unwrap().plan;
    let mut results = Results {
        schema_version: SCHEMA_VERSION,
        harness_version: "test".into(),
        started_at: "2026-12-08T12:00:00Z".into(),
        finished_at: None,
        status: RunStatus::Complete,
        elapsed_seconds: 600.0,
        estimated_seconds: 600.0,
        harness_cpu_seconds: 1.0,
        plan: plan.clone(),
        placement: PlacementRecord {
            mode: Placement::Split,
            server_cpus: vec![0],
            generator_cpus: vec![1],
            server_cpu: None,
            generator_cpu: None,
        },
        environment: Environment {
            host: "testhost".into(),
            cores: 2,
            git_commit: Some("4b737677bb7e".into()),
            ..Environment::default()
        },
        models: Vec::new(),
        seed: Some(run.seed),
        order: Vec::new(),
        comparisons: Vec::new(),
        criterion: Vec::new(),
    };
    for (i, &(name, rate)) in SERVERS.iter().enumerate() {
        if !run.servers.contains(&name) {
            continue;
        }
        let own = run.own.filter(|(s, _)| *s == name).map_or(1.0, |(_, f)| f);
        let mut s = ScenarioResults {
            scenario: "scale".into(),
            server: ServerRecord::default(),
            capacity: None,
            skipped: None,
            points: Vec::new(),
            notes: Vec::new(),
        };
        for (j, point) in plan.points_of("scale").enumerate() {
            let repeats: Vec<Repeat> = (1..=run.rounds)
                .map(|round| {
                    let machine = 1.0 + 0.10 * jitter(run.seed, round, 99, j as u64);
                    let alone = 1.0 + 0.01 * jitter(run.seed, round, i as u64, j as u64);
                    let msgs_per_sec = rate * run.speed * own * machine * alone;
                    Repeat {
                        index: round,
                        round: if run.numbered { round } else { 0 },
                        started_at: None,
                        replaced: None,
                        status: RepeatStatus::Ok,
                        wall_seconds: 2.5,
                        metrics: Some(Metrics { msgs_per_sec, ..Metrics::default() }),
                        server: None,
                        hlog: None,
                        loadgen: None,
                        syscalls: None,
                        traced: false,
                        stops: None,
                        counters: Default::default(),
                        disturbance: None,
                        generators: None,
                    }
                })
                .collect();
            s.points.push(PointResults {
                point: point.clone(),
                target_rate: None,
                offered: None,
                summary: Summary::of(&repeats),
                merged: None,
                repeats,
                server: None,
                copied_from: None,
            });
        }
        results.models.push(ModelResults {
            name: name.into(),
            binary: format!("/somewhere/target/release/echo-{}", name.replace(" (control)", "")),
            external: None,
            control_of: (name == CONTROL).then(|| "mio".into()),
            scenarios: vec![s],
        });
    }
    results
}

fn baseline(old: &Run) -> Baseline {
    Baseline { dir: "results/old".into(), results: synthetic(old), reference: None }
}

fn section(new: &Results, base: &Baseline) -> String {
    let mut md = String::new();
    baseline::section(&mut md, new, ALL, base);
    md
}

/// The scale points of the standard profile.
fn points() -> usize {
    synthetic(&Run::new(1, 1.0)).models[0].scenarios[0].points.len()
}

#[test]
fn a_machine_that_got_faster_for_every_server_alike_changes_nothing() {
    let base = baseline(&Run::new(1, 1.0));
    let new = synthetic(&Run::new(2, 1.4));
    let changes = baseline::changes(&new, ALL, &base).unwrap();
    assert_eq!(changes.reference.name, CONTROL);
    // Every server but the reference, at every point, with a verdict: no change.
    assert_eq!(changes.rows.len(), 3 * points());
    for row in &changes.rows {
        assert_eq!(row.change.verdict, Verdict::Noise, "{row:?}");
        // Absolute figures say 40% faster everywhere: the comparison the harness used to make.
        let abs = row.change.absolute.unwrap();
        assert!((0.25..0.55).contains(&abs), "{abs}");
    }
    let md = section(&new, &base);
    let n = 3 * points();
    assert!(md.contains(&format!("beyond the margin ({n} comparisons with a verdict)")), "{md}");
    assert!(!md.contains("\n- "), "nothing listed: {md}");
    assert!(!md.contains("may have changed"), "same commit, machine and placement: {md}");
    check_regressions(&new, ALL, &base, 5.0).unwrap();
}

#[test]
fn a_server_slower_than_the_reference_is_worse_and_fails_the_regression_check() {
    let base = baseline(&Run::new(1, 1.0));
    let new = synthetic(&Run { own: Some(("thread", 0.75)), ..Run::new(2, 1.4) });
    let changes = baseline::changes(&new, ALL, &base).unwrap();
    for row in &changes.rows {
        let expected = if row.model == "thread" { Verdict::Worse } else { Verdict::Noise };
        assert_eq!(row.change.verdict, expected, "{row:?}");
        if row.model == "thread" {
            assert!((-0.28..-0.22).contains(&row.change.relative), "{row:?}");
            // Its own figure is 1.4 * 0.75 = 1.05 times the baseline's: "faster", absolutely.
            assert!(row.change.absolute.unwrap() > -0.05, "{row:?}");
        }
    }
    let md = section(&new, &base);
    let listed = md.lines().filter(|l| l.starts_with("- ")).count();
    assert_eq!(listed, points(), "one line per thread point: {md}");
    assert!(md.contains("- thread scale 1 conn: msgs/s -2"), "{md}");
    assert!(md.contains("% slower relative to mio (control) (ratio 0."), "{md}");
    let error = check_regressions(&new, ALL, &base, 5.0).unwrap_err().to_string();
    assert!(error.contains("thread scale 1 conn: msgs/s -2"), "{error}");
    assert!(!error.contains("hybrid") && !error.contains("mio scale"), "{error}");
    // The median ratio moved by about 25%: more than 5, less than 30.
    check_regressions(&new, ALL, &base, 30.0).unwrap();
}

#[test]
fn a_baseline_without_rounds_cannot_be_compared_and_the_check_says_so() {
    let base = baseline(&Run { numbered: false, ..Run::new(1, 1.0) });
    let new = synthetic(&Run { own: Some(("thread", 0.75)), ..Run::new(2, 1.4) });
    let md = section(&new, &base);
    let line = "**It cannot be compared with this run**: the baseline has no rounds";
    assert_eq!(md.lines().filter(|l| l.contains(line)).count(), 1, "{md}");
    assert!(!md.contains("slower") && !md.contains("faster"), "{md}");
    let error = check_regressions(&new, ALL, &base, 5.0).unwrap_err().to_string();
    assert!(
        error.starts_with(
            "--fail-on-regression: cannot compare with results/old: the baseline has no rounds"
        ),
        "{error}"
    );
    assert_eq!(error.lines().count(), 1, "{error}");
    // The tables keep the absolute change alone, marked as such.
    let p = &new.model("thread").unwrap().scenarios[0].points[0];
    let cell = baseline::cell(&new, &base, "thread", p, &THROUGHPUT);
    assert!(cell.starts_with("abs +") && !cell.contains("slower"), "{cell}");
}

#[test]
fn the_tables_show_the_change_relative_to_the_reference_beside_the_absolute_one() {
    let base = baseline(&Run::new(1, 1.0));
    let new = synthetic(&Run { own: Some(("thread", 0.75)), ..Run::new(2, 1.4) });
    let md = report::render(&new, ALL, &[], Some(&base));
    let changes = md.find("## Changes since the baseline").expect("a Changes section");
    assert!(changes < md.find("## scale").unwrap(), "it comes before the scenarios: {md}");
    assert!(md.contains("| msgs/s change | notes |"), "{md}");
    let row = |model: &str| {
        md.lines().find(|l| l.starts_with(&format!("| 1 conn | {model} |"))).unwrap().to_string()
    };
    assert!(row(CONTROL).contains("| reference (abs +"), "{}", row(CONTROL));
    assert!(row("thread").contains("% slower (abs +"), "{}", row("thread"));
    assert!(row("hybrid").contains("% within noise (abs +"), "{}", row("hybrid"));
}

#[test]
fn the_reference_is_the_control_its_model_or_the_one_named() {
    let mut base = baseline(&Run::new(1, 1.0));
    let new = synthetic(&Run::new(2, 1.4));
    let r = baseline::reference(&new, &base).unwrap();
    assert_eq!((r.name.as_str(), r.chosen), (CONTROL, "the control"));
    base.reference = Some("hybrid".into());
    assert_eq!(baseline::reference(&new, &base).unwrap().name, "hybrid");
    // A baseline from before the control: its model.
    let no_control = vec!["mio", "thread", "hybrid"];
    let old = baseline(&Run { servers: no_control.clone(), ..Run::new(1, 1.0) });
    assert_eq!(baseline::reference(&new, &old).unwrap().name, "mio");
    // A run without a control needs --reference, and gets the one it names.
    let new = synthetic(&Run { servers: no_control, ..Run::new(2, 1.4) });
    let why = baseline::reference(&new, &old).unwrap_err();
    assert!(why.contains("no control (--control): name a server both runs have"), "{why}");
    let error = check_regressions(&new, ALL, &old, 5.0).unwrap_err().to_string();
    assert!(error.contains("cannot compare with results/old: this run has no control"), "{error}");
    let old = Baseline { reference: Some("thread".into()), ..old };
    let changes = baseline::changes(&new, ALL, &old).unwrap();
    assert!(changes.rows.iter().all(|r| r.model != "thread" && r.change.verdict == Verdict::Noise));
    // A name only the baseline has cannot be the reference.
    let gone = synthetic(&Run { servers: vec!["mio", "hybrid"], ..Run::new(2, 1.4) });
    let why = baseline::reference(&gone, &old).unwrap_err();
    assert_eq!(why, "--reference thread: this run has no server of that name");
}

#[test]
fn a_reference_named_that_the_baseline_lacks_is_refused_when_loading() {
    let dir = util::scratch("baseline-load");
    let old = synthetic(&Run::new(1, 1.0));
    std::fs::write(dir.join("results.json"), serde_json::to_string(&old).unwrap()).unwrap();
    assert!(Baseline::load(&dir, ALL, Some("thread")).is_ok());
    let error = Baseline::load(&dir, ALL, Some("tokio")).unwrap_err().to_string();
    assert!(error.starts_with("--reference tokio: the baseline"), "{error}");
    assert!(
        error.ends_with("has no server of that name (it has mio, mio (control), thread, hybrid)")
    );
}

#[test]
fn too_few_rounds_give_no_verdict_and_the_check_fails_rather_than_pass_blind() {
    let base = baseline(&Run { rounds: 5, ..Run::new(1, 1.0) });
    let new = synthetic(&Run { rounds: 5, own: Some(("thread", 0.5)), ..Run::new(2, 1.4) });
    let changes = baseline::changes(&new, ALL, &base).unwrap();
    assert!(changes.rows.iter().all(|r| r.change.verdict == Verdict::FewRounds));
    let md = section(&new, &base);
    let n = 3 * points();
    assert!(md.contains(&format!("{n} of {n} comparisons had fewer than 8 rounds")), "{md}");
    let error = check_regressions(&new, ALL, &base, 5.0).unwrap_err().to_string();
    assert!(error.contains("in at least 8 rounds of both runs"), "{error}");
}

#[test]
fn a_reference_that_may_have_changed_is_said_at_the_top() {
    let base = baseline(&Run::new(1, 1.0));
    let mut new = synthetic(&Run::new(2, 1.4));
    let md = section(&new, &base);
    assert!(!md.contains("may have changed"), "{md}");
    new.environment.git_commit = Some("0123456789ab".into());
    new.environment.host = "elsewhere".into();
    let md = section(&new, &base);
    let line = md.lines().find(|l| l.starts_with("> **The reference itself may have changed**"));
    let line = line.unwrap_or_else(|| panic!("{md}"));
    assert!(
        line.contains(
            "its code may differ (commit 4b737677bb7e in the baseline, 0123456789ab here)"
        ),
        "{line}"
    );
    assert!(line.contains("another machine (testhost,"), "{line}");
    // The servers still compare: the warning informs, it does not decide.
    assert!(md.contains("No server changed relative to mio (control)"), "{md}");
}
