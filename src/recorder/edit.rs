//! Edits of closed recordings: the `/summary` of `npsim analyze`, and `npsim merge`, which puts
//! the runs of several part files (cluster array tasks) into one file laid out like a local
//! sweep. Each edit is staged and committed at once; a merge writes `<out>.partial` and renames
//! it when complete, so nothing existing is lost or overwritten half-way.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use hdf5_pure::{DType, File, FileBuilder};

use super::{Attr, RecorderError, attr_from_hdf5, attr_to_hdf5, partial_path};

/// A table of `/summary` (`npsim analyze`): a group of equal-length `f64` columns.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryTable {
    /// Its path under `/summary`, e.g. `runs` or `minimum_training_time/group_000`.
    pub path: String,
    /// The group's attributes.
    pub attributes: Vec<(String, Attr)>,
    /// Its columns.
    pub columns: Vec<(String, Vec<f64>)>,
}

/// Writes (or replaces) `/summary` of a closed recording in one commit.
pub fn write_summary(
    path: &Path,
    attributes: &[(String, Attr)],
    tables: &[SummaryTable],
) -> Result<(), RecorderError> {
    let fail = |action: &'static str| {
        move |e: hdf5_pure::Error| RecorderError::Hdf5 {
            path: path.into(),
            action: action.into(),
            message: e.to_string(),
        }
    };
    let file = File::open_rw(path).map_err(fail("opening the file to write its summary"))?;
    if file.group("summary").is_ok() {
        file.root()
            .delete("summary")
            .map_err(fail("replacing /summary"))?;
    }
    file.root()
        .create_group_with("summary", |summary| {
            for (name, value) in attributes {
                summary.set_attr(name, attr_to_hdf5(value));
            }
            // Parents first: a table's path may name a group that holds other tables.
            let mut parents: Vec<&str> = tables
                .iter()
                .filter_map(|t| t.path.rsplit_once('/').map(|(p, _)| p))
                .collect();
            parents.dedup();
            for parent in parents {
                summary.create_group(parent);
            }
            for table in tables {
                summary.create_group_with(&table.path, |group| {
                    for (name, value) in &table.attributes {
                        group.set_attr(name, attr_to_hdf5(value));
                    }
                    for (name, values) in &table.columns {
                        group.create_dataset(name, |d| {
                            d.with_f64_data(values);
                        });
                    }
                });
            }
        })
        .map_err(fail("staging /summary"))?;
    file.commit().map_err(fail("writing /summary"))?;
    file.close().map_err(fail("closing after writing /summary"))
}

/// The `target` and `smoothing` attributes of a recording's `/summary`, where it has them.
pub fn summary_settings(path: &Path) -> (Option<String>, Option<usize>) {
    let attrs = File::open(path)
        .ok()
        .and_then(|f| f.group("summary").ok()?.attrs().ok());
    let Some(attrs) = attrs else { return (None, None) };
    let target = attrs
        .get("target")
        .and_then(attr_from_hdf5)
        .map(|a| a.to_string());
    let smoothing = match attrs.get("smoothing").and_then(attr_from_hdf5) {
        Some(Attr::Int(n)) if n > 0 => Some(n as usize),
        _ => None,
    };
    (target, smoothing)
}

/// A recording's root attributes.
pub fn root_attributes(path: &Path) -> Result<HashMap<String, Attr>, RecorderError> {
    let fail = |e: hdf5_pure::Error| RecorderError::Hdf5 {
        path: path.into(),
        action: "reading the root attributes".into(),
        message: e.to_string(),
    };
    let file = File::open(path).map_err(fail)?;
    let attributes = file.root().attrs().map_err(fail)?;
    Ok(attributes
        .iter()
        .filter_map(|(k, v)| attr_from_hdf5(v).map(|a| (k.clone(), a)))
        .collect())
}

/// Copies group `path` of `source` (its attributes, datasets and subgroups) into `into`.
/// `hdf5-pure` cannot copy a run group's many attributes across files, so the group is
/// rebuilt from what is read: the datasets keep their names, element types and shapes.
fn copy_group(source: &File, path: &str, into: &mut hdf5_pure::GroupBuilder) -> Result<(), hdf5_pure::Error> {
    let group = source.group(path)?;
    for (name, value) in group.attrs()? {
        into.set_attr(&name, value);
    }
    for name in group.datasets()? {
        let ds = source.dataset(&format!("{path}/{name}"))?;
        let shape = ds.shape()?;
        let builder = into.create_dataset(&name);
        match ds.dtype()? {
            DType::F32 => builder.with_f32_data(&ds.read_f32()?),
            DType::U32 => builder.with_u32_data(&ds.read_u32()?),
            DType::U64 => builder.with_u64_data(&ds.read_u64()?),
            _ => builder.with_f64_data(&ds.read_f64()?),
        };
        builder.with_shape(&shape);
    }
    for name in group.groups()? {
        let mut child = into.create_group(&name);
        copy_group(source, &format!("{path}/{name}"), &mut child)?;
        into.add_group(child.finish());
    }
    Ok(())
}

/// Writes `out` with root `attributes` and the run groups `parts` name (`(file, [run_000, ..])`),
/// copied whole. Refuses an existing `out` unless `force`; writes `<out>.partial` first.
pub fn merge_runs(
    out: &Path,
    force: bool,
    attributes: &[(String, Attr)],
    parts: &[(PathBuf, Vec<String>)],
) -> Result<PathBuf, RecorderError> {
    if out.exists() && !force {
        return Err(RecorderError::Exists(out.to_path_buf()));
    }
    let partial = partial_path(out);
    let fail = |path: &Path, action: String| {
        let path = path.to_path_buf();
        move |e: hdf5_pure::Error| RecorderError::Hdf5 {
            path,
            action,
            message: e.to_string(),
        }
    };
    let mut builder = FileBuilder::new();
    for (name, value) in attributes {
        builder.set_attr(name, attr_to_hdf5(value));
    }
    let mut runs = builder.create_group("runs");
    for (part, groups) in parts {
        let source = File::open(part).map_err(fail(part, "opening a part".into()))?;
        for group in groups {
            let mut run = runs.create_group(group);
            copy_group(&source, &format!("runs/{group}"), &mut run)
                .map_err(fail(part, format!("reading `runs/{group}`")))?;
            runs.add_group(run.finish());
        }
    }
    builder.add_group(runs.finish());
    builder
        .write(&partial)
        .map_err(fail(&partial, "writing the merged file".into()))?;
    std::fs::rename(&partial, out).map_err(|cause| RecorderError::Io {
        action: "rename",
        path: partial.clone(),
        cause,
    })?;
    Ok(out.to_path_buf())
}
