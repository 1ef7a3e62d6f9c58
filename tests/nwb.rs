//! NWB export: `npsim export nwb` and `output: (nwb: true)` on a training sweep, a task in
//! time with spikes and a free-running spiking network; the files pass pynwb's validator and
//! nwbinspector with nothing critical, and pynwb reads back the recording's numbers exactly.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::npsim;
use npsim::recorder;

/// Whether python3 has pynwb and nwbinspector (required in CI by `NPSIM_REQUIRE_NWB`).
fn pynwb_available() -> bool {
    common::python_imports(
        "pynwb, nwbinspector",
        "NPSIM_REQUIRE_NWB",
        "pip install pynwb nwbinspector",
    )
}

/// Validates with pynwb, inspects with nwbinspector (nothing at CRITICAL or from the
/// validator), and prints what pynwb reads back: per run and metric the values, per unit the
/// spike count and first spike, per weight table its shape and sum.
const READ_BACK: &str = r#"
import sys, numpy as np
from pynwb import NWBHDF5IO, validate
from nwbinspector import inspect_nwbfile, Importance
path = sys.argv[1]
import warnings
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # "no cached namespace": validated against pynwb's own
    errors = validate(path=path)
errors = errors[0] if isinstance(errors, tuple) else errors
assert not errors, errors
serious = [m for m in inspect_nwbfile(nwbfile_path=path)
           if m.importance in (Importance.CRITICAL, Importance.PYNWB_VALIDATION, Importance.ERROR)]
assert not serious, serious
with NWBHDF5IO(path, "r") as io:
    f = io.read()
    assert "version: 1" in f.source_script, f.source_script[:80]
    for run, module in f.processing.items():
        for name, series in module.data_interfaces.items():
            times = series.timestamps[:] if series.timestamps is not None else \
                series.starting_time + np.arange(len(series.data)) / series.rate
            print("metric", run, name, " ".join(repr(float(v)) for v in series.data[:]),
                  "|", " ".join(repr(float(t)) for t in times))
    if f.units is not None:
        frame = f.units.to_dataframe()
        for i, row in frame.iterrows():
            first = repr(float(row.spike_times[0])) if len(row.spike_times) else "-"
            print("unit", row["run"], row["population"], row["unit_index"], len(row.spike_times), first)
    for name, table in f.analysis.items():
        values = table["values"].data[:]
        print("weights", name, values.shape[0], values.shape[1], repr(float(values.sum())))
"#;

fn read_back(nwb: &Path) -> Option<String> {
    if !pynwb_available() {
        return None;
    }
    let out = Command::new("python3")
        .args(["-c", READ_BACK, nwb.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}: {text}{}",
        nwb.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(text)
}

fn repository(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Every metric of every run, as pynwb reads it, equals the recording's to the last bit;
/// the time axis is the training step.
fn check_metrics(recording: &Path, text: &str) {
    let summary = recorder::read(recording).unwrap();
    let mut checked = 0;
    for run in &summary.runs {
        let steps = &run.metrics.iter().find(|(n, _)| n == "step").unwrap().1;
        for (name, values) in run.metrics.iter().filter(|(n, _)| n != "step") {
            let line = text
                .lines()
                .find(|l| l.starts_with(&format!("metric {} {name} ", run.group)))
                .unwrap_or_else(|| panic!("no series {name} of {}", run.group));
            let (data, times) = line.split_once(" | ").unwrap();
            let data: Vec<f64> = data.split(' ').skip(3).map(|v| v.parse().unwrap()).collect();
            let same = |a: f64, b: f64| a == b || (a.is_nan() && b.is_nan());
            assert!(
                data.len() == values.len() && data.iter().zip(values).all(|(a, b)| same(*a, *b)),
                "{} {name}",
                run.group
            );
            let times: Vec<f64> = times.split(' ').map(|v| v.parse().unwrap()).collect();
            assert_eq!(times.len(), steps.len());
            for (t, s) in times.iter().zip(steps) {
                assert!(
                    (t - s).abs() <= 1e-6 * s.max(1.0),
                    "{} {name}: {t} vs step {s}",
                    run.group
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "{checked} series");
}

#[test]
fn a_training_sweep_exports_to_valid_nwb_with_its_metrics_and_weights() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"(
    version: 1,
    name: "sweep",
    description: "two seeds of NP",
    circuit: DeepLinear(lx: 6, lh: 12, ly: 3),
    task: LinearTeacher(teacher_noise_std: 0.0),
    rule: NodePerturbation(learning_rate: RelativeToCritical(0.5)),
    train: (steps: 300, record_every: 30),
    output: (nwb: true),
    sweep: { "seed": [1, 2] },
)"#;
    std::fs::write(dir.path().join("s.ron"), text).unwrap();
    let run = npsim(&["run", "s.ron", "--quiet", "--out", "sweep.h5"], dir.path());
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    // `output: (nwb: true)` wrote it beside the recording.
    let nwb = dir.path().join("sweep.nwb");
    assert!(String::from_utf8_lossy(&run.stdout).contains("nwb: "));
    assert!(nwb.exists());
    // An existing output is not replaced without --force; with it, the same file comes out.
    let again = npsim(&["export", "nwb", "sweep.h5", "--out", "sweep.nwb"], dir.path());
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("sweep.nwb` already exists"));
    let report = npsim::export::export_nwb(&dir.path().join("sweep.h5"), &nwb, true).unwrap();
    assert_eq!((report.series, report.units, report.matrices), (12, 0, 4));
    let missing = npsim(&["export", "nwb", "nothing.h5"], dir.path());
    assert_eq!(missing.status.code(), Some(2));

    let Some(text) = read_back(&nwb) else { return };
    check_metrics(&dir.path().join("sweep.h5"), &text);
    for run in ["run_000", "run_001"] {
        for (projection, rows, cols) in [("W1", 12, 6), ("W2", 3, 12)] {
            let (_, values) = recorder::read_weights(&dir.path().join("sweep.h5"), run, projection).unwrap();
            let sum: f64 = values.iter().sum();
            let line = format!("weights {run}_{projection} {rows} {cols} ");
            let found = text
                .lines()
                .find(|l| l.starts_with(&line))
                .unwrap_or_else(|| panic!("{line}"));
            let read: f64 = found[line.len()..].parse().unwrap();
            assert!(
                (read - sum).abs() <= 1e-12 * sum.abs().max(1.0),
                "{line}{read} vs {sum}"
            );
        }
    }
}

/// Spikes of a task in time (renditions laid end to end) and of a free-running network
/// (seconds from its start): every unit of the recorded populations is a row of `/units`
/// with its spike count and first spike as the recording has them.
#[test]
fn spikes_of_a_task_in_time_and_of_a_network_become_nwb_units() {
    let dir = tempfile::tempdir().unwrap();
    let song = std::fs::read_to_string(repository("scenarios/birdsong_spiking.ron"))
        .unwrap()
        .replace(
            "train: (steps: 2000, batch_size: 1, record_every: 250)",
            "train: (steps: 6, batch_size: 2, record_every: 3),\n    record: (spikes: [\"ra\"])",
        )
        .replace("sweep: { \"seed\": [1, 2, 3] },", "");
    assert!(song.contains("record: (spikes"));
    std::fs::write(dir.path().join("song.ron"), song).unwrap();
    let coba = std::fs::read_to_string(repository("scenarios/coba.ron")).unwrap();
    std::fs::write(dir.path().join("coba.ron"), coba).unwrap();
    for (scenario, extra) in [("song", vec![]), ("coba", vec!["--set", "simulate.duration=200"])] {
        let mut args = vec!["run", "", "--quiet", "--out", ""];
        let (file, out) = (format!("{scenario}.ron"), format!("{scenario}.h5"));
        args[1] = &file;
        args[4] = &out;
        args.extend(extra);
        let run = npsim(&args, dir.path());
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        let exported = npsim(&["export", "nwb", &out], dir.path());
        assert!(
            exported.status.success(),
            "{}",
            String::from_utf8_lossy(&exported.stderr)
        );
        let recording = dir.path().join(&out);
        let summary = recorder::read(&recording).unwrap();
        let group = &summary.runs[0].group;
        let populations = recorder::activity_groups(&recording, group, "spikes").unwrap();
        assert!(!populations.is_empty());
        let Some(text) = read_back(&dir.path().join(format!("{scenario}.nwb"))) else {
            continue;
        };
        let mut rows = 0;
        for population in populations {
            let events = recorder::read_activity(&recording, group, &format!("spikes/{population}")).unwrap();
            let mut counts = std::collections::HashMap::<u32, usize>::new();
            for &u in &events.unit {
                *counts.entry(u).or_default() += 1;
            }
            for line in text
                .lines()
                .filter(|l| l.starts_with(&format!("unit {group} {population} ")))
            {
                let fields: Vec<&str> = line.split(' ').collect();
                let unit: u32 = fields[3].parse().unwrap();
                let count: usize = fields[4].parse().unwrap();
                assert_eq!(count, counts.get(&unit).copied().unwrap_or(0), "{line}");
                if count > 0 {
                    // The first spike: the earliest rendition's earliest time (network runs
                    // have one rendition), in seconds.
                    let first = events
                        .time
                        .iter()
                        .zip(&events.unit)
                        .zip(&events.rendition)
                        .filter(|((_, u), _)| **u == unit)
                        .map(|((t, _), r)| (*r, *t))
                        .min_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)))
                        .unwrap();
                    let read: f64 = fields[5].parse().unwrap();
                    if first.0 == 0 {
                        assert!((read - first.1 / 1000.0).abs() < 1e-12, "{line}: {first:?}");
                    }
                }
                rows += 1;
            }
        }
        // Every neuron of the recorded populations, firing or not.
        let expected_rows = if scenario == "coba" {
            4000
        } else {
            let song = npsim::scenario::Scenario::load(&dir.path().join("song.ron")).unwrap();
            let plan = song.plans().unwrap().swap_remove(0);
            plan.blueprint
                .populations()
                .iter()
                .find(|p| p.name == "ra")
                .unwrap()
                .size
        };
        assert_eq!(rows, expected_rows, "{scenario}");
    }
}
