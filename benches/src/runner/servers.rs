//! The servers a scenario runs against: how a model's server is set up for a point (its
//! flags, CPUs and workers), starting it, recording its idle baseline, stopping it and
//! recording how it went; and the cases where a scenario is not run (a missing tool, an
//! external server it cannot restart or signal).

use anyhow::Result;

use super::{Runner, SETTLE};
use crate::measure::Measure;
use crate::plan::Point;
use crate::procstat::Tracker;
use crate::registry;
use crate::results::*;
use crate::server::Server;
use crate::target::{External, Target};

impl Runner<'_> {
    /// How the server of `model` (or an external one, `None`) runs for `point` of `scenario`
    /// (`None`: the scenario's own set-up): the model's flags and worker count for the CPUs
    /// it is given, the scenario's flags, the point's flags.
    pub(super) fn setup(
        &self,
        model: Option<&str>,
        scenario: &dyn Measure,
        point: Option<&Point>,
    ) -> Result<Setup> {
        let cpus = point.and_then(|p| p.cpus.clone()).unwrap_or_else(|| self.plan().cpus.clone());
        let Some(model) = model else {
            return Ok(Setup { generator_cpus: cpus.generator, ..Setup::default() });
        };
        let count = if cpus.server.is_empty() {
            crate::env::allowed_cpus()?.len()
        } else {
            cpus.server.len()
        };
        // A point that places the server itself (cores) has its workers follow its CPUs,
        // whatever the registry's default (uring's one ring, say), unless --workers says.
        let own = point.is_some_and(|p| p.cpus.is_some());
        let asked = self.plan().workers.or(own.then_some(count as u32));
        let (mut args, workers) = registry::server_args(model, count, asked);
        args.extend(scenario.server_args());
        args.extend(point.iter().flat_map(|p| p.server_args.iter().cloned()));
        Ok(Setup { args, cpus: cpus.server, generator_cpus: cpus.generator, workers })
    }

    /// Opens the current server's record of `scenario` (a model's: its server starts with
    /// the scenario's first point).
    pub(super) fn open_scenario(&mut self, scenario: &dyn Measure) -> Result<()> {
        let model = self.results.models[self.who].control_of.clone();
        let model = model.unwrap_or_else(|| self.results.models[self.who].name.clone());
        let first = self.plan().points_of(scenario.name()).next().cloned();
        let setup = self.setup(Some(&model), scenario, first.as_ref())?;
        self.model_mut().scenarios.push(ScenarioResults {
            scenario: scenario.name().to_string(),
            server: ServerRecord {
                args: setup.args.clone(),
                workers: setup.workers,
                ..ServerRecord::default()
            },
            capacity: None,
            skipped: None,
            points: Vec::new(),
            notes: Vec::new(),
        });
        Ok(())
    }

    /// Records that the current server did not start for `scenario`: a fault, except for a
    /// server that says this machine cannot run it (io_uring refused by the kernel or a
    /// seccomp profile, say), which is skipped instead.
    pub(super) fn start_failed(&mut self, scenario: &dyn Measure, fault: Fault) -> Result<()> {
        let said = fault.stderr_tail.iter().find(|l| l.contains(" unavailable")).cloned();
        if let Some(said) = said {
            let points = self.scenario_mut().points.len();
            if points == 0 {
                self.model_mut().scenarios.pop();
                return self.skip(scenario, format!("skipped: {said}"));
            }
        }
        eprintln!("  {} server failed to start: {}", self.model_mut().name, fault.detail);
        self.scenario_mut().server.faults.push(fault);
        self.save()
    }

    /// Records `scenario` as not run against the current server, and why.
    pub(super) fn skip(&mut self, scenario: &dyn Measure, why: String) -> Result<()> {
        eprintln!("  {} {}: {why}", self.model_mut().name, scenario.name());
        self.model_mut().scenarios.push(ScenarioResults {
            scenario: scenario.name().to_string(),
            server: ServerRecord::default(),
            capacity: None,
            skipped: Some(why),
            points: Vec::new(),
            notes: Vec::new(),
        });
        self.runs_skipped += self.planned_runs(scenario);
        self.save()
    }

    /// The external server `e` as `scenario`'s target, or `None` (the reason recorded) when
    /// the scenario needs a server the harness controls.
    pub(super) fn external(
        &mut self,
        e: &External,
        scenario: &dyn Measure,
    ) -> Result<Option<Target>> {
        let name = scenario.name();
        let points: Vec<&Point> = self.plan().points_of(name).collect();
        let flags = !scenario.server_args().is_empty()
            || points.iter().any(|p| !p.server_args.is_empty() || p.cpus.is_some());
        let needs_pid = points.iter().any(|p| p.trace != crate::plan::Trace::None);
        if points.iter().any(|p| p.stops.is_some()) {
            // SIGSTOP goes to a process group the harness made; a server the user started is
            // no such group, and one the harness stopped and then could not resume (killed
            // itself) would stay stopped for good.
            let why = format!("skipped: {name} stops its server, which it does only to its own");
            self.skip(scenario, why)?;
            return Ok(None);
        }
        if flags {
            let why = format!("skipped: {name} starts its server with flags or CPUs of its own");
            self.skip(scenario, why)?;
            return Ok(None);
        }
        if needs_pid && e.pid.is_none() {
            self.skip(scenario, format!("skipped: {name} needs the server's pid"))?;
            return Ok(None);
        }
        self.model_mut().scenarios.push(ScenarioResults {
            scenario: name.to_string(),
            server: ServerRecord::default(),
            capacity: None,
            skipped: None,
            points: Vec::new(),
            notes: Vec::new(),
        });
        Ok(Some(Target::External(e.clone())))
    }

    /// Takes the idle baseline of a server that just started and records where it listens.
    pub(super) fn record_start(&mut self, target: &Target) {
        // A server may finish setting up (worker threads, say) just after its ready line; give
        // it a moment so the baseline is the idle server, not a half-started one.
        std::thread::sleep(SETTLE);
        let baseline = target.pid().and_then(|pid| Tracker::new(pid).snapshot(true).ok());
        let record = &mut self.scenario_mut().server;
        if record.address.is_some() {
            // A restart for another point: the scenario's record keeps its first server.
            return;
        }
        record.address = Some(target.addr().to_string());
        record.pid = target.pid();
        record.baseline = baseline.map(|s| Baseline {
            pss_kib: s.pss_kib.unwrap_or(0),
            threads: s.threads,
            processes: s.processes,
        });
    }

    /// Stops a server the harness started and records how it went: the last one's exit in
    /// the scenario's record, every one's faults.
    pub(super) fn stop(&mut self, server: Server) {
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
}
