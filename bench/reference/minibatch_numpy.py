"""Mini-batch NP and SGD training steps of `npsim bench mlp` in numpy (float32), written as a
numpy user would: the 784 -> H (ReLU) -> 10 (softmax) network, squared error on the softmax
output, batch 100.

NP (as npsim's NodePerturbation with its example rate 1e-3): a clean pass, a second pass with
Gaussian noise (sigma 1e-4, fresh per sample) added to every hidden and output
pre-activation, the per-sample signal dl_b = loss(noisy) - loss(clean), and
dW = -(eta / sigma^2) sum_b dl_b xi_b x_b^T for both weight matrices (x the clean input of
the layer), likewise for the biases. The first layer's product W1 x is shared by both passes
(the noise enters after it), as any numpy user would notice. SGD (rate 1e-2): back-propagation
of the summed loss through the softmax and the ReLU, dW = -eta dL/dW.

Inputs are 20 synthetic batches (uniform pixels, one-hot targets) cycled, as in npsim's bench
and minibatch_torch.py; speed does not depend on the values.

Usage: python3 minibatch_numpy.py [--hidden 1000] [--rule np|sgd] [--threads 2] [--reps 3]
           [--seconds 2] [--batch 100]
       python3 minibatch_numpy.py --check     (SGD against finite differences, NP's mean update
                                               against the gradient)
Prints `samples_per_second: X` (the median over the repetitions) as its last line.
"""
import argparse
import os
import statistics

from timing import samples_per_second

SIGMA = 1e-4
RATES = {"np": 1e-3, "sgd": 1e-2}
np = None  # numpy, imported by load_numpy after the BLAS thread count is set


def load_numpy(threads):
    global np
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    import numpy  # after the thread settings, which BLAS reads when it loads

    np = numpy


def softmax(a):
    a = a - a.max(axis=1, keepdims=True)
    np.exp(a, out=a)
    a /= a.sum(axis=1, keepdims=True)
    return a


class Mlp:
    def __init__(self, hidden, rng):
        he = lambda rows, cols: (rng.standard_normal((rows, cols)) * np.sqrt(2.0 / cols)).astype(np.float32)
        self.w1, self.b1 = he(hidden, 784), np.zeros(hidden, np.float32)
        self.w2, self.b2 = he(10, hidden), np.zeros(10, np.float32)
        self.rng = rng

    def np_step(self, x, t):
        a1 = x @ self.w1.T + self.b1
        h = np.maximum(a1, 0)
        y = softmax(h @ self.w2.T + self.b2)
        clean = 0.5 * ((y - t) ** 2).sum(axis=1)
        xi1 = self.rng.standard_normal(a1.shape, dtype=np.float32) * np.float32(SIGMA)
        xi2 = self.rng.standard_normal((x.shape[0], 10), dtype=np.float32) * np.float32(SIGMA)
        y_noisy = softmax(np.maximum(a1 + xi1, 0) @ self.w2.T + self.b2 + xi2)
        noisy = 0.5 * ((y_noisy - t) ** 2).sum(axis=1)
        signal = ((noisy - clean) * np.float32(-RATES["np"] / SIGMA**2))[:, None]
        g1, g2 = xi1 * signal, xi2 * signal
        self.w1 += g1.T @ x
        self.b1 += g1.sum(axis=0)
        self.w2 += g2.T @ h
        self.b2 += g2.sum(axis=0)

    def sgd_step(self, x, t):
        a1 = x @ self.w1.T + self.b1
        h = np.maximum(a1, 0)
        y = softmax(h @ self.w2.T + self.b2)
        dy = y - t
        # Through the softmax: da_i = y_i (dy_i - sum_j y_j dy_j).
        da2 = y * (dy - (y * dy).sum(axis=1, keepdims=True))
        da1 = (da2 @ self.w2) * (a1 > 0)
        eta = np.float32(RATES["sgd"])
        self.w2 -= eta * (da2.T @ h)
        self.b2 -= eta * da2.sum(axis=0)
        self.w1 -= eta * (da1.T @ x)
        self.b1 -= eta * da1.sum(axis=0)


def check():
    """SGD's update against finite differences and the mean of NP's updates against it, on a
    small float64 copy of the network; raises if either is off."""
    import copy

    rng = np.random.default_rng(0)
    net = Mlp(20, rng)
    for name in ("w1", "b1", "w2", "b2"):
        setattr(net, name, getattr(net, name).astype(np.float64))
    x = rng.random((5, 784))
    t = np.eye(10)[[1, 2, 3, 4, 5]]

    def loss(n):
        y = softmax(np.maximum(x @ n.w1.T + n.b1, 0) @ n.w2.T + n.b2)
        return 0.5 * ((y - t) ** 2).sum()

    stepped = copy.deepcopy(net)
    stepped.sgd_step(x, t)
    eta = RATES["sgd"]
    for name in ("w1", "w2"):
        gradient = (getattr(net, name) - getattr(stepped, name)) / eta
        i = np.unravel_index(np.abs(gradient).argmax(), gradient.shape)
        moved = copy.deepcopy(net)
        getattr(moved, name)[i] += 1e-6
        finite = (loss(moved) - loss(net)) / 1e-6
        assert abs(finite - gradient[i]) < 1e-4 * abs(finite), (name, finite, gradient[i])
        print(f"{name}: backprop {gradient[i]:.6g}, finite difference {finite:.6g}")
    gradient = (net.w2 - stepped.w2) / eta
    mean = np.zeros_like(net.w2)
    draws = 5000
    for k in range(draws):
        perturbed = copy.deepcopy(net)
        perturbed.rng = np.random.default_rng(k)
        perturbed.np_step(x, t)
        mean += (net.w2 - perturbed.w2) / (RATES["np"] * draws)
    cosine = (mean * gradient).sum() / np.linalg.norm(mean) / np.linalg.norm(gradient)
    assert cosine > 0.99, cosine
    print(f"mean of {draws} NP updates of w2 against the gradient: cosine {cosine:.4f}, "
          f"norm ratio {np.linalg.norm(mean) / np.linalg.norm(gradient):.3f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hidden", type=int, default=1000)
    ap.add_argument("--rule", choices=["np", "sgd"], default="np")
    ap.add_argument("--threads", type=int, default=2, help="BLAS threads")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--check", action="store_true", help="check the updates against the gradient and stop")
    a = ap.parse_args()
    load_numpy(a.threads)
    if a.check:
        return check()
    rng = np.random.default_rng(1)
    net = Mlp(a.hidden, rng)
    batches = []
    for _ in range(20):
        x = rng.random((a.batch, 784), dtype=np.float32)
        t = np.zeros((a.batch, 10), np.float32)
        t[np.arange(a.batch), rng.integers(0, 10, a.batch)] = 1.0
        batches.append((x, t))
    step = net.np_step if a.rule == "np" else net.sgd_step
    rates = samples_per_second(step, batches, a.batch, a.reps, a.seconds)
    print(f"numpy {np.__version__}, mlp 784-{a.hidden}-10, {a.rule}, {a.threads} BLAS thread(s): "
          + " / ".join(f"{r:.1f}" for r in rates))
    print(f"samples_per_second: {statistics.median(rates):.1f}")


if __name__ == "__main__":
    main()
