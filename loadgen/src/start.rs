//! `--start-at`: a wall-clock start, so that generators on several machines, started by any
//! tool (ssh in a loop, a cluster scheduler, cron), begin their warm-ups, and so their measured
//! windows, together.
//!
//! Each generator opens its connections as soon as it starts, then waits for the start time;
//! the warm-up begins at it. Nothing passes between the generators: they share only the time,
//! so their clocks must agree (NTP keeps machines on one network within a millisecond or so),
//! and their reports, merged with `loadgen merge`, describe one load.
//!
//! The start is checked when the run begins: one a good while in the past is an error (the
//! generators would not start together; the caller's script is probably late), and so is one
//! more than [`MAX_AHEAD`] away (more likely a wrong date or time zone than a plan).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Result, bail};

/// How far in the past a start time may be and still run (at once): enough for a script that
/// computed "now + a few seconds" and was slow to start this machine's generator.
pub const GRACE: Duration = Duration::from_secs(1);
/// How far ahead a start time may be.
pub const MAX_AHEAD: Duration = Duration::from_secs(3600);

/// Parses `2026-12-07T03:00:00Z` (RFC 3339 in UTC, fractional seconds allowed) or
/// `@1765080000.5` (Unix seconds, as `date +@%s.%N` prints them).
pub fn parse(text: &str) -> Result<SystemTime, String> {
    let text = text.trim();
    let parsed = match text.strip_prefix('@') {
        Some(unix) => parse_unix(unix),
        None => humantime::parse_rfc3339(text).ok(),
    };
    parsed.ok_or_else(|| {
        format!(
            "{text:?} is not a start time (try RFC 3339 in UTC, 2026-12-07T03:00:00Z, or Unix \
             seconds, @1765080000.5)"
        )
    })
}

/// Unix seconds with up to nine fractional digits, read exactly (an f64 would round them).
fn parse_unix(text: &str) -> Option<SystemTime> {
    let (secs, frac) = text.split_once('.').unwrap_or((text, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(secs) || !digits(frac) || frac.len() > 9 {
        return None;
    }
    let nanos = format!("{frac:0<9}").parse().ok()?;
    let secs: u64 = secs.parse().ok()?;
    // RFC 3339 ends with the year 9999, and the report prints the time in that form; a time
    // past it is no start time anyone means (and could not be printed in the error).
    if secs >= LAST_RFC3339_SECOND {
        return None;
    }
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

/// 10000-01-01T00:00:00Z in Unix seconds: the first instant RFC 3339 cannot write.
const LAST_RFC3339_SECOND: u64 = 253_402_300_800;

/// Refuses a start time too far in the past or the future, as seen at `now`.
pub fn check(at: SystemTime, now: SystemTime) -> Result<()> {
    match at.duration_since(now) {
        Ok(ahead) if ahead > MAX_AHEAD => bail!(
            "--start-at {} is {} from now; at most {} ahead is allowed (check the date and \
             that the time is in UTC)",
            format(at),
            humantime::format_duration(round_to_secs(ahead)),
            humantime::format_duration(MAX_AHEAD)
        ),
        Ok(_) => Ok(()),
        Err(past) if past.duration() > GRACE => bail!(
            "--start-at {} was {} ago; give a time still ahead (generators meant to start \
             together would not)",
            format(at),
            match past.duration() {
                d if d < Duration::from_secs(60) => format!("{:.1} s", d.as_secs_f64()),
                d => humantime::format_duration(round_to_secs(d)).to_string(),
            }
        ),
        Err(_) => Ok(()),
    }
}

fn round_to_secs(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}

/// The form reports use: RFC 3339 in UTC, with as many fractional digits as it has.
pub fn format(at: SystemTime) -> String {
    humantime::format_rfc3339(at).to_string()
}

/// Serde helper: an optional wall-clock time as an RFC 3339 string (or null).
pub(crate) mod opt_rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::SystemTime;

    pub fn serialize<S: Serializer>(
        value: &Option<SystemTime>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(at) => serializer.serialize_str(&super::format(*at)),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<SystemTime>, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            Some(text) => super::parse(&text).map(Some).map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_parse_to_the_same_instant() {
        let rfc = parse("2026-12-07T03:00:00.5Z").unwrap();
        let unix = parse("@1796612400.5").unwrap();
        assert_eq!(rfc, unix);
        assert_eq!(
            unix.duration_since(UNIX_EPOCH).unwrap(),
            Duration::new(1_796_612_400, 5e8 as u32)
        );
        assert_eq!(parse("@1.000000001").unwrap(), UNIX_EPOCH + Duration::new(1, 1));
        assert_eq!(format(rfc), "2026-12-07T03:00:00.500000000Z");
        assert_eq!(format(parse("2026-12-07T03:00:00Z").unwrap()), "2026-12-07T03:00:00Z");
        // The last: the year 10000, which RFC 3339 (and so the error naming it) cannot write.
        for bad in [
            "",
            "@",
            "@1.",
            "@-5",
            "@1.2.3",
            "@1.0000000001",
            "tomorrow",
            "2026-12-07",
            "@253402300800",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn a_start_long_past_or_far_ahead_is_refused() {
        let now = UNIX_EPOCH + Duration::from_secs(1_796_612_400);
        assert!(check(now, now).is_ok());
        assert!(check(now - Duration::from_millis(500), now).is_ok(), "within the grace");
        assert!(check(now + Duration::from_secs(3000), now).is_ok());
        let past = check(now - Duration::from_secs(5), now).unwrap_err().to_string();
        assert!(past.contains("5.0 s ago"), "{past}");
        let ahead = check(now + Duration::from_secs(7200), now).unwrap_err().to_string();
        assert!(ahead.contains("2h from now"), "{ahead}");
    }
}
