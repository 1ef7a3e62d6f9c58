//! Reading dataset files: the error type every loader reports, and a per-process cache so
//! that the runs of a sweep share one copy of a dataset.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use thiserror::Error;

use crate::images::LabelledImages;

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

/// The most a compressed stream in a data file may expand to. The largest file a loader reads
/// (MNIST's training images) is 47 MB; a stream that expands further is not one of them, and
/// is refused before it fills the memory (a "zip bomb").
pub const MOST_INFLATED_BYTES: u64 = 512 << 20;

/// Inflates `stream` (a gzip or zlib decoder) up to [`MOST_INFLATED_BYTES`].
pub(crate) fn inflate_bounded(stream: impl std::io::Read) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut out = Vec::new();
    stream
        .take(MOST_INFLATED_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| e.to_string())?;
    if out.len() as u64 > MOST_INFLATED_BYTES {
        return Err(format!(
            "it expands to more than {} MiB, more than any dataset npsim reads",
            MOST_INFLATED_BYTES >> 20
        ));
    }
    Ok(out)
}

type Cache = Mutex<HashMap<(PathBuf, String), Arc<LabelledImages>>>;

/// Loads a dataset once per process (sweeps share it), keyed by folder and `name`.
pub(crate) fn cached(
    dir: &Path,
    name: &str,
    load: impl FnOnce() -> Result<LabelledImages, DataError>,
) -> Result<Arc<LabelledImages>, DataError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// A stream that expands past the bound is refused after reading one byte more than it,
    /// not inflated to the end (a zip bomb is cut off, whatever it would expand to).
    #[test]
    fn inflation_stops_at_the_bound() {
        let endless = std::io::repeat(0).take(10 * MOST_INFLATED_BYTES);
        let error = inflate_bounded(endless).unwrap_err();
        assert!(error.contains("expands to more than 512 MiB"), "{error}");
        let fits = std::io::repeat(7).take(1000);
        assert_eq!(inflate_bounded(fits).unwrap(), vec![7; 1000]);
    }
}
