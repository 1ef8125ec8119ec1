//! System calls per message, counted by `strace -c -f` attached to a server's process.
//!
//! strace stops the traced threads at every system call, so a traced server runs far slower:
//! only the counts are kept, never the timings. `-f` follows every thread and child the server
//! creates while attached, so a thread- or process-per-connection model's per-connection tasks
//! are counted too (the harness attaches before loadgen connects); the processes that already
//! exist (a pre-forked pool) are each attached by pid. `perf stat` with the
//! `raw_syscalls:sys_enter` tracepoint would cost less, but printed no counts in the VM this
//! suite was built on, so strace is the one tool used.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

/// How long strace may take to attach to every thread of the server.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(5);

/// What one traced repeat counted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Syscalls {
    /// System calls of the server tree while strace was attached.
    pub total: u64,
    /// Those that failed (EAGAIN from a drained socket, mostly).
    pub errors: u64,
    /// The most frequent calls, (name, count), most first.
    pub top: Vec<(String, u64)>,
    /// Messages echoed while attached (loadgen's received count; the traced run has no
    /// warm-up, so this is every message of the run).
    pub messages: u64,
}

impl Syscalls {
    /// System calls per message, if any message was echoed.
    pub fn per_message(&self) -> Option<f64> {
        (self.messages > 0).then(|| self.total as f64 / self.messages as f64)
    }
}

/// strace attached to a process.
#[derive(Debug)]
pub struct Trace {
    child: Child,
    out: PathBuf,
}

impl Trace {
    /// Attaches `strace -c -f` to `pid`, writing its summary to `out`, and returns once it has
    /// attached (strace says so on stderr).
    pub fn attach(pid: u32, out: &Path) -> Result<Trace> {
        // Every process of the tree, not only the root: `-f` follows what is created after
        // the attach, but a pool forked before it (prefork's children) must be named.
        let tree = crate::procstat::tree(pid).map(|t| t.iter().map(|p| p.pid).collect());
        let pids: Vec<u32> = tree.unwrap_or_else(|_| vec![pid]);
        let mut command = Command::new("strace");
        command.args(["-c", "-f", "-o"]).arg(out);
        for p in &pids {
            command.args(["-p", &p.to_string()]);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot run strace")?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = mpsc::channel();
        // The reader keeps draining after the attach line, so strace never blocks on a full
        // pipe; its sends fail harmlessly once this side stops listening.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut said = Vec::new();
        loop {
            match rx.recv_timeout(ATTACH_TIMEOUT) {
                Ok(line) if line.contains("attached") => {
                    return Ok(Trace { child, out: out.to_path_buf() });
                }
                Ok(line) => said.push(line),
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!("strace did not attach to {pid}: {}", said.join(" / "));
                }
            }
        }
    }

    /// Detaches (SIGINT, as Ctrl-C would) and reads the counts.
    pub fn finish(mut self, messages: u64) -> Result<Syscalls> {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGINT);
        self.child.wait().context("strace did not exit")?;
        let text = fs::read_to_string(&self.out)
            .with_context(|| format!("cannot read {}", self.out.display()))?;
        let _ = fs::remove_file(&self.out);
        let mut counts = parse(&text);
        counts.messages = messages;
        Ok(counts)
    }
}

/// Parses strace's `-c` table: `% time seconds usecs/call calls [errors] syscall` rows and the
/// `total` row.
pub fn parse(text: &str) -> Syscalls {
    let mut out = Syscalls::default();
    for line in text.lines() {
        let cells: Vec<&str> = line.split_whitespace().collect();
        if cells.len() < 5 || cells[0].parse::<f64>().is_err() {
            continue;
        }
        let name = cells[cells.len() - 1];
        let calls: u64 = cells[3].parse().unwrap_or(0);
        let errors: u64 = if cells.len() >= 6 { cells[4].parse().unwrap_or(0) } else { 0 };
        if name == "total" {
            out.total = calls;
            out.errors = errors;
        } else {
            out.top.push((name.to_string(), calls));
        }
    }
    out.top.sort_by_key(|t| std::cmp::Reverse(t.1));
    out.top.truncate(5);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_summary_table() {
        let text = "% time     seconds  usecs/call     calls    errors syscall\n\
                    ------ ----------- ----------- --------- --------- ----------------\n \
                    59.67    0.218682          27      7842           sendto\n \
                    38.71    0.141877          17      8275       382 recvfrom\n \
                    0.42    0.001529          20        74           epoll_wait\n\
                    ------ ----------- ----------- --------- --------- ----------------\n\
                    100.00    0.366471          22     16191       382 total\n";
        let s = Syscalls { messages: 7842, ..parse(text) };
        assert_eq!((s.total, s.errors), (16191, 382));
        assert_eq!(s.top[0], ("recvfrom".to_string(), 8275));
        assert!((s.per_message().unwrap() - 2.0646).abs() < 1e-3);
    }
}
