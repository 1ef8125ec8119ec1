//! How numbers read in the report: sizes, durations, ratios, counts with separators.

use std::time::Duration;

/// Formats a byte count the way the report prints sizes: 64 B, 4 KiB, 1 MiB.
pub fn format_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}

/// Formats a duration for humans: "850 ms", "1.5 s", "42 s", "12 min 30 s".
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 1.0 {
        format!("{:.0} ms", secs * 1000.0)
    } else if secs < 10.0 && (secs * 10.0).round() % 10.0 != 0.0 {
        // 1.5 s is not "2 s".
        format!("{secs:.1} s")
    } else if secs < 90.0 {
        format!("{secs:.0} s")
    } else {
        let whole = secs.round() as u64;
        format!("{} min {:02} s", whole / 60, whole % 60)
    }
}

/// "2.3x"; "1.08x" under 2; "0.42x" below 1; "-" when the ratio is not a number.
pub fn times(r: f64) -> String {
    if !r.is_finite() {
        // A ratio to zero (or of nothing) has no meaning; never print "inf" or "NaN".
        "-".into()
    } else if r >= 10.0 {
        format!("{r:.0}x")
    } else if r >= 2.0 {
        format!("{r:.1}x")
    } else {
        format!("{r:.2}x")
    }
}

/// 151234.4 as "151,234".
pub fn thousands(v: f64) -> String {
    let n = v.round() as i64;
    let digits = n.abs().to_string();
    // Group from the right: the first group takes what is left over from threes.
    let head = match digits.len() % 3 {
        0 => 3,
        r => r,
    };
    let mut out = digits[..head.min(digits.len())].to_string();
    let mut rest = &digits[head.min(digits.len())..];
    while !rest.is_empty() {
        out.push(',');
        out.push_str(&rest[..3]);
        rest = &rest[3..];
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// Three significant digits, at least: 0.123, 1.23, 12.3, 123, 12,345.
pub fn sig(v: f64) -> String {
    if !v.is_finite() {
        "-".into()
    } else if v.abs() >= 1000.0 {
        thousands(v)
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// "±11%": the report's one meaning of "±", half the range of the repeats' throughput over
/// its median, from a summary's `spread` (the full range over the median). The caveats and
/// the tables both print it through here, so one point never reads ±22% in one place and
/// ±11% in another.
pub fn plus_minus(spread: f64) -> String {
    let half = spread * 50.0;
    // One decimal below 10%, so that a point just past the noisy mark (±5%) never reads ±5%.
    if half < 10.0 { format!("±{half:.1}%") } else { format!("±{half:.0}%") }
}

/// "a, b and c".
pub fn join(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// Outcomes per model, with the models that share one named together: "in every model, X" when
/// all of them do, else "in fork and prefork, X; in mio, Y", in the order they first appear.
/// Nine models that behaved alike read as one fact, not nine.
pub fn grouped(items: &[(&str, String)]) -> String {
    let mut groups: Vec<(Vec<String>, &str)> = Vec::new();
    for (name, outcome) in items {
        match groups.iter_mut().find(|(_, o)| *o == outcome.as_str()) {
            Some((names, _)) => names.push(name.to_string()),
            None => groups.push((vec![name.to_string()], outcome)),
        }
    }
    match groups.as_slice() {
        [(names, outcome)] if names.len() > 1 => format!("in every model, {outcome}"),
        _ => {
            let parts: Vec<String> =
                groups.iter().map(|(names, o)| format!("in {}, {o}", join(names))).collect();
            parts.join("; ")
        }
    }
}

/// Memory given in KiB, as the report prints it: "67.1 KiB", or in bytes under 1 KiB
/// ("44.0 B", "<1 B"), so that a small figure never reads "0.000 KiB"; "-" when it is not a
/// number.
pub fn memory(kib: f64) -> String {
    if !kib.is_finite() {
        "-".into()
    } else if kib.abs() >= 1024.0 * 1024.0 {
        format!("{} GiB", sig(kib / (1024.0 * 1024.0)))
    } else if kib.abs() >= 1024.0 {
        format!("{} MiB", sig(kib / 1024.0))
    } else if kib.abs() >= 1.0 {
        format!("{} KiB", sig(kib))
    } else if kib.abs() * 1024.0 >= 1.0 {
        format!("{} B", sig(kib * 1024.0))
    } else {
        "<1 B".into()
    }
}

/// A CPU list as people write it: "0", "0-7", "0,2-3"; "unpinned" when empty.
pub fn cpu_list(cpus: &[usize]) -> String {
    if cpus.is_empty() {
        return "unpinned".into();
    }
    let mut parts = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let mut j = i;
        while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
            j += 1;
        }
        parts.push(if i == j { cpus[i].to_string() } else { format!("{}-{}", cpus[i], cpus[j]) });
        i = j + 1;
    }
    let noun = if cpus.len() == 1 { "CPU" } else { "CPUs" };
    format!("{noun} {}", parts.join(","))
}

/// A CPU list in the form `taskset -c` takes: "0-3,8"; empty when not pinned.
pub fn cpu_ids(cpus: &[usize]) -> String {
    let listed = cpu_list(cpus);
    listed
        .split_once(' ')
        .filter(|_| !cpus.is_empty())
        .map_or(String::new(), |(_, l)| l.to_string())
}

#[cfg(test)]
mod tests {
    use super::{grouped, plus_minus};

    #[test]
    fn plus_minus_is_half_the_full_range() {
        // A summary's spread is the full range over the median: 22% reads ±11%.
        assert_eq!(plus_minus(0.22), "±11%");
        // Just past the noisy mark (a 10% range) it never rounds down to the mark itself.
        assert_eq!(plus_minus(0.106), "±5.3%");
    }

    #[test]
    fn models_that_behaved_alike_are_named_together() {
        let same = [("fork", "17 at once".to_string()), ("mio", "17 at once".to_string())];
        assert_eq!(grouped(&same), "in every model, 17 at once");
        let mixed =
            [("fork", "a".to_string()), ("mio", "b".to_string()), ("poll", "a".to_string())];
        assert_eq!(grouped(&mixed), "in fork and poll, a; in mio, b");
        assert_eq!(grouped(&[("mio", "b".to_string())]), "in mio, b");
    }
}
