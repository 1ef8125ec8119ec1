//! The kernel's UDP counters (`/proc/net/snmp` `Udp:`, `/proc/net/snmp6` `Udp6*`), read before
//! and after a run: where datagrams went that no socket's books can see, such as those dropped
//! because a receive buffer was full (`RcvbufErrors`), on the server's socket or on loadgen's.
//!
//! They are machine-wide: every process's datagrams of the family count, over the whole run
//! (warm-up and drain included), so they explain loss only on a machine doing little else.

use crate::report::KernelUdp;

/// Which counters: `Udp:` in /proc/net/snmp for IPv4, `Udp6*` in /proc/net/snmp6 for IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

/// The counters now, or `None` if /proc cannot be read.
pub fn read(family: Family) -> Option<KernelUdp> {
    match family {
        Family::V4 => parse_snmp(&std::fs::read_to_string("/proc/net/snmp").ok()?),
        Family::V6 => parse_snmp6(&std::fs::read_to_string("/proc/net/snmp6").ok()?),
    }
}

/// How much each counter rose from `before` to `after`.
pub fn delta(before: &KernelUdp, after: &KernelUdp) -> KernelUdp {
    let d = |a: u64, b: u64| b.saturating_sub(a);
    KernelUdp {
        family: after.family.clone(),
        in_datagrams: d(before.in_datagrams, after.in_datagrams),
        out_datagrams: d(before.out_datagrams, after.out_datagrams),
        in_errors: d(before.in_errors, after.in_errors),
        rcvbuf_errors: d(before.rcvbuf_errors, after.rcvbuf_errors),
        sndbuf_errors: d(before.sndbuf_errors, after.sndbuf_errors),
        no_ports: d(before.no_ports, after.no_ports),
    }
}

/// /proc/net/snmp: a `Udp:` line of names, then a `Udp:` line of values.
fn parse_snmp(text: &str) -> Option<KernelUdp> {
    let mut lines = text.lines().filter_map(|l| l.strip_prefix("Udp:"));
    let names = lines.next()?.split_whitespace();
    let values = lines.next()?.split_whitespace();
    let pairs: Vec<(&str, u64)> =
        names.zip(values).filter_map(|(n, v)| Some((n, v.parse().ok()?))).collect();
    Some(from_pairs("Udp", &pairs))
}

/// /proc/net/snmp6: one `Udp6Name value` per line.
fn parse_snmp6(text: &str) -> Option<KernelUdp> {
    let pairs: Vec<(&str, u64)> = text
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let name = words.next()?.strip_prefix("Udp6")?;
            Some((name, words.next()?.parse().ok()?))
        })
        .collect();
    (!pairs.is_empty()).then(|| from_pairs("Udp6", &pairs))
}

fn from_pairs(family: &str, pairs: &[(&str, u64)]) -> KernelUdp {
    let get = |name: &str| pairs.iter().find(|(n, _)| *n == name).map_or(0, |&(_, v)| v);
    KernelUdp {
        family: family.to_owned(),
        in_datagrams: get("InDatagrams"),
        out_datagrams: get("OutDatagrams"),
        in_errors: get("InErrors"),
        rcvbuf_errors: get("RcvbufErrors"),
        sndbuf_errors: get("SndbufErrors"),
        no_ports: get("NoPorts"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_files_parse() {
        let v4 = "Ip: Forwarding\nIp: 1\nUdp: InDatagrams NoPorts InErrors OutDatagrams \
                  RcvbufErrors SndbufErrors\nUdp: 21 3 7 22 5 1\nUdpLite: InDatagrams\nUdpLite: 9\n";
        let c = parse_snmp(v4).unwrap();
        assert_eq!(
            (c.in_datagrams, c.no_ports, c.in_errors, c.out_datagrams, c.rcvbuf_errors),
            (21, 3, 7, 22, 5)
        );
        assert_eq!((c.sndbuf_errors, c.family.as_str()), (1, "Udp"));
        let v6 =
            "Ip6InReceives 4\nUdp6InDatagrams   \t10\nUdp6RcvbufErrors 2\nUdpLite6InErrors 8\n";
        let c = parse_snmp6(v6).unwrap();
        assert_eq!((c.in_datagrams, c.rcvbuf_errors, c.in_errors), (10, 2, 0));
        let d = delta(&KernelUdp { rcvbuf_errors: 1, ..c.clone() }, &c);
        assert_eq!((d.rcvbuf_errors, d.in_datagrams), (1, 0));
    }

    #[test]
    fn this_machine_has_them() {
        assert!(read(Family::V4).is_some());
    }
}
