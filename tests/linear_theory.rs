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

const SGD: &str = r#"(
    version: 1,
    name: "sgd-theory-check",
    circuit: DeepLinear(lx: 100, lh: 1000, ly: 10),
    task: LinearTeacher(teacher_noise_std: 0.0),
    rule: Sgd(learning_rate: RelativeToSgdOptimal(0.5)),
    train: (steps: 1000, record_every: 100),
    sweep: { "seed": [1, 2, 3] },
)"#;

/// Asserts that the seed-averaged error of `runs` is within a factor `tolerance` of the
/// theory's `epsilon_4v` at every record from `from_step` on; returns the seed-averaged `ln ε`.
fn assert_follows_theory(
    label: &str,
    runs: &[npsim::recorder::RunSummary],
    from_step: f64,
    tolerance: f64,
) -> Vec<f64> {
    let steps = metric(&runs[0], "step");
    let predicted = theory(&runs[0], "epsilon_4v");
    let log_mean: Vec<f64> = (0..steps.len())
        .map(|i| runs.iter().map(|r| metric(r, "epsilon")[i].ln()).sum::<f64>() / runs.len() as f64)
        .collect();
    for (i, step) in steps.iter().enumerate().filter(|(_, s)| **s >= from_step) {
        let ratio = (log_mean[i] - predicted[i].ln()).exp();
        eprintln!(
            "{label}, step {step}: simulated {:.4e}, theory {:.4e}: {ratio:.3}",
            log_mean[i].exp(),
            predicted[i]
        );
        assert!(
            ratio.ln().abs() < tolerance.ln(),
            "{label}, step {step}: simulated/theory = {ratio}"
        );
    }
    log_mean
}

#[test]
fn sgd_follows_its_four_variable_theory() {
    // SGD's mean-field model (npsim_models::sgd_theory, derived here: the paper has NP's
    // only) against SGD runs at half SGD's optimal rate, 100-1000-10, three seeds.
    let dir = tempfile::tempdir().unwrap();
    let (_, summary) = run_text(dir.path(), SGD);
    assert_eq!(summary.runs.len(), 3);
    // Without teacher noise the error falls three decades in 1,000 steps; measured
    // simulated/theory 0.95–0.98 to step 400, rising to 1.24 at step 1,000 (the model's error
    // decays slightly faster: W1ᵀW1 is not α I at finite width). Tolerance: 1.4.
    let log_mean = assert_follows_theory("σt = 0", &summary.runs, 0.0, 1.4);
    assert!(log_mean[log_mean.len() - 1] < log_mean[0] - 3.0 * 10f64.ln() + 1.0);
    // With σt² = 0.1 the error levels off at the plateau the second-order terms set (3.6e-4
    // here, against 2.1e-2 at the start); from step 500 on, simulation and model agree within
    // 10 % at every record (measured: within 6 %).
    let noisy = SGD
        .replace("teacher_noise_std: 0.0", "teacher_noise_std: 0.31622776601683794")
        .replace("steps: 1000, record_every: 100", "steps: 3000, record_every: 250");
    let noisy_dir = tempfile::tempdir().unwrap();
    let (_, summary) = run_text(noisy_dir.path(), &noisy);
    assert_follows_theory("σt² = 0.1", &summary.runs, 500.0, 1.1);
}
