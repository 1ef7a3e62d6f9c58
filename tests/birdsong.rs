//! The birdsong task end to end: the shipped rate scenario learns the tutor song, runs in time
//! repeat exactly, and what the trial engine cannot run is refused with a located error.

mod common;

use std::path::Path;

use common::{fingerprint, metric, run_text, text};

#[test]
fn the_shipped_rate_scenario_learns_the_song_below_ten_percent_for_three_seeds() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/birdsong_rate.ron");
    let text_of = std::fs::read_to_string(&path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (_, summary) = run_text(dir.path(), &text_of);
    assert_eq!(summary.runs.len(), 3);
    for run in &summary.runs {
        assert_eq!(text(run, "status"), "completed");
        assert_eq!(text(run, "task"), "birdsong");
        let error = metric(run, "song_error");
        let (first, last) = (error[0], error[error.len() - 1]);
        eprintln!(
            "{}: song error {first:.4e} -> {last:.4e} ({:.3})",
            text(run, "label"),
            last / first
        );
        // The scenario's header documents this: below 10 % of the initial error.
        assert!(last < 0.10 * first, "{}: {last} vs {first}", text(run, "label"));
        // The reward of the noisy renditions rose with the song.
        let reward = metric(run, "reward");
        assert!(reward[reward.len() - 1] > reward[1], "{reward:?}");
    }
}

#[test]
fn the_shipped_spiking_scenario_learns_the_song_below_a_quarter_for_three_seeds() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/birdsong_spiking.ron");
    let dir = tempfile::tempdir().unwrap();
    let (_, summary) = run_text(dir.path(), &std::fs::read_to_string(&path).unwrap());
    for run in &summary.runs {
        assert_eq!(text(run, "status"), "completed");
        let error = metric(run, "song_error");
        let (first, last) = (error[0], error[error.len() - 1]);
        eprintln!(
            "{}: song error {first:.4e} -> {last:.4e} ({:.3})",
            text(run, "label"),
            last / first
        );
        assert!(last < 0.25 * first, "{}: {last} vs {first}", text(run, "label"));
        // No gradient to compare with in a spiking circuit.
        assert!(metric(run, "cosine_HVC_RA").iter().all(|c| c.is_nan()));
    }
}

#[test]
fn the_song_is_recorded_beside_its_tutor_and_matches_the_song_error() {
    let dir = tempfile::tempdir().unwrap();
    let (path, summary) = run_text(
        dir.path(),
        &SMALL.replace(", Sgd(learning_rate: Absolute(1.0))", ""),
    );
    let run = &summary.runs[0];
    let read = |name: &str| {
        let (shape, values) = npsim::recorder::read_recording(&path, &run.group, "song", name).unwrap();
        assert_eq!(shape, [2, 80], "{name}: channels × steps");
        values
    };
    let (tutor, initial, last) = (read("tutor"), read("initial"), read("final"));
    // The recorded songs give back the recorded song errors: ½ Σ (y − y*)² / steps.
    let error = |song: &[f64]| {
        song.iter()
            .zip(&tutor)
            .map(|(y, t)| (y - t) * (y - t))
            .sum::<f64>()
            * 0.5
            / 80.0
    };
    let song_error = metric(run, "song_error");
    assert!((error(&initial) - song_error[0]).abs() < 1e-12 * song_error[0].max(1.0));
    assert!((error(&last) - song_error[song_error.len() - 1]).abs() < 1e-12);
    assert!(
        tutor.iter().all(|&v| (0.25..=0.75).contains(&v)),
        "the generated tutor lies in [0.25, 0.75]"
    );
}

const SMALL: &str = r#"(
    version: 1,
    name: "small-song",
    circuit: Explicit(
        populations: [
            (name: "hvc", size: 40),
            (name: "ra", size: 12, activation: Relu, model: LeakyRate(tau: 10.0), noise: OrnsteinUhlenbeck(std: 0.3, tau: 5.0)),
            (name: "motor", size: 2, model: LeakyRate(tau: 5.0)),
        ],
        projections: [
            (name: "HVC_RA", from: "hvc", to: "ra", init: Normal(std: 0.3), bias: Some(Constant(value: 0.5))),
            (name: "readout", from: "ra", to: "motor", init: Pools(weight: 0.16), plastic: false),
        ],
    ),
    task: Birdsong(duration: 80.0, dt: 1.0, burst: 4.0),
    rule: NodePerturbation(learning_rate: Absolute(0.1)),
    train: (steps: 60, batch_size: 3, record_every: 20),
    sweep: { "rule": [NodePerturbation(learning_rate: Absolute(0.1)), Sgd(learning_rate: Absolute(1.0))] },
)"#;

#[test]
fn runs_in_time_repeat_exactly_on_any_thread_count() {
    let digest = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let dir = tempfile::tempdir().unwrap();
            let (path, _) = run_text(dir.path(), SMALL);
            fingerprint(&path)
        })
    };
    assert_eq!(digest(1), digest(2));
}

/// The shipped spiking scenario, shortened to `steps` renditions, with LMAN at `rate` Hz.
fn spiking_scenario(steps: usize, rate: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/birdsong_spiking.ron");
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains("Poisson(rate: 80.0)") && text.contains("steps: 2000"));
    text.replace("Poisson(rate: 80.0)", &format!("Poisson(rate: {rate})"))
        .replace("steps: 2000", &format!("steps: {steps}"))
        .replace("record_every: 250", "record_every: 50")
}

#[test]
fn with_lman_silent_the_song_does_not_change() {
    // The control: no variability, no learning. With LMAN at 0 Hz every rendition is the
    // noise-free one, the reward signal is zero and the song stays exactly as it was.
    let dir = tempfile::tempdir().unwrap();
    let (_, summary) = run_text(dir.path(), &spiking_scenario(200, "0.0"));
    for run in &summary.runs {
        assert_eq!(text(run, "status"), "completed");
        let error = metric(run, "song_error");
        assert!(error.iter().all(|&e| e == error[0]), "{error:?}");
    }
}

#[test]
fn spiking_runs_with_poisson_noise_repeat_exactly_on_any_thread_count() {
    let scenario = spiking_scenario(40, "80.0");
    let digest = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let dir = tempfile::tempdir().unwrap();
            let (path, _) = run_text(dir.path(), &scenario);
            fingerprint(&path)
        })
    };
    assert_eq!(digest(1), digest(2));
}

#[test]
fn a_tonic_input_population_through_plastic_synapses_learns_exactly_like_a_bias() {
    // The same circuit twice: RA's bias 0.5 (learned), or a second input population of one
    // neuron held at rate 1 through a plastic projection of weight 0.5. NP's update of that
    // projection, −η δℓ Σ_t ξ(t)·1, is the bias's update, so both runs must produce the same
    // songs, through both the NP and the SGD (BPTT) rule.
    let with_drive = SMALL
        .replace(
            r#"(name: "hvc", size: 40),"#,
            r#"(name: "hvc", size: 40), (name: "drive", size: 1),"#,
        )
        .replace(
            "bias: Some(Constant(value: 0.5))),",
            r#"), (name: "drive_RA", from: "drive", to: "ra", init: Constant(value: 0.5)),"#,
        )
        .replace("burst: 4.0)", r#"burst: 4.0, tonic: {"drive": 1.0})"#);
    assert_ne!(with_drive, SMALL);
    let dir = tempfile::tempdir().unwrap();
    let (_, bias) = run_text(dir.path(), SMALL);
    let (_, drive) = run_text(dir.path(), &with_drive);
    for (a, b) in bias.runs.iter().zip(&drive.runs) {
        let (a, b) = (metric(a, "song_error"), metric(b, "song_error"));
        assert_eq!(a.len(), b.len());
        assert!(a[a.len() - 1] < 0.95 * a[0], "the run learns: {a:?}");
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-10 * x.abs(), "{a:?} vs {b:?}");
        }
    }
}

#[test]
fn with_linear_units_learning_does_not_slow_down_with_four_times_the_neurons() {
    // The shipped scaling scenario's linear variant at 1x and 4x, each at the rate its sweep
    // found best (0.4 and 1.6; measured 275 and 75 renditions for seed 1). The claim checked:
    // the 4x circuit reaches 25 % of its initial song error no later than 1.25x the time the
    // 1x circuit needs.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/birdsong_scaling.ron");
    let text = std::fs::read_to_string(path).unwrap();
    let sweep = text.find("    sweep: {").unwrap();
    let text = format!(
        "{}{}",
        &text[..sweep],
        r#"    sweep: {
        "circuit.populations.hvc.size, circuit.populations.ra.size, circuit.projections.HVC_RA.init.Normal.std, circuit.projections.readout.init.Pools.weight, rule.learning_rate": [
            (300, 80, 0.3, 0.025, Absolute(0.4)),
            (1200, 320, 0.15, 0.00625, Absolute(1.6)),
        ],
        "circuit.populations.ra.activation, task.trace_gate, rule.baseline": [(Linear, None, Clean)],
    },
)"#
    )
    .replace("steps: 5000", "steps: 500");
    let dir = tempfile::tempdir().unwrap();
    let (_, file) = run_text(dir.path(), &text);
    let analysis = npsim::analysis::AnalysisConfig {
        target: Some("song_error=25%".into()),
        smoothing: 1,
    }
    .build()
    .unwrap();
    let summary = npsim::analysis::analyse(&file, &analysis);
    let times: Vec<f64> = summary
        .runs
        .iter()
        .map(|r| r.time_to_target.expect("reaches 25 %"))
        .collect();
    assert!(
        times[1] <= 1.25 * times[0],
        "renditions to 25 %: 1x {}, 4x {}",
        times[0],
        times[1]
    );
}

#[test]
fn the_recorded_baseline_is_the_one_the_rule_compared_with() {
    // One rendition per update, a row per update: the running average's baseline rebuilt from
    // the recorded rewards (b₁ = ℓ̃₁, b ← (1 − γ) b + γ ℓ̃), and the noise-free baseline equal to
    // minus the clean training loss.
    let scenario = |baseline: &str| {
        SMALL
            .replace("batch_size: 3, record_every: 20", "batch_size: 1, record_every: 1")
            .replace("steps: 60", "steps: 30")
            .replace(
                r#"sweep: { "rule": [NodePerturbation(learning_rate: Absolute(0.1)), Sgd(learning_rate: Absolute(1.0))] },"#,
                "",
            )
            .replace(
                "rule: NodePerturbation(learning_rate: Absolute(0.1)),",
                &format!("rule: NodePerturbation(learning_rate: Absolute(0.1), baseline: {baseline}),"),
            )
    };
    let dir = tempfile::tempdir().unwrap();
    let (_, running) = run_text(dir.path(), &scenario("RunningAverage(0.2)"));
    let (reward, baseline) = (
        metric(&running.runs[0], "reward"),
        metric(&running.runs[0], "baseline"),
    );
    assert_eq!(reward.len(), 31);
    let mut average = -reward[1];
    for t in 1..reward.len() {
        assert!(
            (baseline[t] + average).abs() <= 1e-12 * average.abs(),
            "update {t}"
        );
        average = 0.8 * average + 0.2 * -reward[t];
    }
    let (_, clean) = run_text(dir.path(), &scenario("Clean"));
    let (loss, baseline) = (
        metric(&clean.runs[0], "train_loss"),
        metric(&clean.runs[0], "baseline"),
    );
    for t in 1..loss.len() {
        assert!(
            (baseline[t] + loss[t]).abs() <= 1e-12 * loss[t].abs(),
            "update {t}"
        );
    }
}
