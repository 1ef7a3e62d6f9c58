//! The `npsim` command end to end.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

mod common;
use common::npsim;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const TINY: &str = r#"(
    version: 1,
    name: "tiny",
    circuit: DeepLinear(lx: 8, lh: 16, ly: 2),
    task: LinearTeacher(teacher_noise_std: 0.0),
    rule: NodePerturbation(learning_rate: RelativeToCritical(0.5)),
    train: (steps: 400, record_every: 20),
)"#;

fn scenario(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("s.ron");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn run_writes_default_output_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    scenario(dir.path(), TINY);
    let first = npsim(&["run", "s.ron", "--quiet"], dir.path());
    assert!(first.status.success(), "{}", stderr(&first));
    let out = dir.path().join("runs/tiny.h5");
    assert!(out.exists());
    assert!(
        stdout(&first).contains("completed"),
        "summary table: {}",
        stdout(&first)
    );
    let before = std::fs::read(&out).unwrap();
    let again = npsim(
        &["run", "s.ron", "--quiet", "--set", "train.steps=100"],
        dir.path(),
    );
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("already exists; pass --force"),
        "{}",
        stderr(&again)
    );
    assert_eq!(
        std::fs::read(&out).unwrap(),
        before,
        "the old recording is untouched"
    );
    let forced = npsim(
        &["run", "s.ron", "--quiet", "--force", "--set", "train.steps=100"],
        dir.path(),
    );
    assert!(forced.status.success(), "{}", stderr(&forced));
    let inspect = npsim(&["inspect", "runs/tiny.h5"], dir.path());
    assert!(inspect.status.success());
    assert!(
        stdout(&inspect).contains("completed") && stdout(&inspect).contains(" 100 "),
        "{}",
        stdout(&inspect)
    );
}

#[test]
fn invalid_input_exits_2_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    scenario(dir.path(), TINY);
    let bad = npsim(&["run", "s.ron", "--quiet", "--set", "train.steps=0"], dir.path());
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(stderr(&bad), "error: s.ron: train.steps: must be at least 1\n");
    assert!(!dir.path().join("runs").exists());
    let missing = npsim(&["run", "nope.ron"], dir.path());
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("cannot read scenario `nope.ron`"));
}

#[test]
fn theory_eta_star_prints_the_paper_value() {
    let dir = tempfile::tempdir().unwrap();
    let o = npsim(
        &["theory", "eta-star", "--lx", "100", "--lh", "1000", "--ly", "10"],
        dir.path(),
    );
    assert!(o.status.success());
    let line = stdout(&o)
        .lines()
        .find(|l| l.starts_with("eta_star:"))
        .unwrap()
        .to_string();
    let value: f64 = line["eta_star:".len()..].trim().parse().unwrap();
    assert!((value / 1.2019e-4 - 1.0).abs() < 5e-4, "{line}");
    let t = npsim(
        &[
            "theory",
            "trajectory",
            "--steps",
            "1000",
            "--record-every",
            "100",
            "--out",
            "t.csv",
        ],
        dir.path(),
    );
    assert!(t.status.success(), "{}", stderr(&t));
    let csv = std::fs::read_to_string(dir.path().join("t.csv")).unwrap();
    assert!(csv.starts_with("step,epsilon_4v,alpha_4v,beta_4v,epsilon_2v,a_2v\n"));
    assert_eq!(csv.lines().count(), 12);
}

#[test]
fn a_diverging_run_is_recorded_and_the_sweep_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let text = TINY.replace(
        "train: (steps: 400, record_every: 20),",
        "train: (steps: 400, record_every: 20),\n    sweep: { \"rule.learning_rate\": [Absolute(10.0), RelativeToCritical(0.5)] },",
    );
    scenario(dir.path(), &text);
    let o = npsim(&["run", "s.ron", "--quiet", "--out", "d.h5"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let table = stdout(&o);
    assert!(table.contains("diverged@"), "{table}");
    assert!(table.contains("completed"), "{table}");
}

fn wait_for(path: &Path) {
    // A liveness guard for the child, not a timing assertion: five minutes is ample.
    for _ in 0..3000 {
        if path.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{} never appeared", path.display());
}

const LONG: &str = r#"(
    version: 1,
    name: "long",
    circuit: DeepLinear(lx: 50, lh: 2000, ly: 5),
    task: LinearTeacher(teacher_noise_std: 0.0),
    rule: NodePerturbation(learning_rate: RelativeToCritical(0.5)),
    train: (steps: 100000000, record_every: 100, sync_every: 1000),
)"#;

#[test]
fn ctrl_c_marks_runs_interrupted_and_keeps_the_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    scenario(dir.path(), LONG);
    let child = Command::new(env!("CARGO_BIN_EXE_npsim"))
        .current_dir(dir.path())
        .args(["run", "s.ron", "--quiet", "--out", "l.h5"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let partial = dir.path().join("l.h5.partial");
    wait_for(&partial);
    std::thread::sleep(Duration::from_millis(500));
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(!dir.path().join("l.h5").exists());
    let summary = npsim::recorder::read(&partial).unwrap();
    let run = &summary.runs[0];
    assert_eq!(run.attributes["status"].to_string(), "interrupted");
    let steps = &run.metrics.iter().find(|(n, _)| n == "step").unwrap().1;
    assert_eq!(
        run.attributes["steps_done"].to_string(),
        format!("{}", *steps.last().unwrap() as u64)
    );
}

#[test]
fn a_killed_run_leaves_a_readable_prefix() {
    let dir = tempfile::tempdir().unwrap();
    scenario(dir.path(), LONG);
    let mut child = Command::new(env!("CARGO_BIN_EXE_npsim"))
        .current_dir(dir.path())
        .args(["run", "s.ron", "--quiet", "--out", "k.h5"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let partial = dir.path().join("k.h5.partial");
    wait_for(&partial);
    // Wait for at least two syncs' worth of steps to reach the file, then SIGKILL.
    let mut synced = 0;
    for _ in 0..3000 {
        std::thread::sleep(Duration::from_millis(100));
        if std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0) > 0 {
            synced += 1;
        }
        if synced > 20 {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let summary = npsim::recorder::read(&partial).unwrap();
    let run = &summary.runs[0];
    assert_eq!(
        run.attributes["status"].to_string(),
        "interrupted",
        "never finished, so never marked otherwise"
    );
    let steps = &run.metrics.iter().find(|(n, _)| n == "step").unwrap().1;
    assert!(steps.len() > 1, "synced metrics survive a kill");
    for (name, values) in &run.metrics {
        assert_eq!(values.len(), steps.len(), "metric {name} is a complete prefix");
    }
}

const SWEPT: &str = r#"(
    version: 1,
    name: "swept",
    circuit: DeepLinear(lx: 8, lh: 16, ly: 2),
    task: LinearTeacher(teacher_noise_std: 0.0),
    rule: NodePerturbation(learning_rate: RelativeToCritical(0.5)),
    train: (steps: 40, record_every: 20),
    sweep: { "seed": [1, 2], "rule": [Sgd(learning_rate: Absolute(1e-3))] },
)"#;

#[test]
fn an_override_the_sweep_would_replace_is_refused_and_nothing_is_printed_or_written() {
    let dir = tempfile::tempdir().unwrap();
    scenario(dir.path(), SWEPT);
    for (args, swept) in [
        (vec!["run", "s.ron", "--seed", "7"], "seed"),
        (
            vec!["run", "s.ron", "--set", "rule.learning_rate=Absolute(1e-2)"],
            "rule",
        ),
        (
            vec![
                "validate",
                "s.ron",
                "--set",
                "rule=Sgd(learning_rate: Absolute(1e-2))",
            ],
            "rule",
        ),
    ] {
        let out = npsim(&args, dir.path());
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&out).contains(&format!("the scenario's sweep sets `{swept}` in every run")),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(stdout(&out).is_empty());
    }
    assert!(!dir.path().join("runs").exists());
}

#[test]
fn set_messages_say_what_the_place_takes() {
    let dir = tempfile::tempdir().unwrap();
    scenario(dir.path(), TINY);
    let out = npsim(
        &["validate", "s.ron", "--set", "rule.learning_rate=1e-3"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let message = stderr(&out);
    assert!(
        message.contains("`rule.learning_rate` was `RelativeToCritical(0.5)`, one of `Absolute(..)`, `RelativeToCritical(..)`, `RelativeToSgdOptimal(..)`"),
        "{message}"
    );
    let out = npsim(&["validate", "s.ron", "--set", "circuit.lh=/x"], dir.path());
    assert!(
        stderr(&out).contains("text values need double quotes"),
        "{}",
        stderr(&out)
    );
    let out = npsim(&["validate", "s.ron", "--set", "circuit.lhh=5"], dir.path());
    assert!(
        stderr(&out).contains("has no field `lhh` (did you mean `lh`?)"),
        "{}",
        stderr(&out)
    );
    // No Rust type name reaches the user.
    for bad in [
        "train=(stepz: 3)",
        "circuit=Explicit(populations: [(nam: \"x\")], projections: [])",
    ] {
        let out = npsim(&["validate", "s.ron", "--set", bad], dir.path());
        assert_eq!(out.status.code(), Some(2));
        assert!(!stderr(&out).contains("Config"), "{bad}: {}", stderr(&out));
    }
}

#[test]
fn set_reaches_populations_and_projections_by_name() {
    let explicit = r#"(
    version: 1,
    name: "explicit",
    circuit: Explicit(
        populations: [
            (name: "x", size: 4),
            (name: "h", size: 6, noise: Gaussian(std: 1e-6)),
            (name: "y", size: 2, noise: Gaussian(std: 1e-6)),
        ],
        projections: [(name: "W1", from: "x", to: "h"), (from: "h", to: "y")],
    ),
    task: LinearTeacher(teacher_noise_std: 0.0),
    rule: NodePerturbation(learning_rate: Absolute(1e-3)),
    train: (steps: 40, record_every: 20),
)"#;
    let dir = tempfile::tempdir().unwrap();
    scenario(dir.path(), explicit);
    let ok = npsim(
        &[
            "run",
            "s.ron",
            "--quiet",
            "--set",
            "circuit.populations.h.noise.std=1e-5",
            "--set",
            "circuit.projections.h->y.plastic=false",
            "--set",
            "circuit.projections.0.init=Zeros",
        ],
        dir.path(),
    );
    assert!(ok.status.success(), "{}", stderr(&ok));
    let file = dir.path().join("runs/explicit.h5");
    let summary = npsim::recorder::read(&file).unwrap();
    let config = summary.runs[0].attributes["config"].to_string();
    assert!(
        config.contains("name: \"h\", size: 6, shape: None, activation: Linear, noise: Gaussian(std: 1e-5)"),
        "{config}"
    );
    assert!(config.contains("plastic: false"), "{config}");
    assert!(
        config.contains("(name: \"W1\", from: \"x\", to: \"h\", init: Zeros"),
        "{config}"
    );
    npsim::scenario::Scenario::parse(Path::new("config.ron"), config)
        .expect("the recorded config is a scenario");
    let missing = npsim(
        &["validate", "s.ron", "--set", "circuit.populations.hh.size=3"],
        dir.path(),
    );
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing)
            .contains("has no element named `hh` (did you mean `h`?); names there: `x`, `h`, `y`"),
        "{}",
        stderr(&missing)
    );
}

/// The subcommands `npsim --help` lists, as paths (`["bench", "mlp"]`), leaves only.
fn leaf_subcommands(dir: &Path, path: Vec<String>) -> Vec<Vec<String>> {
    let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
    args.push("--help");
    let help = stdout(&npsim(&args, dir));
    let Some(listed) = help.split("Commands:\n").nth(1) else {
        return vec![path];
    };
    listed
        .lines()
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .flat_map(|name| {
            let mut below = path.clone();
            below.push(name.to_string());
            leaf_subcommands(dir, below)
        })
        .collect()
}

/// Arguments that make each subcommand cheap (tiny sizes, one repetition), so that a value
/// it accepts finishes in a moment; the option under test replaces its own entry.
fn cheap_arguments(command: &str) -> Option<Vec<&'static str>> {
    Some(match command {
        "run" => vec!["tiny.ron", "--quiet", "--force", "--out", "walk.h5"],
        "analyze" => vec!["tiny.h5"],
        "reproduce" => vec!["--list"],
        "bench mlp" => vec!["--hidden", "8", "--batch", "2", "--reps", "1"],
        "bench conv" => vec!["--batch", "1", "--reps", "1"],
        "bench gemm" => vec!["--m", "4", "--n", "4", "--k", "4", "--reps", "1"],
        "bench birdsong" => vec!["--batch", "1", "--reps", "1"],
        "bench lif" => vec!["--neurons", "20", "--duration", "5", "--reps", "1"],
        "bench coba" => vec!["--seconds", "0.01", "--reps", "1"],
        "bench linear-np" => vec!["--lx", "4", "--lh", "8", "--ly", "2", "--reps", "1"],
        "bench noise" => vec!["--entries", "16", "--reps", "1"],
        "theory eta-star" => vec![],
        "theory trajectory" => vec!["--out", "t.csv", "--steps", "100", "--record-every", "10"],
        _ => return None,
    })
}

/// Runs npsim with a bound on its time: a command that neither finishes nor refuses within it
/// has hung (the bound is far above what any cheap command here takes).
fn npsim_within(args: &[String], dir: &Path, limit: std::time::Duration) -> Option<Output> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_npsim"))
        .current_dir(dir)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            child.kill().unwrap();
            child.wait().unwrap();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Some(child.wait_with_output().unwrap())
}

/// Every numeric option of every subcommand (found from `--help`, so new ones are walked
/// too), given values no option can take (text, negative, NaN, infinite) and values at or
/// beyond the edges (0, 0.5, 4e9, 1e30, 1e20): each is refused with exit 2 and a message
/// naming the option, or accepted and finishes — never a panic, an abort in the allocator, a
/// signal or a hang.
#[test]
fn a_walk_over_every_numeric_option_finds_no_panic_abort_or_hang() {
    let dir = tempfile::tempdir().unwrap();
    scenario(dir.path(), TINY);
    std::fs::rename(dir.path().join("s.ron"), dir.path().join("tiny.ron")).unwrap();
    let made = npsim(&["run", "tiny.ron", "--quiet", "--out", "tiny.h5"], dir.path());
    assert!(made.status.success(), "{}", stderr(&made));
    let leaves = leaf_subcommands(dir.path(), Vec::new());
    assert!(leaves.len() >= 15, "{leaves:?}");
    let impossible = ["abc", "-1", "nan", "inf"];
    let edges = ["0", "0.5", "4000000000", "1e30", "99999999999999999999"];
    let mut walked = 0;
    for leaf in leaves {
        let command = leaf.join(" ");
        let mut help_args = leaf.clone();
        help_args.push("--help".into());
        let help = stdout(&npsim(
            &help_args.iter().map(String::as_str).collect::<Vec<_>>(),
            dir.path(),
        ));
        let mut options: Vec<&str> = help
            .split_whitespace()
            .zip(help.split_whitespace().skip(1))
            .filter(|(option, value)| option.starts_with("--") && value.starts_with('<'))
            .map(|(option, _)| option)
            .collect();
        options.sort_unstable();
        options.dedup();
        for option in options {
            // Numeric: the parser itself refuses text, without listing possible values.
            let mut probe = leaf.clone();
            probe.push(format!("{option}=abc"));
            let probed = npsim(&probe.iter().map(String::as_str).collect::<Vec<_>>(), dir.path());
            let probe_error = stderr(&probed);
            if !probe_error.contains("invalid value") || probe_error.contains("possible values") {
                continue;
            }
            let cheap = cheap_arguments(&command).unwrap_or_else(|| {
                panic!("`npsim {command}` has numeric options: give it cheap arguments here")
            });
            for value in impossible.iter().chain(&edges) {
                let mut args = leaf.clone();
                let mut rest = cheap.iter();
                while let Some(&arg) = rest.next() {
                    if arg == option {
                        rest.next();
                    } else {
                        args.push(arg.into());
                    }
                }
                args.push(format!("{option}={value}"));
                let shown = format!("npsim {}", args.join(" "));
                let out = npsim_within(&args, dir.path(), Duration::from_secs(120))
                    .unwrap_or_else(|| panic!("{shown} hung"));
                let message = stderr(&out);
                match out.status.code() {
                    Some(2) => assert!(
                        message.contains(option),
                        "{shown}: exit 2 without naming {option}: {message}"
                    ),
                    Some(0) => assert!(
                        !impossible.contains(value),
                        "{shown} accepted an impossible value"
                    ),
                    code => panic!("{shown}: exit {code:?}: {message}"),
                }
                walked += 1;
            }
        }
    }
    assert!(walked >= 300, "only {walked} cases walked");
}

#[test]
fn inspect_of_a_missing_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = npsim(&["inspect", "no-such.h5"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no-such.h5"), "{}", stderr(&out));
}

#[test]
fn theory_trajectory_takes_an_absolute_rate() {
    let dir = tempfile::tempdir().unwrap();
    let out = npsim(
        &[
            "theory",
            "trajectory",
            "--lx",
            "10",
            "--lh",
            "50",
            "--ly",
            "2",
            "--eta",
            "1e-3",
            "--steps",
            "200",
            "--record-every",
            "100",
            "--out",
            "t.csv",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(dir.path().join("t.csv")).unwrap();
    assert_eq!(text.lines().count(), 4, "header and steps 0, 100, 200: {text}");
}

#[test]
fn runs_record_their_error_metric_and_post_updates_in_scenario_syntax() {
    let dir = tempfile::tempdir().unwrap();
    scenario(
        dir.path(),
        &TINY.replace(
            "    train:",
            "    post_update: [WeightDecay(rate: 1e-4), WeightNormalisation(target: Initial)],\n    train:",
        ),
    );
    let out = npsim(&["run", "s.ron", "--quiet"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("final epsilon"), "{}", stdout(&out));
    let summary = npsim::recorder::read(&dir.path().join("runs/tiny.h5")).unwrap();
    let run = &summary.runs[0];
    assert_eq!(run.attributes["error_metric"].to_string(), "epsilon");
    assert_eq!(
        run.attributes["post_update"].to_string(),
        "WeightDecay(rate: 0.0001, projections: None); WeightNormalisation(target: Initial, projections: None)"
    );
    // The recorded configuration is a scenario again.
    let config = run.attributes["config"].to_string();
    let again = npsim::scenario::Scenario::parse(Path::new("config.ron"), config).unwrap();
    assert_eq!(again.config.post_update.len(), 2);
}

#[test]
fn none_as_a_variant_can_be_set_and_swept() {
    let explicit = r#"(
    version: 1,
    name: "none-variant",
    circuit: Explicit(
        populations: [(name: "x", size: 3), (name: "y", size: 2, noise: Gaussian(std: 1e-6))],
        projections: [(from: "x", to: "y")],
    ),
    task: LinearTeacher(teacher_noise_std: 0.0),
    rule: Sgd(learning_rate: Absolute(1e-3)),
    train: (steps: 10),
    SWEEP
)"#;
    let dir = tempfile::tempdir().unwrap();
    // Swept: `None` is the variant (a noiseless output), fine for SGD.
    scenario(
        dir.path(),
        &explicit.replace(
            "SWEEP",
            "sweep: { \"circuit.populations.y.noise\": [None, Gaussian(std: 1e-5)] },",
        ),
    );
    let out = npsim(&["validate", "s.ron"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("2 run(s)"), "{}", stdout(&out));
    // Set: understood as the variant, so NP then finds no noise to learn from.
    scenario(dir.path(), &explicit.replace("SWEEP", ""));
    let out = npsim(
        &[
            "validate",
            "s.ron",
            "--set",
            "circuit.populations.y.noise=None",
            "--set",
            "rule=NodePerturbation(learning_rate: Absolute(1e-3))",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("needs a perturbed population `y`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn sigterm_stops_a_run_between_records_and_keeps_it_consistent() {
    // Records only at step 0 and the (far) end: the run must notice SIGTERM at an ordinary
    // update. Its metrics keep the step-0 row, `steps_done` says so, and the step it stopped
    // after is recorded.
    let dir = tempfile::tempdir().unwrap();
    scenario(
        dir.path(),
        &LONG.replace("record_every: 100, sync_every: 1000", "record_every: 100000000"),
    );
    let child = Command::new(env!("CARGO_BIN_EXE_npsim"))
        .current_dir(dir.path())
        .args(["run", "s.ron", "--quiet", "--out", "t.h5"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let partial = dir.path().join("t.h5.partial");
    wait_for(&partial);
    std::thread::sleep(Duration::from_millis(1000));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    let run = &npsim::recorder::read(&partial).unwrap().runs[0];
    assert_eq!(run.attributes["status"].to_string(), "interrupted");
    assert_eq!(run.attributes["steps_done"].to_string(), "0");
    let stopped: u64 = run.attributes["interrupted_at_step"].to_string().parse().unwrap();
    assert!(stopped > 0, "stopped after update {stopped}");
    let steps = &run.metrics.iter().find(|(n, _)| n == "step").unwrap().1;
    assert_eq!(steps, &[0.0]);
}

#[test]
fn slow_runs_flush_by_time_and_keep_their_rows_through_a_kill() {
    // A step count that never triggers a flush: only `sync_seconds` does.
    let dir = tempfile::tempdir().unwrap();
    scenario(
        dir.path(),
        &LONG.replace("sync_every: 1000", "sync_every: 1000000000, sync_seconds: 0.2"),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_npsim"))
        .current_dir(dir.path())
        .args(["run", "s.ron", "--quiet", "--out", "f.h5"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let partial = dir.path().join("f.h5.partial");
    wait_for(&partial);
    std::thread::sleep(Duration::from_millis(3000));
    child.kill().unwrap();
    child.wait().unwrap();
    let run = &npsim::recorder::read(&partial).unwrap().runs[0];
    let steps = &run.metrics.iter().find(|(n, _)| n == "step").unwrap().1;
    assert!(steps.len() > 1, "rows flushed by time survive a kill: {steps:?}");
    for (name, values) in &run.metrics {
        assert_eq!(values.len(), steps.len(), "metric {name} is a complete prefix");
    }
    assert_eq!(
        run.attributes["steps_done"].to_string(),
        format!("{}", *steps.last().unwrap() as u64)
    );
}
