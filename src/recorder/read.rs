//! Reading recordings back: npsim's own reader behind `inspect`, `analyze`, `--resume` and
//! `plot`. Every metric is cut to the committed row count, every activity column to its
//! committed event count (`docs/hdf5-layout.md`).

use std::collections::HashMap;
use std::path::Path;

use hdf5_pure::{AttrValue, File};

use super::{ActivityBlock, Attr, RecorderError, attr_from_hdf5};

/// One run as read back from a recording.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Group name.
    pub group: String,
    /// Its attributes.
    pub attributes: HashMap<String, Attr>,
    /// Each metric's values.
    pub metrics: Vec<(String, Vec<f64>)>,
    /// Each theory curve.
    pub theory: Vec<(String, Vec<f64>)>,
    /// Final weights' names and shapes.
    pub weights: Vec<(String, Vec<u64>)>,
}

/// A recording as read back.
#[derive(Debug, Clone)]
pub struct FileSummary {
    /// Root attributes.
    pub attributes: HashMap<String, Attr>,
    /// The runs, by group name.
    pub runs: Vec<RunSummary>,
    /// Whether a running npsim was writing the file when it was read: its runs then hold the
    /// rows up to that writer's last flush, and `interrupted` means "not finished yet".
    pub being_written: bool,
}

/// Whether a running npsim holds the write lock of `path` (a `.partial` file being written).
/// The lock is advisory (`flock`) and dies with its process, so a file left by a crash is not
/// "being written".
pub fn being_written(path: &Path) -> bool {
    std::fs::File::open(path)
        .is_ok_and(|file| matches!(file.try_lock_shared(), Err(std::fs::TryLockError::WouldBlock)))
}

/// Reads a recording (complete or `.partial`, even one a running npsim is writing).
pub fn read(path: &Path) -> Result<FileSummary, RecorderError> {
    // A read that overlaps a live writer's flush can see that flush half done; the file is
    // whole again a few milliseconds later.
    let mut attempts = 0;
    loop {
        match read_once(path) {
            Err(RecorderError::Hdf5 { .. }) if attempts < 50 && being_written(path) => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            result => return result,
        }
    }
}

fn read_once(path: &Path) -> Result<FileSummary, RecorderError> {
    let fail = |action: &str| {
        let action = action.to_string();
        move |e: hdf5_pure::Error| RecorderError::Hdf5 {
            path: path.into(),
            action,
            message: e.to_string(),
        }
    };
    if !path.exists() {
        return Err(RecorderError::Io {
            action: "open",
            path: path.into(),
            cause: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        });
    }
    let being_written = being_written(path);
    let file = File::open(path).map_err(fail("opening"))?;
    let convert = |attrs: HashMap<String, AttrValue>| {
        attrs
            .iter()
            .filter_map(|(k, v)| attr_from_hdf5(v).map(|a| (k.clone(), a)))
            .collect::<HashMap<_, _>>()
    };
    let attributes = convert(file.root().attrs().map_err(fail("reading root attributes"))?);
    if !attributes.contains_key("npsim_version") {
        return Err(RecorderError::Layout {
            path: path.into(),
            message: "no `npsim_version` attribute at the root".into(),
        });
    }
    let runs_group = file.group("runs").map_err(fail("opening /runs"))?;
    let mut names = runs_group.groups().map_err(fail("listing /runs"))?;
    names.sort();
    let mut runs = Vec::new();
    for group in names {
        let g = file
            .group(&format!("runs/{group}"))
            .map_err(fail("opening a run"))?;
        let attributes = convert(g.attrs().map_err(fail("reading run attributes"))?);
        let read_all = |sub: &str| -> Result<Vec<(String, Vec<f64>)>, RecorderError> {
            let Ok(sg) = file.group(&format!("runs/{group}/{sub}")) else {
                return Ok(Vec::new());
            };
            let mut names = sg.datasets().map_err(fail("listing datasets"))?;
            // `step` first, the rest alphabetical.
            names.sort_by_key(|n| (n != "step", n.clone()));
            names
                .into_iter()
                .map(|n| {
                    let values = file
                        .dataset(&format!("runs/{group}/{sub}/{n}"))
                        .and_then(|d| d.read_f64())
                        .map_err(fail("reading a dataset"))?;
                    Ok((n, values))
                })
                .collect()
        };
        let mut metrics = read_all("metrics")?;
        // A crash between two appends leaves some metrics a row longer: the committed count
        // is what every metric holds (recordings older than it have none).
        if let Some(Attr::Int(rows)) = attributes.get("rows_committed") {
            for (_, values) in &mut metrics {
                values.truncate(*rows as usize);
            }
        }
        let theory = read_all("theory")?;
        let mut weights = Vec::new();
        if let Ok(wg) = file.group(&format!("runs/{group}/weights")) {
            for n in wg.datasets().map_err(fail("listing weights"))? {
                let shape = file
                    .dataset(&format!("runs/{group}/weights/{n}"))
                    .and_then(|d| d.shape())
                    .map_err(fail("reading weights"))?;
                weights.push((n, shape));
            }
        }
        runs.push(RunSummary {
            group,
            attributes,
            metrics,
            theory,
            weights,
        });
    }
    Ok(FileSummary {
        attributes,
        runs,
        being_written,
    })
}

/// Reads one final weight matrix as `f64`, row-major, with its shape.
pub fn read_weights(
    path: &Path,
    group: &str,
    projection: &str,
) -> Result<(Vec<u64>, Vec<f64>), RecorderError> {
    read_recording(path, group, "weights", projection)
}

/// Reads one matrix written at the end of run `group` into its `place` (`weights`, or the
/// task's recording group such as `song`) as `f64`, row-major, with its shape.
pub fn read_recording(
    path: &Path,
    group: &str,
    place: &str,
    name: &str,
) -> Result<(Vec<u64>, Vec<f64>), RecorderError> {
    let fail = |e: hdf5_pure::Error| RecorderError::Hdf5 {
        path: path.into(),
        action: format!("reading {place} `{name}`"),
        message: e.to_string(),
    };
    let file = File::open(path).map_err(fail)?;
    let ds = file
        .dataset(&format!("runs/{group}/{place}/{name}"))
        .map_err(fail)?;
    Ok((ds.shape().map_err(fail)?, ds.read_f64().map_err(fail)?))
}

/// The recorded groups under `kind` (`spikes`) of run `group`: population names.
pub fn activity_groups(path: &Path, group: &str, kind: &str) -> Result<Vec<String>, RecorderError> {
    let fail = |e: hdf5_pure::Error| RecorderError::Hdf5 {
        path: path.into(),
        action: format!("listing `{kind}` of `{group}`"),
        message: e.to_string(),
    };
    let file = File::open(path).map_err(fail)?;
    let Ok(parent) = file.group(&format!("runs/{group}/{kind}")) else {
        return Ok(Vec::new());
    };
    let mut names = parent.groups().map_err(fail)?;
    names.sort();
    Ok(names)
}

/// Reads a group of recorded activity (`spikes/ra`, `traces/ra/state`) of run `group`.
pub fn read_activity(path: &Path, group: &str, activity: &str) -> Result<ActivityBlock, RecorderError> {
    let fail = |e: hdf5_pure::Error| RecorderError::Hdf5 {
        path: path.into(),
        action: format!("reading `{activity}` of `{group}`"),
        message: e.to_string(),
    };
    let file = File::open(path).map_err(fail)?;
    let column = |name: &str| {
        file.dataset(&format!("runs/{group}/{activity}/{name}"))
            .map_err(fail)
    };
    let committed = file
        .group(&format!("runs/{group}/{activity}"))
        .and_then(|g| g.attrs())
        .ok()
        .and_then(|attrs| match attrs.get("events_committed") {
            Some(AttrValue::I64(n)) => Some(*n as usize),
            _ => None,
        });
    let mut block = ActivityBlock {
        time: column("time")?.read::<f64>().map_err(fail)?,
        unit: column("unit")?.read::<u32>().map_err(fail)?,
        rendition: column("rendition")?.read::<u64>().map_err(fail)?,
        value: match file.dataset(&format!("runs/{group}/{activity}/value")) {
            Ok(ds) => ds.read::<f64>().map_err(fail)?,
            Err(_) => Vec::new(),
        },
    };
    if let Some(n) = committed {
        for column in [&mut block.time, &mut block.value] {
            column.truncate(n);
        }
        block.unit.truncate(n);
        block.rendition.truncate(n);
    }
    Ok(block)
}
