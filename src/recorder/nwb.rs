//! Writing an NWB 2.x file (Neurodata Without Borders, the format neuroscience shares data in).
//!
//! NWB needs object references in attributes (a ragged column's index names its target), which
//! `hdf5-pure` cannot write; this one file is written with `rust-hdf5` instead
//! (`docs/hdf5-crates.md` has the measurements behind that choice). What goes into the file is
//! decided by [`crate::export`]; this module only lays it out as the NWB schema (core 2.7,
//! hdmf-common 1.8) asks: every typed object carries `namespace`, `neurodata_type` and an
//! `object_id`.

use std::path::{Path, PathBuf};

use rust_hdf5::types::VarLenUnicode;
use rust_hdf5::{H5Dataset, H5File, H5Group};
use sha2::{Digest, Sha256};

use super::RecorderError;

/// The NWB schema version written.
pub const NWB_VERSION: &str = "2.7.0";

/// One time series: values and their times.
#[derive(Debug, Clone)]
pub struct NwbSeries {
    /// Name in its processing module.
    pub name: String,
    /// What it is, and what its time axis counts.
    pub description: String,
    /// Unit of the values.
    pub unit: String,
    /// The values, row-major, time first.
    pub data: Vec<f64>,
    /// Shape of `data` (`[times]`, or `[times, rows, cols]` for matrices).
    pub shape: Vec<usize>,
    /// Times in seconds (or, documented in `description`, training steps). Written as
    /// `starting_time` and `rate` when evenly spaced.
    pub timestamps: Vec<f64>,
}

/// A processing module: one run's time series.
#[derive(Debug, Clone)]
pub struct NwbModule {
    /// Name under `/processing`.
    pub name: String,
    /// What it holds.
    pub description: String,
    /// Its series.
    pub series: Vec<NwbSeries>,
}

/// The units table: one row per recorded unit, with its spike times.
#[derive(Debug, Clone, Default)]
pub struct NwbUnits {
    /// The run each unit belongs to.
    pub run: Vec<String>,
    /// Its population.
    pub population: Vec<String>,
    /// Its index in the population.
    pub unit_index: Vec<i64>,
    /// Its spike times, seconds, ascending.
    pub spike_times: Vec<Vec<f64>>,
    /// What the times count from.
    pub description: String,
    /// The smallest difference between two spike times (the simulation step), seconds.
    pub resolution: Option<f64>,
}

/// A matrix kept as analysis data: a `DynamicTable` with one row per matrix row and a
/// `values` column holding the row.
#[derive(Debug, Clone)]
pub struct NwbMatrix {
    /// Name under `/analysis`.
    pub name: String,
    /// What it is.
    pub description: String,
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Row-major values.
    pub data: Vec<f64>,
}

/// Everything an NWB file made by npsim holds.
#[derive(Debug, Clone)]
pub struct NwbContent {
    /// A globally unique identifier of the session.
    pub identifier: String,
    /// One line on what was simulated.
    pub session_description: String,
    /// ISO 8601 start of the session (when the recording was created).
    pub session_start_time: String,
    /// ISO 8601 creation time of this file.
    pub file_create_date: String,
    /// Text datasets under `/general` (`source_script`, `notes`, ...).
    pub general: Vec<(String, String)>,
    /// Keywords (`/general/keywords`).
    pub keywords: Vec<String>,
    /// `/general/subject`: its `subject_id`, `description`, and `sex` (`O`: other).
    pub subject: (String, String),
    /// The scenario's file name (the `file_name` of `/general/source_script`).
    pub source_file_name: String,
    /// Processing modules.
    pub modules: Vec<NwbModule>,
    /// Units and their spikes, if any were recorded.
    pub units: Option<NwbUnits>,
    /// Matrices under `/analysis` (final weights).
    pub analysis: Vec<NwbMatrix>,
}

/// A UUID (version 4 layout) derived from the file's identifier and the object's path, so that
/// exporting the same recording twice gives the same ids.
fn object_id(identifier: &str, path: &str) -> String {
    let digest = Sha256::digest(format!("{identifier}\u{0}{path}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

type Fail<'a> = &'a dyn Fn(&str, rust_hdf5::Hdf5Error) -> RecorderError;

fn typed_group(
    group: &H5Group,
    id: &str,
    path: &str,
    namespace: &str,
    kind: &str,
    fail: Fail,
) -> Result<(), RecorderError> {
    let at = |e| fail(path, e);
    group.set_attr_string("namespace", namespace).map_err(at)?;
    group.set_attr_string("neurodata_type", kind).map_err(at)?;
    group
        .set_attr_string("object_id", &object_id(id, path))
        .map_err(at)
}

fn text_attr(ds: &H5Dataset, name: &str, value: &str) -> Result<(), rust_hdf5::Hdf5Error> {
    ds.new_attr::<VarLenUnicode>()
        .shape(())
        .create(name)?
        .write_scalar(&VarLenUnicode(value.to_string()))
}

fn number_attr<T: rust_hdf5::types::H5Type + 'static>(
    ds: &H5Dataset,
    name: &str,
    value: T,
) -> Result<(), rust_hdf5::Hdf5Error> {
    ds.new_attr::<T>().shape(()).create(name)?.write_numeric(&value)
}

fn typed_dataset(
    ds: &H5Dataset,
    id: &str,
    path: &str,
    namespace: &str,
    kind: &str,
) -> Result<(), rust_hdf5::Hdf5Error> {
    text_attr(ds, "namespace", namespace)?;
    text_attr(ds, "neurodata_type", kind)?;
    text_attr(ds, "object_id", &object_id(id, path))
}

/// Writes `values` into `ds`. An empty dataset (a run with no committed rows yet) is left
/// unwritten: rust-hdf5 refuses a write of nothing.
fn fill<T: rust_hdf5::types::H5Type>(ds: &H5Dataset, values: &[T]) -> Result<(), rust_hdf5::Hdf5Error> {
    if values.is_empty() {
        Ok(())
    } else {
        ds.write_raw(values)
    }
}

fn f64_dataset(group: &H5Group, name: &str, values: &[f64]) -> Result<H5Dataset, rust_hdf5::Hdf5Error> {
    let ds = group.new_dataset::<f64>().shape([values.len()]).create(name)?;
    fill(&ds, values)?;
    Ok(ds)
}

/// Writes `content` to `out` (through `<out>.partial`, renamed when complete).
pub fn write_nwb(out: &Path, content: &NwbContent) -> Result<PathBuf, RecorderError> {
    let partial = super::partial_path(out);
    let fail = |what: &str, e: rust_hdf5::Hdf5Error| RecorderError::Hdf5 {
        path: partial.clone(),
        action: format!("writing `{what}`"),
        message: e.to_string(),
    };
    let fail: Fail = &fail;
    let id = content.identifier.as_str();
    let file = H5File::create(&partial).map_err(|e| fail("/", e))?;
    let root = file.root_group();
    let at = |what: &'static str| move |e| fail(what, e);
    file.set_attr_string("nwb_version", NWB_VERSION)
        .map_err(at("/"))?;
    typed_group(&root, id, "/", "core", "NWBFile", fail)?;
    for (name, value) in [
        ("identifier", content.identifier.as_str()),
        ("session_description", &content.session_description),
        ("session_start_time", &content.session_start_time),
        ("timestamps_reference_time", &content.session_start_time),
        ("file_create_date", &content.file_create_date),
    ] {
        file.write_vlen_strings(name, &[value])
            .map_err(|e| fail(name, e))?;
    }
    for name in ["acquisition", "analysis", "processing", "stimulus", "general"] {
        file.create_group(name).map_err(|e| fail(name, e))?;
    }
    let stimulus = root.group("stimulus").map_err(at("stimulus"))?;
    for name in ["presentation", "templates"] {
        stimulus.create_group(name).map_err(|e| fail(name, e))?;
    }

    let general = root.group("general").map_err(at("general"))?;
    for (name, text) in &content.general {
        let ds = general
            .write_vlen_strings(name, &[text])
            .map_err(|e| fail(name, e))?;
        if name == "source_script" {
            text_attr(&ds, "file_name", &content.source_file_name).map_err(|e| fail(name, e))?;
        }
    }

    let keywords: Vec<&str> = content.keywords.iter().map(String::as_str).collect();
    general
        .write_vlen_strings("keywords", &keywords)
        .map_err(at("keywords"))?;
    let subject = general.create_group("subject").map_err(at("subject"))?;
    typed_group(&subject, id, "/general/subject", "core", "Subject", fail)?;
    for (name, value) in [
        ("subject_id", content.subject.0.as_str()),
        ("description", &content.subject.1),
        ("sex", "O"),
        // A simulated circuit comes into being when its simulation starts.
        ("date_of_birth", &content.session_start_time),
    ] {
        subject
            .write_vlen_strings(name, &[value])
            .map_err(|e| fail("/general/subject", e))?;
    }

    let processing = root.group("processing").map_err(at("processing"))?;
    for module in &content.modules {
        let path = format!("/processing/{}", module.name);
        let g = processing
            .create_group(&module.name)
            .map_err(|e| fail(&path, e))?;
        typed_group(&g, id, &path, "core", "ProcessingModule", fail)?;
        g.set_attr_string("description", &module.description)
            .map_err(|e| fail(&path, e))?;
        for series in &module.series {
            let path = format!("{path}/{}", series.name);
            write_series(&g, id, &path, series, fail)?;
        }
    }

    if let Some(units) = &content.units {
        write_units(&file, id, units, fail)?;
    }

    let analysis = root.group("analysis").map_err(at("analysis"))?;
    for matrix in &content.analysis {
        write_matrix(&analysis, id, matrix, fail)?;
    }
    file.close().map_err(|e| fail("/", e))?;
    std::fs::rename(&partial, out).map_err(|cause| RecorderError::Io {
        action: "rename the finished NWB file to",
        path: out.to_path_buf(),
        cause,
    })?;
    Ok(out.to_path_buf())
}

/// A `TimeSeries` group named `series.name` under `parent` (at `path`).
fn write_series(
    parent: &H5Group,
    id: &str,
    path: &str,
    series: &NwbSeries,
    fail: Fail,
) -> Result<(), RecorderError> {
    let s = parent.create_group(&series.name).map_err(|e| fail(path, e))?;
    typed_group(&s, id, path, "core", "TimeSeries", fail)?;
    let times = &series.timestamps;
    let step = if times.len() > 1 { times[1] - times[0] } else { 0.0 };
    let regular = step > 0.0
        && times
            .windows(2)
            .all(|w| ((w[1] - w[0]) - step).abs() <= 1e-9 * step.abs().max(w[1].abs()));
    let write = || -> Result<(), rust_hdf5::Hdf5Error> {
        s.set_attr_string("description", &series.description)?;
        s.set_attr_string("comments", "no comments")?;
        let data = s.new_dataset::<f64>().shape(&series.shape).create("data")?;
        fill(&data, &series.data)?;
        text_attr(&data, "unit", &series.unit)?;
        number_attr(&data, "conversion", 1.0f32)?;
        number_attr(&data, "offset", 0.0f32)?;
        number_attr(&data, "resolution", -1.0f32)?;
        if regular {
            let start = s.new_dataset::<f64>().scalar().create("starting_time")?;
            fill(&start, &[times[0]])?;
            number_attr(&start, "rate", (1.0 / step) as f32)?;
            text_attr(&start, "unit", "seconds")
        } else {
            let stamps = f64_dataset(&s, "timestamps", times)?;
            number_attr(&stamps, "interval", 1i32)?;
            text_attr(&stamps, "unit", "seconds")
        }
    };
    write().map_err(|e| fail(path, e))
}

/// A `DynamicTable` under `/analysis`: rows `0..rows` (`id`) and the column `values`.
fn write_matrix(analysis: &H5Group, id: &str, m: &NwbMatrix, fail: Fail) -> Result<(), RecorderError> {
    let path = format!("/analysis/{}", m.name);
    let g = analysis.create_group(&m.name).map_err(|e| fail(&path, e))?;
    typed_group(&g, id, &path, "hdmf-common", "DynamicTable", fail)?;
    let write = || -> Result<(), rust_hdf5::Hdf5Error> {
        g.set_attr_string("description", &m.description)?;
        g.set_attr_string_array("colnames", &["values"])?;
        let ids: Vec<i64> = (0..m.rows as i64).collect();
        let ds = g.new_dataset::<i64>().shape([m.rows]).create("id")?;
        fill(&ds, &ids)?;
        typed_dataset(
            &ds,
            id,
            &format!("{path}/id"),
            "hdmf-common",
            "ElementIdentifiers",
        )?;
        let ds = g.new_dataset::<f64>().shape([m.rows, m.cols]).create("values")?;
        fill(&ds, &m.data)?;
        typed_dataset(&ds, id, &format!("{path}/values"), "hdmf-common", "VectorData")?;
        text_attr(&ds, "description", "the row's values")
    };
    write().map_err(|e| fail(&path, e))
}

fn write_units(file: &H5File, id: &str, units: &NwbUnits, fail: Fail) -> Result<(), RecorderError> {
    let g = file.create_group("units").map_err(|e| fail("/units", e))?;
    typed_group(&g, id, "/units", "core", "Units", fail)?;
    let write = || -> Result<(), rust_hdf5::Hdf5Error> {
        g.set_attr_string("description", &units.description)?;
        g.set_attr_string_array("colnames", &["spike_times", "run", "population", "unit_index"])?;
        let rows = units.run.len();
        let ids: Vec<i64> = (0..rows as i64).collect();
        let ds = g.new_dataset::<i64>().shape([rows]).create("id")?;
        fill(&ds, &ids)?;
        typed_dataset(&ds, id, "/units/id", "hdmf-common", "ElementIdentifiers")?;
        let times: Vec<f64> = units.spike_times.iter().flatten().copied().collect();
        let ds = f64_dataset(&g, "spike_times", &times)?;
        typed_dataset(&ds, id, "/units/spike_times", "hdmf-common", "VectorData")?;
        text_attr(&ds, "description", "spike times of each unit, seconds")?;
        if let Some(resolution) = units.resolution {
            number_attr(&ds, "resolution", resolution)?;
        }
        let mut end = 0u64;
        let index: Vec<u64> = units
            .spike_times
            .iter()
            .map(|t| {
                end += t.len() as u64;
                end
            })
            .collect();
        let ds = g.new_dataset::<u64>().shape([rows]).create("spike_times_index")?;
        fill(&ds, &index)?;
        typed_dataset(&ds, id, "/units/spike_times_index", "hdmf-common", "VectorIndex")?;
        text_attr(
            &ds,
            "description",
            "index into spike_times: where each unit's spikes end",
        )?;
        ds.new_attr::<u64>()
            .shape(())
            .create("target")?
            .write_object_references(&["/units/spike_times"])?;
        for (name, values, description) in [
            (
                "run",
                &units.run,
                "the run (group under /processing) the unit belongs to",
            ),
            ("population", &units.population, "the unit's population"),
        ] {
            let strings: Vec<&str> = values.iter().map(String::as_str).collect();
            let ds = g.write_vlen_strings(name, &strings)?;
            typed_dataset(&ds, id, &format!("/units/{name}"), "hdmf-common", "VectorData")?;
            text_attr(&ds, "description", description)?;
        }
        let ds = g.new_dataset::<i64>().shape([rows]).create("unit_index")?;
        fill(&ds, &units.unit_index)?;
        typed_dataset(&ds, id, "/units/unit_index", "hdmf-common", "VectorData")?;
        text_attr(&ds, "description", "the unit's index in its population")
    };
    write().map_err(|e| fail("/units", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A series with no values yet (a run of an interrupted sweep with no committed rows) is
    /// written as an empty dataset, not refused.
    #[test]
    fn empty_series_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let empty = NwbSeries {
            name: "epsilon".into(),
            description: "none yet".into(),
            unit: "a.u.".into(),
            data: Vec::new(),
            shape: vec![0],
            timestamps: Vec::new(),
        };
        let content = NwbContent {
            identifier: "npsim:test".into(),
            session_description: "test".into(),
            session_start_time: "2026-11-30T00:00:00Z".into(),
            file_create_date: "2026-11-30T00:00:00Z".into(),
            general: vec![("notes".into(), "none".into())],
            keywords: vec!["npsim".into()],
            subject: ("npsim:test".into(), "a test".into()),
            source_file_name: "t.ron".into(),
            modules: vec![NwbModule {
                name: "run_000".into(),
                description: "no rows".into(),
                series: vec![empty],
            }],
            units: None,
            analysis: Vec::new(),
        };
        let out = dir.path().join("t.nwb");
        write_nwb(&out, &content).unwrap();
        assert!(out.exists() && !super::super::partial_path(&out).exists());
    }

    #[test]
    fn object_ids_are_version_4_uuids_fixed_by_identifier_and_path() {
        let a = object_id("npsim-x", "/units");
        assert_eq!(a, object_id("npsim-x", "/units"));
        assert_ne!(a, object_id("npsim-x", "/units/id"));
        assert_ne!(a, object_id("npsim-y", "/units"));
        let groups: Vec<&str> = a.split('-').collect();
        assert_eq!(
            groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(groups[2].starts_with('4'));
        assert!("89ab".contains(&groups[3][..1]));
    }
}
