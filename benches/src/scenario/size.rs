//! size: "What happens with big messages?" A closed loop over a few connections with growing
//! message sizes; the bytes moved per second.

use anyhow::{Result, bail};

use crate::charts::Charts;
use crate::compare::{self, Comparison, Figure, Verdict};
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
        let mut out = Vec::new();
        let at = view.at(point);
        let rates: Vec<f64> = at.iter().map(|(_, s)| s.median.mib_per_sec).collect();
        let paired = compare::at_point(view.results, point, &MIB_PER_SEC);
        out.extend(headline(&format_bytes(point.size), &rates, &paired));
        out.push(format!(
            "With {} messages, data moved per second, most first, each against the first in \
             paired rounds: {}.",
            format_bytes(point.size),
            ranking(view, point, &MIB_PER_SEC, &|v| format!("{} MiB/s", sig(v)))
        ));
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

/// The one-line answer: whether the paired rounds at the largest size set any model apart on
/// data moved per second, with the range of the medians.
fn headline(size: &str, rates: &[f64], paired: &[Comparison]) -> Option<String> {
    let lo = rates.iter().copied().filter(|v| v.is_finite()).fold(f64::INFINITY, f64::min);
    let hi = rates.iter().copied().filter(|v| v.is_finite()).fold(0.0, f64::max);
    if !(lo.is_finite() && hi > 0.0) || paired.is_empty() {
        return None;
    }
    let called = paired.iter().filter(|c| c.verdict == Verdict::Different).count();
    Some(if called == 0 {
        format!(
            "With {size} messages the paired rounds could not tell any two models apart on data \
             moved per second ({} to {} MiB/s).",
            sig(lo),
            sig(hi)
        )
    } else {
        format!(
            "With {size} messages the paired rounds called {called} of {} pairs of models \
             different on data moved per second ({} to {} MiB/s).",
            paired.len(),
            sig(lo),
            sig(hi)
        )
    })
}

/// How the comparison changes as messages grow, from the paired rounds: how many pairs they
/// call different on MiB/s at the first and the last size, and which models' server CPU per
/// message stands apart from every other model's at each size.
fn why(view: &View<'_>) -> Vec<String> {
    let points: Vec<&Point> = view.points().collect();
    let (Some(first), Some(last)) = (points.first(), points.last()) else { return Vec::new() };
    let mut out = Vec::new();
    if first != last {
        let tally = |p: &Point| {
            let v: Vec<f64> = view.at(p).iter().map(|(_, s)| s.median.mib_per_sec).collect();
            let hi = v.iter().copied().fold(0.0, f64::max);
            let lo = v.iter().copied().fold(f64::MAX, f64::min);
            let paired = compare::at_point(view.results, p, &MIB_PER_SEC);
            let called = paired.iter().filter(|c| c.verdict == Verdict::Different).count();
            (called, paired.len(), if lo > 0.0 { hi / lo } else { f64::NAN })
        };
        out.extend(narrowing((&first.label, tally(first)), (&last.label, tally(last))));
    }
    let stand: Vec<(String, Vec<Apart>)> = points
        .iter()
        .map(|p| {
            let models: Vec<&str> = view.at(p).iter().map(|(n, _)| *n).collect();
            let paired = compare::at_point(view.results, p, &compare::CPU_PER_MSG);
            (p.label.clone(), apart(&models, &paired))
        })
        .collect();
    out.extend(cpu_apart(&stand));
    out
}

/// "At 64 B the paired rounds called 12 of 45 pairs different on MiB/s (fastest against
/// slowest by median 1.41x); at 1 MiB, none (1.07x)." `None` without paired rounds.
fn narrowing(
    (a, (ca, na, ga)): (&str, (usize, usize, f64)),
    (b, (cb, nb, gb)): (&str, (usize, usize, f64)),
) -> Option<String> {
    if na == 0 || nb == 0 {
        return None;
    }
    let count =
        |c: usize, n: usize| if c == 0 { "none".to_string() } else { format!("{c} of {n}") };
    let lead = if cb < ca {
        "The models drew together as messages grew"
    } else {
        "Growing messages did not draw the models together"
    };
    Some(format!(
        "{lead}: at {a} the paired rounds called {} pairs of models different on MiB/s \
         (fastest against slowest by median {}); at {b}, {} ({}).",
        count(ca, na),
        times(ga),
        count(cb, nb),
        times(gb)
    ))
}

/// A model whose server CPU per message the paired rounds call different from every other
/// model's at one point, all in the same direction: more (`true`) or less, with the range of
/// its ratios to the others.
type Apart = (String, bool, f64, f64);

/// The models of `models` that stand apart on `paired` (the CPU comparisons at one point).
fn apart(models: &[&str], paired: &[Comparison]) -> Vec<Apart> {
    let mut out = Vec::new();
    for &m in models {
        let mine: Vec<&Comparison> = paired.iter().filter(|c| c.a == m || c.b == m).collect();
        if mine.len() + 1 < models.len() || mine.is_empty() {
            continue;
        }
        let called = |more: bool| {
            mine.iter().all(|c| {
                c.verdict == Verdict::Different && (c.better.as_deref() == Some(m)) != more
            })
        };
        for more in [true, false] {
            if called(more) {
                let r: Vec<f64> = mine.iter().map(|c| c.seen_from(m).0).collect();
                let lo = r.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = r.iter().copied().fold(0.0, f64::max);
                out.push((m.to_string(), more, lo, hi));
            }
        }
    }
    out
}

/// "uring spent more server CPU per message than every other model at 64 KiB (1.81x to 1.95x
/// theirs) and at 1 MiB (2.2x to 2.4x), each ratio called by the paired rounds." Said of each
/// model that stands apart somewhere; where none does, that the rounds set none apart.
fn cpu_apart(points: &[(String, Vec<Apart>)]) -> Vec<String> {
    let mut models: Vec<(&str, bool)> = Vec::new();
    for (_, a) in points {
        for (m, more, _, _) in a {
            if !models.contains(&(m.as_str(), *more)) {
                models.push((m.as_str(), *more));
            }
        }
    }
    if models.is_empty() {
        let labels: Vec<String> = points.iter().map(|(l, _)| l.clone()).collect();
        return vec![format!(
            "The paired rounds set no model apart from all the others on server CPU per message \
             at {}.",
            crate::text::join(&labels)
        )];
    }
    models
        .iter()
        .map(|&(m, more)| {
            let at: Vec<String> = points
                .iter()
                .filter_map(|(label, a)| {
                    let (_, _, lo, hi) = a.iter().find(|x| x.0 == m && x.1 == more)?;
                    Some(format!("at {label} ({} to {} theirs)", times(*lo), times(*hi)))
                })
                .collect();
            format!(
                "{m} spent {} server CPU per message than every other model {}, each ratio \
                 called by the paired rounds. {}",
                if more { "more" } else { "less" },
                crate::text::join(&at),
                cpu_note(m)
            )
        })
        .collect()
}

/// What the report says of why a model's CPU per message stands apart in this scenario. The
/// table shows the difference, not its cause; an explanation checked elsewhere (a model's
/// essay, an investigation of its cost) belongs here, one model at a time.
fn cpu_note(model: &str) -> String {
    let base = model.split(" (").next().unwrap_or(model);
    let package = crate::registry::find(base).map_or(base.to_string(), |m| {
        m.package.strip_prefix("echobench-").unwrap_or(m.package).to_string()
    });
    format!(
        "This table shows the difference, not its cause (see the model's essay, \
         servers/{package}/src/lib.rs)."
    )
}

#[cfg(test)]
#[path = "size_tests.rs"]
mod tests;

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
