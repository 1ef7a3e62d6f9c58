//! `npsim data fetch` against a small HTTP server on 127.0.0.1 (no other host is contacted):
//! fresh downloads, resumption after a broken transfer, servers that ignore ranges, corrupt
//! files, fallback between sources, and unpacking an archive.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

use npsim::fetch::{Check, Dataset, FetchError, FetchOptions, Outcome, RemoteFile, fetch};
use sha2::{Digest, Sha256};

/// How the test server misbehaves.
#[derive(Clone, Default)]
struct Behaviour {
    /// On the first request of each file, announce the full length but send only this many
    /// bytes, then close the connection.
    cut_first_after: Option<usize>,
    /// Answer range requests with the whole file (status 200).
    ignore_range: bool,
}

/// Requests a test server received: path and `Range` header.
type RequestLog = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A one-connection-at-a-time HTTP/1.1 server of in-memory files. Returns its base address
/// and the log of requests (`path`, `Range` header).
fn serve(files: HashMap<String, Vec<u8>>, behaviour: Behaviour) -> (String, RequestLog) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}/", listener.local_addr().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&log);
    std::thread::spawn(move || {
        let mut served_once = std::collections::HashSet::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .trim_start_matches('/')
                .to_string();
            let mut range = None;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("range")
                {
                    range = Some(value.trim().to_string());
                }
            }
            seen.lock().unwrap().push((path.clone(), range.clone()));
            let Some(body) = files.get(&path) else {
                let _ = stream
                    .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                continue;
            };
            let start = range
                .filter(|_| !behaviour.ignore_range)
                .and_then(|r| r.strip_prefix("bytes=")?.strip_suffix('-')?.parse::<usize>().ok());
            let (status, slice) = match start {
                Some(start) => ("206 Partial Content", &body[start.min(body.len())..]),
                None => ("200 OK", &body[..]),
            };
            let header = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                slice.len()
            );
            let _ = stream.write_all(header.as_bytes());
            let cut = behaviour
                .cut_first_after
                .filter(|_| served_once.insert(path.clone()));
            let _ = stream.write_all(&slice[..cut.unwrap_or(slice.len()).min(slice.len())]);
        }
    });
    (address, log)
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn dataset(files: &[(&str, &[u8])], sources: Vec<String>) -> Dataset {
    Dataset {
        name: "test".into(),
        sources,
        files: files
            .iter()
            .map(|(name, bytes)| RemoteFile {
                name: name.to_string(),
                size: Some(bytes.len() as u64),
                check: Check::Sha256 {
                    file: sha256(bytes),
                    content: None,
                },
                unpack: Vec::new(),
            })
            .collect(),
    }
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".part"))
        .collect()
}

#[test]
fn downloads_verifies_and_skips_what_is_already_there() {
    let (a, b) = (content(100_000, 1), content(3_000, 2));
    let (address, log) = serve(
        HashMap::from([("a.bin".into(), a.clone()), ("b.bin".into(), b.clone())]),
        Behaviour::default(),
    );
    let data = dataset(&[("a.bin", &a), ("b.bin", &b)], vec![address]);
    let dir = tempfile::tempdir().unwrap();
    let outcomes = fetch(&data, dir.path(), &FetchOptions::default()).unwrap();
    assert!(matches!(
        outcomes[0].1,
        Outcome::Downloaded { resumed_from: 0, .. }
    ));
    assert_eq!(std::fs::read(dir.path().join("a.bin")).unwrap(), a);
    assert_eq!(std::fs::read(dir.path().join("b.bin")).unwrap(), b);
    assert!(leftovers(dir.path()).is_empty());
    let again = fetch(&data, dir.path(), &FetchOptions::default()).unwrap();
    assert!(again.iter().all(|(_, o)| *o == Outcome::Present));
    assert_eq!(log.lock().unwrap().len(), 2, "nothing is requested twice");
}

#[test]
fn a_broken_transfer_resumes_where_it_stopped() {
    let a = content(200_000, 3);
    let (address, log) = serve(
        HashMap::from([("a.bin".into(), a.clone())]),
        Behaviour {
            cut_first_after: Some(70_000),
            ..Default::default()
        },
    );
    let data = dataset(&[("a.bin", &a)], vec![address]);
    let dir = tempfile::tempdir().unwrap();
    let error = fetch(&data, dir.path(), &FetchOptions::default()).unwrap_err();
    assert!(
        matches!(error, FetchError::Interrupted { bytes: 70_000, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("run the same command again to resume"));
    assert_eq!(
        std::fs::metadata(dir.path().join("a.bin.part")).unwrap().len(),
        70_000
    );
    assert!(!dir.path().join("a.bin").exists());
    let outcomes = fetch(&data, dir.path(), &FetchOptions::default()).unwrap();
    assert!(
        matches!(
            outcomes[0].1,
            Outcome::Downloaded {
                resumed_from: 70_000,
                ..
            }
        ),
        "{outcomes:?}"
    );
    assert_eq!(std::fs::read(dir.path().join("a.bin")).unwrap(), a);
    assert!(leftovers(dir.path()).is_empty());
    let requests = log.lock().unwrap();
    assert_eq!(requests[1].1.as_deref(), Some("bytes=70000-"));
}

#[test]
fn a_server_that_ignores_ranges_is_read_from_the_start() {
    let a = content(50_000, 4);
    let (address, _) = serve(
        HashMap::from([("a.bin".into(), a.clone())]),
        Behaviour {
            ignore_range: true,
            ..Default::default()
        },
    );
    let data = dataset(&[("a.bin", &a)], vec![address]);
    let dir = tempfile::tempdir().unwrap();
    // A stale partial file that does not even match the start of the file.
    std::fs::write(dir.path().join("a.bin.part"), vec![0xAB; 1000]).unwrap();
    let outcomes = fetch(&data, dir.path(), &FetchOptions::default()).unwrap();
    assert!(matches!(
        outcomes[0].1,
        Outcome::Downloaded { resumed_from: 0, .. }
    ));
    assert_eq!(std::fs::read(dir.path().join("a.bin")).unwrap(), a);
}

#[test]
fn a_corrupt_file_is_deleted_and_named_and_good_files_stay() {
    let (good, published) = (content(5_000, 5), content(8_000, 6));
    let mut served = published.clone();
    served[4_000] ^= 1;
    let (address, _) = serve(
        HashMap::from([("good.bin".into(), good.clone()), ("bad.bin".into(), served)]),
        Behaviour::default(),
    );
    let data = dataset(&[("good.bin", &good), ("bad.bin", &published)], vec![address]);
    let dir = tempfile::tempdir().unwrap();
    let error = fetch(&data, dir.path(), &FetchOptions::default()).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("`bad.bin`") && message.contains(&sha256(&published)),
        "{message}"
    );
    assert!(!dir.path().join("bad.bin").exists());
    assert!(leftovers(dir.path()).is_empty());
    assert_eq!(std::fs::read(dir.path().join("good.bin")).unwrap(), good);
}

#[test]
fn a_missing_source_falls_back_to_the_next_one() {
    let a = content(1_000, 7);
    let (empty, _) = serve(HashMap::new(), Behaviour::default());
    let (full, _) = serve(HashMap::from([("a.bin".into(), a.clone())]), Behaviour::default());
    let data = dataset(&[("a.bin", &a)], vec![empty.clone(), full.clone()]);
    let dir = tempfile::tempdir().unwrap();
    let outcomes = fetch(&data, dir.path(), &FetchOptions::default()).unwrap();
    assert_eq!(
        outcomes[0].1,
        Outcome::Downloaded {
            resumed_from: 0,
            url: format!("{full}a.bin")
        }
    );
    let nowhere = dataset(&[("a.bin", &a)], vec![empty]);
    let error = fetch(
        &nowhere,
        tempfile::tempdir().unwrap().path(),
        &FetchOptions::default(),
    )
    .unwrap_err();
    assert!(error.to_string().contains("HTTP status 404"), "{error}");
}

#[test]
fn an_archive_is_unpacked_checked_and_removed() {
    let members: Vec<(String, Vec<u8>)> = (1..=3)
        .map(|k| (format!("data_batch_{k}.bin"), content(3_073 * 2, k as u8)))
        .collect();
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (name, bytes) in &members {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, format!("cifar-10-batches-bin/{name}"), &bytes[..])
            .unwrap();
    }
    let archive = builder.into_inner().unwrap().finish().unwrap();
    let (address, _) = serve(
        HashMap::from([("batches.tar.gz".into(), archive.clone())]),
        Behaviour::default(),
    );
    let mut data = dataset(&[("batches.tar.gz", &archive)], vec![address]);
    data.files[0].unpack = members.iter().map(|(n, b)| (n.clone(), sha256(b))).collect();
    let dir = tempfile::tempdir().unwrap();
    fetch(&data, dir.path(), &FetchOptions::default()).unwrap();
    for (name, bytes) in &members {
        assert_eq!(&std::fs::read(dir.path().join(name)).unwrap(), bytes);
    }
    assert!(
        !dir.path().join("batches.tar.gz").exists(),
        "the archive is removed"
    );
    let again = fetch(&data, dir.path(), &FetchOptions::default()).unwrap();
    assert_eq!(again[0].1, Outcome::Present);
}

/// The real MNIST test set, served locally, through the command line with the built-in
/// checksums (the copies here are re-compressed, so they verify by content).
#[test]
fn the_cli_fetches_the_real_mnist_test_set_from_a_mirror() {
    let names = ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"];
    let Some(shared) = common::shared_data("mnist", "t10k-images-idx3-ubyte") else {
        return;
    };
    assert!(
        names.iter().all(|n| shared.join(n).exists()),
        "the gzipped MNIST test set is expected in {}",
        shared.display()
    );
    let files: HashMap<String, Vec<u8>> = names
        .iter()
        .map(|n| (n.to_string(), std::fs::read(shared.join(n)).unwrap()))
        .collect();
    let (address, _) = serve(files.clone(), Behaviour::default());
    let dir = tempfile::tempdir().unwrap();
    let run = |mirror: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_npsim"))
            .args([
                "data",
                "fetch",
                "mnist",
                "--files",
                &names.join(","),
                "--mirror",
                mirror,
            ])
            .arg("--data-dir")
            .arg(dir.path())
            .output()
            .unwrap()
    };
    let output = run(&address);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("t10k-images-idx3-ubyte.gz: downloaded from"),
        "{stdout}"
    );
    for n in names {
        assert_eq!(std::fs::read(dir.path().join(n)).unwrap(), files[n]);
    }
    // Corrupted in transit: a clear error, a non-zero exit, and the good copy untouched.
    std::fs::remove_file(dir.path().join(names[1])).unwrap();
    let mut broken = files.clone();
    let labels = broken.get_mut(names[1]).unwrap();
    let last = labels.len() - 20;
    labels[last] ^= 0x40;
    let (bad_address, _) = serve(broken, Behaviour::default());
    let output = run(&bad_address);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("`t10k-labels-idx1-ubyte.gz`") && stderr.contains("is not the published file"),
        "{stderr}"
    );
    assert!(!dir.path().join(names[1]).exists() && leftovers(dir.path()).is_empty());
    assert_eq!(std::fs::read(dir.path().join(names[0])).unwrap(), files[names[0]]);
}

#[test]
fn sarcos_files_are_checked_for_their_variable_and_shape() {
    let scratch = tempfile::tempdir().unwrap();
    let write = |name: &str, variable: &str, rows: usize| {
        let path = scratch.path().join(name);
        let values: Vec<f64> = (0..rows * 28).map(|i| i as f64 * 0.5).collect();
        npsim_models::sarcos::write_mat_v5(&path, variable, rows, 28, &values, true).unwrap();
        std::fs::read(path).unwrap()
    };
    let good = write("good.mat", "sarcos_inv_test", 4_449);
    let short = write("short.mat", "sarcos_inv_test", 4_000);
    let options = |mirror: String| FetchOptions {
        mirrors: vec![mirror],
        only: vec!["sarcos_inv_test.mat".into()],
        progress: false,
    };
    let sarcos = npsim::fetch::dataset("sarcos").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (bad_server, _) = serve(
        HashMap::from([("sarcos_inv_test.mat".into(), short)]),
        Behaviour::default(),
    );
    let error = fetch(&sarcos, dir.path(), &options(bad_server)).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("variable `sarcos_inv_test` is 4000 × 28, published 4449 × 28"),
        "{error}"
    );
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing is left behind"
    );
    let (good_server, _) = serve(
        HashMap::from([("sarcos_inv_test.mat".into(), good.clone())]),
        Behaviour::default(),
    );
    fetch(&sarcos, dir.path(), &options(good_server)).unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("sarcos_inv_test.mat")).unwrap(),
        good
    );
}

#[test]
fn unknown_datasets_and_files_are_named_with_the_choices() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_npsim"))
            .args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .output()
            .unwrap()
    };
    let output = run(&["data", "fetch", "imagenet"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "error: unknown dataset `imagenet`: choose mnist, cifar10 or sarcos\n"
    );
    let output = run(&["data", "fetch", "mnist", "--files", "t10k-images.gz"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "error: dataset `mnist` has no file `t10k-images.gz`; its files are `train-images-idx3-ubyte.gz`, \
         `train-labels-idx1-ubyte.gz`, `t10k-images-idx3-ubyte.gz`, `t10k-labels-idx1-ubyte.gz`\n"
    );
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing was created"
    );
}
