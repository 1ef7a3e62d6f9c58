//! Fuzzing on the stable toolchain: property tests feed arbitrary bytes, and valid inputs
//! mutated (bytes flipped, inserted, deleted, cut, size fields set to extremes, RON tokens
//! spliced in), to every reader of outside input — the RON scenario loaders (task and network
//! scenarios, planned when they parse) and `--set` overrides, the IDX, gzip, CIFAR-10 and MAT
//! v5 readers, the HDF5 reader behind `inspect` and `--resume`, the plugin library check
//! (before the library is mapped) and a plugin rule's `params:` text. Each must return a
//! value or an error: no panic, no hang, and no allocation sized by an unchecked field — the
//! targets run in a child process whose address space is limited (`ulimit -v`), where such an
//! allocation aborts.
//!
//! Found cases live in `tests/fuzz/corpus/<target>/` and are replayed first, every run. Cases
//! per target: `NPSIM_FUZZ_CASES` (default 1000); a failure prints the input to add there.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestRunner};

/// Address space of the child process running the targets, KiB: well above what the readers
/// need on these inputs (and the 512 MiB a compressed stream may expand to), far below what an
/// allocation sized by a corrupt 32- or 64-bit field asks for.
const ADDRESS_SPACE_KIB: u64 = 3 << 20;

/// Far beyond what the targets take (seconds): a child still running then has hung.
const HANG_SECONDS: u64 = 900;

fn cases() -> u32 {
    std::env::var("NPSIM_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect()
}

/// One edit of a mutation.
#[derive(Debug, Clone)]
enum Edit {
    Set(Index, u8),
    Insert(Index, u8),
    Delete(Index),
    Cut(Index),
    /// Overwrites four bytes with an extreme little- or big-endian size.
    Extreme(Index, u32),
    /// Splices in a token (RON inputs).
    Token(Index, &'static str),
}

const TOKENS: &[&str] = &[
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    "\"",
    "0",
    "-1",
    "1e999",
    "NaN",
    "inf",
    "4294967296",
    "18446744073709551616",
    "Some(",
    "None",
    "true",
    "//",
    "/*",
    "r#\"",
    "\\u{0}",
    "é",
];

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<Index>().prop_map(Edit::Delete),
        any::<Index>().prop_map(Edit::Cut),
        (
            any::<Index>(),
            prop::sample::select(vec![0u32, 1, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, 0x0100_0000])
        )
            .prop_map(|(i, v)| Edit::Extreme(i, v)),
        (any::<Index>(), prop::sample::select(TOKENS)).prop_map(|(i, t)| Edit::Token(i, t)),
    ]
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for edit in edits {
        let at = |i: &Index, len: usize| if len == 0 { 0 } else { i.index(len) };
        match edit {
            Edit::Set(i, b) if !bytes.is_empty() => {
                let k = at(i, bytes.len());
                bytes[k] = *b;
            }
            Edit::Insert(i, b) => {
                let k = at(i, bytes.len() + 1);
                bytes.insert(k, *b);
            }
            Edit::Delete(i) if !bytes.is_empty() => {
                let k = at(i, bytes.len());
                bytes.remove(k);
            }
            Edit::Cut(i) => {
                let k = at(i, bytes.len() + 1);
                bytes.truncate(k);
            }
            Edit::Extreme(i, v) if bytes.len() >= 4 => {
                let k = at(i, bytes.len() - 3);
                let word = if k % 2 == 0 {
                    v.to_le_bytes()
                } else {
                    v.to_be_bytes()
                };
                bytes[k..k + 4].copy_from_slice(&word);
            }
            Edit::Token(i, t) => {
                let k = at(i, bytes.len() + 1);
                bytes.splice(k..k, t.bytes());
            }
            _ => {}
        }
    }
    bytes
}

/// Mutations of the seeds, and (one case in eight) arbitrary bytes.
fn inputs(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let count = seeds.len();
    prop_oneof![
        7 => (0..count, prop::collection::vec(edit(), 1..6))
            .prop_map(move |(k, edits)| apply(seeds[k].clone(), &edits)),
        1 => prop::collection::vec(any::<u8>(), 0..600),
    ]
}

/// Replays the corpus of `target`, then `cases()` generated inputs, through `check` (which
/// returns normally for any input: a panic is the failure being looked for).
fn fuzz(target: &str, seeds: Vec<Vec<u8>>, check: impl Fn(&[u8])) {
    for (path, bytes) in corpus(target) {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&bytes)));
        assert!(outcome.is_ok(), "corpus case {} fails again", path.display());
    }
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let tried = std::cell::Cell::new(0u32);
    let result = runner.run(&inputs(seeds), |bytes| {
        check(&bytes);
        tried.set(tried.get() + 1);
        Ok(())
    });
    eprintln!("{target}: {} generated cases", tried.get());
    if let Err(failure) = result {
        panic!("{target}: {failure}\nadd the minimal input above to tests/fuzz/corpus/{target}/ once fixed");
    }
}

fn repository_file(path: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// The targets, run by `fuzzing_finds_no_panic_hang_or_unchecked_allocation` in a child process
/// with limited address space.
#[test]
#[ignore = "run in a memory-limited child by fuzzing_finds_no_panic_hang_or_unchecked_allocation"]
fn fuzz_target_scenarios() {
    let seeds: Vec<Vec<u8>> = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios"))
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    fuzz("scenario", seeds, |bytes| {
        let text = String::from_utf8_lossy(bytes).into_owned();
        let path = Path::new("fuzz.ron");
        if npsim::scenario::network::is_network_scenario(&text) {
            if let Ok(scenario) = npsim::scenario::network::NetworkScenario::parse(path, text) {
                let _ = scenario.plan();
            }
        } else if let Ok(scenario) = npsim::scenario::Scenario::parse(path, text) {
            let _ = scenario.plans();
        }
    });
    // `--set path=value`: the path walk and the RON value reader, on the quickstart scenario.
    let quickstart = String::from_utf8(repository_file("scenarios/quickstart.ron")).unwrap();
    let overrides = [
        "train.steps=5",
        "rule=Sgd(learning_rate: Absolute(1e-3))",
        "circuit.lh=[1, 2]",
        "sweep.seed=[1, \"x\", (a: 1)]",
        "task.teacher_noise_std=-0.5",
    ];
    fuzz(
        "override",
        overrides.iter().map(|o| o.as_bytes().to_vec()).collect(),
        |bytes| {
            let mut scenario =
                npsim::scenario::Scenario::parse(Path::new("q.ron"), quickstart.clone()).unwrap();
            if scenario
                .apply_overrides(&[String::from_utf8_lossy(bytes).into_owned()])
                .is_ok()
            {
                let _ = scenario.plans();
            }
        },
    );
}

fn idx(magic: u32, shape: &[u32], values: &[u8]) -> Vec<u8> {
    let mut bytes = magic.to_be_bytes().to_vec();
    for n in shape {
        bytes.extend(n.to_be_bytes());
    }
    bytes.extend(values);
    bytes
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[test]
#[ignore = "run in a memory-limited child by fuzzing_finds_no_panic_hang_or_unchecked_allocation"]
fn fuzz_target_idx_and_gzip() {
    use npsim_models::mnist;
    let images = idx(0x0803, &[3, 28, 28], &[7; 3 * 784]);
    let labels = idx(0x0801, &[3], &[1, 2, 3]);
    mnist::parse(Path::new("i"), &images, Path::new("l"), &labels).expect("the seed is valid");
    // Image and label files as one input, split where the label file's magic number begins.
    let pair = [images.clone(), labels.clone()].concat();
    let split = |bytes: &[u8]| {
        let at = bytes
            .windows(4)
            .position(|w| w == [0, 0, 8, 1])
            .unwrap_or(bytes.len());
        (bytes[..at].to_vec(), bytes[at..].to_vec())
    };
    fuzz("idx", vec![pair], |bytes| {
        let (images, labels) = split(bytes);
        let _ = mnist::parse(Path::new("i"), &images, Path::new("l"), &labels);
    });
    fuzz("gzip", vec![gzip(&labels), gzip(&images)], |bytes| {
        if let Ok(inner) = mnist::gunzip(Path::new("g.gz"), bytes) {
            let _ = mnist::parse(Path::new("i"), &inner, Path::new("l"), &labels);
        }
    });
}

#[test]
#[ignore = "run in a memory-limited child by fuzzing_finds_no_panic_hang_or_unchecked_allocation"]
fn fuzz_target_cifar_and_mat() {
    let mut record = vec![3u8];
    record.extend([9u8; npsim_models::cifar10::VALUES]);
    let batch = [record.clone(), record].concat();
    npsim_models::cifar10::parse_batch(Path::new("b"), &batch).expect("the seed is valid");
    fuzz("cifar", vec![batch], |bytes| {
        let _ = npsim_models::cifar10::parse_batch(Path::new("b"), bytes);
    });
    let dir = tempfile::tempdir().unwrap();
    let mut seeds = Vec::new();
    for compress in [false, true] {
        let path = dir.path().join("m.mat");
        npsim_models::sarcos::write_mat_v5(&path, "x", 3, 2, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], compress)
            .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let matrices = npsim_models::sarcos::parse_mat_v5(&path, &bytes).expect("the seed is valid");
        assert_eq!(matrices.len(), 1);
        seeds.push(bytes);
    }
    fuzz("mat", seeds, |bytes| {
        let _ = npsim_models::sarcos::parse_mat_v5(Path::new("m.mat"), bytes);
    });
}

#[test]
#[ignore = "run in a memory-limited child by fuzzing_finds_no_panic_hang_or_unchecked_allocation"]
fn fuzz_target_recordings() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"(
    version: 1,
    name: "seed",
    circuit: DeepLinear(lx: 3, lh: 4, ly: 2),
    task: LinearTeacher(teacher_noise_std: 0.0),
    rule: NodePerturbation(learning_rate: RelativeToCritical(0.5)),
    train: (steps: 20, record_every: 10),
)"#;
    let (path, _) = common::run_text(dir.path(), text);
    let seed = std::fs::read(&path).unwrap();
    let case = dir.path().join("case.h5");
    // Fewer cases: each is a file written and read.
    fuzz("hdf5", vec![seed], |bytes| {
        std::fs::write(&case, bytes).unwrap();
        if let Ok(summary) = npsim::recorder::read(&case) {
            let _ = npsim::resume::recorded_scenario(&case, &summary);
            for run in &summary.runs {
                let _ = npsim::recorder::read_weights(&case, &run.group, "W1");
            }
        }
    });
}

#[test]
#[ignore = "run in a memory-limited child by fuzzing_finds_no_panic_hang_or_unchecked_allocation"]
fn fuzz_target_plugin_libraries() {
    let library = std::fs::read(common::example_plugin()).unwrap();
    npsim::plugin::check_library_format(&library).expect("the example plugin is a library");
    // The ELF header and what follows it; the check reads no further than the header.
    let head = library[..library.len().min(4096)].to_vec();
    fuzz("plugin", vec![head, repository_file("Cargo.toml")], |bytes| {
        let _ = npsim::plugin::check_library_format(bytes);
    });
    // A plugin rule's `params:` text, as the plugin crate parses it.
    let params = [
        "learning_rate: 1e-3, trace_decay: 0.9".as_bytes().to_vec(),
        b"name: \"a, b: c\", flag: true".to_vec(),
    ];
    fuzz("plugin_params", params.to_vec(), |bytes| {
        let text = String::from_utf8_lossy(bytes);
        if let Ok(params) =
            npsim_plugin::Params::parse(&text, &["learning_rate", "trace_decay", "name", "flag"])
        {
            for name in ["learning_rate", "trace_decay", "name", "flag"] {
                let _ = params.get(name);
                let _ = params.get_or(name, 1.0);
            }
        }
    });
}

/// Runs the targets above in a child process (this test binary, `--ignored`) whose address
/// space is limited: a panic fails the child's test, an allocation sized by an unchecked field
/// aborts it; either fails this test with the child's report.
#[test]
fn fuzzing_finds_no_panic_hang_or_unchecked_allocation() {
    // Build the example plugin here, where the build may use all the memory it needs.
    common::example_plugin();
    let binary = std::env::current_exe().unwrap();
    // `ulimit -v` and `timeout` as Linux has them; elsewhere the targets run unbounded.
    let limited = if cfg!(target_os = "linux") {
        Command::new("bash")
            .args([
                "-c",
                &format!(
                    "ulimit -v {ADDRESS_SPACE_KIB} && exec timeout {HANG_SECONDS} \"$0\" --ignored --test-threads 2 fuzz_target_"
                ),
                binary.to_str().unwrap(),
            ])
            .output()
            .unwrap()
    } else {
        Command::new(&binary)
            .args(["--ignored", "--test-threads", "2", "fuzz_target_"])
            .output()
            .unwrap()
    };
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&limited.stdout),
        String::from_utf8_lossy(&limited.stderr)
    );
    assert_ne!(
        limited.status.code(),
        Some(124),
        "the fuzz targets hung: {report}"
    );
    assert!(limited.status.success(), "{report}");
    assert!(report.contains("test result: ok. 5 passed"), "{report}");
}
