//! MNIST handwritten digits (LeCun et al. 1998), read from the IDX files, raw or gzipped.
//!
//! The data directory holds `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
//! `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte`, each optionally with `.gz`.
//! Headers and sizes are checked: a truncated or corrupt file is an error naming the file and
//! what is wrong. The task is image classification ([`crate::images`]): 784 inputs, 10 classes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use npsim_core::{Entry, Param};
use serde::{Deserialize, Serialize};

use crate::data::{DataError, cached};
use crate::images::{ImageSets, ImageSplit, ImageTask, LabelledImages, split_sets};
use crate::registry::{TaskContext, TaskError, TaskSpec};

/// Pixels per image.
pub const PIXELS: usize = 784;

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
    let out = gunzip(&path, &bytes)?;
    Ok((path, out))
}

/// The content of a gzip file's bytes (`path` names it in errors).
pub fn gunzip(path: &Path, bytes: &[u8]) -> Result<Vec<u8>, DataError> {
    crate::data::inflate_bounded(flate2::read::GzDecoder::new(bytes)).map_err(|e| DataError::Corrupt {
        path: path.to_path_buf(),
        problem: format!("gzip stream: {e}"),
    })
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
    let expected = shape
        .iter()
        .try_fold(1usize, |product, &n| product.checked_mul(n))
        .and_then(|values| values.checked_add(4 + 4 * dims));
    if expected != Some(bytes.len()) {
        let expected = expected.map_or("more than any file holds".into(), |n| format!("{n} bytes in all"));
        return Err(corrupt(format!(
            "header announces {shape:?} ({expected}) but the file has {} bytes (truncated or padded)",
            bytes.len()
        )));
    }
    Ok(shape)
}

/// Reads `<prefix>-images-idx3-ubyte` and `<prefix>-labels-idx1-ubyte` (`prefix`: `train`
/// or `t10k`) from `dir`.
pub fn read(dir: &Path, prefix: &str) -> Result<LabelledImages, DataError> {
    let (image_path, images) = read_file(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let (label_path, labels) = read_file(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    parse(&image_path, &images, &label_path, &labels)
}

/// Checks and decodes the contents of an IDX image file and its label file (the paths name
/// them in errors).
pub fn parse(
    image_path: &Path,
    images: &[u8],
    label_path: &Path,
    labels: &[u8],
) -> Result<LabelledImages, DataError> {
    let shape = header(image_path, images, 0x0000_0803, 3)?;
    if shape[1].checked_mul(shape[2]) != Some(PIXELS) {
        return Err(DataError::Corrupt {
            path: image_path.to_path_buf(),
            problem: format!("images are {}×{}, expected 28×28", shape[1], shape[2]),
        });
    }
    let label_shape = header(label_path, labels, 0x0000_0801, 1)?;
    if label_shape[0] != shape[0] {
        return Err(DataError::Corrupt {
            path: label_path.to_path_buf(),
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
            path: label_path.to_path_buf(),
            problem: format!("label {} at index {bad} is not a digit", labels[bad]),
        });
    }
    Ok(LabelledImages {
        size: PIXELS,
        images: images[16..].to_vec(),
        labels,
    })
}

/// [`read`], once per process for each file pair (sweeps share the data).
pub fn read_cached(dir: &Path, prefix: &str) -> Result<Arc<LabelledImages>, DataError> {
    cached(dir, &format!("mnist:{prefix}"), || read(dir, prefix))
}

/// `Mnist(data_dir:, split:)` in a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, rename = "Mnist")]
pub struct MnistConfig {
    /// Folder of the IDX files (default: the run's data directory: `--data-dir`, `NPSIM_DATA`,
    /// or `data`).
    #[serde(default)]
    pub data_dir: Option<String>,
    /// Train/test split (default `Standard`).
    #[serde(default)]
    pub split: ImageSplit,
}

impl MnistConfig {
    /// Loads (or reuses) the digits from `dir`.
    pub fn load(&self, dir: &Path) -> Result<ImageSets, DataError> {
        split_sets(
            self.split,
            dir,
            || read_cached(dir, "train"),
            || read_cached(dir, "t10k"),
            "t10k-images-idx3-ubyte",
        )
    }
}

/// The `data_dir` parameter of dataset tasks.
pub(crate) const DATA_DIR_PARAM: Param = Param {
    name: "data_dir",
    unit: "path",
    default: "None",
    meaning: "folder of the files; `None`: `--data-dir`, else $NPSIM_DATA, else `data`",
};

/// The `split` parameter of image tasks.
pub(crate) const SPLIT_PARAM: Param = Param {
    name: "split",
    unit: "",
    default: "Standard",
    meaning: "`Standard` (the training files train, the test file tests) or `TestSetSplit(train: n)` (the test file's first n images train, the rest test)",
};

impl TaskSpec for MnistConfig {
    const ENTRY: Entry = Entry {
        name: "Mnist",
        summary: "MNIST digit classification: 784 pixel inputs in [0, 1], one-hot targets for 10 classes; records test accuracy and loss",
        params: &[DATA_DIR_PARAM, SPLIT_PARAM],
        example: "Mnist(split: Standard)",
    };
    type Prepared = ImageTask;

    fn prepare(&self, context: &TaskContext<'_>) -> Result<ImageTask, TaskError> {
        context.blueprint.check_io(PIXELS, 10).map_err(TaskError::Circuit)?;
        let sets = self
            .load(&context.data_dir_or(&self.data_dir))
            .map_err(TaskError::Data)?;
        ImageTask::new("mnist", sets, context)
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
