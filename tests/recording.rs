//! The HDF5 recording: layout, read back by npsim's own reader and by h5py; determinism.

mod common;

use std::path::Path;
use std::process::Command;

use common::{h5py_available, metric, run_text, text};
use npsim::recorder;

const SMALL: &str = r#"(
    version: 1,
    name: "small",
    precision: F32,
    circuit: DeepLinear(lx: 8, lh: 32, ly: 4),
    task: LinearTeacher(teacher_noise_std: 0.1),
    rule: NodePerturbation(learning_rate: RelativeToCritical(0.5)),
    train: (steps: 1000, record_every: 50, sync_every: 200),
    sweep: {
        "rule": [NodePerturbation(learning_rate: RelativeToCritical(0.5)), Sgd(learning_rate: RelativeToSgdOptimal(0.5))],
        "seed": [1, 2],
    },
)"#;

#[test]
fn layout_reads_back_in_npsim() {
    let dir = tempfile::tempdir().unwrap();
    let (path, summary) = run_text(dir.path(), SMALL);
    assert_eq!(summary.attributes["scenario_name"].to_string(), "small");
    assert!(summary.attributes["scenario"].to_string().contains("version: 1"));
    assert!(summary.attributes["created"].to_string().ends_with('Z'));
    assert_eq!(summary.runs.len(), 4);
    for run in &summary.runs {
        assert_eq!(text(run, "status"), "completed");
        assert_eq!(text(run, "steps_done"), "1000");
        let step = metric(run, "step");
        assert_eq!(step.len(), 21, "rows at 0, 50, ..., 1000");
        assert_eq!(step[20], 1000.0);
        for (name, values) in &run.metrics {
            assert_eq!(values.len(), step.len(), "metric {name}");
        }
        assert_eq!(
            run.weights.iter().find(|(n, _)| n == "W1").unwrap().1,
            vec![32, 8]
        );
        assert_eq!(
            run.weights.iter().find(|(n, _)| n == "W2").unwrap().1,
            vec![4, 32]
        );
    }
    // NP runs carry both models of the theory, SGD runs its four-variable model only (read
    // back with `step` first, the rest by name).
    let names = |run: &recorder::RunSummary| run.theory.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(text(&summary.runs[0], "rule"), "node_perturbation");
    assert_eq!(
        names(&summary.runs[0]),
        ["step", "a_2v", "alpha_4v", "beta_4v", "epsilon_2v", "epsilon_4v"]
    );
    assert_eq!(text(&summary.runs[2], "rule"), "sgd");
    assert_eq!(
        names(&summary.runs[2]),
        ["step", "alpha_4v", "beta_4v", "epsilon_4v"]
    );
    // The recorded alpha is |W1|²/Lx of the recorded final weights (independent computation).
    let (shape, w1) = recorder::read_weights(&path, "run_000", "W1").unwrap();
    assert_eq!(shape, vec![32, 8]);
    let alpha = w1.iter().map(|w| w * w).sum::<f64>() / 8.0;
    let recorded = *metric(&summary.runs[0], "alpha").last().unwrap();
    assert!((alpha / recorded - 1.0).abs() < 1e-6, "{alpha} vs {recorded}");
}

#[test]
fn h5py_reads_the_layout() {
    if !h5py_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = run_text(dir.path(), SMALL);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/h5py_check.py");
    let output = Command::new("python3")
        .arg(script)
        .arg(&path)
        .arg("4")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn same_seed_same_numbers_on_any_thread_count() {
    let scenario = SMALL
        .replace("precision: F32", "precision: F64")
        .replace("lh: 32", "lh: 4096");
    let run_with = |threads: usize| {
        let dir = tempfile::tempdir().unwrap();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let (path, summary) = pool.install(|| run_text(dir.path(), &scenario));
        let (_, w1) = recorder::read_weights(&path, "run_001", "W1").unwrap();
        (metric(&summary.runs[1], "epsilon").to_vec(), w1)
    };
    let (eps_a, w_a) = run_with(1);
    let (eps_b, w_b) = run_with(2);
    assert_eq!(eps_a, eps_b);
    assert_eq!(w_a, w_b);
    // A different seed gives different numbers (the test can fail).
    assert_ne!(eps_a, {
        let dir = tempfile::tempdir().unwrap();
        let (_, summary) = run_text(
            dir.path(),
            &scenario.replace("\"seed\": [1, 2]", "\"seed\": [3, 4]"),
        );
        metric(&summary.runs[1], "epsilon").to_vec()
    });
}

#[test]
fn measuring_does_not_change_the_run() {
    // Recording every step runs the diagnostic step (SGD direction, cosines) every step;
    // the trajectory must be bit-identical to recording rarely.
    for rule in [
        "NodePerturbation(learning_rate: RelativeToCritical(0.5))",
        "Sgd(learning_rate: RelativeToSgdOptimal(0.5))",
    ] {
        let scenario = |every: u64| {
            format!(
                r#"(
    version: 1,
    name: "measure",
    circuit: DeepLinear(lx: 10, lh: 40, ly: 3),
    task: LinearTeacher(teacher_noise_std: 0.1),
    rule: {rule},
    train: (steps: 300, record_every: {every}),
)"#
            )
        };
        let weights = |every| {
            let dir = tempfile::tempdir().unwrap();
            let (path, summary) = run_text(dir.path(), &scenario(every));
            let (_, w1) = recorder::read_weights(&path, "run_000", "W1").unwrap();
            (w1, summary)
        };
        let (often, summary) = weights(1);
        let (rarely, _) = weights(300);
        assert!(
            often.iter().zip(&rarely).all(|(a, b)| a.to_bits() == b.to_bits()),
            "{rule}"
        );
        let cosines = metric(&summary.runs[0], "cosine_W1");
        assert!(cosines[0].is_nan() && cosines[1..].iter().all(|c| c.abs() <= 1.0 + 1e-12));
        if rule.starts_with("Sgd") {
            // SGD's own update is the SGD direction.
            assert!(cosines[1..].iter().all(|c| (c - 1.0).abs() < 1e-9), "{cosines:?}");
        } else {
            // NP's single-sample update is nearly orthogonal but positively aligned on average
            // (Eq. 6: about sqrt(2/π)|g_h|/(|g| sqrt(40)) for W1).
            let mean = cosines[1..].iter().sum::<f64>() / 300.0;
            assert!(mean > 0.01 && mean < 0.3, "mean cosine {mean}");
        }
    }
}

/// The shipped spiking birdsong scenario, 20 updates of 2 renditions, recording LMAN's and
/// RA's spikes and two traces of RA at the record steps 10 and 20.
fn spiking_with_record() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/birdsong_spiking.ron");
    let text = std::fs::read_to_string(path).unwrap();
    let text = text
        .replace(
            "train: (steps: 2000, batch_size: 1, record_every: 250)",
            "train: (steps: 20, batch_size: 2, record_every: 10),\n    record: (spikes: [\"ra\", \"lman\"], traces: [(population: \"ra\", units: [0, 5]), (population: \"ra\", units: [0], variable: Noise)])",
        )
        .replace("sweep: { \"seed\": [1, 2, 3] },", "");
    assert!(text.contains("record: ("));
    text
}

#[test]
fn spikes_and_traces_are_recorded_during_the_run_and_agree_with_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = run_text(dir.path(), &spiking_with_record());
    let read = |activity: &str| recorder::read_activity(&path, "run_000", activity).unwrap();
    let (lman, ra, state, noise) = (
        read("spikes/lman"),
        read("spikes/ra"),
        read("traces/ra/state"),
        read("traces/ra/noise"),
    );
    // Record steps 10 and 20, two renditions each: renditions 18, 19, 38, 39.
    for block in [&lman, &ra, &state, &noise] {
        assert_eq!(block.time.len(), block.unit.len());
        assert_eq!(block.time.len(), block.rendition.len());
        let mut renditions = block.rendition.clone();
        renditions.dedup();
        assert_eq!(renditions, [18, 19, 38, 39]);
        assert!(
            block
                .time
                .iter()
                .all(|&t| (0.0..600.0).contains(&t) && t.fract() == 0.0)
        );
    }
    // LMAN: 80 units at 80 Hz for 0.6 s: 3,840 spikes per rendition, within 4 sd.
    for r in [18, 19, 38, 39] {
        let count = lman.rendition.iter().filter(|&&x| x == r).count() as f64;
        let (mean, sd) = (80.0 * 600.0 * 0.08, (80.0 * 600.0 * 0.08 * 0.92f64).sqrt());
        assert!(
            (count - mean).abs() < 4.0 * sd,
            "rendition {r}: {count} LMAN spikes"
        );
    }
    // Every RA spike of unit 0 or 5 leaves that unit's membrane at v_reset (-72 mV) in the
    // step it happened, as the state trace (every step) shows.
    assert_eq!(state.time.len(), 4 * 600 * 2);
    let potential = |r: u64, unit: u32, t: f64| {
        let k = (0..state.time.len())
            .find(|&k| state.rendition[k] == r && state.unit[k] == unit && state.time[k] == t)
            .unwrap();
        state.value[k]
    };
    let mut checked = 0;
    for k in (0..ra.time.len()).filter(|&k| ra.unit[k] == 0 || ra.unit[k] == 5) {
        assert_eq!(potential(ra.rendition[k], ra.unit[k], ra.time[k]), -72.0);
        checked += 1;
    }
    assert!(checked > 0, "units 0 and 5 of RA spiked");
    // The noise RA unit 0 received is its LMAN conductance minus the mean: rebuilt here from
    // LMAN unit 0's recorded spikes through the NMDA-like synapse (0.5 nS, τ = 80 ms).
    let (w, p, keep) = (0.0005, 0.08, (-1.0f64 / 80.0).exp());
    for r in [18, 19, 38, 39] {
        let mut spikes = [0.0; 600];
        for k in (0..lman.time.len()).filter(|&k| lman.rendition[k] == r && lman.unit[k] == 0) {
            spikes[lman.time[k] as usize] = 1.0;
        }
        let mut trace = 0.0;
        for (t, &s) in spikes.iter().enumerate() {
            trace = keep * trace + w * (s - p);
            let k = (0..noise.time.len())
                .find(|&k| noise.rendition[k] == r && noise.time[k] == t as f64)
                .unwrap();
            assert!((noise.value[k] - trace).abs() < 1e-12, "rendition {r}, {t} ms");
        }
    }
    if h5py_available() {
        let check = format!(
            "import h5py\nf = h5py.File('{}', 'r')\ng = f['runs/run_000/spikes/lman']\nassert g['time'].dtype == 'f8' and g['unit'].dtype == 'u4' and g['rendition'].dtype == 'u8', [g[k].dtype for k in g]\nassert len(g['time']) == len(g['unit']) == {}\nassert f['runs/run_000/traces/ra/state/value'].shape == ({},)\n",
            path.display(),
            lman.time.len(),
            state.time.len()
        );
        let output = Command::new("python3").args(["-c", &check]).output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
