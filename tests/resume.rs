//! `npsim run --resume`: a sweep killed half-way finishes with the numbers of an
//! uninterrupted sweep.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

mod common;
use common::{fingerprint, npsim};

// Run 0 is short; run 1 takes seconds, so a kill soon after the start catches it mid-way.
const SWEEP: &str = r#"(
    version: 1,
    name: "resumable",
    circuit: DeepLinear(lx: 20, lh: 400, ly: 5),
    task: LinearTeacher(teacher_noise_std: 0.0),
    rule: NodePerturbation(learning_rate: RelativeToCritical(0.5)),
    train: (steps: 300, record_every: 100, sync_every: 100),
    sweep: { "train.steps": [300, 150000] },
)"#;

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn a_killed_sweep_resumes_to_the_uninterrupted_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("s.ron"), SWEEP).unwrap();
    let full = npsim(
        &["run", "s.ron", "--out", "full.h5", "--quiet", "--set", "seed=3"],
        d,
    );
    assert!(full.status.success(), "{}", text(&full));

    let mut child = Command::new(env!("CARGO_BIN_EXE_npsim"))
        .current_dir(d)
        .args([
            "run",
            "s.ron",
            "--out",
            "cut.h5",
            "--quiet",
            "--threads",
            "1",
            "--set",
            "seed=3",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let partial = d.join("cut.h5.partial");
    // A liveness guard, not a timing assertion.
    for _ in 0..3000 {
        if partial.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(700));
    child.kill().unwrap();
    child.wait().unwrap();
    let cut = npsim::recorder::read(&partial).unwrap();
    let status: Vec<String> = cut
        .runs
        .iter()
        .map(|r| r.attributes["status"].to_string())
        .collect();
    assert_eq!(status[1], "interrupted", "the long run was cut: {status:?}");

    let resumed = npsim(&["run", "--resume", "cut.h5"], d);
    assert!(resumed.status.success(), "{}", text(&resumed));
    assert!(text(&resumed).contains("redid"), "{}", text(&resumed));
    assert!(!partial.exists() && !d.join("cut.h5.resume.h5").exists());
    assert_eq!(fingerprint(&d.join("cut.h5")), fingerprint(&d.join("full.h5")));
    let merged = npsim::recorder::read(&d.join("cut.h5")).unwrap();
    assert_eq!(merged.attributes["overrides"].to_string(), "seed=3");

    // Nothing left to do, and a file that is not there.
    let again = npsim(&["run", "--resume", "cut.h5"], d);
    assert!(again.status.success());
    assert!(
        text(&again).contains("every run had ended (2 kept)"),
        "{}",
        text(&again)
    );
    let missing = npsim(&["run", "--resume", "nothing.h5"], d);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        text(&missing).contains("no recording at `nothing.h5` or `nothing.h5.partial`"),
        "{}",
        text(&missing)
    );
}
