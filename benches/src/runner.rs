//! The run itself: for each model and scenario, start a fresh server, run every point's
//! repeats while sampling the server tree, stop the server and check it left cleanly.
//!
//! A fresh server per scenario keeps scenarios independent (the idle scenario's memory is not
//! inflated by what the size scenario allocated before) and confines a crash to one scenario.
//! Results are written after every repeat, so nothing measured is ever lost.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;

use crate::generator::{self, duration_arg, interrupted};
use crate::output::Output;
use crate::plan::{Plan, Point};
use crate::procstat::{self, Sampler, Tracker, Usage};
use crate::results::*;
use crate::scenario::{self, Scenario};
use crate::server::Server;
use crate::strace;
use crate::target::{External, Target};
use crate::text::format_duration;
use crate::{Options, metrics, registry};

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
    options: &'a Options,
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
    pub fn new(options: &'a Options, out: &'a Output, results: Results) -> Runner<'a> {
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
    /// run complete or interrupted.
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
            for (i, name) in self.plan().scenarios.clone().iter().enumerate() {
                if interrupted() {
                    break;
                }
                let Some(scenario) = scenario::find(&self.options.scenarios, name) else {
                    anyhow::bail!("the plan names a scenario {name:?} that the harness lacks");
                };
                let missing = scenario.tools().iter().find(|t| !scenario::installed(t));
                let target = match (&external, missing) {
                    (_, Some(tool)) => {
                        self.skip(scenario, format!("skipped: {tool} not installed"))?
                    }
                    (Some(e), None) => self.external(e, scenario)?,
                    (None, None) => self.start(&model, &binary, scenario)?,
                };
                match target {
                    Some(target) => self.scenario(target, scenario)?,
                    None if external.is_none() && !binary.is_file() => {
                        // A missing binary fails every scenario the same way: say it once.
                        let rest = &self.plan().scenarios[i + 1..];
                        let rest = rest.iter().flat_map(|s| self.plan().points_of(s));
                        let rest: u32 = rest.map(|p| self.plan().repeats_of(p)).sum();
                        self.runs_skipped += rest as usize;
                        break;
                    }
                    None => {}
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
        points.map(|p| self.plan().repeats_of(p) as usize).sum()
    }

    /// Starts a fresh server of `model` for `scenario`; `None` (a fault recorded) if it did not
    /// start.
    fn start(
        &mut self,
        model: &str,
        binary: &std::path::Path,
        scenario: &dyn Scenario,
    ) -> Result<Option<Target>> {
        let cpus = self.plan().cpus.server.clone();
        let server_cpus =
            if cpus.is_empty() { crate::cli::allowed_cpus()?.len() } else { cpus.len() };
        let (mut args, workers) = registry::server_args(model, server_cpus, self.plan().workers);
        args.extend(scenario.server_args());
        self.model_mut().scenarios.push(ScenarioResults {
            scenario: scenario.name().to_string(),
            server: ServerRecord { args: args.clone(), workers, ..ServerRecord::default() },
            capacity: None,
            skipped: None,
            points: Vec::new(),
        });
        match Server::start(binary, &args, &cpus) {
            Ok(server) => Ok(Some(Target::Started(server))),
            // A server that says this machine cannot run it (io_uring refused by the kernel
            // or a seccomp profile, say) is skipped here, not counted as a fault.
            Err(fault) if fault.stderr_tail.iter().any(|l| l.contains(" unavailable")) => {
                let said = fault.stderr_tail.iter().find(|l| l.contains(" unavailable"));
                let said = said.cloned().unwrap_or_default();
                self.model_mut().scenarios.pop();
                self.skip(scenario, format!("skipped: {said}"))
            }
            Err(fault) => {
                eprintln!("  {model} server failed to start: {}", fault.detail);
                self.scenario_mut().server.faults.push(fault);
                self.runs_skipped += self.planned_runs(scenario);
                self.save()?;
                Ok(None)
            }
        }
    }

    /// Records `scenario` as not run against the current server, and why.
    fn skip(&mut self, scenario: &dyn Scenario, why: String) -> Result<Option<Target>> {
        eprintln!("  {} {}: {why}", self.model_mut().name, scenario.name());
        self.model_mut().scenarios.push(ScenarioResults {
            scenario: scenario.name().to_string(),
            server: ServerRecord::default(),
            capacity: None,
            skipped: Some(why),
            points: Vec::new(),
        });
        self.runs_skipped += self.planned_runs(scenario);
        self.save()?;
        Ok(None)
    }

    /// The external server `e` as `scenario`'s target, or `None` (the reason recorded) when
    /// the scenario needs a server the harness controls.
    fn external(&mut self, e: &External, scenario: &dyn Scenario) -> Result<Option<Target>> {
        let name = scenario.name();
        if !scenario.server_args().is_empty() {
            return self.skip(
                scenario,
                format!("skipped: {name} starts its server with flags of its own"),
            );
        }
        let needs_pid = scenario.signals_server() || scenario.counts_syscalls();
        if needs_pid && e.pid.is_none() {
            return self.skip(scenario, format!("skipped: {name} needs the server's pid"));
        }
        self.model_mut().scenarios.push(ScenarioResults {
            scenario: name.to_string(),
            server: ServerRecord::default(),
            capacity: None,
            skipped: None,
            points: Vec::new(),
        });
        Ok(Some(Target::External(e.clone())))
    }

    /// Runs one scenario's points against `target`, then stops it if the harness started it.
    fn scenario(&mut self, mut target: Target, scenario: &dyn Scenario) -> Result<()> {
        let points: Vec<Point> = self.plan().points_of(scenario.name()).cloned().collect();
        let planned_runs = self.planned_runs(scenario);
        // A server may finish setting up (worker threads, say) just after its ready line; give
        // it a moment so the baseline is the idle server, not a half-started one.
        std::thread::sleep(SETTLE);
        let baseline = target.pid().and_then(|pid| Tracker::new(pid).snapshot(true).ok());
        let record = &mut self.scenario_mut().server;
        record.address = Some(target.addr().to_string());
        record.pid = target.pid();
        record.baseline = baseline.map(|s| Baseline {
            pss_kib: s.pss_kib.unwrap_or(0),
            threads: s.threads,
            processes: s.processes,
        });

        let mut runs_left = planned_runs;
        let mut capacity = None;
        if let Some(capacity_point) = scenario.capacity_point() {
            capacity = self.capacity(&target, &capacity_point)?;
        }
        'points: for point in points {
            let target_rate = match (point.rate_fraction, capacity) {
                (Some(f), Some(capacity)) => Some((f * capacity).max(1.0).round()),
                (Some(_), None) => break 'points,
                (None, _) => None,
            };
            self.scenario_mut().points.push(PointResults {
                point: point.clone(),
                target_rate,
                repeats: Vec::new(),
                summary: None,
            });
            for index in 1..=self.plan().repeats_of(&point) {
                if interrupted() {
                    break 'points;
                }
                self.progress(&point, index);
                let repeat = self.repeat(&mut target, scenario, &point, target_rate, index);
                runs_left -= 1;
                let died = repeat.status == RepeatStatus::ServerDied;
                let entry = self.scenario_mut().points.last_mut().expect("point pushed");
                entry.repeats.push(repeat);
                entry.summary = Summary::of(&entry.repeats);
                if let Some(m) = entry.repeats.last().and_then(|r| r.metrics.as_ref()) {
                    eprintln!("{}", one_line(m, scenario.unit()));
                }
                self.save()?;
                if died {
                    break 'points;
                }
            }
        }
        self.runs_skipped += runs_left;
        if let Target::Started(server) = target {
            let stopped = server.stop();
            let record = &mut self.scenario_mut().server;
            record.stop_seconds = stopped.seconds;
            record.exit_code = stopped.code;
            record.exit_signal = stopped.signal;
            record.stderr_tail = stopped.stderr_tail;
            for fault in stopped.faults {
                eprintln!("  server fault: {}", fault.detail);
                record.faults.push(fault);
            }
        }
        self.save()
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
                let args = self.loadgen_args(server.addr(), None, probe_point, None, None);
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

    /// One generator run against `server`, with its tree sampled throughout when its pid is
    /// known.
    fn repeat(
        &mut self,
        server: &mut Target,
        scenario: &dyn Scenario,
        point: &Point,
        rate: Option<f64>,
        index: u32,
    ) -> Repeat {
        let model = &self.results.models.last().expect("a model is running").name;
        let name = format!("{model}-{}-{}-r{index}", point.scenario, slug(&point.label));
        let (hlog_abs, hlog_rel) = self.out.hlog_path(&name);
        let args = self.loadgen_args(server.addr(), Some(scenario), point, rate, Some(&hlog_abs));
        let expected = self.plan().warmup + self.plan().duration;
        // The last repeat's connections are closing; a forking server may still be reaping a
        // thousand children, and that teardown must not be measured as this repeat's work.
        if let Some(idle) = self.scenario_mut().server.baseline.as_ref().map(|b| b.processes)
            && let Some(pid) = server.pid()
            && !procstat::wait_for_processes(pid, idle, SETTLE_LIMIT)
        {
            eprintln!("  the server tree had not settled to {idle} processes; measuring anyway");
        }
        let sampler = server.pid().and_then(|pid| Sampler::start(pid).ok());
        let trace = match server.pid() {
            Some(pid) if scenario.counts_syscalls() => {
                let out = self.out.run_dir.join(".strace.txt");
                strace::Trace::attach(pid, &out)
                    .map_err(|e| eprintln!("  cannot count system calls: {e:#}"))
                    .ok()
            }
            _ => None,
        };
        let run = generator::run(&self.loadgen(), &args, &self.out.scratch_json(), expected);
        let snapshots = sampler.map(Sampler::finish).unwrap_or_default();
        let received = run.report.as_ref().map_or(0, |r| r.messages.received);
        let syscalls = trace.and_then(|t| {
            t.finish(received).map_err(|e| eprintln!("  cannot count system calls: {e:#}")).ok()
        });
        let wall = run.ended.duration_since(run.started);
        self.runs_done += 1;
        self.run_seconds += wall.as_secs_f64();

        // The measured window ends just before the generator exits and lasts as long as
        // loadgen says it measured; anchoring at the end keeps connection set-up (seconds, for
        // thousands of idle connections to a forking server) out of the server's CPU figure.
        let measured = run.report.as_ref().map(|r| r.run.measured_secs).filter(|&s| s > 0.0);
        let length = measured.map_or(self.plan().duration, Duration::from_secs_f64);
        let drain = run.report.as_ref().map_or(0.0, |r| r.run.drain_secs.max(0.0));
        let tail = WINDOW_TAIL + Duration::from_secs_f64(drain);
        let to = run.ended.checked_sub(tail).unwrap_or(run.ended).max(run.started);
        let from = to.checked_sub(length).unwrap_or(run.started).max(run.started);
        let usage = Usage::over(&snapshots, from, to);
        let metrics = run.report.as_ref().map(|r| metrics::metrics(r, usage.as_ref()));

        let mut status = if run.interrupted { RepeatStatus::Interrupted } else { RepeatStatus::Ok };
        if let Some(failure) = &run.failure {
            status = RepeatStatus::GeneratorFailed;
            eprintln!("  generator failed: {failure}");
            let fault = Fault {
                kind: FaultKind::GeneratorFailed,
                detail: format!("{}, repeat {index}: {failure}", point.label),
                stderr_tail: Vec::new(),
            };
            self.scenario_mut().server.faults.push(fault);
        }
        if let Some(fault) = server.check_alive() {
            status = RepeatStatus::ServerDied;
            eprintln!("  server died: {}", fault.detail);
            self.scenario_mut().server.faults.push(fault);
        }
        // The base64 histograms are most of a report's bytes and the hlog file holds them
        // already; everything else is kept exactly as loadgen wrote it.
        let mut report = run.report;
        if let Some(report) = report.as_mut() {
            report.histograms = loadgen::report::Histograms::default();
        }
        Repeat {
            index,
            status,
            wall_seconds: wall.as_secs_f64(),
            metrics,
            server: usage,
            hlog: hlog_abs.is_file().then_some(hlog_rel),
            loadgen: report,
            syscalls,
        }
    }

    fn loadgen(&self) -> PathBuf {
        generator::loadgen_binary(&self.options.bin_dir)
    }

    /// The loadgen command line for `point` (of `scenario`, whose own flags come last).
    fn loadgen_args(
        &self,
        addr: &str,
        scenario: Option<&dyn Scenario>,
        point: &Point,
        rate: Option<f64>,
        hlog: Option<&std::path::Path>,
    ) -> Vec<String> {
        let plan = self.plan();
        let mut args = vec![
            "--addr".to_string(),
            addr.to_string(),
            "--connections".into(),
            point.connections.to_string(),
            "--size".into(),
            point.size.to_string(),
            "--warmup".into(),
            duration_arg(plan.warmup),
            "--duration".into(),
            duration_arg(plan.duration),
        ];
        if !plan.cpus.generator.is_empty() {
            let cpus: Vec<String> = plan.cpus.generator.iter().map(|c| c.to_string()).collect();
            args.extend(["--cpus".into(), cpus.join(",")]);
        }
        if point.churn {
            args.push("--churn".into());
        }
        if point.idle > 0 {
            args.extend(["--idle".into(), point.idle.to_string()]);
        }
        if let Some(rate) = rate {
            args.extend(["--rate".into(), format!("{rate:.0}")]);
        }
        if let Some(hlog) = hlog {
            args.extend(["--hlog".into(), hlog.display().to_string()]);
        }
        // The scenario's own flags come last and replace the harness's of the same name.
        let own = scenario.map(|s| s.loadgen_args(point)).unwrap_or_default();
        let mut kept = Vec::with_capacity(args.len() + own.len());
        let mut it = args.into_iter().peekable();
        while let Some(arg) = it.next() {
            let takes_value = it.peek().is_some_and(|next| !next.starts_with("--"));
            if own.contains(&arg) {
                if takes_value {
                    it.next();
                }
                continue;
            }
            kept.push(arg);
        }
        kept.extend(own);
        kept
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
            self.plan().repeats,
            format_duration(self.started.elapsed()),
            format_duration(Duration::from_secs_f64(per_run * left as f64)),
        );
    }

    /// Writes everything measured so far.
    fn save(&mut self) -> Result<()> {
        self.results.elapsed_seconds = self.started.elapsed().as_secs_f64();
        self.results.harness_cpu_seconds = own_cpu_seconds();
        self.out.write(&self.results, &self.options.scenarios, self.options.baseline.as_ref())
    }
}

/// The figures of a repeat on one line, printed as the run goes.
fn one_line(m: &Metrics, per: &str) -> String {
    let cpu = m.server_cpu_per_msg_us.map_or("-".into(), |c| format!("{c:.1} us"));
    let mut line = format!(
        "        {:.0} msgs/s, {:.1} MiB/s, p99 {:.0} us, server CPU {cpu}/{per}, {} errors",
        m.msgs_per_sec, m.mib_per_sec, m.latency_us.p99, m.errors
    );
    if m.generator_saturated {
        line.push_str(", generator saturated");
    }
    line
}

/// A label as a file-name part: "100 conns" becomes "100-conns".
fn slug(label: &str) -> String {
    let s: String =
        label.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    s.split('-').filter(|p| !p.is_empty()).collect::<Vec<_>>().join("-")
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
