"""Reads an npsim recording with h5py and checks the layout of docs/hdf5-layout.md.

Usage: python3 tests/h5py_check.py FILE EXPECTED_RUNS
Exits non-zero with a message on the first mismatch. Called by tests/recording.rs.
"""
import sys

import h5py
import numpy as np


def fail(message):
    print(f"h5py check failed: {message}", file=sys.stderr)
    sys.exit(1)


path, expected_runs = sys.argv[1], int(sys.argv[2])
with h5py.File(path, "r") as f:
    for key in ["npsim_version", "scenario_name", "scenario", "created"]:
        if key not in f.attrs:
            fail(f"root attribute {key} missing")
        if not isinstance(f.attrs[key], str):
            fail(f"root attribute {key} is {type(f.attrs[key])}, not str")
    if "version: 1" not in f.attrs["scenario"]:
        fail("scenario attribute does not hold the RON text")
    runs = sorted(f["runs"].keys())
    if len(runs) != expected_runs:
        fail(f"{len(runs)} runs, expected {expected_runs}")
    for name in runs:
        run = f["runs"][name]
        for key in ["rule", "seed", "status", "steps_done", "lx", "lh", "ly", "learning_rate",
                    "teacher_noise_std", "perturbation_std", "init_scale"]:
            if key not in run.attrs:
                fail(f"{name}: attribute {key} missing")
        if run.attrs["status"] not in ("completed", "diverged", "interrupted", "failed"):
            fail(f"{name}: status {run.attrs['status']!r}")
        metrics = run["metrics"]
        names = list(metrics.keys())
        for key in ["step", "alpha", "beta", "epsilon"]:
            if key not in names:
                fail(f"{name}: metric {key} missing")
        lengths = {metrics[k].shape for k in names}
        if len(lengths) != 1 or len(next(iter(lengths))) != 1:
            fail(f"{name}: metrics are not 1-D of equal length: {lengths}")
        step = metrics["step"][:]
        if step[0] != 0 or np.any(np.diff(step) <= 0):
            fail(f"{name}: step does not start at 0 and increase")
        if int(run.attrs["steps_done"]) != int(step[-1]):
            fail(f"{name}: steps_done {run.attrs['steps_done']} != last step {step[-1]}")
        alpha = metrics["alpha"][:]
        w1 = run["weights"]["W1"][:]
        if w1.shape != (int(run.attrs["lh"]), int(run.attrs["lx"])):
            fail(f"{name}: W1 shape {w1.shape}")
        # The last recorded alpha is |W1|^2 / Lx of the final weights.
        if run.attrs["status"] == "completed":
            measured = float((w1.astype(np.float64) ** 2).sum() / w1.shape[1])
            if not np.isclose(measured, alpha[-1], rtol=1e-5):
                fail(f"{name}: alpha {alpha[-1]} but final W1 gives {measured}")
        if run.attrs["rule"] == "node_perturbation":
            theory = run["theory"]
            for key in ["step", "epsilon_4v", "alpha_4v", "beta_4v", "epsilon_2v", "a_2v"]:
                if key not in theory:
                    fail(f"{name}: theory {key} missing")
print(f"h5py check passed: {len(runs)} runs")
