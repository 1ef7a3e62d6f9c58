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

/// Writes five training batches of `per_batch` images and a test batch of `test` images in
/// the CIFAR-10 binary format: class `c` is a bright 8×6 block at its own place in channel
/// `c mod 3` over a noisy background, so a small convnet can learn it.
fn write_blob_files(dir: &std::path::Path, per_batch: usize, test: usize) {
    let record = |label: usize, k: usize| {
        let mut r = vec![label as u8];
        let (y0, x0, channel) = ((label / 5) * 16 + 4, (label % 5) * 6 + 1, label % 3);
        for c in 0..3 {
            for y in 0..32 {
                for x in 0..32 {
                    let background = ((x * 7 + y * 13 + c * 29 + k * 31) % 60) as u8;
                    let lit = c == channel && (y0..y0 + 8).contains(&y) && (x0..x0 + 6).contains(&x);
                    r.push(if lit { background + 150 } else { background });
                }
            }
        }
        r
    };
    for batch in 1..=5 {
        let bytes: Vec<u8> = (0..per_batch)
            .flat_map(|k| record((k * 7 + batch) % 10, k + 100 * batch))
            .collect();
        std::fs::write(dir.join(format!("data_batch_{batch}.bin")), bytes).unwrap();
    }
    let bytes: Vec<u8> = (0..test).flat_map(|k| record((k * 3) % 10, k + 7)).collect();
    std::fs::write(dir.join("test_batch.bin"), bytes).unwrap();
}

const CONV_TEMPLATE: &str = r#"ConvNet(
        input: (3, 32, 32),
        conv: [(channels: 6, kernel: 3, padding: 1, pool: Max(4))],
        hidden: [],
        output: 10,
    )"#;

const CONV_EXPLICIT: &str = r#"Explicit(
        populations: [
            (name: "x", shape: (3, 32, 32)),
            (name: "c1", shape: (6, 32, 32), activation: Relu, noise: Gaussian(std: 1e-4)),
            (name: "p1", shape: (6, 8, 8)),
            (name: "y", size: 10, activation: Softmax, noise: Gaussian(std: 1e-4)),
        ],
        projections: [
            (name: Some("K1"), from: "x", to: "c1", connectivity: Conv2d(kernel: 3, padding: 1),
             init: GlorotTruncated, bias: Some(GlorotTruncated)),
            (name: Some("P1"), from: "c1", to: "p1", connectivity: MaxPool(window: 4)),
            (name: Some("W1"), from: "p1", to: "y", init: GlorotTruncated, bias: Some(GlorotTruncated)),
        ],
    )"#;

fn conv_scenario(circuit: &str, rule: &str, data: &std::path::Path, epochs: usize) -> String {
    format!(
        r#"(
    version: 1,
    name: "cifar-conv",
    precision: F32,
    circuit: {circuit},
    task: Cifar10(data_dir: "{}"),
    rule: {rule},
    train: (epochs: {epochs}, batch_size: 20),
)"#,
        data.display()
    )
}

#[test]
fn convnet_template_equals_the_explicit_circuit_and_learns() {
    let data = tempfile::tempdir().unwrap();
    write_blob_files(data.path(), 40, 100);
    let sgd = "Sgd(learning_rate: Absolute(3e-2))";
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_, template) = run_text(a.path(), &conv_scenario(CONV_TEMPLATE, sgd, data.path(), 10));
    let (_, explicit) = run_text(b.path(), &conv_scenario(CONV_EXPLICIT, sgd, data.path(), 10));
    for name in ["test_accuracy", "test_loss", "norm_K1", "cosine_K1"] {
        let (x, y) = (metric(&template.runs[0], name), metric(&explicit.runs[0], name));
        assert!(
            x.iter()
                .zip(y.iter())
                .all(|(p, q)| p == q || (p.is_nan() && q.is_nan())),
            "{name}: {x:?} vs {y:?}"
        );
    }
    // Pooling has no weights, so no norm is recorded for it.
    assert!(template.runs[0].metrics.iter().all(|(name, _)| name != "norm_P1"));
    // SGD's own update has cosine 1 with the SGD update (up to f32 rounding).
    let cosine = metric(&template.runs[0], "cosine_K1");
    assert!(cosine[1..].iter().all(|c| (c - 1.0).abs() < 1e-4), "{cosine:?}");
    let accuracy = metric(&template.runs[0], "test_accuracy");
    assert!(*accuracy.last().unwrap() > 0.9, "SGD: {accuracy:?}");
    // Training accuracy: the fraction of the epoch's training images the clean pass of their
    // own step classified correctly; it rises with the test accuracy.
    let train = metric(&template.runs[0], "train_accuracy");
    assert!(train[0].is_nan(), "no training before the first record");
    assert!(train[1..].iter().all(|a| (0.0..=1.0).contains(a)), "{train:?}");
    assert!(
        train[1] < *train.last().unwrap() && *train.last().unwrap() > 0.9,
        "{train:?}"
    );
}

#[test]
fn node_perturbation_trains_a_convnet_above_chance() {
    let data = tempfile::tempdir().unwrap();
    write_blob_files(data.path(), 200, 200);
    let np = "NodePerturbation(learning_rate: Absolute(5e-3))";
    // Few perturbed units (4 maps of 8 × 8): NP's variance grows with their number.
    let strided = "ConvNet(input: (3, 32, 32), conv: [(channels: 4, kernel: 4, stride: 4)], output: 10)";
    // Chance is 0.1. NP's accuracy climbs noisily, and in some seeds stalls with a class or
    // three never predicted (plateaus at 0.7–0.9). Mean of the last five epochs, measured on
    // the noise streams since 2026-12-01 for seeds 1–24: 0.49–1.0, mean 0.89, the means of
    // seeds 1–3, 4–6, …, 22–24 0.79–0.97 (on the streams before, seeds 1–6: 0.85–1.0). (At
    // twice this rate the softmax saturated at chance for one seed in three.) Required: each
    // of seeds 1–3 above 0.4, and their mean above 0.7.
    let mut lasts = Vec::new();
    for seed in 1..=3 {
        let out = tempfile::tempdir().unwrap();
        let scenario = conv_scenario(strided, np, data.path(), 20)
            .replace("version: 1,", &format!("version: 1, seed: {seed},"));
        let (_, summary) = run_text(out.path(), &scenario);
        let run = &summary.runs[0];
        assert_eq!(text(run, "status"), "completed");
        let accuracy = metric(run, "test_accuracy");
        eprintln!("seed {seed}: NP accuracy by epoch: {accuracy:?}");
        let last: f64 = accuracy[accuracy.len() - 5..].iter().sum::<f64>() / 5.0;
        assert!(last > 0.4, "seed {seed}: {accuracy:?}");
        lasts.push(last);
    }
    let mean = lasts.iter().sum::<f64>() / 3.0;
    assert!(
        mean > 0.7,
        "mean of the last five epochs over seeds 1–3: {lasts:?}"
    );
}

#[test]
fn the_real_cifar10_test_batch_loads() {
    let Some(dir) = common::shared_data("cifar10", "test_batch.bin") else {
        return;
    };
    let images = npsim_models::cifar10::read_batch(&dir.join("test_batch.bin")).unwrap();
    // Known facts of the CIFAR-10 test set: 10,000 images, 1,000 per class, and mean channel
    // intensities of 0.4942, 0.4851 and 0.4504 (red, green, blue; the published
    // normalisation constants). The copy in ../shared went through JPEG once and is in another
    // order, so its first labels differ from the original's and its means by up to ~1e-4.
    assert_eq!(images.len(), 10_000);
    assert_eq!(images.images.len(), 10_000 * 3072);
    let mut counts = [0usize; 10];
    images.labels.iter().for_each(|&l| counts[usize::from(l)] += 1);
    assert_eq!(counts, [1000; 10]);
    for (channel, published) in [0.4942, 0.4851, 0.4504].into_iter().enumerate() {
        let sum: f64 = images
            .images
            .chunks(3072)
            .flat_map(|image| &image[channel * 1024..(channel + 1) * 1024])
            .map(|&v| f64::from(v))
            .sum();
        let mean = sum / (10_000.0 * 1024.0 * 255.0);
        assert!((mean - published).abs() < 1e-3, "channel {channel}: mean {mean}");
    }
}
