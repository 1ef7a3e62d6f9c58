//! The alignment of a rule's updates with gradient descent against a swept size (paper
//! Fig. 4A): the cosine between each update and the back-propagated gradient on the same
//! batch, which runs record at every record step as `cosine_<projection>`.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::scaling::scaling_axis;
use super::{COLOURS, PlotError, draw_legend, in_both_formats, tick};
use crate::analysis::Summary;
use crate::recorder::FileSummary;

/// Per series (the group's other sweep values and the projection): (size, mean cosine) points.
type Series = Vec<(String, Vec<(f64, f64)>)>;

/// The mean over a run's records of each finite `cosine_<projection>`, averaged over the
/// group's runs at its best learning rate (all its runs when none reached the target).
fn cosine_series(file: &FileSummary, summary: &Summary) -> Option<(String, Series)> {
    let (axis, points) = scaling_axis(&summary.groups)?;
    let names: Vec<String> = file
        .runs
        .first()?
        .metrics
        .iter()
        .map(|(n, _)| n.clone())
        .filter(|n| n.starts_with("cosine_"))
        .collect();
    let mut series: Series = Vec::new();
    for ((x, label), group) in points.iter().zip(&summary.groups) {
        let members: Vec<usize> = (0..summary.runs.len())
            .filter(|&i| summary.runs[i].condition == group.condition)
            .filter(|&i| {
                group
                    .best_learning_rate
                    .is_none_or(|best| summary.runs[i].learning_rate == Some(best))
            })
            .collect();
        for name in &names {
            let means: Vec<f64> = members
                .iter()
                .filter_map(|&i| {
                    let (_, values) = file.runs[i].metrics.iter().find(|(n, _)| n == name)?;
                    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
                    (!finite.is_empty()).then(|| finite.iter().sum::<f64>() / finite.len() as f64)
                })
                .collect();
            if means.is_empty() {
                continue;
            }
            let mean = means.iter().sum::<f64>() / means.len() as f64;
            let projection = name.trim_start_matches("cosine_");
            // Without other sweep values the series is named by its projection alone.
            let key = if label == "minimum" {
                projection.to_string()
            } else {
                format!("{label}: {projection}")
            };
            match series.iter_mut().find(|(k, _)| *k == key) {
                Some((_, list)) => list.push((*x, mean)),
                None => series.push((key, vec![(*x, mean)])),
            }
        }
    }
    (!series.is_empty()).then_some((axis, series))
}

/// Draws the mean cosine between each update and gradient descent's against the swept size,
/// one line per projection (and other sweep values). `None` when no numeric sweep value
/// varies between groups or the runs record no cosines.
pub fn draw_cosines(file: &FileSummary, summary: &Summary, path: &Path) -> Result<Option<()>, PlotError> {
    let Some((axis, series)) = cosine_series(file, summary) else {
        return Ok(None);
    };
    in_both_formats(
        path,
        |root| cosines_on(&axis, &series, root),
        |root| cosines_on(&axis, &series, root),
    )
}

fn cosines_on<DB: DrawingBackend>(
    axis: &str,
    series: &Series,
    root: impl FnOnce() -> DrawingArea<DB, Shift>,
) -> Result<Option<()>, String> {
    let all = series.iter().flat_map(|(_, l)| l.iter());
    let (x_lo, x_hi, y_lo, y_hi) = all.fold(
        (f64::INFINITY, 0.0f64, f64::INFINITY, f64::NEG_INFINITY),
        |(a, b, c, d), &(x, y)| (a.min(x), b.max(x), c.min(y), d.max(y)),
    );
    if !x_lo.is_finite() || x_lo <= 0.0 {
        return Ok(None);
    }
    let root = root();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption("alignment with gradient descent", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(
            (x_lo * 0.8..x_hi * 1.25).log_scale(),
            y_lo.min(0.0)..y_hi.max(0.0) * 1.1 + 0.01,
        )
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc(axis)
        .y_desc("cosine with the gradient-descent update (run mean)")
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .draw()
        .map_err(|e| e.to_string())?;
    for (k, (name, points)) in series.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(points.iter().copied(), colour.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 4, colour.filled())))
            .map_err(|e| e.to_string())?;
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperRight, None)?;
    root.present().map_err(|e| e.to_string())?;
    Ok(Some(()))
}
