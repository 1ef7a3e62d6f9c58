//! `npsim data fetch`: downloads a dataset into the data directory, verifies it, and resumes
//! or cleans up interrupted downloads.
//!
//! Each file is downloaded to `<name>.part` and renamed only once verified, so the data
//! directory never holds a file that is half written or wrong. A transfer that breaks off
//! leaves the `.part` file, and the next fetch asks the server for the rest (an HTTP range
//! request; a server that ignores it is read from the start again). A file whose checksum
//! is wrong is deleted, `.part` included, and the fetch fails naming both checksums.
//!
//! | dataset | files | verified by |
//! |---------|-------|-------------|
//! | `mnist` | the four IDX files, gzipped | SHA-256 of the published archives, or of their decompressed contents (mirrors re-compress them) |
//! | `cifar10` | `cifar-10-binary.tar.gz`, unpacked to `data_batch_1..5.bin`, `test_batch.bin` | SHA-256 of the archive and of each unpacked file |
//! | `sarcos` | `sarcos_inv.mat`, `sarcos_inv_test.mat` | no checksum is published: each file must read as a MAT file holding its variable with the published shape (44,484 × 28 and 4,449 × 28) |

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use thiserror::Error;

/// How a downloaded file is checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// SHA-256 of the file as published; for gzip files also accepted: SHA-256 of the
    /// decompressed content.
    Sha256 {
        /// Hex digest of the file.
        file: String,
        /// Hex digest of its decompressed content, if it is a gzip file.
        content: Option<String>,
    },
    /// A MATLAB v5 file holding a numeric matrix `variable` of this shape.
    Mat {
        /// Variable name.
        variable: String,
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
    },
}

/// One file of a dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteFile {
    /// File name, both on the server (after the source's base address) and in the data
    /// directory.
    pub name: String,
    /// Its size in bytes, if published.
    pub size: Option<u64>,
    /// How it is verified.
    pub check: Check,
    /// Files to unpack from it (a `.tar.gz`), each with its SHA-256; the archive is removed
    /// once they are all in place.
    pub unpack: Vec<(String, String)>,
}

/// A dataset: where it is published and what it consists of.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Short name (`mnist`, `cifar10`, `sarcos`).
    pub name: String,
    /// Base addresses tried in order; a file's address is the base followed by its name.
    pub sources: Vec<String>,
    /// The files.
    pub files: Vec<RemoteFile>,
}

/// What went wrong while fetching.
#[derive(Debug, Error)]
pub enum FetchError {
    /// No such dataset.
    #[error("unknown dataset `{0}`: choose mnist, cifar10 or sarcos")]
    UnknownDataset(String),
    /// `--files` names a file the dataset does not have.
    #[error("dataset `{dataset}` has no file `{file}`; its files are {known}")]
    UnknownFile {
        /// The dataset.
        dataset: String,
        /// The name given.
        file: String,
        /// The dataset's files.
        known: String,
    },
    /// No source could serve a file.
    #[error("could not download `{file}`: {attempts}")]
    Unavailable {
        /// The file.
        file: String,
        /// Each address tried and what happened.
        attempts: String,
    },
    /// The transfer broke off; the partial file is kept.
    #[error(
        "the download of `{url}` broke off after {bytes} bytes ({message}); the partial file `{}` is kept: run the same command again to resume",
        part.display()
    )]
    Interrupted {
        /// The address.
        url: String,
        /// Bytes now in the partial file.
        bytes: u64,
        /// The transport error.
        message: String,
        /// The partial file.
        part: PathBuf,
    },
    /// The file arrived but is not the published one; it was deleted.
    #[error(
        "`{file}` from `{url}` is not the published file ({problem}); it was deleted: run again, or try another source with --mirror"
    )]
    Corrupt {
        /// The file.
        file: String,
        /// Where it came from.
        url: String,
        /// Which check failed.
        problem: String,
    },
    /// A local file operation failed.
    #[error("cannot {action} `{}`: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> FetchError + use<> {
    let path = path.to_path_buf();
    move |source| FetchError::Io { action, path, source }
}

/// The datasets npsim knows, with their published addresses and checksums.
///
/// MNIST's checksums are those published with its canonical archives (the decompressed
/// contents' digests were checked here against the real test set); CIFAR-10's archive
/// digest is the one published for `cifar-10-binary.tar.gz` (170,052,171 bytes).
pub fn dataset(name: &str) -> Result<Dataset, FetchError> {
    let mnist = |name: &str, size, file: &str, content: &str| RemoteFile {
        name: name.into(),
        size: Some(size),
        check: Check::Sha256 {
            file: file.into(),
            content: Some(content.into()),
        },
        unpack: Vec::new(),
    };
    Ok(match name {
        "mnist" => Dataset {
            name: "mnist".into(),
            sources: vec![
                "https://storage.googleapis.com/cvdf-datasets/mnist/".into(),
                "https://ossci-datasets.s3.amazonaws.com/mnist/".into(),
            ],
            files: vec![
                mnist(
                    "train-images-idx3-ubyte.gz",
                    9_912_422,
                    "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                    "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                ),
                mnist(
                    "train-labels-idx1-ubyte.gz",
                    28_881,
                    "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                    "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                ),
                mnist(
                    "t10k-images-idx3-ubyte.gz",
                    1_648_877,
                    "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                    "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                ),
                mnist(
                    "t10k-labels-idx1-ubyte.gz",
                    4_542,
                    "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                    "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
                ),
            ],
        },
        "cifar10" => {
            let archive = RemoteFile {
                name: "cifar-10-binary.tar.gz".into(),
                size: Some(170_052_171),
                check: Check::Sha256 {
                    file: "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd".into(),
                    content: None,
                },
                unpack: [
                    (
                        "data_batch_1.bin",
                        "cee916563c9f80d84e3cc88e17fdc0941787f1244f00a67874d45b261883ada5",
                    ),
                    (
                        "data_batch_2.bin",
                        "a591ca11fa1708a91ee40f54b3da4784ccd871ecf2137de63f51ada8b3fa57ed",
                    ),
                    (
                        "data_batch_3.bin",
                        "bbe8596564c0f86427f876058170b84dac6670ddf06d79402899d93ceea26f67",
                    ),
                    (
                        "data_batch_4.bin",
                        "014e562d6e23c72197cc727519169a60359f5eccd8945ad5a09d710285ff4e48",
                    ),
                    (
                        "data_batch_5.bin",
                        "755304fc0b379caeae8c14f0dac912fbc7d6cd469eb67a1029a08a39453a9add",
                    ),
                    (
                        "test_batch.bin",
                        "8e2eb146ae340b09e24670f29cabc6326dba54da8789dab6768acf480273f65b",
                    ),
                ]
                .into_iter()
                .map(|(n, h)| (n.to_string(), h.to_string()))
                .collect(),
            };
            Dataset {
                name: "cifar10".into(),
                sources: vec!["https://www.cs.toronto.edu/~kriz/".into()],
                files: vec![archive],
            }
        }
        "sarcos" => {
            let mat = |name: &str, variable: &str, rows| RemoteFile {
                name: name.into(),
                size: None,
                check: Check::Mat {
                    variable: variable.into(),
                    rows,
                    cols: 28,
                },
                unpack: Vec::new(),
            };
            Dataset {
                name: "sarcos".into(),
                sources: vec!["http://www.gaussianprocess.org/gpml/data/".into()],
                files: vec![
                    mat("sarcos_inv.mat", "sarcos_inv", 44_484),
                    mat("sarcos_inv_test.mat", "sarcos_inv_test", 4_449),
                ],
            }
        }
        other => return Err(FetchError::UnknownDataset(other.into())),
    })
}

/// What happened to one file.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// It was already there and verified; nothing was downloaded.
    Present,
    /// Downloaded (resuming from this many bytes) and verified.
    Downloaded {
        /// Bytes that were already in the partial file.
        resumed_from: u64,
        /// The address it came from.
        url: String,
    },
}

/// Options of a fetch.
#[derive(Debug, Clone, Default)]
pub struct FetchOptions {
    /// Base addresses to use instead of the dataset's own.
    pub mirrors: Vec<String>,
    /// Only these files (by name); all if empty.
    pub only: Vec<String>,
    /// Draw progress bars on the terminal.
    pub progress: bool,
}

/// Fetches `dataset` into `dir` (created if needed). Returns each file with its outcome.
pub fn fetch(
    dataset: &Dataset,
    dir: &Path,
    options: &FetchOptions,
) -> Result<Vec<(String, Outcome)>, FetchError> {
    for name in &options.only {
        if !dataset.files.iter().any(|f| &f.name == name) {
            return Err(FetchError::UnknownFile {
                dataset: dataset.name.clone(),
                file: name.clone(),
                known: dataset
                    .files
                    .iter()
                    .map(|f| format!("`{}`", f.name))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    fs::create_dir_all(dir).map_err(io_error("create", dir))?;
    let sources = if options.mirrors.is_empty() {
        &dataset.sources
    } else {
        &options.mirrors
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_body(Some(Duration::from_secs(60)))
        .build()
        .into();
    let mut outcomes = Vec::new();
    for file in dataset
        .files
        .iter()
        .filter(|f| options.only.is_empty() || options.only.contains(&f.name))
    {
        let outcome = fetch_file(&agent, sources, file, dir, options.progress)?;
        outcomes.push((file.name.clone(), outcome));
    }
    Ok(outcomes)
}

fn fetch_file(
    agent: &ureq::Agent,
    sources: &[String],
    file: &RemoteFile,
    dir: &Path,
    progress: bool,
) -> Result<Outcome, FetchError> {
    if is_in_place(file, dir)? {
        return Ok(Outcome::Present);
    }
    let target = dir.join(&file.name);
    if target.exists() && verify(file, &target).is_ok() {
        // An archive fetched earlier whose unpacking did not finish.
        unpack(file, dir)?;
        return Ok(Outcome::Present);
    }
    let part = dir.join(format!("{}.part", file.name));
    let mut attempts = Vec::new();
    for base in sources {
        let url = format!("{}/{}", base.trim_end_matches('/'), file.name);
        match download(agent, &url, &part, file.size, progress) {
            Ok(resumed_from) => {
                if let Err(problem) = verify(file, &part) {
                    fs::remove_file(&part).map_err(io_error("remove", &part))?;
                    return Err(FetchError::Corrupt {
                        file: file.name.clone(),
                        url,
                        problem,
                    });
                }
                fs::rename(&part, &target).map_err(io_error("rename into place", &target))?;
                unpack(file, dir)?;
                return Ok(Outcome::Downloaded { resumed_from, url });
            }
            Err(Attempt::Refused(reason)) => attempts.push(format!("{url}: {reason}")),
            Err(Attempt::Failed(error)) => return Err(error),
        }
    }
    Err(FetchError::Unavailable {
        file: file.name.clone(),
        attempts: attempts.join("; "),
    })
}

/// Whether the file (or, for an archive, everything unpacked from it) is already in `dir`
/// and verified.
fn is_in_place(file: &RemoteFile, dir: &Path) -> Result<bool, FetchError> {
    if !file.unpack.is_empty() {
        for (name, hash) in &file.unpack {
            let path = dir.join(name);
            if !path.exists() || hash_file(&path)? != *hash {
                return Ok(false);
            }
        }
        return Ok(true);
    }
    let path = dir.join(&file.name);
    Ok(path.exists() && verify(file, &path).is_ok())
}

/// Why a source did not give a file.
enum Attempt {
    /// It refused or could not be reached before anything was written: try the next one.
    Refused(String),
    /// Something that trying elsewhere would not fix.
    Failed(FetchError),
}

/// Downloads `url` into `part`, continuing a partial file; returns the bytes it resumed
/// from.
fn download(
    agent: &ureq::Agent,
    url: &str,
    part: &Path,
    size: Option<u64>,
    progress: bool,
) -> Result<u64, Attempt> {
    let mut have = fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    if size.is_some_and(|size| have > size) {
        // Longer than the published file: it cannot be a prefix of it.
        fs::remove_file(part).map_err(|e| Attempt::Failed(io_error("remove", part)(e)))?;
        have = 0;
    }
    if size == Some(have) && have > 0 {
        return Ok(have);
    }
    let mut request = agent.get(url);
    if have > 0 {
        request = request.header("Range", &format!("bytes={have}-"));
    }
    let response = request.call().map_err(|e| Attempt::Refused(e.to_string()))?;
    let status = response.status().as_u16();
    let resumed_from = match status {
        206 if have > 0 => have,
        200 => 0,
        416 if have > 0 => return Ok(have),
        _ => return Err(Attempt::Refused(format!("HTTP status {status}"))),
    };
    let total = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .map(|len| len + resumed_from)
        .or(size);
    let mut output = OpenOptions::new()
        .create(true)
        .write(true)
        .append(resumed_from > 0)
        .truncate(resumed_from == 0)
        .open(part)
        .map_err(|e| Attempt::Failed(io_error("write", part)(e)))?;
    let bar = if progress {
        let bar = indicatif::ProgressBar::new(total.unwrap_or(0));
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar.set_message(url.rsplit('/').next().unwrap_or(url).to_string());
        bar.set_position(resumed_from);
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut reader = response.into_body().into_reader();
    let mut buffer = vec![0u8; 1 << 16];
    let mut written = resumed_from;
    loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                bar.abandon();
                return Err(Attempt::Failed(FetchError::Interrupted {
                    url: url.into(),
                    bytes: written,
                    message: e.to_string(),
                    part: part.to_path_buf(),
                }));
            }
        };
        output
            .write_all(&buffer[..read])
            .map_err(|e| Attempt::Failed(io_error("write", part)(e)))?;
        written += read as u64;
        bar.set_position(written);
    }
    output
        .sync_all()
        .map_err(|e| Attempt::Failed(io_error("write", part)(e)))?;
    bar.finish_and_clear();
    if let Some(total) = total.filter(|&t| t != written) {
        return Err(Attempt::Failed(FetchError::Interrupted {
            url: url.into(),
            bytes: written,
            message: format!("the server announced {total} bytes"),
            part: part.to_path_buf(),
        }));
    }
    Ok(resumed_from)
}

/// SHA-256 of everything `reader` yields, as lower-case hex (the form checksums are
/// published in, and the one npsim records).
pub fn sha256_hex(mut reader: impl Read) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn hash_reader(reader: impl Read, path: &Path) -> Result<String, FetchError> {
    sha256_hex(reader).map_err(io_error("read", path))
}

fn hash_file(path: &Path) -> Result<String, FetchError> {
    hash_reader(File::open(path).map_err(io_error("read", path))?, path)
}

/// Checks a complete download; returns what is wrong.
fn verify(file: &RemoteFile, path: &Path) -> Result<(), String> {
    match &file.check {
        Check::Sha256 {
            file: expected,
            content,
        } => {
            let found = hash_file(path).map_err(|e| e.to_string())?;
            if found == *expected {
                return Ok(());
            }
            if let Some(content) = content {
                let reader = File::open(path).map_err(|e| e.to_string())?;
                if let Ok(content_found) = hash_reader(flate2::read::GzDecoder::new(reader), path)
                    && content_found == *content
                {
                    return Ok(());
                }
            }
            Err(format!("SHA-256 {found}, published {expected}"))
        }
        Check::Mat { variable, rows, cols } => {
            let matrices = npsim_models::sarcos::read_mat_v5(path).map_err(|e| e.to_string())?;
            match matrices.iter().find(|m| &m.name == variable) {
                Some(m) if (m.rows, m.cols) == (*rows, *cols) => Ok(()),
                Some(m) => Err(format!(
                    "variable `{variable}` is {} × {}, published {rows} × {cols}",
                    m.rows, m.cols
                )),
                None => Err(format!("no variable `{variable}`")),
            }
        }
    }
}

/// Unpacks the files an archive carries (each to `.part`, checked, then renamed), then
/// removes the archive.
fn unpack(file: &RemoteFile, dir: &Path) -> Result<(), FetchError> {
    if file.unpack.is_empty() {
        return Ok(());
    }
    let archive_path = dir.join(&file.name);
    let archive = File::open(&archive_path).map_err(io_error("read", &archive_path))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    let mut found = Vec::new();
    let entries = archive.entries().map_err(io_error("unpack", &archive_path))?;
    for entry in entries {
        let mut entry = entry.map_err(io_error("unpack", &archive_path))?;
        let path = entry
            .path()
            .map_err(io_error("unpack", &archive_path))?
            .into_owned();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some((name, hash)) = file.unpack.iter().find(|(n, _)| n == name) else {
            continue;
        };
        let part = dir.join(format!("{name}.part"));
        let mut output = File::create(&part).map_err(io_error("write", &part))?;
        io::copy(&mut entry, &mut output).map_err(io_error("unpack", &archive_path))?;
        drop(output);
        let found_hash = hash_file(&part)?;
        if found_hash != *hash {
            fs::remove_file(&part).map_err(io_error("remove", &part))?;
            return Err(FetchError::Corrupt {
                file: name.clone(),
                url: archive_path.display().to_string(),
                problem: format!("SHA-256 {found_hash}, published {hash}"),
            });
        }
        let target = dir.join(name);
        fs::rename(&part, &target).map_err(io_error("rename into place", &target))?;
        found.push(name.clone());
    }
    if let Some((missing, _)) = file.unpack.iter().find(|(n, _)| !found.contains(n)) {
        return Err(FetchError::Corrupt {
            file: file.name.clone(),
            url: archive_path.display().to_string(),
            problem: format!("the archive holds no `{missing}`"),
        });
    }
    fs::remove_file(&archive_path).map_err(io_error("remove", &archive_path))?;
    Ok(())
}
