//! Runs a whole scenario: every run of its sweep in parallel, one recorder writing the file.
//!
//! Simulations send [`Event`]s over a channel; the calling thread owns the recorder and is
//! the only writer, so data flows one way from runs to the file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use thiserror::Error;

use crate::recorder::{Attr, Recorder, RecorderError, RunLayout};
use crate::scenario::{Precision, RunPlan, Scenario, ScenarioError, to_scenario_syntax};
use crate::simulate::{Event, RunStatus, metric_names, simulate, theory_curves};

/// A failure running a scenario.
#[derive(Debug, Error)]
pub enum RunError {
    /// The scenario is invalid.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// The recording could not be written.
    #[error(transparent)]
    Recorder(#[from] RecorderError),
    /// `--only-run` names no run of the sweep.
    #[error(
        "--only-run {index}: the scenario's sweep has {runs} run(s), numbered 0 to {last}; pass one of those"
    )]
    NoSuchRun {
        /// The index asked for.
        index: usize,
        /// Runs in the sweep.
        runs: usize,
        /// The last index.
        last: usize,
    },
}

/// One line of the end-of-run summary.
#[derive(Debug, Clone)]
pub struct RunRow {
    /// Group name.
    pub group: String,
    /// Sweep assignments.
    pub label: String,
    /// Rule name.
    pub rule: String,
    /// Absolute learning rate.
    pub learning_rate: f64,
    /// Status.
    pub status: RunStatus,
    /// Steps done.
    pub steps_done: u64,
    /// The metric that defines divergence (`epsilon`, `test_loss`).
    pub error_metric: String,
    /// Its last recorded value.
    pub final_error: f64,
    /// The last test accuracy, for classification tasks.
    pub final_accuracy: Option<f64>,
}

/// The result of running a scenario.
#[derive(Debug)]
pub struct Report {
    /// Where the recording is.
    pub path: PathBuf,
    /// One row per run.
    pub rows: Vec<RunRow>,
    /// Whether the user interrupted it.
    pub interrupted: bool,
}

/// The validated plans of a scenario's runs.
pub fn plans(scenario: &Scenario) -> Result<Vec<RunPlan>, ScenarioError> {
    scenario.plans()
}

fn layout(plan: &RunPlan) -> RunLayout {
    let c = &plan.run.config;
    let mut attributes: Vec<(String, Attr)> = vec![
        ("label".into(), Attr::Text(plan.run.label())),
        ("rule".into(), Attr::Text(plan.rule.name.clone())),
        ("seed".into(), Attr::Int(c.seed as i64)),
        ("status".into(), Attr::Text("interrupted".into())),
        ("steps_done".into(), Attr::Int(0)),
        ("steps".into(), Attr::Int(plan.steps as i64)),
        ("batch_size".into(), Attr::Int(c.train.batch_size as i64)),
        ("record_every".into(), Attr::Int(plan.record_every as i64)),
        ("precision".into(), Attr::Text(c.precision.name().into())),
        (
            "post_update".into(),
            Attr::Text(
                c.post_update
                    .iter()
                    .map(to_scenario_syntax)
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        ),
        ("config".into(), Attr::Text(to_scenario_syntax(c))),
        (
            "error_metric".into(),
            Attr::Text(plan.task.metrics().error_name().into()),
        ),
    ];
    if let Some(rate) = plan.learning_rate() {
        attributes.push(("learning_rate".into(), Attr::Float(rate)));
    }
    if let Some((reference, k)) = c.rule.learning_rate().and_then(|r| r.relative()) {
        attributes.push((format!("learning_rate_relative_to_{reference}"), Attr::Float(k)));
    }
    if let (Some(library), Some(config)) = (&plan.rule.plugin, c.rule.plugin()) {
        attributes.extend([
            (
                "plugin_path".into(),
                Attr::Text(library.path.display().to_string()),
            ),
            ("plugin_name".into(), Attr::Text(config.name.clone())),
            ("plugin_params".into(), Attr::Text(config.params.clone())),
            ("plugin_sha256".into(), Attr::Text(library.sha256.clone())),
            ("plugin_rustc".into(), Attr::Text(library.rustc_version.clone())),
        ]);
    }
    attributes.extend(plan.task.attributes());
    let populations = plan.blueprint.populations();
    let perturbation_std = populations.iter().map(|p| p.noise.std()).fold(0.0, f64::max);
    attributes.push(("perturbation_std".into(), Attr::Float(perturbation_std)));
    for (path, value) in &plan.run.assignments {
        attributes.push((format!("sweep:{path}"), Attr::Text(value.clone())));
    }
    RunLayout {
        group: plan.run.group_name(),
        attributes,
        metrics: metric_names(plan),
        theory: theory_curves(plan),
        recording_group: plan.task.recording_group().map(String::from),
        activity: crate::simulate::activity_groups(&plan.record),
    }
}

/// Runs every run of `scenario`, recording to `out`.
pub fn run(
    scenario: &Scenario,
    out: &Path,
    force: bool,
    show_progress: bool,
    stop: &AtomicBool,
) -> Result<Report, RunError> {
    run_only(scenario, None, out, force, show_progress, stop)
}

/// Runs the runs `only` of the sweep (a cluster array task's share, or the runs a resumed
/// sweep redoes: their groups keep their sweep names, and the root records `only_run` when
/// there is one, so that `npsim merge` can put the parts together), or every run.
pub fn run_only(
    scenario: &Scenario,
    only: Option<&[usize]>,
    out: &Path,
    force: bool,
    show_progress: bool,
    stop: &AtomicBool,
) -> Result<Report, RunError> {
    let mut plans = plans(scenario)?;
    let sweep_runs = plans.len();
    if let Some(indices) = only {
        if let Some(&index) = indices.iter().find(|&&k| k >= sweep_runs) {
            return Err(RunError::NoSuchRun {
                index,
                runs: sweep_runs,
                last: sweep_runs - 1,
            });
        }
        plans.retain(|p| indices.contains(&p.run.index));
    }
    // Events name runs by their sweep index; the recorder by their place in `plans`.
    let mut slot = vec![usize::MAX; sweep_runs];
    for (k, plan) in plans.iter().enumerate() {
        slot[plan.run.index] = k;
    }
    let layouts: Vec<RunLayout> = plans.iter().map(layout).collect();
    let header = vec![
        (
            "npsim_version".to_string(),
            Attr::Text(env!("CARGO_PKG_VERSION").into()),
        ),
        (
            "scenario_name".to_string(),
            Attr::Text(scenario.config.name.clone()),
        ),
        ("scenario".to_string(), Attr::Text(scenario.text.clone())),
        (
            "scenario_path".to_string(),
            Attr::Text(scenario.path.display().to_string()),
        ),
        ("created".to_string(), Attr::Text(iso8601_now())),
        ("sweep_runs".to_string(), Attr::Int(sweep_runs as i64)),
    ];
    let mut header = header;
    if let Some(&[index]) = only {
        header.push(("only_run".to_string(), Attr::Int(index as i64)));
    }
    if !scenario.overrides.is_empty() {
        header.push(("overrides".to_string(), Attr::Text(scenario.overrides.join("\n"))));
    }
    let rows_per_sync = plans
        .iter()
        .map(|p| p.run.config.train.sync_every / p.record_every)
        .max()
        .unwrap_or(64);
    let mut recorder = Recorder::create(out, force, &header, &layouts, rows_per_sync)?;
    let total_steps: u64 = plans.iter().map(|p| p.steps).sum();
    let bar = if show_progress {
        ProgressBar::new(total_steps)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} steps, {elapsed} elapsed, ~{eta} left  {msg}")
            .expect("valid template"),
    );
    let mut rows: Vec<Option<RunRow>> = vec![None; plans.len()];
    // The whole sweep at a glance: runs started (a first record) and ended, by outcome.
    let mut started = vec![false; plans.len()];
    let mut tally = SweepTally::default();
    let (sender, receiver) = mpsc::channel::<Event>();
    let failure: Result<(), RecorderError> = std::thread::scope(|scope| {
        let plans = &plans;
        scope.spawn(move || {
            plans.par_iter().for_each_with(sender, |sender, plan| {
                let mut emit = |event| {
                    // The receiver only disappears after a recorder failure; the run then has
                    // nowhere to report and simply ends.
                    let _ = sender.send(event);
                };
                match plan.run.config.precision {
                    Precision::F32 => simulate::<f32>(plan, stop, &mut emit),
                    Precision::F64 => simulate::<f64>(plan, stop, &mut emit),
                }
            });
        });
        for event in receiver {
            if let Event::Row { run, .. } = event
                && !std::mem::replace(&mut started[slot[run]], true)
            {
                tally.running += 1;
                bar.set_message(tally.describe(plans.len()));
            }
            let result = match event {
                Event::Row { run, row } => recorder.append(slot[run], &row),
                Event::Activity { run, blocks } => {
                    recorder.append_activity(slot[run], &blocks);
                    Ok(())
                }
                Event::Sync { run, steps_done } => recorder.flush_run(slot[run], steps_done),
                Event::Progress(n) => {
                    bar.inc(n);
                    Ok(())
                }
                Event::Finished { run, outcome } => {
                    let run = slot[run];
                    let plan = &plans[run];
                    // A run that stops early gives back its remaining steps, so the ETA holds.
                    let stopped_at = match &outcome.status {
                        RunStatus::Diverged { step, .. } => Some(*step),
                        RunStatus::Failed(_) => Some(outcome.steps_done),
                        _ => None,
                    };
                    if let Some(step) = stopped_at {
                        bar.set_length(
                            bar.length()
                                .unwrap_or(0)
                                .saturating_sub(plan.steps.saturating_sub(step)),
                        );
                    }
                    tally.finish(started[run], &outcome.status);
                    bar.set_message(tally.describe(plans.len()));
                    let error_column = crate::simulate::error_column(plan);
                    rows[run] = Some(RunRow {
                        group: plan.run.group_name(),
                        label: plan.run.label(),
                        rule: plan.rule.name.clone(),
                        learning_rate: plan.learning_rate().unwrap_or(f64::NAN),
                        status: outcome.status.clone(),
                        steps_done: outcome.steps_done,
                        error_metric: plan.task.metrics().error_name().to_string(),
                        final_error: outcome.last_row.get(error_column).copied().unwrap_or(f64::NAN),
                        final_accuracy: plan.task.metrics().classification.then(|| {
                            let names = metric_names(plan);
                            names
                                .iter()
                                .position(|n| n == "test_accuracy")
                                .and_then(|k| outcome.last_row.get(k).copied())
                                .unwrap_or(f64::NAN)
                        }),
                    });
                    recorder.finish_run(
                        run,
                        outcome.status.label(),
                        outcome.steps_done,
                        &outcome.status.attributes(),
                        &outcome.weights,
                        &outcome.recordings,
                    )
                }
            };
            if let Err(e) = result {
                stop.store(true, Ordering::Relaxed);
                return Err(e);
            }
        }
        Ok(())
    });
    bar.finish_and_clear();
    failure?;
    let interrupted = stop.load(Ordering::Relaxed);
    let path = if interrupted {
        recorder.close_partial()?
    } else {
        recorder.close()?
    };
    Ok(Report {
        path,
        rows: rows.into_iter().flatten().collect(),
        interrupted,
    })
}

/// Runs of a sweep by state, for the progress line.
#[derive(Debug, Default)]
struct SweepTally {
    running: usize,
    completed: usize,
    diverged: usize,
    failed: usize,
}

impl SweepTally {
    fn finish(&mut self, started: bool, status: &RunStatus) {
        if started {
            self.running -= 1;
        }
        match status {
            RunStatus::Completed => self.completed += 1,
            RunStatus::Diverged { .. } => self.diverged += 1,
            RunStatus::Failed(_) => self.failed += 1,
            RunStatus::Interrupted { .. } => {}
        }
    }

    fn describe(&self, runs: usize) -> String {
        format!(
            "runs: {} done ({} diverged, {} failed), {} running, {} of {runs} left",
            self.completed + self.diverged + self.failed,
            self.diverged,
            self.failed,
            self.running,
            runs - self.completed - self.diverged - self.failed - self.running
        )
    }
}

/// Now, in ISO 8601 UTC (`2026-11-27T06:00:00Z`), without a date crate.
pub fn iso8601_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamp_is_iso8601() {
        let now = super::iso8601_now();
        assert_eq!(now.len(), 20, "{now}");
        assert!(now.starts_with("20") && now.ends_with('Z') && &now[10..11] == "T");
    }

    #[test]
    fn the_sweep_tally_counts_each_run_once_by_its_outcome() {
        use super::{RunStatus, SweepTally};
        let mut tally = SweepTally {
            running: 3,
            ..Default::default()
        };
        tally.finish(true, &RunStatus::Completed);
        tally.finish(
            true,
            &RunStatus::Diverged {
                step: 5,
                reason: String::new(),
            },
        );
        // A run that fails before its first record was never counted as running.
        tally.finish(false, &RunStatus::Failed("x".into()));
        assert_eq!(
            tally.describe(6),
            "runs: 3 done (1 diverged, 1 failed), 1 running, 2 of 6 left"
        );
    }
}
