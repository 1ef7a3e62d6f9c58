//! Unit tests of the analysis on synthetic curves with known answers.

use super::*;

fn run(group: &str, lr: f64, seed: i64, condition: &str, values: &[f64]) -> RunSummary {
    let mut attributes = std::collections::HashMap::new();
    attributes.insert("learning_rate".to_string(), Attr::Float(lr));
    attributes.insert("seed".to_string(), Attr::Int(seed));
    attributes.insert("status".to_string(), Attr::Text("completed".into()));
    attributes.insert("error_metric".to_string(), Attr::Text("epsilon".into()));
    attributes.insert("sweep:seed".to_string(), Attr::Text(seed.to_string()));
    attributes.insert("sweep:circuit.lh".to_string(), Attr::Text(condition.into()));
    RunSummary {
        group: group.into(),
        attributes,
        metrics: vec![
            (
                "step".into(),
                (0..values.len()).map(|k| 10.0 * k as f64).collect(),
            ),
            ("epsilon".into(), values.to_vec()),
        ],
        theory: vec![],
        weights: vec![],
    }
}

#[test]
fn targets_read_as_written() {
    assert_eq!(
        Target::parse("epsilon=1%").unwrap().threshold,
        Threshold::RelativeToInitial(0.01)
    );
    assert_eq!(
        Target::parse(" test_accuracy = 0.97").unwrap().threshold,
        Threshold::Absolute(0.97)
    );
    assert_eq!(Target::parse("epsilon=1%").unwrap().to_string(), "epsilon=1%");
    assert!(Target::parse("epsilon").unwrap_err().contains("metric=value"));
    assert!(
        Target::parse("epsilon=abc")
            .unwrap_err()
            .contains("not a finite number")
    );
    assert!(Target::parse("epsilon=-5%").unwrap_err().contains("> 0"));
}

#[test]
fn the_target_is_crossed_from_the_initial_side() {
    let steps = [0.0, 1.0, 2.0, 3.0];
    assert_eq!(
        time_to_target(&steps, &[1.0, 0.5, 0.05, 0.001], 1.0, 0.01),
        Some(3.0)
    );
    assert_eq!(time_to_target(&steps, &[1.0, 0.5, 0.05, 0.02], 1.0, 0.01), None);
    // Accuracy rises to its target.
    assert_eq!(
        time_to_target(&steps, &[0.1, 0.8, 0.97, 0.99], 0.1, 0.95),
        Some(2.0)
    );
}

#[test]
fn the_minimum_and_the_return_to_the_initial_level_are_found() {
    let steps: Vec<f64> = (0..9).map(f64::from).collect();
    let values = [1.0, 0.5, 0.2, 0.1, 0.2, 0.5, 0.9, 1.2, 2.0];
    assert_eq!(instability(&steps, &values, 1), (Some(3.0), Some(7.0)));
    // A moving average of 3 records: (0.5 + 0.9 + 1.2)/3 < 1 at step 6, (0.9 + 1.2 + 2)/3 > 1 at 7.
    assert_eq!(instability(&steps, &values, 3), (Some(3.0), Some(7.0)));
    assert_eq!(smooth(&[1.0, 2.0, 3.0, 4.0], 3), [1.5, 2.0, 3.0, 3.5]);
    assert_eq!(instability(&steps, &[1.0, 0.5, 0.25], 1), (Some(2.0), None));
    // A blow-up to infinity right after the start: the minimum is the start, and the
    // infinite record is the return.
    assert_eq!(
        instability(&steps, &[1.0, f64::INFINITY], 5),
        (Some(0.0), Some(1.0))
    );
    assert_eq!(smooth(&[1.0, f64::NAN, 3.0], 3), [1.0, 2.0, 3.0]);
}

#[test]
fn the_minimum_training_time_is_the_best_seed_averaged_rate() {
    let fall = |k: usize| -> Vec<f64> { (0..12).map(|i| if i >= k { 0.001 } else { 1.0 }).collect() };
    let never = vec![1.0; 12];
    let file = FileSummary {
        being_written: false,
        attributes: Default::default(),
        runs: vec![
            run("run_000", 0.1, 1, "100", &fall(8)),
            run("run_001", 0.1, 2, "100", &fall(6)),
            run("run_002", 0.2, 1, "100", &fall(4)),
            run("run_003", 0.2, 2, "100", &fall(3)),
            run("run_004", 0.4, 1, "100", &fall(2)),
            run("run_005", 0.4, 2, "100", &never),
            run("run_006", 0.1, 1, "200", &never),
            run("run_007", 0.1, 2, "200", &never),
        ],
    };
    let summary = analyse(&file, &Analysis::default());
    assert_eq!(summary.runs[0].time_to_target, Some(80.0));
    assert_eq!(summary.groups.len(), 2);
    let g = &summary.groups[0];
    assert_eq!(g.label, "circuit.lh=100");
    assert_eq!(g.best_learning_rate, Some(0.2));
    assert_eq!(g.minimum_training_time, Some(35.0));
    assert!((g.spread.unwrap() - 50f64.sqrt()).abs() < 1e-12);
    assert!(!g.best_at_edge);
    // The fastest single run (lr 0.4, seed 1) does not count: its other seed never got there.
    assert_eq!(
        (g.rates[2].reached, g.rates[2].seeds, g.rates[2].mean_time),
        (1, 2, None)
    );
    assert_eq!(summary.groups[1].minimum_training_time, None);
    assert!(summary.table().contains("not reached at any learning rate"));
}

#[test]
fn with_an_accuracy_target_the_instability_is_still_the_errors() {
    let mut accuracy_run = run("run_000", 0.1, 1, "100", &[1.0, 0.5, 0.2, 0.6, 1.5]);
    accuracy_run
        .metrics
        .push(("test_accuracy".into(), vec![0.1, 0.5, 0.8, 0.4, 0.1]));
    let analysis = Analysis {
        target: Target::parse("test_accuracy=0.7").unwrap(),
        smoothing: 1,
    };
    let result = analyse_run(&accuracy_run, &analysis);
    assert_eq!(
        result.time_to_target,
        Some(20.0),
        "accuracy rises to 0.7 at step 20"
    );
    assert_eq!(
        (result.minimum_step, result.return_step),
        (Some(20.0), Some(40.0)),
        "the error (epsilon) is smallest at step 20 and back above its start at 40"
    );
}

#[test]
fn a_missing_metric_is_named_with_what_the_run_has() {
    let analysis = Analysis {
        target: Target::parse("test_accuracy=0.9").unwrap(),
        smoothing: 1,
    };
    let result = analyse_run(&run("run_000", 0.1, 1, "100", &[1.0]), &analysis);
    assert_eq!(
        result.problem.as_deref(),
        Some("no metric `test_accuracy` in this run; it records: epsilon")
    );
}
