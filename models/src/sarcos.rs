//! SARCOS inverse dynamics (Vijayakumar & Schaal 2000), read from the MATLAB v5 files
//! `sarcos_inv.mat` (variable `sarcos_inv`, 44,484 × 28) and `sarcos_inv_test.mat`
//! (`sarcos_inv_test`, 4,449 × 28): columns 0–20 are the inputs (7 joint positions, 7
//! velocities, 7 accelerations), columns 21–27 the 7 torques to predict.
//!
//! # The task
//! Regression with a linear readout and the squared error. The training set is shuffled once
//! with the run's seed (stream `task/shuffle`) and cycled in that order (the paper's scripts).
//!
//! # Metrics
//! | name | definition |
//! |------|------------|
//! | `test_loss` | mean over test samples **and outputs** of the squared error (the paper's reported error; its target is 5.0) |
//! | `norm_<projection>` | squared Frobenius norm of each projection's weights |
//! | `participation_<population>` | participation ratio of each hidden population on the first 1,000 test samples |

use std::path::{Path, PathBuf};
use std::sync::Arc;

use nalgebra::DMatrix;
use npsim_core::{Attr, Entry, Measure, Real, SeedStreams};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::data::{DataError, read_data_file};
use crate::mnist::DATA_DIR_PARAM;
use crate::registry::{MetricSpec, Prepared, TaskContext, TaskError, TaskSpec};
use crate::task::{Task, participation_ratios, structure_metric_names, weight_norms};

/// Inputs per sample.
pub const INPUTS: usize = 21;
/// Targets per sample.
pub const OUTPUTS: usize = 7;

/// A numeric matrix read from a MAT file, column-major.
#[derive(Debug, Clone, PartialEq)]
pub struct MatMatrix {
    /// Variable name.
    pub name: String,
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Values, column-major.
    pub data: Vec<f64>,
}

/// Reads every numeric 2-D matrix of a MATLAB v5 (Level 5) MAT file, compressed or not.
pub fn read_mat_v5(path: &Path) -> Result<Vec<MatMatrix>, DataError> {
    let bytes = read_data_file(
        path,
        "run `npsim data fetch sarcos`, or put sarcos_inv.mat and sarcos_inv_test.mat in the data directory (scenario `data_dir`, --data-dir or NPSIM_DATA)",
    )?;
    parse_mat_v5(path, &bytes)
}

/// Decodes every numeric 2-D matrix of the contents of a MAT v5 file (`path` names it in
/// errors).
pub fn parse_mat_v5(path: &Path, bytes: &[u8]) -> Result<Vec<MatMatrix>, DataError> {
    let corrupt = |problem: String| DataError::Corrupt {
        path: path.to_path_buf(),
        problem,
    };
    if bytes.len() < 128 {
        return Err(corrupt(format!(
            "{} bytes is shorter than the 128-byte MAT header",
            bytes.len()
        )));
    }
    match &bytes[126..128] {
        b"IM" => {}
        b"MI" => {
            return Err(corrupt(
                "big-endian MAT files are not supported; re-save it on a little-endian machine".into(),
            ));
        }
        _ => {
            return Err(corrupt(
                "no MAT v5 endian indicator at byte 126 (a v7.3 or non-MAT file?)".into(),
            ));
        }
    }
    let mut matrices = Vec::new();
    elements(&bytes[128..], &mut matrices, 0).map_err(corrupt)?;
    Ok(matrices)
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, String> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| "truncated element tag".to_string())
}

/// Splits a tag: (type, byte count, header length).
fn tag(b: &[u8], at: usize) -> Result<(u32, usize, usize), String> {
    let first = u32_at(b, at)?;
    if first >> 16 != 0 {
        // Small data element: type and size share the first word, data in the next four bytes.
        Ok((first & 0xffff, (first >> 16) as usize, 4))
    } else {
        Ok((first, u32_at(b, at + 4)? as usize, 8))
    }
}

const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;

/// Compressed elements inside compressed elements: MATLAB writes one level.
const MOST_NESTED_COMPRESSION: usize = 4;

fn elements(b: &[u8], out: &mut Vec<MatMatrix>, depth: usize) -> Result<(), String> {
    let mut at = 0;
    while at + 8 <= b.len() {
        let (kind, size, header) = tag(b, at)?;
        let body = b.get(at + header..(at + header).saturating_add(size)).ok_or_else(|| {
            format!(
                "element at byte {} runs past the end of the file (truncated?)",
                at + 128
            )
        })?;
        match kind {
            MI_COMPRESSED => {
                if depth == MOST_NESTED_COMPRESSION {
                    return Err(format!(
                        "compressed elements nested more than {MOST_NESTED_COMPRESSION} deep"
                    ));
                }
                let inflated = crate::data::inflate_bounded(flate2::read::ZlibDecoder::new(body))
                    .map_err(|e| format!("compressed element: {e}"))?;
                elements(&inflated, out, depth + 1)?;
                at += header + size;
            }
            MI_MATRIX => {
                if let Some(m) = matrix(body)? {
                    out.push(m);
                }
                at += header + size.div_ceil(8) * 8;
            }
            _ => at += header + size.div_ceil(8) * 8,
        }
    }
    Ok(())
}

fn numbers(kind: u32, data: &[u8]) -> Result<Vec<f64>, String> {
    let each = |width: usize, f: &dyn Fn(&[u8]) -> f64| data.chunks_exact(width).map(f).collect::<Vec<f64>>();
    Ok(match kind {
        1 => each(1, &|c| f64::from(c[0] as i8)),
        2 => each(1, &|c| f64::from(c[0])),
        3 => each(2, &|c| f64::from(i16::from_le_bytes([c[0], c[1]]))),
        4 => each(2, &|c| f64::from(u16::from_le_bytes([c[0], c[1]]))),
        5 => each(4, &|c| f64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]]))),
        6 => each(4, &|c| f64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]]))),
        7 => each(4, &|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]]))),
        9 => each(8, &|c| {
            f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])
        }),
        other => return Err(format!("numeric data of MAT type {other} is not supported")),
    })
}

/// A numeric real 2-D matrix, or `None` for anything else (cells, structs, complex, sparse).
fn matrix(b: &[u8]) -> Result<Option<MatMatrix>, String> {
    let mut parts = Vec::new();
    let mut at = 0;
    while at < b.len() && parts.len() < 4 {
        let (kind, size, header) = tag(b, at)?;
        let body = b
            .get(at + header..(at + header).saturating_add(size))
            .ok_or("matrix sub-element runs past its matrix")?;
        parts.push((kind, body));
        at += if header == 4 {
            8
        } else {
            header + size.div_ceil(8) * 8
        };
    }
    let [(_, flags), (_, dims), (_, name), (kind, real)] = parts.as_slice() else {
        return Ok(None);
    };
    let class = flags.first().copied().unwrap_or(0);
    let complex = flags.get(1).is_some_and(|f| f & 0x08 != 0);
    if !(6..=15).contains(&class) || complex {
        return Ok(None);
    }
    let dims: Vec<usize> = dims
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let [rows, cols] = dims.as_slice() else {
        return Ok(None);
    };
    let data = numbers(*kind, real)?;
    if rows.checked_mul(*cols) != Some(data.len()) {
        return Err(format!(
            "matrix `{}` has {} values for {rows}×{cols}",
            String::from_utf8_lossy(name),
            data.len()
        ));
    }
    Ok(Some(MatMatrix {
        name: String::from_utf8_lossy(name).into_owned(),
        rows: *rows,
        cols: *cols,
        data,
    }))
}

/// `Sarcos(data_dir:)` in a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, rename = "Sarcos")]
pub struct SarcosConfig {
    /// Folder of the MAT files (default: the run's data directory).
    #[serde(default)]
    pub data_dir: Option<String>,
}

/// Inputs (`21 × n`) and targets (`7 × n`) of the training and test sets.
#[derive(Debug, Clone)]
pub struct SarcosSets {
    /// Training inputs.
    pub train_x: DMatrix<f64>,
    /// Training targets.
    pub train_y: DMatrix<f64>,
    /// Test inputs.
    pub test_x: DMatrix<f64>,
    /// Test targets.
    pub test_y: DMatrix<f64>,
}

fn variable(path: PathBuf, name: &str) -> Result<(DMatrix<f64>, DMatrix<f64>), DataError> {
    let matrices = read_mat_v5(&path)?;
    let found = matrices
        .into_iter()
        .find(|m| m.name == name)
        .ok_or_else(|| DataError::Corrupt {
            path: path.clone(),
            problem: format!("no numeric variable `{name}`"),
        })?;
    if found.cols != INPUTS + OUTPUTS {
        return Err(DataError::Corrupt {
            path,
            problem: format!(
                "`{name}` is {}×{}, expected {} columns (21 inputs, 7 torques)",
                found.rows,
                found.cols,
                INPUTS + OUTPUTS
            ),
        });
    }
    // Column-major rows × 28: sample i, column j at data[j * rows + i]; we want one sample per column.
    let all = DMatrix::from_column_slice(found.rows, found.cols, &found.data).transpose();
    Ok((
        all.rows(0, INPUTS).into_owned(),
        all.rows(INPUTS, OUTPUTS).into_owned(),
    ))
}

impl SarcosConfig {
    /// Loads the two files from `dir`.
    pub fn load(&self, dir: &Path) -> Result<SarcosSets, DataError> {
        let (train_x, train_y) = variable(dir.join("sarcos_inv.mat"), "sarcos_inv")?;
        let (test_x, test_y) = variable(dir.join("sarcos_inv_test.mat"), "sarcos_inv_test")?;
        Ok(SarcosSets {
            train_x,
            train_y,
            test_x,
            test_y,
        })
    }
}

/// The SARCOS task checked against its circuit, with its data loaded.
#[derive(Debug)]
pub struct SarcosPrepared {
    sets: Arc<SarcosSets>,
    projections: Vec<(usize, String)>,
    hidden: Vec<(usize, String)>,
    metrics: MetricSpec,
}

impl TaskSpec for SarcosConfig {
    const ENTRY: Entry = Entry {
        name: "Sarcos",
        summary: "SARCOS inverse dynamics regression: 21 inputs (joint positions, velocities, accelerations), 7 torques; records the test loss (mean squared error per output)",
        params: &[DATA_DIR_PARAM],
        example: "Sarcos()",
    };
    type Prepared = SarcosPrepared;

    fn prepare(&self, context: &TaskContext<'_>) -> Result<SarcosPrepared, TaskError> {
        context
            .blueprint
            .check_io(INPUTS, OUTPUTS)
            .map_err(TaskError::Circuit)?;
        let sets = self
            .load(&context.data_dir_or(&self.data_dir))
            .map_err(TaskError::Data)?;
        let projections = context.weighted_projections();
        let hidden = context.hidden_populations();
        let mut names = vec!["test_loss".to_string()];
        names.extend(structure_metric_names(&projections, &hidden));
        Ok(SarcosPrepared {
            sets: Arc::new(sets),
            projections,
            hidden,
            metrics: MetricSpec {
                names,
                error: 0,
                classification: false,
            },
        })
    }
}

impl Prepared for SarcosPrepared {
    fn metrics(&self) -> &MetricSpec {
        &self.metrics
    }

    fn training_samples(&self) -> Option<usize> {
        Some(self.sets.train_x.ncols())
    }

    fn attributes(&self) -> Vec<(String, Attr)> {
        vec![
            ("task".into(), Attr::Text("sarcos".into())),
            ("train_samples".into(), Attr::Int(self.sets.train_x.ncols() as i64)),
            ("test_samples".into(), Attr::Int(self.sets.test_x.ncols() as i64)),
        ]
    }

    fn build<T: Real>(&self, streams: &SeedStreams) -> Box<dyn Task<T>> {
        Box::new(SarcosTask::<T>::new(
            Arc::clone(&self.sets),
            streams,
            self.projections.clone(),
            self.hidden.clone(),
        ))
    }
}

/// The SARCOS regression task.
pub struct SarcosTask<T: Real> {
    sets: Arc<SarcosSets>,
    order: Vec<usize>,
    next: usize,
    test_x: DMatrix<T>,
    projections: Vec<(usize, String)>,
    hidden: Vec<(usize, String)>,
}

impl<T: Real> SarcosTask<T> {
    /// The task over `sets`, its training order shuffled once from stream `task/shuffle`.
    pub fn new(
        sets: Arc<SarcosSets>,
        streams: &SeedStreams,
        projections: Vec<(usize, String)>,
        hidden: Vec<(usize, String)>,
    ) -> Self {
        let mut rng = streams.stream("task/shuffle");
        let mut order: Vec<usize> = (0..sets.train_x.ncols()).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
        }
        let test_x = sets.test_x.map(T::of);
        Self {
            sets,
            order,
            next: 0,
            test_x,
            projections,
            hidden,
        }
    }
}

impl<T: Real> Task<T> for SarcosTask<T> {
    fn input_size(&self) -> usize {
        INPUTS
    }

    fn output_size(&self) -> usize {
        OUTPUTS
    }

    fn next_batch(&mut self, inputs: &mut DMatrix<T>, targets: &mut DMatrix<T>) {
        for c in 0..inputs.ncols() {
            let i = self.order[self.next];
            self.next = (self.next + 1) % self.order.len();
            inputs
                .column_mut(c)
                .iter_mut()
                .zip(self.sets.train_x.column(i).iter())
                .for_each(|(o, &v)| *o = T::of(v));
            targets
                .column_mut(c)
                .iter_mut()
                .zip(self.sets.train_y.column(i).iter())
                .for_each(|(o, &v)| *o = T::of(v));
        }
    }

    fn metrics(&mut self, engine: &mut dyn Measure<T>) -> Vec<f64> {
        let n = self.test_x.ncols();
        let mut squared = 0.0;
        let mut participation = vec![f64::NAN; self.hidden.len()];
        for start in (0..n).step_by(1000) {
            let width = 1000.min(n - start);
            let y = engine.forward(&self.test_x.columns(start, width).into_owned());
            for c in 0..width {
                for (k, &v) in y.column(c).iter().enumerate() {
                    squared += (v.f64() - self.sets.test_y[(k, start + c)]).powi(2);
                }
            }
            if start == 0 {
                participation = participation_ratios(engine, &self.hidden);
            }
        }
        let mut row = vec![squared / (n * OUTPUTS) as f64];
        row.extend(weight_norms(engine, &self.projections));
        row.extend(participation);
        row
    }
}

/// Writes a little-endian MAT v5 file holding one double matrix (column-major `data`),
/// optionally zlib-compressed: small fixtures in the format SARCOS is distributed in.
pub fn write_mat_v5(
    path: &Path,
    name: &str,
    rows: usize,
    cols: usize,
    data: &[f64],
    compress: bool,
) -> std::io::Result<()> {
    let pad = |v: &mut Vec<u8>| {
        while !v.len().is_multiple_of(8) {
            v.push(0);
        }
    };
    let mut m = Vec::new();
    let sub = |v: &mut Vec<u8>, kind: u32, body: &[u8]| {
        v.extend(kind.to_le_bytes());
        v.extend((body.len() as u32).to_le_bytes());
        v.extend(body);
        pad(v);
    };
    sub(&mut m, 6, &[6, 0, 0, 0, 0, 0, 0, 0]);
    sub(
        &mut m,
        5,
        &[(rows as i32).to_le_bytes(), (cols as i32).to_le_bytes()].concat(),
    );
    sub(&mut m, 1, name.as_bytes());
    sub(
        &mut m,
        9,
        &data.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>(),
    );
    let mut element = Vec::new();
    element.extend(14u32.to_le_bytes());
    element.extend((m.len() as u32).to_le_bytes());
    element.extend(m);
    let mut file = vec![b' '; 116];
    file[..20].copy_from_slice(b"MATLAB 5.0 MAT-file ");
    file.extend([0u8; 8]);
    file.extend(0x0100u16.to_le_bytes());
    file.extend(b"IM");
    if compress {
        use std::io::Write;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&element)?;
        let packed = z.finish()?;
        file.extend(15u32.to_le_bytes());
        file.extend((packed.len() as u32).to_le_bytes());
        file.extend(packed);
    } else {
        file.extend(element);
    }
    std::fs::write(path, file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mat_v5_plain_and_compressed_and_rejects_bad_files() {
        let dir = std::env::temp_dir().join(format!("npsim-mat-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let data: Vec<f64> = (0..6).map(|v| v as f64 * 1.5).collect();
        for compress in [false, true] {
            let path = dir.join(format!("m{compress}.mat"));
            write_mat_v5(&path, "abc", 2, 3, &data, compress).unwrap();
            let m = read_mat_v5(&path).unwrap();
            assert_eq!(
                m,
                vec![MatMatrix {
                    name: "abc".into(),
                    rows: 2,
                    cols: 3,
                    data: data.clone()
                }]
            );
        }
        let bad = dir.join("bad.mat");
        std::fs::write(&bad, vec![0u8; 200]).unwrap();
        assert!(
            read_mat_v5(&bad)
                .unwrap_err()
                .to_string()
                .contains("no MAT v5 endian indicator")
        );
        write_mat_v5(&bad, "abc", 2, 3, &data, false).unwrap();
        let bytes = std::fs::read(&bad).unwrap();
        std::fs::write(&bad, &bytes[..bytes.len() - 20]).unwrap();
        assert!(
            read_mat_v5(&bad)
                .unwrap_err()
                .to_string()
                .contains("runs past the end of the file (truncated?)")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
