//! A server the user started and named with `--external NAME=ADDR[,pid=PID]` (their own
//! server, in any language), as the plan and the results record it; [`crate::target`] loads
//! it like a model.
//!
//! It has a module of its own, apart from target.rs, because the plan and the results hold
//! it while target.rs reads the results' faults: together they were a cycle.

use std::path::Path;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// A server the user started, as given with `--external`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct External {
    /// The name it goes by in the report.
    pub name: String,
    /// Its address, as loadgen's `--addr` takes it (`127.0.0.1:9000`, `unix:/tmp/s`).
    pub addr: String,
    /// Its process, whose tree the harness samples, if given.
    pub pid: Option<u32>,
}

impl External {
    /// Parses `NAME=ADDR` or `NAME=ADDR,pid=PID`.
    pub fn parse(text: &str) -> Result<External> {
        let usage = "--external takes NAME=ADDR or NAME=ADDR,pid=PID";
        let Some((name, rest)) = text.split_once('=') else { bail!("{usage} (got {text:?})") };
        let (addr, pid) = match rest.split_once(",pid=") {
            Some((addr, pid)) => match pid.trim().parse::<u32>() {
                Ok(pid) if pid > 0 => (addr, Some(pid)),
                _ => bail!("--external {name}: {pid:?} is not a process id"),
            },
            None => (rest, None),
        };
        let name = name.trim();
        let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !valid || addr.trim().is_empty() {
            bail!("{usage} (got {text:?})");
        }
        if let Some(pid) = pid
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            bail!("--external {name}: no process {pid} is running");
        }
        Ok(External { name: name.to_string(), addr: addr.trim().to_string(), pid })
    }
}
