//! SARCOS end to end on small MATLAB v5 files in the real layout (n × 28: 21 inputs, then
//! 7 torques), compressed as MATLAB writes them by default.

mod common;

use common::{metric, run_text, text};
use npsim_models::sarcos::write_mat_v5;

#[test]
fn np_and_sgd_fit_a_synthetic_sarcos_regression() {
    let dir = tempfile::tempdir().unwrap();
    // Torques a fixed linear function of the 21 inputs, inputs in [-1, 1].
    let mut state = 7u64;
    let mut uniform = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    };
    let mixing: Vec<f64> = (0..7 * 21).map(|_| uniform()).collect();
    let mut table = |n: usize| {
        let rows: Vec<Vec<f64>> = (0..n)
            .map(|_| {
                let x: Vec<f64> = (0..21).map(|_| uniform()).collect();
                let y = (0..7).map(|k| (0..21).map(|j| mixing[k * 21 + j] * x[j]).sum::<f64>());
                x.iter().copied().chain(y).collect()
            })
            .collect();
        // Column-major n × 28.
        (0..28)
            .flat_map(|j| rows.iter().map(move |r| r[j]))
            .collect::<Vec<f64>>()
    };
    write_mat_v5(
        &dir.path().join("sarcos_inv.mat"),
        "sarcos_inv",
        2000,
        28,
        &table(2000),
        true,
    )
    .unwrap();
    write_mat_v5(
        &dir.path().join("sarcos_inv_test.mat"),
        "sarcos_inv_test",
        500,
        28,
        &table(500),
        true,
    )
    .unwrap();
    let scenario = format!(
        r#"(
    version: 1,
    name: "sarcos-small",
    circuit: Mlp(input: 21, hidden: [], output: 7, output_activation: Linear),
    task: Sarcos(data_dir: "{}"),
    rule: Sgd(learning_rate: Absolute(1e-3)),
    train: (epochs: 10, batch_size: 20),
    sweep: {{ "rule": [Sgd(learning_rate: Absolute(1e-3)), NodePerturbation(learning_rate: Absolute(1e-3))] }},
)"#,
        dir.path().display()
    );
    let out = tempfile::tempdir().unwrap();
    let (recording, summary) = run_text(out.path(), &scenario);
    for run in &summary.runs {
        assert_eq!(text(run, "task"), "sarcos");
        assert_eq!(text(run, "train_samples"), "2000");
        let loss = metric(run, "test_loss");
        eprintln!(
            "{}: test loss {:.4} -> {:.4}",
            text(run, "rule"),
            loss[0],
            loss[loss.len() - 1]
        );
        // Measured: both fit this noiseless linear map to below 1e-4 of the initial error;
        // require a factor 5.
        assert!(loss[loss.len() - 1] < loss[0] / 5.0, "{loss:?}");
    }
    // Fig. 4D's kind of figure: the summed squared weight norms against the test error.
    let plot = common::npsim(
        &["plot", recording.to_str().unwrap(), "--out", "figures"],
        out.path(),
    );
    assert!(plot.status.success(), "{}", String::from_utf8_lossy(&plot.stderr));
    let svg = std::fs::read_to_string(out.path().join("figures/phase_plane.svg")).unwrap();
    for text in [
        "squared weight norm",
        "test_loss",
        "rule=Sgd",
        "rule=NodePerturbation",
    ] {
        assert!(svg.contains(text), "phase plane lacks `{text}`");
    }
}

#[test]
fn a_missing_sarcos_file_is_a_clear_error() {
    let scenario = r#"(
    version: 1,
    name: "sarcos-missing",
    circuit: Mlp(input: 21, hidden: [], output: 7, output_activation: Linear),
    task: Sarcos(data_dir: "/nonexistent"),
    rule: Sgd(learning_rate: Absolute(1e-3)),
    train: (epochs: 1),
)"#;
    let scenario = npsim::scenario::Scenario::parse(std::path::Path::new("s.ron"), scenario.into()).unwrap();
    let err = scenario.plans().unwrap_err().to_string();
    assert!(
        err.starts_with("s.ron: task: data file `/nonexistent/sarcos_inv.mat` not found"),
        "{err}"
    );
}
