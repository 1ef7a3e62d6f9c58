//! Figures from recordings (`npsim plot`), drawn with plotters as SVG and as PNG beside it
//! (same name, `.png`; text in the bundled DejaVu Sans).
//!
//! | figure | what it shows |
//! |---|---|
//! | `learning_curves.svg` | a metric against training step, one curve per group of runs that differ only in seed (mean over seeds; a band from the smallest to the largest seed); the mean-field theory dashed where the runs carry it; a log scale when every value is positive |
//! | `minimum_training_time.svg` | the summary's minimum training time against the one numeric sweep parameter that varies between groups, one line per combination of the others; error bars: the spread over seeds; the mean-field theory's where it describes the runs (long dashes: Eq. 13; short: the four-variable model); a log scale for times twentyfold apart |
//! | `phase_plane.svg` | for runs recording `alpha` and `epsilon` (the linear network): the (weight norm, error) trajectory of each group's seed mean from a dot at step 0, the four-variable model's dashed, and the critical norm past which the error grows dotted (paper Fig. 1B) |
//! | `cosine.svg` | for runs recording `cosine_<projection>` (the cosine between each update and the gradient-descent update on the same batch): its mean over the run against the one numeric sweep value that varies between groups, at each group's best rate (paper Fig. 4A) |
//! | `instability.svg` | per group, the seed-averaged steps of the smoothed error's minimum and of its return to the initial value against the learning rate (Figs. 3B, 3C, 4C), with the theory's onset τc and return for NP on the linear network under teacher noise, and η* marked; drawn when a group tried two or more rates |

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use thiserror::Error;

use crate::recorder::{FileSummary, RunSummary};

mod cosine;
mod phase;
mod scaling;

pub use cosine::draw_cosines;
pub use phase::draw_phase_plane;
pub use scaling::{draw_instability, draw_minimum_training_times};

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
    // `Sgd(learning_rate: ..)` → `Sgd`; a list keeps its brackets: `[WeightDecay(..)]` →
    // `[WeightDecay]`.
    let variant = |v: &str| {
        let head = v.split('(').next().unwrap_or(v);
        if head.len() < v.len() && head.starts_with('[') {
            format!("{head}]")
        } else {
            head.to_string()
        }
    };
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

/// Draws a chart's legend in the house style; with `series` given, a smaller font when there
/// are more than eight entries, so that the legend hides less of them.
fn draw_legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
    series: Option<usize>,
) -> Result<(), String> {
    let mut legend = chart.configure_series_labels();
    legend
        .position(position)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK);
    if let Some(n) = series {
        legend.label_font(("sans-serif", if n > 8 { 10 } else { 14 }));
    }
    legend.draw().map_err(|e| e.to_string())
}

/// Every figure's size in pixels (and SVG units).
const SIZE: (u32, u32) = (800, 560);

/// Registers the bundled font (DejaVu Sans, `assets/fonts/`) under `sans-serif` once: the PNG
/// renderer has no access to system fonts, and both formats must lay text out alike.
fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let font: &'static [u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
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
            draw_legend(&mut chart, SeriesLabelPosition::LowerLeft, Some(curves.len()))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curve_labels_shorten_values_to_their_variants_only_where_those_tell_them_apart() {
        let run = |assignments: &[(&str, &str)]| RunSummary {
            group: String::new(),
            attributes: assignments
                .iter()
                .map(|(p, v)| (format!("sweep:{p}"), crate::recorder::Attr::Text(v.to_string())))
                .collect(),
            metrics: vec![],
            theory: vec![],
            weights: vec![],
        };
        let runs = [
            run(&[
                ("post_update", "[]"),
                ("rule", "Sgd(learning_rate: Absolute(1e-2))"),
            ]),
            run(&[
                ("post_update", "[WeightDecay(rate: 3e-3)]"),
                ("rule", "NodePerturbation(learning_rate: Absolute(1e-4))"),
            ]),
            run(&[("rule.learning_rate", "Absolute(1e-4)")]),
            run(&[("rule.learning_rate", "Absolute(3e-5)")]),
        ];
        assert_eq!(
            curve_keys(&runs),
            [
                "post_update=[], rule=Sgd",
                "post_update=[WeightDecay], rule=NodePerturbation",
                "learning_rate=Absolute(1e-4)",
                "learning_rate=Absolute(3e-5)",
            ]
        );
    }

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
