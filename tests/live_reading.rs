//! Reading a recording while npsim writes it: h5py (stock, `locking=False`), npsim's own
//! reader and `inspect`, and the "watch a run" example of `docs/hdf5-layout.md`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{h5py_available, npsim};
use npsim::recorder::{self, Attr};

/// One run at a time (two wait), flushed 5 times a second (npsim's default is every 30 s): many flushes
/// for a reader to collide with.
const FAST_FLUSHES: &str = r#"(
    version: 1,
    name: "live",
    circuit: DeepLinear(lx: 20, lh: 50, ly: 5, init_scale: 1.0, perturbation_std: 1e-3),
    task: LinearTeacher(teacher_noise_std: 0.0),
    rule: NodePerturbation(learning_rate: RelativeToCritical(0.5)),
    theory: false,
    train: (steps: 100000000, record_every: 50, sync_every: 100000000, sync_seconds: 0.2),
    sweep: { "seed": [1, 2, 3] },
)"#;

/// Reads the file over and over until 8 reads have succeeded and seen 3 row counts (or
/// `seconds` have passed), retrying a read that overlaps a flush, and checks each read: every metric holds at least `rows_committed` rows, `step` counts them,
/// `steps_done` is the last committed step. Prints `reads R retries F distinct D`.
const H5PY_FOLLOW: &str = r#"
import sys, time, h5py, numpy as np
path, seconds = sys.argv[1], float(sys.argv[2])
reads = retries = 0
seen = set()
start = time.time()
while time.time() - start < seconds and (reads < 8 or len(seen) < 3):
    try:
        with h5py.File(path, "r", locking=False) as f:
            counts = []
            for name, run in f["runs"].items():
                n = int(run.attrs["rows_committed"])
                columns = {k: ds[:n] for k, ds in run["metrics"].items()}
                for k, values in columns.items():
                    assert len(values) == n, (name, k, len(values), n)
                assert np.array_equal(columns["step"], np.arange(n) * 50), (name, "step")
                if n:
                    assert int(run.attrs["steps_done"]) == 50 * (n - 1), (name, run.attrs["steps_done"], n)
                counts.append(n)
    except (OSError, KeyError):  # h5py's errors for a file caught mid-flush
        retries += 1
        continue
    reads += 1
    seen.add(tuple(counts))
print("reads", reads, "retries", retries, "distinct", len(seen))
"#;

fn start_writing(dir: &Path) -> (Child, PathBuf) {
    std::fs::write(dir.join("s.ron"), FAST_FLUSHES).unwrap();
    let out = dir.join("live.h5");
    let child = Command::new(env!("CARGO_BIN_EXE_npsim"))
        .current_dir(dir)
        .args(["run", "s.ron", "--quiet", "--threads", "1", "--out", "live.h5"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let partial = recorder::partial_path(&out);
    let start = Instant::now();
    // Wait for the first committed rows, not just the file.
    while !recorder::read(&partial).is_ok_and(|s| s.runs.iter().any(|r| r.metrics[0].1.len() > 1)) {
        assert!(start.elapsed() < Duration::from_secs(60), "no rows appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, partial)
}

fn watch_example(args: &[&str], dir: &Path) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples/watch_run.py");
    let output = Command::new("python3")
        .arg(script)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    text
}

#[test]
fn a_running_recording_reads_consistently_in_h5py_npsim_and_the_watch_example() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, partial) = start_writing(dir.path());

    // npsim's reader: the rows up to the last flush, all metrics cut to one length.
    let summary = recorder::read(&partial).unwrap();
    assert!(summary.being_written);
    for run in &summary.runs {
        let n = run.metrics[0].1.len();
        assert!(run.metrics.iter().all(|(_, v)| v.len() == n), "{}", run.group);
        if n > 0 {
            assert_eq!(
                run.attributes["steps_done"],
                Attr::Int(run.metrics[0].1[n - 1] as i64)
            );
        }
    }
    let inspect = npsim(&["inspect", partial.to_str().unwrap()], dir.path());
    let shown = String::from_utf8_lossy(&inspect.stdout).into_owned();
    assert!(inspect.status.success(), "{shown}");
    assert!(shown.contains("being written by a running npsim"), "{shown}");
    assert!(shown.contains(" running "), "{shown}");
    assert!(shown.contains(" waiting "), "{shown}");
    assert!(!shown.contains("interrupted"), "{shown}");

    if h5py_available() {
        let follow = Command::new("python3")
            .args(["-c", H5PY_FOLLOW, partial.to_str().unwrap(), "120"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&follow.stdout).into_owned();
        assert!(
            follow.status.success(),
            "a read saw an inconsistent file: {text}{}",
            String::from_utf8_lossy(&follow.stderr)
        );
        let numbers: Vec<u64> = text.split_whitespace().filter_map(|w| w.parse().ok()).collect();
        let (reads, retries, distinct) = (numbers[0], numbers[1], numbers[2]);
        eprintln!("h5py followed the run: {reads} reads, {retries} retried, {distinct} distinct row counts");
        // The reader sees the rows grow.
        assert!(reads >= 8 && distinct >= 3, "{text}");

        let watched = watch_example(&["live.h5", "--every", "0.3", "--polls", "2"], dir.path());
        let rows: Vec<u64> = watched
            .lines()
            .filter(|l| l.starts_with("run_000 running rows="))
            .map(|l| {
                l["run_000 running rows=".len()..]
                    .split(' ')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect();
        assert_eq!(rows.len(), 2, "{watched}");
        assert!(rows[1] > rows[0], "{watched}");
        assert!(watched.contains("run_002 waiting rows=0"), "{watched}");
    }

    // A killed writer holds no lock: the file is no longer "being written".
    writer.kill().unwrap();
    writer.wait().unwrap();
    let summary = recorder::read(&partial).unwrap();
    assert!(!summary.being_written);
    assert!(
        summary
            .runs
            .iter()
            .all(|r| r.attributes["status"] == Attr::Text("interrupted".into()))
    );
    if h5py_available() {
        let watched = watch_example(&["live.h5"], dir.path());
        assert!(watched.contains("run_000 interrupted"), "{watched}");
        assert!(watched.contains("no npsim is writing it"), "{watched}");
    }
}
