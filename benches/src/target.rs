//! What a scenario runs against: a server the harness started (a model), or one the user
//! started and named with `--external NAME=ADDR[,pid=PID]` (their own server, in any language).
//!
//! An external server is loaded exactly like a model, but the harness neither starts nor stops
//! it, so it cannot pass it flags or signal it. With a PID its process tree is sampled from
//! /proc like a model's (CPU per message, memory, threads); without one those figures are
//! absent and the report says why.

use std::path::Path;

pub use crate::external::External;
use crate::results::{Fault, FaultKind};
use crate::server::Server;

/// The server a scenario's points run against.
#[derive(Debug)]
pub enum Target {
    /// A model the harness started, and stops after the scenario.
    Started(Server),
    /// A server the user runs.
    External(External),
}

impl Target {
    /// The address loadgen is pointed at.
    pub fn addr(&self) -> &str {
        match self {
            Target::Started(s) => &s.addr,
            Target::External(e) => &e.addr,
        }
    }

    /// The root of the process tree to sample, if known.
    pub fn pid(&self) -> Option<u32> {
        match self {
            Target::Started(s) => Some(s.pid()),
            Target::External(e) => e.pid,
        }
    }

    /// A fault if the server has died: a started server that exited, or an external one whose
    /// process is gone. (An external server without a PID shows its death as loadgen's errors.)
    pub fn check_alive(&mut self) -> Option<Fault> {
        match self {
            Target::Started(s) => s.check_alive(),
            Target::External(e) => {
                let pid = e.pid?;
                (!Path::new(&format!("/proc/{pid}")).exists()).then(|| Fault {
                    kind: FaultKind::Crashed,
                    detail: format!("the external server's process {pid} is gone"),
                    stderr_tail: Vec::new(),
                })
            }
        }
    }

    /// The last lines of a started server's stderr (an external one's are not ours to read).
    pub fn stderr_tail(&self) -> Vec<String> {
        match self {
            Target::Started(s) => s.stderr_tail(),
            Target::External(_) => Vec::new(),
        }
    }
}
