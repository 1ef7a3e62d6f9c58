//! `npsim export nwb`: a recording as an NWB 2.x file, for pynwb, NWB Widgets, pynapple and the
//! DANDI archive.
//!
//! What goes where (documented in `docs/hdf5-layout.md`, "NWB export"):
//! - `/general`: the scenario's RON text (`source_script`, with its file name), its name
//!   (`session_id`), and a note of the npsim versions and the recording exported;
//! - `/processing/<run>`: one `ProcessingModule` per run, one `TimeSeries` per metric —
//!   timestamps in seconds for network runs (per rate bin), and for training runs the training
//!   step (NWB has no other axis; the series' description says so);
//! - `/units`: every unit of every population whose spikes were recorded, with its spike
//!   times in seconds (for tasks in time, renditions laid end to end), run and population;
//! - `/analysis/<run>_weights`: the final weight matrices (`post × pre`).

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::recorder::nwb::{NwbContent, NwbMatrix, NwbModule, NwbSeries, NwbUnits};
use crate::recorder::{self, Attr, FileSummary, RecorderError, RunSummary};

/// A failed export.
#[derive(Debug, Error)]
pub enum ExportError {
    /// The output exists.
    #[error("output `{}` already exists; pass --force to replace it, or choose another --out", .0.display())]
    Exists(PathBuf),
    /// Reading the recording or writing the NWB file failed.
    #[error(transparent)]
    Recorder(#[from] RecorderError),
}

/// What an export wrote.
#[derive(Debug, Clone)]
pub struct NwbReport {
    /// The NWB file.
    pub path: PathBuf,
    /// Time series written (one per metric per run).
    pub series: usize,
    /// Units in `/units`.
    pub units: usize,
    /// Weight matrices in `/analysis`.
    pub matrices: usize,
}

fn text(attributes: &std::collections::HashMap<String, Attr>, key: &str) -> String {
    attributes.get(key).map(|a| a.to_string()).unwrap_or_default()
}

fn unit_of(metric: &str) -> &'static str {
    if metric.starts_with("rate_") {
        "Hz"
    } else if metric.contains("accuracy") {
        "fraction"
    } else {
        "a.u."
    }
}

/// Population sizes and rendition length (s) of each run, where the recorded scenario can
/// still be planned (a scenario reading data that is gone cannot): then every unit is listed,
/// even one that never fired.
struct RunShapes {
    sizes: Vec<std::collections::HashMap<String, usize>>,
    rendition_seconds: Vec<Option<f64>>,
    step_seconds: Vec<Option<f64>>,
}

fn run_shapes(recording: &Path, summary: &FileSummary) -> Option<RunShapes> {
    let scenario_text = text(&summary.attributes, "scenario");
    let sizes_of = |blueprint: &npsim_core::CircuitBlueprint| {
        blueprint
            .populations()
            .iter()
            .map(|p| (p.name.clone(), p.size))
            .collect::<std::collections::HashMap<_, _>>()
    };
    if text(&summary.attributes, "scenario_kind") == "network" {
        let scenario = crate::scenario::network::NetworkScenario::parse(recording, scenario_text).ok()?;
        let plan = scenario.plan().ok()?;
        return Some(RunShapes {
            sizes: vec![sizes_of(&plan.blueprint)],
            rendition_seconds: vec![None],
            step_seconds: vec![Some(scenario.config.simulate.dt / 1000.0)],
        });
    }
    let scenario = crate::resume::recorded_scenario(recording, summary).ok()?;
    let plans = scenario.plans().ok()?;
    Some(RunShapes {
        sizes: plans.iter().map(|p| sizes_of(&p.blueprint)).collect(),
        rendition_seconds: plans
            .iter()
            .map(|p| {
                p.task
                    .trial()
                    .map(|s| s.timing.steps as f64 * s.timing.dt / 1000.0)
            })
            .collect(),
        step_seconds: plans
            .iter()
            .map(|p| p.task.trial().map(|s| s.timing.dt / 1000.0))
            .collect(),
    })
}

fn run_index(run: &RunSummary) -> Option<usize> {
    run.group.strip_prefix("run_")?.parse().ok()
}

fn series_of(run: &RunSummary, network: bool) -> Vec<NwbSeries> {
    let column = |name: &str| {
        run.metrics
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let (timestamps, axis) = match (network, column("time_ms")) {
        (true, Some(ms)) => (
            ms.iter().map(|t| t / 1000.0).collect::<Vec<_>>(),
            "timestamps: the end of each rate bin, seconds",
        ),
        _ => (
            column("step").unwrap_or_default(),
            "timestamps: the training step (update) of each record, not seconds",
        ),
    };
    run.metrics
        .iter()
        // A run with no committed rows yet (an interrupted sweep) keeps its module, empty.
        .filter(|(name, values)| name != "step" && name != "time_ms" && !values.is_empty())
        .map(|(name, values)| NwbSeries {
            name: name.clone(),
            description: format!("metric `{name}` of run {} ({axis})", run.group),
            unit: unit_of(name).into(),
            data: values.clone(),
            shape: vec![values.len()],
            timestamps: timestamps.clone(),
        })
        .collect()
}

/// The files a scenario's `output` asks for, beside `recording` (`<recording>.nwb`); `force`
/// replaces existing ones, as it replaced the recording.
pub fn write_outputs(
    output: &crate::scenario::config::OutputConfig,
    recording: &Path,
    force: bool,
) -> Result<Option<NwbReport>, ExportError> {
    if !output.nwb {
        return Ok(None);
    }
    export_nwb(recording, &recording.with_extension("nwb"), force).map(Some)
}

/// Writes the NWB file of `recording` to `out`.
pub fn export_nwb(recording: &Path, out: &Path, force: bool) -> Result<NwbReport, ExportError> {
    if out.exists() && !force {
        return Err(ExportError::Exists(out.to_path_buf()));
    }
    let summary = recorder::read(recording)?;
    let network = text(&summary.attributes, "scenario_kind") == "network";
    let digest = std::fs::File::open(recording)
        .and_then(crate::fetch::sha256_hex)
        .map_err(|cause| RecorderError::Io {
            action: "read",
            path: recording.to_path_buf(),
            cause,
        })?;
    let name = text(&summary.attributes, "scenario_name");
    let created = text(&summary.attributes, "created");
    let identifier = format!("npsim:{name}:{created}:{}", &digest[..16.min(digest.len())]);
    let shapes = run_shapes(recording, &summary);

    let mut modules = Vec::new();
    let mut analysis = Vec::new();
    let mut units = NwbUnits {
        description: if network {
            "units of the populations whose spikes were recorded; spike times in seconds from the start of the simulation".into()
        } else {
            "units of the populations whose spikes were recorded; spike times in seconds from the run's first recorded rendition, renditions laid end to end".into()
        },
        ..Default::default()
    };
    for run in &summary.runs {
        let a = |k: &str| text(&run.attributes, k);
        modules.push(NwbModule {
            name: run.group.clone(),
            description: format!(
                "run {} of scenario `{name}`: {}, rule {}, status {}, {} steps done",
                run.group,
                a("label"),
                a("rule"),
                a("status"),
                a("steps_done")
            ),
            series: series_of(run, network),
        });
        let index = run_index(run);
        let shape_of = |k: Option<usize>| shapes.as_ref().zip(k);
        for population in recorder::activity_groups(recording, &run.group, "spikes")? {
            let events = recorder::read_activity(recording, &run.group, &format!("spikes/{population}"))?;
            let rendition = shape_of(index)
                .and_then(|(s, k)| s.rendition_seconds.get(k).copied().flatten())
                .unwrap_or_else(|| events.time.iter().fold(0.0f64, |m, &t| m.max(t)) / 1000.0 + 1e-3);
            let recorded_units = events.unit.iter().map(|&u| u as usize + 1).max().unwrap_or(0);
            let size = shape_of(index)
                .and_then(|(s, k)| s.sizes.get(k).and_then(|m| m.get(&population).copied()))
                .unwrap_or(recorded_units)
                .max(recorded_units);
            if units.resolution.is_none() {
                units.resolution =
                    shape_of(index).and_then(|(s, k)| s.step_seconds.get(k).copied().flatten());
            }
            let mut trains = vec![Vec::new(); size];
            for ((&t, &u), &r) in events.time.iter().zip(&events.unit).zip(&events.rendition) {
                trains[u as usize].push(r as f64 * rendition + t / 1000.0);
            }
            for (unit, mut train) in trains.into_iter().enumerate() {
                train.sort_by(f64::total_cmp);
                units.run.push(run.group.clone());
                units.population.push(population.clone());
                units.unit_index.push(unit as i64);
                units.spike_times.push(train);
            }
        }
        for (projection, shape) in &run.weights {
            let (_, values) = recorder::read_weights(recording, &run.group, projection)?;
            analysis.push(NwbMatrix {
                name: format!("{}_{projection}", run.group),
                description: format!(
                    "final weights `{projection}` of run {}: row i holds the weights onto postsynaptic unit i (post × pre)",
                    run.group
                ),
                rows: shape.first().copied().unwrap_or(0) as usize,
                cols: shape.get(1).copied().unwrap_or(1) as usize,
                data: values,
            });
        }
    }
    let series = modules.iter().map(|m| m.series.len()).sum();
    let matrices = analysis.len();
    let unit_count = units.run.len();
    let content = NwbContent {
        identifier,
        session_description: {
            let description = text(&summary.attributes, "scenario_description");
            if description.is_empty() {
                format!("npsim simulation of scenario `{name}`")
            } else {
                format!("npsim simulation of scenario `{name}`: {description}")
            }
        },
        session_start_time: created.clone(),
        file_create_date: crate::runner::iso8601_now(),
        general: vec![
            ("source_script".into(), text(&summary.attributes, "scenario")),
            ("session_id".into(), name.clone()),
            (
                "experiment_description".into(),
                "training a neural circuit by node perturbation and its baselines, simulated by npsim (Hiratani, Mehta, Lillicrap and Latham 2022)".into(),
            ),
            (
                "notes".into(),
                format!(
                    "simulated by npsim {} (recording `{}`, SHA-256 {digest}); exported by npsim {}",
                    text(&summary.attributes, "npsim_version"),
                    recording.display(),
                    env!("CARGO_PKG_VERSION")
                ),
            ),
        ],
        source_file_name: text(&summary.attributes, "scenario_path"),
        keywords: vec!["npsim".into(), "simulation".into(), "node perturbation".into()],
        subject: (
            format!("npsim:{name}"),
            format!("a neural circuit simulated by npsim (scenario `{name}`), not an animal"),
        ),
        modules,
        units: (unit_count > 0).then_some(units),
        analysis,
    };
    let path = recorder::nwb::write_nwb(out, &content)?;
    Ok(NwbReport {
        path,
        series,
        units: unit_count,
        matrices,
    })
}
