"""Per-neuron firing statistics shared by the COBA references: each neuron's rate and the
coefficient of variation of its inter-spike intervals (sample sd / mean, neurons with at least
three spikes), as npsim's `FiringStatistics` computes them, and their histograms on fixed bins."""
import json

import numpy as np

RATE_EDGES = [0, 2, 5, 10, 15, 20, 25, 30, 40, 60, 100, 1000]
CV_EDGES = [0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 100.0]


def statistics(senders, times_ms, n, seconds):
    """senders: neuron index (0-based) per spike; times_ms: spike times."""
    senders = np.asarray(senders, dtype=np.int64)
    times = np.asarray(times_ms, dtype=float)
    order = np.lexsort((times, senders))
    senders, times = senders[order], times[order]
    counts = np.bincount(senders, minlength=n)
    rates = counts / seconds
    cvs = []
    starts = np.concatenate([[0], np.cumsum(counts)])
    for k in range(n):
        t = times[starts[k]:starts[k + 1]]
        if len(t) >= 3:
            isi = np.diff(t)
            cvs.append(isi.std(ddof=1) / isi.mean())
    return rates, np.array(cvs)


def histogram(values, edges):
    counts, _ = np.histogram(values, bins=edges)
    return (counts / max(len(values), 1)).tolist()


def dump(path, simulator, senders, times_ms, n, seconds, extra=None):
    rates, cvs = statistics(senders, times_ms, n, seconds)
    record = {
        "simulator": simulator,
        "seconds": seconds,
        "neurons": n,
        "mean_rate_hz": float(rates.mean()),
        "mean_cv": float(cvs.mean()) if len(cvs) else None,
        "rate_edges": RATE_EDGES,
        "rate_histogram": histogram(rates, RATE_EDGES),
        "cv_edges": CV_EDGES,
        "cv_histogram": histogram(cvs, CV_EDGES),
    }
    record.update(extra or {})
    with open(path, "w") as f:
        json.dump(record, f, indent=1)
