//! The result of a run: every figure, the configuration and the environment. `--json` writes
//! exactly this, serialized; loadgen/SCHEMA.md documents each field. Fields are only ever
//! added; a change in meaning bumps [`SCHEMA_VERSION`], except a correction of a meaning that
//! was wrong (SCHEMA.md lists those). Fields added since a version began are
//! `#[serde(default)]`, so older reports still read back.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::config::{Config, Mode};
use crate::env::Environment;
use crate::stats::{self, Hist, Latency};

pub mod burst;
pub use burst::Burst;

/// The version of the JSON schema in SCHEMA.md. Version 2 added UDP mode's `udp` section and
/// `--burst`'s `burst` section; every field of version 1 kept its meaning, and version-1
/// reports read back (both sections `None`).
pub const SCHEMA_VERSION: u32 = 2;

/// `Default` is an empty report (nothing measured), for tools and tests that build one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    /// "loadgen VERSION".
    pub tool: String,
    /// When the run started (warmup included), RFC 3339 UTC.
    pub started_at: String,
    pub mode: Mode,
    /// The server's address as loadgen understood it.
    pub target: String,
    /// The configuration, with `threads` resolved to what actually ran.
    pub config: Config,
    pub run: RunInfo,
    pub throughput: Throughput,
    pub messages: Messages,
    /// Message latency, failures included: in the open loop from the intended send time;
    /// every message given up (timed out, lost, not sent on schedule) at its age then and
    /// never less than `--timeout`.
    pub latency_us: Latency,
    /// Latency of the echoed messages only, from the moment the kernel accepted the
    /// message's last byte (what a closed-loop tool reports).
    pub latency_us_uncorrected: Latency,
    /// Churn only: time for `connect` to complete. (Burst: from the burst's start.)
    pub connect_latency_us: Option<Latency>,
    /// Open loop only: how late messages left against their schedule.
    pub schedule_lag_us: Option<Latency>,
    pub errors: Errors,
    pub connections: Connections,
    pub generator: Generator,
    pub environment: Environment,
    /// `--burst` only: each connection's connect and echo latency and outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<Burst>,
    /// UDP mode only (`--addr udp:...`): what became of the datagrams, and the kernel's UDP
    /// counters. Absent from reports of other modes and of schema version 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp: Option<Datagrams>,
    /// `--shard` only: which shard this is, of which run, and its share of the load (the
    /// counts above are the shard's own; `config` is the whole load's, as given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::shard::ShardInfo>,
    /// Always written by loadgen; a consumer that keeps the histograms elsewhere (the
    /// comparison harness keeps them in interval logs) may store the report without them.
    #[serde(default, skip_serializing_if = "Histograms::is_empty")]
    pub histograms: Histograms,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// When the warm-up began, RFC 3339 UTC with microseconds: `config.start_at` when it was
    /// given and every connection was up by then, else the moment they were. The measured
    /// window opens `warmup_secs + window_wait_secs` later.
    #[serde(default)]
    pub began_at: Option<String>,
    pub warmup_secs: f64,
    /// How long after the warm-up the window waited for every connection's first echo (0
    /// when all had echoed by then). See loadgen/README.md, "Warm-up".
    #[serde(default)]
    pub window_wait_secs: f64,
    /// The measured window as it really was: from its opening until sending stopped.
    /// Every rate in the report is over this.
    pub measured_secs: f64,
    /// Time spent after the window waiting for the last echoes.
    pub drain_secs: f64,
    /// Cancelled (Ctrl-C, or the caller's `Cancel`) before the end.
    pub interrupted: bool,
    /// The measured window is shorter than `config.duration` (interrupted, or a failure).
    pub short: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    /// Intact echoes that arrived inside the measured window, per second of it
    /// (`messages.received_in_window / run.measured_secs`).
    pub msgs_per_sec: f64,
    /// The same in payload bytes (one direction), in MiB (2^20 bytes) per second.
    pub mib_per_sec: f64,
    /// Messages sent per second of the measured window, the ones carried over from warm-up
    /// left out (they were sent, or due, before it).
    pub sent_per_sec: f64,
    /// Open loop: the `--rate` asked for.
    pub target_msgs_per_sec: Option<f64>,
    /// Open loop: `sent_per_sec / target_msgs_per_sec`.
    pub achieved_ratio: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Messages {
    /// Messages meant for the measured window and wholly written to the socket (the kernel
    /// accepted their last byte). Equals received + errors.mismatch + errors.timeout +
    /// errors.lost.
    pub sent: u64,
    /// Echoes received whole and correct.
    pub received: u64,
    /// Intact echoes that arrived inside the measured window, whenever their message was sent
    /// (warmup's included; drain arrivals excluded): what `throughput.msgs_per_sec` counts.
    #[serde(default)]
    pub received_in_window: u64,
    /// Open loop: sends the schedule called for while their connection was down.
    pub not_sent: u64,
    /// Messages meant for the window that never wholly reached the socket: open-loop sends
    /// due while their connection's unwritten backlog was full, and messages still unwritten
    /// when their connection failed or the run ended. Not part of `sent`.
    #[serde(default)]
    pub backlogged: u64,
    /// Messages meant for the window (open loop: every send the schedule called for):
    /// `sent + not_sent + backlogged`.
    #[serde(default)]
    pub scheduled: u64,
    /// Warm-up messages still outstanding when the window opened, which belong to it from
    /// then on: part of `scheduled`, and of `sent` once written.
    #[serde(default)]
    pub carried_over: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

impl Messages {
    /// Adds another run's counts (for `loadgen merge`).
    pub fn add(&mut self, o: &Messages) {
        self.sent += o.sent;
        self.received += o.received;
        self.received_in_window += o.received_in_window;
        self.not_sent += o.not_sent;
        self.backlogged += o.backlogged;
        self.scheduled += o.scheduled;
        self.carried_over += o.carried_over;
        self.bytes_sent += o.bytes_sent;
        self.bytes_received += o.bytes_received;
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Errors {
    /// Connection attempts that failed or timed out.
    pub connect: u64,
    /// Established connections that broke (reset, closed by the server, unexpected bytes).
    pub io: u64,
    /// Messages with no complete echo within `--timeout`.
    pub timeout: u64,
    /// Messages whose echo differed from what was sent.
    pub mismatch: u64,
    /// Messages in flight on a connection that broke, or when the run was cancelled.
    pub lost: u64,
    /// The first error the figures above include (none when they are all 0).
    pub first_error: Option<String>,
    /// The first error before the measured window (warm-up, idle ballast), which no figure
    /// includes.
    #[serde(default)]
    pub first_warmup_error: Option<String>,
    pub first_mismatch: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Connections {
    /// Load connections asked for (churn: open at once).
    pub requested: usize,
    /// Load connections up when the run started.
    pub up_at_start: u64,
    /// Connections established during the measured window (churn: one per message;
    /// otherwise reconnections).
    pub established: u64,
    pub idle_requested: usize,
    pub idle_opened: usize,
    /// Idle connections the server had closed by the end of the run.
    pub idle_closed_by_server: usize,
    /// With `--idle-echo`: idle connections whose one message was echoed intact before they
    /// went quiet (0 without it).
    #[serde(default)]
    pub idle_echoed: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Generator {
    pub threads: usize,
    /// CPUs the load threads were pinned to; empty when not pinned.
    pub cpus: Vec<usize>,
    /// CPU time of the load threads over the measured window and drain (user + system).
    pub cpu_seconds: f64,
    pub user_seconds: f64,
    pub system_seconds: f64,
    /// CPU time of the whole loadgen process, setup and warmup included.
    pub process_cpu_seconds: f64,
    /// Always 0: the open loop used to spin in zero-timeout polls before a send and counted
    /// that here; it now sleeps and sends early within a slack instead. Kept so that readers
    /// of version 1 reports still find it.
    pub spin_seconds: f64,
    /// The busiest load thread's CPU time over its wall time; 1.0 is a
    /// whole CPU. Above 0.9 the generator counts as saturated.
    pub max_thread_utilization: f64,
    /// Time the load threads were runnable but waiting for a CPU (held by other threads or
    /// processes), summed over threads, over the same span as `cpu_seconds`
    /// (`/proc/thread-self/schedstat`). `None` without scheduler statistics.
    #[serde(default)]
    pub run_delay_seconds: Option<f64>,
    /// The largest share of its wall time a load thread spent waiting for a CPU.
    #[serde(default)]
    pub max_thread_run_delay: Option<f64>,
    /// The largest share of its wall time a load thread wanted a CPU: its utilization (as in
    /// `max_thread_utilization`) plus its run delay. Near 1.0 the thread never idled.
    #[serde(default)]
    pub max_thread_demand: Option<f64>,
    /// Per CPU the load threads were pinned to: how many ran there and their summed
    /// utilization (1.0 is the whole CPU).
    #[serde(default)]
    pub pinned_cpus: Vec<PinnedCpu>,
    /// `cpu_seconds` per message received, in microseconds; `None` when none was.
    pub cpu_us_per_msg: Option<f64>,
    /// Open loop: how early a send could leave so that one wake-up sent several: `--send-slack`
    /// or chosen from `wake_cost_us`, and at most ten of a thread's send intervals (the
    /// largest of the threads' figures).
    #[serde(default)]
    pub send_slack_us: Option<f64>,
    /// Open loop: the CPU one sleep and wake-up of a thread cost on this machine, measured at
    /// the start: the automatic slack is 32 times it, within bounds, and the loop never sleeps
    /// for less. `None` if it could not be measured.
    #[serde(default)]
    pub wake_cost_us: Option<f64>,
    /// Open loop: messages sent per wake-up of a load thread by its send timer.
    #[serde(default)]
    pub sends_per_wakeup: Option<f64>,
    /// Open loop: whether every echo was timed by the kernel's receive stamp, taken when it
    /// arrived, rather than when the load thread read it (which then happens at its next
    /// send). False over Unix sockets and UDP, whose echoes are read as they come.
    #[serde(default)]
    pub echoes_stamped_by_kernel: Option<bool>,
    /// The generator may have limited the result: see `saturation`.
    pub saturated: bool,
    /// Why `saturated` is set, one sentence per reason.
    pub saturation: Vec<String>,
}

/// UDP mode's own figures. Lost and corrupt datagrams are also `errors.lost` and
/// `errors.mismatch`, so `messages.sent = messages.received + lost + corrupt`; the other counts
/// are of echoes that settle nothing (duplicates, late, unexpected) or settled one out of order.
/// Like every count, only datagrams that belong to the measured window count.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Datagrams {
    /// Datagrams with no echo within `--timeout` (or still missing when the drain ended or the
    /// run was cancelled): `errors.lost`.
    pub lost: u64,
    /// `lost / messages.sent` (0 when nothing was sent).
    pub loss_ratio: f64,
    /// Datagrams whose echo named them but differed (length or bytes): `errors.mismatch`.
    pub corrupt: u64,
    /// Extra echoes of a datagram already answered.
    pub duplicated: u64,
    /// Intact echoes that arrived after the echo of a later datagram of the same socket
    /// (received, and counted here too).
    pub reordered: u64,
    /// Echoes that arrived after their datagram was declared lost (it stays lost).
    pub late: u64,
    /// Datagrams received that answer nothing the socket sent (too short, naming another socket
    /// or a datagram never sent, or one settled more than 256 datagrams before the socket's
    /// oldest still waiting).
    pub unexpected: u64,
    /// Sends or receives refused with "connection refused" (an ICMP port unreachable came back).
    pub refused: u64,
    /// The kernel's UDP counters over the whole run, machine-wide; `None` over Unix datagram
    /// sockets (they have none) or when /proc could not be read.
    pub kernel: Option<KernelUdp>,
}

/// How much the kernel's UDP counters rose from just before the load threads started to just
/// after they finished (warm-up and drain included). **Machine-wide**: every process's
/// datagrams of the family count, not only this run's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KernelUdp {
    /// `"Udp"` (IPv4, /proc/net/snmp) or `"Udp6"` (IPv6, /proc/net/snmp6).
    pub family: String,
    pub in_datagrams: u64,
    pub out_datagrams: u64,
    /// Datagrams received that could not be delivered (includes `rcvbuf_errors`).
    pub in_errors: u64,
    /// Datagrams dropped because the receiving socket's buffer was full.
    pub rcvbuf_errors: u64,
    /// Sends that failed because the sending socket's buffer was full.
    pub sndbuf_errors: u64,
    /// Datagrams to a port nobody listened on.
    pub no_ports: u64,
}

/// One CPU the load threads were pinned to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PinnedCpu {
    pub cpu: usize,
    /// Load threads pinned to it.
    pub threads: usize,
    /// Their CPU time over their wall time, summed.
    pub utilization: f64,
}

/// The histograms behind every latency figure, in nanoseconds, each as base64 of the
/// compressed V2 HdrHistogram encoding (what `loadgen merge` and the HdrHistogram tools read).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histograms {
    pub latency: String,
    pub latency_uncorrected: String,
    pub connect: Option<String>,
    pub schedule_lag: Option<String>,
}

impl Histograms {
    /// No histogram at all (an encoded histogram, even an empty one, is never empty text).
    pub fn is_empty(&self) -> bool {
        self.latency.is_empty()
            && self.latency_uncorrected.is_empty()
            && self.connect.is_none()
            && self.schedule_lag.is_none()
    }

    pub fn latency(&self) -> Result<Hist> {
        stats::decode(&self.latency)
    }

    pub fn latency_uncorrected(&self) -> Result<Hist> {
        stats::decode(&self.latency_uncorrected)
    }
}

impl Report {
    /// The accounting invariant: every message sent in the window was received intact or is
    /// counted as exactly one kind of error.
    pub fn is_consistent(&self) -> bool {
        let e = &self.errors;
        self.messages.sent == self.messages.received + e.mismatch + e.timeout + e.lost
    }

    /// Reads a report back from its JSON.
    pub fn from_json(text: &str) -> Result<Report> {
        Ok(serde_json::from_str(text)?)
    }
}
