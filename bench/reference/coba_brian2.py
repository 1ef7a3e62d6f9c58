"""The Vogels-Abbott COBA network (Brette et al. 2007, benchmark 1) in Brian2: the reference
npsim's `npsim bench coba` and `scenarios/coba.ron` are compared with.

4000 LIF neurons (3200 E, 800 I), conductance-based exponential synapses, p = 0.02 random
connectivity (autapses allowed), dt = 0.1 ms, exponential Euler integration.
C = 200 pF, gL = 10 nS (taum 20 ms), EL = -60 mV, Vt = -50 mV, Vr = -60 mV, refractory 5 ms,
Ee = 0 mV, Ei = -80 mV, taue = 5 ms, taui = 10 ms, we = 6 nS, wi = 67 nS.
Initial v uniform in [Vr, Vt]; initial ge ~ N(40, 15) nS, gi ~ N(200, 120) nS (clipped >= 0).

Setup: python3 -m venv b2 && b2/bin/pip install brian2 "numpy<2"
Usage: b2/bin/python coba_brian2.py [--target cpp_standalone|cython|numpy] [--seconds 1]
           [--threads 1] [--seed 1] [--stats FILE.json]
Prints: brian2,TARGET,THREADS,SIM_S,WALL_S,NEURON_STEPS_PER_S,MEAN_RATE_HZ,SYN_EVENTS_PER_S,BINARY_S
WALL_S is the simulation loop alone (cpp_standalone: Brian2's own `Network::run` timer, which
leaves out compilation, building the synapses and initialisation, as npsim's bench leaves out
building the network); BINARY_S is the whole compiled program's run, construction included.
--stats writes per-neuron rate and ISI CV histograms.
"""
import argparse
import os
import sys
import tempfile
import time

from brian2 import *

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import coba_stats  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--target", default="cpp_standalone")
ap.add_argument("--seconds", type=float, default=1.0)
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--seed", type=int, default=1)
ap.add_argument("--stats")
a = ap.parse_args()

if a.target == "cpp_standalone":
    build_dir = tempfile.mkdtemp()
    set_device("cpp_standalone", directory=build_dir, build_on_run=False)
    prefs.devices.cpp_standalone.openmp_threads = a.threads if a.threads > 1 else 0
else:
    prefs.codegen.target = "cython" if a.target == "cython" else "numpy"
defaultclock.dt = 0.1 * ms
seed(a.seed)
N, NE = 4000, 3200
C, gL, EL, Vt, Vr = 200 * pF, 10 * nS, -60 * mV, -50 * mV, -60 * mV
Ee, Ei, taue, taui = 0 * mV, -80 * mV, 5 * ms, 10 * ms
eqs = """
dv/dt = (gL*(EL - v) + ge*(Ee - v) + gi*(Ei - v)) / C : volt (unless refractory)
dge/dt = -ge/taue : siemens
dgi/dt = -gi/taui : siemens
"""
P = NeuronGroup(N, eqs, threshold="v > Vt", reset="v = Vr", refractory=5 * ms, method="exponential_euler")
P.v = "Vr + rand() * (Vt - Vr)"
P.ge = "clip(40 + 15 * randn(), 0, inf) * nS"
P.gi = "clip(200 + 120 * randn(), 0, inf) * nS"
Ce = Synapses(P, P, on_pre="ge += 6 * nS")
Ci = Synapses(P, P, on_pre="gi += 67 * nS")
Ce.connect("i < NE", p=0.02)
Ci.connect("i >= NE", p=0.02)
sm = SpikeMonitor(P)
t0 = time.perf_counter()
run(a.seconds * second)
if a.target == "cpp_standalone":
    device.build(directory=build_dir, run=False)
    t0 = time.perf_counter()  # time the simulation, not the compilation
    device.run()
binary = time.perf_counter() - t0
# The simulation loop alone, as Brian2 measures it (construction left out).
wall = device._last_run_time if a.target == "cpp_standalone" else binary
nsp = sm.num_spikes
steps = a.seconds / 1e-4
rate = nsp / N / a.seconds
syn = nsp * 0.02 * N / a.seconds / wall
print(f"brian2,{a.target},{a.threads},{a.seconds},{wall:.3f},{N * steps / wall:.4g},{rate:.2f},{syn:.4g},{binary:.3f}")
if a.stats:
    coba_stats.dump(a.stats, f"brian2 {a.target}", sm.i[:], sm.t[:] / ms, N, a.seconds, {"seed": a.seed})
