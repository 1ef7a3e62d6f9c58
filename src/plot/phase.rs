//! The (weight norm, error) phase plane of linear runs (paper Fig. 1B).

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{COLOURS, Curve, PlotError, curves, draw_legend, in_both_formats, tick};
use crate::recorder::FileSummary;

/// Draws the (weight norm, error) phase plane (paper Figs. 1B, 4D): per group, the seed means
/// of a weight norm and the error recorded at the same steps. For the linear network: the
/// input-weight norm `alpha` against `epsilon`, the four-variable model's trajectory dashed,
/// and the critical norm `2/(η Lx Ly (1 + β0))` past which the error grows as a vertical
/// dotted line in the group's colour. For dataset tasks: the sum of the squared weight norms
/// (`norm_<projection>`) against the runs' error metric. `None` when the runs record neither.
pub fn draw_phase_plane(file: &FileSummary, title: &str, path: &Path) -> Result<Option<()>, PlotError> {
    let axes = match (curves(file, Some("alpha")), curves(file, Some("epsilon"))) {
        (Ok((_, alpha)), Ok((_, epsilon))) => Some((
            "input-weight norm α = |W1|²/Lx".to_string(),
            alpha,
            "error ε".to_string(),
            epsilon,
        )),
        _ => summed_norms(file).and_then(|norms| {
            let error = crate::analysis::error_metric(file.runs.first()?);
            let (_, errors) = curves(file, Some(&error)).ok()?;
            Some(("squared weight norm Σ|W|²".to_string(), norms, error, errors))
        }),
    };
    let Some((x_label, x, y_label, y)) = axes else {
        return Ok(None);
    };
    let labels = (x_label.as_str(), y_label.as_str());
    in_both_formats(
        path,
        |root| phase_plane_on(&x, &y, labels, title, root),
        |root| phase_plane_on(&x, &y, labels, title, root),
    )
}

/// Per group, the sum over projections of the recorded squared norms `norm_<projection>`.
fn summed_norms(file: &FileSummary) -> Option<Vec<Curve>> {
    let names: Vec<&str> = file
        .runs
        .first()?
        .metrics
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| n.starts_with("norm_"))
        .collect();
    let mut total: Option<Vec<Curve>> = None;
    for name in names {
        let (_, parts) = curves(file, Some(name)).ok()?;
        total = Some(match total {
            None => parts,
            Some(sum) => sum
                .into_iter()
                .zip(parts)
                .map(|(mut s, p)| {
                    for (a, b) in s.mean.iter_mut().zip(&p.mean) {
                        *a += b;
                    }
                    s
                })
                .collect(),
        });
    }
    total.map(|curves| {
        curves
            .into_iter()
            .map(|c| Curve {
                theory: None,
                critical_alpha: None,
                ..c
            })
            .collect()
    })
}

fn phase_plane_on<DB: DrawingBackend>(
    alpha: &[Curve],
    epsilon: &[Curve],
    (x_label, y_label): (&str, &str),
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
        .x_desc(x_label)
        .y_desc(y_label)
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
    draw_legend(&mut chart, SeriesLabelPosition::LowerLeft, Some(groups.len()))?;
    root.present().map_err(|e| e.to_string())?;
    Ok(Some(()))
}
