//! CIFAR-10 end to end on small files written in the real binary format.

mod common;

use common::{metric, run_text, text};

#[test]
fn a_circuit_learns_synthetic_cifar10_files() {
    let dir = tempfile::tempdir().unwrap();
    // Each class lights its own block of 300 values; the rest is a fixed pattern, so a
    // classifier can learn the classes (and the loader's layout is exercised end to end).
    let record = |label: u8, k: usize| {
        let mut r = vec![label];
        r.extend((0..3072).map(|i| {
            if i / 300 == usize::from(label) {
                200
            } else {
                ((i * 7 + k) % 50) as u8
            }
        }));
        r
    };
    for batch in 1..=5 {
        let bytes: Vec<u8> = (0..40).flat_map(|k| record((k % 10) as u8, k + batch)).collect();
        std::fs::write(dir.path().join(format!("data_batch_{batch}.bin")), bytes).unwrap();
    }
    let test: Vec<u8> = (0..50).flat_map(|k| record(((k * 3) % 10) as u8, k)).collect();
    std::fs::write(dir.path().join("test_batch.bin"), test).unwrap();
    let scenario = format!(
        r#"(
    version: 1,
    name: "cifar-small",
    precision: F32,
    circuit: Mlp(input: 3072, hidden: [32], output: 10),
    task: Cifar10(data_dir: "{}"),
    rule: Sgd(learning_rate: Absolute(1e-2)),
    train: (epochs: 5, batch_size: 20),
)"#,
        dir.path().display()
    );
    let out = tempfile::tempdir().unwrap();
    let (_, summary) = run_text(out.path(), &scenario);
    let run = &summary.runs[0];
    assert_eq!(text(run, "task"), "cifar10");
    assert_eq!(text(run, "train_samples"), "200");
    assert_eq!(text(run, "steps_done"), "50", "5 epochs of 10 batches");
    let accuracy = metric(run, "test_accuracy");
    assert!(*accuracy.last().unwrap() > 0.9, "{accuracy:?}");
}
