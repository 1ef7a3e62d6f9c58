"""Mini-batch NP and SGD training steps in PyTorch (CPU, float32): the networks of
`npsim bench mlp` and `npsim bench conv`, written as a PyTorch user would.

mlp:  784 -> H (ReLU) -> 10 (softmax), squared error on the softmax output.
conv: the circuit of scenarios/cifar10_conv.ron: 3x32x32 -> conv 5x5, 16 maps, padding 2,
      ReLU -> max-pool 2 -> conv 5x5, 32 maps, padding 2, ReLU -> max-pool 2 -> 128 (ReLU)
      -> 10 (softmax), squared error on the softmax output.

NP (as npsim's NodePerturbation with its example rate 1e-3): a clean pass, a second pass with
Gaussian noise (sigma 1e-4) added to every pre-activation of a noisy population (every hidden,
convolution and output unit; pooling is noiseless), the per-sample signal
dl_b = loss(noisy) - loss(clean), and dW = -(eta / sigma^2) sum_b dl_b xi_b x_b^T for every
weight matrix (for a convolution its weight gradient with the noise-weighted maps as the
output gradient, torch.nn.grad.conv2d_weight), all without autograd. SGD (rate 1e-2):
autograd of the summed loss, dW = -eta dL/dW. Biases are trained by both.

Inputs are 20 synthetic batches (uniform pixels, one-hot targets) cycled, as in npsim's bench.

Usage: python3 minibatch_torch.py --net conv|mlp [--hidden 1000] [--rule np|sgd]
           [--threads 2] [--reps 3] [--seconds 2] [--batch 100]
Prints `samples_per_second: X` (the median over the repetitions) as its last line.
"""
import argparse
import statistics

import torch
import torch.nn.functional as F
from torch.nn.grad import conv2d_weight

from timing import samples_per_second

SIGMA = 1e-4
RATES = {"np": 1e-3, "sgd": 1e-2}


def he(shape, fan_in, gen):
    return torch.randn(*shape, generator=gen) * (2.0 / fan_in) ** 0.5


class Network:
    """Layers as (kind, weight, bias); kind is "conv" (followed by ReLU and 2x2 max-pool),
    "dense" (ReLU) or "out" (softmax)."""

    def __init__(self, net, hidden, gen):
        if net == "mlp":
            sizes = [(784, hidden, "dense"), (hidden, 10, "out")]
            self.input_shape = (784,)
            self.layers = [[k, he((o, i), i, gen), torch.zeros(o)] for i, o, k in sizes]
        else:
            self.input_shape = (3, 32, 32)
            self.layers = [
                ["conv", he((16, 3, 5, 5), 75, gen), torch.zeros(16)],
                ["conv", he((32, 16, 5, 5), 400, gen), torch.zeros(32)],
                ["dense", he((128, 2048), 2048, gen), torch.zeros(128)],
                ["out", he((10, 128), 128, gen), torch.zeros(10)],
            ]

    def forward(self, x, noise=None):
        """Returns the output and, per layer, its input and pre-activation shape."""
        inputs = []
        for i, (kind, w, b) in enumerate(self.layers):
            if kind == "dense" and x.dim() > 2:
                x = x.flatten(1)
            inputs.append(x)
            a = F.conv2d(x, w, b, padding=2) if kind == "conv" else F.linear(x, w, b)
            if noise is not None:
                a = a + noise[i]
            if kind == "conv":
                x = F.max_pool2d(torch.relu(a), 2)
            elif kind == "dense":
                x = torch.relu(a)
            else:
                x = torch.softmax(a, dim=1)
        return x, inputs

    @torch.no_grad()
    def np_step(self, x, t, gen):
        y, inputs = self.forward(x)
        clean = 0.5 * ((y - t) ** 2).sum(1)
        shapes = []
        for (kind, w, _), inp in zip(self.layers, inputs):
            if kind == "conv":
                shapes.append((inp.shape[0], w.shape[0], inp.shape[2], inp.shape[3]))
            else:
                shapes.append((inp.shape[0], w.shape[0]))
        noise = [torch.randn(s, generator=gen).mul_(SIGMA) for s in shapes]
        y_noisy, _ = self.forward(x, noise)
        signal = (0.5 * ((y_noisy - t) ** 2).sum(1) - clean) * (-RATES["np"] / SIGMA**2)
        for (kind, w, b), inp, xi in zip(self.layers, inputs, noise):
            weighted = xi * signal.view(-1, *([1] * (xi.dim() - 1)))
            if kind == "conv":
                w.add_(conv2d_weight(inp, w.shape, weighted, padding=2))
                b.add_(weighted.sum((0, 2, 3)))
            else:
                w.add_(weighted.T @ inp)
                b.add_(weighted.sum(0))

    def sgd_step(self, x, t, gen):
        params = [p for _, w, b in self.layers for p in (w, b)]
        for p in params:
            p.requires_grad_(True)
            p.grad = None
        y, _ = self.forward(x)
        (0.5 * ((y - t) ** 2).sum()).backward()
        with torch.no_grad():
            for p in params:
                p.sub_(p.grad, alpha=RATES["sgd"])
                p.requires_grad_(False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--net", choices=["mlp", "conv"], required=True)
    ap.add_argument("--hidden", type=int, default=1000)
    ap.add_argument("--rule", choices=["np", "sgd"], default="np")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--batch", type=int, default=100)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    gen = torch.Generator().manual_seed(1)
    net = Network(a.net, a.hidden, gen)
    batches = [
        (torch.rand(a.batch, *net.input_shape, generator=gen),
         F.one_hot(torch.randint(0, 10, (a.batch,), generator=gen), 10).float())
        for _ in range(20)
    ]
    rule = net.np_step if a.rule == "np" else net.sgd_step
    rates = samples_per_second(lambda x, t: rule(x, t, gen), batches, a.batch, a.reps, a.seconds)
    print(f"torch {torch.__version__}, {a.net}, {a.rule}, {a.threads} thread(s): "
          + " / ".join(f"{r:.1f}" for r in rates))
    print(f"samples_per_second: {statistics.median(rates):.1f}")


if __name__ == "__main__":
    main()
