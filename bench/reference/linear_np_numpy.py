"""Per-sample node perturbation on the paper's deep linear student-teacher network in numpy
(float64), written as a numpy user would: one sample per iteration, fresh noise from
np.random, updates with np.outer. The yardstick for `npsim bench linear-np`.

Network and rule (the paper's Section 4; npsim's `scenarios/quickstart.ron` at Lh = 10000):
    x ~ N(0, I_Lx),  target y* = A x,  h = W1 x,  y = W2 h
    noisy pass:  h~ = h + s xi1,  y~ = W2 h~ + s xi2    (xi ~ N(0, I))
    loss l = |y - y*|^2 / 2 (and l~ for the noisy pass)
    W1 -= eta (l~ - l) / s^2 * outer(s xi1, x),  W2 -= eta (l~ - l) / s^2 * outer(s xi2, h)

Usage: python3 linear_np_numpy.py [--lx 100 --lh 10000 --ly 10] [--seconds 3] [--threads 1]
Prints `loss_first`, `loss_last` (the loss falls: the rule learns) and, as its last line,
`iterations_per_second: X` (median of three timed blocks after a warm-up).
"""
import argparse
import os
import statistics
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lx", type=int, default=100)
    ap.add_argument("--lh", type=int, default=10000)
    ap.add_argument("--ly", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=3.0, help="time per timed block")
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads")
    args = ap.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import numpy as np  # after the thread settings, which BLAS reads when it loads

    lx, lh, ly = args.lx, args.lh, args.ly
    s = 1e-6
    rng = np.random.RandomState(1)
    A = rng.randn(ly, lx) / np.sqrt(lx)
    W1 = rng.randn(lh, lx) / np.sqrt(lx)
    W2 = rng.randn(ly, lh) / np.sqrt(lh)
    # Well below the critical rate (1.2e-4 at 100-1000-10 and smaller at larger Lh), so the
    # weights stay bounded however long the timing runs.
    eta = 1e-2 / (lx * ly * lh ** (1 / 3))

    def step():
        x = rng.randn(lx)
        target = A @ x
        h = W1 @ x
        y = W2 @ h
        xi1 = s * rng.randn(lh)
        xi2 = s * rng.randn(ly)
        y_noisy = W2 @ (h + xi1) + xi2
        loss = 0.5 * np.sum((y - target) ** 2)
        loss_noisy = 0.5 * np.sum((y_noisy - target) ** 2)
        c = eta * (loss_noisy - loss) / s**2
        W1[...] -= c * np.outer(xi1, x)
        W2[...] -= c * np.outer(xi2, h)
        return float(loss)

    first = statistics.mean(step() for _ in range(20))
    rates = []
    for _ in range(3):
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < args.seconds:
            step()
            n += 1
        rates.append(n / (time.perf_counter() - start))
    last = statistics.mean(step() for _ in range(20))
    print(f"numpy {np.__version__}, {lx}-{lh}-{ly}, BLAS threads {args.threads}")
    print(f"loss_first: {first:.4e}")
    print(f"loss_last: {last:.4e}")
    print(f"iterations_per_second: {statistics.median(rates):.1f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
