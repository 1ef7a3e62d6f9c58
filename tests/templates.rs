//! A template expands to exactly the circuit written out by hand.

mod common;

use common::{metric, run_text};

const TEMPLATE: &str = r#"(
    version: 1,
    name: "template",
    seed: 5,
    circuit: DeepLinear(lx: 12, lh: 40, ly: 3, init_scale: 2.0, perturbation_std: 1e-5),
    task: LinearTeacher(teacher_noise_std: 0.1),
    rule: NodePerturbation(learning_rate: Absolute(1e-3)),
    train: (steps: 500, record_every: 50),
)"#;

const EXPLICIT: &str = r#"(
    version: 1,
    name: "explicit",
    seed: 5,
    circuit: Explicit(
        populations: [
            (name: "x", size: 12),
            (name: "h", size: 40, noise: Gaussian(std: 1e-5)),
            (name: "y", size: 3, noise: Gaussian(std: 1e-5)),
        ],
        projections: [
            (name: Some("W1"), from: "x", to: "h", init: XavierNormal(variance_scale: 2.0)),
            (name: Some("W2"), from: "h", to: "y"),
        ],
    ),
    task: LinearTeacher(teacher_noise_std: 0.1),
    rule: NodePerturbation(learning_rate: Absolute(1e-3)),
    train: (steps: 500, record_every: 50),
)"#;

#[test]
fn deep_linear_template_equals_the_explicit_circuit() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_, template) = run_text(a.path(), TEMPLATE);
    let (_, explicit) = run_text(b.path(), EXPLICIT);
    for name in ["alpha", "beta", "epsilon", "train_loss"] {
        let (x, y) = (metric(&template.runs[0], name), metric(&explicit.runs[0], name));
        assert_eq!(x.len(), 11);
        // Bit-identical except NaN at step 0 of train_loss.
        assert!(
            x.iter().zip(y).all(|(p, q)| p == q || (p.is_nan() && q.is_nan())),
            "{name}: {x:?} vs {y:?}"
        );
    }
    // The theory is recorded for both (a one-hidden-layer linear chain with Xavier init).
    assert_eq!(template.runs[0].theory.len(), explicit.runs[0].theory.len());
    assert!(!explicit.runs[0].theory.is_empty());
}
