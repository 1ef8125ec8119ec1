//! The lessons' two chart kinds: bars over named categories (stall's three ways of measuring
//! one stall) and a histogram with one line per model (backlog's connect latencies, whose
//! steps are the SYN retransmissions).

use anyhow::Result;
use plotters::prelude::*;

use super::{Charts, PALETTE, Series, compact};

/// One bar series over named categories: its name and one value per category (NaN: none).
pub type Bars = (String, Vec<f64>);

impl Charts {
    /// Grouped bars over `groups` (named on the x axis), one colour per series in palette
    /// order (these series are figures, not models), each bar's value written above it.
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
        let drawn = histogram(self, file, title, x, y, series);
        self.add(scenario, file, title, drawn)
    }
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
    let Some(top) = values.reduce(f64::max) else { return Ok(false) };
    let path = charts.dir.join(file);
    let root = SVGBackend::new(&path, (760, 440)).into_drawing_area();
    root.fill(&WHITE)?;
    let n = groups.len() as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(-0.5..n - 0.5, 0.0..top.max(1e-9) * 1.3)?;
    let names = groups.to_vec();
    let fx = move |x: &f64| {
        let i = x.round();
        let on = (x - i).abs() < 0.01 && i >= 0.0 && (i as usize) < names.len();
        if on { names[i as usize].clone() } else { String::new() }
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_desc(y_desc)
        .x_labels(groups.len() * 2 + 1)
        .x_label_formatter(&fx)
        .y_label_formatter(&|y| compact(*y))
        .draw()?;
    let width = 0.8 / series.len().max(1) as f64;
    for (i, (name, values)) in series.iter().enumerate() {
        let c = PALETTE[i % PALETTE.len()];
        let left = |g: usize| g as f64 - 0.4 + width * i as f64;
        let bars = values.iter().enumerate().filter(|(_, v)| v.is_finite()).map(|(g, &v)| {
            Rectangle::new([(left(g), 0.0), (left(g) + width * 0.9, v)], c.filled())
        });
        chart
            .draw_series(bars)?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], c.filled()));
        let labels = values.iter().enumerate().filter(|(_, v)| v.is_finite()).map(|(g, &v)| {
            let font = ("sans-serif", 11).into_font().color(&BLACK);
            Text::new(compact(v), (left(g), v + top * 0.06), font)
        });
        chart.draw_series(labels)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(true)
}

fn histogram(
    charts: &Charts,
    file: &str,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[Series],
) -> Result<bool> {
    let dots = series.iter().flat_map(|(_, d)| d.iter());
    let (x1, y1) = dots.fold((0.0f64, 0.0f64), |(x, y), d| (x.max(d.x), y.max(d.y)));
    if series.iter().all(|(_, d)| d.is_empty()) {
        return Ok(false);
    }
    let path = charts.dir.join(file);
    let root = SVGBackend::new(&path, (760, 440)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
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
    for (name, dots) in series {
        let c = charts.colour(name);
        chart
            .draw_series(LineSeries::new(dots.iter().map(|d| (d.x, d.y)), c.stroke_width(2)))?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        let nonzero = dots.iter().filter(|d| d.y > 0.0);
        chart.draw_series(nonzero.map(|d| Circle::new((d.x, d.y), 3, c.filled())))?;
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
