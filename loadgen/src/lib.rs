//! loadgen: an echo load generator that measures honestly.
//!
//! It drives any echo server (the suite's, or one a user points it at) and reports what the
//! server did, with the traps of load generation dealt with deliberately:
//!
//! - **Event loops, not threads per connection.** A few load threads (`--threads`, pinned with
//!   `--cpus`) each run one mio event loop over their share of the connections, so a thousand
//!   connections cost a thousand sockets, not a thousand stacks and context switches. The
//!   per-message path allocates nothing and makes no system call beyond one `read` and one
//!   `write`, each of which may carry many messages (`worker/`).
//! - **Coordinated omission.** A closed loop (send, wait, repeat) stops sending while the
//!   server stalls, so the stall shows up as one slow message. The open loop (`--rate`) sends
//!   on a schedule and measures from the *intended* send time, so a stall delays every message
//!   scheduled during it, as real clients would see; the uncorrected figure is kept beside it
//!   (`schedule.rs`).
//! - **Every byte checked.** Each message encodes its connection and sequence number, and each
//!   echoed byte is compared, so corruption and reordering are counted (`payload.rs`).
//! - **Nothing silently dropped.** Every message sent in the measured window (and every
//!   warm-up message still outstanding when it opens) ends up received, mismatched, timed out
//!   or lost, and the report's counts add up ([`Report::is_consistent`]).
//! - **The generator watches itself.** Load threads read their own CPU time and how long they
//!   waited for a CPU; a generator that was busy or starved most of the time, or fell behind
//!   its schedule, is flagged as saturated.
//! - **Datagrams too.** With `--addr udp:...` the same loops run over UDP (or Unix datagram)
//!   sockets, one per "connection", and lost, duplicated, reordered and corrupted datagrams
//!   are each counted beside the kernel's own UDP counters ([`udp`]).
//! - **Many machines.** Generators given the same `--start-at` begin their windows together
//!   (`start.rs`), and their interval logs (`--hlog`) and JSON reports merge into one set of
//!   percentiles ([`merge`]).
//!
//! The library entry point is [`run`]; the binary (`src/main.rs`) parses flags into a
//! [`Config`], installs the Ctrl-C handler that sets a [`Cancel`], and prints the summary.
//!
//! Code map: [`config`] (flags and checks) → [`run()`] in `run.rs` (the coordinating thread,
//! with `idle.rs` for the ballast) → `worker/` (the load threads' event loop; `open.rs` for the
//! open loop's sends) using `conn.rs` (one connection), `payload.rs`, `schedule.rs` (open loop)
//! and `meter.rs` (counting and timing) → `assemble.rs` (totals and the saturation verdict) →
//! [`report`] (the JSON schema) and [`summary`] (the text). UDP mode's load thread, sockets
//! and counters are [`udp`]; it shares the rest.

pub mod combine;
pub mod config;
pub mod env;
pub mod hlog;
pub mod marks;
pub mod merge;
pub mod report;
pub mod shard;
pub mod stats;
pub mod summary;
pub mod target;
pub mod udp;

mod assemble;
mod burst;
mod conn;
mod cpu;
mod idle;
mod meter;
mod pace;
mod payload;
mod phase;
mod progress;
mod run;
mod rxstamp;
mod schedule;
mod start;
mod worker;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub use config::{Config, Mode};
pub use marks::Mark;
pub use pace::auto_send_slack;
pub use report::Report;
pub use run::run;

/// A flag that ends a run early. Clones share the flag; setting it from any thread (or a
/// signal-handling thread) makes [`run`] stop sending, collect what is still in flight for a
/// moment, and return what it measured, marked as interrupted.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn new() -> Cancel {
        Cancel::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// "loadgen VERSION", as reports and logs name their author.
pub fn tool() -> String {
    format!("loadgen {}", env!("CARGO_PKG_VERSION"))
}
