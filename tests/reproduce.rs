//! `npsim reproduce`: a figure's scenario run, analysed and drawn; a complete recording reused.

mod common;
use common::npsim;

#[test]
fn list_names_every_figure_with_its_finding_and_times() {
    let dir = tempfile::tempdir().unwrap();
    let out = npsim(&["reproduce", "--list"], dir.path());
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for f in npsim::reproduce::FIGURES {
        assert!(
            text.contains(f.name) && text.contains(f.paper_found),
            "{}",
            f.name
        );
    }
    // Every figure of the paper has an entry.
    for name in [
        "fig1a", "fig1b", "fig1c", "fig2a", "fig2b", "fig3a", "fig3b", "fig3c", "fig3d", "fig4a", "fig4b",
        "fig4c", "fig4d", "fig4e", "fig4f", "fig5a", "fig5b", "fig5c", "figS5",
    ] {
        assert!(npsim::reproduce::find(name).is_some(), "{name}");
    }
    let unknown = npsim(&["reproduce", "fig9z"], dir.path());
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no figure `fig9z`; reproducible: fig1a"));
}

#[test]
fn fig1a_quick_runs_from_any_folder_and_is_reused_the_second_time() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let first = npsim(&["reproduce", "fig1a", "--quiet"], d);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let text = String::from_utf8_lossy(&first.stdout);
    assert!(text.contains("minimum training time"), "{text}");
    let folder = d.join("reproduce/fig1a");
    for file in ["fig1a_quick.h5", "learning_curves.svg"] {
        assert!(folder.join(file).exists(), "{file}");
    }
    // The quick scale's overrides and the figure's target are in the recording.
    let recording = npsim::recorder::read(&folder.join("fig1a_quick.h5")).unwrap();
    let overrides = recording.attributes["overrides"].to_string();
    assert!(
        overrides.contains("circuit.lh=200") && overrides.contains("analysis.target"),
        "{overrides}"
    );
    let before = std::fs::metadata(folder.join("fig1a_quick.h5"))
        .unwrap()
        .modified()
        .unwrap();
    let again = npsim(&["reproduce", "fig1a", "--quiet"], d);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("reusing"));
    // Asked with other settings, the recording is neither reused nor overwritten.
    let other = npsim(
        &["reproduce", "fig1a", "--quiet", "--set", "train.record_every=200"],
        d,
    );
    assert_eq!(other.status.code(), Some(2));
    let text = String::from_utf8_lossy(&other.stderr);
    assert!(
        text.contains("fig1a_quick.h5` was recorded with other settings")
            && text.contains("--set train.record_every=200")
            && text.contains("give another --out"),
        "{text}"
    );
    assert_eq!(
        std::fs::metadata(folder.join("fig1a_quick.h5"))
            .unwrap()
            .modified()
            .unwrap(),
        before
    );
    // ... and in a folder of their own they are applied on top of the scale's.
    let elsewhere = npsim(
        &[
            "reproduce",
            "fig1a",
            "--quiet",
            "--set",
            "train.record_every=200",
            "--out",
            "seven",
        ],
        d,
    );
    assert!(elsewhere.status.success());
    let recording = npsim::recorder::read(&d.join("seven/fig1a_quick.h5")).unwrap();
    let overrides = recording.attributes["overrides"].to_string();
    assert!(
        overrides.contains("circuit.lh=200\ntrain.steps=20000\ntrain.record_every=200\nanalysis.target"),
        "{overrides}"
    );
    // A recording of another version of the scenario, with the same settings, is refused too.
    let text = npsim::reproduce::find("fig1a").unwrap().text;
    std::fs::write(d.join("edited.ron"), format!("{text}\n// edited\n")).unwrap();
    std::fs::create_dir_all(d.join("edited")).unwrap();
    let mut run = vec!["run", "edited.ron", "--out", "edited/fig1a_quick.h5", "--quiet"];
    for set in [
        "circuit.lh=200",
        "train.steps=20000",
        "analysis.target=\"epsilon=1%\"",
    ] {
        run.extend(["--set", set]);
    }
    assert!(npsim(&run, d).status.success());
    let stale = npsim(&["reproduce", "fig1a", "--quiet", "--out", "edited"], d);
    assert_eq!(stale.status.code(), Some(2));
    let text = String::from_utf8_lossy(&stale.stderr);
    assert!(
        text.contains("was recorded from another version of `linear_fig1a.ron`"),
        "{text}"
    );
}

#[test]
fn a_figure_whose_dataset_is_missing_says_how_to_fetch_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = npsim(&["reproduce", "fig4b", "--data-dir", "nowhere"], dir.path());
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("sarcos"), "{text}");
    assert!(!dir.path().join("reproduce/fig4b/fig4b_quick.h5").exists());
}

/// One group of a quick figure's summary: a rule at one size.
struct Group {
    rule: String,
    size: f64,
    minimum_time: f64,
    /// The best rate over the theory's (Eq. 13's) best rate.
    best_over_theory_rate: f64,
    theory: npsim::analysis::theory::GroupTheory,
}

/// Runs `npsim reproduce FIGURE` at the quick scale (from a folder without `scenarios/`) and
/// returns its groups, the size read from the sweep path `axis`.
fn quick_minimum_training_times(figure: &str, axis: &str) -> Vec<Group> {
    let dir = tempfile::tempdir().unwrap();
    let out = npsim(&["reproduce", figure, "--quiet"], dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let folder = dir.path().join("reproduce").join(figure);
    assert!(folder.join("minimum_training_time.svg").exists());
    let file = npsim::recorder::read(&folder.join(format!("{figure}_quick.h5"))).unwrap();
    let analysis = npsim::analysis::AnalysisConfig {
        target: Some("epsilon=1%".into()),
        smoothing: 5,
    };
    let summary = npsim::analysis::analyse(&file, &analysis.build().unwrap());
    summary
        .groups
        .iter()
        .map(|g| {
            let field = |name: &str| {
                g.label
                    .split(", ")
                    .find_map(|a| a.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
                    .unwrap_or_else(|| panic!("{name} in {}", g.label))
                    .to_string()
            };
            let theory = g.theory.unwrap_or_else(|| panic!("{}: no theory", g.label));
            Group {
                rule: field("rule").split('(').next().unwrap().to_string(),
                size: field(axis).parse().unwrap(),
                minimum_time: g
                    .minimum_training_time
                    .unwrap_or_else(|| panic!("{}: no rate reached the target", g.label)),
                best_over_theory_rate: g.best_learning_rate.unwrap() / theory.eq13.unwrap().learning_rate,
                theory,
            }
        })
        .collect()
}

/// SGD on the linear network: at every size the best of 0.5, 1 and 1.5 times the optimal rate
/// `1/(Lx(α0 + β0))` is that rate, and its time is Eq. 13's `Lx log 100` (461) within 15 %
/// (measured 475–512, the recording's resolution is 25 steps).
fn check_sgd(groups: &[Group]) {
    for g in groups.iter().filter(|g| g.rule == "Sgd") {
        assert!(
            (g.best_over_theory_rate - 1.0).abs() < 1e-9,
            "SGD at {}: best rate {}× optimal",
            g.size,
            g.best_over_theory_rate
        );
        let theory = g.theory.eq13.unwrap().iterations;
        assert!(
            (g.minimum_time / theory - 1.0).abs() < 0.15,
            "SGD at {}: {} vs Eq. 13 {theory}",
            g.size,
            g.minimum_time
        );
    }
}

/// NP's minimum training time beside the four-variable model's minimum: measured 1.08–1.29×
/// (the model is a mean-field limit; small networks fluctuate more), so 0.9–1.45×.
fn check_np_against_four_variable_model(groups: &[Group]) {
    for g in groups.iter().filter(|g| g.rule == "NodePerturbation") {
        let theory = g.theory.four_variable.unwrap().iterations;
        let ratio = g.minimum_time / theory;
        assert!(
            (0.9..1.45).contains(&ratio),
            "NP at {}: {} vs four-variable {theory}",
            g.size,
            g.minimum_time
        );
    }
}

fn np_times(groups: &[Group]) -> Vec<(f64, f64)> {
    groups
        .iter()
        .filter(|g| g.rule == "NodePerturbation")
        .map(|g| (g.size, g.minimum_time))
        .collect()
}

/// Fig. 2A at the quick scale: NP's minimum training time is nearly flat in the hidden width
/// (measured 7,575, 7,575 and 8,938 at Lh = 250, 1,000 and 4,000: within 1.5× over a
/// sixteenfold range) and more than ten times SGD's.
#[test]
fn fig2a_quick_np_is_nearly_flat_in_the_hidden_width() {
    let groups = quick_minimum_training_times("fig2a", "circuit.lh");
    let np = np_times(&groups);
    assert_eq!(np.len(), 3);
    let (lo, hi) = np
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(a, b), &(_, t)| (a.min(t), b.max(t)));
    assert!(hi / lo < 1.5, "{np:?}");
    for g in groups.iter().filter(|g| g.rule == "Sgd") {
        assert!(lo > 10.0 * g.minimum_time, "NP {lo} vs SGD {}", g.minimum_time);
    }
    check_sgd(&groups);
    check_np_against_four_variable_model(&groups);
}

/// Fig. 2B at the quick scale: NP's minimum training time grows with the output size
/// (measured 2,950, 7,575 and 20,688 at Ly = 3, 10 and 30: ×7.0 for ×10) while SGD's does not.
#[test]
fn fig2b_quick_np_grows_with_the_output_size() {
    let groups = quick_minimum_training_times("fig2b", "circuit.ly");
    let np = np_times(&groups);
    assert_eq!(np.len(), 3);
    assert!(
        np.windows(2).all(|w| w[1].0 > w[0].0 && w[1].1 > 1.8 * w[0].1),
        "{np:?}"
    );
    assert!(np[2].1 / np[0].1 > 4.0, "{np:?}");
    check_sgd(&groups);
    check_np_against_four_variable_model(&groups);
}

/// Runs a quick figure and returns, per learning rate in ascending order, the seed means of
/// the minimum step and the statuses, with the recording's first run (for its sizes).
fn quick_instability(figure: &str) -> (Vec<(f64, f64, Vec<String>)>, npsim::recorder::RunSummary) {
    let dir = tempfile::tempdir().unwrap();
    let out = npsim(&["reproduce", figure, "--quiet"], dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let folder = dir.path().join("reproduce").join(figure);
    assert!(folder.join("instability.svg").exists());
    let file = npsim::recorder::read(&folder.join(format!("{figure}_quick.h5"))).unwrap();
    let summary = npsim::analysis::analyse(&file, &npsim::analysis::Analysis::default());
    let mut rates: Vec<f64> = summary.runs.iter().filter_map(|r| r.learning_rate).collect();
    rates.sort_by(f64::total_cmp);
    rates.dedup();
    let points = rates
        .iter()
        .map(|&rate| {
            let runs: Vec<_> = summary
                .runs
                .iter()
                .filter(|r| r.learning_rate == Some(rate))
                .collect();
            let mean = runs.iter().map(|r| r.minimum_step.unwrap()).sum::<f64>() / runs.len() as f64;
            (rate, mean, runs.iter().map(|r| r.status.clone()).collect())
        })
        .collect();
    (points, file.runs[0].clone())
}

/// Fig. 3B at the quick scale (Lh = 1,000, 0.5–2 η*, two seeds): the step of the error's
/// minimum falls with the rate, and sits between the two-variable model's τc (the paper's
/// line, exact for a wide layer) and the four-variable model's (finite width), with 30 %
/// slack for the seeds' fluctuations. Measured seed means 16,765, 16,340, 7,315, 1,105 and
/// 195 against τc 29,710/18,712 (two/four-variable), 18,030/12,221, 5,920/7,059,
/// 1,170/1,806 and 220/371: the four-variable model is the closer one at small rates, the
/// two-variable one at large rates.
#[test]
fn fig3b_quick_nps_time_to_instability_falls_with_the_rate_as_the_theory_says() {
    use npsim_models::theory::{LinearDims, TheorySettings};
    let (points, first) = quick_instability("fig3b");
    assert_eq!(points.len(), 5);
    assert!(points.windows(2).all(|w| w[1].1 < w[0].1), "{points:?}");
    let size = |key: &str| match first.attributes[key] {
        npsim::recorder::Attr::Int(v) => v as usize,
        ref other => panic!("{key}: {other:?}"),
    };
    let dims = LinearDims {
        lx: size("lx"),
        lh: size("lh"),
        ly: size("ly"),
    };
    for (rate, minimum, _) in &points {
        let theory = TheorySettings {
            dims,
            init_scale: 1.0,
            learning_rate: *rate,
            teacher_noise_var: 0.1,
        };
        let two = theory.instability_onset(10_000_000).unwrap().0 as f64;
        let four = theory.four_variable_instability_onset(10_000_000).unwrap() as f64;
        let (lo, hi) = (two.min(four) / 1.3, two.max(four) * 1.3);
        assert!(
            (lo..=hi).contains(minimum),
            "η = {rate:e}: minimum at {minimum}, τc {two} (two-variable), {four} (four-variable)"
        );
    }
}

/// Fig. 3C at the quick scale: SGD has no delayed instability. Up to 3× its optimal rate the
/// error falls to its noise floor and stays there (the smoothed minimum lies in the second
/// half of the 20,000 steps; measured 17,660–20,000); from 4× it diverges at once (measured:
/// within 50 steps).
#[test]
fn fig3c_quick_sgd_is_stable_or_unstable_from_the_start() {
    let (points, first) = quick_instability("fig3c");
    let optimal = match first.attributes["eta_sgd_optimal"] {
        npsim::recorder::Attr::Float(v) => v,
        ref other => panic!("{other:?}"),
    };
    assert_eq!(points.len(), 6);
    for (rate, minimum, statuses) in &points {
        let relative = rate / optimal;
        if relative <= 3.0 + 1e-9 {
            assert!(
                statuses.iter().all(|s| s == "completed") && *minimum > 10_000.0,
                "{relative}×: {minimum} {statuses:?}"
            );
        } else {
            assert!(
                statuses.iter().all(|s| s == "diverged") && *minimum <= 100.0,
                "{relative}×: {minimum} {statuses:?}"
            );
        }
    }
}

/// Fig. 1B at the quick scale: below η* each run's error converges (ε < ε0/100) while its
/// input-weight norm α stays under the critical norm `2/(η Lx Ly (1 + β0))`; at 1.5 η* the
/// norm crosses it and the error grows until the run diverges. Measured: final α 1.47–2.32
/// against critical norms 15.0–3.75 below η*; past 2.5 at 1.5 η*.
#[test]
fn fig1b_quick_the_weight_norm_crosses_the_critical_line_only_above_the_critical_rate() {
    use npsim::recorder::Attr;
    let dir = tempfile::tempdir().unwrap();
    let out = npsim(&["reproduce", "fig1b", "--quiet"], dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let folder = dir.path().join("reproduce/fig1b");
    for figure in ["phase_plane.svg", "phase_plane.png"] {
        assert!(folder.join(figure).exists(), "{figure}");
    }
    let file = npsim::recorder::read(&folder.join("fig1b_quick.h5")).unwrap();
    assert_eq!(file.runs.len(), 8);
    for run in &file.runs {
        let number = |key: &str| match run.attributes[key] {
            Attr::Float(v) => v,
            Attr::Int(v) => v as f64,
            ref other => panic!("{key}: {other:?}"),
        };
        let (lx, lh, ly, rate) = (number("lx"), number("lh"), number("ly"), number("learning_rate"));
        let critical = 2.0 / (rate * lx * ly * (1.0 + 2.0 * lh / (lh + ly)));
        let alpha = common::metric(run, "alpha");
        let epsilon = common::metric(run, "epsilon");
        let relative = number("learning_rate_relative_to_critical");
        let status = run.attributes["status"].to_string();
        if relative <= 1.0 {
            assert!(
                alpha.iter().all(|&a| a < critical),
                "{relative} η*: α reached {:?} ≥ {critical}",
                alpha.last()
            );
            assert!(
                *epsilon.last().unwrap() < epsilon[0] / 100.0 && status == "completed",
                "{relative} η*: {status}"
            );
        } else {
            let largest = alpha
                .iter()
                .copied()
                .filter(|a| a.is_finite())
                .fold(0.0, f64::max);
            assert!(
                largest > critical,
                "{relative} η*: α up to {largest} vs {critical}"
            );
            assert_eq!(status, "diverged", "{relative} η*");
        }
    }
}

/// Fig. S5 at the quick scale on the real CIFAR-10 files in `../shared/data` (the first
/// training batch and the test batch), seeds 1–3. Without regularisation NP's weights
/// diffuse: the convolution kernels' squared norm grows in every seed (the growth the paper
/// names as the instability); whether it goes on to saturate the softmax within the quick
/// scale's 1,000 updates (test loss above 0.85 at some record) is a coin toss per noise
/// realisation (9 of seeds 1–18 on rand_distr's ziggurat, 7 on the vectorised one), so it is
/// not checked. With weight decay every weight shrinks, NP's test error never comes back up
/// in any seed and its accuracy stays low (below the paper's 50 %); SGD learns the same
/// network on the same files (so NP's failure is not the data's). Measured over seeds 1–18 on both noise generators
/// (2026-12-01): without decay the kernels' squared norm grew ×1.07–1.87 and NP's final
/// accuracy stayed at 0.08–0.16; with it the norm fell to ×0.006–0.051 and the accuracy
/// to 0.10.
#[test]
fn figs5_quick_np_weights_grow_without_decay_and_shrink_with_it_its_error_kept_down() {
    let Some(data) = common::shared_data("cifar10", "data_batch_1.bin") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = data.display().to_string();
    let out = npsim(
        &["reproduce", "figS5", "--quiet", "--data-dir", &data],
        dir.path(),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let file = npsim::recorder::read(&dir.path().join("reproduce/figS5/figS5_quick.h5")).unwrap();
    let analysis = npsim::analysis::Analysis {
        target: npsim::analysis::Target::parse("test_accuracy=0.4").unwrap(),
        ..Default::default()
    };
    let summary = npsim::analysis::analyse(&file, &analysis);
    let runs = |rule: &str, decay: bool| three_seeds(&summary, rule, "WeightDecay", decay);
    let last = |k: usize, name: &str| *common::metric(&file.runs[k], name).last().unwrap();

    let kernels = |k: usize, at: fn(&[f64]) -> f64| {
        ["norm_K1", "norm_K2"]
            .iter()
            .map(|name| at(common::metric(&file.runs[k], name)))
            .sum::<f64>()
    };
    let growth = |k: usize| kernels(k, |v| v[v.len() - 1]) / kernels(k, |v| v[0]);
    for k in runs("NodePerturbation", false) {
        let label = &summary.runs[k].label;
        assert!(
            growth(k) > 1.0,
            "{label}: without decay the kernels grow, ×{}",
            growth(k)
        );
        assert!(last(k, "test_accuracy") < 0.2, "{label}");
    }

    for k in runs("NodePerturbation", true) {
        let label = &summary.runs[k].label;
        assert_eq!(
            summary.runs[k].return_step, None,
            "{label}: with decay the error never comes back up"
        );
        let loss = common::metric(&file.runs[k], "test_loss");
        assert!(loss[1..].iter().all(|&l| l < loss[0]), "{label}: {loss:?}");
        assert!(last(k, "test_accuracy") < 0.2, "{label}");
        assert!(
            growth(k) < 0.1,
            "{label}: decay shrinks the kernels, ×{}",
            growth(k)
        );
    }

    let sgd: Vec<f64> = runs("Sgd", false)
        .into_iter()
        .map(|k| last(k, "test_accuracy"))
        .collect();
    assert!(sgd.iter().sum::<f64>() / 3.0 > 0.35, "SGD learns: {sgd:?}");
}

/// The runs of one case of a quick scale over seeds 1–3: those whose label names `case`, and
/// `post_update` or not as `with_post_update` says.
fn three_seeds(
    summary: &npsim::analysis::Summary,
    case: &str,
    post_update: &str,
    with_post_update: bool,
) -> Vec<usize> {
    let runs: Vec<usize> = (0..summary.runs.len())
        .filter(|&k| {
            let label = &summary.runs[k].label;
            label.contains(case) && label.contains(post_update) == with_post_update
        })
        .collect();
    assert_eq!(
        runs.len(),
        3,
        "three seeds of {case}, {post_update} {with_post_update}"
    );
    runs
}

/// Runs a quick MNIST figure on the shared test set (its first 8,000 digits train, for the
/// quick scale's 1,200 updates) and returns its recording and summary.
fn quick_mnist(figure: &str) -> Option<(npsim::recorder::FileSummary, npsim::analysis::Summary)> {
    let data = common::shared_data("mnist", "t10k-images-idx3-ubyte")?;
    let dir = tempfile::tempdir().unwrap();
    let data = data.display().to_string();
    let split = "task.split=TestSetSplit(train: 8000)";
    let args = [
        "reproduce",
        figure,
        "--quiet",
        "--data-dir",
        &data,
        "--set",
        split,
        "--set",
        "train.epochs=15",
    ];
    let out = npsim(&args, dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let file =
        npsim::recorder::read(&dir.path().join(format!("reproduce/{figure}/{figure}_quick.h5"))).unwrap();
    let analysis = npsim::analysis::Analysis {
        target: npsim::analysis::Target::parse("test_accuracy=0.9").unwrap(),
        ..Default::default()
    };
    let summary = npsim::analysis::analyse(&file, &analysis);
    Some((file, summary))
}

/// Fig. 5A on MNIST: SGD reaches 90 % test accuracy long before NP (measured: update 80;
/// NP 87 % after 1,200), and NP's rate, right for 100 hidden units, is unstable for 1,000
/// (its test loss back above the initial value by update 320, accuracy 42 % at the end).
#[test]
fn fig5a_quick_np_is_slower_than_sgd_and_unstable_when_wide() {
    let Some((file, summary)) = quick_mnist("fig5a") else {
        return;
    };
    let run = |hidden: &str, rule: &str| {
        let k = summary
            .runs
            .iter()
            .position(|r| r.label.contains(&format!("hidden=[{hidden}]")) && r.label.contains(rule))
            .unwrap();
        (
            &summary.runs[k],
            *common::metric(&file.runs[k], "test_accuracy").last().unwrap(),
        )
    };
    let (np, np_accuracy) = run("100", "NodePerturbation");
    let (sgd, _) = run("100", "Sgd");
    assert!(
        sgd.time_to_target.is_some_and(|t| t <= 160.0),
        "{:?}",
        sgd.time_to_target
    );
    assert!(
        np.time_to_target
            .is_none_or(|t| t >= 8.0 * sgd.time_to_target.unwrap())
    );
    assert!(np_accuracy > 0.8, "NP learns: {np_accuracy}");
    let (wide, wide_accuracy) = run("1000", "NodePerturbation");
    assert!(wide.return_step.is_some(), "unstable at H = 1000");
    assert!(wide_accuracy < 0.5, "{wide_accuracy}");
}

/// Fig. 5C on MNIST, seeds 1–3 (single runs differ by up to 0.18–0.25 in final accuracy at this
/// length, so the claims are on the seeds' means). Measured: without normalisation 0.805,
/// 0.718, 0.543 for 1, 2, 3 hidden layers; with weight normalisation 0.879, 0.695, 0.666, and
/// no normalised run back above its initial test loss. The 2-layer gain (−0.02 here) is not
/// asserted: on the noise streams before 2026-12-01 it was 0.09; the fall with depth and the
/// 3-layer gain held on both.
#[test]
fn fig5c_quick_depth_slows_np_and_normalisation_helps_the_deepest_network() {
    let Some((file, summary)) = quick_mnist("fig5c") else {
        return;
    };
    let mean_accuracy = |layers: usize, normalised: bool| {
        let hidden = format!("hidden=[{}]", vec!["100"; layers].join(", "));
        let runs = three_seeds(&summary, &hidden, "WeightNormalisation", normalised);
        for &k in &runs {
            assert!(
                !normalised || summary.runs[k].return_step.is_none(),
                "{}",
                summary.runs[k].label
            );
        }
        runs.iter()
            .map(|&k| *common::metric(&file.runs[k], "test_accuracy").last().unwrap())
            .sum::<f64>()
            / 3.0
    };
    let plain: Vec<f64> = (1..=3).map(|l| mean_accuracy(l, false)).collect();
    assert!(plain.windows(2).all(|w| w[1] < w[0] - 0.05), "{plain:?}");
    let (normalised, unnormalised) = (mean_accuracy(3, true), plain[2]);
    assert!(
        normalised > unnormalised + 0.05,
        "3 layers: {normalised} against {unnormalised}"
    );
}
