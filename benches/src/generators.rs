//! The generators on other machines (`--generator`, run by [`crate::remote`]): where they
//! are ([`Remote`], in the plan) and what each did in a repeat ([`Generators`]: launcher,
//! host, CPUs, load threads and start, and how far apart the starts were).

use std::path::Path;
use std::time::SystemTime;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// Where the load comes from when it is not this machine's loadgen (results.json: `plan.remote`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Remote {
    /// Each generator's launcher, as given.
    pub generators: Vec<String>,
    /// The address the servers bind and the generators dial (`None`: 127.0.0.1).
    pub server_addr: Option<String>,
    /// loadgen's path on the generator hosts (`None`: this machine's loadgen's path).
    pub generator_bin: Option<String>,
}

impl Remote {
    /// The flags checked; `None` when none of them was given.
    pub fn from_flags(
        generators: &[String],
        server_addr: Option<&str>,
        generator_bin: Option<&Path>,
    ) -> Result<Option<Remote>> {
        for launcher in generators {
            match split(launcher) {
                Ok(words) if words.is_empty() => bail!("--generator: the launcher is empty"),
                Ok(_) => {}
                Err(e) => bail!("--generator {launcher:?}: {e}"),
            }
        }
        if let Some(addr) = server_addr
            && addr.trim().parse::<std::net::IpAddr>().is_err()
        {
            bail!("--server-addr {addr:?} is not an IP address (the servers bind it)");
        }
        if generator_bin.is_some() && generators.is_empty() {
            bail!("--generator-bin names loadgen on the generator hosts: give --generator too");
        }
        if generators.is_empty() && server_addr.is_none() {
            return Ok(None);
        }
        Ok(Some(Remote {
            generators: generators.to_vec(),
            server_addr: server_addr.map(|a| a.trim().to_owned()),
            generator_bin: generator_bin.map(|p| p.display().to_string()),
        }))
    }

    /// The host part of a server's `--addr` (`198.18.0.1`, `[fd00::1]`).
    pub fn bind_host(&self) -> String {
        match self.server_addr.as_deref().map(str::parse::<std::net::IpAddr>) {
            Some(Ok(std::net::IpAddr::V6(v6))) => format!("[{v6}]"),
            Some(Ok(v4)) => v4.to_string(),
            _ => "127.0.0.1".to_owned(),
        }
    }
}

/// What the generators of one repeat were and did (results.json: a repeat's `generators`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Generators {
    /// The `--start-at` they were given (absent for a point run on the first alone).
    pub start_at: Option<String>,
    /// Latest minus earliest actual start (`run.began_at`) of their warm-ups, milliseconds;
    /// `None` with fewer than two generators.
    pub start_spread_ms: Option<f64>,
    pub each: Vec<GeneratorRecord>,
}

/// One generator of a repeat.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GeneratorRecord {
    pub launcher: String,
    /// `I/N`, or absent when it ran the whole point alone.
    pub shard: Option<String>,
    /// From its report's environment.
    pub host: String,
    /// CPUs online on its host, and those loadgen was allowed to run on.
    pub cpus: usize,
    pub allowed_cpus: usize,
    /// Its load threads.
    pub threads: usize,
    pub began_at: Option<String>,
    pub received: u64,
    pub cpu_seconds: f64,
    pub saturated: bool,
    /// Why it produced no report: how it ended and its stderr's last line.
    pub failure: Option<String>,
}

/// Latest minus earliest start of the generators' warm-ups, in milliseconds (`None` with
/// fewer than two starts).
pub fn spread_ms(records: &[GeneratorRecord]) -> Option<f64> {
    let times: Vec<SystemTime> = records
        .iter()
        .filter_map(|r| humantime::parse_rfc3339(r.began_at.as_deref()?).ok())
        .collect();
    if times.len() < 2 {
        return None;
    }
    let (first, last) = (times.iter().min()?, times.iter().max()?);
    Some(last.duration_since(*first).unwrap_or_default().as_secs_f64() * 1e3)
}

/// Splits a launcher into words as a POSIX shell would, without expanding anything: blanks
/// separate words, single quotes keep everything, double quotes keep everything but `\"`,
/// `\\`, `\$` and `` \` ``, and a backslash outside quotes keeps the next character.
pub fn split(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => words.extend(word.take()),
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err("a single quote is not closed".into()),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => w.push(c),
                            Some(c) => w.extend(['\\', c]),
                            None => return Err("a double quote is not closed".into()),
                        },
                        Some(c) => w.push(c),
                        None => return Err("a double quote is not closed".into()),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => return Err("a backslash ends the text".into()),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spread_is_latest_minus_earliest_start() {
        let at = |t: &str| GeneratorRecord { began_at: Some(t.into()), ..Default::default() };
        let records = [at("2026-12-07T22:00:00.004Z"), at("2026-12-07T22:00:00.001500Z")];
        assert!((spread_ms(&records).unwrap() - 2.5).abs() < 1e-9);
        assert_eq!(spread_ms(&[]), None);
    }

    #[test]
    fn launchers_split_like_a_shell_would() {
        assert_eq!(split("ip netns exec gen1").unwrap(), ["ip", "netns", "exec", "gen1"]);
        assert_eq!(split("kubectl exec pod-0 --").unwrap(), ["kubectl", "exec", "pod-0", "--"]);
        assert_eq!(
            split(r#"ssh -o 'ProxyJump bastion' "user@load 1" a\ b"#).unwrap(),
            ["ssh", "-o", "ProxyJump bastion", "user@load 1", "a b"]
        );
        assert_eq!(split(r#"x "a\"b\n" ''"#).unwrap(), ["x", "a\"b\\n", ""]);
        assert_eq!(split("  ").unwrap(), Vec::<String>::new());
        assert!(split("ssh 'load1").is_err());
        assert!(split("ssh \"load1").is_err());
        assert!(split("ssh load1\\").is_err());
    }

    #[test]
    fn the_flags_are_checked() {
        let gens = ["ip netns exec gen1".to_owned()];
        assert!(Remote::from_flags(&[], None, None).unwrap().is_none());
        let r = Remote::from_flags(&gens, Some("198.18.0.1"), None).unwrap().unwrap();
        assert_eq!(r.bind_host(), "198.18.0.1");
        let v6 = Remote::from_flags(&gens, Some("fd00::1"), None).unwrap().unwrap();
        assert_eq!(v6.bind_host(), "[fd00::1]");
        assert!(Remote::from_flags(&gens, Some("load1.example"), None).is_err());
        assert!(Remote::from_flags(&["ssh 'x".to_owned()], None, None).is_err());
        assert!(Remote::from_flags(&[" ".to_owned()], None, None).is_err());
        assert!(Remote::from_flags(&[], None, Some(Path::new("/opt/loadgen"))).is_err());
    }
}
