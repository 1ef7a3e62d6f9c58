//! HDF5 output. Every HDF5 call in npsim lives in this module.
//!
//! The layout is documented in `docs/hdf5-layout.md`, which external tools rely on. In short:
//! root attributes `npsim_version`, `scenario_name`, `scenario`, `created`; one group
//! `/runs/<run>/` per run with its parameters as attributes, `metrics/` (1-D datasets of equal
//! length, `step` first), `theory/`, and `weights/` (final weights, `post × pre`).
//!
//! The whole skeleton (every run's groups, attributes and empty metric datasets) is written
//! when the file is created, so that later edits only append to rank-1 chunked datasets and
//! rewrite attributes — the operations `hdf5-pure` performs in place and crash-safely. The file
//! is written as `<file>.partial` and renamed when the recorder is closed; until then a killed
//! process leaves a `.partial` file that h5py opens, holding everything up to the last sync.

use std::path::{Path, PathBuf};

use hdf5_pure::{AttrValue, File, FileAccessProperties, FileBuilder, MaxExtent, SyncPolicy};
use thiserror::Error;

pub use npsim_core::Attr;

mod edit;
pub mod nwb;
mod read;
pub use edit::{SummaryTable, merge_runs, root_attributes, summary_settings, write_summary};
pub use read::{
    FileSummary, RunSummary, activity_groups, being_written, read, read_activity, read_recording,
    read_weights,
};

fn attr_to_hdf5(attr: &Attr) -> AttrValue {
    match attr {
        Attr::Text(s) => AttrValue::VarLenString(s.clone()),
        Attr::Float(v) => AttrValue::F64(*v),
        Attr::Int(v) => AttrValue::I64(*v),
    }
}

fn attr_from_hdf5(value: &AttrValue) -> Option<Attr> {
    Some(match value {
        AttrValue::VarLenString(s) | AttrValue::String(s) | AttrValue::AsciiString(s) => {
            Attr::Text(s.clone())
        }
        AttrValue::F64(v) => Attr::Float(*v),
        AttrValue::F32(v) => Attr::Float(f64::from(*v)),
        AttrValue::I64(v) => Attr::Int(*v),
        AttrValue::I32(v) => Attr::Int(i64::from(*v)),
        AttrValue::U64(v) => Attr::Int(*v as i64),
        _ => return None,
    })
}

/// What a run's group holds when the file is created.
#[derive(Debug, Clone)]
pub struct RunLayout {
    /// Group name under `/runs`.
    pub group: String,
    /// Attributes (parameters), written at creation.
    pub attributes: Vec<(String, Attr)>,
    /// Metric names, `step` first.
    pub metrics: Vec<String>,
    /// Theory curves (name, values), `step` first; empty if none.
    pub theory: Vec<(String, Vec<f64>)>,
    /// The group the task's end-of-run recordings go in (e.g. `song`), if it has any.
    pub recording_group: Option<String>,
    /// Activity recorded during the run: a group path under the run (`spikes/ra`,
    /// `traces/ra/state`) and whether its events carry a value (traces do, spikes do not).
    pub activity: Vec<(String, bool)>,
}

/// Events of one recorded group (see [`RunLayout::activity`]), as parallel columns: time
/// within the rendition (ms), unit, rendition (counted from 0 over the run) and, for traces,
/// the sampled value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActivityBlock {
    /// Time in the rendition, ms.
    pub time: Vec<f64>,
    /// Unit index in its population.
    pub unit: Vec<u32>,
    /// Rendition index.
    pub rendition: Vec<u64>,
    /// Sampled values (traces only).
    pub value: Vec<f64>,
}

impl ActivityBlock {
    fn extend(&mut self, other: &ActivityBlock) {
        self.time.extend_from_slice(&other.time);
        self.unit.extend_from_slice(&other.unit);
        self.rendition.extend_from_slice(&other.rendition);
        self.value.extend_from_slice(&other.value);
    }
}

/// A final weight matrix, row-major `rows × cols`.
#[derive(Debug, Clone)]
pub struct WeightMatrix {
    /// Projection name.
    pub name: String,
    /// Rows (postsynaptic units).
    pub rows: usize,
    /// Columns (presynaptic units).
    pub cols: usize,
    /// The values.
    pub data: WeightData,
}

/// Weight values in the run's precision.
#[derive(Debug, Clone)]
pub enum WeightData {
    /// Single precision.
    F32(Vec<f32>),
    /// Double precision.
    F64(Vec<f64>),
}

/// A failure writing or reading a recording.
#[derive(Debug, Error)]
pub enum RecorderError {
    /// The output already exists.
    #[error("output `{}` already exists; pass --force to replace it, or choose another --out", .0.display())]
    Exists(PathBuf),
    /// Another process is writing the output.
    #[error(
        "`{}` is being written by another npsim process (it holds the file's lock): wait for that run to end, or choose another --out",
        .0.display()
    )]
    InUse(PathBuf),
    /// A filesystem failure.
    #[error("cannot {action} `{}`: {cause}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// An HDF5 failure.
    #[error("HDF5 error on `{}` while {action}: {message}", path.display())]
    Hdf5 {
        /// The file.
        path: PathBuf,
        /// What was being done.
        action: String,
        /// The library's message.
        message: String,
    },
    /// A run produced a row that does not match its declared metrics (a bug in a task).
    #[error(
        "run `{group}` produced a row of {got} metrics where its layout declares {expected}; this is a bug in the task's metrics, please report it"
    )]
    Row {
        /// The run.
        group: String,
        /// Declared metrics.
        expected: usize,
        /// Values in the row.
        got: usize,
    },
    /// The file is not an npsim recording or lacks something.
    #[error("`{}` is not a readable npsim recording: {message}", path.display())]
    Layout {
        /// The file.
        path: PathBuf,
        /// What is missing.
        message: String,
    },
}

/// The library's message for a failed write, with what to do when the disk is full or the
/// file reached a size limit (the partial file is intact up to the last flush).
fn write_failure(e: &hdf5_pure::Error) -> String {
    let full = match e {
        hdf5_pure::Error::Io(io) => matches!(
            io.kind(),
            std::io::ErrorKind::StorageFull
                | std::io::ErrorKind::FileTooLarge
                | std::io::ErrorKind::QuotaExceeded
        ),
        _ => false,
    };
    if full {
        format!(
            "{e}: the disk is full or the file reached a size limit (`ulimit -f`, a quota); the file keeps every row up to the last flush: make room, then `npsim run --resume` finishes the sweep"
        )
    } else {
        e.to_string()
    }
}

/// The `.partial` path an output is written to until complete.
pub fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// Writes one scenario's recording.
pub struct Recorder {
    file: Option<File>,
    path: PathBuf,
    partial: PathBuf,
    runs: Vec<RunBuffers>,
}

struct RunBuffers {
    group: String,
    metrics: Vec<String>,
    pending: Vec<Vec<f64>>,
    recording_group: Option<String>,
    activity: Vec<(String, bool)>,
    pending_activity: Vec<ActivityBlock>,
    /// Metric rows and activity events written so far (the committed counts after a flush).
    rows_written: u64,
    events_written: Vec<u64>,
}

/// Sets an empty dataset's element type.
type TypedColumn = fn(&mut hdf5_pure::DatasetBuilder);

/// Creates, under `parent`, the nested groups of recorded activity (paths split into link
/// names, e.g. `["traces", "ra", "state"]`), each leaf with its empty columns.
fn add_activity_groups(parent: &mut hdf5_pure::GroupBuilder, entries: &[(Vec<&str>, bool)]) {
    let mut names: Vec<&str> = entries.iter().map(|(path, _)| path[0]).collect();
    names.dedup();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let mut group = parent.create_group(name);
        let below: Vec<(Vec<&str>, bool)> = entries
            .iter()
            .filter(|(path, _)| path[0] == name && path.len() > 1)
            .map(|(path, valued)| (path[1..].to_vec(), *valued))
            .collect();
        if let Some((_, valued)) = entries
            .iter()
            .find(|(path, _)| path[0] == name && path.len() == 1)
        {
            let mut columns: Vec<(&str, TypedColumn)> = vec![
                ("time", |b| {
                    b.with_f64_data(&[]);
                }),
                ("unit", |b| {
                    b.with_u32_data(&[]);
                }),
                ("rendition", |b| {
                    b.with_u64_data(&[]);
                }),
            ];
            if *valued {
                columns.push(("value", |b| {
                    b.with_f64_data(&[]);
                }));
            }
            group.set_attr("events_committed", AttrValue::I64(0));
            for (column, typed) in columns {
                let ds = group.create_dataset(column);
                typed(ds);
                ds.with_shape(&[0])
                    .with_maxshape(&[MaxExtent::Unlimited])
                    .with_chunks(&[ACTIVITY_CHUNK]);
            }
        }
        add_activity_groups(&mut group, &below);
        parent.add_group(group.finish());
    }
}

/// Chunk length of the activity datasets (events per chunk).
const ACTIVITY_CHUNK: u64 = 4096;

fn chunk_len(rows_per_sync: u64) -> u64 {
    rows_per_sync.clamp(64, 4096)
}

impl Recorder {
    /// Creates `<path>.partial` with the skeleton of every run. Refuses if `path` (or a
    /// leftover `.partial`) exists unless `force`; an existing `path` is only replaced when the
    /// new recording is complete.
    pub fn create(
        path: &Path,
        force: bool,
        header: &[(String, Attr)],
        runs: &[RunLayout],
        rows_per_sync: u64,
    ) -> Result<Self, RecorderError> {
        let partial = partial_path(path);
        // A live writer holds the lock of its `.partial` file: never write over it, even with
        // `force` (a file left by a crashed run has no lock and may be replaced).
        if being_written(&partial) {
            return Err(RecorderError::InUse(partial));
        }
        if !force {
            for p in [path, partial.as_path()] {
                if p.exists() {
                    return Err(RecorderError::Exists(p.to_path_buf()));
                }
            }
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|cause| RecorderError::Io {
                action: "create the folder of",
                path: path.into(),
                cause,
            })?;
        }
        let hdf5 = |action: &str| {
            let partial = partial.clone();
            let action = action.to_string();
            move |e: hdf5_pure::Error| RecorderError::Hdf5 {
                path: partial,
                action,
                message: write_failure(&e),
            }
        };
        let mut builder = FileBuilder::new();
        for (name, value) in header {
            builder.set_attr(name, attr_to_hdf5(value));
        }
        let chunk = chunk_len(rows_per_sync);
        let mut runs_group = builder.create_group("runs");
        for run in runs {
            let mut group = runs_group.create_group(&run.group);
            for (name, value) in &run.attributes {
                group.set_attr(name, attr_to_hdf5(value));
            }
            group.set_attr("rows_committed", AttrValue::I64(0));
            let mut metrics = group.create_group("metrics");
            for name in &run.metrics {
                metrics
                    .create_dataset(name)
                    .with_f64_data(&[])
                    .with_shape(&[0])
                    .with_maxshape(&[MaxExtent::Unlimited])
                    .with_chunks(&[chunk]);
            }
            group.add_group(metrics.finish());
            if !run.theory.is_empty() {
                let mut theory = group.create_group("theory");
                for (name, values) in &run.theory {
                    theory.create_dataset(name).with_f64_data(values);
                }
                group.add_group(theory.finish());
            }
            let weights = group.create_group("weights");
            group.add_group(weights.finish());
            if let Some(name) = &run.recording_group {
                let recordings = group.create_group(name);
                group.add_group(recordings.finish());
            }
            let activity: Vec<(Vec<&str>, bool)> = run
                .activity
                .iter()
                .map(|(path, valued)| (path.split('/').collect(), *valued))
                .collect();
            add_activity_groups(&mut group, &activity);
            runs_group.add_group(group.finish());
        }
        builder.add_group(runs_group.finish());
        builder.write(&partial).map_err(hdf5("creating the file"))?;
        let access = FileAccessProperties::new().with_sync_policy(SyncPolicy::OnClose);
        let file =
            File::open_rw_with_options(&partial, access).map_err(hdf5("opening the file for appends"))?;
        let runs = runs
            .iter()
            .map(|r| RunBuffers {
                group: r.group.clone(),
                metrics: r.metrics.clone(),
                pending: vec![Vec::new(); r.metrics.len()],
                recording_group: r.recording_group.clone(),
                activity: r.activity.clone(),
                pending_activity: vec![ActivityBlock::default(); r.activity.len()],
                rows_written: 0,
                events_written: vec![0; r.activity.len()],
            })
            .collect();
        Ok(Self {
            file: Some(file),
            path: path.to_path_buf(),
            partial,
            runs,
        })
    }

    fn file(&self) -> &File {
        self.file.as_ref().expect("the recorder is open until close()")
    }

    fn error(&self, action: String) -> impl Fn(hdf5_pure::Error) -> RecorderError + '_ {
        move |e| RecorderError::Hdf5 {
            path: self.partial.clone(),
            action: action.clone(),
            message: write_failure(&e),
        }
    }

    /// Buffers one row of metrics for run `run` (values in the layout's order). A row whose
    /// length differs from the run's declared metrics is refused: it would shift every later
    /// column or leave metrics of different lengths.
    pub fn append(&mut self, run: usize, row: &[f64]) -> Result<(), RecorderError> {
        let state = &mut self.runs[run];
        if row.len() != state.pending.len() {
            return Err(RecorderError::Row {
                group: state.group.clone(),
                expected: state.pending.len(),
                got: row.len(),
            });
        }
        for (buffer, &v) in state.pending.iter_mut().zip(row) {
            buffer.push(v);
        }
        Ok(())
    }

    /// Buffers recorded activity of run `run`, one block per group of its layout, in order.
    pub fn append_activity(&mut self, run: usize, blocks: &[ActivityBlock]) {
        let state = &mut self.runs[run];
        assert_eq!(
            blocks.len(),
            state.pending_activity.len(),
            "one block per recorded group"
        );
        for (pending, block) in state.pending_activity.iter_mut().zip(blocks) {
            pending.extend(block);
        }
    }

    /// Writes buffered metrics and activity of run `run` and updates its `steps_done`.
    pub fn flush_run(&mut self, run: usize, steps_done: u64) -> Result<(), RecorderError> {
        let pending: Vec<Vec<f64>> = self.runs[run].pending.iter_mut().map(std::mem::take).collect();
        let activity: Vec<ActivityBlock> = self.runs[run]
            .pending_activity
            .iter_mut()
            .map(std::mem::take)
            .collect();
        let group = self.runs[run].group.clone();
        for (k, ((path, valued), block)) in self.runs[run].activity.clone().iter().zip(&activity).enumerate()
        {
            if block.time.is_empty() {
                continue;
            }
            self.runs[run].events_written[k] += block.time.len() as u64;
            let append =
                |name: &str, write: &dyn Fn(&mut hdf5_pure::Dataset) -> Result<(), hdf5_pure::Error>| {
                    let mut ds = self
                        .file()
                        .dataset(&format!("runs/{group}/{path}/{name}"))
                        .map_err(self.error(format!("opening `{path}/{name}` of `{group}`")))?;
                    write(&mut ds).map_err(self.error(format!("appending to `{path}/{name}` of `{group}`")))
                };
            append("time", &|ds| ds.append(&block.time))?;
            append("unit", &|ds| ds.append(&block.unit))?;
            append("rendition", &|ds| ds.append(&block.rendition))?;
            if *valued {
                append("value", &|ds| ds.append(&block.value))?;
            }
        }
        if !pending[0].is_empty() {
            self.runs[run].rows_written += pending[0].len() as u64;
            for (name, values) in self.runs[run].metrics.clone().iter().zip(&pending) {
                let mut ds = self
                    .file()
                    .dataset(&format!("runs/{group}/metrics/{name}"))
                    .map_err(self.error(format!("opening metric `{name}` of `{group}`")))?;
                ds.append(values)
                    .map_err(self.error(format!("appending to metric `{name}` of `{group}`")))?;
            }
        }
        let g = self
            .file()
            .group(&format!("runs/{group}"))
            .map_err(self.error(format!("opening `{group}`")))?;
        // The appends above are in the file already, one dataset after another; the counts
        // below are staged and published together by the commit, so after a crash at any
        // moment they name a prefix every dataset holds (docs/hdf5-layout.md).
        g.set_attr("steps_done", AttrValue::I64(steps_done as i64))
            .map_err(self.error(format!("updating `{group}`")))?;
        g.set_attr(
            "rows_committed",
            AttrValue::I64(self.runs[run].rows_written as i64),
        )
        .map_err(self.error(format!("updating `{group}`")))?;
        for (k, (path, _)) in self.runs[run].activity.clone().iter().enumerate() {
            let events = self.runs[run].events_written[k] as i64;
            self.file()
                .group(&format!("runs/{group}/{path}"))
                .and_then(|a| a.set_attr("events_committed", AttrValue::I64(events)))
                .map_err(self.error(format!("updating `{path}` of `{group}`")))?;
        }
        self.file().commit().map_err(self.error("committing".into()))?;
        self.file().sync().map_err(self.error("syncing".into()))
    }

    /// Records the end of run `run`: flushes its metrics, sets `status`, `steps_done` and any
    /// extra attributes, and writes its final weights.
    pub fn finish_run(
        &mut self,
        run: usize,
        status: &str,
        steps_done: u64,
        extra: &[(String, Attr)],
        weights: &[WeightMatrix],
        recordings: &[WeightMatrix],
    ) -> Result<(), RecorderError> {
        let group = self.runs[run].group.clone();
        let g = self
            .file()
            .group(&format!("runs/{group}"))
            .map_err(self.error(format!("opening `{group}`")))?;
        g.set_attr("status", AttrValue::VarLenString(status.into()))
            .map_err(self.error(format!("updating `{group}`")))?;
        for (name, value) in extra {
            g.set_attr(name, attr_to_hdf5(value))
                .map_err(self.error(format!("updating `{group}`")))?;
        }
        let recording_group = self.runs[run].recording_group.clone();
        let placed = weights.iter().map(|w| ("weights", w)).chain(
            recording_group
                .iter()
                .flat_map(|g| recordings.iter().map(move |w| (g.as_str(), w))),
        );
        for (place, w) in placed {
            let shape = [w.rows as u64, w.cols as u64];
            self.file()
                .root()
                .create_dataset(&format!("runs/{group}/{place}/{}", w.name), |b| {
                    match &w.data {
                        WeightData::F32(v) => b.with_f32_data(v),
                        WeightData::F64(v) => b.with_f64_data(v),
                    }
                    .with_shape(&shape);
                })
                .map_err(self.error(format!("writing {place} `{}` of `{group}`", w.name)))?;
        }
        self.flush_run(run, steps_done)
    }

    /// Closes the file and renames it to its final name (replacing any old file there).
    pub fn close(self) -> Result<PathBuf, RecorderError> {
        let (partial, path) = self.close_file()?;
        std::fs::rename(&partial, &path).map_err(|cause| RecorderError::Io {
            action: "rename the finished recording to",
            path: path.clone(),
            cause,
        })?;
        Ok(path)
    }

    /// Closes the file but leaves it as `<file>.partial` (an interrupted scenario).
    pub fn close_partial(self) -> Result<PathBuf, RecorderError> {
        Ok(self.close_file()?.0)
    }

    fn close_file(mut self) -> Result<(PathBuf, PathBuf), RecorderError> {
        let file = self.file.take().expect("open until close");
        file.close().map_err(|e| RecorderError::Hdf5 {
            path: self.partial.clone(),
            action: "closing".into(),
            message: write_failure(&e),
        })?;
        Ok((self.partial.clone(), self.path.clone()))
    }
}

/// Writes standalone theory curves (`npsim theory trajectory --out x.h5`).
pub fn write_curves(
    path: &Path,
    attributes: &[(String, Attr)],
    curves: &[(String, Vec<f64>)],
) -> Result<(), RecorderError> {
    let mut builder = FileBuilder::new();
    for (name, value) in attributes {
        builder.set_attr(name, attr_to_hdf5(value));
    }
    let mut theory = builder.create_group("theory");
    for (name, values) in curves {
        theory.create_dataset(name).with_f64_data(values);
    }
    builder.add_group(theory.finish());
    builder.write(path).map_err(|e| RecorderError::Hdf5 {
        path: path.into(),
        action: "writing".into(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_of_the_wrong_length_is_refused_and_the_metrics_stay_aligned() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.h5");
        let layout = RunLayout {
            group: "run_000".into(),
            attributes: Vec::new(),
            metrics: vec!["step".into(), "epsilon".into()],
            theory: Vec::new(),
            recording_group: None,
            activity: Vec::new(),
        };
        let header = [("npsim_version".to_string(), Attr::Text("test".into()))];
        let mut recorder = Recorder::create(&path, false, &header, &[layout], 8).unwrap();
        recorder.append(0, &[0.0, 1.0]).unwrap();
        let short = recorder.append(0, &[1.0]).unwrap_err();
        assert_eq!(
            short.to_string(),
            "run `run_000` produced a row of 1 metrics where its layout declares 2; this is a bug in the task's metrics, please report it"
        );
        assert!(recorder.append(0, &[1.0, 2.0, 3.0]).is_err());
        recorder.append(0, &[2.0, 0.5]).unwrap();
        recorder.finish_run(0, "completed", 2, &[], &[], &[]).unwrap();
        let summary = read(&recorder.close().unwrap()).unwrap();
        assert_eq!(summary.runs[0].metrics[0].1, vec![0.0, 2.0]);
        assert_eq!(summary.runs[0].metrics[1].1, vec![1.0, 0.5]);
    }
}
