//! Sweeps spread over a cluster: a SLURM job-array script whose task `k` runs grid point `k`
//! (`npsim run --only-run k`), and `npsim merge`, which puts the parts back into one file laid
//! out like a local sweep. See `docs/cluster.md`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::recorder::{self, Attr, RecorderError};

/// A failure writing a job script or merging parts.
#[derive(Debug, Error)]
pub enum ClusterError {
    /// A part cannot be read.
    #[error(transparent)]
    Recorder(#[from] RecorderError),
    /// No parts given.
    #[error(
        "no part files given: pass the files the array tasks wrote, e.g. `npsim merge DIR/*.h5 --out FILE`"
    )]
    NoParts,
    /// Parts of different scenarios or versions.
    #[error(
        "`{part}` does not belong with `{first}`: its {what} differs ({found} against {expected}); merge only the parts of one `npsim run --emit-slurm`"
    )]
    Mismatch {
        /// The first part.
        first: PathBuf,
        /// The part that differs.
        part: PathBuf,
        /// Which root attribute.
        what: &'static str,
        /// Its value in `part`.
        found: String,
        /// Its value in the first part.
        expected: String,
    },
    /// A run in two parts.
    #[error("`{run}` is in both `{}` and `{}`: pass each array task's file once", first.display(), second.display())]
    Duplicate {
        /// The run group.
        run: String,
        /// One part.
        first: PathBuf,
        /// The other.
        second: PathBuf,
    },
    /// Runs in no part.
    #[error(
        "runs {missing} of the sweep's {runs} are in no part: rerun those array tasks (`--only-run {indices}`) and merge again"
    )]
    Missing {
        /// Their groups.
        missing: String,
        /// Their indices.
        indices: String,
        /// Runs in the sweep.
        runs: i64,
    },
    /// The script could not be written.
    #[error("cannot write `{}`: {cause}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
}

/// What the array script runs.
#[derive(Debug, Clone)]
pub struct ArrayJob<'a> {
    /// The scenario's name (job name and part file names).
    pub name: &'a str,
    /// The scenario file, absolute.
    pub scenario: &'a Path,
    /// The npsim executable, absolute.
    pub executable: &'a Path,
    /// Runs in the sweep (array indices `0..runs`).
    pub runs: usize,
    /// Where the parts and logs go, absolute.
    pub dir: &'a Path,
    /// `--set` overrides to pass on.
    pub overrides: &'a [String],
    /// `--data-dir` to pass on.
    pub data_dir: Option<&'a Path>,
    /// CPUs per array task.
    pub cpus_per_task: usize,
}

/// Single-quotes `text` for bash.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The SLURM job-array script.
pub fn slurm_script(job: &ArrayJob<'_>) -> String {
    let mut command = vec![
        quoted(&job.executable.display().to_string()),
        "run".into(),
        quoted(&job.scenario.display().to_string()),
        "--only-run".into(),
        "\"$SLURM_ARRAY_TASK_ID\"".into(),
        "--out".into(),
        format!(
            "{}/part_$(printf %05d \"$SLURM_ARRAY_TASK_ID\").h5",
            quoted(&job.dir.display().to_string())
        ),
        "--threads".into(),
        "\"${SLURM_CPUS_PER_TASK:-1}\"".into(),
        "--quiet".into(),
    ];
    for set in job.overrides {
        command.extend(["--set".into(), quoted(set)]);
    }
    if let Some(dir) = job.data_dir {
        command.extend(["--data-dir".into(), quoted(&dir.display().to_string())]);
    }
    let dir = quoted(&job.dir.display().to_string());
    format!(
        "#!/bin/bash\n\
         # Written by `npsim run --emit-slurm`: one array task per run of scenario `{name}`\n\
         # ({runs} runs). Submit with `sbatch {script}`; when every task has finished, merge:\n\
         #   npsim merge {dir_text}/part_*.h5 --out {name}.h5\n\
         # Each task writes part_<index>.h5 (part_<index>.h5.partial while it runs); a task that\n\
         # failed or was killed can be rerun alone with `sbatch --array=<index> {script}`.\n\
         #SBATCH --job-name={name}\n\
         #SBATCH --array=0-{last}\n\
         #SBATCH --cpus-per-task={cpus}\n\
         #SBATCH --output={dir_text}/logs/%x_%a.out\n\
         set -euo pipefail\n\
         mkdir -p {dir}/logs\n\
         {command}\n",
        name = job.name,
        runs = job.runs,
        last = job.runs.saturating_sub(1),
        cpus = job.cpus_per_task,
        script = job.dir.join(format!("{}.sbatch", job.name)).display(),
        dir_text = job.dir.display(),
        command = command.join(" "),
    )
}

/// Writes the script to `<dir>/<name>.sbatch` (creating `dir` and `dir/logs`); returns its path.
pub fn write_slurm_script(job: &ArrayJob<'_>) -> Result<PathBuf, ClusterError> {
    let path = job.dir.join(format!("{}.sbatch", job.name));
    let write = |p: &Path, result: std::io::Result<()>| {
        result.map_err(|cause| ClusterError::Write {
            path: p.to_path_buf(),
            cause,
        })
    };
    write(job.dir, std::fs::create_dir_all(job.dir.join("logs")))?;
    write(&path, std::fs::write(&path, slurm_script(job)))?;
    Ok(path)
}

/// Checks that `parts` are the array tasks of one sweep, together complete, and writes them
/// into `out` laid out like a local sweep (no `only_run`; runs in sweep order).
pub fn merge(parts: &[PathBuf], out: &Path, force: bool) -> Result<PathBuf, ClusterError> {
    let Some(first) = parts.first() else {
        return Err(ClusterError::NoParts);
    };
    let reference = recorder::root_attributes(first)?;
    let text = |attrs: &std::collections::HashMap<String, Attr>, key: &str| {
        attrs
            .get(key)
            .map(|a| a.to_string())
            .unwrap_or_else(|| "nothing".into())
    };
    let mut owner: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut plan = Vec::new();
    for part in parts {
        let attrs = recorder::root_attributes(part)?;
        for what in ["npsim_version", "scenario_name", "scenario", "sweep_runs"] {
            let (found, expected) = (text(&attrs, what), text(&reference, what));
            if found != expected {
                let shorten = |s: String| {
                    if s.chars().count() > 60 {
                        format!("{}…", s.chars().take(60).collect::<String>())
                    } else {
                        s
                    }
                };
                return Err(ClusterError::Mismatch {
                    first: first.clone(),
                    part: part.clone(),
                    what,
                    found: shorten(found),
                    expected: shorten(expected),
                });
            }
        }
        let groups: Vec<String> = recorder::read(part)?.runs.into_iter().map(|r| r.group).collect();
        for group in &groups {
            if let Some(other) = owner.insert(group.clone(), part.clone()) {
                return Err(ClusterError::Duplicate {
                    run: group.clone(),
                    first: other,
                    second: part.clone(),
                });
            }
        }
        plan.push((part.clone(), groups));
    }
    let runs = match reference.get("sweep_runs") {
        Some(Attr::Int(n)) => *n,
        _ => owner.len() as i64,
    };
    let missing: Vec<i64> = (0..runs)
        .filter(|k| !owner.contains_key(&format!("run_{k:03}")))
        .collect();
    if !missing.is_empty() {
        let list = |f: &dyn Fn(i64) -> String| missing.iter().map(|&k| f(k)).collect::<Vec<_>>().join(", ");
        return Err(ClusterError::Missing {
            missing: list(&|k| format!("run_{k:03}")),
            indices: list(&|k| k.to_string()),
            runs,
        });
    }
    // Runs in sweep order, whichever part holds them.
    plan.sort_by(|a, b| a.1.first().cmp(&b.1.first()));
    let mut attributes: Vec<(String, Attr)> =
        reference.into_iter().filter(|(k, _)| k != "only_run").collect();
    attributes.sort_by(|a, b| a.0.cmp(&b.0));
    attributes.push(("merged_parts".into(), Attr::Int(parts.len() as i64)));
    Ok(recorder::merge_runs(out, force, &attributes, &plan)?)
}
