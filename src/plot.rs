//! Figures from recordings (`npsim plot`), drawn with plotters as SVG and as PNG beside it
//! (same name, `.png`; text in the bundled DejaVu Sans).
//!
//! | figure | what it shows |
//! |---|---|
//! | `learning_curves.svg` | a metric against training step, one curve per group of runs that differ only in seed (mean over seeds; a band from the smallest to the largest seed); the mean-field theory dashed where the runs carry it; a log scale when every value is positive |
//! | `minimum_training_time.svg` | the summary's minimum training time against the one numeric sweep parameter that varies between groups, one line per combination of the others; error bars: the spread over seeds; the mean-field theory's where it describes the runs (long dashes: Eq. 13; short: the four-variable model); a log scale for times twentyfold apart |
//! | `phase_plane.svg` | for runs recording `alpha` and `epsilon` (the linear network): the (weight norm, error) trajectory of each group's seed mean from a dot at step 0, the four-variable model's dashed, and the critical norm past which the error grows dotted (paper Fig. 1B) |
//! | `instability.svg` | per group, the seed-averaged steps of the smoothed error's minimum and of its return to the initial value against the learning rate (Figs. 3B, 3C, 4C), with the theory's onset τc and return for NP on the linear network under teacher noise, and η* marked; drawn when a group tried two or more rates |

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use thiserror::Error;

use crate::analysis::{GroupResult, Summary};
use crate::recorder::{FileSummary, RunSummary};

/// A figure that cannot be drawn.
#[derive(Debug, Error)]
pub enum PlotError {
    /// The metric is not recorded.
    #[error("no run records metric `{metric}`; the runs record: {available}")]
    NoMetric {
        /// The metric asked for.
        metric: String,
        /// What they have.
        available: String,
    },
    /// Drawing or writing failed.
    #[error("cannot draw `{}`: {message}", path.display())]
    Draw {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// One curve: the mean over seeds of runs sharing every sweep value but the seed.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// The shared sweep values (`single run` without a sweep).
    pub label: String,
    /// Steps.
    pub steps: Vec<f64>,
    /// Mean over the seeds recorded at each step.
    pub mean: Vec<f64>,
    /// Smallest and largest seed at each step.
    pub low: Vec<f64>,
    /// Largest.
    pub high: Vec<f64>,
    /// The theory's curve (`epsilon_4v` beside `epsilon`), from the first seed.
    pub theory: Option<(Vec<f64>, Vec<f64>)>,
    /// For NP on the linear network: the input-weight norm `α = |W1|²/Lx` beyond which the
    /// error grows, `2/(η Lx Ly (1 + β0))` (the two-variable model's `a c0 = 2`).
    pub critical_alpha: Option<f64>,
}

/// Each run's sweep assignments other than the seed, a value such as a whole rule
/// (`NodePerturbation(learning_rate: ..)`) named by its variant alone where that still tells
/// the runs' values of that path apart.
fn curve_keys(runs: &[RunSummary]) -> Vec<String> {
    let assignments: Vec<Vec<(String, String)>> = runs
        .iter()
        .map(|run| {
            crate::analysis::sweep_assignments(run)
                .into_iter()
                .filter(|(p, _)| p != "seed")
                .collect()
        })
        .collect();
    let variant = |v: &str| v.split('(').next().unwrap_or(v).to_string();
    let shortened = |path: &str| {
        let values = |f: &dyn Fn(&str) -> String| {
            let mut seen: Vec<String> = assignments
                .iter()
                .flat_map(|a| a.iter().filter(|(p, _)| p == path).map(|(_, v)| f(v)))
                .collect();
            seen.sort();
            seen.dedup();
            seen.len()
        };
        values(&variant) == values(&|v| v.to_string())
    };
    assignments
        .iter()
        .map(|parts| {
            if parts.is_empty() {
                return "single run".into();
            }
            parts
                .iter()
                .map(|(p, v)| {
                    let v = if shortened(p) { variant(v) } else { v.clone() };
                    format!("{}={v}", p.rsplit('.').next().unwrap_or(p))
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect()
}

/// The curves of `metric` (default: the first run's error metric).
pub fn curves(file: &FileSummary, metric: Option<&str>) -> Result<(String, Vec<Curve>), PlotError> {
    let metric = match metric {
        Some(m) => m.to_string(),
        None => file
            .runs
            .first()
            .map(crate::analysis::error_metric)
            .unwrap_or_default(),
    };
    let column = |run: &RunSummary, name: &str| {
        run.metrics
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    if !file.runs.iter().any(|r| column(r, &metric).is_some()) {
        let mut available: Vec<String> = file
            .runs
            .iter()
            .flat_map(|r| r.metrics.iter().map(|(n, _)| n.clone()))
            .filter(|n| n != "step")
            .collect();
        available.sort();
        available.dedup();
        return Err(PlotError::NoMetric {
            metric,
            available: available.join(", "),
        });
    }
    let mut groups: Vec<(String, Vec<&RunSummary>)> = Vec::new();
    for (run, key) in file.runs.iter().zip(curve_keys(&file.runs)) {
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, runs)) => runs.push(run),
            None => groups.push((key, vec![run])),
        }
    }
    let mut out = Vec::new();
    for (label, runs) in groups {
        let series: Vec<(Vec<f64>, Vec<f64>)> = runs
            .iter()
            .filter_map(|r| Some((column(r, "step")?, column(r, &metric)?)))
            .collect();
        let Some(longest) = series.iter().map(|(s, _)| s).max_by_key(|s| s.len()) else {
            continue;
        };
        let steps = longest.clone();
        // Seeds that stopped early (diverged) count only where they have values.
        let at = |k: usize| -> Vec<f64> {
            series
                .iter()
                .filter_map(|(_, v)| v.get(k).copied())
                .filter(|v| v.is_finite())
                .collect()
        };
        let mut curve = Curve {
            label,
            steps: Vec::new(),
            mean: Vec::new(),
            low: Vec::new(),
            high: Vec::new(),
            theory: None,
            critical_alpha: None,
        };
        for (k, &step) in steps.iter().enumerate() {
            let values = at(k);
            if values.is_empty() {
                continue;
            }
            curve.steps.push(step);
            curve.mean.push(values.iter().sum::<f64>() / values.len() as f64);
            curve
                .low
                .push(values.iter().copied().fold(f64::INFINITY, f64::min));
            curve
                .high
                .push(values.iter().copied().fold(f64::NEG_INFINITY, f64::max));
        }
        let theory = |name: &str| {
            runs[0]
                .theory
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        if metric == "epsilon" {
            curve.theory = theory("step").zip(theory("epsilon_4v"));
        }
        if metric == "alpha" {
            curve.theory = theory("step").zip(theory("alpha_4v"));
        }
        let rate = match runs[0].attributes.get("learning_rate") {
            Some(crate::recorder::Attr::Float(rate)) => Some(*rate),
            _ => None,
        };
        curve.critical_alpha = crate::analysis::theory::linear_setting(runs[0])
            .filter(|s| !s.sgd)
            .zip(rate)
            .map(|(s, rate)| {
                let beta0 = s.dims.initial_state(s.init_scale).beta;
                2.0 / (rate * (s.dims.lx * s.dims.ly) as f64 * (1.0 + beta0))
            });
        out.push(curve);
    }
    Ok((metric, out))
}

const COLOURS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// A tick label with at most three significant digits: `0.25`, `1e-8`, `2.5e4`.
fn tick(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    if !(1e-3..1e4).contains(&v.abs()) {
        let text = format!("{v:.1e}");
        return text.replace(".0e", "e");
    }
    let digits = (2 - v.abs().log10().floor() as i32).max(0) as usize;
    let text = format!("{v:.digits$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// Every figure's size in pixels (and SVG units).
const SIZE: (u32, u32) = (800, 560);

/// Registers the bundled font (DejaVu Sans, `assets/fonts/`) under `sans-serif` once: the PNG
/// renderer has no access to system fonts, and both formats must lay text out alike.
fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let font: &'static [u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
        // The font is compiled in and known to parse (tested), so this cannot fail.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, font);
    });
}

/// Draws a figure as SVG at `path` and as PNG beside it (`.png`), with the same drawing code
/// on both backends (passed twice because each is a different type). `None` when the figure
/// has nothing to show; then neither file is written.
fn in_both_formats<'a>(
    path: &'a Path,
    svg: impl FnOnce(Box<dyn FnOnce() -> DrawingArea<SVGBackend<'a>, Shift> + 'a>) -> Result<Option<()>, String>,
    png: impl for<'p> FnOnce(
        Box<dyn FnOnce() -> DrawingArea<BitMapBackend<'p>, Shift> + 'p>,
    ) -> Result<Option<()>, String>,
) -> Result<Option<()>, PlotError> {
    register_font();
    let fail = |path: &Path, message: String| PlotError::Draw {
        path: path.to_path_buf(),
        message,
    };
    if svg(Box::new(move || SVGBackend::new(path, SIZE).into_drawing_area()))
        .map_err(|m| fail(path, m))?
        .is_none()
    {
        return Ok(None);
    }
    let png_path = path.with_extension("png");
    png(Box::new(|| {
        BitMapBackend::new(&png_path, SIZE).into_drawing_area()
    }))
    .map_err(|m| fail(&png_path, m))?;
    Ok(Some(()))
}

/// Draws the learning curves of `metric` into `path` (SVG) and beside it as PNG.
pub fn draw_learning_curves(
    metric: &str,
    curves: &[Curve],
    title: &str,
    path: &Path,
) -> Result<(), PlotError> {
    in_both_formats(
        path,
        |root| learning_curves_on(metric, curves, title, root),
        |root| learning_curves_on(metric, curves, title, root),
    )
    .map(|_| ())
}

fn learning_curves_on<DB: DrawingBackend>(
    metric: &str,
    curves: &[Curve],
    title: &str,
    root: impl FnOnce() -> DrawingArea<DB, Shift>,
) -> Result<Option<()>, String> {
    let values = curves
        .iter()
        .flat_map(|c| c.low.iter().chain(&c.high).chain(&c.mean));
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
        (a.min(v), b.max(v))
    });
    let last = curves
        .iter()
        .filter_map(|c| c.steps.last())
        .copied()
        .fold(1.0, f64::max);
    let root = root();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(72);
    macro_rules! draw {
        ($chart:expr) => {{
            let mut chart = $chart.map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .x_desc("step (updates)")
                .y_desc(metric)
                .x_label_formatter(&|v| tick(*v))
                .y_label_formatter(&|v| tick(*v))
                .draw()
                .map_err(|e| e.to_string())?;
            for (k, curve) in curves.iter().enumerate() {
                let colour = COLOURS[k % COLOURS.len()];
                let band: Vec<(f64, f64)> = curve
                    .steps
                    .iter()
                    .zip(&curve.high)
                    .map(|(&s, &v)| (s, v))
                    .chain(curve.steps.iter().zip(&curve.low).rev().map(|(&s, &v)| (s, v)))
                    .collect();
                chart
                    .draw_series(std::iter::once(Polygon::new(band, colour.mix(0.15))))
                    .map_err(|e| e.to_string())?;
                chart
                    .draw_series(LineSeries::new(
                        curve.steps.iter().copied().zip(curve.mean.iter().copied()),
                        colour.stroke_width(2),
                    ))
                    .map_err(|e| e.to_string())?
                    .label(curve.label.clone())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                    });
                if let Some((steps, values)) = &curve.theory {
                    let points: Vec<(f64, f64)> = steps
                        .iter()
                        .copied()
                        .zip(values.iter().copied())
                        .filter(|&(s, v)| s <= last && v.is_finite() && v > 0.0)
                        .collect();
                    chart
                        .draw_series(DashedLineSeries::new(points, 6, 4, colour.stroke_width(1)))
                        .map_err(|e| e.to_string())?;
                }
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerLeft)
                // Many curves: a smaller legend, so that it hides less of them.
                .label_font(("sans-serif", if curves.len() > 8 { 10 } else { 14 }))
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| e.to_string())?;
        }};
    }
    if lo > 0.0 && hi.is_finite() {
        draw!(builder.build_cartesian_2d(0.0..last, (lo * 0.8..hi * 1.25).log_scale()));
    } else {
        let pad = 0.05 * (hi - lo).abs().max(1e-12);
        draw!(builder.build_cartesian_2d(0.0..last, lo - pad..hi + pad));
    }
    root.present().map_err(|e| e.to_string())?;
    Ok(Some(()))
}

/// The numeric sweep value that varies between groups, and each group's other values.
fn scaling_axis(groups: &[GroupResult]) -> Option<(String, Vec<(f64, String)>)> {
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
            .map(|g| {
                g.iter()
                    .find(|(p, _)| p == *path)
                    .and_then(|(_, v)| v.parse().ok())
            })
            .collect();
        values.iter().all(Option::is_some) && values.windows(2).any(|w| w[0] != w[1])
    })?;
    // A swept value such as a whole rule, `NodePerturbation(learning_rate: ..)`, is named by
    // its variant alone when that still tells the series apart.
    let name = |g: &[(String, String)], short: bool| -> String {
        let rest: Vec<String> = g
            .iter()
            .filter(|(p, v)| p != axis && v.parse::<f64>().is_err())
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
                .and_then(|(_, v)| v.parse().ok())
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
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| e.to_string())?;
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
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())?;
    Ok(Some(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_have_three_significant_digits_at_most() {
        let cases = [
            (0.0, "0"),
            (1.0, "1"),
            (0.25, "0.25"),
            (12.5, "12.5"),
            (2000.0, "2000"),
            (0.0003000000000000003, "3e-4"),
            (1e-8, "1e-8"),
            (25000.0, "2.5e4"),
            (0.999999999999, "1"),
        ];
        for (value, text) in cases {
            assert_eq!(tick(value), text, "{value}");
        }
    }

    /// The bundled font parses and draws: text rendered into a bitmap leaves dark pixels.
    #[test]
    fn the_bundled_font_renders_text_in_bitmaps() {
        register_font();
        let (w, h) = (120u32, 40u32);
        let mut pixels = vec![255u8; (w * h * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
            root.draw(&Text::new(
                "npsim",
                (5, 5),
                ("sans-serif", 24).into_font().color(&BLACK),
            ))
            .unwrap();
            root.present().unwrap();
        }
        let dark = pixels.chunks(3).filter(|p| p.iter().all(|&c| c < 100)).count();
        assert!(dark > 50, "{dark} dark pixels");
    }
}
