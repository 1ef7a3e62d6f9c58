//! CIFAR-10 (Krizhevsky 2009), read from the binary version's files.
//!
//! The data directory holds `data_batch_1.bin` … `data_batch_5.bin` (training) and
//! `test_batch.bin`; `training_batches` chooses which of the five train (all by default; a
//! machine with only some of them, or a quick run, trains on those). Each record is one label
//! byte (0–9) followed by 3,072 pixel bytes: the 1,024 red values of the 32×32 image row by
//! row, then green, then blue. A file whose length is not a whole number of records, or a
//! label above 9, is an error naming the file.
//!
//! The task is the same image classification as MNIST's ([`crate::images`]): pixels / 255
//! (3,072 inputs, channel-major as stored, so a `(3, 32, 32)` input population sees the
//! image), one-hot targets, the same metrics.

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use npsim_core::{Entry, Invalid, Param};

use crate::data::{DataError, cached, read_data_file};
use crate::images::{ImageSets, ImageSplit, ImageTask, LabelledImages, split_sets};
use crate::mnist::{DATA_DIR_PARAM, SPLIT_PARAM};
use crate::registry::{TaskContext, TaskError, TaskSpec};

/// Values per CIFAR-10 image.
pub const VALUES: usize = 3072;
const RECORD: usize = 1 + VALUES;

/// Reads one CIFAR-10 binary batch file.
pub fn read_batch(path: &Path) -> Result<LabelledImages, DataError> {
    let bytes = read_data_file(
        path,
        "run `npsim data fetch cifar10`, or put the CIFAR-10 binary files in the data directory (scenario `data_dir`, --data-dir or NPSIM_DATA)",
    )?;
    parse_batch(path, &bytes)
}

/// Checks and decodes the contents of a CIFAR-10 binary batch (`path` names it in errors).
pub fn parse_batch(path: &Path, bytes: &[u8]) -> Result<LabelledImages, DataError> {
    let corrupt = |problem: String| DataError::Corrupt {
        path: path.to_path_buf(),
        problem,
    };
    if bytes.is_empty() || !bytes.len().is_multiple_of(RECORD) {
        return Err(corrupt(format!(
            "{} bytes is not a whole number of {RECORD}-byte records (truncated?)",
            bytes.len()
        )));
    }
    let n = bytes.len() / RECORD;
    let mut labels = Vec::with_capacity(n);
    let mut images = Vec::with_capacity(n * VALUES);
    for (k, record) in bytes.chunks_exact(RECORD).enumerate() {
        if record[0] > 9 {
            return Err(corrupt(format!(
                "label {} of record {k} is not a class (0–9)",
                record[0]
            )));
        }
        labels.push(record[0]);
        images.extend_from_slice(&record[1..]);
    }
    Ok(LabelledImages {
        size: VALUES,
        images,
        labels,
    })
}

fn concatenate(parts: Vec<LabelledImages>) -> LabelledImages {
    let mut all = LabelledImages {
        size: VALUES,
        images: Vec::new(),
        labels: Vec::new(),
    };
    for part in parts {
        all.images.extend(part.images);
        all.labels.extend(part.labels);
    }
    all
}

/// `Cifar10(data_dir:, split:, training_batches:)` in a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "Cifar10")]
pub struct Cifar10Config {
    /// Folder of the binary files (default: the run's data directory).
    #[serde(default)]
    pub data_dir: Option<String>,
    /// `Standard` (train on the five training batches, test on `test_batch.bin`) or
    /// `TestSetSplit(train: n)` (only `test_batch.bin`: its first `n` images train).
    #[serde(default)]
    pub split: ImageSplit,
    /// The training files of the `Standard` split, in this order: `data_batch_k.bin` for
    /// each `k` (default all five).
    #[serde(default = "all_training_batches")]
    pub training_batches: Vec<u8>,
}

impl Default for Cifar10Config {
    fn default() -> Self {
        Self {
            data_dir: None,
            split: ImageSplit::Standard,
            training_batches: all_training_batches(),
        }
    }
}

fn all_training_batches() -> Vec<u8> {
    (1..=5).collect()
}

impl Cifar10Config {
    /// Checks `training_batches`: numbers 1 to 5, at least one, none twice.
    pub fn validate(&self) -> Result<(), Invalid> {
        let batches = &self.training_batches;
        let problem = if batches.is_empty() {
            Some("is empty: name at least one of the training files 1 to 5, e.g. [1]".to_string())
        } else if let Some(k) = batches.iter().find(|k| !(1..=5).contains(*k)) {
            Some(format!(
                "names batch {k}: CIFAR-10 has data_batch_1.bin to data_batch_5.bin, use numbers 1 to 5"
            ))
        } else {
            batches
                .iter()
                .enumerate()
                .find(|(i, k)| batches[..*i].contains(k))
                .map(|(_, k)| format!("names batch {k} twice: each file can train only once per epoch"))
        };
        problem.map_or(Ok(()), |p| Err(Invalid::new("training_batches", p)))
    }

    /// Loads (or reuses) the images from `dir`.
    pub fn load(&self, dir: &Path) -> Result<ImageSets, DataError> {
        let train = || -> Result<Arc<LabelledImages>, DataError> {
            let key = format!("cifar10:train{:?}", self.training_batches);
            cached(dir, &key, || {
                let parts = self
                    .training_batches
                    .iter()
                    .map(|k| read_batch(&dir.join(format!("data_batch_{k}.bin"))))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(concatenate(parts))
            })
        };
        let test = || cached(dir, "cifar10:test", || read_batch(&dir.join("test_batch.bin")));
        split_sets(self.split, dir, train, test, "test_batch.bin")
    }
}

impl TaskSpec for Cifar10Config {
    const ENTRY: Entry = Entry {
        name: "Cifar10",
        summary: "CIFAR-10 image classification: 3,072 inputs (3 × 32 × 32, channel first) in [0, 1], one-hot targets for 10 classes; records test accuracy and loss",
        params: &[
            DATA_DIR_PARAM,
            SPLIT_PARAM,
            Param {
                name: "training_batches",
                unit: "",
                default: "[1, 2, 3, 4, 5]",
                meaning: "which `data_batch_k.bin` train under the `Standard` split, in this order (e.g. `[1]` where only the first file is at hand)",
            },
        ],
        example: "Cifar10(split: Standard)",
    };
    type Prepared = ImageTask;

    fn prepare(&self, context: &TaskContext<'_>) -> Result<ImageTask, TaskError> {
        context.blueprint.check_io(VALUES, 10).map_err(TaskError::Circuit)?;
        self.validate().map_err(TaskError::Invalid)?;
        let sets = self
            .load(&context.data_dir_or(&self.data_dir))
            .map_err(TaskError::Data)?;
        ImageTask::new("cifar10", sets, context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_batch(path: &Path, labels: &[u8]) {
        let mut bytes = Vec::new();
        for (k, &l) in labels.iter().enumerate() {
            bytes.push(l);
            bytes.extend((0..VALUES).map(|i| ((i + k) % 256) as u8));
        }
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn reads_synthetic_batches_and_rejects_corruption() {
        let dir = std::env::temp_dir().join(format!("npsim-cifar-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for k in 1..=5 {
            write_batch(&dir.join(format!("data_batch_{k}.bin")), &[k as u8, 0, 9]);
        }
        write_batch(&dir.join("test_batch.bin"), &[3, 4]);
        let sets = Cifar10Config::default().load(&dir).unwrap();
        assert_eq!(sets.train.len(), 15);
        assert_eq!(&sets.train.labels[..6], &[1, 0, 9, 2, 0, 9]);
        assert_eq!(sets.test.labels, vec![3, 4]);
        assert_eq!(
            sets.test.images[VALUES + 5],
            6,
            "second record, value 5: (5 + 1) % 256"
        );
        let split = Cifar10Config {
            split: ImageSplit::TestSetSplit { train: 1 },
            ..Cifar10Config::default()
        }
        .load(&dir)
        .unwrap();
        assert_eq!((split.train_range, split.test_range), ((0, 1), (1, 2)));
        let some = Cifar10Config {
            training_batches: vec![3, 1],
            ..Cifar10Config::default()
        };
        some.validate().unwrap();
        let sets = some.load(&dir).unwrap();
        assert_eq!(sets.train.labels, vec![3, 0, 9, 1, 0, 9], "batch 3, then batch 1");
        std::fs::remove_file(dir.join("data_batch_5.bin")).unwrap();
        assert_eq!(some.load(&dir).unwrap().train.len(), 6, "batch 5 is not read");
        for (batches, problem) in [
            (vec![], "is empty"),
            (vec![1, 6], "names batch 6"),
            (vec![2, 0], "names batch 0"),
            (vec![2, 4, 2], "names batch 2 twice"),
        ] {
            let config = Cifar10Config {
                training_batches: batches,
                ..Cifar10Config::default()
            };
            let error = config.validate().unwrap_err();
            assert_eq!(error.field, "training_batches");
            assert!(error.message.starts_with(problem), "{}", error.message);
        }

        let bad = dir.join("bad.bin");
        std::fs::write(&bad, vec![0u8; RECORD + 10]).unwrap();
        assert!(
            read_batch(&bad)
                .unwrap_err()
                .to_string()
                .ends_with("is corrupt: 3083 bytes is not a whole number of 3073-byte records (truncated?)")
        );
        write_batch(&bad, &[12]);
        assert!(
            read_batch(&bad)
                .unwrap_err()
                .to_string()
                .contains("label 12 of record 0 is not a class (0–9)")
        );
        assert!(matches!(
            read_batch(&dir.join("missing.bin")),
            Err(DataError::Missing { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
