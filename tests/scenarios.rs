//! Every scenario shipped in `scenarios/` is valid: it parses and every run of its sweep builds.
//! Dataset scenarios are checked against small files in the real formats (SARCOS, CIFAR-10)
//! or the real MNIST test set when present.

mod common;

use std::path::{Path, PathBuf};

use npsim::scenario::Scenario;
use npsim_models::sarcos::write_mat_v5;

#[test]
fn shipped_scenarios_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mnist = common::shared_data("mnist", "t10k-images-idx3-ubyte");
    let sarcos = tempfile::tempdir().unwrap();
    let table = |n: usize| {
        (0..n * 28)
            .map(|i| ((i * 37) % 101) as f64 / 50.0 - 1.0)
            .collect::<Vec<f64>>()
    };
    write_mat_v5(
        &sarcos.path().join("sarcos_inv.mat"),
        "sarcos_inv",
        300,
        28,
        &table(300),
        false,
    )
    .unwrap();
    write_mat_v5(
        &sarcos.path().join("sarcos_inv_test.mat"),
        "sarcos_inv_test",
        50,
        28,
        &table(50),
        true,
    )
    .unwrap();
    let cifar = tempfile::tempdir().unwrap();
    let records: Vec<u8> = (0..5 * 3073).map(|i| (i % 251) as u8 % 10).collect();
    for name in (1..=5)
        .map(|k| format!("data_batch_{k}.bin"))
        .chain(["test_batch.bin".into()])
    {
        std::fs::write(cifar.path().join(name), &records).unwrap();
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ron"))
        .collect();
    files.sort();
    assert!(files.len() >= 12);
    let mut networks = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        if npsim::scenario::network::is_network_scenario(&text) {
            let network = npsim::scenario::network::NetworkScenario::load(&file).unwrap();
            network.plan().unwrap_or_else(|e| panic!("{e}"));
            networks += 1;
            continue;
        }
        let mut scenario = Scenario::load(&file).unwrap_or_else(|e| panic!("{e}"));
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("mnist") {
            let Some(mnist) = &mnist else {
                eprintln!("SKIPPED building {name}: it needs the MNIST test set");
                continue;
            };
            scenario.data_dir = mnist.clone();
            scenario
                .apply_overrides(&["task.split=TestSetSplit(train: 8000)".to_string()])
                .unwrap();
        } else if name.starts_with("sarcos") {
            scenario.data_dir = sarcos.path().to_path_buf();
        } else if name.starts_with("cifar10") {
            scenario.data_dir = cifar.path().to_path_buf();
        }
        let plans = scenario.plans().unwrap_or_else(|e| panic!("{e}"));
        assert!(!plans.is_empty(), "{name}");
    }
    assert_eq!(networks, 1, "scenarios/coba.ron is the network scenario");
}
