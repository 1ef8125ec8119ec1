//! The run itself: for each scenario, start every server it runs (models, the control,
//! external servers), measure each point in rounds that run every server once in a shuffled
//! order (`rounds.rs`), then stop the servers and check they left cleanly.
//!
//! A fresh server per scenario keeps scenarios independent (the idle scenario's memory is not
//! inflated by what the size scenario allocated before) and confines a crash to one scenario;
//! a point that asks for other server flags or CPUs gets a fresh server too (`servers.rs`).
//! The servers not being measured wait idle. Each repeat (`repeat.rs`) may stop the server on
//! a schedule, trace it, and read kernel counters around it. A point identical to an earlier
//! scenario's takes that point's rounds for every server instead of measuring again.
//! Results are written after every repeat, so nothing measured is ever lost; the report is
//! drawn from them once the run is over, by the caller ([`crate::session`]), never from here.

use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;

use crate::generator::{self, interrupted};
// The loop reads a scenario's measuring half only.
use crate::measure::{self, Job, Measure};
use crate::output::Output;
use crate::plan::{Plan, Point};
use crate::results::*;
use crate::server::Server;
use crate::target::Target;
use crate::text::format_duration;
use crate::{metrics, plan, registry};

mod rates;
mod repeat;
mod rounds;
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
    job: &'a Job<'a>,
    out: &'a Output,
    /// Everything measured so far; written after each repeat.
    pub results: Results,
    /// The server the runner is acting for: its index in `results.models`.
    who: usize,
    started: Instant,
    runs_done: usize,
    runs_skipped: usize,
    run_seconds: f64,
    /// Seconds of the plan's least-rounds work done so far, and in all: extra rounds are
    /// allowed while the run is ahead of the budget's share of it (`rounds.rs`).
    planned_done: f64,
    planned_total: f64,
}

/// One server of a scenario and where it stands.
#[derive(Debug)]
struct Live {
    /// Its index in `results.models`.
    who: usize,
    /// The registry model it runs (the control runs its model's), `None` for an external one.
    model: Option<String>,
    /// The running server, once started.
    current: Option<Current>,
    /// It cannot go on in this scenario: it failed to start or died.
    out: bool,
    /// Its closed-loop capacity once measured (`None` inside: it could not be measured).
    capacity: Option<Option<f64>>,
    /// The rate of the current point; `None` for a closed loop.
    rate: Option<f64>,
    /// It runs the current point (a rate it could not be given leaves it out).
    running: bool,
}

impl<'a> Runner<'a> {
    /// Prepares a run whose results start as `results`.
    pub fn new(job: &'a Job<'a>, out: &'a Output, results: Results) -> Runner<'a> {
        let plan = &job.plan;
        let planned_total = plan
            .scenarios
            .iter()
            .flat_map(|s| plan.points_of(s).map(move |p| (s, p)))
            .map(|(s, p)| plan.point_time(p).as_secs_f64() * plan.servers_of(s) as f64)
            .sum();
        Runner {
            job,
            out,
            results,
            who: 0,
            started: Instant::now(),
            runs_done: 0,
            runs_skipped: 0,
            run_seconds: 0.0,
            planned_done: 0.0,
            planned_total,
        }
    }

    fn plan(&self) -> &Plan {
        &self.job.plan
    }

    /// Runs every scenario of the plan against every server it chose (models, the control,
    /// external servers), then marks the run complete or interrupted.
    pub fn run(&mut self) -> Result<()> {
        self.results.seed = Some(self.plan().seed);
        let control = self.plan().control.clone();
        for name in self.plan().server_names() {
            let external = self.plan().external.iter().find(|e| e.name == name).cloned();
            let control_of = control.clone().filter(|m| plan::control_name(m) == name);
            let model = control_of.clone().unwrap_or_else(|| name.clone());
            let binary = self.job.bin_dir.join(registry::binary(&model));
            self.results.models.push(ModelResults {
                name,
                binary: match &external {
                    Some(e) => format!("external, at {}", e.addr),
                    None => binary.display().to_string(),
                },
                external,
                control_of,
                scenarios: Vec::new(),
            });
        }
        let names: Vec<String> = self.plan().scenarios.clone();
        for name in &names {
            if interrupted() {
                break;
            }
            let Some(scenario) = measure::find(&self.job.scenarios, name) else {
                anyhow::bail!("the plan names a scenario {name:?} that the harness lacks");
            };
            self.scenario(scenario)?;
        }
        self.results.status =
            if interrupted() { RunStatus::Interrupted } else { RunStatus::Complete };
        self.results.finished_at = Some(now_rfc3339());
        self.save()
    }

    /// Runs one scenario: every server it chose, started fresh (and again for a point whose
    /// set-up differs), each point in rounds that run every server once in a shuffled order,
    /// then stops them.
    fn scenario(&mut self, scenario: &dyn Measure) -> Result<()> {
        let name = scenario.name();
        let mine: Vec<usize> = (0..self.results.models.len())
            .filter(|&i| self.plan().runs_server(name, &self.results.models[i].name))
            .collect();
        let missing = scenario.tools().iter().find(|t| !measure::installed(t));
        let mut live = Vec::new();
        for who in mine {
            self.who = who;
            let m = &self.results.models[who];
            let (external, control_of) = (m.external.clone(), m.control_of.clone());
            let model = external.is_none().then(|| control_of.unwrap_or_else(|| m.name.clone()));
            if let Some(tool) = missing {
                self.skip(scenario, format!("skipped: {tool} not installed"))?;
                continue;
            }
            let current = match &external {
                Some(e) => match self.external(e, scenario)? {
                    Some(target) => {
                        self.record_start(&target);
                        Some(Current { setup: self.setup(None, scenario, None)?, target })
                    }
                    None => continue,
                },
                None => {
                    self.open_scenario(scenario)?;
                    None
                }
            };
            let running = false;
            live.push(Live {
                who,
                model,
                current,
                out: false,
                capacity: None,
                rate: None,
                running,
            });
        }
        let points: Vec<Point> = self.plan().points_of(name).cloned().collect();
        for point in points {
            if interrupted() || live.iter().all(|l| l.out) {
                break;
            }
            self.prepare(scenario, &point, &mut live)?;
            if self.copy_earlier(&point, &live) {
                continue;
            }
            self.rounds(scenario, &point, &mut live)?;
            self.traced_extra(scenario, &point, &mut live)?;
            self.compare_point(scenario, &point);
            self.save()?;
        }
        for l in &mut live {
            self.who = l.who;
            if let Some(Current { target: Target::Started(server), .. }) = l.current.take() {
                self.stop(server);
            }
        }
        self.save()
    }

    /// Gets every server of the scenario ready for `point`: started, or restarted when the
    /// point's set-up differs; its rate for an open-loop point; its entry in the results.
    /// Rates come last, once every server is up and has its capacity: a rate common to all
    /// (a fraction of the slowest one's, say) needs every server's figure before any runs.
    fn prepare(&mut self, scenario: &dyn Measure, point: &Point, live: &mut [Live]) -> Result<()> {
        let runs = self.plan().runs_of(point) as usize;
        for l in live.iter_mut() {
            self.who = l.who;
            l.running = false;
            if l.out {
                self.runs_skipped += runs;
                continue;
            }
            if let Some(model) = l.model.clone() {
                let setup = self.setup(Some(&model), scenario, Some(point))?;
                if l.current.as_ref().is_none_or(|c| c.setup != setup) {
                    if let Some(Current { target: Target::Started(server), .. }) = l.current.take()
                    {
                        self.stop(server);
                    }
                    let binary = self.job.bin_dir.join(registry::binary(&model));
                    let host =
                        self.plan().remote.as_ref().map_or("127.0.0.1".into(), |r| r.bind_host());
                    match Server::start_on(&binary, &setup.args, &setup.cpus, &host) {
                        Ok(server) => {
                            let target = Target::Started(server);
                            self.record_start(&target);
                            l.current = Some(Current { setup, target });
                        }
                        Err(fault) => {
                            self.start_failed(scenario, fault)?;
                            l.out = true;
                            self.runs_skipped += runs;
                            continue;
                        }
                    }
                }
            }
            if point.rate.is_none() && point.rate_fraction.is_some() && l.capacity.is_none() {
                let current = l.current.as_ref().expect("started or external");
                let found = match scenario.capacity_point() {
                    Some(p) => self.capacity(&current.target, &p)?,
                    None => None,
                };
                l.capacity = Some(found);
            }
            l.running = true;
        }
        let choices = rates::choose(point, &self.capacities(live));
        for (l, choice) in live.iter_mut().zip(choices) {
            if !l.running {
                continue;
            }
            self.who = l.who;
            l.rate = choice.as_ref().and_then(|c| c.rate);
            if point.rate_fraction.is_some() && l.rate.is_none() {
                // No capacity to take a fraction of: the point cannot be offered to it.
                l.running = false;
                self.runs_skipped += runs;
                continue;
            }
            let current = l.current.as_ref().expect("started or external");
            let started = matches!(current.target, Target::Started(_));
            let server = started.then(|| current.setup.clone());
            self.scenario_mut().points.push(PointResults {
                point: point.clone(),
                target_rate: l.rate,
                offered: choice.and_then(|c| c.offered),
                repeats: Vec::new(),
                summary: None,
                merged: None,
                server,
                copied_from: None,
            });
        }
        Ok(())
    }

    /// Each server's name, closed-loop capacity (when measured) and whether it is the control,
    /// in the order of `live`; `None` for a server that is not running the point.
    fn capacities(&self, live: &[Live]) -> Vec<Option<rates::Server>> {
        live.iter()
            .map(|l| {
                let m = &self.results.models[l.who];
                l.running.then(|| rates::Server {
                    name: m.name.clone(),
                    capacity: l.capacity.flatten(),
                    control: m.control_of.is_some(),
                })
            })
            .collect()
    }

    fn planned_runs(&self, scenario: &dyn Measure) -> usize {
        let points = self.plan().points_of(scenario.name());
        points.map(|p| self.plan().runs_of(p) as usize).sum()
    }

    fn model_mut(&mut self) -> &mut ModelResults {
        &mut self.results.models[self.who]
    }

    fn scenario_mut(&mut self) -> &mut ScenarioResults {
        self.model_mut().scenarios.last_mut().expect("a scenario is running")
    }

    fn point_mut(&mut self) -> &mut PointResults {
        self.scenario_mut().points.last_mut().expect("a point is running")
    }

    /// Copies into `point`, for every server running it, the measured repeats of an earlier
    /// scenario's point that asked for the same load of a server started the same way (the
    /// plan says which: [`Plan::measured_before`]), instead of measuring them again. All or
    /// none: the copies keep their rounds, which pair only with rounds measured together, so
    /// one server measured afresh would pair with nothing. `false` if any has no such point.
    fn copy_earlier(&mut self, point: &Point, live: &[Live]) -> bool {
        let mut copies = Vec::new();
        for l in live.iter().filter(|l| l.running) {
            let m = &self.results.models[l.who];
            let Some(earlier) = self.plan().measured_before(point, &m.name) else { return false };
            let setup = m.scenarios.last().and_then(|s| s.points.last()?.server.clone());
            let done = m.scenario(&earlier.scenario).and_then(|s| {
                let p = s.points.iter().find(|p| &p.point == earlier)?;
                let complete = p.repeats.iter().all(|r| r.status == RepeatStatus::Ok);
                let same = p.server == setup;
                let repeats: Vec<Repeat> = measured(&p.repeats).cloned().collect();
                (complete && same && p.summary.is_some()).then_some(repeats)
            });
            let Some(repeats) = done else { return false };
            copies.push((l.who, earlier.clone(), repeats));
        }
        if copies.is_empty() {
            return false;
        }
        for (who, earlier, repeats) in copies {
            self.who = who;
            let name = &self.results.models[who].name;
            eprintln!(
                "  {name} {}: figures of {} {}",
                point.label, earlier.scenario, earlier.label
            );
            self.runs_skipped += self.plan().repeats_of(point) as usize;
            let run_dir = self.out.run_dir.clone();
            let entry = self.point_mut();
            entry.summary = Summary::of(&repeats);
            if entry.target_rate.is_some() {
                entry.merged = merge(&run_dir, &repeats);
            }
            entry.repeats = repeats;
            entry.copied_from = Some(earlier.scenario.clone());
        }
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
                let config = self.loadgen_config(server.addr(), None, each, None);
                let expected = self.plan().warmup + self.plan().duration;
                let run = self.generate(config, probe_point, expected, None);
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
        generator::loadgen_binary(&self.job.bin_dir)
    }

    /// Prints where the run is and how long it has left.
    fn progress(&self, point: &Point, round: u32) {
        let total = self.plan().runs().saturating_sub(self.runs_skipped).max(self.runs_done + 1);
        let left = total.saturating_sub(self.runs_done);
        // Estimate from the runs so far once there are some; the plan's figure before that.
        let per_run = if self.runs_done > 0 {
            self.run_seconds / self.runs_done as f64
                + crate::plan::POINT_OVERHEAD.as_secs_f64() / 2.0
        } else {
            self.plan().run_time().as_secs_f64()
        };
        let (least, most) = (self.plan().repeats_of(point), self.plan().max_rounds_of(point));
        let rounds = if least == most { format!("{most}") } else { format!("{least}-{most}") };
        eprintln!(
            "[{:>3}/{total}] {} · {} · {} · round {round}/{rounds} · {} elapsed, about {} left",
            self.runs_done + 1,
            self.results.models[self.who].name,
            point.scenario,
            point.label,
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

/// The current time as RFC 3339 UTC with milliseconds: when a repeat started.
fn now_rfc3339_millis() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// The current time as RFC 3339 UTC, the form results.json uses.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}
