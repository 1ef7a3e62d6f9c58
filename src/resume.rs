//! `npsim run --resume FILE`: finish a sweep that was interrupted (Ctrl-C, a kill, a cluster's
//! time limit). Runs that ended (completed, diverged or failed) are kept as recorded; the others
//! are run again from the start, which gives the numbers an uninterrupted sweep gives, since
//! each run's randomness comes from its own seed streams. The scenario is rebuilt from the text
//! and `--set` overrides stored in the file, and each kept run's recorded configuration must
//! match it.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use thiserror::Error;

use crate::recorder::{self, Attr, FileSummary, RecorderError, partial_path};
use crate::runner::{self, RunError};
use crate::scenario::{Scenario, ScenarioError, to_scenario_syntax};

/// Why a sweep cannot be resumed.
#[derive(Debug, Error)]
pub enum ResumeError {
    /// Neither the file nor its `.partial` exists.
    #[error("no recording at `{}` or `{}`: pass the file an interrupted `npsim run` wrote", .0.display(), partial_path(.0).display())]
    NotFound(PathBuf),
    /// The file lacks what a resume needs.
    #[error("`{}` has no root attribute `{attribute}`: it was not written by `npsim run`", path.display())]
    NotARecording {
        /// The file.
        path: PathBuf,
        /// The attribute missing.
        attribute: &'static str,
    },
    /// The stored scenario no longer builds.
    #[error("the scenario stored in `{}` cannot be rebuilt: {error}", path.display())]
    Scenario {
        /// The file.
        path: PathBuf,
        /// Why.
        error: ScenarioError,
    },
    /// The sweep or a run's configuration differs from the recording.
    #[error("`{}` cannot be resumed with this npsim: {message}", path.display())]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// What differs.
        message: String,
    },
    /// Running or recording failed.
    #[error(transparent)]
    Run(#[from] RunError),
    /// Reading or writing a recording failed.
    #[error(transparent)]
    Recorder(#[from] RecorderError),
}

/// What a resume did.
#[derive(Debug)]
pub struct Resumed {
    /// The recording now: the final name when every run has ended, else `<file>.partial`.
    pub path: PathBuf,
    /// The runs kept as recorded.
    pub kept: usize,
    /// The runs redone (the report of running them).
    pub redone: Option<runner::Report>,
}

const ENDED: [&str; 3] = ["completed", "diverged", "failed"];

/// The scenario a recording was run with: its stored text with its stored `--set` overrides.
pub fn recorded_scenario(path: &Path, recording: &FileSummary) -> Result<Scenario, ResumeError> {
    let root = |key: &'static str| {
        recording
            .attributes
            .get(key)
            .map(|a| a.to_string())
            .ok_or_else(|| ResumeError::NotARecording {
                path: path.to_path_buf(),
                attribute: key,
            })
    };
    let unbuildable = |error| ResumeError::Scenario {
        path: path.to_path_buf(),
        error,
    };
    let mut scenario =
        Scenario::parse(Path::new(&root("scenario_path")?), root("scenario")?).map_err(unbuildable)?;
    let overrides: Vec<String> = recording
        .attributes
        .get("overrides")
        .map(|a| a.to_string().lines().map(String::from).collect())
        .unwrap_or_default();
    scenario.apply_overrides(&overrides).map_err(unbuildable)?;
    Ok(scenario)
}

/// Resumes the sweep recorded in `file` (or its `.partial`).
pub fn resume(
    file: &Path,
    data_dir: Option<PathBuf>,
    show_progress: bool,
    stop: &AtomicBool,
) -> Result<Resumed, ResumeError> {
    let out = match file.to_str().and_then(|s| s.strip_suffix(".partial")) {
        Some(stem) => PathBuf::from(stem),
        None => file.to_path_buf(),
    };
    let source = [partial_path(&out), out.clone()]
        .into_iter()
        .find(|p| p.exists())
        .ok_or_else(|| ResumeError::NotFound(out.clone()))?;
    let old = recorder::read(&source)?;
    let mut scenario = recorded_scenario(&source, &old)?;
    if let Some(dir) = data_dir {
        scenario.data_dir = dir;
    }
    let plans = runner::plans(&scenario).map_err(|e| ResumeError::Scenario {
        path: source.clone(),
        error: e,
    })?;
    let mismatch = |message: String| ResumeError::Mismatch {
        path: source.clone(),
        message,
    };
    if plans.len() != old.runs.len() {
        return Err(mismatch(format!(
            "it records {} runs, but its scenario now expands to {}",
            old.runs.len(),
            plans.len()
        )));
    }
    let mut kept = Vec::new();
    let mut redo = Vec::new();
    for (plan, run) in plans.iter().zip(&old.runs) {
        let recorded = run.attributes.get("config").map(Attr::to_string);
        if run.group != plan.run.group_name()
            || recorded.as_deref() != Some(&to_scenario_syntax(&plan.run.config))
        {
            return Err(mismatch(format!(
                "`{}` was recorded with another configuration than its scenario now gives; run the scenario afresh",
                run.group
            )));
        }
        let status = run
            .attributes
            .get("status")
            .map(Attr::to_string)
            .unwrap_or_default();
        if ENDED.contains(&status.as_str()) {
            kept.push(run.group.clone());
        } else {
            redo.push(plan.run.index);
        }
    }
    if redo.is_empty() {
        if source != out {
            std::fs::rename(&source, &out).map_err(|cause| RecorderError::Io {
                action: "rename the finished recording",
                path: source.clone(),
                cause,
            })?;
        }
        return Ok(Resumed {
            path: out,
            kept: kept.len(),
            redone: None,
        });
    }
    let scratch = PathBuf::from(format!("{}.resume.h5", out.display()));
    let report = runner::run_only(&scenario, Some(&redo), &scratch, true, show_progress, stop)?;
    let redone_groups: Vec<String> = report.rows.iter().map(|r| r.group.clone()).collect();
    let finished = !report.interrupted && report.rows.iter().all(|r| ENDED.contains(&r.status.label()));
    let destination = if finished { out.clone() } else { partial_path(&out) };
    let mut attributes: Vec<(String, Attr)> = old.attributes.clone().into_iter().collect();
    attributes.sort_by(|a, b| a.0.cmp(&b.0));
    recorder::merge_runs(
        &destination,
        true,
        &attributes,
        &[
            (source.clone(), kept.clone()),
            (report.path.clone(), redone_groups),
        ],
    )?;
    let _ = std::fs::remove_file(&report.path);
    if finished && source != destination {
        let _ = std::fs::remove_file(&source);
    }
    Ok(Resumed {
        path: destination,
        kept: kept.len(),
        redone: Some(report),
    })
}
