//! The machine a run measured, as the report's environment table shows it.
//!
//! Each figure here can change results by a large factor: the core count (server and generator
//! share the machine), virtualization (a cross-CPU wake-up costs about 35 us in this VM), the
//! accept backlog ceiling (somaxconn), whether TIME_WAIT ports are reused (churn), and the
//! descriptor limit (idle). Anything unreadable is recorded as absent, never guessed.

use std::fs;
use std::process::Command;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// The environment of a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Environment {
    /// Host name.
    pub host: String,
    /// CPU model name from /proc/cpuinfo.
    pub cpu_model: Option<String>,
    /// CPUs this process may run on.
    pub cores: usize,
    /// Kernel release.
    pub kernel: Option<String>,
    /// Hypervisor and container, as far as they can be told (`systemd-detect-virt`, or the
    /// `hypervisor` CPU flag).
    pub virtualization: Option<String>,
    /// `net.core.somaxconn`: the ceiling on any listen backlog.
    pub somaxconn: Option<u64>,
    /// `net.ipv4.tcp_tw_reuse`: 0 off, 1 on, 2 loopback only.
    pub tcp_tw_reuse: Option<u64>,
    /// `net.ipv4.tcp_syn_linear_timeouts`: how many SYN retransmissions wait a fixed 1 s
    /// before the wait starts doubling (added in Linux 6.5; before it the wait doubles from
    /// the first, with retries 1 s, 3 s and 7 s after the first SYN). It decides when a
    /// connect dropped by a full listen queue tries again.
    #[serde(default)]
    pub tcp_syn_linear_timeouts: Option<u64>,
    /// `net.ipv4.ip_local_port_range`: the ephemeral ports a client can use.
    pub ip_local_port_range: Option<String>,
    /// Soft limit on open descriptors (RLIMIT_NOFILE) that server and generator inherit.
    pub fd_limit: Option<u64>,
    /// Git commit of the checkout, when run from one, with " (plus uncommitted changes)" when
    /// tracked files differ from it: then the binaries measured are not exactly that commit.
    pub git_commit: Option<String>,
}

impl Environment {
    /// Reads the environment of this machine.
    pub fn detect() -> Environment {
        Environment {
            host: read_trimmed("/proc/sys/kernel/hostname").unwrap_or_else(|| "unknown".into()),
            cpu_model: cpu_model(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel: read_trimmed("/proc/sys/kernel/osrelease"),
            virtualization: virtualization(),
            somaxconn: read_number("/proc/sys/net/core/somaxconn"),
            tcp_tw_reuse: read_number("/proc/sys/net/ipv4/tcp_tw_reuse"),
            tcp_syn_linear_timeouts: read_number("/proc/sys/net/ipv4/tcp_syn_linear_timeouts"),
            ip_local_port_range: read_trimmed("/proc/sys/net/ipv4/ip_local_port_range")
                .map(|r| r.split_whitespace().collect::<Vec<_>>().join("-")),
            fd_limit: nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
                .ok()
                .map(|(soft, _)| soft),
            git_commit: git_commit(),
        }
    }
}

fn read_trimmed(path: &str) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn read_number(path: &str) -> Option<u64> {
    read_trimmed(path)?.parse().ok()
}

fn git_commit() -> Option<String> {
    let commit = command_output("git", &["rev-parse", "--short=12", "HEAD"])?;
    let dirty = command_output("git", &["status", "--porcelain", "--untracked-files=no"]);
    Some(match dirty {
        Some(_) => format!("{commit} (plus uncommitted changes)"),
        None => commit,
    })
}

fn cpu_model() -> Option<String> {
    let info = fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

fn virtualization() -> Option<String> {
    // systemd-detect-virt tells a VM and a container apart; ask for each separately, since
    // its plain answer names only the innermost (a container inside a VM says "docker").
    let vm = command_output("systemd-detect-virt", &["--vm"]).filter(|v| v != "none");
    let container = command_output("systemd-detect-virt", &["--container"]).filter(|v| v != "none");
    let vm = vm.or_else(|| {
        let flags = fs::read_to_string("/proc/cpuinfo").ok()?;
        flags.contains(" hypervisor").then(|| "hypervisor (unknown kind)".to_string())
    });
    match (vm, container) {
        (Some(vm), Some(c)) => Some(format!("{vm} VM, {c} container")),
        (Some(vm), None) => Some(format!("{vm} VM")),
        (None, Some(c)) => Some(format!("{c} container")),
        (None, None) => None,
    }
}

/// Runs a small command and returns its trimmed stdout, or `None` if it is missing or fails
/// (systemd-detect-virt exits non-zero when it finds nothing, after printing "none").
fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).stderr(std::process::Stdio::null()).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!text.is_empty() && (out.status.success() || text == "none")).then_some(text)
}

/// The CPUs this process may run on, in order.
pub fn allowed_cpus() -> Result<Vec<usize>> {
    let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
        .context("cannot read this process's CPU affinity")?;
    Ok((0..nix::sched::CpuSet::count()).filter(|&c| set.is_set(c).unwrap_or(false)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_what_linux_always_has() {
        let env = Environment::detect();
        assert!(env.cores >= 1);
        assert!(env.kernel.is_some(), "kernel release is always in /proc");
        assert!(!env.host.is_empty());
        assert!(env.fd_limit.unwrap_or(0) > 0);
    }
}
