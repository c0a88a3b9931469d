//! The chart of a sweep: wall time per seed, one series per scenario, failing
//! seeds marked in red.

use plotters::prelude::*;

use kzsim_sim::RunOutcome;

use crate::ReportError;

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
    RGBColor(140, 86, 75),
];

/// An inline SVG chart of wall milliseconds per seed.
pub fn wall_time_svg(outcomes: &[RunOutcome]) -> Result<String, ReportError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 320)).into_drawing_area();
        let err = |e: &dyn std::fmt::Display| ReportError::Chart(e.to_string());
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let max_seed = outcomes.iter().map(|o| o.seed).max().unwrap_or(0) + 1;
        let min_seed = outcomes.iter().map(|o| o.seed).min().unwrap_or(0);
        let max_ms = outcomes.iter().map(|o| o.wall_ms).fold(1.0, f64::max) * 1.1;
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(min_seed..max_seed, 0.0..max_ms)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("seed")
            .y_desc("wall ms")
            .draw()
            .map_err(|e| err(&e))?;
        let mut names: Vec<&str> = outcomes.iter().map(|o| o.scenario.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        for (i, name) in names.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            chart
                .draw_series(
                    outcomes
                        .iter()
                        .filter(|o| o.scenario == *name)
                        .map(|o| Circle::new((o.seed, o.wall_ms), 3, color.filled())),
                )
                .map_err(|e| err(&e))?
                .label(*name)
                .legend(move |(x, y)| Circle::new((x, y), 3, color.filled()));
        }
        chart
            .draw_series(
                outcomes
                    .iter()
                    .filter(|o| !o.ok)
                    .map(|o| Cross::new((o.seed, o.wall_ms), 5, RED.stroke_width(2))),
            )
            .map_err(|e| err(&e))?;
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}
