//! Same scenario and seed, same numbers — across versions of npsim, not only within one.
//!
//! Each test runs a small scenario and compares a SHA-256 of everything the runs computed
//! (metrics, theory curves, final weights, as bit patterns; see `common::fingerprint`) with a
//! digest pinned from an earlier build. A change to the random streams, the order of
//! floating-point operations, a default or the recording layout fails here. Only update a
//! digest on purpose, and say in the commit what changed the numbers and why.

mod common;

use common::{example_plugin, fingerprint, run_text, shared_data};

fn check(name: &str, scenario: &str, pinned: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = run_text(dir.path(), scenario);
    let digest = fingerprint(&path);
    assert_eq!(digest, pinned, "{name}: the recorded numbers changed");
}

#[test]
fn the_quickstart_sweep_is_bit_identical() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/quickstart.ron"))
        .unwrap()
        .replace("steps: 50000", "steps: 3000");
    check(
        "quickstart",
        &text,
        "22ed73f37383e6ed2088bf969eb6e0b4eb062d218d88396a1ac8456151e63757",
    );
}

#[test]
fn an_mnist_sweep_is_bit_identical() {
    let Some(dir) = shared_data("mnist", "t10k-images-idx3-ubyte") else {
        return;
    };
    let scenario = format!(
        r#"(
    version: 1,
    name: "mnist-identity",
    precision: F32,
    circuit: Mlp(input: 784, hidden: [50], output: 10),
    task: Mnist(data_dir: "{}", split: TestSetSplit(train: 2000)),
    rule: NodePerturbation(learning_rate: Absolute(1e-3)),
    post_update: [WeightDecay(rate: 1e-4)],
    train: (epochs: 2, batch_size: 50),
    sweep: {{ "rule": [NodePerturbation(learning_rate: Absolute(1e-3)), Sgd(learning_rate: Absolute(1e-2))] }},
)"#,
        dir.display()
    );
    check(
        "mnist",
        &scenario,
        "4e9d2bad54dce9882a475906b4bce4a83a7af60a3901e9ae29d9e244c9508c5c",
    );
}

#[test]
fn a_plugin_run_is_bit_identical() {
    let scenario = format!(
        r#"(
    version: 1,
    name: "plugin-identity",
    circuit: DeepLinear(lx: 20, lh: 100, ly: 5, perturbation_std: 0.05),
    task: LinearTeacher(teacher_noise_std: 0.1),
    rule: Plugin(path: "{}", name: "np_trace", params: "learning_rate: 3e-6, trace_decay: 0.2, baseline_rate: 0.05"),
    post_update: [WeightNormalisation()],
    train: (steps: 2000, record_every: 100),
)"#,
        example_plugin().display()
    );
    check(
        "plugin",
        &scenario,
        "889cf1d7c5d5241df99c5772af5cb5e9849b4438d2012adb30c9e833b4a0d78b",
    );
}

#[test]
fn a_birdsong_run_in_time_is_bit_identical() {
    let scenario = r#"(
    version: 1,
    name: "song-identity",
    circuit: Explicit(
        populations: [
            (name: "hvc", size: 40),
            (name: "ra", size: 12, activation: Relu, model: LeakyRate(tau: 10.0), noise: OrnsteinUhlenbeck(std: 0.3, tau: 5.0)),
            (name: "motor", size: 2),
        ],
        projections: [
            (name: "HVC_RA", from: "hvc", to: "ra", init: Normal(std: 0.3), bias: Some(Constant(value: 0.5))),
            (name: "readout", from: "ra", to: "motor", init: Pools(weight: 0.16), plastic: false),
        ],
    ),
    task: Birdsong(duration: 80.0, dt: 1.0, burst: 4.0, trace_gate: Clean),
    rule: NodePerturbation(learning_rate: Absolute(0.1)),
    train: (steps: 60, batch_size: 3, record_every: 20),
)"#;
    check(
        "birdsong",
        scenario,
        // Re-pinned twice. When renditions went rendition-major and parallel, every recorded
        // number stayed bit-identical except `cosine_HVC_RA` (its gradient summed in another
        // order, 3e-17). When updates from a mostly silent presynaptic population (HVC's
        // bursts) began visiting only its active entries instead of a matrix product, the sums
        // changed order: weights moved by at most 2e-15, the song error by 1e-17.
        "557f82f7047e9d4e39fd4c80e33741b4a0e5457f0e074e58c666c7a3fcccb43d",
    );
}
