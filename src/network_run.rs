//! Running a network scenario (`npsim run scenarios/coba.ron`): the free-running network
//! advances one rate bin at a time; each bin's population rates and the recorded spikes go to
//! the recorder, which flushes them every `sync_seconds` of wall time and at the end.
//!
//! The file has the layout of every npsim recording (`docs/hdf5-layout.md`) with one run,
//! `runs/run_0000`: metrics `step`, `time_ms` (the bin's end) and `rate_<population>` (Hz
//! over the bin), spikes under `spikes/<population>` (`time` in ms from the start, `unit`,
//! `rendition` 0), and at the end the attributes `mean_rate_<population>` (Hz) and
//! `mean_cv_<population>` (the mean ISI coefficient of variation).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use npsim_core::network::FiringTally;

use crate::recorder::{ActivityBlock, Attr, Recorder, RunLayout};
use crate::runner::{RunError, iso8601_now};
use crate::scenario::network::NetworkScenario;
use crate::scenario::to_scenario_syntax;

/// Seconds of wall time between flushes.
const SYNC_SECONDS: f64 = 30.0;

/// What a network run measured, per population.
#[derive(Debug, Clone)]
pub struct PopulationSummary {
    /// The population.
    pub name: String,
    /// Its mean rate over the run, Hz.
    pub mean_rate: f64,
    /// Its mean ISI coefficient of variation (NaN when no neuron spiked three times).
    pub mean_cv: f64,
}

/// The end of a network run.
#[derive(Debug)]
pub struct NetworkReport {
    /// Where the recording is.
    pub path: PathBuf,
    /// Whether the user interrupted it (the file is then `<out>.partial`).
    pub interrupted: bool,
    /// Steps simulated.
    pub steps_done: u64,
    /// Per population, over the steps done.
    pub populations: Vec<PopulationSummary>,
}

/// Runs `scenario` on `threads` threads, recording to `out`.
pub fn run(
    scenario: &NetworkScenario,
    out: &Path,
    force: bool,
    threads: usize,
    show_progress: bool,
    stop: &AtomicBool,
) -> Result<NetworkReport, RunError> {
    let plan = scenario.plan()?;
    let c = &scenario.config;
    let dt = c.simulate.dt;
    let populations = plan.blueprint.populations();
    let mut network = scenario.build_network(&plan, threads.max(1))?;
    let mut metrics = vec!["step".to_string(), "time_ms".to_string()];
    metrics.extend(populations.iter().map(|p| format!("rate_{}", p.name)));
    let layout = RunLayout {
        group: "run_0000".into(),
        attributes: vec![
            ("label".into(), Attr::Text(String::new())),
            ("seed".into(), Attr::Int(c.seed as i64)),
            ("status".into(), Attr::Text("interrupted".into())),
            ("steps_done".into(), Attr::Int(0)),
            ("steps".into(), Attr::Int(plan.steps as i64)),
            ("dt_ms".into(), Attr::Float(dt)),
            ("duration_ms".into(), Attr::Float(c.simulate.duration)),
            ("bin_ms".into(), Attr::Float(c.simulate.bin)),
            ("threads".into(), Attr::Int(threads as i64)),
            ("config".into(), Attr::Text(to_scenario_syntax(c))),
            // What `npsim inspect` shows in its "final" column: the last bin's rate.
            (
                "error_metric".into(),
                Attr::Text(format!("rate_{}", populations[0].name)),
            ),
        ],
        metrics,
        theory: Vec::new(),
        recording_group: None,
        activity: plan
            .spikes
            .iter()
            .map(|(_, name)| (format!("spikes/{name}"), false))
            .collect(),
    };
    let mut header = vec![
        (
            "npsim_version".to_string(),
            Attr::Text(env!("CARGO_PKG_VERSION").into()),
        ),
        ("scenario_name".to_string(), Attr::Text(c.name.clone())),
        ("scenario".to_string(), Attr::Text(scenario.text.clone())),
        (
            "scenario_path".to_string(),
            Attr::Text(scenario.path.display().to_string()),
        ),
        ("scenario_kind".to_string(), Attr::Text("network".into())),
        ("created".to_string(), Attr::Text(iso8601_now())),
        ("sweep_runs".to_string(), Attr::Int(1)),
    ];
    if !scenario.overrides.is_empty() {
        header.push(("overrides".to_string(), Attr::Text(scenario.overrides.join("\n"))));
    }
    let mut recorder = Recorder::create(out, force, &header, &[layout], 64)?;
    let bar = if show_progress {
        ProgressBar::new(plan.steps)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} steps, {elapsed} elapsed, ~{eta} left")
            .expect("valid template"),
    );
    // Per-neuron statistics are tallied bin by bin, so memory does not grow with the spikes.
    let mut tallies: Vec<FiringTally> = populations
        .iter()
        .enumerate()
        .map(|(p, pop)| FiringTally::new(p as u32, pop.size))
        .collect();
    let mut last_sync = Instant::now();
    let mut done = 0u64;
    while done < plan.steps && !stop.load(Ordering::Relaxed) {
        let steps = plan.bin_steps.min(plan.steps - done);
        let spikes = network.run(steps);
        done += steps;
        let mut row = vec![done as f64, done as f64 * dt];
        let seconds = steps as f64 * dt / 1000.0;
        row.extend(populations.iter().enumerate().map(|(p, pop)| {
            let count = spikes.iter().filter(|s| s.population == p as u32).count();
            count as f64 / pop.size as f64 / seconds
        }));
        recorder.append(0, &row)?;
        let blocks: Vec<ActivityBlock> = plan
            .spikes
            .iter()
            .map(|&(p, _)| {
                let mine = spikes.iter().filter(|s| s.population == p as u32);
                ActivityBlock {
                    time: mine.clone().map(|s| s.step as f64 * dt).collect(),
                    unit: mine.clone().map(|s| s.neuron).collect(),
                    rendition: mine.map(|_| 0).collect(),
                    value: Vec::new(),
                }
            })
            .collect();
        recorder.append_activity(0, &blocks);
        tallies.iter_mut().for_each(|tally| tally.add(&spikes));
        if last_sync.elapsed().as_secs_f64() >= SYNC_SECONDS {
            recorder.flush_run(0, done)?;
            last_sync = Instant::now();
        }
        bar.inc(steps);
    }
    bar.finish_and_clear();
    let interrupted = done < plan.steps;
    let summaries: Vec<PopulationSummary> = populations
        .iter()
        .zip(&tallies)
        .map(|(pop, tally)| {
            let stats = tally.statistics(done.max(1), dt);
            PopulationSummary {
                name: pop.name.clone(),
                mean_rate: stats.mean_rate(),
                mean_cv: stats.mean_cv(),
            }
        })
        .collect();
    let mut extra: Vec<(String, Attr)> = Vec::new();
    for s in &summaries {
        extra.push((format!("mean_rate_{}", s.name), Attr::Float(s.mean_rate)));
        extra.push((format!("mean_cv_{}", s.name), Attr::Float(s.mean_cv)));
    }
    let status = if interrupted { "interrupted" } else { "completed" };
    if interrupted {
        extra.push(("interrupted_at_step".into(), Attr::Int(done as i64)));
    }
    recorder.finish_run(0, status, done, &extra, &[], &[])?;
    let path = if interrupted {
        recorder.close_partial()?
    } else {
        recorder.close()?
    };
    Ok(NetworkReport {
        path,
        interrupted,
        steps_done: done,
        populations: summaries,
    })
}
