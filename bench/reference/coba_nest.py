"""The same Vogels-Abbott COBA network as coba_brian2.py, in NEST (iaf_cond_exp, adaptive
RK45 integration, synaptic delay 0.1 ms = one step, no autapses).

Setup: pip install nest-simulator numpy
Usage: python3 coba_nest.py [--seconds 1] [--threads 1] [--seed 1] [--stats FILE.json]
Prints: nest,iaf_cond_exp,THREADS,SIM_S,WALL_S,NEURON_STEPS_PER_S,MEAN_RATE_HZ,SYN_EVENTS_PER_S
(network construction and the first 1 ms excluded from WALL_S).
"""
import argparse
import os
import sys
import time

import numpy as np
import nest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import coba_stats  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--seconds", type=float, default=1.0)
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--seed", type=int, default=1)
ap.add_argument("--stats")
a = ap.parse_args()
nest.set_verbosity("M_ERROR")
nest.ResetKernel()
nest.SetKernelStatus({"resolution": 0.1, "local_num_threads": a.threads, "rng_seed": a.seed})
N, NE = 4000, 3200
params = {"C_m": 200.0, "g_L": 10.0, "E_L": -60.0, "V_th": -50.0, "V_reset": -60.0, "t_ref": 5.0,
          "E_ex": 0.0, "E_in": -80.0, "tau_syn_ex": 5.0, "tau_syn_in": 10.0}
P = nest.Create("iaf_cond_exp", N, params=params)
rng = np.random.default_rng(a.seed)
P.V_m = list(-60.0 + 10.0 * rng.random(N))
P.g_ex = list(np.clip(40 + 15 * rng.standard_normal(N), 0, None))
P.g_in = list(np.clip(200 + 120 * rng.standard_normal(N), 0, None))
conn = {"rule": "pairwise_bernoulli", "p": 0.02, "allow_autapses": False}
nest.Connect(P[:NE], P, conn, {"weight": 6.0, "delay": 0.1})
nest.Connect(P[NE:], P, conn, {"weight": -67.0, "delay": 0.1})
sr = nest.Create("spike_recorder")
nest.Connect(P, sr)
nest.Simulate(1.0)  # build data structures outside the timing
t0 = time.perf_counter()
nest.Simulate(a.seconds * 1000.0)
wall = time.perf_counter() - t0
events = sr.get("events")
senders = np.asarray(events["senders"]) - P[0].global_id
times = np.asarray(events["times"])
keep = times > 1.0
nsp = int(keep.sum())
steps = a.seconds / 1e-4
print(f"nest,iaf_cond_exp,{a.threads},{a.seconds},{wall:.3f},{N * steps / wall:.4g},{nsp / N / a.seconds:.2f},{nsp * 0.02 * N / a.seconds / wall:.4g}")
if a.stats:
    coba_stats.dump(a.stats, "nest iaf_cond_exp", senders[keep], times[keep], N, a.seconds, {"seed": a.seed})
