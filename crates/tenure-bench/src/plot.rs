//! The latency plot: one panel per group of series, each series drawn as
//! its empirical distribution (fraction of runs at or below a latency).
//! SVG through plotters, with no font or system-library dependency.

use std::path::Path;

use plotters::prelude::*;

use crate::error::{fail, Result};
use crate::report::Series;

const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// Writes the plot of `series` to `path` (SVG).
///
/// # Errors
/// When there is nothing to draw or the file cannot be written.
pub fn write_svg(path: &Path, series: &[Series]) -> Result<()> {
    let mut panels: Vec<&str> = Vec::new();
    for s in series {
        if !panels.contains(&s.panel.as_str()) {
            panels.push(&s.panel);
        }
    }
    if panels.is_empty() {
        return Err(fail("no latency series to plot"));
    }
    let cols = 2usize.min(panels.len());
    let rows = panels.len().div_ceil(cols);
    let height = u32::try_from(rows * 420).unwrap_or(420);
    let root = SVGBackend::new(path, (1200, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(format!("plot: {e}")))?;
    let areas = root.split_evenly((rows, cols));
    for (panel, area) in panels.iter().zip(areas.iter()) {
        let mine: Vec<&Series> = series.iter().filter(|s| s.panel == *panel).collect();
        draw_panel(area, panel, &mine)?;
    }
    root.present().map_err(|e| fail(format!("plot: {e}")))?;
    Ok(())
}

fn draw_panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    title: &str,
    series: &[&Series],
) -> Result<()> {
    let err = |e: DrawingAreaErrorKind<_>| fail(format!("plot {title}: {e}"));
    let lo = series
        .iter()
        .map(|s| s.dist.min)
        .fold(f64::INFINITY, f64::min);
    let hi = series
        .iter()
        .map(|s| s.dist.max)
        .fold(f64::NEG_INFINITY, f64::max);
    let pad = ((hi - lo) * 0.05).max(0.01);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(44)
        .build_cartesian_2d((lo - pad)..(hi + pad), 0.0..1.0)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("ms")
        .y_desc("fraction of runs ≤ x")
        .draw()
        .map_err(err)?;
    for (i, s) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let n = s.dist.sorted.len() as f64;
        let points: Vec<(f64, f64)> = s
            .dist
            .sorted
            .iter()
            .enumerate()
            .map(|(k, v)| (*v, (k + 1) as f64 / n))
            .collect();
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(err)?
            .label(format!("{} (median {:.2})", s.label, s.dist.median))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    Ok(())
}
