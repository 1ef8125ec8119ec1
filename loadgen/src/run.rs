//! The coordinating thread: checks the configuration, opens the idle ballast, starts the load
//! threads, starts the clock once every thread has its connections up, opens the measured
//! window once the warm-up is over and every connection has had its first echo (see
//! `phase::Gate`), merges the threads' interval histograms as they arrive (`intervals`,
//! writing the interval log), draws the progress bar, and assembles the report when the
//! threads are done.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use mio::Poll;

use crate::assemble::Parts;
use crate::config::{Config, Mode};
use crate::cpu::{self, CpuTime};
use crate::hlog::HlogWriter;
use crate::marks::Marks;
use crate::meter::{Msg, Shared, ThreadResult};
use crate::pace::Pacing;
use crate::phase::Gate;
use crate::progress::Progress;
use crate::report::Report;
use crate::schedule::Schedule;
use crate::target::Target;
use crate::worker::{self, Plan};

mod intervals;
use crate::{Cancel, assemble, env, idle, rxstamp, udp};
use intervals::Intervals;

/// Runs one load as `config` describes and returns everything it measured.
///
/// Fails before applying any load when the configuration is impossible or nothing listens at
/// the address. Once load has started, failures of the server (refused or reset connections,
/// wrong echoes, silence) are counted in the report, not returned as errors. Setting `cancel`
/// ends the run early; the report then covers what was measured. When `config.json` or
/// `config.hlog` is set, the files are written here, so the library and the binary agree.
pub fn run(config: &Config, cancel: &Cancel) -> Result<Report> {
    let target = config.validate()?;
    // A shard runs its own share of the load (`shard.rs`); its report keeps the whole load's
    // configuration, as given, beside what the shard ran.
    let original = config;
    let (mut config, shard) = crate::shard::apply(config);
    let threads = config.resolved_threads();
    config.threads = Some(threads);
    let to_stdout = config.json.as_deref() == Some(std::path::Path::new("-"));
    // `--json -`: the report owns standard output, so the marks go to stderr.
    crate::marks::to_stderr(to_stdout);
    let burst = config.mode() == Mode::Burst;
    raise_fd_limit(config.connections.max(config.burst.unwrap_or(0)) + config.idle + 64)?;
    // Nothing listening should be one clear error now, not a run full of connect errors. (Not
    // before a burst: refusals are what it counts, and a probe would take a backlog slot.)
    if let Target::Datagram(peer) = &target {
        udp::probe(peer, config.size, config.timeout)
            .with_context(|| format!("no echo from {target}"))?;
    } else if !burst {
        target
            .connect_blocking(config.timeout)
            .with_context(|| format!("cannot connect to {target}"))?;
    }
    // Output files are created first, so a bad path fails before any load is applied.
    let json = match &config.json {
        Some(_) if to_stdout => None,
        Some(path) => {
            Some(File::create(path).with_context(|| format!("cannot create {}", path.display()))?)
        }
        None => None,
    };
    let hlog = config.hlog.as_deref().map(HlogWriter::create).transpose()?;
    // The coordinating thread stays off the server's CPUs too; the caller's mask comes back.
    let previous =
        if config.cpus.is_empty() { None } else { Some(cpu::pin_current_thread(&config.cpus)?) };
    let outcome = match burst {
        true => crate::burst::run(&config, &target, cancel, hlog),
        false => {
            let first_id = shard.as_ref().map_or(0, |s| s.first_connection);
            coordinate(&config, &target, (threads, first_id), cancel, hlog)
        }
    };
    if let Some(previous) = previous {
        cpu::restore_affinity(&previous);
    }
    let mut report = outcome?;
    if let Some(info) = shard {
        let mut whole = report.config.clone();
        whole.connections = original.connections;
        whole.idle = original.idle;
        whole.rate = original.rate;
        whole.shard = Some(info.shard);
        report.config = whole;
        report.shard = Some(info);
    }
    if to_stdout {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &report).context("cannot serialize the report")?;
        writeln!(out).and_then(|()| out.flush()).context("cannot write the report to stdout")?;
    }
    if let (Some(file), Some(path)) = (json, &config.json) {
        let mut out = BufWriter::new(file);
        serde_json::to_writer_pretty(&mut out, &report).context("cannot serialize the report")?;
        writeln!(out)
            .and_then(|()| out.flush())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(report)
}

/// `threads`: the load threads and the id of the first connection (0 unless sharded).
fn coordinate(
    config: &Config,
    target: &Target,
    (threads, first_id): (usize, usize),
    cancel: &Cancel,
    mut hlog: Option<HlogWriter>,
) -> Result<Report> {
    let started_at = SystemTime::now();
    let environment = env::Environment::detect();
    let process_cpu = CpuTime::process();
    let mode = config.mode();
    let idle_echo = config.idle_echo.then_some(config.size);
    let mut idle = idle::open(target, config.idle, idle_echo, config.timeout, cancel);
    let shared = Arc::new(Shared {
        start: OnceLock::new(),
        cancel: Cancel::new(),
        received: (0..threads).map(|_| AtomicU64::new(0)).collect(),
    });
    // UDP mode: the kernel's counters, machine-wide, before and after the load threads.
    let kernel_family = match target {
        Target::Datagram(peer) => peer.kernel_family(),
        _ => None,
    };
    let kernel_before = kernel_family.and_then(udp::kernel::read);
    let (tx, rx) = mpsc::channel();
    let mut handles = Vec::with_capacity(threads);
    // Per thread, the way back for its interval recorders once merged and emptied.
    let mut spares = Vec::with_capacity(threads);
    // Kept for the run (see `rxstamp::switch_on`); only the open loop reads stamps.
    let _stamping = (mode == Mode::Open && !target.is_datagram()).then(rxstamp::switch_on);
    // Timed here, before any load thread runs, so that nothing else of loadgen's competes.
    let pacing = (mode == Mode::Open).then(|| Pacing::new(config.send_slack));
    let warmup_ns = config.warmup.as_nanos() as u64;
    // UDP's load threads keep their own window, at the warm-up's end: a datagram has no
    // connection to wait for.
    let gate = Arc::new(match target.is_datagram() {
        true => Gate::opened(threads, warmup_ns),
        false => Gate::new(threads),
    });
    for plan in plans(config, target, (threads, first_id), pacing.as_ref(), &gate) {
        let (spare_tx, spare_rx) = mpsc::channel();
        spares.push(spare_tx);
        let spawned = Poll::new().context("cannot create an epoll instance").and_then(|poll| {
            let (shared, tx) = (shared.clone(), tx.clone());
            std::thread::Builder::new()
                .name(format!("loadgen-{}", plan.thread))
                .spawn(move || match plan.target.is_datagram() {
                    true => udp::thread_main(plan, poll, shared, (tx, spare_rx)),
                    false => worker::thread_main(plan, poll, shared, (tx, spare_rx)),
                })
                .context("cannot start a load thread")
        });
        match spawned {
            Ok(handle) => handles.push(handle),
            Err(err) => {
                // Release the threads already waiting for the start, then report.
                shared.cancel.cancel();
                let _ = shared.start.set(Instant::now());
                handles.into_iter().for_each(|h| drop(h.join()));
                return Err(err);
            }
        }
    }
    drop(tx);

    let mut progress = Progress::new(config.progress, config.warmup, config.duration);
    let mut intervals = Intervals::new(threads, config.hlog_interval, hlog.is_some());
    let mut results: Vec<Option<ThreadResult>> = vec![None; threads];
    let mut ready = 0;
    let mut start: Option<Instant> = None;
    let mut began_at = None;
    // Once every thread is ready: when to start them (`--start-at`, or at once).
    let mut start_due: Option<Instant> = None;
    // `--marks`: set when the window's edges become known (see `open_window`).
    let mut marks: Option<Marks> = None;
    // The window's opening, in nanoseconds since the start, once decided.
    let mut window: Option<u64> = None;
    // Why the window could never open, if it could not.
    let mut unopened: Option<String> = None;
    loop {
        // Until the start, no later than it is due; then at the pace of the progress bar, or
        // sooner when a mark falls due.
        let due = match (start, start_due) {
            (None, Some(due)) => Some(due),
            _ => marks.as_ref().and_then(Marks::next_due),
        };
        // Past the warm-up with the window still shut, every millisecond: its opening is
        // decided here, and `window start` printed, as soon as the last first echo is in.
        let waiting = start.is_some_and(|s| window.is_none() && s.elapsed() >= config.warmup);
        let tick = Duration::from_millis(if waiting { 1 } else { 50 });
        let wait = due.map_or(tick, |due| due.saturating_duration_since(Instant::now()).min(tick));
        match rx.recv_timeout(wait) {
            Ok(Msg::Ready) => ready += 1,
            Ok(Msg::Interval { thread, index, mut recorder }) => {
                intervals.add(thread, index, &recorder)?;
                intervals.write(hlog.as_mut(), mode, None)?;
                recorder.reset();
                // A thread that has finished no longer listens; the recorder is then dropped.
                let _ = spares[thread].send(recorder);
            }
            Ok(Msg::Done { thread, last, result }) => {
                if let Some((index, recorder)) = last {
                    intervals.add_last(index, &recorder)?;
                }
                intervals.done[thread] = true;
                results[thread] = Some(*result);
            }
            Err(RecvTimeoutError::Timeout) => {}
            // Every thread has exited (normally after `Done`; a panic is caught below).
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if cancel.is_cancelled() {
            shared.cancel.cancel();
        }
        let died = handles.iter().zip(&results).any(|(h, r)| h.is_finished() && r.is_none());
        if start.is_none() && (ready == threads || died) {
            let due = *start_due.get_or_insert_with(|| start_instant(config.start_at));
            let now = Instant::now();
            if now >= due || died || shared.cancel.is_cancelled() {
                // The threads' clock starts at the instant asked for, not at this thread's
                // (later) wake-up: their schedules, and so the windows of generators on other
                // machines given the same `--start-at`, line up to the microsecond.
                let at = due.min(now);
                let _ = shared.start.set(at);
                start = Some(at);
                // The wall-clock time of `at`: both clocks read together, then stepped back.
                let (mono, wall) = (Instant::now(), SystemTime::now());
                let wall = wall - mono.duration_since(at);
                began_at = Some(wall);
                // The threads sleep until then (see `worker::Worker::connect_and_wait`).
                handles.iter().for_each(|h| h.thread().unpark());
            }
        }
        if let (Some(start), Some(wall), None) = (start, began_at, window)
            && !shared.cancel.is_cancelled()
        {
            let elapsed = start.elapsed().as_nanos() as u64;
            if let Some(open) = open_window(&gate, warmup_ns, elapsed) {
                window = Some(open);
                let open_for = Duration::from_nanos(open);
                if config.marks {
                    marks = Some(Marks::new(start + open_for, config.duration));
                }
                if let Some(log) = hlog.as_mut() {
                    let comment =
                        format!("{} against {target}: {}", crate::tool(), hlog_legend(mode));
                    log.header(wall + open_for, &comment)?;
                }
            } else if elapsed >= warmup_ns.saturating_add(2 * config.timeout.as_nanos() as u64) {
                // Every first message has an outcome within --timeout (an echo, or a
                // timeout that settles its connection too), so this only catches a load
                // thread that stopped reporting.
                unopened = Some(format!(
                    "the measured window never opened: {} connection(s) still waited for \
                     their first echo {} after the warm-up ended (twice --timeout)",
                    gate.waiting(),
                    humantime::format_duration(2 * config.timeout),
                ));
                shared.cancel.cancel();
            }
        }
        if let Some(marks) = marks.as_mut() {
            marks.print_due(Instant::now(), shared.cancel.is_cancelled());
        }
        if let Some(start) = start {
            let received = shared.received.iter().map(|r| r.load(Ordering::Relaxed)).sum();
            progress.update(start.elapsed(), received);
        }
    }
    if let Some(marks) = marks.as_mut() {
        marks.finish();
    }
    progress.finish();
    for (thread, handle) in handles.into_iter().enumerate() {
        if handle.join().is_err() {
            bail!("load thread {thread} panicked; this is a loadgen bug");
        }
    }
    if let Some(why) = unopened {
        bail!(why);
    }
    let kernel_after = kernel_family.and_then(udp::kernel::read);
    let results: Vec<ThreadResult> = results.into_iter().map(Option::unwrap_or_default).collect();
    let measure_ns = window.unwrap_or(warmup_ns);
    let finished_ns = results.iter().map(|r| r.finished_ns).max().unwrap_or(0);
    intervals.write(hlog.as_mut(), mode, Some(finished_ns.saturating_sub(measure_ns)))?;
    if let Some(log) = hlog {
        log.finish()?;
    }
    idle.closed_by_server =
        idle.streams.iter_mut().map(|s| s.closed_by_peer()).filter(|&closed| closed).count();
    Ok(assemble::report(Parts {
        config,
        target,
        started_at,
        began_at,
        environment,
        results,
        total: intervals.total,
        interrupted: shared.cancel.is_cancelled(),
        idle,
        process_cpu: CpuTime::process().since(&process_cpu),
        pacing,
        window_wait_ns: measure_ns - warmup_ns,
        udp_kernel: kernel_before.zip(kernel_after).map(|(b, a)| udp::kernel::delta(&b, &a)),
    }))
}

/// Decides the window's opening, `elapsed` nanoseconds after the start: at the warm-up's end
/// or now, whichever is later, once every load thread is primed (see [`Gate`]); `None`
/// while one still waits for a first echo.
fn open_window(gate: &Gate, warmup_ns: u64, elapsed: u64) -> Option<u64> {
    if let Some(open) = gate.open_ns() {
        return Some(open);
    }
    if !gate.all_primed() {
        return None;
    }
    let open = warmup_ns.max(elapsed);
    gate.open(open);
    Some(open)
}

/// The instant on this machine's monotonic clock that `start_at` names on its wall clock
/// (now, without one or when it has passed).
fn start_instant(start_at: Option<SystemTime>) -> Instant {
    let now = Instant::now();
    let ahead = start_at.and_then(|at| at.duration_since(SystemTime::now()).ok());
    ahead.map_or(now, |ahead| now + ahead)
}

/// Splits the connections among the threads (round robin by id) with their schedules. A
/// shard's connections are numbered from `first_id`, so ids stay unique across the shards.
/// Each thread's schedule is offset within this generator only: the shards' clocks agree to
/// a millisecond at best, so interleaving their sends to the microsecond would mean nothing.
fn plans(
    config: &Config,
    target: &Target,
    (threads, first_id): (usize, usize),
    pacing: Option<&Pacing>,
    gate: &Arc<Gate>,
) -> Vec<Plan> {
    let mode = config.mode();
    let sources =
        if mode == Mode::Churn { target.churn_sources(config.source_addrs) } else { Vec::new() };
    (0..threads)
        .map(|thread| {
            let ids: Vec<u32> = (thread..config.connections)
                .step_by(threads)
                .map(|id| (first_id + id) as u32)
                .collect();
            Plan {
                thread,
                schedule: config.rate.zip(pacing).map(|(rate, pacing)| {
                    Schedule::new(rate, thread, ids.len(), config.connections, pacing)
                }),
                ids,
                cpu: (!config.cpus.is_empty()).then(|| config.cpus[thread % config.cpus.len()]),
                target: target.clone(),
                mode,
                size: config.size,
                pipeline: config.pipeline,
                split_writes: config.split_writes,
                warmup: config.warmup,
                duration: config.duration,
                timeout: config.timeout,
                // Without a log, intervals would only be merged into the total: the thread
                // keeps one recorder for the whole run instead.
                interval: config.hlog.is_some().then_some(config.hlog_interval),
                backlog_cap: backlog_cap(config),
                sources: sources.clone(),
                gate: gate.clone(),
            }
        })
        .collect()
}

/// All connections' unwritten open-loop backlogs together stay under this.
const BACKLOG_BUDGET: usize = 64 << 20;

/// The unwritten bytes one open-loop connection may hold: a share of [`BACKLOG_BUDGET`],
/// between 64 KiB and 16 MiB, and room for two messages at least. The kernel's own socket
/// buffer (up to a few megabytes on loopback) comes on top; what neither can hold is a
/// send the server has refused, and it is counted, not buffered.
fn backlog_cap(config: &Config) -> usize {
    (BACKLOG_BUDGET / config.connections).clamp(64 << 10, 16 << 20).max(2 * config.size)
}

/// Raises the soft limit on open files to what the run needs, if the hard limit allows.
fn raise_fd_limit(needed: usize) -> Result<()> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) =
        getrlimit(Resource::RLIMIT_NOFILE).context("cannot read the open-file limit")?;
    let needed = needed as u64;
    if soft >= needed {
        return Ok(());
    }
    if hard < needed {
        bail!(
            "this run needs about {needed} file descriptors but the hard limit is {hard} (see ulimit -n)"
        );
    }
    setrlimit(Resource::RLIMIT_NOFILE, needed, hard).context("cannot raise the open-file limit")
}

fn hlog_legend(mode: Mode) -> &'static str {
    match mode {
        Mode::Closed => {
            "untagged: message latency in ns, failed messages included at --timeout or more; \
             Tag=uncorrected: echoed messages only"
        }
        Mode::Open => {
            "untagged: latency in ns from the intended send time, failed messages included at \
             --timeout or more; Tag=uncorrected: echoed messages only, from the actual send"
        }
        // A burst writes its own log (`burst::run`); churn's legend fits it otherwise.
        Mode::Churn | Mode::Burst => {
            "untagged: message latency in ns, failed messages included at --timeout or more; \
             Tag=uncorrected: echoed messages only; Tag=connect: connect latency in ns"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_opens_at_the_warmups_end_or_at_the_last_first_echo() {
        let ms = 1_000_000;
        // Two threads; the window cannot open while one still waits for a first echo.
        let gate = Gate::new(2);
        gate.count(0, 0);
        gate.count(1, 3);
        assert_eq!(open_window(&gate, 100 * ms, 50 * ms), None);
        assert_eq!(open_window(&gate, 100 * ms, 700 * ms), None);
        assert_eq!(gate.waiting(), 3);
        // Primed during the warm-up: it opens on time, decided in advance.
        gate.count(1, 0);
        let early = Gate::new(1);
        early.count(0, 0);
        assert_eq!(open_window(&early, 100 * ms, 50 * ms), Some(100 * ms));
        // Primed after it: it opens when that is seen, and stays where it was decided.
        assert_eq!(open_window(&gate, 100 * ms, 700 * ms), Some(700 * ms));
        assert_eq!(open_window(&gate, 100 * ms, 900 * ms), Some(700 * ms));
        assert_eq!(gate.open_ns(), Some(700 * ms));
    }
}
