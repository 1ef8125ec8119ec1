//! A server under test as a child process: start it, wait for its ready line, watch it, stop it.
//!
//! The server runs in its own process group, so a Ctrl-C typed at the harness reaches only the
//! harness, which then stops the server the way every run does (SIGTERM) and can still check
//! that it exits cleanly. If the harness itself dies, the kernel sends the server SIGTERM
//! (`PR_SET_PDEATHSIG`). Its stdout and stderr are drained by two threads into small rings, so a
//! chatty server never blocks on a full pipe and a failure can be reported with its last words.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::procstat;
use crate::results::{Fault, FaultKind};

/// How long a server may take to print `listening on ADDR`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a server may take to exit after SIGTERM. The contract says a second; the extra
/// second absorbs a busy 2-core machine. Past it the server is killed and the exit is unclean.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// Lines of stderr kept for the report.
const TAIL_LINES: usize = 20;

/// A running server.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// The address it printed in its ready line, as loadgen's `--addr` takes it.
    pub addr: String,
    stderr: Arc<Mutex<VecDeque<String>>>,
    drained: mpsc::Receiver<()>,
    /// Set once [`Server::check_alive`] has reported the server's death, so `stop` does not
    /// report it twice.
    death_reported: bool,
}

/// How a server ended after [`Server::stop`].
#[derive(Debug, Clone, Default)]
pub struct Stopped {
    /// Seconds from SIGTERM to exit (absent if it was already gone).
    pub seconds: Option<f64>,
    /// Its exit code, if it exited.
    pub code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// What went wrong; empty for a clean stop.
    pub faults: Vec<Fault>,
    /// Its last stderr lines.
    pub stderr_tail: Vec<String>,
}

impl Server {
    /// Starts `binary` with `args` on a free loopback port, pinned to `cpus` unless that is
    /// empty, and waits for its ready line.
    pub fn start(binary: &Path, args: &[String], cpus: &[usize]) -> Result<Server, Fault> {
        Server::start_on(binary, args, cpus, "127.0.0.1")
    }

    /// [`Server::start`] on a free port of `host` (`--server-addr`'s address; an IPv6 one in
    /// brackets).
    pub fn start_on(
        binary: &Path,
        args: &[String],
        cpus: &[usize],
        host: &str,
    ) -> Result<Server, Fault> {
        let fail = |detail: String, tail: Vec<String>| Fault {
            kind: FaultKind::StartFailed,
            detail,
            stderr_tail: tail,
        };
        if !binary.is_file() {
            let detail = format!("{} does not exist (build it with cargo build --release)", {
                binary.display()
            });
            return Err(fail(detail, Vec::new()));
        }
        let mut cmd = Command::new(binary);
        cmd.args(["--addr", &format!("{host}:0")])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let pin = !cpus.is_empty();
        let mut set = nix::sched::CpuSet::new();
        for &cpu in cpus {
            set.set(cpu).map_err(|e| fail(format!("cannot pin to CPU {cpu}: {e}"), vec![]))?;
        }
        let parent = nix::unistd::getpid();
        // SAFETY: the closure runs in the forked child before exec, where only async-signal-safe
        // calls are allowed. It makes three raw system calls (prctl, getppid, sched_setaffinity)
        // through nix wrappers that neither allocate nor take locks; `set` was built before
        // the fork and is only read.
        unsafe {
            cmd.pre_exec(move || {
                // Die with the harness. Note the signal is sent when the *thread* that spawned
                // us exits, so the runner spawns servers from the thread that outlives the run.
                nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)?;
                if nix::unistd::getppid() != parent {
                    return Err(std::io::Error::other("the harness exited during spawn"));
                }
                if pin {
                    nix::sched::sched_setaffinity(Pid::from_raw(0), &set)?;
                }
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| fail(format!("cannot run {}: {e}", binary.display()), vec![]))?;

        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let (drained_tx, drained) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let out = child.stdout.take().expect("stdout is piped");
        let err = child.stderr.take().expect("stderr is piped");
        drain(err, Arc::clone(&stderr), None, drained_tx.clone());
        drain(out, Arc::new(Mutex::new(VecDeque::new())), Some(ready_tx), drained_tx);

        let mut server =
            Server { child, addr: String::new(), stderr, drained, death_reported: false };
        match ready_rx.recv_timeout(READY_TIMEOUT) {
            Ok(line) => match line.strip_prefix("listening on ") {
                Some(addr) if !addr.is_empty() => {
                    server.addr = addr.trim().to_string();
                    Ok(server)
                }
                _ => {
                    let stopped = server.stop();
                    Err(fail(format!("first stdout line was {line:?}, not the ready line"), {
                        stopped.stderr_tail
                    }))
                }
            },
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let stopped = server.stop();
                let detail = format!("no ready line within {} s", READY_TIMEOUT.as_secs());
                Err(fail(detail, stopped.stderr_tail))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // Stdout closed before a line: the server exited (bad flags, cannot bind...).
                let status = server.child.wait().ok();
                server.wait_drained(Duration::from_millis(500));
                let detail = format!("exited before its ready line ({})", describe(status));
                Err(fail(detail, server.stderr_tail()))
            }
        }
    }

    /// The server's pid, the root of the tree /proc sampling follows.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines of its stderr so far.
    pub fn stderr_tail(&self) -> Vec<String> {
        self.stderr.lock().map(|t| t.iter().cloned().collect()).unwrap_or_default()
    }

    /// `Some(fault)` if the server has exited on its own: it crashed.
    pub fn check_alive(&mut self) -> Option<Fault> {
        let status = self.child.try_wait().ok().flatten()?;
        if self.death_reported {
            return None;
        }
        self.death_reported = true;
        self.wait_drained(Duration::from_millis(500));
        Some(Fault {
            kind: FaultKind::Crashed,
            detail: format!("the server exited under load ({})", describe(Some(status))),
            stderr_tail: self.stderr_tail(),
        })
    }

    /// Sends SIGTERM and checks the contract: exit 0 within [`STOP_TIMEOUT`], nothing left
    /// behind. A server that overstays is killed; leftover processes of its tree are killed.
    pub fn stop(mut self) -> Stopped {
        let mut stopped = Stopped::default();
        // Remember the tree first: once the root is gone, orphans are re-parented and can no
        // longer be found by walking parent pids.
        let members: Vec<procstat::ProcStat> =
            procstat::tree(self.pid()).map(|t| t.into_iter().skip(1).collect()).unwrap_or_default();
        let pid = Pid::from_raw(self.pid() as i32);
        let status = match self.child.try_wait() {
            Ok(Some(status)) => {
                // It was gone before we asked: a crash, reported once.
                stopped.faults.extend(self.check_alive());
                Some(status)
            }
            _ => {
                let asked = Instant::now();
                let _ = kill(pid, Signal::SIGTERM);
                let status = wait_until(&mut self.child, asked + STOP_TIMEOUT);
                if status.is_some() {
                    stopped.seconds = Some(asked.elapsed().as_secs_f64());
                } else {
                    stopped.faults.push(Fault {
                        kind: FaultKind::UncleanExit,
                        detail: format!(
                            "did not exit within {} s of SIGTERM; killed",
                            STOP_TIMEOUT.as_secs()
                        ),
                        stderr_tail: self.stderr_tail(),
                    });
                    let _ = self.child.kill();
                }
                status.or_else(|| self.child.wait().ok())
            }
        };
        if let Some(status) = status {
            stopped.code = status.code();
            stopped.signal = status.signal();
            if status.code() != Some(0) && stopped.faults.is_empty() && !self.death_reported {
                self.wait_drained(Duration::from_millis(500));
                stopped.faults.push(Fault {
                    kind: FaultKind::UncleanExit,
                    detail: format!("after SIGTERM it {}", describe(Some(status))),
                    stderr_tail: self.stderr_tail(),
                });
            }
        }
        if let Some(fault) = reap_leftovers(&members) {
            stopped.faults.push(fault);
        }
        self.wait_drained(Duration::from_millis(500));
        stopped.stderr_tail = self.stderr_tail();
        stopped
    }

    /// Waits (bounded) until both pipe readers saw end of file, so the tail is complete. A
    /// leftover child holding the pipes open would keep them open forever, hence the bound.
    fn wait_drained(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        for _ in 0..2 {
            let left = deadline.saturating_duration_since(Instant::now());
            if self.drained.recv_timeout(left).is_err() {
                return;
            }
        }
    }
}

/// Polls `child` until it exits or `deadline` passes.
pub fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Describes an exit status as a phrase ("exited with status 1", "was killed by signal 9").
pub fn describe(status: Option<ExitStatus>) -> String {
    match status {
        Some(s) => match (s.code(), s.signal()) {
            (Some(code), _) => format!("exited with status {code}"),
            (None, Some(sig)) => format!("was killed by signal {sig}"),
            _ => "ended in an unknown way".into(),
        },
        None => "status unknown".into(),
    }
}

/// Gives the tree's former members half a second to exit, then kills and reports any that
/// are still there (same pid and same start time, so a recycled pid is never touched).
fn reap_leftovers(members: &[procstat::ProcStat]) -> Option<Fault> {
    let alive =
        |m: &&procstat::ProcStat| procstat::read_stat(m.pid).is_ok_and(|s| s.start == m.start);
    let deadline = Instant::now() + Duration::from_millis(500);
    while members.iter().any(|m| alive(&m)) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let left: Vec<u32> = members.iter().filter(alive).map(|m| m.pid).collect();
    if left.is_empty() {
        return None;
    }
    for &pid in &left {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
    }
    Some(Fault {
        kind: FaultKind::LeftProcesses,
        detail: format!("{} process(es) of its tree outlived it and were killed", left.len()),
        stderr_tail: Vec::new(),
    })
}

/// Reads `pipe` line by line on a thread, keeping the last [`TAIL_LINES`]. The first line goes
/// to `first` if given (the ready line). Signals `done` at end of file.
fn drain(
    pipe: impl Read + Send + 'static,
    tail: Arc<Mutex<VecDeque<String>>>,
    mut first: Option<mpsc::Sender<String>>,
    done: mpsc::Sender<()>,
) {
    let spawned = thread::Builder::new().name("server-pipe".into()).spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
            // Keep at most 300 characters of a line: a tail is for reading, not archiving.
            let text: String =
                String::from_utf8_lossy(&line).trim_end().chars().take(300).collect();
            line.clear();
            if let Some(first) = first.take() {
                let _ = first.send(text);
                continue;
            }
            if let Ok(mut tail) = tail.lock() {
                if tail.len() == TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(text);
            }
        }
        let _ = done.send(());
    });
    // Without the reader the pipe could fill and stall the server; but failing to spawn a
    // thread means the machine is out of resources, and the start timeout will report it.
    drop(spawned);
}
