//! The kernel's own network counters (/proc/net/netstat and /proc/net/snmp), read before and
//! after a repeat: what the kernel did that no client or server reports (SYNs dropped because
//! a listen queue was full, datagrams dropped because a receive buffer was).
//!
//! The counters are machine-wide (the network namespace's, to be exact): every socket on the
//! machine counts, not only the server's. On a quiet machine the server is nearly all of it;
//! the report says which they are.
//!
//! Both files hold pairs of lines, a header and its values, each starting with the group name:
//! `TcpExt: SyncookiesSent ... ListenOverflows ...` then `TcpExt: 0 ... 63 ...`. A counter is
//! named `Group:Name` (`TcpExt:ListenOverflows`, `Udp:RcvbufErrors`).

use std::collections::BTreeMap;

/// The files that hold the counters.
const FILES: [&str; 2] = ["/proc/net/netstat", "/proc/net/snmp"];

/// The values of the counters named in `names` right now; a name the kernel does not have is
/// left out.
pub fn read(names: &[&str]) -> BTreeMap<String, i64> {
    let text: String = FILES.iter().filter_map(|f| std::fs::read_to_string(f).ok()).collect();
    let all = parse(&text);
    names.iter().filter_map(|n| Some((n.to_string(), *all.get(*n)?))).collect()
}

/// Every counter of the `Group: names` / `Group: values` line pairs in `text`.
pub fn parse(text: &str) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    let lines: Vec<&str> = text.lines().collect();
    for pair in lines.windows(2) {
        let (Some((group, names)), Some((again, values))) =
            (pair[0].split_once(':'), pair[1].split_once(':'))
        else {
            continue;
        };
        let values: Vec<&str> = values.split_whitespace().collect();
        // A header line's first item is a name, a value line's a number.
        let is_header = names.split_whitespace().next().is_some_and(|n| n.parse::<i64>().is_err());
        if group != again || !is_header || values.first().is_none_or(|v| v.parse::<i64>().is_err())
        {
            continue;
        }
        for (name, value) in names.split_whitespace().zip(values) {
            if let Ok(v) = value.parse::<i64>() {
                out.insert(format!("{group}:{name}"), v);
            }
        }
    }
    out
}

/// How much each counter of `after` grew since `before`.
pub fn delta(
    before: &BTreeMap<String, i64>,
    after: &BTreeMap<String, i64>,
) -> BTreeMap<String, i64> {
    after.iter().map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(*v))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pairs_of_lines_and_takes_differences() {
        let text = "TcpExt: SyncookiesSent ListenOverflows ListenDrops\n\
                    TcpExt: 0 63 64\n\
                    IpExt: InNoRoutes\n\
                    IpExt: 5\n\
                    Udp: InDatagrams RcvbufErrors\n\
                    Udp: 100 7\n";
        let all = parse(text);
        assert_eq!(all["TcpExt:ListenOverflows"], 63);
        assert_eq!(all["Udp:RcvbufErrors"], 7);
        assert_eq!(all.len(), 6);
        let mut later = all.clone();
        later.insert("TcpExt:ListenOverflows".into(), 80);
        assert_eq!(delta(&all, &later)["TcpExt:ListenOverflows"], 17);
        assert_eq!(delta(&all, &later)["Udp:RcvbufErrors"], 0);
        // This machine's files have the counters the lessons ask for.
        let here = read(&["TcpExt:ListenOverflows", "Udp:RcvbufErrors", "Nope:Nothing"]);
        assert_eq!(here.len(), 2, "{here:?}");
    }
}
