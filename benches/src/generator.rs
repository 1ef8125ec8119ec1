//! One point's load: the `loadgen` binary as a child process, read back through its `--json`.
//!
//! Running the generator as its own process keeps its CPU accounting (`generator.cpu_seconds`)
//! apart from the harness's sampling threads, keeps a generator crash from taking the harness
//! down, and is exactly what a user would type. The generator runs in its own process group:
//! on Ctrl-C the harness forwards SIGINT, and loadgen writes what it measured so far.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{SigHandler, Signal, kill};
use nix::unistd::Pid;

pub use crate::interrupt::{interrupted, request_interrupt};
use crate::server::describe;

/// Slack past the expected end of a point before the generator is declared hung and killed.
/// Connecting thousands of idle connections to a forking server takes seconds on 2 cores.
pub const HANG_SLACK: Duration = Duration::from_secs(60);

/// What one generator run produced.
#[derive(Debug)]
pub struct GeneratorRun {
    /// When the child was spawned.
    pub started: Instant,
    /// When it was seen to exit.
    pub ended: Instant,
    /// Its JSON report, if it wrote one that parses as loadgen's own [`loadgen::Report`].
    pub report: Option<loadgen::Report>,
    /// Why there is no usable report (exit status and stderr tail), if there is none.
    pub failure: Option<String>,
    /// Whether the run was cut short by Ctrl-C.
    pub interrupted: bool,
    /// With `--generator`: what each generator was and did (`crate::remote`).
    pub generators: Option<crate::generators::Generators>,
}

/// What the harness does the moment loadgen marks its window's start or end (`--marks`).
pub type OnMark = Box<dyn FnMut(loadgen::Mark) + Send>;

/// Runs `loadgen` with `args` plus `--json json_path`, for at most `expected + HANG_SLACK`.
pub fn run(loadgen: &Path, args: &[String], json_path: &Path, expected: Duration) -> GeneratorRun {
    run_marked(loadgen, args, json_path, expected, None)
}

/// [`run`], with `--marks` added when `on_mark` is given: loadgen then prints a line as its
/// measured window opens and another as it closes, and `on_mark` is called with each from the
/// thread reading loadgen's stdout, as soon as the line arrives (a pipe's wake-up later).
pub fn run_marked(
    loadgen: &Path,
    args: &[String],
    json_path: &Path,
    expected: Duration,
    on_mark: Option<OnMark>,
) -> GeneratorRun {
    let _ = fs::remove_file(json_path);
    let started = Instant::now();
    let spawned = Command::new(loadgen)
        .args(args)
        .args(on_mark.is_some().then_some("--marks"))
        .arg("--json")
        .arg(json_path)
        .stdin(Stdio::null())
        .stdout(if on_mark.is_some() { Stdio::piped() } else { Stdio::null() })
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            return GeneratorRun {
                started,
                ended: Instant::now(),
                report: None,
                failure: Some(format!("cannot run {}: {e}", loadgen.display())),
                interrupted: false,
                generators: None,
            };
        }
    };
    // Collect stderr on a thread so a talkative generator never blocks on the pipe.
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let stderr_reader = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    // The marks, read line by line; the rest of stdout (the summary) is read and dropped, so
    // that loadgen never blocks on a full pipe.
    let stdout_reader = child.stdout.take().zip(on_mark).map(|(stdout, mut on_mark)| {
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(mark) = loadgen::Mark::parse(&line) {
                    on_mark(mark);
                }
            }
        })
    });

    let deadline = started + expected + HANG_SLACK;
    let pid = Pid::from_raw(child.id() as i32);
    let mut forwarded = false;
    let mut killed = false;
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break Some(status);
        }
        if interrupted() && !forwarded {
            // Ask loadgen to stop early; it then reports what it measured so far.
            let _ = kill(pid, Signal::SIGINT);
            forwarded = true;
        }
        if Instant::now() >= deadline && !killed {
            let _ = child.kill();
            killed = true;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let ended = Instant::now();
    let stderr_text = stderr_reader.join().unwrap_or_default();
    if let Some(reader) = stdout_reader {
        let _ = reader.join();
    }

    let report =
        fs::read_to_string(json_path).ok().and_then(|t| loadgen::Report::from_json(&t).ok());
    let failure = if killed {
        Some(format!("did not finish within {:.0} s and was killed", {
            (expected + HANG_SLACK).as_secs_f64()
        }))
    } else if report.is_none() {
        Some(format!("{} without a JSON report", describe(status)))
    } else {
        None
    };
    GeneratorRun {
        started,
        ended,
        report,
        failure: failure.map(|f| with_tail(f, &stderr_text)),
        interrupted: forwarded,
        generators: None,
    }
}

fn with_tail(failure: String, stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(5)..].join(" | ");
    if tail.is_empty() { failure } else { format!("{failure}; stderr: {tail}") }
}

/// The generator binary inside `bin_dir`.
pub fn loadgen_binary(bin_dir: &Path) -> PathBuf {
    bin_dir.join("loadgen")
}

/// Formats a duration the way loadgen's `--duration` and `--warmup` take it.
pub fn duration_arg(d: Duration) -> String {
    format!("{}ms", d.as_millis().max(1))
}

extern "C" fn on_interrupt(_: libc::c_int) {
    // A server stopped with SIGSTOP right now is resumed first, whatever happens next: the
    // schedule stops nothing more once interrupted, and a stopped server must never outlive
    // the harness (it would ignore the SIGTERM below until continued).
    crate::stopper::resume_from_signal_handler();
    // A second Ctrl-C means "now": leave at once. Server and generator run in their own
    // process groups, so they do not see the terminal's SIGINT; the server gets SIGTERM from
    // the kernel when we exit (PR_SET_PDEATHSIG) and the generator ends with its duration.
    if crate::interrupt::count() >= 1 {
        // SAFETY: _exit is async-signal-safe and takes no pointer.
        unsafe { libc::_exit(130) };
    }
}

/// Makes SIGINT and SIGTERM request a graceful stop: finish writing what was measured.
pub fn install_interrupt_handler() -> anyhow::Result<()> {
    use anyhow::Context;
    let handler = SigHandler::Handler(on_interrupt);
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only touches atomics and calls kill and _exit, all
        // async-signal-safe, so it is sound whatever the interrupted thread was doing.
        unsafe { nix::sys::signal::signal(signal, handler) }
            .with_context(|| format!("cannot install a {signal} handler"))?;
    }
    Ok(())
}
