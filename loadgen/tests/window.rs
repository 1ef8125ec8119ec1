//! When the measured window opens: at the end of the warm-up, or once every connection has
//! had its first echo, whichever is later (`phase::Gate`). Tested against the real echo-mio,
//! stopped with SIGSTOP before loadgen connects: the kernel still completes the handshakes,
//! so every connection is up at the start, but no echo can come until the server is resumed,
//! at an instant past the warm-up's end. A window that opened on time would then time the
//! first messages across the whole stop, as if the server had been that slow under load.

mod util;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use loadgen::Config;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// A binary of this workspace, built first if it is not there yet (cargo sets
/// `CARGO_BIN_EXE_*` only for the binaries of the package under test).
fn built(package: &str, bin: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable");
    // <target>/<profile>/deps/<test>-<hash> -> <target>/<profile>
    let dir = exe.parent().and_then(Path::parent).expect("a cargo target folder").to_path_buf();
    let path = dir.join(bin);
    if !path.is_file() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-p", package, "--bin", bin]);
        if dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        assert!(cmd.status().expect("run cargo build").success(), "cargo build -p {package}");
    }
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// echo-mio on a port of its own; killed when dropped, stopped or not.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start() -> Server {
        let mut child = Command::new(built("echobench-mio", "echo-mio"))
            .args(["--addr", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start echo-mio");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("its stdout");
        BufReader::new(stdout).read_line(&mut line).expect("its ready line");
        let addr = line.split_whitespace().last().expect("`listening on ADDR`").to_owned();
        Server { child, addr }
    }

    fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), signal).expect("signal echo-mio");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn secs(at: SystemTime) -> f64 {
    at.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs_f64()
}

#[test]
fn the_window_opens_only_after_every_connection_had_its_first_echo() {
    let server = Server::start();
    server.signal(Signal::SIGSTOP);
    // The warm-up begins at a known instant, so that the test knows when it has ended; the
    // report's `began_at` confirms it below (it would be later had the connections not all
    // been up by then).
    let warmup = Duration::from_millis(200);
    let start_at = SystemTime::now() + Duration::from_secs(1);
    let config = Config {
        connections: 20,
        warmup,
        duration: Duration::from_millis(500),
        start_at: Some(start_at),
        // Longer than the stop: a first message that times out settles its connection too.
        timeout: Duration::from_secs(5),
        ..util::quick(&server.addr)
    };
    let run = std::thread::spawn(move || util::run(&config));
    // Resume the server a second after the warm-up's end: not a sleep standing in for an
    // event, but the precondition itself, at a wall-clock instant loadgen was given.
    let resume = start_at + warmup + Duration::from_secs(1);
    while let Ok(left) = resume.duration_since(SystemTime::now()) {
        std::thread::sleep(left);
    }
    let resumed = SystemTime::now();
    server.signal(Signal::SIGCONT);
    let report = run.join().expect("the run");

    let began = humantime::parse_rfc3339(report.run.began_at.as_deref().expect("began_at"))
        .expect("an RFC 3339 time");
    let late = secs(began) - secs(start_at);
    assert!(late.abs() < 1e-3, "the warm-up began {late} s after --start-at: not forced");
    let opened = secs(began) + report.run.warmup_secs + report.run.window_wait_secs;
    assert!(
        opened >= secs(resumed),
        "the window opened {:.3} s before the server could echo anything (waited {} s)",
        secs(resumed) - opened,
        report.run.window_wait_secs
    );
    let summary = loadgen::summary::render(&report);
    assert!(summary.contains("s for first echoes"), "the summary hides the wait: {summary}");
    assert!(report.messages.received > 0, "{:?}", report.messages);
    assert_eq!(report.errors.timeout + report.errors.io + report.errors.lost, 0);
    // The first messages, sent at the start, waited through the whole stop; none of them is
    // in the window's latency.
    let stop_us = (secs(resumed) - secs(start_at)) * 1e6;
    assert!(
        report.latency_us.max < stop_us,
        "a message timed across the stop: max {} us, stop {stop_us} us",
        report.latency_us.max
    );
}

#[test]
fn a_window_that_need_not_wait_opens_at_the_end_of_the_warmup() {
    let server = Server::start();
    let report = util::run(&util::quick(&server.addr));
    // Four connections to a running echo-mio echo within microseconds of the start.
    assert_eq!(report.run.window_wait_secs, 0.0, "{:?}", report.run);
    assert!((report.run.measured_secs - 0.4).abs() < 1e-3, "{:?}", report.run);
    assert!(!loadgen::summary::render(&report).contains("first echoes"));
}
