//! The percentile spectrum on a "nines" axis, as HdrHistogram and wrk2 plot it: x is
//! 1 / (1 - q) on a log scale, so 90%, 99%, 99.9% and 99.99% are evenly spaced and the tail,
//! where models part, gets as much room as the median. One line per model; the legend sits
//! beside the plot, never over it.

use anyhow::Result;
use plotters::prelude::*;

use super::{Charts, compact};

/// One model's spectrum: its name and `[quantile, microseconds]` pairs, quantile rising.
pub type Spectrum = (String, Vec<[f64; 2]>);

/// Where quantile `q` sits on the nines axis; the largest sample is given as
/// `1 - 1 / count`, so no value is infinite.
pub fn nines_x(q: f64) -> f64 {
    1.0 / (1.0 - q.clamp(0.0, 1.0 - 1e-9))
}

/// The label of a point on the nines axis: "0%", "90%", "99%", "99.9%"... at each power of
/// ten, nothing between.
pub fn nines_label(x: f64) -> String {
    let k = x.log10();
    if x < 1.0 || (k - k.round()).abs() > 0.01 {
        return String::new();
    }
    let q = 100.0 * (1.0 - 10f64.powf(-k.round()));
    let digits = (k.round() as usize).saturating_sub(2);
    format!("{q:.digits$}%")
}

impl Charts {
    /// Latency by percentile on a nines axis, one line per model, a log latency axis.
    pub fn nines(&mut self, scenario: &str, file: &str, title: &str, s: &[Spectrum]) -> Result<()> {
        let drawn = draw(self, file, title, s);
        self.add(scenario, file, title, drawn)
    }
}

fn draw(charts: &Charts, file: &str, title: &str, s: &[Spectrum]) -> Result<bool> {
    let values = s.iter().flat_map(|(_, v)| v.iter()).filter(|v| v[1] > 0.0);
    let (mut x1, mut y0, mut y1) = (10.0f64, f64::MAX, f64::MIN);
    for v in values {
        (x1, y0, y1) = (x1.max(nines_x(v[0])), y0.min(v[1]), y1.max(v[1]));
    }
    if y0 > y1 {
        return Ok(false);
    }
    // Up to the next power of ten, so the last nine the samples reach is labelled.
    let x1 = 10f64.powf(x1.log10().ceil());
    let path = charts.dir.join(file);
    let root = SVGBackend::new(&path, (900, 460)).into_drawing_area();
    root.fill(&WHITE)?;
    let (plot, legend) = root.split_horizontally(700);
    let mut chart = ChartBuilder::on(&plot)
        .caption(title, ("sans-serif", 17))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d((1.0..x1).log_scale(), (y0 / 1.5..y1 * 1.5).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("percentile (log scale of 1 / (1 - q))")
        .y_desc("latency (us, log)")
        .x_labels(12)
        .x_label_formatter(&|x| nines_label(*x))
        .y_label_formatter(&|y| compact(*y))
        .draw()?;
    for (i, (name, pts)) in s.iter().enumerate() {
        // The colour is the model's: its name before any "(1 worker)" or "(overloaded)".
        let c = charts.colour(name.split(" (").next().unwrap_or(name));
        let line: Vec<(f64, f64)> =
            pts.iter().filter(|v| v[1] > 0.0).map(|v| (nines_x(v[0]), v[1])).collect();
        // An overloaded model's line is dashed, so it reads as a queue, not a service time.
        let overloaded = name.ends_with("(overloaded)");
        if overloaded {
            chart.draw_series(DashedLineSeries::new(line.clone(), 6, 4, c.stroke_width(2)))?;
        } else {
            chart.draw_series(LineSeries::new(line.clone(), c.stroke_width(2)))?;
        }
        chart.draw_series(line.iter().map(|&p| Circle::new(p, 2, c.filled())))?;
        let y = 40 + 20 * i as i32;
        let font = ("sans-serif", 13).into_font().color(&BLACK);
        // The legend's sample is dashed like the line it names.
        let pieces: &[(i32, i32)] = if overloaded { &[(6, 14), (20, 30)] } else { &[(6, 30)] };
        for &(from, to) in pieces {
            legend.draw(&PathElement::new(vec![(from, y), (to, y)], c.stroke_width(2)))?;
        }
        legend.draw(&Text::new(name.clone(), (36, y - 7), font))?;
    }
    root.present()?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nines_axis_spaces_each_nine_evenly_and_labels_only_the_nines() {
        assert!((nines_x(0.0) - 1.0).abs() < 1e-9);
        assert!((nines_x(0.99) - 100.0).abs() < 1e-6);
        assert!((nines_x(0.999) - 1_000.0).abs() < 1e-3);
        assert!(nines_x(1.0).is_finite());
        assert_eq!(nines_label(1.0), "0%");
        assert_eq!(nines_label(10.0), "90%");
        assert_eq!(nines_label(100.0), "99%");
        assert_eq!(nines_label(1_000.0), "99.9%");
        assert_eq!(nines_label(100_000.0), "99.999%");
        assert_eq!(nines_label(50.0), "");
    }
}
