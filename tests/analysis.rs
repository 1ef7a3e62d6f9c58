//! Sweeps with linked axes and `npsim analyze` end to end.

use std::path::Path;
use std::process::Command;

use npsim::recorder;
use npsim::scenario::Scenario;

mod common;
use common::{h5py_available, metric, npsim};

const SWEEP: &str = r#"(
    version: 1,
    name: "analysed",
    circuit: DeepLinear(lx: 8, lh: 16, ly: 2),
    task: LinearTeacher(teacher_noise_std: 0.0),
    rule: NodePerturbation(learning_rate: RelativeToCritical(0.5)),
    train: (steps: 600, record_every: 10),
    analysis: (target: "epsilon=10%"),
    sweep: {
        "rule.learning_rate": [RelativeToCritical(0.1), RelativeToCritical(0.3), RelativeToCritical(0.6)],
        "seed": [1, 2],
    },
)"#;

#[test]
fn a_linked_axis_sets_its_paths_together() {
    let text = SWEEP.replace(
        r#""seed": [1, 2],"#,
        r#""circuit.lh, circuit.ly": [(16, 2), (32, 4)],"#,
    );
    let mut scenario = Scenario::parse(Path::new("linked.ron"), text).unwrap();
    let runs = scenario.runs().unwrap();
    assert_eq!(runs.len(), 6, "3 learning rates × 2 linked sizes");
    let sizes: Vec<(String, String)> = runs
        .iter()
        .map(|r| {
            let value = |path: &str| r.assignments.iter().find(|(p, _)| p == path).unwrap().1.clone();
            (value("circuit.lh"), value("circuit.ly"))
        })
        .collect();
    // Keys in alphabetical order, the last (the learning rate) varying fastest.
    assert_eq!(sizes[2], ("16".into(), "2".into()));
    assert_eq!(sizes[3], ("32".into(), "4".into()));
    let expanded = runs[3].circuit_config();
    let size = |name: &str| expanded.populations.iter().find(|p| p.name == name).unwrap().size;
    assert_eq!((size("h"), size("y")), (32, 4));
    // A path inside the linked key cannot be overridden.
    let refused = scenario
        .apply_overrides(&["circuit.ly=3".into()])
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("the scenario's sweep sets `circuit.ly`"),
        "{refused}"
    );
}

#[test]
fn analyze_finds_each_runs_time_to_target_and_the_best_rate() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.ron"), SWEEP).unwrap();
    let run = npsim(&["run", "s.ron", "--out", "out.h5"], dir.path());
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(
        String::from_utf8_lossy(&run.stdout).contains("minimum training time"),
        "a scenario with an analysis block prints its summary"
    );
    let analysed = npsim(&["analyze", "out.h5", "--json"], dir.path());
    assert!(
        analysed.status.success(),
        "{}",
        String::from_utf8_lossy(&analysed.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&analysed.stdout).unwrap();
    assert_eq!(
        json["analysis"]["target"]["metric"], "epsilon",
        "the stored target is reused"
    );

    // Independently: the first recorded step with ε ≤ ε0/10, per run; then per rate the mean
    // over both seeds, and the smallest mean.
    let file = recorder::read(&dir.path().join("out.h5")).unwrap();
    let mut by_rate: Vec<(f64, Vec<f64>)> = Vec::new();
    for (k, run) in file.runs.iter().enumerate() {
        let (steps, eps) = (metric(run, "step"), metric(run, "epsilon"));
        let first = steps
            .iter()
            .zip(eps)
            .find(|&(_, &e)| e <= eps[0] / 10.0)
            .map(|(&s, _)| s);
        let reported = json["runs"][k]["time_to_target"].as_f64();
        assert_eq!(reported, first, "{}", run.group);
        let rate = match run.attributes["learning_rate"] {
            npsim::recorder::Attr::Float(v) => v,
            ref other => panic!("{other:?}"),
        };
        let time = first.expect("every rate tried reaches 10 % within 600 steps");
        match by_rate.iter_mut().find(|(r, _)| *r == rate) {
            Some((_, times)) => times.push(time),
            None => by_rate.push((rate, vec![time])),
        }
    }
    let means: Vec<(f64, f64)> = by_rate
        .iter()
        .map(|(r, t)| (*r, t.iter().sum::<f64>() / t.len() as f64))
        .collect();
    let best = means.iter().min_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
    let group = &json["groups"][0];
    assert_eq!(json["groups"].as_array().unwrap().len(), 1);
    assert_eq!(group["best_learning_rate"].as_f64(), Some(best.0));
    assert_eq!(group["minimum_training_time"].as_f64(), Some(best.1));
    // NP's training time falls as the rate grows towards its optimum (about half the critical
    // rate, Section 4), so the slowest rate is the smallest.
    assert!(means[0].1 > best.1, "{means:?}");

    // A target on a metric the runs lack is reported per run, not a crash.
    let missing = npsim(
        &["analyze", "out.h5", "--target", "test_accuracy=0.9"],
        dir.path(),
    );
    assert!(missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stdout).contains("no metric `test_accuracy` in this run"));
    let bad = npsim(&["analyze", "out.h5", "--target", "epsilon"], dir.path());
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not `metric=value`"));
}

#[test]
fn h5py_reads_the_summary() {
    if !h5py_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let text = SWEEP.replace("steps: 600", "steps: 200");
    std::fs::write(dir.path().join("s.ron"), text).unwrap();
    assert!(
        npsim(&["run", "s.ron", "--out", "out.h5", "--quiet"], dir.path())
            .status
            .success()
    );
    // Analysed again with another target: /summary is replaced, not duplicated.
    assert!(
        npsim(&["analyze", "out.h5", "--target", "epsilon=50%"], dir.path())
            .status
            .success()
    );
    let check = r#"
import h5py, math, sys
f = h5py.File(sys.argv[1], "r")
s = f["summary"]
assert s.attrs["target"] == "epsilon=50%", s.attrs["target"]
runs = s["runs"]
assert runs.attrs["runs"].split(",") == sorted(f["runs"].keys())
for k, name in enumerate(sorted(f["runs"].keys())):
    eps = f["runs"][name]["metrics"]["epsilon"][()]
    steps = f["runs"][name]["metrics"]["step"][()]
    hit = [st for st, e in zip(steps, eps) if e <= 0.5 * eps[0]]
    t = runs["time_to_target"][k]
    assert (hit and hit[0] == t) or (not hit and math.isnan(t)), (name, hit, t)
g = s["minimum_training_time"]["group_000"]
assert list(g["seeds"][()]) == [2.0, 2.0, 2.0]
print("ok")
"#;
    let output = Command::new("python3")
        .args(["-c", check])
        .arg(dir.path().join("out.h5"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_theorys_onset_of_instability_is_reported_on_the_recorded_grid() {
    // NP on a linear network with teacher noise (Fig. 3B): the mean-field error falls, then
    // rises from τc on. The summary's theory column is read off the recorded curve; the onset
    // computed step by step by the theory itself must lie within one record of it.
    let text = r#"(
        version: 1,
        name: "onset",
        circuit: DeepLinear(lx: 20, lh: 200, ly: 4),
        task: LinearTeacher(teacher_noise_std: 0.2),
        rule: NodePerturbation(learning_rate: RelativeToCritical(0.4)),
        train: (steps: 12000, record_every: 500),
    )"#;
    let dir = tempfile::tempdir().unwrap();
    let (_, file) = common::run_text(dir.path(), text);
    let summary = npsim::analysis::analyse(&file, &npsim::analysis::Analysis::default());
    let on_grid = summary.runs[0]
        .theory_minimum_step
        .expect("the theory turns within the run");
    let rate = match file.runs[0].attributes["learning_rate"] {
        npsim::recorder::Attr::Float(v) => v,
        ref other => panic!("{other:?}"),
    };
    let theory = npsim_models::TheorySettings {
        dims: npsim_models::LinearDims {
            lx: 20,
            lh: 200,
            ly: 4,
        },
        init_scale: 1.0,
        learning_rate: rate,
        teacher_noise_var: 0.04,
    };
    let (tau_c, _) = theory.instability_onset(12000).unwrap();
    assert!(
        (on_grid - tau_c as f64).abs() <= 500.0,
        "grid {on_grid}, τc {tau_c}"
    );
}
