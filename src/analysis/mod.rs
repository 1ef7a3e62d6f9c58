//! What a recording shows: time to target, minimum training time over learning rates, and the
//! onset of instability (Section 4 and Figs. 2–4 of the paper).
//!
//! | quantity | definition |
//! |---|---|
//! | time to target | the first recorded step at which the metric has crossed the target (falling below it when the target is under the initial value, rising above it otherwise); a resolution of `record_every` steps |
//! | minimum training time | for each group of runs that differ only in learning rate and seed: the learning rate whose seed-averaged time to target is smallest, that time and its sample standard deviation over seeds; a learning rate counts only when every seed reached the target |
//! | minimum step | the step at which the smoothed metric (a centred moving average over `smoothing` records) is smallest |
//! | return step | the first step after the minimum at which the smoothed metric is back at the initial value: the run became unstable (Figs. 3B, 4C) |
//! | theory minimum step | NP on the linear network: the recorded step before the mean-field error (`epsilon_2v`) first rises, the theory's `τc` (Fig. 3B); shown in brackets after the minimum step |
//! | theory minimum training time | groups of NP or SGD runs on the linear network, analysing `epsilon`: paper Eq. 13 — SGD's `Lx log(ε0/ε_target)` at its optimal rate, NP's two-variable model (a wide hidden layer) minimised over 400 rates from 0.01 η* to 4 η*; and for NP the four-variable model (finite widths) minimised the same way (see [`theory`]) |
//!
//! Runs that never reach the target, or diverge before it, are reported as such, never dropped.

use std::fmt;

use npsim_core::Attr;
use serde::{Deserialize, Serialize};

use crate::recorder::{FileSummary, RunSummary, SummaryTable};

pub mod theory;

/// Where the target lies.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Threshold {
    /// A value of the metric.
    Absolute(f64),
    /// A fraction of the metric's initial (first recorded) value.
    RelativeToInitial(f64),
}

/// A metric and the value it should cross: `epsilon=1%` (1 % of its initial value, the
/// paper's `ε0/100`), `test_accuracy=0.97`; `error_metric=..` is each run's error metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    /// The metric's name; `None`: each run's error metric.
    pub metric: Option<String>,
    /// Its threshold.
    pub threshold: Threshold,
}

impl Default for Target {
    /// Each run's error metric at 1 % of its initial value.
    fn default() -> Self {
        Self {
            metric: None,
            threshold: Threshold::RelativeToInitial(0.01),
        }
    }
}

impl Target {
    /// Reads `metric=value` or `metric=percent%`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let Some((metric, value)) = text.split_once('=') else {
            return Err(format!(
                "target `{text}` is not `metric=value`: write e.g. `epsilon=1%` (1 % of the initial value) or `test_accuracy=0.97`"
            ));
        };
        let (metric, value) = (metric.trim(), value.trim());
        if metric.is_empty() {
            return Err(format!("target `{text}` names no metric before `=`"));
        }
        let number = |v: &str| {
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| format!("target `{text}`: `{v}` is not a finite number"))
        };
        let threshold = match value.strip_suffix('%') {
            Some(percent) => {
                let p = number(percent.trim())?;
                if p <= 0.0 {
                    return Err(format!(
                        "target `{text}`: a percentage of the initial value must be > 0"
                    ));
                }
                Threshold::RelativeToInitial(p / 100.0)
            }
            None => Threshold::Absolute(number(value)?),
        };
        Ok(Self {
            metric: (metric != "error_metric").then(|| metric.to_string()),
            threshold,
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let metric = self.metric.as_deref().unwrap_or("error_metric");
        match self.threshold {
            Threshold::Absolute(v) => write!(f, "{metric}={v}"),
            Threshold::RelativeToInitial(r) => write!(f, "{metric}={}%", r * 100.0),
        }
    }
}

fn default_smoothing() -> usize {
    5
}

/// `analysis: (target:, smoothing:)` in a scenario: what `npsim run` summarises at the end
/// (and `npsim analyze` by default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisConfig {
    /// `metric=value` or `metric=percent%` (default: each run's error metric at 1 %).
    #[serde(default)]
    pub target: Option<String>,
    /// Records in the centred moving average used to find the minimum (default 5).
    #[serde(default = "default_smoothing")]
    pub smoothing: usize,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        Self {
            target: None,
            smoothing: default_smoothing(),
        }
    }
}

impl AnalysisConfig {
    /// The checked settings; errors name the field (relative to `analysis`).
    pub fn build(&self) -> Result<Analysis, npsim_core::Invalid> {
        let target = match &self.target {
            Some(text) => Target::parse(text).map_err(|m| npsim_core::Invalid::new("target", m))?,
            None => Target::default(),
        };
        if self.smoothing == 0 {
            return Err(npsim_core::Invalid::new(
                "smoothing",
                "must be at least 1 record (1: no smoothing)".to_string(),
            ));
        }
        Ok(Analysis {
            target,
            smoothing: self.smoothing,
        })
    }
}

/// Checked analysis settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analysis {
    /// What counts as reaching the goal.
    pub target: Target,
    /// Records in the moving average.
    pub smoothing: usize,
}

impl Default for Analysis {
    fn default() -> Self {
        AnalysisConfig::default().build().expect("the defaults are valid")
    }
}

/// One run's results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunResult {
    /// `run_000`, ...
    pub run: String,
    /// Its sweep assignments.
    pub label: String,
    /// `completed`, `diverged`, ...
    pub status: String,
    /// The metric analysed.
    pub metric: String,
    /// The absolute learning rate, when recorded.
    pub learning_rate: Option<f64>,
    /// The run seed.
    pub seed: Option<i64>,
    /// The metric's first recorded value.
    pub initial: Option<f64>,
    /// The target as a value of the metric.
    pub target_value: Option<f64>,
    /// First recorded step at which the target was crossed.
    pub time_to_target: Option<f64>,
    /// Step of the smoothed metric's minimum.
    pub minimum_step: Option<f64>,
    /// First step after the minimum at which the smoothed metric is back at its initial value.
    pub return_step: Option<f64>,
    /// The last recorded step (a minimum there: the metric was still falling when the run
    /// ended).
    pub last_step: Option<f64>,
    /// For runs recorded beside the mean-field theory (NP on the linear network): the step at
    /// which the theory's error `epsilon_2v` is smallest, its `τc` on the recorded grid.
    pub theory_minimum_step: Option<f64>,
    /// Why the metric could not be analysed (missing, no rows).
    pub problem: Option<String>,
    /// The sweep assignments other than the seed and the learning rate: runs sharing them
    /// form one group.
    #[serde(skip)]
    pub condition: String,
    /// What the mean-field theory needs, for runs it describes (NP and SGD on the linear
    /// network).
    #[serde(skip)]
    pub linear: Option<theory::LinearSetting>,
}

/// One learning rate of a group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RatePoint {
    /// The learning rate (`NaN` when the runs record none).
    pub learning_rate: f64,
    /// Runs (seeds) at this rate.
    pub seeds: usize,
    /// How many reached the target.
    pub reached: usize,
    /// How many diverged.
    pub diverged: usize,
    /// Mean time to target over seeds, when every seed reached it.
    pub mean_time: Option<f64>,
    /// Sample standard deviation of the time over seeds (two or more seeds that all reached).
    pub spread: Option<f64>,
}

/// Runs that differ only in learning rate and seed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupResult {
    /// The sweep assignments they share (`all runs` when there are none).
    pub label: String,
    /// Their learning rates, ascending.
    pub rates: Vec<RatePoint>,
    /// The rate of the minimum training time, its seed-averaged time and spread.
    pub best_learning_rate: Option<f64>,
    /// The minimum training time.
    pub minimum_training_time: Option<f64>,
    /// Its spread over seeds.
    pub spread: Option<f64>,
    /// Whether the best rate is the smallest or largest tried (the minimum may lie beyond).
    pub best_at_edge: bool,
    /// The mean-field theory's minimum training times and their rates, for groups of NP or SGD
    /// runs on the linear network.
    pub theory: Option<theory::GroupTheory>,
    /// The group's sweep assignments as runs record them (`label` without the `all runs`).
    #[serde(skip)]
    pub condition: String,
}

/// A recording's summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// The settings used.
    pub analysis: Analysis,
    /// Per run, in run order.
    pub runs: Vec<RunResult>,
    /// Per group of runs differing only in learning rate and seed.
    pub groups: Vec<GroupResult>,
}

/// A centred moving average over `window` records (fewer at the ends) of the finite values
/// (`NaN` where the window holds none): a run that blew up keeps a finite average up to it.
pub fn smooth(values: &[f64], window: usize) -> Vec<f64> {
    let half = window / 2;
    (0..values.len())
        .map(|i| {
            let (lo, hi) = (i.saturating_sub(half), (i + half + 1).min(values.len()));
            let finite: Vec<f64> = values[lo..hi].iter().copied().filter(|v| v.is_finite()).collect();
            finite.iter().sum::<f64>() / finite.len() as f64
        })
        .collect()
}

/// The first step whose value has crossed `target`, coming from `initial`'s side.
pub fn time_to_target(steps: &[f64], values: &[f64], initial: f64, target: f64) -> Option<f64> {
    let falling = target <= initial;
    steps
        .iter()
        .zip(values)
        .find(|&(_, &v)| if falling { v <= target } else { v >= target })
        .map(|(&s, _)| s)
}

/// The step of the smoothed minimum, and the first later step back at the initial value.
pub fn instability(steps: &[f64], values: &[f64], window: usize) -> (Option<f64>, Option<f64>) {
    let smoothed = smooth(values, window);
    let Some((at, _)) = smoothed
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .min_by(|a, b| a.1.total_cmp(b.1))
    else {
        return (None, None);
    };
    let initial = values[0];
    let back = (at + 1..values.len())
        .find(|&k| !values[k].is_finite() || !smoothed[k].is_finite() || smoothed[k] >= initial)
        .map(|k| steps[k]);
    (Some(steps[at]), back)
}

fn attribute_text(run: &RunSummary, key: &str) -> String {
    run.attributes.get(key).map(|a| a.to_string()).unwrap_or_default()
}

/// The run's error metric (recordings older than the attribute: ε or the test loss).
pub fn error_metric(run: &RunSummary) -> String {
    match run.attributes.get("error_metric") {
        Some(name) => name.to_string(),
        None if run.metrics.iter().any(|(n, _)| n == "epsilon") => "epsilon".into(),
        None => "test_loss".into(),
    }
}

/// A run's sweep assignments `(path, value)`, sorted by path.
pub fn sweep_assignments(run: &RunSummary) -> Vec<(String, String)> {
    let mut assignments: Vec<(String, String)> = run
        .attributes
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("sweep:")
                .map(|path| (path.to_string(), v.to_string()))
        })
        .collect();
    assignments.sort();
    assignments
}

fn is_learning_rate_path(path: &str) -> bool {
    path == "seed" || path.split('.').any(|part| part == "learning_rate")
}

/// The recorded step before the theory's `ε` first rises (`None` without theory, or when it
/// never rises within the run).
fn theory_minimum(run: &RunSummary) -> Option<f64> {
    let curve = |name: &str| run.theory.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    let (steps, epsilon) = (curve("step")?, curve("epsilon_2v")?);
    epsilon.windows(2).position(|w| w[1] > w[0]).map(|k| steps[k])
}

/// Analyses one run.
pub fn analyse_run(run: &RunSummary, analysis: &Analysis) -> RunResult {
    let metric = analysis
        .target
        .metric
        .clone()
        .unwrap_or_else(|| error_metric(run));
    let condition = sweep_assignments(run)
        .iter()
        .filter(|(path, _)| !is_learning_rate_path(path))
        .map(|(path, value)| format!("{path}={value}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut result = RunResult {
        run: run.group.clone(),
        label: attribute_text(run, "label"),
        status: attribute_text(run, "status"),
        metric: metric.clone(),
        learning_rate: match run.attributes.get("learning_rate") {
            Some(Attr::Float(v)) => Some(*v),
            _ => None,
        },
        seed: match run.attributes.get("seed") {
            Some(Attr::Int(v)) => Some(*v),
            _ => None,
        },
        initial: None,
        target_value: None,
        time_to_target: None,
        minimum_step: None,
        return_step: None,
        last_step: None,
        theory_minimum_step: theory_minimum(run),
        problem: None,
        condition,
        linear: theory::linear_setting(run),
    };
    let column = |name: &str| run.metrics.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    let (Some(steps), Some(values)) = (column("step"), column(&metric)) else {
        let names: Vec<&str> = run
            .metrics
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| *n != "step")
            .collect();
        result.problem = Some(format!(
            "no metric `{metric}` in this run; it records: {}",
            names.join(", ")
        ));
        return result;
    };
    let rows = steps.len().min(values.len());
    let (steps, values) = (&steps[..rows], &values[..rows]);
    let Some(&initial) = values.first() else {
        result.problem = Some("no rows recorded".into());
        return result;
    };
    let target = match analysis.target.threshold {
        Threshold::Absolute(v) => v,
        Threshold::RelativeToInitial(r) => r * initial,
    };
    result.initial = Some(initial);
    result.last_step = steps.last().copied();
    result.target_value = Some(target);
    result.time_to_target = time_to_target(steps, values, initial, target);
    // Instability is a statement about the error (Figs. 3B, 4C), also when the target is an
    // accuracy, whose minimum would be its start.
    let error = error_metric(run);
    let error_values = if error == metric {
        Some(values)
    } else {
        column(&error).map(Vec::as_slice)
    };
    if let Some(error_values) = error_values {
        let rows = rows.min(error_values.len());
        (result.minimum_step, result.return_step) =
            instability(&steps[..rows], &error_values[..rows], analysis.smoothing);
    }
    result
}

fn mean_and_spread(times: &[f64]) -> (f64, Option<f64>) {
    let n = times.len() as f64;
    let mean = times.iter().sum::<f64>() / n;
    let spread =
        (times.len() > 1).then(|| (times.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
    (mean, spread)
}

/// Groups runs that differ only in learning rate and seed, and finds each group's minimum
/// training time.
pub fn minimum_training_times(runs: &[RunResult]) -> Vec<GroupResult> {
    // Groups in the order of their first run.
    let mut groups: Vec<(&str, Vec<&RunResult>)> = Vec::new();
    for run in runs {
        match groups.iter_mut().find(|(c, _)| *c == run.condition) {
            Some((_, members)) => members.push(run),
            None => groups.push((&run.condition, vec![run])),
        }
    }
    groups
        .into_iter()
        .map(|(condition, members)| {
            let mut by_rate: Vec<(f64, Vec<&RunResult>)> = Vec::new();
            for run in members {
                let rate = run.learning_rate.unwrap_or(f64::NAN);
                match by_rate.iter_mut().find(|(r, _)| r.to_bits() == rate.to_bits()) {
                    Some((_, list)) => list.push(run),
                    None => by_rate.push((rate, vec![run])),
                }
            }
            by_rate.sort_by(|a, b| a.0.total_cmp(&b.0));
            let rates: Vec<RatePoint> = by_rate
                .iter()
                .map(|(rate, list)| {
                    let times: Vec<f64> = list.iter().filter_map(|r| r.time_to_target).collect();
                    let all = times.len() == list.len();
                    let (mean, spread) = if all {
                        mean_and_spread(&times)
                    } else {
                        (f64::NAN, None)
                    };
                    RatePoint {
                        learning_rate: *rate,
                        seeds: list.len(),
                        reached: times.len(),
                        diverged: list.iter().filter(|r| r.status == "diverged").count(),
                        mean_time: all.then_some(mean),
                        spread,
                    }
                })
                .collect();
            let best = rates
                .iter()
                .enumerate()
                .filter_map(|(k, p)| p.mean_time.map(|t| (k, t)))
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(k, _)| k);
            GroupResult {
                label: if condition.is_empty() {
                    "all runs".into()
                } else {
                    condition.to_string()
                },
                best_learning_rate: best.map(|k| rates[k].learning_rate),
                minimum_training_time: best.and_then(|k| rates[k].mean_time),
                spread: best.and_then(|k| rates[k].spread),
                best_at_edge: best.is_some_and(|k| rates.len() > 1 && (k == 0 || k + 1 == rates.len())),
                rates,
                theory: None,
                condition: condition.to_string(),
            }
        })
        .collect()
}

/// Analyses a recording.
pub fn analyse(file: &FileSummary, analysis: &Analysis) -> Summary {
    let runs: Vec<RunResult> = file.runs.iter().map(|r| analyse_run(r, analysis)).collect();
    let mut groups = minimum_training_times(&runs);
    for group in &mut groups {
        let members: Vec<&RunResult> = runs.iter().filter(|r| r.condition == group.condition).collect();
        group.theory = theory::group_minimum(&members, analysis.target.threshold);
    }
    Summary {
        analysis: analysis.clone(),
        runs,
        groups,
    }
}

fn shown(value: Option<f64>) -> String {
    value.map_or("-".into(), |v| format!("{v}"))
}

fn nan(value: Option<f64>) -> f64 {
    value.unwrap_or(f64::NAN)
}

impl Summary {
    /// The HDF5 tables under `/summary` (see `docs/hdf5-layout.md`).
    pub fn tables(&self) -> (Vec<(String, Attr)>, Vec<SummaryTable>) {
        let attributes = vec![
            ("target".to_string(), Attr::Text(self.analysis.target.to_string())),
            ("smoothing".to_string(), Attr::Int(self.analysis.smoothing as i64)),
        ];
        let run_column =
            |f: &dyn Fn(&RunResult) -> Option<f64>| self.runs.iter().map(|r| nan(f(r))).collect();
        let mut tables = vec![SummaryTable {
            path: "runs".into(),
            attributes: vec![(
                "runs".into(),
                Attr::Text(
                    self.runs
                        .iter()
                        .map(|r| r.run.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                ),
            )],
            columns: vec![
                ("initial".into(), run_column(&|r| r.initial)),
                ("target_value".into(), run_column(&|r| r.target_value)),
                ("time_to_target".into(), run_column(&|r| r.time_to_target)),
                ("minimum_step".into(), run_column(&|r| r.minimum_step)),
                ("return_step".into(), run_column(&|r| r.return_step)),
                (
                    "theory_minimum_step".into(),
                    run_column(&|r| r.theory_minimum_step),
                ),
            ],
        }];
        for (k, group) in self.groups.iter().enumerate() {
            let column = |f: &dyn Fn(&RatePoint) -> f64| group.rates.iter().map(f).collect();
            let eq13 = group.theory.and_then(|t| t.eq13);
            let four = group.theory.and_then(|t| t.four_variable);
            tables.push(SummaryTable {
                path: format!("minimum_training_time/group_{k:03}"),
                attributes: vec![
                    ("label".into(), Attr::Text(group.label.clone())),
                    (
                        "best_learning_rate".into(),
                        Attr::Float(nan(group.best_learning_rate)),
                    ),
                    (
                        "minimum_training_time".into(),
                        Attr::Float(nan(group.minimum_training_time)),
                    ),
                    ("spread".into(), Attr::Float(nan(group.spread))),
                    (
                        "theory_minimum_training_time".into(),
                        Attr::Float(nan(eq13.map(|t| t.iterations))),
                    ),
                    (
                        "theory_best_learning_rate".into(),
                        Attr::Float(nan(eq13.map(|t| t.learning_rate))),
                    ),
                    (
                        "theory_4v_minimum_training_time".into(),
                        Attr::Float(nan(four.map(|t| t.iterations))),
                    ),
                    (
                        "theory_4v_best_learning_rate".into(),
                        Attr::Float(nan(four.map(|t| t.learning_rate))),
                    ),
                ],
                columns: vec![
                    ("learning_rate".into(), column(&|p| p.learning_rate)),
                    ("mean_time".into(), column(&|p| nan(p.mean_time))),
                    ("spread".into(), column(&|p| nan(p.spread))),
                    ("seeds".into(), column(&|p| p.seeds as f64)),
                    ("reached".into(), column(&|p| p.reached as f64)),
                    ("diverged".into(), column(&|p| p.diverged as f64)),
                ],
            });
        }
        (attributes, tables)
    }

    /// The summary as a text table.
    pub fn table(&self) -> String {
        let mut text = format!(
            "target: {} (first recorded step); the error's minimum and return over a moving average of {} records\n",
            self.analysis.target, self.analysis.smoothing
        );
        text += &format!(
            "{:<9} {:<10} {:>11} {:>14} {:>12} {:>12}  label\n",
            "run", "status", "lr", "to target", "minimum at", "back at"
        );
        for r in &self.runs {
            let to_target = match (&r.problem, r.time_to_target) {
                (Some(_), _) => "error".into(),
                (None, Some(t)) => format!("{t}"),
                (None, None) if r.status == "diverged" => "diverged".into(),
                (None, None) => "never".into(),
            };
            text += &format!(
                "{:<9} {:<10} {:>11} {:>14} {:>12} {:>12}  {}\n",
                r.run,
                r.status,
                r.learning_rate.map_or("-".into(), |v| format!("{v:.4e}")),
                to_target,
                match r.theory_minimum_step {
                    Some(t) => format!("{} ({t})", shown(r.minimum_step)),
                    None => shown(r.minimum_step),
                },
                shown(r.return_step),
                r.label
            );
            if let Some(problem) = &r.problem {
                text += &format!("          {problem}\n");
            }
        }
        text += "\nminimum training time (over learning rates; mean ± sd over seeds)\n";
        for g in &self.groups {
            let tried: Vec<String> = g
                .rates
                .iter()
                .map(|p| {
                    let time = p
                        .mean_time
                        .map_or(format!("{}/{} reached", p.reached, p.seeds), |t| format!("{t}"));
                    format!("{:.3e}: {time}", p.learning_rate)
                })
                .collect();
            let best = match (g.best_learning_rate, g.minimum_training_time) {
                (Some(rate), Some(time)) => format!(
                    "{time}{} at lr {rate:.4e}{}",
                    g.spread.map_or(String::new(), |s| format!(" ± {s:.1}")),
                    if g.best_at_edge {
                        " (at the edge of the rates tried)"
                    } else {
                        ""
                    }
                ),
                _ => "not reached at any learning rate".into(),
            };
            text += &format!("  {}: {best}\n    tried {}\n", g.label, tried.join(", "));
            let models = [
                ("Eq. 13", g.theory.and_then(|t| t.eq13)),
                ("four-variable model", g.theory.and_then(|t| t.four_variable)),
            ];
            for (name, time) in models {
                if let Some(t) = time {
                    text += &format!(
                        "    theory ({name}): {:.0} at lr {:.4e}\n",
                        t.iterations, t.learning_rate
                    );
                }
            }
        }
        text
    }
}

#[cfg(test)]
mod tests;
