//! The report's SVG charts, drawn with plotters' SVG backend (text stays SVG `<text>`, so no
//! font library is needed). One colour per model throughout; log axes where values span decades.

use std::path::Path;

use anyhow::{Context, Result};
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

use super::findings::{self, idle_cost};
use super::output::CHART_DIR;
use super::plan::{MODELS, Scenario};
use super::results::{Percentiles, Results, Summary};

/// A chart the report embeds.
#[derive(Debug, Clone)]
pub struct Chart {
    /// The scenario whose section shows it.
    pub scenario: Scenario,
    /// Path relative to the run folder.
    pub file: String,
    /// What it shows (the image's alt text).
    pub title: String,
}

/// One model's line.
type Series = (String, Vec<(f64, f64)>);

/// Draws every chart the data allows into `dir`; returns them in report order.
pub fn write_all(results: &Results, dir: &Path) -> Result<Vec<Chart>> {
    let mut charts = Vec::new();
    let mut add = |scenario, name: &str, title: &str, drawn: Result<bool>| -> Result<()> {
        if drawn.with_context(|| format!("cannot draw {name}"))? {
            let file = format!("{CHART_DIR}/{name}");
            charts.push(Chart { scenario, file, title: title.to_string() });
        }
        Ok(())
    };
    let scale = |f: fn(&Summary) -> Option<f64>| series(results, Scenario::Scale, f);
    let t = "Throughput vs connections (64 B messages, closed loop)";
    let s = scale(|s| Some(s.median.msgs_per_sec));
    add(
        Scenario::Scale,
        "scale-throughput.svg",
        t,
        lines(dir, "scale-throughput.svg", t, "connections", "messages/s", &s, false),
    )?;
    let t = "Server CPU per message vs connections";
    let s = scale(|s| s.median.server_cpu_per_msg_us);
    add(
        Scenario::Scale,
        "scale-cpu.svg",
        t,
        lines(dir, "scale-cpu.svg", t, "connections", "server CPU us per message", &s, false),
    )?;
    let t = "Throughput vs message size";
    let s = series(results, Scenario::Size, |s| Some(s.median.mib_per_sec).filter(|&v| v > 0.0));
    add(
        Scenario::Size,
        "size-throughput.svg",
        t,
        lines(dir, "size-throughput.svg", t, "message size (bytes)", "MiB/s (log)", &s, true),
    )?;
    let t = "New connections per second under churn";
    let s = series(results, Scenario::Churn, |s| Some(s.median.msgs_per_sec));
    add(
        Scenario::Churn,
        "churn-rate.svg",
        t,
        bars(dir, "churn-rate.svg", t, "concurrent clients", "connections/s", &s),
    )?;
    let t = "Server memory (PSS) per idle connection";
    let s = idle_series(results);
    add(
        Scenario::Idle,
        "idle-memory.svg",
        t,
        bars(dir, "idle-memory.svg", t, "idle connections", "KiB per connection", &s),
    )?;
    let (t, s) = spectrum_series(results);
    add(
        Scenario::Latency,
        "latency-spectrum.svg",
        &t,
        spectrum(dir, "latency-spectrum.svg", &t, &s),
    )?;
    Ok(charts)
}

/// Each model's (x, figure) points of `scenario`, skipping points without the figure.
fn series(results: &Results, scenario: Scenario, f: fn(&Summary) -> Option<f64>) -> Vec<Series> {
    results
        .models
        .iter()
        .filter_map(|m| {
            let s = m.scenario(scenario)?;
            let pts: Vec<(f64, f64)> = s
                .points
                .iter()
                .filter_map(|p| Some((p.point.x(), f(p.summary.as_ref()?)?)))
                .filter(|(_, y)| y.is_finite())
                .collect();
            (!pts.is_empty()).then(|| (m.name.clone(), pts))
        })
        .collect()
}

fn idle_series(results: &Results) -> Vec<Series> {
    results
        .models
        .iter()
        .filter_map(|m| {
            let s = m.scenario(Scenario::Idle)?;
            let pts: Vec<(f64, f64)> = s
                .points
                .iter()
                .filter_map(|p| Some((p.point.x(), idle_cost(s, p)?.kib_per_conn)))
                .collect();
            (!pts.is_empty()).then(|| (m.name.clone(), pts))
        })
        .collect()
}

/// Each model's latency percentiles at the highest load fraction it ran.
fn spectrum_series(results: &Results) -> (String, Vec<Series>) {
    let mut fraction = 0.0;
    let mut out = Vec::new();
    for m in &results.models {
        let Some((point, summary)) = findings::highest_load(m) else { continue };
        fraction = point.rate_fraction.unwrap_or(0.0);
        let l: Percentiles = summary.median.latency_us;
        let ys = [l.p50, l.p90, l.p99, l.p999, l.p9999, l.max];
        let pts = ys.iter().enumerate().map(|(i, &y)| (i as f64, y.max(0.1))).collect();
        out.push((m.name.clone(), pts));
    }
    (format!("Latency percentiles at {:.0}% of each model's capacity", fraction * 100.0), out)
}

/// The colour of a model: fixed for the suite's models, so every chart matches.
fn colour(model: &str, i: usize) -> RGBColor {
    const COLOURS: [RGBColor; 4] = [
        RGBColor(214, 39, 40),
        RGBColor(31, 119, 180),
        RGBColor(44, 160, 44),
        RGBColor(148, 103, 189),
    ];
    match MODELS.iter().position(|m| *m == model) {
        Some(k) => COLOURS[k],
        None => {
            let c = Palette99::pick(i + 4).to_rgba();
            RGBColor(c.0, c.1, c.2)
        }
    }
}

fn bounds(series: &[Series]) -> Option<(f64, f64, f64, f64)> {
    let pts = series.iter().flat_map(|(_, p)| p.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    (x0 <= x1).then_some((x0, x1, y0, y1))
}

/// A line per model over a log x axis; log y too when `log_y`. `false` if there is no data.
fn lines(
    dir: &Path,
    file: &str,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    s: &[Series],
    log_y: bool,
) -> Result<bool> {
    let Some((x0, x1, y0, y1)) = bounds(s) else { return Ok(false) };
    let (x0, x1) = (x0 / 1.5, x1 * 1.5);
    let fx = |x: &f64| compact(*x);
    if log_y {
        draw(
            dir,
            file,
            title,
            x_desc,
            y_desc,
            s,
            (x0..x1).log_scale(),
            (y0 / 2.0..y1 * 2.0).log_scale(),
            &fx,
            &|y| compact(*y),
        )
    } else {
        draw(dir, file, title, x_desc, y_desc, s, (x0..x1).log_scale(), 0.0..y1 * 1.15, &fx, &|y| {
            compact(*y)
        })
    }
}

/// The latency spectrum: percentiles along x, microseconds on a log y axis.
fn spectrum(dir: &Path, file: &str, title: &str, s: &[Series]) -> Result<bool> {
    let Some((_, _, y0, y1)) = bounds(s) else { return Ok(false) };
    const NAMES: [&str; 6] = ["p50", "p90", "p99", "p99.9", "p99.99", "max"];
    let fx = |x: &f64| {
        let i = x.round();
        if (x - i).abs() < 0.01 && (0.0..6.0).contains(&i) {
            NAMES[i as usize].into()
        } else {
            String::new()
        }
    };
    draw(
        dir,
        file,
        title,
        "percentile",
        "latency (us, log)",
        s,
        -0.2..5.2,
        (y0 / 2.0..y1 * 2.0).log_scale(),
        &fx,
        &|y| compact(*y),
    )
}

#[allow(clippy::too_many_arguments)]
fn draw<X, Y>(
    dir: &Path,
    file: &str,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[Series],
    x: X,
    y: Y,
    fx: &dyn Fn(&f64) -> String,
    fy: &dyn Fn(&f64) -> String,
) -> Result<bool>
where
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let path = dir.join(file);
    let root = SVGBackend::new(&path, (760, 440)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(x, y)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_labels(8)
        .x_label_formatter(fx)
        .y_label_formatter(fy)
        .draw()?;
    for (i, (name, pts)) in series.iter().enumerate() {
        let c = colour(name, i);
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled())))?;
    }
    chart
        .configure_series_labels()
        // Lines here mostly rise to the right, so the upper left is the emptiest corner.
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(true)
}

/// Grouped bars: one group per x value, one bar per model.
fn bars(
    dir: &Path,
    file: &str,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    s: &[Series],
) -> Result<bool> {
    let Some((_, _, _, y1)) = bounds(s) else { return Ok(false) };
    let mut xs: Vec<f64> = s.iter().flat_map(|(_, p)| p.iter().map(|&(x, _)| x)).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    let path = dir.join(file);
    let root = SVGBackend::new(&path, (760, 440)).into_drawing_area();
    root.fill(&WHITE)?;
    let n = xs.len() as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(72)
        // Headroom above the tallest bar keeps the legend (upper right) off the bars.
        .build_cartesian_2d(-0.5..n - 0.5, 0.0..y1 * 1.5)?;
    let labels = xs.clone();
    let fx = move |x: &f64| {
        let i = x.round();
        let on_group = (x - i).abs() < 0.01 && i >= 0.0 && (i as usize) < labels.len();
        if on_group { compact(labels[i as usize]) } else { String::new() }
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_labels(xs.len() * 2 + 1)
        .x_label_formatter(&fx)
        .y_label_formatter(&|y| compact(*y))
        .draw()?;
    let width = 0.8 / s.len() as f64;
    for (i, (name, pts)) in s.iter().enumerate() {
        let c = colour(name, i);
        let rects = pts.iter().filter_map(|&(x, y)| {
            let g = xs.iter().position(|&v| v == x)? as f64;
            let left = g - 0.4 + width * i as f64;
            Some(Rectangle::new([(left, 0.0), (left + width * 0.9, y)], c.filled()))
        });
        chart
            .draw_series(rects)?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], c.filled()));
        // Each bar's value above it, so that a bar too short to see still shows its figure.
        let values = pts.iter().filter_map(|&(x, y)| {
            let g = xs.iter().position(|&v| v == x)? as f64;
            let left = g - 0.4 + width * i as f64;
            let at = (left, y + y1 * 0.02);
            Some(Text::new(super::text::sig(y), at, ("sans-serif", 11).into_font().color(&BLACK)))
        });
        chart.draw_series(values)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(true)
}

/// Axis numbers in a short form: 1000 as 1k, 2500000 as 2.5M.
fn compact(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if a >= 1e3 {
        format!("{}k", trim(v / 1e3))
    } else {
        trim(v)
    }
}

fn trim(v: f64) -> String {
    let s = if v.abs() >= 10.0 || v == v.round() { format!("{v:.0}") } else { format!("{v:.2}") };
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}
