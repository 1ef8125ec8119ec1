//! The run itself: for each model and scenario, start a fresh server, run every point's
//! repeats while sampling the server tree, stop the server and check it left cleanly.
//!
//! A fresh server per scenario keeps scenarios independent (the idle scenario's memory is not
//! inflated by what the size scenario allocated before) and confines a crash to one scenario;
//! a point that asks for other server flags or CPUs gets a fresh server too (`servers.rs`).
//! Each repeat (`repeat.rs`) may stop the server on a schedule, trace it, and read kernel
//! counters around it. A point identical to an earlier
//! scenario's for the same model takes that point's repeats instead of measuring again.
//! Results are written after every repeat, so nothing measured is ever lost; the report is
//! drawn from them once the run is over, by the caller ([`crate::session`]), never from here.

use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;

use crate::generator::{self, interrupted};
// The loop reads a scenario's measuring half only, under the names it always used.
use crate::measure::{self as scenario, Job as Options, Measure as Scenario};
use crate::output::Output;
use crate::plan::{Plan, Point};
use crate::results::*;
use crate::server::Server;
use crate::target::{External, Target};
use crate::text::format_duration;
use crate::{metrics, registry};

mod repeat;
mod servers;
use repeat::Each;

/// How far before the generator's exit, besides the drain it reports, the measured window is
/// taken to end: loadgen writes its files and closes its connections in the meantime.
const WINDOW_TAIL: Duration = Duration::from_millis(100);

/// Longest wait, before a repeat, for the server tree to shrink back to its idle size.
const SETTLE_LIMIT: Duration = Duration::from_secs(5);

/// Pause between a server's ready line and the reading of its idle baseline.
const SETTLE: Duration = Duration::from_millis(200);

/// Drives one run and keeps its results.
#[derive(Debug)]
pub struct Runner<'a> {
    options: &'a Options<'a>,
    out: &'a Output,
    /// Everything measured so far; written after each repeat.
    pub results: Results,
    started: Instant,
    runs_done: usize,
    runs_skipped: usize,
    run_seconds: f64,
}

impl<'a> Runner<'a> {
    /// Prepares a run whose results start as `results`.
    pub fn new(options: &'a Options<'a>, out: &'a Output, results: Results) -> Runner<'a> {
        Runner {
            options,
            out,
            results,
            started: Instant::now(),
            runs_done: 0,
            runs_skipped: 0,
            run_seconds: 0.0,
        }
    }

    fn plan(&self) -> &Plan {
        &self.options.plan
    }

    /// Runs every model and scenario of the plan, then every external server, then marks the
    /// run complete or interrupted. A scenario runs only the servers it chose (the plan
    /// records the choice); the others are simply absent from its results.
    pub fn run(&mut self) -> Result<()> {
        let externals = self.plan().external.clone();
        let models = self.plan().models.iter().map(|m| (m.clone(), None));
        let all: Vec<(String, Option<External>)> =
            models.chain(externals.into_iter().map(|e| (e.name.clone(), Some(e)))).collect();
        for (model, external) in all {
            let binary = self.options.bin_dir.join(registry::binary(&model));
            self.results.models.push(ModelResults {
                name: model.clone(),
                binary: match &external {
                    Some(e) => format!("external, at {}", e.addr),
                    None => binary.display().to_string(),
                },
                external: external.clone(),
                scenarios: Vec::new(),
            });
            let names: Vec<String> = self.plan().scenarios.clone();
            let mine: Vec<&String> =
                names.iter().filter(|s| self.plan().runs_server(s, &model)).collect();
            for (i, name) in mine.iter().enumerate() {
                if interrupted() {
                    break;
                }
                let Some(scenario) = scenario::find(&self.options.scenarios, name) else {
                    anyhow::bail!("the plan names a scenario {name:?} that the harness lacks");
                };
                let missing = scenario.tools().iter().find(|t| !scenario::installed(t));
                let started = match (&external, missing) {
                    (_, Some(tool)) => {
                        self.skip(scenario, format!("skipped: {tool} not installed"))?;
                        true
                    }
                    (Some(e), None) => {
                        if let Some(target) = self.external(e, scenario)? {
                            let setup = self.setup(None, scenario, None)?;
                            self.points(scenario, Current { setup, target }, None)?;
                        }
                        true
                    }
                    (None, None) => self.model_scenario(&model, &binary, scenario)?,
                };
                if !started && !binary.is_file() {
                    // A missing binary fails every scenario the same way: say it once.
                    let rest = mine[i + 1..].iter().flat_map(|s| self.plan().points_of(s));
                    let rest: u32 = rest.map(|p| self.plan().runs_of(p)).sum();
                    self.runs_skipped += rest as usize;
                    break;
                }
            }
        }
        self.results.status =
            if interrupted() { RunStatus::Interrupted } else { RunStatus::Complete };
        self.results.finished_at = Some(now_rfc3339());
        self.save()
    }

    fn model_mut(&mut self) -> &mut ModelResults {
        self.results.models.last_mut().expect("a model is running")
    }

    fn scenario_mut(&mut self) -> &mut ScenarioResults {
        self.model_mut().scenarios.last_mut().expect("a scenario is running")
    }

    fn planned_runs(&self, scenario: &dyn Scenario) -> usize {
        let points = self.plan().points_of(scenario.name());
        points.map(|p| self.plan().runs_of(p) as usize).sum()
    }

    /// Runs one scenario's points, starting with `current` and restarting a started model's
    /// server (`model`: its name and binary) when a point's set-up differs; then stops it.
    fn points(
        &mut self,
        scenario: &dyn Scenario,
        mut current: Current,
        model: Option<(&str, &std::path::Path)>,
    ) -> Result<()> {
        let points: Vec<Point> = self.plan().points_of(scenario.name()).cloned().collect();
        let mut runs_left = self.planned_runs(scenario);
        self.record_start(&current.target);
        let mut capacity: Option<Option<f64>> = None;
        'points: for point in points {
            if let Some((name, binary)) = model {
                let setup = self.setup(Some(name), scenario, Some(&point))?;
                if current.setup != setup {
                    if let Target::Started(server) = current.target {
                        self.stop(server);
                    }
                    match Server::start(binary, &setup.args, &setup.cpus) {
                        Ok(server) => current = Current { setup, target: Target::Started(server) },
                        Err(fault) => {
                            eprintln!("  {name} server failed to start: {}", fault.detail);
                            self.scenario_mut().server.faults.push(fault);
                            self.runs_skipped += runs_left;
                            return self.save();
                        }
                    }
                    std::thread::sleep(SETTLE);
                }
            }
            let target_rate = match (point.rate, point.rate_fraction) {
                (Some(rate), _) => Some(rate),
                (None, Some(f)) => {
                    if capacity.is_none() {
                        let probe = scenario.capacity_point();
                        let found = match probe {
                            Some(p) => self.capacity(&current.target, &p)?,
                            None => None,
                        };
                        capacity = Some(found);
                    }
                    match capacity.flatten() {
                        Some(c) => Some((f * c).max(1.0).round()),
                        None => break 'points,
                    }
                }
                (None, None) => None,
            };
            let setup = current.setup.clone();
            let started = matches!(current.target, Target::Started(_));
            self.scenario_mut().points.push(PointResults {
                point: point.clone(),
                target_rate,
                repeats: Vec::new(),
                summary: None,
                server: started.then_some(setup.clone()),
                copied_from: None,
            });
            let measured = self.plan().repeats_of(&point);
            let copied = self.copy_earlier(&point, &setup);
            if copied {
                runs_left -= measured as usize;
            }
            for index in 1..=self.plan().runs_of(&point) {
                if interrupted() {
                    break 'points;
                }
                if copied && index <= measured {
                    continue;
                }
                let traced = point.traced(index, measured);
                if traced && !scenario::installed("strace") {
                    let note = "calls/msg skipped: strace not installed".to_string();
                    eprintln!("  {note}");
                    if !self.scenario_mut().notes.contains(&note) {
                        self.scenario_mut().notes.push(note);
                    }
                    runs_left -= 1;
                    continue;
                }
                self.progress(&point, index);
                let each = Each { point: &point, setup: &setup, rate: target_rate, index, traced };
                let repeat = self.repeat(&mut current.target, scenario, each);
                runs_left -= 1;
                let died = repeat.status == RepeatStatus::ServerDied;
                let entry = self.scenario_mut().points.last_mut().expect("point pushed");
                entry.repeats.push(repeat);
                entry.summary = Summary::of(&entry.repeats);
                if let Some(m) = entry.repeats.last().and_then(|r| r.metrics.as_ref()) {
                    eprintln!("{}", repeat::one_line(m, scenario.unit()));
                }
                self.save()?;
                if died {
                    break 'points;
                }
            }
        }
        self.runs_skipped += runs_left;
        if let Target::Started(server) = current.target {
            self.stop(server);
        }
        self.save()
    }

    /// Copies into the current point the measured repeats of an earlier scenario's point of
    /// this model that asked for the same load of a server started the same way (the plan
    /// says which: [`Plan::measured_before`]), instead of measuring them again. `false` if
    /// there is none, or it did not complete.
    fn copy_earlier(&mut self, point: &Point, setup: &Setup) -> bool {
        let model = self.results.models.last().expect("a model is running").name.clone();
        let Some(earlier) = self.plan().measured_before(point, &model).cloned() else {
            return false;
        };
        let done = self.results.models.last().and_then(|m| {
            let s = m.scenario(&earlier.scenario)?;
            let p = s.points.iter().find(|p| p.point == earlier)?;
            let complete = p.repeats.iter().all(|r| r.status == RepeatStatus::Ok);
            let same = p.server.as_ref() == Some(setup);
            let repeats: Vec<Repeat> = measured(&p.repeats).cloned().collect();
            (complete && same && p.summary.is_some()).then_some(repeats)
        });
        let Some(repeats) = done else { return false };
        eprintln!("  {} {}: figures of {} {}", model, point.label, earlier.scenario, earlier.label);
        let entry = self.scenario_mut().points.last_mut().expect("point pushed");
        entry.summary = Summary::of(&repeats);
        entry.repeats = repeats;
        entry.copied_from = Some(earlier.scenario.clone());
        true
    }

    /// The closed-loop throughput a scenario's rate fractions refer to: the median of this
    /// model's earlier point with the same load (scale's), or else a short probe.
    fn capacity(&mut self, server: &Target, probe_point: &Point) -> Result<Option<f64>> {
        let earlier = self.model_mut().scenarios.iter().flat_map(|s| s.points.iter());
        let from_earlier = earlier
            .filter(|p| p.point.same_load(probe_point))
            .find_map(|p| p.summary.as_ref())
            .map(|s| s.median.msgs_per_sec)
            .filter(|&r| r > 0.0);
        let capacity = match from_earlier {
            Some(rate) => Some(Capacity { msgs_per_sec: rate, source: CapacitySource::Scale }),
            None => {
                eprintln!("  probing capacity at {}", probe_point.label);
                let setup = Setup {
                    generator_cpus: self.plan().cpus.generator.clone(),
                    ..Setup::default()
                };
                let each =
                    Each { point: probe_point, setup: &setup, rate: None, index: 0, traced: false };
                let args = self.loadgen_args(server.addr(), None, each, None);
                let expected = self.plan().warmup + self.plan().duration;
                let run =
                    generator::run(&self.loadgen(), &args, &self.out.scratch_json(), expected);
                let rate = run.report.as_ref().map(|r| metrics::metrics(r, None));
                if let Some(failure) = run.failure {
                    self.scenario_mut().server.faults.push(Fault {
                        kind: FaultKind::GeneratorFailed,
                        detail: format!("capacity probe failed: {failure}"),
                        stderr_tail: server.stderr_tail(),
                    });
                }
                rate.map(|m| Capacity {
                    msgs_per_sec: m.msgs_per_sec,
                    source: CapacitySource::Probe,
                })
            }
        };
        self.scenario_mut().capacity = capacity;
        Ok(capacity.map(|c| c.msgs_per_sec))
    }

    fn loadgen(&self) -> std::path::PathBuf {
        generator::loadgen_binary(&self.options.bin_dir)
    }

    /// Prints where the run is and how long it has left.
    fn progress(&self, point: &Point, index: u32) {
        let total = self.plan().runs().saturating_sub(self.runs_skipped);
        let left = total.saturating_sub(self.runs_done);
        // Estimate from the runs so far once there are some; the plan's figure before that.
        let per_run = if self.runs_done > 0 {
            self.run_seconds / self.runs_done as f64
                + crate::plan::POINT_OVERHEAD.as_secs_f64() / 2.0
        } else {
            self.plan().run_time().as_secs_f64()
        };
        let model = &self.results.models.last().expect("a model is running").name;
        eprintln!(
            "[{:>3}/{total}] {model} · {} · {} · repeat {index}/{} · {} elapsed, about {} left",
            self.runs_done + 1,
            point.scenario,
            point.label,
            self.plan().runs_of(point),
            format_duration(self.started.elapsed()),
            format_duration(Duration::from_secs_f64(per_run * left as f64)),
        );
    }

    /// Writes everything measured so far (results.json only: the report is drawn at the end).
    fn save(&mut self) -> Result<()> {
        self.results.elapsed_seconds = self.started.elapsed().as_secs_f64();
        self.results.harness_cpu_seconds = own_cpu_seconds();
        self.out.save(&self.results)
    }
}

/// The server a scenario's points run against, and how it was set up.
#[derive(Debug)]
struct Current {
    setup: Setup,
    target: Target,
}

/// CPU seconds this process has used (its sampling threads included, its children not): the
/// harness's own footprint on the machine it measures.
fn own_cpu_seconds() -> f64 {
    use nix::sys::resource::{UsageWho, getrusage};
    getrusage(UsageWho::RUSAGE_SELF).map_or(0.0, |u| {
        let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
        t(u.user_time()) + t(u.system_time())
    })
}

/// The current time as RFC 3339 UTC, the form results.json uses.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}
