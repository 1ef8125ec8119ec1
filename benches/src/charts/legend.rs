//! Every chart's frame: the title across the top, the plot on the left, and the legend in a
//! column of its own on the right, so that it never covers data (inside the plot it hid lines
//! and bars whichever corner it took).

use std::path::Path;

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

/// The whole chart's size in pixels.
pub const SIZE: (u32, u32) = (1000, 440);

/// The legend column's width: room for "reuseport (1 worker)" and the saturation entry.
const COLUMN: u32 = 240;

/// Where a chart draws.
pub type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// What a legend entry shows beside its name.
#[derive(Debug, Clone, Copy)]
pub enum Mark {
    /// A line with a dot: a line series.
    Line(RGBColor),
    /// A filled box: a bar series.
    Block(RGBColor),
    /// A hollow dot: a point where the generator was saturated.
    Hollow,
    /// A hollow box: a bar where the generator was saturated.
    HollowBlock,
}

/// The legend entry of saturated points; its name runs over two lines to fit the column.
pub const SATURATED: &str = "generator saturated\n(the pair's limit)";

/// The chart's root, its plot area and its legend column, with `title` drawn across the top.
/// The root must be presented once everything is drawn.
pub fn frame<'a>(path: &'a Path, title: &str) -> Result<(Area<'a>, Area<'a>, Area<'a>)> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let body = root.titled(title, ("sans-serif", 20))?;
    let (plot, legend) = body.split_horizontally(SIZE.0 - COLUMN);
    Ok((root, plot, legend))
}

/// Draws `entries` top-down in the legend column.
pub fn legend(area: &Area<'_>, entries: &[(String, Mark)]) -> Result<()> {
    let font = ("sans-serif", 13).into_font().color(&BLACK);
    let mut y = 24;
    for (name, mark) in entries {
        let mid = y + 7;
        match *mark {
            Mark::Line(c) => {
                area.draw(&PathElement::new(vec![(6, mid), (30, mid)], c.stroke_width(2)))?;
                area.draw(&Circle::new((18, mid), 3, c.filled()))?;
            }
            Mark::Block(c) => {
                area.draw(&Rectangle::new([(10, mid - 6), (26, mid + 6)], c.filled()))?
            }
            Mark::Hollow => {
                area.draw(&Circle::new((18, mid), 5, WHITE.filled()))?;
                area.draw(&Circle::new((18, mid), 5, BLACK.stroke_width(2)))?;
            }
            Mark::HollowBlock => {
                area.draw(&Rectangle::new([(10, mid - 6), (26, mid + 6)], BLACK.stroke_width(2)))?
            }
        }
        let lines: Vec<&str> = name.split('\n').collect();
        for (i, line) in lines.iter().enumerate() {
            area.draw(&Text::new(line.to_string(), (38, y + 16 * i as i32), font.clone()))?;
        }
        y += 16 * lines.len() as i32 + 6;
    }
    Ok(())
}
