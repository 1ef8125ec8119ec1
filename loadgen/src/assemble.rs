//! Turning what the threads measured into a [`Report`]: totals, rates over the real measured
//! window, percentiles, and the verdict on whether the generator itself was the bottleneck.

use std::time::SystemTime;

use crate::config::{Config, Mode};
use crate::cpu::CpuTime;
use crate::env::Environment;
use crate::idle::Idle;
use crate::meter::ThreadResult;
use crate::pace::Pacing;
use crate::report::{
    Connections, Datagrams, Errors, Generator, Histograms, KernelUdp, Messages, PinnedCpu, Report,
    RunInfo, SCHEMA_VERSION, Throughput,
};
use crate::stats::{self, Counters, Latency, Recorder};
use crate::target::Target;

/// A load thread that used, or waited for, more than this share of a CPU may be what limits
/// the result; so may a pinned CPU that ran load threads this share of the time.
const SATURATED_UTILIZATION: f64 = 0.9;
/// A load thread that waited for a CPU more than this share of the time was starved: its
/// sends left late and its echoes were read late, whatever its own CPU use.
const SATURATED_RUN_DELAY: f64 = 0.1;
/// An open loop whose 99th-percentile send lag exceeds this has fallen behind its schedule.
const SATURATED_LAG_US: f64 = 1_000.0;

/// Everything the coordinator gathered.
#[derive(Debug)]
pub struct Parts<'a> {
    pub config: &'a Config,
    pub target: &'a Target,
    pub started_at: SystemTime,
    /// When the warm-up began (the threads' clock started), on the wall clock; `None` if the
    /// run never got that far.
    pub began_at: Option<SystemTime>,
    pub environment: Environment,
    pub results: Vec<ThreadResult>,
    pub total: Recorder,
    pub interrupted: bool,
    pub idle: Idle,
    pub process_cpu: CpuTime,
    /// Open loop: how early sends could leave, and why.
    pub pacing: Option<Pacing>,
    /// How long past the warm-up the window waited for connections' first echoes.
    pub window_wait_ns: u64,
    /// UDP mode: how much the kernel's UDP counters rose during the run.
    pub udp_kernel: Option<KernelUdp>,
}

pub fn report(p: Parts<'_>) -> Report {
    let config = p.config;
    let mode = config.mode();
    let mut counters = Counters::default();
    let mut cpu = CpuTime::default();
    let mut udp = crate::udp::Counters::default();
    for r in &p.results {
        counters.add(&r.counters);
        cpu = cpu.add(&r.cpu);
        udp.add(&r.udp);
    }
    let load = ThreadLoad::of(&p.results);
    let measure_ns = config.warmup.as_nanos() as u64 + p.window_wait_ns;
    let stopped_ns = p.results.iter().map(|r| r.stopped_ns).max().unwrap_or(0);
    let finished_ns = p.results.iter().map(|r| r.finished_ns).max().unwrap_or(0);
    let measured_secs = stopped_ns.saturating_sub(measure_ns) as f64 / 1e9;
    let per_sec = |n: u64| if measured_secs > 0.0 { n as f64 / measured_secs } else { 0.0 };
    let size = config.size as u64;

    // Failures join the reported latency; the uncorrected one keeps the echoed messages only.
    let mut total = p.total;
    // Histograms of one shape always add; should that ever fail, the report says so in the
    // latency's count rather than losing the run.
    let _ = total.fold_failures(mode == Mode::Open);
    let latency = Latency::of(&total.corrected);
    let uncorrected_hist = &total.uncorrected;
    let schedule_lag = (mode == Mode::Open).then(|| Latency::of(&total.lag));

    let mut saturation = load.verdict();
    for (thread, r) in p.results.iter().enumerate() {
        if let Some(trouble) = &r.trouble {
            saturation.push(format!("load thread {thread}: {trouble}"));
        }
    }
    if mode == Mode::Open && counters.backlogged > 0 {
        saturation.push(format!(
            "the open loop could not keep to its schedule: {} of {} messages due never reached \
             the socket (the server took bytes too slowly, or connections failed), so less load \
             was offered than asked",
            counters.backlogged, counters.scheduled
        ));
    }
    if let Some(lag) = &schedule_lag
        && lag.p99 > SATURATED_LAG_US
    {
        saturation.push(format!(
            "the open loop fell behind its schedule (99% of sends within {:.0} us of their time)",
            lag.p99
        ));
    }

    let throughput = Throughput {
        // Arrivals inside the window only: echoes that straggle in during the drain were
        // served after it, and dividing them by the window's length would overstate the rate.
        msgs_per_sec: per_sec(counters.received_in_window),
        mib_per_sec: per_sec(counters.received_in_window * size) / (1 << 20) as f64,
        // The rate offered in the window: what was carried over from warm-up went out before.
        sent_per_sec: per_sec(counters.sent - counters.carried_sent),
        target_msgs_per_sec: config.rate,
        achieved_ratio: config
            .rate
            .map(|rate| per_sec(counters.sent - counters.carried_sent) / rate),
    };
    // The ballast is opened before the load threads start, so its error comes first.
    let first_warmup_error =
        p.idle.first_error.or_else(|| p.results.iter().find_map(|r| r.first_warmup_error.clone()));
    Report {
        schema_version: SCHEMA_VERSION,
        tool: crate::tool(),
        started_at: humantime::format_rfc3339_millis(p.started_at).to_string(),
        mode,
        target: p.target.to_string(),
        config: config.clone(),
        run: RunInfo {
            began_at: p.began_at.map(|at| humantime::format_rfc3339_micros(at).to_string()),
            warmup_secs: config.warmup.as_secs_f64(),
            window_wait_secs: p.window_wait_ns as f64 / 1e9,
            measured_secs,
            drain_secs: finished_ns.saturating_sub(stopped_ns) as f64 / 1e9,
            interrupted: p.interrupted,
            short: measured_secs < config.duration.as_secs_f64() * 0.99,
        },
        throughput,
        messages: Messages {
            sent: counters.sent,
            received: counters.received,
            received_in_window: counters.received_in_window,
            not_sent: counters.not_sent,
            backlogged: counters.backlogged,
            scheduled: counters.scheduled,
            carried_over: counters.carried,
            bytes_sent: counters.sent * size,
            bytes_received: counters.received * size,
        },
        latency_us: latency,
        latency_us_uncorrected: Latency::of(uncorrected_hist),
        connect_latency_us: (mode == Mode::Churn).then(|| Latency::of(&total.connect)),
        schedule_lag_us: schedule_lag,
        errors: Errors {
            connect: counters.connect_errors,
            io: counters.io_errors,
            timeout: counters.timeout,
            mismatch: counters.mismatch,
            lost: counters.lost,
            first_error: p.results.iter().find_map(|r| r.first_error.clone()),
            first_warmup_error,
            first_mismatch: p.results.iter().find_map(|r| r.first_mismatch.clone()),
        },
        connections: Connections {
            requested: config.connections,
            up_at_start: p.results.iter().map(|r| r.initial_up).sum(),
            established: counters.connects,
            idle_requested: p.idle.requested,
            idle_opened: p.idle.streams.len(),
            idle_closed_by_server: p.idle.closed_by_server,
            idle_echoed: p.idle.echoed,
        },
        generator: Generator {
            threads: p.results.len(),
            cpus: config.cpus.clone(),
            cpu_seconds: cpu.total().as_secs_f64(),
            user_seconds: cpu.user.as_secs_f64(),
            system_seconds: cpu.system.as_secs_f64(),
            process_cpu_seconds: p.process_cpu.total().as_secs_f64(),
            // The open loop no longer spins (it sends early within a slack instead).
            spin_seconds: 0.0,
            max_thread_utilization: load.max_utilization,
            run_delay_seconds: load.run_delay_secs,
            max_thread_run_delay: load.max_run_delay,
            max_thread_demand: load.max_demand,
            pinned_cpus: load.pinned.clone(),
            cpu_us_per_msg: (counters.received > 0)
                .then(|| cpu.total().as_secs_f64() * 1e6 / counters.received as f64),
            send_slack_us: p
                .results
                .iter()
                .filter_map(|r| r.send_slack_ns)
                .max()
                .map(|ns| ns as f64 / 1e3),
            wake_cost_us: p.pacing.and_then(|pacing| pacing.wake_cost_ns).map(|ns| ns as f64 / 1e3),
            sends_per_wakeup: (mode == Mode::Open && counters.timer_wakeups > 0)
                .then(|| counters.sent as f64 / counters.timer_wakeups as f64),
            echoes_stamped_by_kernel: (mode == Mode::Open)
                .then(|| !p.results.is_empty() && p.results.iter().all(|r| r.echoes_stamped)),
            saturated: !saturation.is_empty(),
            saturation,
        },
        environment: p.environment,
        burst: None,
        shard: None,
        udp: p.target.is_datagram().then(|| Datagrams {
            lost: counters.lost,
            loss_ratio: if counters.sent > 0 {
                counters.lost as f64 / counters.sent as f64
            } else {
                0.0
            },
            corrupt: counters.mismatch,
            duplicated: udp.duplicated,
            reordered: udp.reordered,
            late: udp.late,
            unexpected: udp.unexpected,
            refused: udp.refused,
            kernel: p.udp_kernel,
        }),
        histograms: Histograms {
            latency: encode(&total.corrected),
            latency_uncorrected: encode(uncorrected_hist),
            connect: (mode == Mode::Churn).then(|| encode(&total.connect)),
            schedule_lag: (mode == Mode::Open).then(|| encode(&total.lag)),
        },
    }
}

/// How hard the load threads worked and how long they waited for a CPU, over the measured
/// window and drain.
#[derive(Debug, Default)]
struct ThreadLoad {
    /// The busiest thread's CPU time over its wall time.
    max_utilization: f64,
    /// `None` without scheduler statistics.
    run_delay_secs: Option<f64>,
    /// The largest share of its wall time a thread spent waiting for a CPU.
    max_run_delay: Option<f64>,
    /// The largest share of its wall time a thread wanted a CPU: running or waiting for one.
    max_demand: Option<f64>,
    /// Per pinned CPU, the load threads' summed utilization there.
    pinned: Vec<PinnedCpu>,
    /// Thread number and figures of the thread behind each maximum, for the verdict.
    worst_delay: Option<(usize, f64)>,
    worst_demand: Option<(usize, f64, f64, f64)>,
}

impl ThreadLoad {
    fn of(results: &[ThreadResult]) -> ThreadLoad {
        let mut load = ThreadLoad::default();
        for (thread, r) in results.iter().enumerate() {
            let cpu = r.cpu.total().as_secs_f64();
            if let Some(delay) = r.run_delay_ns {
                *load.run_delay_secs.get_or_insert(0.0) += delay as f64 / 1e9;
            }
            if r.wall_ns == 0 {
                continue;
            }
            let wall = r.wall_ns as f64 / 1e9;
            let utilization = cpu / wall;
            load.max_utilization = load.max_utilization.max(utilization);
            if let Some(cpu) = r.pinned {
                match load.pinned.iter_mut().find(|p| p.cpu == cpu) {
                    Some(p) => {
                        p.threads += 1;
                        p.utilization += utilization;
                    }
                    None => load.pinned.push(PinnedCpu { cpu, threads: 1, utilization }),
                }
            }
            if let Some(delay_ns) = r.run_delay_ns {
                let delay = delay_ns as f64 / 1e9 / wall;
                let demand = utilization + delay;
                if load.max_run_delay.is_none_or(|m| delay > m) {
                    load.max_run_delay = Some(delay);
                    load.worst_delay = Some((thread, delay));
                }
                if load.max_demand.is_none_or(|m| demand > m) {
                    load.max_demand = Some(demand);
                    load.worst_demand = Some((thread, demand, utilization, delay));
                }
            }
        }
        load.pinned.sort_by_key(|p| p.cpu);
        load
    }

    /// One sentence per reason to think the generator, not the server, set the pace.
    fn verdict(&self) -> Vec<String> {
        let mut reasons = Vec::new();
        let pct = |x: f64| x * 100.0;
        match self.worst_demand {
            Some((thread, demand, ran, waited)) if demand > SATURATED_UTILIZATION => {
                reasons.push(format!(
                    "load thread {thread} wanted a CPU {:.0}% of the time (ran {:.0}%, waited {:.0}% \
                     for one)",
                    pct(demand),
                    pct(ran),
                    pct(waited)
                ));
            }
            // Without scheduler statistics, only the CPU time speaks.
            None if self.max_utilization > SATURATED_UTILIZATION => reasons.push(format!(
                "a load thread was busy {:.0}% of the time",
                pct(self.max_utilization)
            )),
            _ => {}
        }
        if let Some((thread, delay)) = self.worst_delay
            && delay > SATURATED_RUN_DELAY
        {
            reasons.push(format!(
                "load thread {thread} waited for a CPU {:.0}% of the time (other threads or \
                 processes held it), so its sends and reads ran late",
                pct(delay)
            ));
        }
        // A CPU with one load thread says no more than that thread's own demand, above.
        let shared = self.pinned.iter().filter(|p| p.threads > 1);
        for p in shared.filter(|p| p.utilization > SATURATED_UTILIZATION) {
            reasons.push(format!(
                "CPU {} ran {} load threads {:.0}% of the time",
                p.cpu,
                p.threads,
                pct(p.utilization)
            ));
        }
        reasons
    }
}

fn encode(hist: &stats::Hist) -> String {
    // Serializing a histogram in memory cannot fail short of a bug; an empty field then
    // tells the reader the histogram is missing rather than losing the whole report.
    stats::encode(hist).unwrap_or_default()
}
