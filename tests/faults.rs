//! Fault tests: recordings after a `kill -9` at arbitrary moments.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use npsim::recorder::{self, Attr};

const SWEEP: &str = r#"(
    version: 1,
    name: "killed",
    circuit: DeepLinear(lx: 20, lh: 50, ly: 5, init_scale: 1.0, perturbation_std: 1e-3),
    task: LinearTeacher(teacher_noise_std: 0.0),
    rule: NodePerturbation(learning_rate: RelativeToCritical(0.5)),
    theory: false,
    train: (steps: 2000000, record_every: 1, sync_every: 1),
    sweep: { "seed": [1, 2, 3] },
)"#;

/// Raw dataset lengths and committed counts as h5py sees them: `run metric length` lines and
/// `run rows_committed steps_done last_committed_step` lines.
const H5PY_CHECK: &str = r#"
import h5py, sys
with h5py.File(sys.argv[1], "r") as f:
    for name, run in f["runs"].items():
        n = int(run.attrs["rows_committed"])
        for k, ds in run["metrics"].items():
            print(name, k, ds.shape[0])
        last = int(run["metrics/step"][n - 1]) if n else 0
        print(name, "committed", n, int(run.attrs["steps_done"]), last)
"#;

/// Starts `npsim run scenario --out out` and returns once its `.partial` file exists.
fn start_writing(scenario: &Path, out: &Path) -> Child {
    let child = Command::new(env!("CARGO_BIN_EXE_npsim"))
        .args([
            "run",
            scenario.to_str().unwrap(),
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let partial = recorder::partial_path(out);
    let start = Instant::now();
    while !partial.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no partial file appeared"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child
}

/// A sweep flushing every step, killed with SIGKILL at seven moments: each time the partial
/// file reads back with every run's metrics of one length (the committed row count), its
/// `steps_done` the step of the last committed row, and status `interrupted`; h5py sees every
/// raw dataset at least as long as the committed count (a crash between two appends leaves
/// some one row longer, which readers drop).
#[test]
fn kill_nine_at_any_moment_leaves_consistent_runs() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("sweep.ron");
    std::fs::write(&scenario, SWEEP).unwrap();
    let out = dir.path().join("out.h5");
    let partial = recorder::partial_path(&out);
    let h5py = common::h5py_available();
    let mut committed_rows = Vec::new();
    for delay_ms in [60, 170, 290, 410, 530, 650, 770] {
        let _ = std::fs::remove_file(&partial);
        let mut child = start_writing(&scenario, &out);
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        let summary = recorder::read(&partial).unwrap_or_else(|e| panic!("after {delay_ms} ms: {e}"));
        committed_rows.extend(consistent_runs(&summary, &format!("after {delay_ms} ms")));
        if h5py {
            check_raw_lengths(&partial, delay_ms);
        }
    }
    assert!(
        committed_rows.iter().any(|&r| r > 10),
        "the kills came after some rows were committed: {committed_rows:?}"
    );
}

/// Checks that every run of an interrupted recording holds its committed rows in every metric,
/// that `steps_done` is the last committed step and `status` is `interrupted`; returns the
/// committed row counts.
fn consistent_runs(summary: &recorder::FileSummary, context: &str) -> Vec<i64> {
    assert_eq!(summary.runs.len(), 3);
    let mut committed_rows = Vec::new();
    for run in &summary.runs {
        let Attr::Int(rows) = run.attributes["rows_committed"] else {
            panic!("no committed count")
        };
        let Attr::Int(steps_done) = run.attributes["steps_done"] else {
            panic!("no steps_done")
        };
        assert_eq!(run.attributes["status"], Attr::Text("interrupted".into()));
        for (name, values) in &run.metrics {
            assert_eq!(values.len() as i64, rows, "{} {name} {context}", run.group);
        }
        let step = common::metric(run, "step");
        let last = step.last().copied().unwrap_or(0.0);
        assert_eq!(last, steps_done as f64, "{} {context}", run.group);
        committed_rows.push(rows);
    }
    committed_rows
}

/// A file-size limit reached mid-sweep (`ulimit -f`, as a quota or a full disk would): npsim
/// ends with a message saying what happened and what to do, exit 1 (not killed by SIGXFSZ),
/// and the partial file reads back with consistent runs.
#[cfg(unix)]
#[test]
fn a_write_past_the_file_size_limit_ends_with_a_message_and_a_readable_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sweep.ron"), SWEEP).unwrap();
    let limited = Command::new("bash")
        .current_dir(dir.path())
        .args([
            "-c",
            &format!(
                "ulimit -f 2048 && exec {} run sweep.ron --quiet --threads 1 --out out.h5",
                env!("CARGO_BIN_EXE_npsim")
            ),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&limited.stderr);
    assert_eq!(limited.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("out.h5.partial"), "{stderr}");
    assert!(
        stderr.contains("the file reached a size limit") && stderr.contains("--resume"),
        "{stderr}"
    );
    let partial = dir.path().join("out.h5.partial");
    assert!(
        std::fs::metadata(&partial).unwrap().len() <= 2048 * 1024,
        "bash counts `ulimit -f` in KiB"
    );
    let summary = recorder::read(&partial).unwrap();
    let committed_rows = consistent_runs(&summary, "at the size limit");
    assert!(committed_rows.iter().any(|&r| r > 10), "{committed_rows:?}");
    if common::h5py_available() {
        check_raw_lengths(&partial, 0);
    }
}

fn check_raw_lengths(partial: &Path, delay_ms: u64) {
    let output = Command::new("python3")
        .args(["-c", H5PY_CHECK, partial.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut committed = std::collections::HashMap::new();
    for line in text.lines().filter(|l| l.contains(" committed ")) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let rows: i64 = f[2].parse().unwrap();
        assert_eq!(f[3], f[4], "h5py: steps_done is the last committed step: {line}");
        committed.insert(f[0].to_string(), rows);
    }
    for line in text.lines().filter(|l| !l.contains(" committed ")) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let length: i64 = f[2].parse().unwrap();
        assert!(
            length >= committed[f[0]],
            "after {delay_ms} ms, h5py: {line} shorter than committed"
        );
        assert!(
            length <= committed[f[0]] + 1,
            "after {delay_ms} ms, h5py: {line} beyond one flush"
        );
    }
}

/// A recording cut short or with bytes overwritten (46 variants, the first 20 KB — the
/// superblock and object headers — hit most) makes `npsim inspect` report the file and exit
/// non-zero, or read what is intact; it never panics or hangs (each call is given 30 s).
#[test]
fn inspect_reports_truncated_and_corrupted_recordings() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/coba.ron");
    let good = dir.path().join("good.h5");
    let output = common::npsim(
        &[
            "run",
            scenario.to_str().unwrap(),
            "--set",
            "simulate.duration=100",
            "--quiet",
            "--out",
            good.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(output.status.success());
    let bytes = std::fs::read(&good).unwrap();
    let mut variants: Vec<(String, Vec<u8>)> = vec![
        ("empty".into(), Vec::new()),
        ("text".into(), b"not an HDF5 file".to_vec()),
    ];
    for cut in [8, 100, 1000, bytes.len() / 3, bytes.len() / 2, bytes.len() - 10] {
        variants.push((format!("cut at {cut}"), bytes[..cut].to_vec()));
    }
    // A fixed linear congruential sequence chooses the bytes, so failures repeat.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = |bound: usize| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) as usize) % bound
    };
    for variant in 0..38 {
        let mut damaged = bytes.clone();
        let flips = [1, 4, 16, 64][variant % 4];
        for _ in 0..flips {
            let span = if next(10) < 7 {
                damaged.len().min(20_000)
            } else {
                damaged.len()
            };
            let at = next(span);
            damaged[at] = next(256) as u8;
        }
        variants.push((format!("{flips} bytes overwritten (variant {variant})"), damaged));
    }
    let path = dir.path().join("damaged.h5");
    let mut reported = 0;
    for (what, content) in &variants {
        std::fs::write(&path, content).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_npsim"))
            .args(["inspect", path.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "{what}: inspect hangs");
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
        if !status.success() {
            assert_eq!(status.code(), Some(1), "{what}: {stderr}");
            assert!(
                stderr.contains("damaged.h5"),
                "{what}: the message names the file: {stderr}"
            );
            reported += 1;
        }
    }
    assert!(
        reported >= 10,
        "most damaged files are reported: {reported} of {}",
        variants.len()
    );
}

/// A second run aimed at the output a running one is writing refuses, even with `--force`,
/// naming the file; the first run's recording is untouched.
#[test]
fn a_second_writer_of_the_same_output_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("sweep.ron");
    std::fs::write(&scenario, SWEEP).unwrap();
    let out = dir.path().join("out.h5");
    let partial = recorder::partial_path(&out);
    let mut first = start_writing(&scenario, &out);
    std::thread::sleep(Duration::from_millis(200));
    for extra in [&[][..], &["--force"][..]] {
        let mut args = vec![
            "run",
            scenario.to_str().unwrap(),
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let second = common::npsim(&args, dir.path());
        let stderr = String::from_utf8_lossy(&second.stderr);
        assert!(!second.status.success(), "{extra:?}: the second writer ran");
        assert!(stderr.contains("out.h5.partial"), "{extra:?}: {stderr}");
        if !extra.is_empty() {
            assert!(
                stderr.contains("being written by another npsim process"),
                "{stderr}"
            );
        }
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let summary = recorder::read(&partial).unwrap();
    assert_eq!(summary.runs.len(), 3);
    // The first writer went on recording while the second was refused.
    assert!(
        summary
            .runs
            .iter()
            .any(|r| matches!(r.attributes["rows_committed"], Attr::Int(n) if n > 10))
    );
}

/// A circuit too large for this machine is refused with its estimated size before anything is
/// allocated (a 100-100,000,000-10 linear network: 160 GB of weights and updates in f64), and a
/// network of 3 million neurons at p = 0.02 likewise; where the system does not report its
/// available memory (no `/proc/meminfo`), there is nothing to compare with and the check is
/// skipped.
#[test]
fn circuits_too_large_for_memory_are_refused_with_their_size() {
    if std::fs::read_to_string("/proc/meminfo").is_err() {
        eprintln!("skipped: this system does not report its available memory");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let huge = dir.path().join("huge.ron");
    std::fs::write(
        &huge,
        r#"(
    version: 1,
    name: "huge",
    circuit: DeepLinear(lx: 100, lh: 100000000, ly: 10, init_scale: 1.0, perturbation_std: 1e-3),
    task: LinearTeacher(teacher_noise_std: 0.0),
    rule: NodePerturbation(learning_rate: Absolute(1e-6)),
    theory: false,
    train: (steps: 10),
)"#,
    )
    .unwrap();
    let coba = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/coba.ron");
    for args in [
        vec!["run", huge.to_str().unwrap(), "--quiet"],
        vec![
            "run",
            coba.to_str().unwrap(),
            "--set",
            "network.populations.exc.size=3000000",
            "--quiet",
        ],
    ] {
        let output = common::npsim(&args, dir.path());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("circuit: needs at least") && stderr.contains("GiB"),
            "{stderr}"
        );
        assert!(!dir.path().join("runs").exists(), "nothing written");
    }
}
