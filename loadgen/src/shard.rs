//! `--shard I/N`: one of N generators that together apply one load.
//!
//! Every shard is given the whole load's flags and the same `--start-at`, and takes its own
//! share: of the connections, of the idle ballast, and of the open-loop rate. Connections
//! split as integers, the remainder going one each to the first shards, so the shares add up
//! to the whole exactly; the rate splits in proportion to the connections, so every
//! connection is paced exactly as in the unsharded run. Shard I's connections carry the ids
//! the whole run would have given them (a block starting at the sum of the earlier shares),
//! and a payload names its connection (`payload.rs`), so an echo crossed between two
//! generators' connections still fails verification.
//!
//! The shards share nothing but the time, so each report carries a run identity: a hash of
//! the whole load's flags and the start time, the same on every shard of one run and
//! different for another run. `loadgen merge` (and the harness, through [`crate::combine`])
//! checks with it that the reports it adds are one run's, each shard once, none missing.

use std::fmt;

use anyhow::{Result, ensure};
use serde::{Deserialize, Serialize};

use crate::config::Config;

/// Shard `index` of `count`, both counted from 1 (`--shard 2/3`: the second of three).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

/// The most shards a load may be cut into: far more generator machines than anyone has.
pub const MAX_SHARDS: usize = 4096;

/// Parses `I/N` with 1 <= I <= N <= [`MAX_SHARDS`].
pub fn parse(text: &str) -> Result<Shard, String> {
    let bad = || format!("{text:?} is not a shard: give I/N, shard I of N counted from 1 (1/2)");
    let (i, n) = text.trim().split_once('/').ok_or_else(bad)?;
    let index: usize = i.trim().parse().map_err(|_| bad())?;
    let count: usize = n.trim().parse().map_err(|_| bad())?;
    if count == 0 || count > MAX_SHARDS {
        return Err(format!("{text:?}: the number of shards must be between 1 and {MAX_SHARDS}"));
    }
    if index == 0 || index > count {
        return Err(format!("{text:?}: the shard must be between 1 and {count} (counted from 1)"));
    }
    Ok(Shard { index, count })
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl From<Shard> for String {
    fn from(shard: Shard) -> String {
        shard.to_string()
    }
}

impl TryFrom<String> for Shard {
    type Error = String;
    fn try_from(text: String) -> Result<Shard, String> {
        parse(&text)
    }
}

/// What one shard ran, recorded in its report (`shard`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardInfo {
    pub shard: Shard,
    /// The same on every shard of one run: see [`run_id`].
    pub run_id: String,
    /// The id of this shard's first connection; its connections are the next `connections`.
    pub first_connection: usize,
    /// This shard's load connections (of the whole run's `config.connections`).
    pub connections: usize,
    /// This shard's idle ballast (of `config.idle`).
    pub idle: usize,
    /// This shard's open-loop rate (of `config.rate`).
    pub rate: Option<f64>,
}

/// Shard `shard`'s part of `whole` things: (the first one's number, how many).
pub fn share(whole: usize, shard: Shard) -> (usize, usize) {
    let (base, extra) = (whole / shard.count, whole % shard.count);
    let i = shard.index - 1;
    (i * base + i.min(extra), base + usize::from(i < extra))
}

/// Refuses a shard the configuration cannot give (called by [`Config::validate`]).
pub fn check(config: &Config, shard: Shard) -> Result<()> {
    ensure!(
        config.burst.is_none(),
        "--shard with --burst is not supported: a burst is one generator's simultaneous connects"
    );
    ensure!(
        config.start_at.is_some(),
        "--shard needs --start-at: the shards of one load must start together (and the start \
         time tells their run apart from others)"
    );
    ensure!(
        config.connections >= shard.count,
        "--shard {shard}: --connections {} cannot give each of {} shards a connection",
        config.connections,
        shard.count
    );
    Ok(())
}

/// The configuration shard `config.shard` runs (its share of connections, ballast and
/// rate, not sharded further), with what its report records; `None` when not sharded.
pub fn apply(config: &Config) -> (Config, Option<ShardInfo>) {
    let Some(shard) = config.shard else { return (config.clone(), None) };
    let (first_connection, connections) = share(config.connections, shard);
    let (_, idle) = share(config.idle, shard);
    let rate = config.rate.map(|r| r * connections as f64 / config.connections as f64);
    let mut own = config.clone();
    own.shard = None;
    own.connections = connections;
    own.idle = idle;
    own.rate = rate;
    let info =
        ShardInfo { shard, run_id: run_id(config), first_connection, connections, idle, rate };
    (own, Some(info))
}

/// The run identity of a sharded load: FNV-1a (64 bits, in hex) of the whole load's
/// configuration and start time, leaving out what each machine may set for itself (its
/// shard, its output files, its load threads and CPUs, its send slack).
pub fn run_id(config: &Config) -> String {
    let canonical = Config {
        shard: None,
        json: None,
        hlog: None,
        hlog_interval: Config::default().hlog_interval,
        marks: false,
        progress: false,
        threads: None,
        cpus: Vec::new(),
        send_slack: None,
        ..config.clone()
    };
    let text = serde_json::to_string(&canonical).unwrap_or_default();
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    #[test]
    fn shares_add_up_to_the_whole_with_the_remainder_first() {
        for whole in [2, 3, 7, 10, 1000, 1001] {
            for count in 1..=7.min(whole) {
                let mut next = 0;
                for index in 1..=count {
                    let (first, n) = share(whole, Shard { index, count });
                    assert_eq!(first, next, "{whole} in {count}: shard {index} starts elsewhere");
                    next += n;
                }
                assert_eq!(next, whole, "{whole} in {count} shards");
            }
        }
        assert_eq!(share(10, Shard { index: 1, count: 3 }), (0, 4));
        assert_eq!(share(10, Shard { index: 3, count: 3 }), (7, 3));
        assert_eq!(share(0, Shard { index: 2, count: 3 }), (0, 0));
    }

    #[test]
    fn the_rate_splits_with_the_connections_and_adds_up() {
        let start = SystemTime::now() + Duration::from_secs(60);
        let whole = Config {
            connections: 10,
            idle: 5,
            rate: Some(1234.5),
            start_at: Some(start),
            ..Config::default()
        };
        let shards: Vec<ShardInfo> = (1..=3)
            .map(|index| {
                let (own, info) =
                    apply(&Config { shard: Some(Shard { index, count: 3 }), ..whole.clone() });
                let info = info.unwrap();
                assert_eq!(
                    (own.connections, own.idle, own.rate),
                    (info.connections, info.idle, info.rate)
                );
                info
            })
            .collect();
        let rate: f64 = shards.iter().map(|s| s.rate.unwrap()).sum();
        assert!((rate - 1234.5).abs() < 1e-9, "{rate}");
        assert_eq!(shards.iter().map(|s| s.idle).sum::<usize>(), 5);
        // Every shard names the same run; another start or another load is another run.
        assert!(shards.iter().all(|s| s.run_id == shards[0].run_id));
        let later = Config { start_at: Some(start + Duration::from_secs(1)), ..whole.clone() };
        assert_ne!(run_id(&later), shards[0].run_id);
        assert_ne!(run_id(&Config { connections: 11, ..whole.clone() }), shards[0].run_id);
        // What a machine sets for itself does not make it another run.
        let own = Config { threads: Some(3), cpus: vec![0], ..whole.clone() };
        assert_eq!(run_id(&own), shards[0].run_id);
    }

    #[test]
    fn bad_shards_are_refused() {
        for bad in ["", "1", "0/2", "3/2", "1/0", "a/b", "-1/2", "1/2/3", "1/100000"] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(parse(" 2/3 "), Ok(Shard { index: 2, count: 3 }));
        let start = Some(SystemTime::now() + Duration::from_secs(60));
        let shard = Shard { index: 1, count: 4 };
        let few = Config { connections: 3, start_at: start, ..Config::default() };
        assert!(check(&few, shard).unwrap_err().to_string().contains("cannot give each"));
        let unsynchronised = Config { connections: 8, ..Config::default() };
        assert!(check(&unsynchronised, shard).unwrap_err().to_string().contains("--start-at"));
    }
}
