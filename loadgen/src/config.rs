//! What a run is asked to do: the flags of `loadgen [run]`, which are also the fields of the
//! [`Config`] a library caller fills in, and the checks that turn nonsense into one clear error.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};

use crate::target::Target;

mod args;

/// Everything a run needs. Build one in code with `Config { connections: 100,
/// ..Config::default() }`, or let the binary parse it from flags (same names, same defaults).
/// Durations serialize as seconds (floating point) in the JSON report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(default)]
pub struct Config {
    /// Echo server to load: `HOST:PORT`, `[V6]:PORT` or `unix:PATH` (the forms the servers
    /// print); a datagram server as `udp:HOST:PORT`, `udp:[V6]:PORT` or `udp:unix:PATH`.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7000")]
    pub addr: String,

    /// Connections carrying load (with --churn: connections open at once, each replaced by a
    /// new one after every message).
    #[arg(long, short = 'c', value_name = "N", default_value_t = 10)]
    pub connections: usize,

    /// Bytes per message (accepts suffixes: 4k, 1KiB, 1M).
    #[arg(long, short = 's', value_name = "BYTES", default_value = "64", value_parser = parse_size)]
    pub size: usize,

    /// Length of the measured window, after warmup (10s, 500ms, 2m; a bare number is seconds).
    #[arg(long, short = 'd', value_name = "TIME", default_value = "10s", value_parser = parse_duration)]
    #[serde(with = "secs")]
    pub duration: Duration,

    /// Load applied before measuring starts; nothing it does appears in any figure.
    #[arg(long, short = 'w', value_name = "TIME", default_value = "1s", value_parser = parse_duration)]
    #[serde(with = "secs")]
    pub warmup: Duration,

    /// How long one message may wait for its echo before it counts as a timeout (the
    /// connection is then closed and reopened); also the longest wait for stragglers at the end.
    /// Over UDP a datagram not echoed by then is lost; there the binary's default is 200ms.
    #[arg(long, value_name = "TIME", default_value = "5s", value_parser = parse_duration)]
    #[serde(with = "secs")]
    pub timeout: Duration,

    /// Load threads, each running one event loop over a share of the connections.
    /// Default: one per --cpus entry, else min(connections, available CPUs).
    #[arg(long, short = 't', value_name = "N")]
    pub threads: Option<usize>,

    /// Pin the load threads to these CPUs, round robin (e.g. `1` or `0,1`).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub cpus: Vec<usize>,

    /// Closed loop: messages kept in flight on each connection.
    #[arg(long, short = 'p', value_name = "K", default_value_t = 1)]
    pub pipeline: usize,

    /// Open loop: total messages per second, sent on schedule whether or not echoes came back
    /// (accepts 50k, 1.5M). Latency then counts from the intended send time.
    #[arg(long, short = 'r', value_name = "MSGS_PER_SEC", value_parser = parse_rate)]
    pub rate: Option<f64>,

    /// Open loop: how early a send may leave, so that one wake-up of the load thread sends
    /// every message due within it; never more than ten of a thread's send intervals (0:
    /// nothing early). Default: 32 times what one sleep and wake-up of a thread costs on this
    /// machine, measured at the start, between 50us and 1ms.
    #[arg(long, value_name = "TIME", value_parser = parse_duration)]
    #[serde(with = "opt_secs")]
    pub send_slack: Option<Duration>,

    /// Open a new connection for every message: connect, send, read the echo, close.
    #[arg(long)]
    pub churn: bool,

    /// With --churn to a 127.x.y.z address: spread connections over this many loopback
    /// source addresses (127.0.0.1, 127.0.0.2, ...); each brings its own ~28k ephemeral ports.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub source_addrs: usize,

    /// Write every message in two calls, its first half and then the rest, each leaving as
    /// a segment of its own (to show how a server's Nagle setting meets a split message).
    #[arg(long)]
    pub split_writes: bool,

    /// Burst: open N connections at once, send one message on each and wait for its echo,
    /// then close; each connect and each echo gets --timeout. Reports every connection's
    /// connect latency and outcome. --connections, --duration, --warmup and --threads do not
    /// apply: one thread opens the whole burst.
    #[arg(long, value_name = "N")]
    pub burst: Option<usize>,

    /// Extra connections held open and silent for the whole run (ballast).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub idle: usize,

    /// Each --idle connection first sends one message of --size bytes and waits for its echo
    /// (checked byte for byte) before going quiet, as a keep-alive connection has after a
    /// request; without it the idle connections never send.
    #[arg(long)]
    #[serde(default)]
    pub idle_echo: bool,

    /// Write the full report (every figure, the configuration, the environment) as JSON; `-`
    /// writes it to standard output, and the summary (and --marks) to stderr instead.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,

    /// Write an HdrHistogram interval log (compressed V2) of the latencies, in nanoseconds.
    #[arg(long, value_name = "PATH")]
    pub hlog: Option<PathBuf>,

    /// Length of one interval in the --hlog file.
    #[arg(long, value_name = "TIME", default_value = "1s", value_parser = parse_duration)]
    #[serde(with = "secs")]
    pub hlog_interval: Duration,

    /// Begin the warm-up at this wall-clock time, after opening the connections, so that
    /// generators on several machines measure the same window: RFC 3339 in UTC
    /// (2026-12-07T03:00:00Z) or Unix seconds (@1765080000.5). At most an hour ahead.
    #[arg(long, value_name = "TIME", value_parser = crate::start::parse)]
    #[serde(with = "crate::start::opt_rfc3339")]
    pub start_at: Option<SystemTime>,

    /// Run shard I of N of the load the other flags describe: its share of --connections,
    /// --idle and --rate, with connection ids unique across the shards (see `shard.rs`).
    /// Needs --start-at, the same on every shard.
    #[arg(long, value_name = "I/N", value_parser = crate::shard::parse)]
    #[serde(default)]
    pub shard: Option<crate::shard::Shard>,

    /// Print `window start` on stdout when the measured window opens and `window end` when it
    /// closes, each the moment it happens, for a caller that measures the server over the same
    /// window (the echobench harness). No marks in burst mode, which has no window.
    #[arg(long)]
    #[serde(default)]
    pub marks: bool,

    /// Draw a progress bar on stderr. Library callers get none unless they ask; the binary
    /// turns it on when stderr is a terminal (and off with --no-progress).
    #[arg(skip)]
    pub progress: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: "127.0.0.1:7000".to_owned(),
            connections: 10,
            size: 64,
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
            threads: None,
            cpus: Vec::new(),
            pipeline: 1,
            rate: None,
            send_slack: None,
            churn: false,
            source_addrs: 16,
            split_writes: false,
            burst: None,
            idle: 0,
            idle_echo: false,
            json: None,
            hlog: None,
            hlog_interval: Duration::from_secs(1),
            start_at: None,
            shard: None,
            marks: false,
            progress: false,
        }
    }
}

/// The three ways of driving a server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Each connection waits for its echoes before sending more.
    #[default]
    Closed,
    /// Messages leave on a fixed schedule.
    Open,
    /// One connection per message.
    Churn,
    /// Many connections opened at once, one message each (`--burst`).
    Burst,
}

/// The largest message loadgen accepts: beyond this the test is of memory, not of echo.
const MAX_SIZE: usize = 64 << 20;
/// The longest duration any flag takes (--duration, --warmup, --timeout, --hlog-interval):
/// thirty days is longer than any load test, and far from the clock arithmetic's limits.
const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);
/// The open loop's rate bounds: a send per 1,000 seconds at the least (slower schedules are
/// better written by hand), a billion a second at the most (no generator gets near it).
const MIN_RATE: f64 = 1e-3;
const MAX_RATE: f64 = 1e9;
/// The most `--send-slack` may be: sends any earlier would make a schedule a different one.
const MAX_SEND_SLACK: Duration = Duration::from_millis(10);
/// Most connections (load or idle), load threads, and bytes a pipeline may hold per
/// connection: beyond these the run is a test of loadgen's memory, not of the server.
const MAX_CONNECTIONS: usize = 1 << 20;
const MAX_THREADS: usize = 1024;
const MAX_PIPELINE_BYTES: usize = 256 << 20;

/// The shortest interval of the interval log: every interval costs a merged recorder of
/// about a megabyte and a line per histogram, and a shorter one says nothing more.
const MIN_HLOG_INTERVAL: Duration = Duration::from_millis(10);

impl Config {
    /// Which mode the flags select.
    pub fn mode(&self) -> Mode {
        match (self.churn, self.rate) {
            _ if self.burst.is_some() => Mode::Burst,
            (true, _) => Mode::Churn,
            (false, Some(_)) => Mode::Open,
            (false, None) => Mode::Closed,
        }
    }

    /// Checks every field and every combination, and parses the address.
    pub fn validate(&self) -> Result<Target> {
        let target =
            Target::parse(&self.addr).with_context(|| format!("bad --addr {:?}", self.addr))?;
        ensure!(self.connections >= 1, "--connections must be at least 1");
        ensure!(
            self.connections <= MAX_CONNECTIONS,
            "--connections must be at most {MAX_CONNECTIONS}"
        );
        ensure!(self.idle <= MAX_CONNECTIONS, "--idle must be at most {MAX_CONNECTIONS}");
        ensure!(!self.idle_echo || self.idle > 0, "--idle-echo needs --idle N (N above 0)");
        ensure!(self.size >= 1, "--size must be at least 1 byte");
        ensure!(self.size <= MAX_SIZE, "--size must be at most {MAX_SIZE} bytes");
        ensure!(
            !self.split_writes || self.size >= 2,
            "--split-writes needs --size of at least 2 bytes (a message to cut in two)"
        );
        ensure!(!self.duration.is_zero(), "--duration must be longer than zero");
        ensure!(!self.timeout.is_zero(), "--timeout must be longer than zero");
        for (flag, value) in [
            ("--duration", self.duration),
            ("--warmup", self.warmup),
            ("--timeout", self.timeout),
            ("--hlog-interval", self.hlog_interval),
        ] {
            ensure!(value <= MAX_DURATION, "{flag} must be at most 30 days");
        }
        ensure!(
            self.hlog_interval >= MIN_HLOG_INTERVAL,
            "--hlog-interval must be at least {} ms",
            MIN_HLOG_INTERVAL.as_millis()
        );
        ensure!(self.pipeline >= 1, "--pipeline must be at least 1");
        ensure!(
            self.pipeline.saturating_mul(self.size) <= MAX_PIPELINE_BYTES,
            "--pipeline x --size must be at most {} MiB per connection",
            MAX_PIPELINE_BYTES >> 20
        );
        ensure!(self.source_addrs >= 1, "--source-addrs must be at least 1");
        // 127.0.0.1 onwards, all inside 127.0.0.0/8.
        ensure!(self.source_addrs < 1 << 24, "--source-addrs must be below {}", 1 << 24);
        if let Some(threads) = self.threads {
            ensure!(threads >= 1, "--threads must be at least 1");
            ensure!(threads <= MAX_THREADS, "--threads must be at most {MAX_THREADS}");
        }
        if let Some(rate) = self.rate {
            ensure!(
                rate.is_finite() && (MIN_RATE..=MAX_RATE).contains(&rate),
                "--rate must be between {MIN_RATE} and {MAX_RATE:e} messages per second"
            );
            ensure!(!self.churn, "--rate with --churn is not supported: churn runs closed loop");
            ensure!(
                self.pipeline == 1,
                "--pipeline is for the closed loop; with --rate the schedule decides what is in flight"
            );
        }
        if let Some(slack) = self.send_slack {
            ensure!(self.rate.is_some(), "--send-slack is for the open loop: give --rate too");
            ensure!(
                slack <= MAX_SEND_SLACK,
                "--send-slack must be at most {} ms",
                MAX_SEND_SLACK.as_millis()
            );
        }
        if self.churn {
            ensure!(
                self.pipeline == 1,
                "--pipeline with --churn is not supported: a churn connection carries one message"
            );
        }
        if let Some(burst) = self.burst {
            ensure!(
                (1..=MAX_CONNECTIONS).contains(&burst),
                "--burst must be between 1 and {MAX_CONNECTIONS} connections"
            );
            for (flag, given) in [
                ("--rate", self.rate.is_some()),
                ("--churn", self.churn),
                ("--pipeline", self.pipeline > 1),
                ("--idle", self.idle > 0),
            ] {
                ensure!(
                    !given,
                    "--burst with {flag} is not supported: a burst sends one message per connection"
                );
            }
            ensure!(
                self.start_at.is_none(),
                "--burst with --start-at is not supported: a burst begins as soon as loadgen starts"
            );
        }
        if let Target::Datagram(peer) = &target {
            crate::udp::check(self, peer)?;
        }
        if let Some(at) = self.start_at {
            crate::start::check(at, SystemTime::now())?;
        }
        if let Some(shard) = self.shard {
            crate::shard::check(self, shard)?;
        }
        let available =
            crate::cpu::allowed_cpus().context("cannot read this process's CPU affinity")?;
        for cpu in &self.cpus {
            if !available.contains(cpu) {
                bail!("--cpus {cpu}: this process may only run on CPUs {available:?}");
            }
        }
        Ok(target)
    }

    /// The number of load threads this configuration runs.
    pub fn resolved_threads(&self) -> usize {
        let wanted = match self.threads {
            Some(threads) => threads,
            None if !self.cpus.is_empty() => self.cpus.len(),
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        // A thread without a connection would only spin its own loop.
        wanted.clamp(1, self.connections.max(1))
    }
}

/// Parses `10s`, `500ms`, `1m 30s` (humantime) or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if let Ok(secs) = text.trim().parse::<f64>() {
        return Duration::try_from_secs_f64(secs)
            .map_err(|_| format!("{text:?} is not a duration"));
    }
    humantime::parse_duration(text.trim())
        .map_err(|err| format!("{text:?} is not a duration ({err})"))
}

/// Parses a byte count with an optional k/K/KiB/m/M/MiB suffix (all binary: 1k = 1024).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, suffix) = text.split_at(split);
    let scale = match suffix.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        _ => return Err(format!("{text:?} is not a size (try 64, 4k, 1MiB)")),
    };
    let count: usize =
        digits.parse().map_err(|_| format!("{text:?} is not a size (try 64, 4k, 1MiB)"))?;
    count.checked_mul(scale).ok_or_else(|| format!("{text:?} is too large"))
}

/// Parses a rate with an optional k or M suffix (decimal: 50k = 50,000).
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let (number, scale) = match text.char_indices().last() {
        Some((at, 'k' | 'K')) => (&text[..at], 1e3),
        Some((at, 'm' | 'M')) => (&text[..at], 1e6),
        _ => (text, 1.0),
    };
    let value: f64 =
        number.parse().map_err(|_| format!("{text:?} is not a rate (try 50000, 50k)"))?;
    Ok(value * scale)
}

/// Serde helper: a `Duration` as floating-point seconds, the unit every JSON field uses.
pub(crate) mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(value.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(deserializer)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

/// Serde helper: an optional `Duration` as floating-point seconds, or `null`.
pub(crate) mod opt_secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => super::secs::serialize(d, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        match Option::<f64>::deserialize(deserializer)? {
            Some(secs) => {
                Duration::try_from_secs_f64(secs).map(Some).map_err(serde::de::Error::custom)
            }
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    #[test]
    fn defaults_agree_between_flags_and_code() {
        let parsed = Cli::try_parse_from(["loadgen"]).unwrap().config;
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn humane_values_parse() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert!(parse_size("-1").is_err());
        assert_eq!(parse_rate("50k"), Ok(50_000.0));
        assert!(parse_rate("fast").is_err());
    }

    #[test]
    fn impossible_combinations_are_refused() {
        let bad = [
            Config { connections: 0, ..Config::default() },
            Config { size: 0, ..Config::default() },
            Config { rate: Some(100.0), churn: true, ..Config::default() },
            Config { rate: Some(0.0), ..Config::default() },
            Config { pipeline: 4, churn: true, ..Config::default() },
            Config { addr: "nonsense".to_owned(), ..Config::default() },
            Config { cpus: vec![100_000], ..Config::default() },
            Config { hlog_interval: Duration::from_millis(1), ..Config::default() },
            Config { duration: Duration::from_secs(31 * 24 * 3600), ..Config::default() },
            Config { warmup: Duration::MAX, ..Config::default() },
            Config { timeout: Duration::MAX, ..Config::default() },
            Config { rate: Some(1e-300), ..Config::default() },
            Config { rate: Some(1e300), ..Config::default() },
            Config { rate: Some(f64::NAN), ..Config::default() },
            Config { idle: usize::MAX, ..Config::default() },
            Config { idle_echo: true, ..Config::default() },
            Config { pipeline: 1 << 40, ..Config::default() },
            Config { source_addrs: 1 << 40, churn: true, ..Config::default() },
            Config { threads: Some(1 << 20), ..Config::default() },
            Config { split_writes: true, size: 1, ..Config::default() },
            Config { burst: Some(0), ..Config::default() },
            Config { burst: Some(10), rate: Some(100.0), ..Config::default() },
            Config { burst: Some(10), churn: true, ..Config::default() },
            Config { burst: Some(10), pipeline: 2, ..Config::default() },
            Config { burst: Some(10), idle: 1, ..Config::default() },
            Config {
                burst: Some(10),
                start_at: Some(SystemTime::now() + Duration::from_secs(10)),
                ..Config::default()
            },
            Config { addr: "udp:127.0.0.1:7".to_owned(), churn: true, ..Config::default() },
            Config { addr: "udp:127.0.0.1:7".to_owned(), idle: 1, ..Config::default() },
            Config { addr: "udp:127.0.0.1:7".to_owned(), burst: Some(4), ..Config::default() },
            Config { addr: "udp:127.0.0.1:7".to_owned(), split_writes: true, ..Config::default() },
            Config { addr: "udp:127.0.0.1:7".to_owned(), size: 7, ..Config::default() },
            Config { addr: "udp:127.0.0.1:7".to_owned(), size: 65_508, ..Config::default() },
            Config { addr: "udp:[::1]:7".to_owned(), size: 65_528, ..Config::default() },
            Config {
                start_at: Some(SystemTime::now() - Duration::from_secs(60)),
                ..Config::default()
            },
            Config {
                start_at: Some(SystemTime::now() + Duration::from_secs(7200)),
                ..Config::default()
            },
        ];
        for config in bad {
            assert!(config.validate().is_err(), "{config:?} was accepted");
        }
        assert!(Config::default().validate().is_ok());
        let largest = Config { addr: "udp:[::1]:7".to_owned(), size: 65_527, ..Config::default() };
        assert!(largest.validate().is_ok());
    }

    #[test]
    fn threads_follow_cpus_and_never_outnumber_connections() {
        let pinned = Config { cpus: vec![0], connections: 100, ..Config::default() };
        assert_eq!(pinned.resolved_threads(), 1);
        let few = Config { threads: Some(8), connections: 2, ..Config::default() };
        assert_eq!(few.resolved_threads(), 2);
    }
}
