//! The report's SVG charts, drawn with plotters' SVG backend (text stays SVG `<text>`, so no
//! font library is needed). One colour per model throughout; log axes where values span decades.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

mod kinds;
mod nines;
use crate::registry;
use crate::results::Results;
pub use kinds::Bars;

/// Subfolder of the SVG charts.
pub const CHART_DIR: &str = "charts";

/// A chart the report embeds.
#[derive(Debug, Clone)]
pub struct Chart {
    /// The name of the scenario whose section shows it.
    pub scenario: String,
    /// Path relative to the run folder.
    pub file: String,
    /// What it shows (the image's alt text).
    pub title: String,
}

/// One model's line: its name and its points.
pub type Series = (String, Vec<Dot>);

/// One point of a line or one bar: the median over the repeats, and their range, which every
/// chart draws as an error bar so that a reader sees how far the repeats agreed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dot {
    /// Where along the x axis.
    pub x: f64,
    /// The median.
    pub y: f64,
    /// The smallest repeat.
    pub lo: f64,
    /// The largest repeat.
    pub hi: f64,
}

impl Dot {
    /// A dot at the median of `values` with their range; `None` if there are none (or they
    /// are not numbers).
    pub fn of(x: f64, values: Vec<f64>) -> Option<Dot> {
        let values: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
        let lo = values.iter().copied().reduce(f64::min)?;
        let hi = values.iter().copied().reduce(f64::max)?;
        Some(Dot { x, y: crate::results::median(values), lo, hi })
    }
}

/// Twelve colours that stay apart on white and for the common colour blindnesses (Tableau's
/// ten, then a dark blue and a dark green, none of them the axes' black). The suite's models take them in registry order, so a model has
/// the same colour in every chart and every run; models the registry does not know take the
/// colours after those.
pub const PALETTE: [RGBColor; 12] = [
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(57, 59, 121),
    RGBColor(0, 77, 64),
];

/// The charts of one run, drawn into one folder; each scenario adds its own.
#[derive(Debug)]
pub struct Charts {
    dir: PathBuf,
    /// The run's models in order, for colours of models the registry does not know.
    models: Vec<String>,
    drawn: Vec<Chart>,
}

impl Charts {
    /// An empty set of charts of `results`, to be drawn into `dir` (each scenario draws its
    /// own: see [`crate::render`]).
    pub fn new(results: &Results, dir: &Path) -> Charts {
        let models = results.models.iter().map(|m| m.name.clone()).collect();
        Charts { dir: dir.to_path_buf(), models, drawn: Vec::new() }
    }

    /// The charts drawn, in the order they were drawn (the report's).
    pub fn drawn(self) -> Vec<Chart> {
        self.drawn
    }

    fn add(&mut self, scenario: &str, file: &str, title: &str, drawn: Result<bool>) -> Result<()> {
        if drawn.with_context(|| format!("cannot draw {file}"))? {
            let file = format!("{CHART_DIR}/{file}");
            self.drawn.push(Chart { scenario: scenario.to_string(), file, title: title.into() });
        }
        Ok(())
    }

    /// The colour of a model: its registry place, else a place after the registry's.
    pub fn colour(&self, model: &str) -> RGBColor {
        let known = registry::MODELS.iter().position(|m| m.name == model);
        let k = known.unwrap_or_else(|| {
            let unknown = self.models.iter().filter(|m| registry::find(m).is_none());
            registry::MODELS.len() + unknown.take_while(|m| *m != model).count()
        });
        PALETTE[k % PALETTE.len()]
    }

    /// A line per model over a log x axis and a linear y axis from zero.
    pub fn lines(
        &mut self,
        scenario: &str,
        file: &str,
        title: &str,
        x: &str,
        y: &str,
        s: &[Series],
    ) -> Result<()> {
        let drawn = lines(self, file, title, x, y, s, false);
        self.add(scenario, file, title, drawn)
    }

    /// A line per model over log x and log y axes, for values that span decades.
    pub fn log_lines(
        &mut self,
        scenario: &str,
        file: &str,
        title: &str,
        x: &str,
        y: &str,
        s: &[Series],
    ) -> Result<()> {
        let drawn = lines(self, file, title, x, y, s, true);
        self.add(scenario, file, title, drawn)
    }

    /// Grouped bars: one group per x value, one bar per model, each with its value above it.
    pub fn bars(
        &mut self,
        scenario: &str,
        file: &str,
        title: &str,
        x: &str,
        y: &str,
        s: &[Series],
    ) -> Result<()> {
        let drawn = bars(self, file, title, x, y, s);
        self.add(scenario, file, title, drawn)
    }

    /// Latency percentiles (p50 to max, the x values 0 to 5) on a log y axis.
    pub fn spectrum(
        &mut self,
        scenario: &str,
        file: &str,
        title: &str,
        s: &[Series],
    ) -> Result<()> {
        let drawn = spectrum(self, file, title, s);
        self.add(scenario, file, title, drawn)
    }
}

fn bounds(series: &[Series]) -> Option<(f64, f64, f64, f64)> {
    let pts = series.iter().flat_map(|(_, p)| p.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for d in pts {
        (x0, x1, y0, y1) = (x0.min(d.x), x1.max(d.x), y0.min(d.lo), y1.max(d.hi));
    }
    (x0 <= x1).then_some((x0, x1, y0, y1))
}

/// A line per model over a log x axis; log y too when `log_y`. `false` if there is no data.
fn lines(
    charts: &Charts,
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
            charts,
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
        draw(
            charts,
            file,
            title,
            x_desc,
            y_desc,
            s,
            (x0..x1).log_scale(),
            0.0..y1 * 1.15,
            &fx,
            &|y| compact(*y),
        )
    }
}

/// The latency spectrum: percentiles along x, microseconds on a log y axis.
fn spectrum(charts: &Charts, file: &str, title: &str, s: &[Series]) -> Result<bool> {
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
        charts,
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
    charts: &Charts,
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
    let path = charts.dir.join(file);
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
    for (name, pts) in series {
        let c = charts.colour(name);
        chart
            .draw_series(LineSeries::new(pts.iter().map(|d| (d.x, d.y)), c.stroke_width(2)))?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        chart.draw_series(pts.iter().map(|d| Circle::new((d.x, d.y), 3, c.filled())))?;
        let spread = pts.iter().filter(|d| d.hi > d.lo);
        chart.draw_series(
            spread.map(|d| ErrorBar::new_vertical(d.x, d.lo, d.y, d.hi, c.stroke_width(1), 8)),
        )?;
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
    charts: &Charts,
    file: &str,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    s: &[Series],
) -> Result<bool> {
    let Some((_, _, _, y1)) = bounds(s) else { return Ok(false) };
    let mut xs: Vec<f64> = s.iter().flat_map(|(_, p)| p.iter().map(|d| d.x)).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    let path = charts.dir.join(file);
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
        let c = charts.colour(name);
        let rects = pts.iter().filter_map(|d| {
            let g = xs.iter().position(|&v| v == d.x)? as f64;
            let left = g - 0.4 + width * i as f64;
            Some(Rectangle::new([(left, 0.0), (left + width * 0.9, d.y)], c.filled()))
        });
        chart
            .draw_series(rects)?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], c.filled()));
        // Each bar's value above it, so that a bar too short to see still shows its figure.
        // The repeats' range over each bar, in black so it shows on the bar's own colour.
        // A range under 1% of the axis would draw as a blot, not a bar.
        let spread = pts.iter().filter(|d| d.hi - d.lo > y1 * 0.01).filter_map(|d| {
            let g = xs.iter().position(|&v| v == d.x)? as f64;
            let mid = g - 0.4 + width * (i as f64 + 0.45);
            Some(ErrorBar::new_vertical(mid, d.lo, d.y, d.hi, BLACK.stroke_width(1), 6))
        });
        chart.draw_series(spread)?;
        let values = pts.iter().filter_map(|d| {
            let g = xs.iter().position(|&v| v == d.x)? as f64;
            let left = g - 0.4 + width * i as f64;
            // Text hangs below its anchor: lift it clear of the range's top.
            let at = (left, d.hi + y1 * 0.07);
            let font = ("sans-serif", 11).into_font().color(&BLACK);
            Some(Text::new(compact(d.y), at, font))
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
