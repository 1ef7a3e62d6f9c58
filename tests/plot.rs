//! `npsim plot`: the curves drawn are the seed means of the recorded metric.

use std::path::Path;

mod common;
use common::{metric, npsim, run_text};

const SWEEP: &str = r#"(
    version: 1,
    name: "plotted",
    circuit: DeepLinear(lx: 8, lh: 16, ly: 2),
    task: LinearTeacher(teacher_noise_std: 0.0),
    rule: NodePerturbation(learning_rate: RelativeToCritical(0.5)),
    train: (steps: 400, record_every: 20),
    analysis: (target: "epsilon=20%"),
    sweep: {
        "circuit.lh": [16, 64],
        "rule.learning_rate": [RelativeToCritical(0.2), RelativeToCritical(0.5)],
        "seed": [1, 2, 3],
    },
)"#;

#[test]
fn curves_are_seed_means_with_their_range_and_theory() {
    let dir = tempfile::tempdir().unwrap();
    let (_, file) = run_text(dir.path(), SWEEP);
    let (name, curves) = npsim::plot::curves(&file, None).unwrap();
    assert_eq!(name, "epsilon");
    assert_eq!(curves.len(), 4, "2 widths × 2 rates, seeds averaged");
    // Independently: the first curve is runs 0-2 (lh 16, the smaller rate, seeds 1-3).
    let seeds: Vec<&[f64]> = file.runs[..3].iter().map(|r| metric(r, "epsilon")).collect();
    let first = &curves[0];
    assert_eq!(first.label, "lh=16, learning_rate=RelativeToCritical(0.2)");
    assert_eq!(first.steps, metric(&file.runs[0], "step"));
    for k in 0..first.steps.len() {
        let values: Vec<f64> = seeds.iter().map(|s| s[k]).collect();
        let mean = values.iter().sum::<f64>() / 3.0;
        assert!((first.mean[k] - mean).abs() <= 1e-12 * mean.abs(), "step {k}");
        assert_eq!(first.low[k], values.iter().copied().fold(f64::INFINITY, f64::min));
        assert_eq!(
            first.high[k],
            values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
        );
    }
    assert!(
        first.theory.is_some(),
        "NP on the linear network carries its theory"
    );
    assert!(npsim::plot::curves(&file, Some("test_accuracy")).is_err());
}

#[test]
fn plot_writes_every_figure_as_svg_and_png() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("s.ron"), SWEEP).unwrap();
    let run = npsim(&["run", "s.ron", "--out", "out.h5", "--quiet"], d);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let plot = npsim(&["plot", "out.h5", "--out", "figures"], d);
    assert!(plot.status.success(), "{}", String::from_utf8_lossy(&plot.stderr));
    for (figure, must_contain) in [
        (
            "learning_curves.svg",
            vec![
                "step (updates)",
                "epsilon",
                "lh=64, learning_rate=RelativeToCritical(0.5)",
            ],
        ),
        (
            "minimum_training_time.svg",
            vec!["circuit.lh", "steps to target", "epsilon=20%"],
        ),
        ("phase_plane.svg", vec!["input-weight norm α", "error ε"]),
        (
            "cosine.svg",
            vec!["alignment with gradient descent", "circuit.lh", "\nW1\n"],
        ),
        (
            "instability.svg",
            vec!["time to instability", "learning rate η", "minimum of the error"],
        ),
    ] {
        // The PNG beside it: 800 × 560 pixels (the IHDR chunk after the signature).
        let png = std::fs::read(Path::new(d).join("figures").join(figure).with_extension("png")).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{figure}");
        let size = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
        assert_eq!((size(16), size(20)), (800, 560), "{figure}");
        let svg = std::fs::read_to_string(Path::new(d).join("figures").join(figure)).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{figure}"
        );
        for text in must_contain {
            assert!(svg.contains(text), "{figure} lacks `{text}`");
        }
    }
    let missing = npsim(
        &["plot", "out.h5", "--out", "figures", "--metric", "test_accuracy"],
        d,
    );
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&missing.stderr)
            .contains("no run records metric `test_accuracy`; the runs record: alpha, beta, ")
    );
}

/// Fig. 4A's quantity, computed independently from the recording: NP's updates of the
/// input weights align less with the gradient in a wider hidden layer (paper Eq. 8: the
/// cosine falls as the number of perturbed units grows). Measured on the linear network of
/// `linear_fig2a.ron`: 0.040, 0.017, 0.007 at Lh = 250, 1,000, 4,000; here (Lh = 16 and 64,
/// 400 steps, three seeds, two rates) the mean over runs must fall by a fifth at least.
#[test]
fn nps_input_weight_cosine_with_the_gradient_falls_with_the_width() {
    let dir = tempfile::tempdir().unwrap();
    let (_, file) = run_text(dir.path(), SWEEP);
    let mean_cosine = |lh: &str| {
        let runs: Vec<_> = file
            .runs
            .iter()
            .filter(|r| r.attributes["sweep:circuit.lh"].to_string() == lh)
            .collect();
        let per_run: Vec<f64> = runs
            .iter()
            .map(|r| {
                let finite: Vec<f64> = metric(r, "cosine_W1")
                    .iter()
                    .copied()
                    .filter(|v| v.is_finite())
                    .collect();
                finite.iter().sum::<f64>() / finite.len() as f64
            })
            .collect();
        per_run.iter().sum::<f64>() / per_run.len() as f64
    };
    let (narrow, wide) = (mean_cosine("16"), mean_cosine("64"));
    assert!(narrow > 0.0 && wide < 0.8 * narrow, "Lh 16: {narrow}, 64: {wide}");
}
