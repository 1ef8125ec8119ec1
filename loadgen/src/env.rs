//! The machine a run happened on, recorded beside its figures: a number means little without
//! the CPU, the core count, the kernel, and whether it ran in a virtual machine.
//!
//! Everything is read from /proc and /sys; a field that cannot be read is left empty rather
//! than failing the run.

use std::fs;

use serde::{Deserialize, Serialize};

/// Where loadgen ran.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Environment {
    /// The CPU's model name, from /proc/cpuinfo.
    pub cpu_model: String,
    /// Logical CPUs online.
    pub cores: usize,
    /// CPUs this process was allowed to run on.
    pub allowed_cpus: Vec<usize>,
    /// Kernel release (`uname -r`).
    pub kernel: String,
    /// Distribution name, from /etc/os-release.
    pub os: String,
    pub hostname: String,
    /// "none", or what betrays a hypervisor or container (e.g. "vm (KVM)", "container").
    pub virtualization: String,
    /// The kernel's clock source; `tsc` makes reading the time cheap, others may not.
    pub clocksource: String,
    /// One-minute load average when the run started: a busy machine makes noisy figures.
    pub loadavg_1m: f64,
}

impl Environment {
    pub fn detect() -> Environment {
        let cpuinfo = read("/proc/cpuinfo");
        Environment {
            cpu_model: field(&cpuinfo, "model name").unwrap_or_default(),
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()).max(online_cpus()),
            allowed_cpus: crate::cpu::allowed_cpus().unwrap_or_default(),
            kernel: read("/proc/sys/kernel/osrelease"),
            os: os_name(),
            hostname: read("/proc/sys/kernel/hostname"),
            virtualization: virtualization(&cpuinfo),
            clocksource: read("/sys/devices/system/clocksource/clocksource0/current_clocksource"),
            loadavg_1m: read("/proc/loadavg")
                .split_whitespace()
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0),
        }
    }
}

fn read(path: &str) -> String {
    fs::read_to_string(path).map(|s| s.trim().to_owned()).unwrap_or_default()
}

/// The value of the first `key : value` line of /proc/cpuinfo.
fn field(cpuinfo: &str, key: &str) -> Option<String> {
    cpuinfo.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k.trim() == key).then(|| v.trim().to_owned())
    })
}

/// Counts the CPUs in /sys/devices/system/cpu/online, a list such as `0-3,6`.
fn online_cpus() -> usize {
    read("/sys/devices/system/cpu/online")
        .split(',')
        .filter_map(|part| match part.split_once('-') {
            Some((a, b)) => {
                Some(b.trim().parse::<usize>().ok()? + 1 - a.trim().parse::<usize>().ok()?)
            }
            None => part.trim().parse::<usize>().ok().map(|_| 1),
        })
        .sum()
}

fn os_name() -> String {
    let release = read("/etc/os-release");
    release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_owned())
        .unwrap_or_else(|| "Linux".to_owned())
}

fn virtualization(cpuinfo: &str) -> String {
    let mut found = Vec::new();
    let flags = field(cpuinfo, "flags").unwrap_or_default();
    if flags.split_whitespace().any(|f| f == "hypervisor") {
        let product = read("/sys/class/dmi/id/sys_vendor");
        let hv = read("/sys/hypervisor/type");
        let name =
            [product, hv].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join(", ");
        found.push(if name.is_empty() { "vm".to_owned() } else { format!("vm ({name})") });
    }
    let cgroup = read("/proc/1/cgroup");
    if fs::metadata("/.dockerenv").is_ok()
        || fs::metadata("/run/.containerenv").is_ok()
        || cgroup.contains("docker")
        || cgroup.contains("kubepods")
    {
        found.push("container".to_owned());
    }
    if found.is_empty() { "none".to_owned() } else { found.join(", ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machine_is_described() {
        let env = Environment::detect();
        assert!(env.cores >= 1);
        assert!(!env.kernel.is_empty());
        assert!(!env.virtualization.is_empty());
    }

    #[test]
    fn cpuinfo_fields_are_found() {
        let info =
            "processor\t: 0\nmodel name\t: Example CPU @ 2.0GHz\nflags\t\t: fpu hypervisor\n";
        assert_eq!(field(info, "model name").as_deref(), Some("Example CPU @ 2.0GHz"));
        assert_eq!(field(info, "nothing"), None);
    }
}
