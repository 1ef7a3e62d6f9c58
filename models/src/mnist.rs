//! MNIST handwritten digits (LeCun et al. 1998), read from the IDX files, raw or gzipped.
//!
//! The data directory holds `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
//! `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte`, each optionally with `.gz`.
//! Headers and sizes are checked: a truncated or corrupt file is an error naming the file and
//! what is wrong.
//!
//! # The task
//! Inputs are pixels / 255 (784 values), targets one-hot (10 values); the output population
//! should be a 10-unit softmax (the paper's Fig. 5: squared error on the softmax output).
//! Training draws mini-batches without replacement from a seeded permutation per epoch
//! (stream `task/shuffle`).
//!
//! # Metrics
//! | name | definition |
//! |------|------------|
//! | `test_accuracy` | fraction of test digits whose largest output is the label |
//! | `test_loss` | mean over test digits of the run's loss (`½|y − onehot|²` by default) |
//! | `norm_<projection>` | squared Frobenius norm of each projection's weights |
//! | `participation_<population>` | participation ratio of each hidden population's activity on the first 1,000 test digits |

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use nalgebra::DMatrix;
use npsim_core::{Engine, Loss, Real, SeedStreams, StreamRng};
use rand::Rng;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::task::{Task, names, participation_ratios, structure_metric_names, weight_norms};

/// A data file that cannot be used.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum DataError {
    /// The file is not there.
    #[error("data file `{}` not found; {hint}", path.display())]
    Missing {
        /// The file looked for.
        path: PathBuf,
        /// Where to get it.
        hint: String,
    },
    /// It could not be read.
    #[error("cannot read `{}`: {message}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// Its content is wrong.
    #[error("`{}` is corrupt: {problem}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

/// A set of labelled images (MNIST digits, CIFAR-10 pictures).
#[derive(Debug, Clone, PartialEq)]
pub struct Digits {
    /// Values per image (784 for MNIST, 3072 for CIFAR-10).
    pub size: usize,
    /// Pixels, `size` per image, in the file's order, 0–255.
    pub images: Vec<u8>,
    /// Labels 0–9.
    pub labels: Vec<u8>,
}

impl Digits {
    /// Number of digits.
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// Pixels per image.
pub const PIXELS: usize = 784;

/// The bytes of a data file, or `Missing` (with `hint`) / `Io` errors naming it.
pub(crate) fn read_data_file(path: &Path, hint: &str) -> Result<Vec<u8>, DataError> {
    if !path.exists() {
        return Err(DataError::Missing {
            path: path.to_path_buf(),
            hint: hint.into(),
        });
    }
    std::fs::read(path).map_err(|e| DataError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn read_file(dir: &Path, name: &str) -> Result<(PathBuf, Vec<u8>), DataError> {
    let raw = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    let (path, compressed) = if raw.exists() {
        (raw, false)
    } else if gz.exists() {
        (gz, true)
    } else {
        return Err(DataError::Missing {
            path: raw,
            hint: "run `npsim data fetch mnist`, or put the MNIST IDX files (raw or .gz) in the data directory (scenario `data_dir`, --data-dir or NPSIM_DATA)".into(),
        });
    };
    let io = |e: std::io::Error| DataError::Io {
        path: path.clone(),
        message: e.to_string(),
    };
    let bytes = std::fs::read(&path).map_err(io)?;
    if !compressed {
        return Ok((path, bytes));
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_end(&mut out)
        .map_err(|e| DataError::Corrupt {
            path: path.clone(),
            problem: format!("gzip stream: {e}"),
        })?;
    Ok((path, out))
}

fn header(path: &Path, bytes: &[u8], magic: u32, dims: usize) -> Result<Vec<usize>, DataError> {
    let corrupt = |problem: String| DataError::Corrupt {
        path: path.to_path_buf(),
        problem,
    };
    if bytes.len() < 4 + 4 * dims {
        return Err(corrupt(format!(
            "{} bytes is shorter than an IDX header",
            bytes.len()
        )));
    }
    let word =
        |i: usize| u32::from_be_bytes([bytes[4 * i], bytes[4 * i + 1], bytes[4 * i + 2], bytes[4 * i + 3]]);
    if word(0) != magic {
        return Err(corrupt(format!(
            "magic number {:#010x}, expected {magic:#010x}",
            word(0)
        )));
    }
    let shape: Vec<usize> = (1..=dims).map(|i| word(i) as usize).collect();
    let expected = 4 + 4 * dims + shape.iter().product::<usize>();
    if bytes.len() != expected {
        return Err(corrupt(format!(
            "header announces {shape:?} ({expected} bytes in all) but the file has {} bytes (truncated or padded)",
            bytes.len()
        )));
    }
    Ok(shape)
}

/// Reads `<prefix>-images-idx3-ubyte` and `<prefix>-labels-idx1-ubyte` (`prefix`: `train`
/// or `t10k`) from `dir`.
pub fn read(dir: &Path, prefix: &str) -> Result<Digits, DataError> {
    let (image_path, images) = read_file(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let shape = header(&image_path, &images, 0x0000_0803, 3)?;
    if shape[1] * shape[2] != PIXELS {
        return Err(DataError::Corrupt {
            path: image_path,
            problem: format!("images are {}×{}, expected 28×28", shape[1], shape[2]),
        });
    }
    let (label_path, labels) = read_file(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let label_shape = header(&label_path, &labels, 0x0000_0801, 1)?;
    if label_shape[0] != shape[0] {
        return Err(DataError::Corrupt {
            path: label_path,
            problem: format!(
                "{} labels for {} images in `{}`",
                label_shape[0],
                shape[0],
                image_path.display()
            ),
        });
    }
    let labels = labels[8..].to_vec();
    if let Some(bad) = labels.iter().position(|&l| l > 9) {
        return Err(DataError::Corrupt {
            path: label_path,
            problem: format!("label {} at index {bad} is not a digit", labels[bad]),
        });
    }
    Ok(Digits {
        size: PIXELS,
        images: images[16..].to_vec(),
        labels,
    })
}

type Cache = Mutex<HashMap<(PathBuf, String), Arc<Digits>>>;

/// [`read`], once per process for each file pair (sweeps share the data).
pub fn read_cached(dir: &Path, prefix: &str) -> Result<Arc<Digits>, DataError> {
    cached(dir, &format!("mnist:{prefix}"), || read(dir, prefix))
}

/// Loads a dataset once per process (sweeps share it), keyed by folder and `name`.
pub(crate) fn cached(
    dir: &Path,
    name: &str,
    load: impl FnOnce() -> Result<Digits, DataError>,
) -> Result<Arc<Digits>, DataError> {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let key = (dir.to_path_buf(), name.to_string());
    let cache = CACHE.get_or_init(Default::default);
    if let Some(d) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(Arc::clone(d));
    }
    let digits = Arc::new(load()?);
    cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, Arc::clone(&digits));
    Ok(digits)
}

/// Which digits train and which test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum MnistSplit {
    /// Train on the 60,000 `train` digits, test on the 10,000 `t10k` digits.
    #[default]
    Standard,
    /// Only the `t10k` file: its first `train` digits train, the rest test (for machines
    /// with only the test set, and for quick checks).
    TestSetSplit {
        /// Number of training digits.
        train: usize,
    },
}

/// Settings of the MNIST task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MnistConfig {
    /// Folder of the IDX files (default: the run's data directory: `--data-dir`, `NPSIM_DATA`,
    /// or `data`).
    #[serde(default)]
    pub data_dir: Option<String>,
    /// Train/test split (default `Standard`).
    #[serde(default)]
    pub split: MnistSplit,
}

/// The training and test digits of a run.
#[derive(Debug, Clone)]
pub struct MnistSets {
    /// Training digits.
    pub train: Arc<Digits>,
    /// Test digits (for `TestSetSplit`, the same file with an offset).
    pub test: Arc<Digits>,
    /// First training and test index in their files.
    pub train_range: (usize, usize),
    /// Test index range.
    pub test_range: (usize, usize),
}

impl MnistConfig {
    /// Loads (or reuses) the digits from `dir`.
    pub fn load(&self, dir: &Path) -> Result<MnistSets, DataError> {
        split_sets(
            self.split,
            dir,
            || read_cached(dir, "train"),
            || read_cached(dir, "t10k"),
            "t10k-images-idx3-ubyte",
        )
    }
}

/// Training and test sets for a split, from loaders of the standard training and test files.
pub(crate) fn split_sets(
    split: MnistSplit,
    dir: &Path,
    train_set: impl FnOnce() -> Result<Arc<Digits>, DataError>,
    test_set: impl FnOnce() -> Result<Arc<Digits>, DataError>,
    test_file: &str,
) -> Result<MnistSets, DataError> {
    {
        match split {
            MnistSplit::Standard => {
                let train = train_set()?;
                let test = test_set()?;
                let (n_train, n_test) = (train.len(), test.len());
                Ok(MnistSets {
                    train,
                    test,
                    train_range: (0, n_train),
                    test_range: (0, n_test),
                })
            }
            MnistSplit::TestSetSplit { train } => {
                let all = test_set()?;
                if train == 0 || train >= all.len() {
                    return Err(DataError::Corrupt {
                        path: dir.join(test_file),
                        problem: format!(
                            "cannot split {} digits into {train} for training and the rest for testing",
                            all.len()
                        ),
                    });
                }
                Ok(MnistSets {
                    train: Arc::clone(&all),
                    test: Arc::clone(&all),
                    train_range: (0, train),
                    test_range: (train, all.len()),
                })
            }
        }
    }
}

/// The MNIST classification task.
pub struct MnistTask<T: Real> {
    sets: MnistSets,
    order: Vec<usize>,
    next: usize,
    shuffle: StreamRng,
    test_inputs: DMatrix<T>,
    test_targets: DMatrix<T>,
    projections: Vec<(usize, String)>,
    hidden: Vec<(usize, String)>,
    loss: Loss,
}

fn pixels<T: Real>(digits: &Digits, index: usize, out: &mut [T]) {
    let scale = T::of(1.0 / 255.0);
    for (o, &p) in out
        .iter_mut()
        .zip(&digits.images[index * digits.size..(index + 1) * digits.size])
    {
        *o = T::of(f64::from(p)) * scale;
    }
}

fn one_hot<T: Real>(label: u8, out: &mut [T]) {
    out.iter_mut().enumerate().for_each(|(k, o)| {
        *o = if k == usize::from(label) {
            T::one()
        } else {
            T::zero()
        }
    });
}

impl<T: Real> MnistTask<T> {
    /// The task over `sets`, shuffling with stream `task/shuffle`; `projections` are the
    /// circuit's projections with weights (index, name), for the norm metrics.
    /// `hidden` are the hidden populations (index, name), for the participation ratios.
    pub fn new(
        sets: MnistSets,
        streams: &SeedStreams,
        projections: Vec<(usize, String)>,
        hidden: Vec<(usize, String)>,
        loss: Loss,
    ) -> Self {
        let (t0, t1) = sets.test_range;
        let mut test_inputs = DMatrix::zeros(sets.test.size, t1 - t0);
        let mut test_targets = DMatrix::zeros(10, t1 - t0);
        for (c, i) in (t0..t1).enumerate() {
            pixels(&sets.test, i, test_inputs.column_mut(c).as_mut_slice());
            one_hot(sets.test.labels[i], test_targets.column_mut(c).as_mut_slice());
        }
        Self {
            order: Vec::new(),
            next: 0,
            shuffle: streams.stream("task/shuffle"),
            sets,
            test_inputs,
            test_targets,
            projections,
            hidden,
            loss,
        }
    }

    /// Training digits per epoch.
    pub fn train_len(&self) -> usize {
        self.sets.train_range.1 - self.sets.train_range.0
    }

    fn reshuffle(&mut self) {
        let (a, b) = self.sets.train_range;
        self.order = (a..b).collect();
        // Fisher–Yates with the seeded stream (portable, unlike `SliceRandom` across versions).
        for i in (1..self.order.len()).rev() {
            let j = (self.shuffle.next_u64() % (i as u64 + 1)) as usize;
            self.order.swap(i, j);
        }
        self.next = 0;
    }
}

/// Metric names of the MNIST task for a circuit with these projections and hidden populations.
pub fn metric_names(projection_names: &[String], hidden: &[String]) -> Vec<String> {
    let mut names = vec!["test_accuracy".to_string(), "test_loss".to_string()];
    names.extend(structure_metric_names(projection_names, hidden));
    names
}

impl<T: Real> Task<T> for MnistTask<T> {
    fn input_size(&self) -> usize {
        self.sets.train.size
    }

    fn output_size(&self) -> usize {
        10
    }

    fn next_batch(&mut self, inputs: &mut DMatrix<T>, targets: &mut DMatrix<T>) {
        for c in 0..inputs.ncols() {
            if self.next >= self.order.len() {
                self.reshuffle();
            }
            let i = self.order[self.next];
            self.next += 1;
            pixels(&self.sets.train, i, inputs.column_mut(c).as_mut_slice());
            one_hot(self.sets.train.labels[i], targets.column_mut(c).as_mut_slice());
        }
    }

    fn metric_names(&self) -> Vec<String> {
        metric_names(&names(&self.projections), &names(&self.hidden))
    }

    fn error_metric(&self) -> usize {
        1
    }

    fn metrics(&mut self, engine: &mut Engine<T>) -> Vec<f64> {
        let n = self.test_inputs.ncols();
        let (mut correct, mut loss) = (0usize, 0.0);
        const CHUNK: usize = 1000;
        let mut participation = vec![f64::NAN; self.hidden.len()];
        for start in (0..n).step_by(CHUNK) {
            let width = CHUNK.min(n - start);
            let x = self.test_inputs.columns(start, width).into_owned();
            let t = self.test_targets.columns(start, width);
            let y = engine.forward(&x);
            for c in 0..width {
                let predicted = y
                    .column(c)
                    .iter()
                    .enumerate()
                    .fold((0, T::zero() - T::one() / T::zero()), |best, (k, &v)| {
                        if v > best.1 { (k, v) } else { best }
                    })
                    .0;
                if t[(predicted, c)] == T::one() {
                    correct += 1;
                }
                loss += self
                    .loss
                    .value(y.column(c).as_slice(), t.column(c).as_slice())
                    .f64();
            }
            if start == 0 {
                // Dimensionality of hidden activity on the first (up to) 1,000 test digits.
                participation = participation_ratios(engine, &self.hidden);
            }
        }
        let mut row = vec![correct as f64 / n as f64, loss / n as f64];
        row.extend(weight_norms(engine, &self.projections));
        row.extend(participation);
        row
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_idx(dir: &Path, name: &str, magic: u32, dims: &[u32], body: &[u8]) {
        let mut bytes = magic.to_be_bytes().to_vec();
        for d in dims {
            bytes.extend(d.to_be_bytes());
        }
        bytes.extend(body);
        std::fs::write(dir.join(name), bytes).unwrap();
    }

    #[test]
    fn reads_synthetic_idx_and_rejects_corruption() {
        let dir = std::env::temp_dir().join(format!("npsim-mnist-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let images: Vec<u8> = (0..3 * PIXELS).map(|i| (i % 256) as u8).collect();
        write_idx(&dir, "t10k-images-idx3-ubyte", 0x803, &[3, 28, 28], &images);
        write_idx(&dir, "t10k-labels-idx1-ubyte", 0x801, &[3], &[7, 0, 9]);
        let digits = read(&dir, "t10k").unwrap();
        assert_eq!(digits.labels, vec![7, 0, 9]);
        assert_eq!(digits.images, images);

        write_idx(
            &dir,
            "t10k-images-idx3-ubyte",
            0x803,
            &[3, 28, 28],
            &images[..100],
        );
        let err = read(&dir, "t10k").unwrap_err().to_string();
        assert!(err.ends_with("is corrupt: header announces [3, 28, 28] (2368 bytes in all) but the file has 116 bytes (truncated or padded)"), "{err}");
        write_idx(&dir, "t10k-images-idx3-ubyte", 0x801, &[3, 28, 28], &images);
        assert!(
            read(&dir, "t10k")
                .unwrap_err()
                .to_string()
                .contains("magic number 0x00000801, expected 0x00000803")
        );
        write_idx(&dir, "t10k-images-idx3-ubyte", 0x803, &[3, 28, 28], &images);
        write_idx(&dir, "t10k-labels-idx1-ubyte", 0x801, &[3], &[7, 10, 9]);
        assert!(
            read(&dir, "t10k")
                .unwrap_err()
                .to_string()
                .contains("label 10 at index 1 is not a digit")
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(read(&dir, "t10k"), Err(DataError::Missing { .. })));
    }
}
