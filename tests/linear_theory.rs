//! Simulated NP on the deep linear network (100-1000-10) against the four-variable
//! mean-field theory (paper Appendix B.3), and divergence above the critical rate.

mod common;

use common::{metric, run_text, text, theory};

const SCENARIO: &str = r#"(
    version: 1,
    name: "theory-check",
    circuit: DeepLinear(lx: 100, lh: 1000, ly: 10),
    task: LinearTeacher(teacher_noise_std: 0.0),
    rule: NodePerturbation(learning_rate: RelativeToCritical(1.0)),
    train: (steps: 10000, record_every: 500),
    sweep: {
        "rule.learning_rate": [RelativeToCritical(0.5), RelativeToCritical(1.0), RelativeToCritical(2.0)],
        "seed": [1, 2, 3],
    },
)"#;

#[test]
fn np_follows_four_variable_theory_and_diverges_above_critical_rate() {
    let dir = tempfile::tempdir().unwrap();
    let (_, summary) = run_text(dir.path(), SCENARIO);
    assert_eq!(summary.runs.len(), 9);
    // Runs are ordered learning rate (slow) × seed (fast).
    // At Lh = 1000 the mean-field theory (a large-width limit) is close at 0.5 η* (measured:
    // within 16 % over 10,000 steps) and drifts slowly at η* (within 60 % over 6,000 steps),
    // while the error falls by one to two decades. Tolerances: 1.3 and 1.8.
    for (rate, runs, window, tolerance) in [
        ("0.5", &summary.runs[0..3], 10_000.0, 1.3f64),
        ("1.0", &summary.runs[3..6], 6_000.0, 1.8f64),
    ] {
        for run in runs {
            assert_eq!(text(run, "status"), "completed", "{rate} η*");
        }
        let steps = metric(&runs[0], "step");
        let predicted = theory(&runs[0], "epsilon_4v");
        let mut worst: f64 = 0.0;
        for (i, &step) in steps
            .iter()
            .enumerate()
            .filter(|(_, s)| **s > 0.0 && **s <= window)
        {
            // Geometric mean over seeds of the simulated error.
            let log_mean = runs.iter().map(|r| metric(r, "epsilon")[i].ln()).sum::<f64>() / runs.len() as f64;
            let ratio = (log_mean - predicted[i].ln()).exp();
            eprintln!("{rate} η*, step {step}: simulated/theory = {ratio:.3}");
            worst = worst.max(ratio.ln().abs());
        }
        assert!(
            worst < tolerance.ln(),
            "{rate} η*: simulation departs from theory by a factor {}",
            worst.exp()
        );
        let eps = metric(&runs[0], "epsilon");
        assert!(
            eps[eps.len() - 1] < eps[0] / 10.0,
            "{rate} η*: the error must fall a decade"
        );
    }
    for run in &summary.runs[6..9] {
        assert_eq!(text(run, "status"), "diverged", "2 η* must diverge");
        assert!(run.attributes.contains_key("diverged_at_step"));
    }
}

const NOISY_TEACHER: &str = r#"(
    version: 1,
    name: "noisy-teacher",
    circuit: DeepLinear(lx: 100, lh: 1000, ly: 10),
    task: LinearTeacher(teacher_noise_std: 0.31622776601683794),
    rule: NodePerturbation(learning_rate: RelativeToCritical(0.3)),
    train: (steps: 100000, record_every: 2000),
    sweep: { "seed": [1, 2, 3, 4] },
)"#;

#[test]
fn teacher_noise_turns_the_error_back_up_where_theory_says() {
    // Paper Fig. 3A/B: with σt² = 0.1 the error reaches a minimum and rises again. Around
    // the minimum the curve is flat to within the run-to-run noise (±0.05 in ln ε over
    // 30,000–60,000 steps), so the minimum is taken of the seed-averaged ln ε smoothed over
    // five records (±4,000 steps). Measured (seeds 1–4): 44,000 against the four-variable model's
    // 34,000; we accept the simulated minimum between 0.7 and 1.4 times the predicted step.
    let dir = tempfile::tempdir().unwrap();
    let (_, summary) = run_text(dir.path(), NOISY_TEACHER);
    let steps = metric(&summary.runs[0], "step");
    let log_mean: Vec<f64> = (0..steps.len())
        .map(|i| {
            summary
                .runs
                .iter()
                .map(|r| metric(r, "epsilon")[i].ln())
                .sum::<f64>()
                / summary.runs.len() as f64
        })
        .collect();
    let smoothed: Vec<f64> = (0..log_mean.len())
        .map(|i| {
            let window = &log_mean[i.saturating_sub(2)..(i + 3).min(log_mean.len())];
            window.iter().sum::<f64>() / window.len() as f64
        })
        .collect();
    let argmin = |v: &[f64]| (0..v.len()).min_by(|&a, &b| v[a].total_cmp(&v[b])).unwrap();
    let simulated = steps[argmin(&smoothed)];
    let predicted_curve = theory(&summary.runs[0], "epsilon_4v");
    let predicted = theory(&summary.runs[0], "step")[argmin(predicted_curve)];
    eprintln!("minimum: simulated step {simulated}, theory {predicted}");
    assert!(
        (0.7..1.4).contains(&(simulated / predicted)),
        "minimum at {simulated}, theory {predicted}"
    );
    let last = *log_mean.last().unwrap();
    // Measured: the error is about 17 % above its minimum at 100,000 steps; require 8 %.
    assert!(
        last > log_mean[argmin(&log_mean)] + 0.08f64,
        "the error must rise after its minimum"
    );
}
