//! A [`Config`] back into the flags that parse to it, for a program that starts the loadgen
//! binary (the echobench harness) and wants to say what it asks in loadgen's own types rather
//! than in strings it merges by hand.

use std::time::Duration;

use super::Config;

impl Config {
    /// The command line (without the program name) that parses back to this configuration:
    /// `--addr` always, every other flag only where the field differs from
    /// [`Config::default`], so the line stays as short as one written by hand.
    ///
    /// Two exceptions. `--timeout` is also given whenever the address is a `udp:` one: the
    /// binary replaces an absent `--timeout` with UDP's own default there, and the line must
    /// mean this configuration's timeout, whatever it is. And `progress` is no flag at all:
    /// the binary decides it from its terminal, so it is left out.
    pub fn to_args(&self) -> Vec<String> {
        // Destructured without `..`: a field added to `Config` fails to compile here until
        // this function says how it is written (the round-trip test then checks it).
        let Config {
            addr,
            connections,
            size,
            duration,
            warmup,
            timeout,
            threads,
            cpus,
            pipeline,
            rate,
            send_slack,
            churn,
            source_addrs,
            split_writes,
            burst,
            idle,
            idle_echo,
            json,
            hlog,
            hlog_interval,
            start_at,
            shard,
            marks,
            progress: _,
        } = self;
        let default = Config::default();
        let mut args = vec!["--addr".to_owned(), addr.clone()];
        let mut flag = |name: &str, value: Option<String>| {
            args.push(format!("--{name}"));
            args.extend(value);
        };
        if *connections != default.connections {
            flag("connections", Some(connections.to_string()));
        }
        if *size != default.size {
            flag("size", Some(size.to_string()));
        }
        if *duration != default.duration {
            flag("duration", Some(time(*duration)));
        }
        if *warmup != default.warmup {
            flag("warmup", Some(time(*warmup)));
        }
        if *timeout != default.timeout || addr.starts_with("udp:") {
            flag("timeout", Some(time(*timeout)));
        }
        if let Some(threads) = threads {
            flag("threads", Some(threads.to_string()));
        }
        if !cpus.is_empty() {
            let list: Vec<String> = cpus.iter().map(usize::to_string).collect();
            flag("cpus", Some(list.join(",")));
        }
        if *pipeline != default.pipeline {
            flag("pipeline", Some(pipeline.to_string()));
        }
        if let Some(rate) = rate {
            // `Display` of an f64 is the shortest text that parses back to the same value.
            flag("rate", Some(rate.to_string()));
        }
        if let Some(slack) = send_slack {
            flag("send-slack", Some(time(*slack)));
        }
        if *churn {
            flag("churn", None);
        }
        if *source_addrs != default.source_addrs {
            flag("source-addrs", Some(source_addrs.to_string()));
        }
        if *split_writes {
            flag("split-writes", None);
        }
        if let Some(burst) = burst {
            flag("burst", Some(burst.to_string()));
        }
        if *idle != default.idle {
            flag("idle", Some(idle.to_string()));
        }
        if *idle_echo {
            flag("idle-echo", None);
        }
        if let Some(json) = json {
            flag("json", Some(json.display().to_string()));
        }
        if let Some(hlog) = hlog {
            flag("hlog", Some(hlog.display().to_string()));
        }
        if *hlog_interval != default.hlog_interval {
            flag("hlog-interval", Some(time(*hlog_interval)));
        }
        if let Some(at) = start_at {
            flag("start-at", Some(crate::start::format(*at)));
        }
        if let Some(shard) = shard {
            flag("shard", Some(shard.to_string()));
        }
        if *marks {
            flag("marks", None);
        }
        args
    }
}

/// A duration as `--duration` reads it, to the nanosecond: whole milliseconds as `250ms`
/// (the form a person writes), anything finer in humantime's exact `1s 500us 3ns`.
fn time(d: Duration) -> String {
    if d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else {
        humantime::format_duration(d).to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::{Duration, SystemTime};

    use clap::Parser;

    use super::Config;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    fn round_trip(config: &Config) -> Config {
        let argv = std::iter::once("loadgen".to_owned()).chain(config.to_args());
        Cli::try_parse_from(argv).expect("to_args parses").config
    }

    #[test]
    fn every_field_set_parses_back_to_the_same_config() {
        // Every field away from its default, so a field that `to_args` forgets shows here.
        let config = Config {
            addr: "[::1]:7001".into(),
            connections: 3,
            size: 1000,
            duration: Duration::from_millis(1500),
            warmup: Duration::ZERO,
            timeout: Duration::new(2, 3),
            threads: Some(2),
            cpus: vec![0, 2],
            pipeline: 4,
            rate: Some(1234.5),
            send_slack: Some(Duration::from_micros(12)),
            churn: true,
            source_addrs: 5,
            split_writes: true,
            burst: Some(9),
            idle: 7,
            idle_echo: true,
            json: Some(PathBuf::from("/tmp/a b.json")),
            hlog: Some(PathBuf::from("x.hlog")),
            hlog_interval: Duration::from_millis(250),
            start_at: Some(SystemTime::UNIX_EPOCH + Duration::new(1_765_080_000, 500_000_001)),
            shard: Some(crate::shard::Shard { index: 2, count: 3 }),
            marks: true,
            progress: false,
        };
        let fields = serde_json::to_value(&config).unwrap();
        let defaults = serde_json::to_value(Config::default()).unwrap();
        for (name, value) in fields.as_object().unwrap() {
            let skipped = name == "progress";
            assert!(skipped || *value != defaults[name], "the test leaves {name} at its default");
        }
        assert_eq!(round_trip(&config), config);
    }

    #[test]
    fn defaults_are_left_out_except_the_address() {
        assert_eq!(Config::default().to_args(), ["--addr", "127.0.0.1:7000"]);
        assert_eq!(round_trip(&Config::default()), Config::default());
    }

    #[test]
    fn a_datagram_address_always_states_its_timeout() {
        // The binary would otherwise put UDP's 200 ms in place of the 5 s this config holds.
        let config = Config { addr: "udp:127.0.0.1:9".into(), ..Config::default() };
        assert_eq!(config.to_args(), ["--addr", "udp:127.0.0.1:9", "--timeout", "5000ms"]);
    }
}
