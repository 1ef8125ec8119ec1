//! Extension by addition: a scenario written here, through the public traits alone, is planned
//! from the command line's flags, run against a real server (echo-mio) with the real loadgen,
//! and rendered into the report with its own table, findings and chart. No other file knows it.

use anyhow::Result;
use harness::CompareArgs;
use harness::charts::Charts;
use harness::plan::{Point, Profile};
use harness::scenario::{self, Column, Measure, Present, Scenario, View, col};

mod util;
use util::{bin_dir, built};

/// Two connections of 32-byte messages, each connection also holding 3 idle ones.
#[derive(Debug)]
struct Throwaway;

impl Measure for Throwaway {
    fn name(&self) -> &'static str {
        "throwaway"
    }

    fn points(&self, _profile: Profile, _given: Option<&str>) -> Result<Vec<Point>> {
        let p = Point::closed(self.name(), 2, 32);
        Ok(vec![Point { idle: 3, ..p }.named("2 busy", 2.0)])
    }

    fn loadgen(&self, _point: &Point, config: &mut loadgen::Config) {
        config.timeout = std::time::Duration::from_secs(2);
    }
}

impl Present for Throwaway {
    fn question(&self) -> &'static str {
        "Does a scenario from outside the crate run?"
    }

    fn setup(&self) -> String {
        "Two connections, 32-byte messages, three idle ones beside them.".into()
    }

    fn columns(&self) -> Vec<Column> {
        vec![col::RATE, ("sent", |c| format!("{:.0}", c.summary.median.sent))]
    }

    fn findings(&self, view: &View<'_>) -> Vec<String> {
        let at = view.deciding().map(|(_, at)| at).unwrap_or_default();
        at.iter().map(|(m, s)| format!("{m} echoed {} messages", s.median.received)).collect()
    }

    fn charts(&self, view: &View<'_>, charts: &mut Charts) -> Result<()> {
        let s = view.series(|m| Some(m.msgs_per_sec));
        charts.bars(self.name(), "throwaway.svg", "Throwaway rate", "busy", "msgs/s", &s)
    }
}

#[test]
fn a_scenario_added_through_the_trait_is_planned_run_and_rendered() {
    let bin = bin_dir("extend");
    std::os::unix::fs::symlink(built("echobench-mio", "echo-mio"), bin.join("echo-mio")).unwrap();
    let out = bin.join("results");
    let mine: &'static dyn Scenario = &Throwaway;
    let mut list = scenario::ALL.to_vec();
    list.push(mine);
    let argv =
        ["compare", "--models", "mio", "--scenarios", "throwaway", "--placement", "unpinned"]
            .into_iter()
            .chain(["--warmup", "100ms", "--duration", "400ms", "--repeats", "1"])
            .map(String::from)
            .chain(["--bin-dir".into(), bin.display().to_string()])
            .chain(["--out".into(), out.display().to_string()]);
    let mut options = CompareArgs::from_argv(argv).unwrap().options_with(&list).unwrap();
    options.handle_ctrl_c = false;
    assert_eq!(options.plan.scenarios, ["throwaway"]);
    assert_eq!(options.plan.points.len(), 1, "planned from the trait's points");

    let outcome = harness::run(&options).unwrap();
    let point = &outcome.results.models[0].scenarios[0].points[0];
    let summary = point.summary.as_ref().expect("the point was measured");
    assert!(summary.median.received > 0.0, "echo-mio echoed the throwaway load");
    assert_eq!(summary.errors, 0.0);
    let loadgen = point.repeats[0].loadgen.as_ref().expect("loadgen's report is kept");
    assert_eq!(loadgen.connections.idle_opened, 3, "the point's idle ballast was opened");
    assert_eq!(loadgen.config.timeout.as_secs(), 2, "the scenario's own loadgen flags");

    let latest = outcome.latest_dir.expect("a standard run writes latest/");
    let md = [latest.join("report.md"), latest.join("details.md")]
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .concat();
    assert!(md.contains("## throwaway: Does a scenario from outside the crate run?"), "{md}");
    // The table keeps the headline's column (every other one is in results.csv), turned so
    // that the models are its columns.
    assert!(md.contains("| figure | point | mio | mio (control) |"), "{md}");
    assert!(md.contains("| msgs/s | 2 busy | "), "{md}");
    assert!(md.contains("- mio echoed "), "its findings: {md}");
    assert!(md.contains("![Throwaway rate](charts/throwaway.svg)"), "{md}");
    assert!(latest.join("charts/throwaway.svg").is_file());
    let _ = std::fs::remove_dir_all(&bin);
}
