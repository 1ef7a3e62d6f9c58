//! The `npsim` command end to end.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

fn npsim(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_npsim"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const TINY: &str = r#"(
    version: 1,
    name: "tiny",
    circuit: DeepLinear(lx: 8, lh: 16, ly: 2),
    task: LinearTeacher(teacher_noise_std: 0.0),
    rule: NodePerturbation(learning_rate: RelativeToCritical(0.5)),
    train: (steps: 400, record_every: 20),
)"#;

fn scenario(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("s.ron");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn run_writes_default_output_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    scenario(dir.path(), TINY);
    let first = npsim(&["run", "s.ron", "--quiet"], dir.path());
    assert!(first.status.success(), "{}", stderr(&first));
    let out = dir.path().join("runs/tiny.h5");
    assert!(out.exists());
    assert!(
        stdout(&first).contains("completed"),
        "summary table: {}",
        stdout(&first)
    );
    let before = std::fs::read(&out).unwrap();
    let again = npsim(
        &["run", "s.ron", "--quiet", "--set", "train.steps=100"],
        dir.path(),
    );
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("already exists; pass --force"),
        "{}",
        stderr(&again)
    );
    assert_eq!(
        std::fs::read(&out).unwrap(),
        before,
        "the old recording is untouched"
    );
    let forced = npsim(
        &["run", "s.ron", "--quiet", "--force", "--set", "train.steps=100"],
        dir.path(),
    );
    assert!(forced.status.success(), "{}", stderr(&forced));
    let inspect = npsim(&["inspect", "runs/tiny.h5"], dir.path());
    assert!(inspect.status.success());
    assert!(
        stdout(&inspect).contains("completed") && stdout(&inspect).contains(" 100 "),
        "{}",
        stdout(&inspect)
    );
}

#[test]
fn invalid_input_exits_2_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    scenario(dir.path(), TINY);
    let bad = npsim(&["run", "s.ron", "--quiet", "--set", "train.steps=0"], dir.path());
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(stderr(&bad), "error: s.ron: train.steps: must be at least 1\n");
    assert!(!dir.path().join("runs").exists());
    let missing = npsim(&["run", "nope.ron"], dir.path());
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("cannot read scenario `nope.ron`"));
}

#[test]
fn theory_eta_star_prints_the_paper_value() {
    let dir = tempfile::tempdir().unwrap();
    let o = npsim(
        &["theory", "eta-star", "--lx", "100", "--lh", "1000", "--ly", "10"],
        dir.path(),
    );
    assert!(o.status.success());
    let line = stdout(&o)
        .lines()
        .find(|l| l.starts_with("eta_star:"))
        .unwrap()
        .to_string();
    let value: f64 = line["eta_star:".len()..].trim().parse().unwrap();
    assert!((value / 1.2019e-4 - 1.0).abs() < 5e-4, "{line}");
    let t = npsim(
        &[
            "theory",
            "trajectory",
            "--steps",
            "1000",
            "--record-every",
            "100",
            "--out",
            "t.csv",
        ],
        dir.path(),
    );
    assert!(t.status.success(), "{}", stderr(&t));
    let csv = std::fs::read_to_string(dir.path().join("t.csv")).unwrap();
    assert!(csv.starts_with("step,epsilon_4v,alpha_4v,beta_4v,epsilon_2v,a_2v\n"));
    assert_eq!(csv.lines().count(), 12);
}

#[test]
fn a_diverging_run_is_recorded_and_the_sweep_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let text = TINY.replace(
        "train: (steps: 400, record_every: 20),",
        "train: (steps: 400, record_every: 20),\n    sweep: { \"rule.learning_rate\": [Absolute(10.0), RelativeToCritical(0.5)] },",
    );
    scenario(dir.path(), &text);
    let o = npsim(&["run", "s.ron", "--quiet", "--out", "d.h5"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let table = stdout(&o);
    assert!(table.contains("diverged@"), "{table}");
    assert!(table.contains("completed"), "{table}");
}

fn wait_for(path: &Path) {
    // A liveness guard for the child, not a timing assertion: five minutes is ample.
    for _ in 0..3000 {
        if path.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{} never appeared", path.display());
}

const LONG: &str = r#"(
    version: 1,
    name: "long",
    circuit: DeepLinear(lx: 50, lh: 2000, ly: 5),
    task: LinearTeacher(teacher_noise_std: 0.0),
    rule: NodePerturbation(learning_rate: RelativeToCritical(0.5)),
    train: (steps: 100000000, record_every: 100, sync_every: 1000),
)"#;

#[test]
fn ctrl_c_marks_runs_interrupted_and_keeps_the_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    scenario(dir.path(), LONG);
    let child = Command::new(env!("CARGO_BIN_EXE_npsim"))
        .current_dir(dir.path())
        .args(["run", "s.ron", "--quiet", "--out", "l.h5"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let partial = dir.path().join("l.h5.partial");
    wait_for(&partial);
    std::thread::sleep(Duration::from_millis(500));
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(!dir.path().join("l.h5").exists());
    let summary = npsim::recorder::read(&partial).unwrap();
    let run = &summary.runs[0];
    assert_eq!(run.attributes["status"].to_string(), "interrupted");
    let steps = &run.metrics.iter().find(|(n, _)| n == "step").unwrap().1;
    assert_eq!(
        run.attributes["steps_done"].to_string(),
        format!("{}", *steps.last().unwrap() as u64)
    );
}

#[test]
fn a_killed_run_leaves_a_readable_prefix() {
    let dir = tempfile::tempdir().unwrap();
    scenario(dir.path(), LONG);
    let mut child = Command::new(env!("CARGO_BIN_EXE_npsim"))
        .current_dir(dir.path())
        .args(["run", "s.ron", "--quiet", "--out", "k.h5"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let partial = dir.path().join("k.h5.partial");
    wait_for(&partial);
    // Wait for at least two syncs' worth of steps to reach the file, then SIGKILL.
    let mut synced = 0;
    for _ in 0..3000 {
        std::thread::sleep(Duration::from_millis(100));
        if std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0) > 0 {
            synced += 1;
        }
        if synced > 20 {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let summary = npsim::recorder::read(&partial).unwrap();
    let run = &summary.runs[0];
    assert_eq!(
        run.attributes["status"].to_string(),
        "interrupted",
        "never finished, so never marked otherwise"
    );
    let steps = &run.metrics.iter().find(|(n, _)| n == "step").unwrap().1;
    assert!(steps.len() > 1, "synced metrics survive a kill");
    for (name, values) in &run.metrics {
        assert_eq!(values.len(), steps.len(), "metric {name} is a complete prefix");
    }
}

#[test]
fn bench_gemm_prints_its_rate_last_plain_and_fused() {
    let dir = tempfile::tempdir().unwrap();
    for fused in [false, true] {
        let mut args = vec![
            "bench",
            "gemm",
            "--m",
            "60",
            "--n",
            "7",
            "--k",
            "30",
            "--precision",
            "f64",
            "--reps",
            "1",
        ];
        if fused {
            args.push("--fused");
        }
        let out = npsim(&args, dir.path());
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        let last = text.lines().last().unwrap_or_default();
        let rate: f64 = last
            .strip_prefix("gflops: ")
            .unwrap_or_else(|| panic!("last line {last:?}"))
            .parse()
            .unwrap();
        assert!(rate > 0.0 && rate.is_finite(), "{last}");
        assert_eq!(text.contains("fused rank-7 update of 60x30"), fused, "{text}");
    }
}
