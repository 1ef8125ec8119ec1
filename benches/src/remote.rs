//! Load from other machines: `--generator LAUNCHER` (repeatable), `--server-addr HOST`,
//! `--generator-bin PATH`.
//!
//! A launcher is the command prefix that reaches one generator host, whatever the user
//! already has: `ssh load1`, `ip netns exec gen1`, `kubectl exec pod-0 --`, `srun -w node3`.
//! There is no controller of our own: for each repeat the harness runs `LAUNCHER PATH
//! FLAGS...` once per generator, every one with the whole load's flags, its `--shard I/N`,
//! one `--start-at` a few seconds ahead (time for the launchers to start) and `--json -`,
//! reads each report from the launcher's standard output, and adds them up with loadgen's own
//! merge ([`loadgen::combine`]). The servers run here, bound to `--server-addr`, so the
//! server's sampling stays where it was.
//!
//! A launcher is split into words by shell rules (quotes and backslashes; no expansion),
//! with the small splitter below rather than a dependency. Launchers that start a remote
//! shell (ssh) hand it the flags joined by spaces: the flags the harness writes hold no
//! spaces, but `--generator-bin` must not either.
//!
//! A point with fewer connections than there are generators runs on as many generators as it
//! has connections (scale's single connection on the first alone, still with a start time).
//! Points that cannot be cut into shards run on the first generator alone: a burst (the
//! backlog scenario: one generator's simultaneous connects are what it measures) and a point
//! that stops the server (stall: its SIGSTOP schedule counts from the generator's launch, so
//! it must not wait for a start time; a launcher's own start-up still shifts it).

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::generator::{GeneratorRun, HANG_SLACK, OnMark, interrupted};
use crate::generators::{GeneratorRecord, Generators, Remote, split, spread_ms};
use crate::server::describe;

/// How far ahead of the launch the generators are told to start: time for every launcher
/// to start its loadgen (an ssh connection, a pod exec) and open the connections.
pub const START_LEAD: Duration = Duration::from_secs(3);

/// One child of a repeat and the threads reading its output.
struct Launched {
    child: Child,
    stdout: JoinHandle<String>,
    stderr: JoinHandle<Vec<String>>,
}

/// Runs `config` on the generators: `shards` shards on the first `shards` of them, or the
/// whole on the first alone without a start time (`None`). `local_bin` is this machine's loadgen (the default `--generator-bin`);
/// `on_mark` hears the first generator's window marks.
pub fn run(
    remote: &Remote,
    local_bin: &Path,
    mut config: loadgen::Config,
    shards: Option<usize>,
    expected: Duration,
    on_mark: Option<OnMark>,
) -> GeneratorRun {
    let started = Instant::now();
    let sharded = shards.is_some();
    let launchers = &remote.generators[..shards.unwrap_or(1).clamp(1, remote.generators.len())];
    let bin = remote.generator_bin.clone().map_or(local_bin.to_path_buf(), PathBuf::from);
    let hlog = config.hlog.take();
    // This machine's CPU numbers mean nothing on the generator hosts.
    config.cpus.clear();
    config.json = Some(PathBuf::from("-"));
    config.marks = on_mark.is_some();
    let start_at = sharded.then(|| SystemTime::now() + START_LEAD);
    config.start_at = start_at.or(config.start_at);
    let mut on_mark = on_mark;
    let mut children: Vec<Result<Launched, String>> = Vec::new();
    for (i, launcher) in launchers.iter().enumerate() {
        let mut own = config.clone();
        own.shard =
            sharded.then_some(loadgen::shard::Shard { index: i + 1, count: launchers.len() });
        children.push(launch(
            launcher,
            &bin,
            &own.to_args(),
            if i == 0 { on_mark.take() } else { None },
        ));
    }
    let lead = if sharded { START_LEAD } else { Duration::ZERO };
    let deadline = started + lead + expected + HANG_SLACK;
    let (mut forwarded, mut killed) = (false, false);
    let mut statuses = vec![None; children.len()];
    while statuses.iter().zip(&children).any(|(s, c)| s.is_none() && c.is_ok()) {
        for (status, child) in statuses.iter_mut().zip(children.iter_mut()) {
            if let (None, Ok(l)) = (&status, child) {
                *status = l.child.try_wait().ok().flatten();
            }
        }
        let pgids = children.iter().flatten().map(|l| Pid::from_raw(l.child.id() as i32));
        if interrupted() && !forwarded {
            pgids.clone().for_each(|p| {
                let _ = killpg(p, Signal::SIGINT);
            });
            forwarded = true;
        }
        if Instant::now() >= deadline && !killed {
            pgids.for_each(|p| {
                let _ = killpg(p, Signal::SIGKILL);
            });
            killed = true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let ended = Instant::now();

    let mut records = Vec::new();
    let mut reports = Vec::new();
    let mut failure = None;
    for (i, (child, status)) in children.into_iter().zip(statuses).enumerate() {
        let shard = sharded.then(|| format!("{}/{}", i + 1, launchers.len()));
        let mut record =
            GeneratorRecord { launcher: launchers[i].clone(), shard, ..Default::default() };
        let outcome = child.and_then(|l| {
            let stdout = l.stdout.join().unwrap_or_default();
            let tail = l.stderr.join().unwrap_or_default();
            let last = tail.last().map_or(String::new(), |l| format!("; stderr: {l}"));
            let ok = status.is_some_and(|s| s.success()) && !killed;
            match loadgen::Report::from_json(&stdout) {
                Ok(report) if ok => Ok(report),
                _ if killed => Err(format!("did not finish in time and was killed{last}")),
                _ => Err(format!("{} without a report{last}", describe(status))),
            }
        });
        match outcome {
            Ok(report) => {
                let (e, g) = (&report.environment, &report.generator);
                record.host = e.hostname.clone();
                record.cpus = e.cores;
                record.allowed_cpus = e.allowed_cpus.len();
                record.threads = g.threads;
                record.began_at = report.run.began_at.clone();
                record.received = report.messages.received;
                record.cpu_seconds = g.cpu_seconds;
                record.saturated = g.saturated;
                reports.push(report);
            }
            Err(why) => {
                let why = format!("generator {} ({}) {why}", i + 1, launchers[i]);
                failure.get_or_insert_with(|| why.clone());
                record.failure = Some(why);
            }
        }
        records.push(record);
    }
    let generators = Generators {
        start_at: start_at.map(|t| humantime::format_rfc3339_millis(t).to_string()),
        start_spread_ms: spread_ms(&records),
        each: records,
    };
    // A repeat some generator failed is failed: a part of the load is not the load.
    let report = match failure {
        Some(_) => None,
        // The whole point on the first generator (a burst, say): its report is the whole.
        None if !sharded => reports.pop(),
        None => match loadgen::combine::merge_reports(&reports) {
            Ok(merged) => Some(merged),
            Err(e) => {
                failure = Some(format!("the generators' reports do not merge: {e:#}"));
                None
            }
        },
    };
    if let (Some(report), Some(path)) = (&report, &hlog)
        && let Err(e) = write_hlog(report, launchers.len(), path)
    {
        eprintln!("  cannot write {}: {e:#}", path.display());
    }
    GeneratorRun {
        started,
        ended,
        report,
        failure,
        interrupted: forwarded,
        generators: Some(generators),
    }
}

/// Starts `LAUNCHER BIN ARGS` in its own process group, with threads reading its output;
/// the first generator's stderr is read line by line for its window marks.
fn launch(
    launcher: &str,
    bin: &Path,
    args: &[String],
    mut on_mark: Option<OnMark>,
) -> Result<Launched, String> {
    let words = split(launcher).map_err(|e| format!("{launcher:?}: {e}"))?;
    let (program, rest) = words.split_first().ok_or("an empty launcher")?;
    let mut child = Command::new(program)
        .args(rest)
        .arg(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let mut out = child.stdout.take().expect("stdout is piped");
    let err = child.stderr.take().expect("stderr is piped");
    let stdout = thread::spawn(move || {
        let mut text = String::new();
        let _ = out.read_to_string(&mut text);
        text
    });
    let stderr = thread::spawn(move || {
        let mut tail: Vec<String> = Vec::new();
        for line in BufReader::new(err).lines() {
            let Ok(line) = line else { break };
            match (loadgen::Mark::parse(&line), on_mark.as_mut()) {
                (Some(mark), Some(on_mark)) => on_mark(mark),
                (Some(_), None) => {}
                _ if line.trim().is_empty() => {}
                _ => tail.push(line),
            }
            if tail.len() > 20 {
                tail.remove(0);
            }
        }
        tail
    });
    Ok(Launched { child, stdout, stderr })
}

/// The merged histograms as a one-interval log, where a local run would have written its
/// interval log: the generators' own intervals stay on their hosts.
fn write_hlog(report: &loadgen::Report, shards: usize, path: &Path) -> Result<()> {
    use loadgen::hlog::{HlogWriter, TAG_CONNECT, TAG_UNCORRECTED};
    let began = report.run.began_at.as_deref().and_then(|t| humantime::parse_rfc3339(t).ok());
    let base =
        began.unwrap_or_else(SystemTime::now) + Duration::from_secs_f64(report.run.warmup_secs);
    let length = Duration::from_secs_f64(report.run.measured_secs.max(0.001));
    let mut log = HlogWriter::create(path)?;
    log.header(base, &format!("{}: merged from {} generator(s)", loadgen::tool(), shards))?;
    let h = &report.histograms;
    log.interval(None, Duration::ZERO, length, &h.latency()?)?;
    log.interval(Some(TAG_UNCORRECTED), Duration::ZERO, length, &h.latency_uncorrected()?)?;
    if let Some(connect) = &h.connect {
        log.interval(Some(TAG_CONNECT), Duration::ZERO, length, &loadgen::stats::decode(connect)?)?;
    }
    log.finish()
}
