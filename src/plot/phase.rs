//! The (weight norm, error) phase plane of linear runs (paper Fig. 1B).

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{COLOURS, Curve, PlotError, curves, in_both_formats, tick};
use crate::recorder::FileSummary;

/// Draws the (weight norm, error) phase plane of linear runs (paper Fig. 1B): per group, the
/// seed means of `alpha` and `epsilon` recorded at the same steps, the four-variable model's
/// trajectory dashed, and the critical norm `2/(η Lx Ly (1 + β0))` past which the error grows
/// as a vertical dotted line in the group's colour. `None` when the runs do not record both.
pub fn draw_phase_plane(file: &FileSummary, title: &str, path: &Path) -> Result<Option<()>, PlotError> {
    let (Ok((_, alpha)), Ok((_, epsilon))) = (curves(file, Some("alpha")), curves(file, Some("epsilon")))
    else {
        return Ok(None);
    };
    in_both_formats(
        path,
        |root| phase_plane_on(&alpha, &epsilon, title, root),
        |root| phase_plane_on(&alpha, &epsilon, title, root),
    )
}

fn phase_plane_on<DB: DrawingBackend>(
    alpha: &[Curve],
    epsilon: &[Curve],
    title: &str,
    root: impl FnOnce() -> DrawingArea<DB, Shift>,
) -> Result<Option<()>, String> {
    // Per group: the trajectory, the theory's and the critical norm.
    type Trajectory = Vec<(f64, f64)>;
    let pair = |a: &[f64], e: &[f64]| -> Trajectory {
        a.iter()
            .zip(e)
            .map(|(&x, &y)| (x, y))
            .filter(|&(x, y)| x.is_finite() && y.is_finite() && x > 0.0 && y > 0.0)
            .collect()
    };
    let groups: Vec<(&str, Trajectory, Trajectory, Option<f64>)> = alpha
        .iter()
        .zip(epsilon)
        .filter(|(a, e)| a.label == e.label && a.steps == e.steps)
        .map(|(a, e)| {
            let theory = match (&a.theory, &e.theory) {
                (Some((_, ta)), Some((_, te))) => pair(ta, te),
                _ => Vec::new(),
            };
            (a.label.as_str(), pair(&a.mean, &e.mean), theory, a.critical_alpha)
        })
        .collect();
    let points = groups.iter().flat_map(|(_, run, _, _)| run.iter());
    let (x_lo, x_hi, y_lo, y_hi) = points.fold(
        (f64::INFINITY, 0.0f64, f64::INFINITY, 0.0f64),
        |(a, b, c, d), &(x, y)| (a.min(x), b.max(x), c.min(y), d.max(y)),
    );
    if !x_lo.is_finite() || !y_lo.is_finite() {
        return Ok(None);
    }
    let root = root();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(0.0..x_hi * 1.1, (y_lo / 2.0..y_hi * 2.0).log_scale())
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("input-weight norm α = |W1|²/Lx")
        .y_desc("error ε")
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .draw()
        .map_err(|e| e.to_string())?;
    for (k, (label, run, theory, critical)) in groups.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(run.iter().copied(), colour.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(label.to_string())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
        chart
            .draw_series(run.first().map(|&p| Circle::new(p, 4, colour.filled())))
            .map_err(|e| e.to_string())?;
        let inside = |&(x, y): &(f64, f64)| x <= x_hi * 1.1 && y <= y_hi * 2.0 && y >= y_lo / 2.0;
        chart
            .draw_series(DashedLineSeries::new(
                theory.iter().copied().take_while(inside),
                6,
                4,
                colour.stroke_width(1),
            ))
            .map_err(|e| e.to_string())?;
        if let Some(c) = critical.filter(|c| *c <= x_hi * 1.1) {
            chart
                .draw_series(DashedLineSeries::new(
                    [(c, y_lo / 2.0), (c, y_hi * 2.0)],
                    2,
                    4,
                    colour.stroke_width(1),
                ))
                .map_err(|e| e.to_string())?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .label_font(("sans-serif", if groups.len() > 8 { 10 } else { 14 }))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())?;
    Ok(Some(()))
}
