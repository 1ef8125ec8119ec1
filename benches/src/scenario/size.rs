//! size: "What happens with big messages?" A closed loop over a few connections with growing
//! message sizes; the bytes moved per second.

use anyhow::{Result, bail};

use crate::charts::Charts;
use crate::compare::Figure;
use crate::findings::{NO_FIGURES, growth, ranking};
use crate::measure::{Headline, Measure, PointsFlag};
use crate::plan::{Point, Profile, SMALL_MESSAGE};
use crate::present::{Column, Present, View, col};
use crate::text::{format_bytes, sig, times};

/// Connections that carry the big messages: "few", so that the figure is about moving bytes
/// rather than juggling connections.
pub const CONNECTIONS: u32 = 4;

/// Payload moved per second.
const MIB_PER_SEC: Figure = Figure { name: "MiB/s", of: |m| m.mib_per_sec, higher_is_better: true };
/// The size scenario.
#[derive(Debug)]
pub struct Size;

fn point(size: u64) -> Point {
    Point::closed("size", CONNECTIONS, size).named(format_bytes(size), size as f64)
}

impl Measure for Size {
    fn name(&self) -> &'static str {
        "size"
    }

    fn flag(&self) -> Option<PointsFlag> {
        Some(PointsFlag {
            long: "sizes",
            value_name: "BYTES,...",
            help: "Message sizes of the size scenario, comma-separated (suffixes K, M allowed)",
        })
    }

    fn points(&self, profile: Profile, given: Option<&str>) -> Result<Vec<Point>> {
        const KIB: u64 = 1024;
        const MIB: u64 = 1024 * 1024;
        let sizes = match given {
            Some(text) => {
                let sizes = text.split(',').map(parse_size).collect::<Result<Vec<u64>, _>>();
                match sizes {
                    Ok(s) if !s.contains(&0) => s,
                    Ok(_) => bail!("--sizes needs sizes above zero"),
                    Err(e) => bail!("--sizes: {e}"),
                }
            }
            None => match profile {
                Profile::Quick => vec![KIB, MIB],
                // 4 KiB is in the full profile only since the standard one runs every point in
                // 8 paired rounds: 64 B, 64 KiB and 1 MiB still span where copying starts to
                // dominate.
                Profile::Standard => vec![SMALL_MESSAGE, 64 * KIB, MIB],
                Profile::Full => {
                    vec![SMALL_MESSAGE, KIB, 4 * KIB, 16 * KIB, 64 * KIB, 256 * KIB, MIB]
                }
            },
        };
        Ok(sizes.into_iter().map(point).collect())
    }

    fn headline(&self) -> Headline {
        Headline { name: "MiB/s", figure: |m| m.mib_per_sec, ..crate::measure::THROUGHPUT }
    }
}

impl Present for Size {
    fn question(&self) -> &'static str {
        "What happens with big messages?"
    }

    fn setup(&self) -> String {
        format!(
            "Closed loop over {CONNECTIONS} connections, growing message sizes. MiB/s counts \
             payload echoed."
        )
    }

    fn columns(&self) -> Vec<Column> {
        let mib: Column = ("MiB/s", |c| sig(c.summary.median.mib_per_sec));
        vec![mib, col::RATE, col::SPREAD, col::P50, col::P99, col::CPU, col::UTIL, col::PSS]
    }

    fn findings(&self, view: &View<'_>) -> Vec<String> {
        let Some((point, _)) = view.deciding() else {
            return vec![NO_FIGURES.into()];
        };
        let mut out = vec![format!(
            "With {} messages, data moved per second, most first, each against the first in \
             paired rounds: {}.",
            format_bytes(point.size),
            ranking(view, point, &MIB_PER_SEC, &|v| format!("{} MiB/s", sig(v)))
        )];
        out.extend(growth(view, "MiB/s", |s| s.median.mib_per_sec));
        out.extend(why(view));
        out
    }

    fn charts(&self, view: &View<'_>, charts: &mut Charts) -> Result<()> {
        let s = view.series(|m| Some(m.mib_per_sec).filter(|&v| v > 0.0));
        let (t, x) = ("Throughput vs message size", "message size (bytes)");
        charts.log_lines(self.name(), "size-throughput.svg", t, x, "MiB/s (log)", &s)
    }
}

/// Whether the gap between models narrows as messages grow, and what that means.
fn why(view: &View<'_>) -> Option<String> {
    let points: Vec<&Point> = view.points().collect();
    let (first, last) = (points.first()?, points.last()?);
    let gap = |p: &Point| {
        let v: Vec<f64> = view.at(p).iter().map(|(_, s)| s.median.mib_per_sec).collect();
        let hi = v.iter().copied().fold(0.0, f64::max);
        let lo = v.iter().copied().fold(f64::MAX, f64::min);
        (v.len() >= 2 && lo > 0.0).then(|| hi / lo)
    };
    let (g0, g1) = (gap(first)?, gap(last)?);
    (g1 < g0 * 0.8).then(|| {
        format!(
            "Why: the gap between the fastest and slowest model narrows from {} at {} to {} at \
             {}: with big messages most time goes to copying bytes through the kernel, which \
             costs every model the same, and less to scheduling connections, where they differ.",
            times(g0),
            first.label,
            times(g1),
            last.label
        )
    })
}

/// Parses a byte size: `64`, `4K`, `4KiB`, `1M`, `1MiB` (binary multiples).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let number: u64 = t[..digits].parse().map_err(|_| format!("{text:?} is not a size"))?;
    let unit = match t[digits..].trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        other => return Err(format!("unknown size unit {other:?} (use K or M)")),
    };
    number.checked_mul(unit).ok_or_else(|| format!("{text:?} is too large"))
}
