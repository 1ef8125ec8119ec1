//! Line charts: a line per model over the scenario's points.

use anyhow::Result;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

use super::axis::{log_range, log_ticks, logged, wants_log};
use super::legend::{Mark, SATURATED, frame, legend};
use super::{Charts, Dot, Series, bounds, compact};

/// The most points that each get their name on the x axis; more would overlap, and get
/// round-number ticks instead.
const NAMED_POINTS: usize = 12;

/// Which chart: its scenario, file and title.
pub type Which<'a> = (&'a str, &'a str, &'a str);

/// Everything a line chart draws besides its axes' ranges.
struct Plot<'a> {
    charts: &'a Charts,
    which: Which<'a>,
    x_desc: String,
    y_desc: String,
    series: &'a [Series],
    fx: &'a dyn Fn(&f64) -> String,
    /// Whether a series' dot is drawn hollow: the generator was saturated at its point.
    hollow: &'a dyn Fn(&str, &Dot) -> bool,
}

/// A line per model over the scenario's points: a log x axis (the variables grow by factors)
/// with each point named when there are few; a log y axis when `log_y` or when the values
/// span more than two decades. `false` if there is no data.
pub fn lines(
    charts: &Charts,
    which: Which<'_>,
    x_desc: &str,
    y_desc: &str,
    s: &[Series],
    log_y: bool,
) -> Result<bool> {
    let Some((x0, x1, y0, y1)) = bounds(s) else { return Ok(false) };
    let mut xs: Vec<f64> = s.iter().flat_map(|(_, p)| p.iter().map(|d| d.x)).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    let values = s.iter().flat_map(|(_, p)| p.iter().flat_map(|d| [d.lo, d.y, d.hi]));
    let log_y = log_y || wants_log(values);
    // A zero or negative x (a point numbered from 0) has no place on a log axis.
    let log_x = x0 > 0.0;
    let scenario = which.0;
    let fx = |x: &f64| charts.point_name(scenario, *x);
    // The x values are the scenario's points.
    let hollow = |name: &str, d: &Dot| charts.saturated(scenario, name, d.x);
    let plot = Plot {
        charts,
        which,
        x_desc: if log_x { logged(x_desc) } else { x_desc.to_string() },
        y_desc: if log_y { logged(y_desc) } else { y_desc.to_string() },
        series: s,
        fx: &fx,
        hollow: &hollow,
    };
    let xr = x0 / 1.5..x1 * 1.5;
    let xt = if xs.len() <= NAMED_POINTS { xs } else { log_ticks(xr.start, xr.end) };
    // A linear x axis (rare: a point numbered from 0) keeps plotters' own ticks, which the
    // point names label where they fall on a point.
    let pad = ((x1 - x0) * 0.08).max(0.5);
    let linear_x = x0 - pad..x1 + pad;
    // A log axis must keep its bottom above zero even when a repeat measured 0.
    let (ylo, yhi) = (y0.max(y1 * 1e-6).max(f64::MIN_POSITIVE), y1.max(f64::MIN_POSITIVE));
    let yr = log_range(ylo, yhi, 1.0);
    let yt = log_ticks(yr.start, yr.end);
    match (log_x, log_y) {
        (true, true) => {
            draw(&plot, xr.log_scale().with_key_points(xt), yr.log_scale().with_key_points(yt))
        }
        (true, false) => draw(&plot, xr.log_scale().with_key_points(xt), 0.0..y1.max(1e-9) * 1.15),
        (false, true) => draw(&plot, linear_x, yr.log_scale().with_key_points(yt)),
        (false, false) => draw(&plot, linear_x, 0.0..y1.max(1e-9) * 1.15),
    }
}

fn draw<X, Y>(p: &Plot<'_>, x: X, y: Y) -> Result<bool>
where
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let (scenario, file, title) = p.which;
    let path = p.charts.dir.join(file);
    let (root, area, side) = frame(&path, title)?;
    let mut chart = ChartBuilder::on(&area)
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(x, y)?;
    chart
        .configure_mesh()
        .x_desc(p.x_desc.as_str())
        .y_desc(p.y_desc.as_str())
        .x_labels(NAMED_POINTS)
        // Light lines between the named x values mean nothing (between p90 and p99, say).
        .x_max_light_lines(0)
        .x_label_formatter(p.fx)
        .y_label_formatter(&|y| compact(*y))
        .draw()?;
    let mut entries = Vec::new();
    let mut any_saturated = false;
    for (name, pts) in p.series {
        let c = p.charts.colour(name);
        chart.draw_series(LineSeries::new(pts.iter().map(|d| (d.x, d.y)), c.stroke_width(2)))?;
        let spread = pts.iter().filter(|d| d.hi > d.lo);
        chart.draw_series(
            spread.map(|d| ErrorBar::new_vertical(d.x, d.lo, d.y, d.hi, c.stroke_width(1), 8)),
        )?;
        let (hollow, full): (Vec<&Dot>, Vec<&Dot>) = pts.iter().partition(|d| (p.hollow)(name, d));
        any_saturated |= !hollow.is_empty();
        chart.draw_series(full.iter().map(|d| Circle::new((d.x, d.y), 3, c.filled())))?;
        chart.draw_series(hollow.iter().map(|d| Circle::new((d.x, d.y), 5, WHITE.filled())))?;
        chart.draw_series(hollow.iter().map(|d| Circle::new((d.x, d.y), 5, c.stroke_width(2))))?;
        entries.push((p.charts.label(scenario, name), Mark::Line(c)));
    }
    if any_saturated {
        entries.push((SATURATED.to_string(), Mark::Hollow));
    }
    legend(&side, &entries)?;
    root.present()?;
    Ok(true)
}
