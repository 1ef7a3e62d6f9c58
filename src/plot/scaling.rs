//! Minimum training time against a swept size (paper Figs. 2A, 2B) and time to instability
//! against the learning rate (Figs. 3B, 3C, 4C).

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{COLOURS, PlotError, draw_legend, in_both_formats};
use crate::analysis::{GroupResult, Summary};

/// A swept value read as a size: a number, or a list of one (`circuit.hidden=[1000]`).
fn numeric(value: &str) -> Option<f64> {
    value.parse().ok().or_else(|| {
        let inner = value.strip_prefix('[')?.strip_suffix(']')?.trim();
        inner.parse().ok()
    })
}

/// The numeric sweep value that varies between groups, and each group's other values.
pub(super) fn scaling_axis(groups: &[GroupResult]) -> Option<(String, Vec<(f64, String)>)> {
    let parsed: Vec<Vec<(String, String)>> = groups
        .iter()
        .map(|g| {
            g.label
                .split(", ")
                .filter_map(|a| a.split_once('=').map(|(p, v)| (p.to_string(), v.to_string())))
                .collect()
        })
        .collect();
    let first = parsed.first()?;
    let axis = first.iter().map(|(p, _)| p).find(|path| {
        let values: Vec<Option<f64>> = parsed
            .iter()
            .map(|g| g.iter().find(|(p, _)| p == *path).and_then(|(_, v)| numeric(v)))
            .collect();
        values.iter().all(Option::is_some) && values.windows(2).any(|w| w[0] != w[1])
    })?;
    // A swept value such as a whole rule, `NodePerturbation(learning_rate: ..)`, is named by
    // its variant alone when that still tells the series apart.
    let name = |g: &[(String, String)], short: bool| -> String {
        let rest: Vec<String> = g
            .iter()
            .filter(|(p, v)| p != axis && numeric(v).is_none())
            .map(|(p, v)| {
                let v = if short {
                    v.split('(').next().unwrap_or(v)
                } else {
                    v
                };
                format!("{}={v}", p.rsplit('.').next().unwrap_or(p))
            })
            .collect();
        if rest.is_empty() {
            "minimum".into()
        } else {
            rest.join(", ")
        }
    };
    let distinct = |short: bool| {
        let mut names: Vec<String> = parsed.iter().map(|g| name(g, short)).collect();
        names.sort();
        names.dedup();
        names.len()
    };
    let short = distinct(true) == distinct(false);
    let points = parsed
        .iter()
        .map(|g| {
            let x = g
                .iter()
                .find(|(p, _)| p == axis)
                .and_then(|(_, v)| numeric(v))
                .unwrap_or(f64::NAN);
            // The series: the values that do not vary with the axis in a linked sweep (numbers
            // that change with it are left out).
            (x, name(g, short))
        })
        .collect();
    Some((axis.clone(), points))
}

/// Draws minimum training time against the swept size; `None` when no numeric sweep value
/// varies between groups.
pub fn draw_minimum_training_times(summary: &Summary, path: &Path) -> Result<Option<()>, PlotError> {
    in_both_formats(
        path,
        |root| minimum_training_times_on(summary, root),
        |root| minimum_training_times_on(summary, root),
    )
}

fn minimum_training_times_on<DB: DrawingBackend>(
    summary: &Summary,
    root: impl FnOnce() -> DrawingArea<DB, Shift>,
) -> Result<Option<()>, String> {
    let Some((axis, points)) = scaling_axis(&summary.groups) else {
        return Ok(None);
    };
    // Per series: its name, (size, minimum time, spread) points and the theories' (size, time):
    // Eq. 13, then the four-variable model.
    type Point = (f64, f64, f64);
    type Series = (String, Vec<Point>, [Vec<(f64, f64)>; 2]);
    let mut series: Vec<Series> = Vec::new();
    for ((x, name), group) in points.iter().zip(&summary.groups) {
        let k = match series.iter().position(|(n, _, _)| n == name) {
            Some(k) => k,
            None => {
                series.push((name.clone(), Vec::new(), [Vec::new(), Vec::new()]));
                series.len() - 1
            }
        };
        if let Some(time) = group.minimum_training_time {
            series[k].1.push((*x, time, group.spread.unwrap_or(0.0)));
        }
        if let Some(theory) = group.theory {
            for (line, time) in series[k].2.iter_mut().zip([theory.eq13, theory.four_variable]) {
                line.extend(time.map(|t| (*x, t.iterations)));
            }
        }
    }
    for line in series.iter_mut().flat_map(|(_, _, lines)| lines.iter_mut()) {
        line.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    let spans = series.iter().flat_map(|(_, l, lines)| {
        l.iter()
            .map(|&(x, t, s)| (x, t - s, t + s))
            .chain(lines.iter().flatten().map(|&(x, t)| (x, t, t)))
    });
    let (x_lo, x_hi, y_lo, y_hi) = spans.fold(
        (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, 0.0f64),
        |(a, b, c, d), (x, lo, hi)| (a.min(x), b.max(x), c.min(lo), d.max(hi)),
    );
    if !x_lo.is_finite() {
        return Ok(None);
    }
    let root = root();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(
            format!("minimum training time ({})", summary.analysis.target),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(72);
    let x_range = (x_lo * 0.8..x_hi * 1.25).log_scale();
    macro_rules! draw {
        ($chart:expr) => {{
            let mut chart = $chart.map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .x_desc(axis.as_str())
                .x_label_formatter(&|v| format!("{v:.0}"))
                .y_label_formatter(&|v| format!("{v:.0}"))
                .y_desc("steps to target (best learning rate)")
                .draw()
                .map_err(|e| e.to_string())?;
            for (k, (name, list, lines)) in series.iter().enumerate() {
                let colour = COLOURS[k % COLOURS.len()];
                chart
                    .draw_series(LineSeries::new(
                        list.iter().map(|&(x, t, _)| (x, t)),
                        colour.stroke_width(2),
                    ))
                    .map_err(|e| e.to_string())?
                    .label(name.clone())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                    });
                chart
                    .draw_series(list.iter().map(|&(x, t, s)| {
                        ErrorBar::new_vertical(x, (t - s).max(y_lo * 0.5), t, t + s, colour.filled(), 6)
                    }))
                    .map_err(|e| e.to_string())?;
                // Long dashes: Eq. 13; short: the four-variable model.
                for (line, (model, dash)) in lines.iter().zip([("Eq. 13", 8), ("four-variable model", 2)]) {
                    if line.is_empty() {
                        continue;
                    }
                    chart
                        .draw_series(DashedLineSeries::new(
                            line.iter().copied(),
                            dash,
                            4,
                            colour.stroke_width(1),
                        ))
                        .map_err(|e| e.to_string())?
                        .label(format!("{name}: theory, {model}"))
                        .legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + dash as i32, y)], colour.stroke_width(1))
                        });
                }
            }
            draw_legend(&mut chart, SeriesLabelPosition::UpperLeft, None)?;
        }};
    }
    // Rules far apart in speed (NP and SGD: a hundredfold) share a logarithmic axis.
    if y_lo > 0.0 && y_hi > 20.0 * y_lo {
        draw!(builder.build_cartesian_2d(x_range, (y_lo * 0.5..y_hi * 2.0).log_scale()));
    } else {
        draw!(builder.build_cartesian_2d(x_range, 0.0..y_hi.max(1.0) * 1.1));
    }
    root.present().map_err(|e| e.to_string())?;
    Ok(Some(()))
}

/// One group's points in the instability figure: per learning rate, the seed-averaged
/// minimum step and (when every seed returned) return step.
struct InstabilitySeries {
    name: String,
    minimum: Vec<(f64, f64)>,
    back: Vec<(f64, f64)>,
    theory: Vec<crate::analysis::theory::InstabilityPoint>,
    critical: Option<f64>,
}

fn instability_series(summary: &Summary) -> Vec<InstabilitySeries> {
    let names: Vec<String> = summary
        .groups
        .iter()
        .map(|g| {
            g.label
                .split(", ")
                .map(|a| match a.split_once('=') {
                    Some((p, v)) => format!(
                        "{}={}",
                        p.rsplit('.').next().unwrap_or(p),
                        v.split('(').next().unwrap_or(v)
                    ),
                    None => a.to_string(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect();
    summary
        .groups
        .iter()
        .zip(names)
        .map(|(group, name)| {
            let runs: Vec<_> = summary
                .runs
                .iter()
                .filter(|r| r.condition == group.condition)
                .collect();
            let mean_at = |rate: f64, of: &dyn Fn(&crate::analysis::RunResult) -> Option<f64>| {
                let at: Vec<f64> = runs
                    .iter()
                    .filter(|r| r.learning_rate.is_some_and(|l| l.to_bits() == rate.to_bits()))
                    .map(|r| of(r))
                    .collect::<Option<Vec<f64>>>()?;
                (!at.is_empty()).then(|| at.iter().sum::<f64>() / at.len() as f64)
            };
            let rates: Vec<f64> = group
                .rates
                .iter()
                .map(|p| p.learning_rate)
                .filter(|r| r.is_finite())
                .collect();
            let points = |of: &dyn Fn(&crate::analysis::RunResult) -> Option<f64>| -> Vec<(f64, f64)> {
                rates
                    .iter()
                    .filter_map(|&rate| mean_at(rate, of).map(|t| (rate, t.max(1.0))))
                    .collect()
            };
            let linear = runs.first().and_then(|r| r.linear);
            let theory = match linear {
                Some(setting) if !setting.sgd && setting.teacher_noise_var > 0.0 && !rates.is_empty() => {
                    let (lo, hi) = (rates[0], rates[rates.len() - 1]);
                    let longest = runs.iter().filter_map(|r| r.last_step).fold(0.0, f64::max);
                    crate::analysis::theory::instability_lines(
                        &setting,
                        (lo / 1.5, hi * 1.5),
                        40,
                        (100.0 * longest).clamp(1e5, 1e8) as u64,
                    )
                }
                _ => Vec::new(),
            };
            InstabilitySeries {
                name,
                minimum: points(&|r| r.minimum_step),
                back: points(&|r| r.return_step),
                theory,
                critical: linear
                    .filter(|s| !s.sgd)
                    .map(|s| s.dims.critical_learning_rate(s.init_scale)),
            }
        })
        .collect()
}

/// Draws the time to instability against the learning rate (paper Figs. 3B, 3C, 4C): per
/// group, the seed-averaged step of the smoothed error's minimum (filled) and of its return to
/// the initial value (open), and for NP on the linear network under teacher noise the theory's
/// onset `τc` (long dashes: two-variable model, Eq. 84a; short: four-variable) and return (dotted),
/// with η* marked. A minimum at a run's last record means the error was still falling when
/// it ended. `None` when no group tried two learning rates.
pub fn draw_instability(summary: &Summary, path: &Path) -> Result<Option<()>, PlotError> {
    if !summary.groups.iter().any(|g| g.rates.len() > 1) {
        return Ok(None);
    }
    let series = instability_series(summary);
    in_both_formats(
        path,
        |root| instability_on(&series, root),
        |root| instability_on(&series, root),
    )
}

fn instability_on<DB: DrawingBackend>(
    series: &[InstabilitySeries],
    root: impl FnOnce() -> DrawingArea<DB, Shift>,
) -> Result<Option<()>, String> {
    let xs = series
        .iter()
        .flat_map(|s| s.minimum.iter().chain(&s.back).map(|p| p.0));
    let ys = series.iter().flat_map(|s| {
        s.minimum.iter().chain(&s.back).map(|p| p.1).chain(
            s.theory
                .iter()
                .flat_map(|t| [t.onset, t.onset_four_variable, t.back_at_initial])
                .flatten(),
        )
    });
    let (x_lo, x_hi) = xs.fold((f64::INFINITY, 0.0f64), |(a, b), x| (a.min(x), b.max(x)));
    let y_hi = ys.fold(10.0f64, f64::max);
    if !x_lo.is_finite() {
        return Ok(None);
    }
    let root = root();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption("time to instability", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(
            (x_lo / 1.6..x_hi * 1.6).log_scale(),
            (0.8..y_hi * 2.0).log_scale(),
        )
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("learning rate η")
        .x_label_formatter(&|v| format!("{v:.1e}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .y_desc("steps (seed mean)")
        .draw()
        .map_err(|e| e.to_string())?;
    let grey = RGBColor(120, 120, 120);
    for (k, s) in series.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        chart
            .draw_series(s.minimum.iter().map(|&p| Circle::new(p, 5, colour.filled())))
            .map_err(|e| e.to_string())?
            .label(format!("{}: minimum of the error", s.name))
            .legend(move |(x, y)| Circle::new((x + 10, y), 5, colour.filled()));
        chart
            .draw_series(s.back.iter().map(|&p| Circle::new(p, 5, colour.stroke_width(2))))
            .map_err(|e| e.to_string())?
            .label(format!("{}: back at the initial error", s.name))
            .legend(move |(x, y)| Circle::new((x + 10, y), 5, colour.stroke_width(2)));
        let line = |of: fn(&crate::analysis::theory::InstabilityPoint) -> Option<f64>| -> Vec<(f64, f64)> {
            s.theory
                .iter()
                .filter_map(|t| of(t).map(|v| (t.learning_rate, v.max(1.0))))
                .collect()
        };
        let lines = [
            (line(|t| t.onset), "τc, two-variable model", 8u32, colour),
            (
                line(|t| t.onset_four_variable),
                "τc, four-variable model",
                2,
                colour,
            ),
            (
                line(|t| t.back_at_initial),
                "back at ε0, two-variable model",
                4,
                grey,
            ),
        ];
        for (points, what, dash, style) in lines {
            if points.is_empty() {
                continue;
            }
            chart
                .draw_series(DashedLineSeries::new(points, dash, 4, style.stroke_width(1)))
                .map_err(|e| e.to_string())?
                .label(format!("theory: {what}"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style.stroke_width(1)));
        }
        if let Some(critical) = s.critical {
            chart
                .draw_series(DashedLineSeries::new(
                    [(critical, 0.8), (critical, y_hi * 2.0)],
                    3,
                    3,
                    BLACK.stroke_width(1),
                ))
                .map_err(|e| e.to_string())?;
        }
    }
    draw_legend(&mut chart, SeriesLabelPosition::LowerLeft, None)?;
    root.present().map_err(|e| e.to_string())?;
    Ok(Some(()))
}
