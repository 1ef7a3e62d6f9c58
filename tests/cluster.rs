//! Sweeps on a cluster: the SLURM array script, per-index runs and `npsim merge`.

use std::process::{Command, Output};

mod common;
use common::{fingerprint, npsim};

const SWEEP: &str = r#"(
    version: 1,
    name: "spread",
    circuit: DeepLinear(lx: 8, lh: 16, ly: 2),
    task: LinearTeacher(teacher_noise_std: 0.1),
    rule: NodePerturbation(learning_rate: RelativeToCritical(0.5)),
    train: (steps: 300, record_every: 20),
    analysis: (target: "epsilon=20%"),
    sweep: {
        "rule.learning_rate": [RelativeToCritical(0.2), RelativeToCritical(0.5), RelativeToCritical(1.5)],
        "seed": [1, 2],
    },
)"#;

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn per_index_runs_merged_equal_the_local_sweep_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("s.ron"), SWEEP).unwrap();
    ok(npsim(&["run", "s.ron", "--out", "local.h5", "--quiet"], d));
    // In reverse order, as a cluster may finish them.
    for k in (0..6).rev() {
        let out = format!("parts/part_{k:05}.h5");
        ok(npsim(
            &[
                "run",
                "s.ron",
                "--only-run",
                &k.to_string(),
                "--out",
                &out,
                "--quiet",
            ],
            d,
        ));
    }
    let parts: Vec<String> = (0..6).map(|k| format!("parts/part_{k:05}.h5")).collect();
    let mut args = vec!["merge"];
    args.extend(parts.iter().map(String::as_str));
    args.extend(["--out", "merged.h5"]);
    ok(npsim(&args, d));
    assert_eq!(
        fingerprint(&d.join("merged.h5")),
        fingerprint(&d.join("local.h5"))
    );
    // The merged file has the local sweep's layout and its summary.
    let local = npsim::recorder::read(&d.join("local.h5")).unwrap();
    let merged = npsim::recorder::read(&d.join("merged.h5")).unwrap();
    let groups =
        |f: &npsim::recorder::FileSummary| f.runs.iter().map(|r| r.group.clone()).collect::<Vec<_>>();
    assert_eq!(groups(&merged), groups(&local));
    for (a, b) in local.runs.iter().zip(&merged.runs) {
        assert_eq!(a.attributes, b.attributes, "{}", a.group);
    }
    assert!(!merged.attributes.contains_key("only_run"));
    assert_eq!(merged.attributes["scenario"], local.attributes["scenario"]);
    let summary = |file: &str| String::from_utf8(ok(npsim(&["analyze", file, "--json"], d)).stdout).unwrap();
    assert_eq!(summary("merged.h5"), summary("local.h5"));

    // Incomplete, duplicated and foreign parts are refused, and nothing is written.
    let refused = npsim(&["merge", &parts[0], &parts[2], "--out", "x.h5"], d);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("runs run_001, run_003, run_004, run_005 of the sweep's 6 are in no part"),
        "{}",
        stderr(&refused)
    );
    assert!(stderr(&refused).contains("--only-run 1, 3, 4, 5"));
    let twice = npsim(&["merge", &parts[0], &parts[0], "--out", "x.h5"], d);
    assert!(
        stderr(&twice).contains("`run_000` is in both"),
        "{}",
        stderr(&twice)
    );
    std::fs::write(d.join("other.ron"), SWEEP.replace("steps: 300", "steps: 200")).unwrap();
    ok(npsim(
        &[
            "run",
            "other.ron",
            "--only-run",
            "1",
            "--out",
            "other.h5",
            "--quiet",
        ],
        d,
    ));
    let foreign = npsim(&["merge", &parts[0], "other.h5", "--out", "x.h5"], d);
    assert_eq!(foreign.status.code(), Some(2));
    assert!(
        stderr(&foreign).contains("does not belong with"),
        "{}",
        stderr(&foreign)
    );
    assert!(!d.join("x.h5").exists() && !d.join("x.h5.partial").exists());
    let existing = npsim(&["merge", &parts[0], "--out", "merged.h5"], d);
    assert_eq!(
        existing.status.code(),
        Some(2),
        "an existing output is kept: {}",
        stderr(&existing)
    );

    let beyond = npsim(&["run", "s.ron", "--only-run", "6", "--out", "y.h5"], d);
    assert_eq!(beyond.status.code(), Some(2));
    assert!(
        stderr(&beyond).contains("has 6 run(s), numbered 0 to 5"),
        "{}",
        stderr(&beyond)
    );
}

#[test]
fn the_emitted_slurm_script_is_valid_bash_with_one_task_per_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("s.ron"), SWEEP).unwrap();
    let out = ok(npsim(
        &[
            "run",
            "s.ron",
            "--emit-slurm",
            "job dir",
            "--set",
            "train.steps=100",
            "--threads",
            "2",
        ],
        d,
    ));
    assert!(String::from_utf8_lossy(&out.stdout).contains("6 array tasks"));
    assert!(!d.join("runs").exists(), "emitting a script runs nothing");
    let script_path = d.join("job dir/spread.sbatch");
    let script = std::fs::read_to_string(&script_path).unwrap();
    assert!(script.contains("#SBATCH --array=0-5\n"), "{script}");
    assert!(script.contains("#SBATCH --cpus-per-task=2\n"));
    assert!(script.contains("--only-run \"$SLURM_ARRAY_TASK_ID\""));
    assert!(script.contains("--set 'train.steps=100'"));
    let syntax = Command::new("bash").arg("-n").arg(&script_path).output().unwrap();
    assert!(
        syntax.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    // Run as array task 1 would, with the executable and paths the script names.
    let task = Command::new("bash")
        .arg(&script_path)
        .env("SLURM_ARRAY_TASK_ID", "1")
        .env("SLURM_CPUS_PER_TASK", "1")
        .output()
        .unwrap();
    assert!(task.status.success(), "{}", String::from_utf8_lossy(&task.stderr));
    let part = npsim::recorder::read(&d.join("job dir/part_00001.h5")).unwrap();
    assert_eq!(part.runs.len(), 1);
    assert_eq!(part.runs[0].group, "run_001");
    assert_eq!(part.runs[0].attributes["steps_done"].to_string(), "100");
}
