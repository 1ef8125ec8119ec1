//! The bar chart kinds and the histogram: grouped bars over the scenario's points (a bar per
//! model), bars over named categories (stall's three ways of measuring one stall), and a
//! histogram with one line per model (backlog's connect latencies, whose steps are the SYN
//! retransmissions).

use anyhow::Result;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

use super::axis::{above, log_range, log_ticks, logged, wants_log};
use super::legend::{Area, Mark, SATURATED, frame, legend};
use super::lines::Which;
use super::{Charts, PALETTE, Series, bounds, compact};

/// One bar series over named categories: its name and one value per category (NaN: none).
pub type Bars = (String, Vec<f64>);

impl Charts {
    /// Grouped bars over `groups` (named on the x axis), one colour per series in palette
    /// order (these series are figures, not models), each bar's value written above it; a
    /// log y axis when the values span more than two decades.
    pub fn categories(
        &mut self,
        scenario: &str,
        file: &str,
        title: &str,
        groups: &[String],
        y: &str,
        series: &[Bars],
    ) -> Result<()> {
        let drawn = categories(self, file, title, groups, y, series);
        self.add(scenario, file, title, drawn)
    }

    /// A histogram drawn as one line per model over a linear x axis: `series` holds each
    /// model's counts, one dot per bin (x the bin's start, y its count).
    pub fn histogram(
        &mut self,
        scenario: &str,
        file: &str,
        title: &str,
        x: &str,
        y: &str,
        series: &[Series],
    ) -> Result<()> {
        let drawn = histogram(self, (scenario, file, title), x, y, series);
        self.add(scenario, file, title, drawn)
    }
}

/// One bar: its group, its place in the group, its value, the range over it, and whether it
/// is drawn hollow (the generator was saturated there).
struct Bar {
    group: usize,
    slot: usize,
    value: f64,
    range: Option<(f64, f64)>,
    hollow: bool,
    colour: RGBColor,
}

/// Everything a bar chart draws besides its y axis.
struct Plot {
    groups: Vec<String>,
    slots: usize,
    x_desc: String,
    y_desc: String,
    bars: Vec<Bar>,
    legend: Vec<(String, Mark)>,
}

/// Grouped bars over the scenario's points: one group per x value, one bar per model.
pub fn bars(
    charts: &Charts,
    which: Which<'_>,
    x_desc: &str,
    y_desc: &str,
    s: &[Series],
) -> Result<bool> {
    let (scenario, file, title) = which;
    let Some((_, _, y0, y1)) = bounds(s) else { return Ok(false) };
    let mut xs: Vec<f64> = s.iter().flat_map(|(_, p)| p.iter().map(|d| d.x)).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    let mut bars = Vec::new();
    let mut legend = Vec::new();
    for (slot, (name, pts)) in s.iter().enumerate() {
        let colour = charts.colour(name);
        for d in pts {
            let Some(group) = xs.iter().position(|&v| v == d.x) else { continue };
            let hollow = charts.saturated(scenario, name, d.x);
            let range = (d.hi > d.lo).then_some((d.lo, d.hi));
            bars.push(Bar { group, slot, value: d.y, range, hollow, colour });
        }
        legend.push((charts.label(scenario, name), Mark::Block(colour)));
    }
    if bars.iter().any(|b| b.hollow) {
        legend.push((SATURATED.to_string(), Mark::HollowBlock));
    }
    let values = s.iter().flat_map(|(_, p)| p.iter().flat_map(|d| [d.lo, d.y, d.hi]));
    let plot = Plot {
        groups: xs.iter().map(|&x| charts.point_name(scenario, x)).collect(),
        slots: s.len(),
        x_desc: x_desc.to_string(),
        y_desc: y_desc.to_string(),
        bars,
        legend,
    };
    let path = charts.dir.join(file);
    draw_either(&plot, &frame(&path, title)?, wants_log(values), (y0, y1))
}

fn categories(
    charts: &Charts,
    file: &str,
    title: &str,
    groups: &[String],
    y_desc: &str,
    series: &[Bars],
) -> Result<bool> {
    let values = series.iter().flat_map(|(_, v)| v.iter().copied()).filter(|v| v.is_finite());
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(l, h), v| (l.min(v), h.max(v)));
    if lo > hi {
        return Ok(false);
    }
    let mut bars = Vec::new();
    let mut legend = Vec::new();
    for (slot, (name, values)) in series.iter().enumerate() {
        let colour = PALETTE[slot % PALETTE.len()];
        for (group, &value) in values.iter().enumerate().filter(|(_, v)| v.is_finite()) {
            bars.push(Bar { group, slot, value, range: None, hollow: false, colour });
        }
        legend.push((name.clone(), Mark::Block(colour)));
    }
    let log = wants_log(bars.iter().map(|b| b.value));
    let plot = Plot {
        groups: groups.to_vec(),
        slots: series.len().max(1),
        x_desc: String::new(),
        y_desc: y_desc.to_string(),
        bars,
        legend,
    };
    let path = charts.dir.join(file);
    draw_either(&plot, &frame(&path, title)?, log, (lo, hi))
}

/// Draws the bars on a log y axis or a linear one from zero, and presents the chart.
fn draw_either(
    plot: &Plot,
    (root, area, side): &(Area<'_>, Area<'_>, Area<'_>),
    log: bool,
    (lo, hi): (f64, f64),
) -> Result<bool> {
    if log {
        // Room above the tallest bar for its label.
        let r = log_range(lo, hi, 2.0);
        let ticks = log_ticks(r.start, r.end);
        let axis = (r.start, r.end);
        draw_bars(plot, area, r.log_scale().with_key_points(ticks), axis, true)?;
    } else {
        let top = hi.max(1e-9) * 1.2;
        draw_bars(plot, area, 0.0..top, (0.0, top), false)?;
    }
    legend(side, &plot.legend)?;
    root.present()?;
    Ok(true)
}

fn draw_bars<Y>(plot: &Plot, area: &Area<'_>, y: Y, axis: (f64, f64), log: bool) -> Result<()>
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let n = plot.groups.len() as f64;
    let mut chart = ChartBuilder::on(area)
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(-0.5..n - 0.5, y)?;
    let names = plot.groups.clone();
    let fx = move |x: &f64| {
        let i = x.round();
        let on = (x - i).abs() < 0.01 && i >= 0.0 && (i as usize) < names.len();
        if on { names[i as usize].clone() } else { String::new() }
    };
    let y_desc = if log { logged(&plot.y_desc) } else { plot.y_desc.clone() };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc(plot.x_desc.as_str())
        .y_desc(y_desc)
        .x_labels(plot.groups.len() * 2 + 1)
        .x_label_formatter(&fx)
        .y_label_formatter(&|y| compact(*y))
        .draw()?;
    let width = 0.8 / plot.slots as f64;
    // A bar stands on the axis's bottom: zero on a linear axis, the lowest tick on a log one.
    let base = axis.0;
    let left = |b: &Bar| b.group as f64 - 0.4 + width * b.slot as f64;
    for b in &plot.bars {
        let corners = [(left(b), base), (left(b) + width * 0.9, b.value.max(base))];
        if b.hollow {
            // A pale fill keeps the model's colour readable; the outline says "hollow".
            chart.draw_series([Rectangle::new(corners, WHITE.filled())])?;
            chart.draw_series([Rectangle::new(corners, b.colour.mix(0.2).filled())])?;
            chart.draw_series([Rectangle::new(corners, b.colour.stroke_width(2))])?;
        } else {
            chart.draw_series([Rectangle::new(corners, b.colour.filled())])?;
        }
        // The repeats' range over the bar, in black so it shows on the bar's own colour; a
        // range under 1% of the axis would draw as a blot, not a bar.
        let top = b.range.map_or(b.value, |(_, h)| h);
        if let Some((l, h)) = b.range.filter(|&(l, h)| visible(l, h, axis, log)) {
            let mid = left(b) + width * 0.45;
            let bar = ErrorBar::new_vertical(mid, l, b.value, h, BLACK.stroke_width(1), 6);
            chart.draw_series([bar])?;
        }
        // Each bar's value above it, so that a bar too short to see still shows its figure.
        // Text hangs below its anchor: lift it clear of the range's top.
        let font = ("sans-serif", 11).into_font().color(&BLACK);
        let at = (left(b), above(top, 0.07, axis, log));
        chart.draw_series([Text::new(compact(b.value), at, font)])?;
    }
    Ok(())
}

/// Whether a range from `lo` to `hi` is at least 1% of the axis.
fn visible(lo: f64, hi: f64, (bottom, top): (f64, f64), log: bool) -> bool {
    if log { (hi / lo).ln() > 0.01 * (top / bottom).ln() } else { hi - lo > 0.01 * top }
}

fn histogram(
    charts: &Charts,
    which: Which<'_>,
    x_desc: &str,
    y_desc: &str,
    series: &[Series],
) -> Result<bool> {
    let (scenario, file, title) = which;
    let dots = series.iter().flat_map(|(_, d)| d.iter());
    let (x1, y1) = dots.fold((0.0f64, 0.0f64), |(x, y), d| (x.max(d.x), y.max(d.y)));
    if series.iter().all(|(_, d)| d.is_empty()) {
        return Ok(false);
    }
    let path = charts.dir.join(file);
    let (root, area, side) = frame(&path, title)?;
    let mut chart = ChartBuilder::on(&area)
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(0.0..(x1 * 1.05).max(1.0), 0.0..(y1 * 1.15).max(1.0))?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&|x| compact(*x))
        .y_label_formatter(&|y| compact(*y))
        .draw()?;
    let mut entries = Vec::new();
    for (name, dots) in series {
        let c = charts.colour(name);
        chart.draw_series(LineSeries::new(dots.iter().map(|d| (d.x, d.y)), c.stroke_width(2)))?;
        let nonzero = dots.iter().filter(|d| d.y > 0.0);
        chart.draw_series(nonzero.map(|d| Circle::new((d.x, d.y), 3, c.filled())))?;
        entries.push((charts.label(scenario, name), Mark::Line(c)));
    }
    legend(&side, &entries)?;
    root.present()?;
    Ok(true)
}
