//! Learning rules from shared libraries: loading, handshake, bit-identity with the built-in
//! NP, failures that leave the process alive, and what is recorded.

mod common;

use std::path::Path;
use std::process::Command;

use common::{metric, run_text, text};
use npsim::plugin::{self, PluginError};
use npsim::recorder;

fn example() -> String {
    common::example_plugin().display().to_string()
}

fn handshake_test() -> &'static Path {
    common::handshake_test_plugin()
}

#[test]
fn the_example_plugin_loads_and_lists_its_rules() {
    let library = plugin::load(Path::new(&example())).unwrap();
    let names: Vec<_> = library.rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["np_trace", "node_perturbation"]);
    assert!(library.warnings.is_empty(), "{:?}", library.warnings);
    assert!(
        library
            .rules
            .iter()
            .all(|r| r.requirements.perturbation && !r.requirements.backprop)
    );
    assert!(library.rules[0].params.contains("trace_decay"));
}

fn np_pair(precision: &str, rate: f64, batch: usize) -> String {
    format!(
        r#"(
    version: 1,
    name: "identity",
    precision: {precision},
    seed: 3,
    circuit: DeepLinear(lx: 20, lh: 300, ly: 5),
    task: LinearTeacher(teacher_noise_std: 0.1),
    rule: NodePerturbation(learning_rate: Absolute({rate:?})),
    train: (steps: 3000, record_every: 100, batch_size: {batch}),
    sweep: {{ "rule": [
        NodePerturbation(learning_rate: Absolute({rate:?})),
        Plugin(path: "{path}", name: "node_perturbation", params: "learning_rate: {rate:?}"),
    ] }},
)"#,
        path = example()
    )
}

#[test]
fn plugin_np_gives_bit_identical_weights_to_built_in_np() {
    // On batches of two the built-in NP and the plugin run the same arithmetic. (Per sample,
    // the built-in rule's updates are queued while the engine looks ahead, which a plugin
    // writing the weights directly cannot do; see the next test.)
    for precision in ["F64", "F32"] {
        let dir = tempfile::tempdir().unwrap();
        // A quarter of the critical rate of this 20-300-5 network (η* = 1.12e-3), per sample.
        let (path, summary) = run_text(dir.path(), &np_pair(precision, 2.8e-4, 2));
        assert_eq!(text(&summary.runs[0], "rule"), "node_perturbation");
        assert_eq!(text(&summary.runs[1], "rule"), "plugin:node_perturbation");
        for projection in ["W1", "W2"] {
            let (_, built_in) = npsim::recorder::read_weights(&path, "run_000", projection).unwrap();
            let (_, plugin) = npsim::recorder::read_weights(&path, "run_001", projection).unwrap();
            assert!(
                built_in
                    .iter()
                    .zip(&plugin)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{precision} {projection} differ"
            );
        }
        let bits = |run| {
            metric(&summary.runs[run], "epsilon")
                .iter()
                .map(|v| v.to_bits())
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(0), bits(1));
        assert_eq!(text(&summary.runs[1], "status"), "completed");
        // It learned, so the identity is not that of two untouched networks.
        let eps = metric(&summary.runs[0], "epsilon");
        assert!(eps[eps.len() - 1] < 0.5 * eps[0], "{precision}: {eps:?}");
    }
}

#[test]
fn plugin_np_per_sample_equals_built_in_np_up_to_rounding() {
    // Measured: 7e-15 (f64) and 3e-6 (f32) of the largest weight; a lost update would be ~1e-2.
    for (precision, tolerance) in [("F64", 1e-12), ("F32", 1e-4)] {
        let dir = tempfile::tempdir().unwrap();
        let (path, summary) = run_text(dir.path(), &np_pair(precision, 5.6e-4, 1));
        for projection in ["W1", "W2"] {
            let (_, built_in) = npsim::recorder::read_weights(&path, "run_000", projection).unwrap();
            let (_, plugin) = npsim::recorder::read_weights(&path, "run_001", projection).unwrap();
            let difference = built_in
                .iter()
                .zip(&plugin)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            let size = built_in.iter().map(|a| a.abs()).fold(0.0, f64::max);
            eprintln!(
                "{precision} {projection}: largest difference {difference:e} of weights up to {size:e}"
            );
            assert!(
                difference <= tolerance * size,
                "{precision} {projection}: {difference:e}"
            );
        }
        let eps = |run| metric(&summary.runs[run], "epsilon").to_vec();
        let (a, b) = (eps(0), eps(1));
        assert!(a[a.len() - 1] < 0.5 * a[0], "{precision}: {a:?}");
        for (x, y) in a.iter().zip(&b) {
            assert!(
                (x - y).abs() <= tolerance * x.abs().max(1e-30),
                "{precision}: ε {x} vs {y}"
            );
        }
    }
}

#[test]
fn each_handshake_mismatch_has_its_own_message() {
    let path = handshake_test();
    let problem = |symbol: &str| match plugin::load_entry(path, symbol) {
        Err(PluginError::Handshake { problem, .. }) => problem,
        other => panic!("{symbol}: expected a handshake error, got {other:?}"),
    };
    assert!(problem("npsim_plugin_entry_bad_version").starts_with("it speaks plugin interface version 100, this npsim speaks versions 1 to 2; rebuild the plugin against npsim-plugin"));
    // Version 1 still loads (static tasks only).
    assert_eq!(
        plugin::load_entry(path, "npsim_plugin_entry_version_1")
            .unwrap()
            .interface_version,
        1
    );
    assert!(
        problem("npsim_plugin_entry_bad_size").starts_with("its descriptor is 8 bytes, this npsim expects")
    );
    assert!(
        problem("npsim_plugin_entry_bad_target")
            .starts_with("it was built for target `riscv64gc-unknown-none-elf`, this npsim runs on")
    );
    assert!(problem("npsim_plugin_entry_abort").starts_with("it was built with panic = \"abort\", so a panic in it would abort npsim; rebuild it with panic = \"unwind\""));
    // Another compiler cannot break a C interface: loaded, with a warning.
    let other = plugin::load_entry(path, "npsim_plugin_entry_other_rustc").unwrap();
    assert_eq!(other.warnings.len(), 1);
    assert!(
        other.warnings[0].contains("was built by rustc 1.85.0"),
        "{:?}",
        other.warnings
    );
    // Not a plugin at all.
    let missing = plugin::load_entry(path, "no_such_entry").unwrap_err();
    assert!(
        missing
            .to_string()
            .contains("no `no_such_entry` symbol: it is not an npsim plugin"),
        "{missing}"
    );
    let absent = plugin::load(Path::new("/nonexistent/libplugin.so")).unwrap_err();
    assert!(
        absent
            .to_string()
            .starts_with("cannot load plugin `/nonexistent/libplugin.so`"),
        "{absent}"
    );
}

#[test]
fn bad_parameters_and_names_are_errors_not_crashes() {
    let library = plugin::load(Path::new(&example())).unwrap();
    let err = library
        .instantiate::<f64>("node_perturbation", "learning_rate: fast")
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "plugin rule `node_perturbation` rejected its parameters: parameter `learning_rate`: `fast` is not a number"
    );
    let err = library
        .instantiate::<f64>("np_trace", "learning_rate: 1e-3, trace_decay: 2")
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("parameter `trace_decay` must be in [0, 1), got 2"),
        "{err}"
    );
    let err = library.instantiate::<f64>("hebbian", "").err().unwrap();
    assert!(
        err.to_string()
            .ends_with("has no rule `hebbian`; its rules: `np_trace`, `node_perturbation`"),
        "{err}"
    );
    let tests = plugin::load(handshake_test()).unwrap();
    let err = tests.instantiate::<f32>("panics_on_create", "").err().unwrap();
    assert!(
        err.to_string()
            .contains("panicked while creating: deliberate panic in new"),
        "{err}"
    );

    // Through the command line: exit 2, the message, nothing written.
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("bad.ron");
    std::fs::write(
        &scenario,
        np_pair("F64", 1e-3, 1).replace("learning_rate: 0.001\"", "learning_rate: fast\""),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_npsim"))
        .current_dir(dir.path())
        .args(["run", "bad.ron", "--quiet"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: bad.ron: rule: plugin rule `node_perturbation` rejected its parameters: parameter `learning_rate`: `fast` is not a number\n"
    );
    assert!(!dir.path().join("runs").exists());
}

#[test]
fn a_panicking_or_failing_plugin_marks_its_run_failed_and_the_sweep_goes_on() {
    let path = handshake_test().display().to_string();
    let scenario = format!(
        r#"(
    version: 1,
    name: "failures",
    circuit: DeepLinear(lx: 10, lh: 30, ly: 3),
    task: LinearTeacher(teacher_noise_std: 0.0),
    rule: NodePerturbation(learning_rate: RelativeToCritical(0.5)),
    train: (steps: 200, record_every: 5),
    sweep: {{ "rule": [
        Plugin(path: "{path}", name: "panics", params: "after: 10"),
        Plugin(path: "{path}", name: "fails"),
        NodePerturbation(learning_rate: RelativeToCritical(0.5)),
    ] }},
)"#
    );
    let dir = tempfile::tempdir().unwrap();
    // In this very process: a plugin panic must not unwind into npsim.
    let (_, summary) = run_text(dir.path(), &scenario);
    assert_eq!(text(&summary.runs[0], "status"), "failed");
    assert!(
        text(&summary.runs[0], "error").contains("panicked: deliberate panic at step 11"),
        "{}",
        text(&summary.runs[0], "error")
    );
    assert_eq!(text(&summary.runs[0], "steps_done"), "10");
    assert_eq!(text(&summary.runs[1], "status"), "failed");
    assert_eq!(
        text(&summary.runs[1], "error"),
        "rule `plugin:fails` failed: deliberate failure"
    );
    assert_eq!(text(&summary.runs[2], "status"), "completed");
}

#[test]
fn a_plugin_run_records_the_library_path_name_and_hash() {
    let dir = tempfile::tempdir().unwrap();
    let (_, summary) = run_text(dir.path(), &np_pair("F64", 1e-3, 1));
    let run = &summary.runs[1];
    let library = Path::new(&example()).canonicalize().unwrap();
    assert_eq!(text(run, "plugin_path"), library.display().to_string());
    assert_eq!(text(run, "plugin_name"), "node_perturbation");
    assert_eq!(text(run, "plugin_params"), "learning_rate: 0.001");
    // An independent SHA-256 (coreutils).
    let sum = Command::new("sha256sum").arg(&library).output().unwrap();
    let expected = String::from_utf8_lossy(&sum.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert_eq!(text(run, "plugin_sha256"), expected);
}

#[test]
fn the_example_trace_rule_learns() {
    let scenario = format!(
        r#"(
    version: 1,
    name: "trace",
    circuit: DeepLinear(lx: 20, lh: 100, ly: 5, perturbation_std: 0.05),
    task: LinearTeacher(teacher_noise_std: 0.0),
    rule: Plugin(path: "{}", name: "np_trace", params: "learning_rate: 3e-6, trace_decay: 0.2, baseline_rate: 0.05"),
    train: (steps: 30000, record_every: 1000),
)"#,
        example()
    );
    let dir = tempfile::tempdir().unwrap();
    let (_, summary) = run_text(dir.path(), &scenario);
    let eps = metric(&summary.runs[0], "epsilon");
    assert_eq!(text(&summary.runs[0], "status"), "completed");
    // Measured: the error falls by about half in 30,000 steps; require a quarter.
    assert!(eps[eps.len() - 1] < 0.75 * eps[0], "{eps:?}");
}

/// A small birdsong circuit in time, learned by `rule`.
fn song(rule: &str) -> String {
    format!(
        r#"(
    version: 1,
    name: "plugin-in-time",
    precision: F64,
    circuit: Explicit(
        populations: [
            (name: "hvc", size: 30),
            (name: "ra", size: 8, activation: Relu, model: LeakyRate(tau: 10.0), noise: OrnsteinUhlenbeck(std: 0.3, tau: 5.0)),
            (name: "motor", size: 2),
        ],
        projections: [
            (name: "HVC_RA", from: "hvc", to: "ra", init: Normal(std: 0.3), bias: Some(Constant(value: 0.5))),
            (name: "readout", from: "ra", to: "motor", init: Pools(weight: 0.25), plastic: false),
        ],
    ),
    task: Birdsong(duration: 60.0, dt: 1.0, burst: 2.0),
    rule: {rule},
    train: (steps: 30, batch_size: 3, record_every: 10),
)"#
    )
}

#[test]
fn plugin_np_in_time_matches_built_in_np() {
    // Interface version 2 hands plugins the time axis: the example's node perturbation sums
    // each rendition's steps (its eligibility trace) and follows the built-in rule, whose
    // update is one matrix product: equal to rounding.
    let dir = tempfile::tempdir().unwrap();
    let (built_in_path, built_in) = run_text(
        dir.path(),
        &song("NodePerturbation(learning_rate: Absolute(0.05))"),
    );
    let dir2 = tempfile::tempdir().unwrap();
    let (plugin_path, plugin) = run_text(
        dir2.path(),
        &song(&format!(
            r#"Plugin(path: "{}", name: "node_perturbation", params: "learning_rate: 0.05")"#,
            example()
        )),
    );
    assert_eq!(text(&plugin.runs[0], "status"), "completed");
    let (a, b) = (
        metric(&built_in.runs[0], "song_error"),
        metric(&plugin.runs[0], "song_error"),
    );
    assert!(a[a.len() - 1] < a[0], "the song improved: {a:?}");
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= 1e-12 * x.abs(), "{a:?} vs {b:?}");
    }
    let weights = |path: &Path| recorder::read_weights(path, "run_000", "HVC_RA").unwrap().1;
    let (w1, w2) = (weights(&built_in_path), weights(&plugin_path));
    let worst = w1.iter().zip(&w2).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    assert!(worst < 1e-12, "weights differ by {worst}");
}

#[test]
fn a_version_1_plugin_on_a_task_in_time_is_refused_with_a_reason() {
    // Loaded (static tasks still take it), but its rule cannot see renditions' steps.
    let library = plugin::load_entry(handshake_test(), "npsim_plugin_entry_version_1").unwrap();
    let mut rule = library.instantiate::<f64>("fails", "").unwrap();
    let blueprint =
        npsim::scenario::Scenario::parse(Path::new("s.ron"), song("Sgd(learning_rate: Absolute(0.1))"))
            .unwrap()
            .plans()
            .unwrap()
            .swap_remove(0);
    let setup = blueprint.task.trial().unwrap();
    let streams = npsim_core::SeedStreams::new(1);
    let mut engine = npsim_core::TrialEngine::new(
        npsim_core::Circuit::<f64>::instantiate(&blueprint.blueprint, &streams),
        &streams,
        setup.timing,
        setup.gate,
    );
    let columns = setup.timing.steps;
    let inputs = nalgebra::DMatrix::zeros(30, columns);
    let targets = nalgebra::DMatrix::zeros(2, columns);
    let err = engine
        .step(&inputs, &targets, &mut rule, &mut [])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("the plugin speaks interface version 1, with one column per sample: rebuild it against this npsim's npsim-plugin"),
        "{err}"
    );
}

/// A plugin cut short (a copy interrupted, a build that ran out of disk) or a file that is not
/// a shared library is refused with the reason before the dynamic loader maps it: mapping a
/// truncated library and touching its missing pages kills the process with SIGBUS.
#[test]
fn truncated_and_foreign_plugin_files_are_refused_before_they_are_mapped() {
    let dir = tempfile::tempdir().unwrap();
    let whole = std::fs::read(example()).unwrap();
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("half.so", whole[..whole.len() / 2].to_vec(), "it is truncated"),
        (
            "last-byte.so",
            whole[..whole.len() - 1].to_vec(),
            "it is truncated",
        ),
        (
            "text.so",
            b"not a library\n".to_vec(),
            "it is not a shared library (no ELF header)",
        ),
        (
            "empty.so",
            Vec::new(),
            "it is not a shared library (no ELF header)",
        ),
    ];
    for (name, bytes, reason) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let error = plugin::load(&path)
            .err()
            .unwrap_or_else(|| panic!("{name} loaded"))
            .to_string();
        assert!(error.contains(reason) && error.contains(name), "{name}: {error}");
    }
    // Through the command line: a scenario naming the truncated library is bad input.
    let scenario = np_pair("F64", 1e-4, 1).replace(&example(), "half.so");
    std::fs::write(dir.path().join("s.ron"), scenario).unwrap();
    let out = common::npsim(&["validate", "s.ron"], dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("half.so") && stderr.contains("it is truncated"),
        "{stderr}"
    );
}
