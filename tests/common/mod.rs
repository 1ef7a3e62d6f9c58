//! Helpers shared by the end-to-end tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::AtomicBool;

use npsim::recorder::{self, FileSummary, RunSummary};
use npsim::runner;
use npsim::scenario::Scenario;

/// Runs the `npsim` command in `dir`.
pub fn npsim(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_npsim"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

/// Whether `python3` can import `modules` (`import` syntax: `"pynwb, nwbinspector"`). Where CI
/// sets `required_by` their absence fails the test instead, so that such a check cannot be
/// skipped there; elsewhere the caller skips, saying how to install them.
pub fn python_imports(modules: &str, required_by: &str, install: &str) -> bool {
    let importable = Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .status()
        .is_ok_and(|s| s.success());
    if !importable {
        assert!(
            std::env::var_os(required_by).is_none(),
            "{modules} required ({required_by}) but not importable"
        );
        eprintln!("skipped: python3 with {modules} is not available ({install})");
    }
    importable
}

/// Whether `python3` can import h5py (required in CI by `NPSIM_REQUIRE_H5PY`).
pub fn h5py_available() -> bool {
    python_imports("h5py", "NPSIM_REQUIRE_H5PY", "pip install h5py")
}

/// Runs scenario text to a file in `dir`, returning the file and its summary.
pub fn run_text(dir: &Path, text: &str) -> (PathBuf, FileSummary) {
    let scenario = Scenario::parse(Path::new("test.ron"), text.to_string()).expect("valid scenario");
    let out = dir.join("out.h5");
    let report = runner::run(&scenario, &out, true, false, &AtomicBool::new(false)).expect("run");
    assert!(!report.interrupted);
    let summary = recorder::read(&report.path).expect("readable");
    (report.path, summary)
}

/// The values of metric `name` of a run.
pub fn metric<'a>(run: &'a RunSummary, name: &str) -> &'a [f64] {
    &run.metrics
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no metric {name}"))
        .1
}

/// The values of theory curve `name` of a run.
pub fn theory<'a>(run: &'a RunSummary, name: &str) -> &'a [f64] {
    &run.theory
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no theory {name}"))
        .1
}

/// A text attribute of a run.
pub fn text(run: &RunSummary, name: &str) -> String {
    run.attributes
        .get(name)
        .unwrap_or_else(|| panic!("no attribute {name}"))
        .to_string()
}

/// Builds the example and test plugins once (in their own target folder, so as not to wait
/// on the lock of the build that is running these tests) and returns their paths.
pub fn plugins() -> &'static (PathBuf, PathBuf) {
    static BUILT: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let target = root.join("target/plugin-tests");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(root)
            .args([
                "build",
                "--release",
                "--quiet",
                "-p",
                "npsim-example-rule",
                "-p",
                "npsim-handshake-test",
                "--target-dir",
            ])
            .arg(&target)
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the plugins failed");
        let file = |name: &str| {
            target.join("release").join(format!(
                "{}{name}{}",
                std::env::consts::DLL_PREFIX,
                std::env::consts::DLL_SUFFIX
            ))
        };
        (file("npsim_example_rule"), file("npsim_handshake_test"))
    })
}

/// The example plugin library (`plugins/example-rule`), built on first use.
pub fn example_plugin() -> &'static Path {
    &plugins().0
}

/// The handshake test library (`plugins/handshake-test`), built on first use.
pub fn handshake_test_plugin() -> &'static Path {
    &plugins().1
}

/// A folder of `../shared/data` (the real MNIST test set, CIFAR-10 batches), or `None` with a
/// loud message when it is absent, as in users' clones. With `NPSIM_REQUIRE_DATA=1` (set by
/// `.ci/run`) an absent folder fails the test instead, so that CI never skips silently.
pub fn shared_data(name: &str, probe: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(name);
    if dir.join(probe).exists() || dir.join(format!("{probe}.gz")).exists() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("NPSIM_REQUIRE_DATA").is_none(),
        "NPSIM_REQUIRE_DATA is set but `{}` is missing",
        dir.join(probe).display()
    );
    eprintln!(
        "SKIPPED: `{}` is absent, so this test checked nothing; `npsim data fetch {name}` and a copy \
         into ../shared/data/{name} enable it",
        dir.join(probe).display()
    );
    None
}

/// SHA-256 over everything a recording's runs hold that a simulation computes: each run's
/// status, steps done, metrics, theory curves and final weights, as bit patterns.
pub fn fingerprint(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    let summary = recorder::read(path).expect("readable");
    let mut hash = Sha256::new();
    let mut values = |name: &str, data: &[f64]| {
        hash.update(name.as_bytes());
        for v in data {
            hash.update(v.to_bits().to_le_bytes());
        }
    };
    for run in &summary.runs {
        values(&run.group, &[]);
        values(&text(run, "status"), &[]);
        values(&text(run, "steps_done"), &[]);
        for (name, data) in run.metrics.iter().chain(&run.theory) {
            values(name, data);
        }
        for (name, _) in &run.weights {
            let (_, data) = recorder::read_weights(path, &run.group, name).expect("weights");
            values(name, &data);
        }
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}
