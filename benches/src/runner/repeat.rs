//! One repeat: the generator run against the server, with everything the point asks for
//! around it (the /proc sampler, strace, the stop schedule, the kernel counters), and the
//! loadgen command line a point turns into.

use std::path::Path;
use std::time::Duration;

use super::{Runner, SETTLE_LIMIT, WINDOW_TAIL};
use crate::generator;
use crate::measure::Measure;
use crate::plan::Point;
use crate::procstat::{self, Sampler, Usage};
use crate::results::*;
use crate::stopper::Stopper;
use crate::target::Target;
use crate::{counters, metrics, strace};

/// What one repeat is: the point, the set-up it runs against, its rate, its number.
#[derive(Debug, Clone, Copy)]
pub(super) struct Each<'p> {
    pub point: &'p Point,
    pub setup: &'p Setup,
    /// Open loop: the total rate to offer.
    pub rate: Option<f64>,
    /// 1-based.
    pub index: u32,
    /// Whether strace is attached to the server.
    pub traced: bool,
}

impl Runner<'_> {
    /// One generator run against `server`, with its tree sampled throughout when its pid is
    /// known, stopped on the point's schedule, traced if asked.
    pub(super) fn repeat(
        &mut self,
        server: &mut Target,
        scenario: &dyn Measure,
        each: Each<'_>,
    ) -> Repeat {
        let Each { point, index, traced, .. } = each;
        let model = slug(&self.results.models[self.who].name);
        let name = format!("{model}-{}-{}-r{index}", point.scenario, slug(&point.label));
        let (hlog_abs, hlog_rel) = self.out.hlog_path(&name);
        let config = self.loadgen_config(server.addr(), Some(scenario), each, Some(&hlog_abs));
        let warmup = if traced || point.burst.is_some() {
            Duration::ZERO
        } else {
            self.plan().warmup_of(point)
        };
        let expected = warmup + self.window(each);
        // The last repeat's connections are closing; a forking server may still be reaping a
        // thousand children, and that teardown must not be measured as this repeat's work.
        if let Some(idle) = self.scenario_mut().server.baseline.as_ref().map(|b| b.processes)
            && let Some(pid) = server.pid()
            && !procstat::wait_for_processes(pid, idle, SETTLE_LIMIT)
        {
            eprintln!("  the server tree had not settled to {idle} processes; measuring anyway");
        }
        let probe = crate::disturb::Probe::start();
        let gen_cpus = &each.setup.generator_cpus;
        let sampler = server.pid().and_then(|pid| Sampler::start_avoiding(pid, gen_cpus).ok());
        // loadgen marks its window's edges and the sampler reads the tree's CPU at each, so
        // the figure covers exactly loadgen's window without walking the tree in between.
        let on_mark = sampler.as_ref().map(|s| {
            let marker = s.marker();
            Box::new(move |mark| marker.mark(mark)) as generator::OnMark
        });
        let trace = match server.pid() {
            Some(pid) if traced => {
                let out = self.out.run_dir.join(".strace.txt");
                strace::Trace::attach(pid, &out)
                    .map_err(|e| eprintln!("  cannot count system calls: {e:#}"))
                    .ok()
            }
            _ => None,
        };
        let names = scenario.counters();
        let before = counters::read(names);
        // The guard resumes the server however this repeat ends, a panic included.
        let stopper = match (point.stops, server.pid()) {
            (Some(stops), Some(pid)) => Some(Stopper::start(pid, stops, expected)),
            _ => None,
        };
        let run = self.generate(config, point, expected, on_mark);
        let stops = stopper.map(Stopper::finish);
        let counters = counters::delta(&before, &counters::read(names));
        let snapshots = sampler.map(Sampler::finish).unwrap_or_default();
        let received = run.report.as_ref().map_or(0, |r| r.messages.received);
        let syscalls = trace.and_then(|t| {
            t.finish(received).map_err(|e| eprintln!("  cannot count system calls: {e:#}")).ok()
        });
        let run_delay = run.report.as_ref().and_then(|r| r.generator.max_thread_run_delay);
        let setup = each.setup;
        let disturbance = probe.finish(&setup.cpus, &setup.generator_cpus, run_delay);
        let wall = run.ended.duration_since(run.started);
        self.runs_done += 1;
        self.run_seconds += wall.as_secs_f64();

        // The measured window ends just before the generator exits and lasts as long as
        // loadgen says it measured; anchoring at the end keeps connection set-up (seconds, for
        // thousands of idle connections to a forking server) out of the server's CPU figure.
        let measured = run.report.as_ref().map(|r| r.run.measured_secs).filter(|&s| s > 0.0);
        let length = measured.map_or(self.plan().duration_of(point), Duration::from_secs_f64);
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
        // already; everything else is kept exactly as loadgen wrote it. The open loop's send
        // lag is in no hlog, so its histogram stays, for the point's merged figures.
        let mut report = run.report;
        if let Some(report) = report.as_mut() {
            let schedule_lag = report.histograms.schedule_lag.take();
            report.histograms = loadgen::report::Histograms { schedule_lag, ..Default::default() };
        }
        Repeat {
            index,
            round: 0,
            started_at: None,
            replaced: None,
            status,
            wall_seconds: wall.as_secs_f64(),
            metrics,
            server: usage,
            hlog: hlog_abs.is_file().then_some(hlog_rel),
            loadgen: report,
            syscalls,
            traced,
            stops,
            counters,
            disturbance: Some(disturbance),
            generators: run.generators,
        }
    }

    /// The measured window of a repeat: the point's, or the shorter one of a traced extra
    /// repeat.
    fn window(&self, each: Each<'_>) -> Duration {
        let extra = each.traced && each.point.trace == crate::plan::Trace::Extra;
        if extra {
            self.plan().traced_window(each.point)
        } else {
            self.plan().duration_of(each.point)
        }
    }

    /// Runs the generator for `point`: this machine's loadgen, or with `--generator` the
    /// generators the launchers reach, in shards when the point can be cut into them
    /// ([`crate::remote`] says which cannot).
    pub(super) fn generate(
        &self,
        config: loadgen::Config,
        point: &Point,
        expected: Duration,
        on_mark: Option<generator::OnMark>,
    ) -> generator::GeneratorRun {
        match self.plan().remote.as_ref().filter(|r| !r.generators.is_empty()) {
            Some(remote) => {
                // Each shard needs a connection: a point with fewer runs on fewer generators.
                let shards = (point.burst.is_none() && point.stops.is_none())
                    .then(|| remote.generators.len().min(config.connections));
                crate::remote::run(remote, &self.loadgen(), config, shards, expected, on_mark)
            }
            None => {
                let json = self.out.scratch_json();
                generator::run_marked(&self.loadgen(), &config.to_args(), &json, expected, on_mark)
            }
        }
    }

    /// The loadgen configuration for a repeat of a point: loadgen's own [`loadgen::Config`],
    /// filled in from the point and then adjusted by `scenario`, which has the last word (the
    /// caller turns it into flags, or into shards).
    pub(super) fn loadgen_config(
        &self,
        addr: &str,
        scenario: Option<&dyn Measure>,
        each: Each<'_>,
        hlog: Option<&Path>,
    ) -> loadgen::Config {
        let point = each.point;
        let plan = self.plan();
        let mut config = loadgen::Config {
            addr: addr.to_string(),
            size: point.size as usize,
            cpus: each.setup.generator_cpus.clone(),
            churn: point.churn,
            idle: point.idle as usize,
            pipeline: point.pipeline.max(1) as usize,
            split_writes: point.split_writes,
            hlog: hlog.map(Path::to_path_buf),
            ..loadgen::Config::default()
        };
        // A `udp:` address is what puts loadgen in its UDP mode (the form echo-udp's ready
        // line prints); there the binary's own default timeout is UDP's, and so is the one
        // the harness starts from.
        let datagram = addr.starts_with("udp:");
        if datagram {
            config.timeout = loadgen::udp::DEFAULT_TIMEOUT;
        }
        match point.burst {
            // A burst has no warm-up and no window: each connection sends one message.
            Some(n) => config.burst = Some(n as usize),
            None => {
                // A traced repeat has no warm-up: every message it echoes is counted, as every
                // system call is.
                let warmup = if each.traced { Duration::ZERO } else { plan.warmup_of(point) };
                config.connections = point.connections as usize;
                config.warmup = whole_millis(warmup);
                config.duration = whole_millis(self.window(each)).max(Duration::from_millis(1));
            }
        }
        if let Some(rate) = each.rate {
            config.rate = Some(rate.round());
            // Whole microseconds, as the harness has always passed it.
            let micros = |d: Duration| Duration::from_micros(d.as_micros() as u64);
            config.send_slack = send_slack(&each.setup.generator_cpus).map(micros);
        }
        if let Some(scenario) = scenario {
            scenario.loadgen(point, &mut config);
            if datagram {
                scenario.datagram(point, &mut config);
            }
        }
        config
    }
}

/// `d` cut to whole milliseconds, the resolution the harness's windows have always had.
fn whole_millis(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

/// The figures of a repeat on one line, printed as the run goes.
pub(super) fn one_line(m: &Metrics, per: &str) -> String {
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

/// The open loop's send slack for the whole comparison: the one loadgen would choose on this
/// machine, measured once, on a thread pinned where the generator runs (`cpus`, the first
/// open-loop point's; anywhere when empty). Left to each run, it would be measured anew every
/// time and vary with the machine's noise, and repeats and models would meet differently
/// bunched sends; measured on the harness's own unpinned thread it came out twice what the
/// pinned generator measured (27 against 12 us).
fn send_slack(cpus: &[usize]) -> Option<std::time::Duration> {
    static SLACK: std::sync::OnceLock<Option<std::time::Duration>> = std::sync::OnceLock::new();
    *SLACK.get_or_init(|| {
        let cpus = cpus.to_vec();
        let measure = move || {
            if let Some(&cpu) = cpus.first() {
                let mut set = nix::sched::CpuSet::new();
                // A CPU it cannot be pinned to leaves the thread where it is: the figure is
                // then as rough as an unpinned one, not missing.
                if set.set(cpu).is_ok() {
                    let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set);
                }
            }
            loadgen::auto_send_slack().ok()
        };
        std::thread::spawn(measure).join().ok().flatten()
    })
}
