"""One benchmark sitting: npsim and the reference simulators, interleaved round by round on the
same machine, medians and ratios printed as the table in docs/benchmarks.md.

Usage (from the repository root, after `cargo build --release`):
    python3 bench/reference/sitting.py coba [--rounds 3] [--seconds 5] [--nest-seconds 1]
        [--brian2-python b2/bin/python] [--nest-python python3]
    python3 bench/reference/sitting.py linear-np [--rounds 3]
    python3 bench/reference/sitting.py conv [--rounds 3] [--torch-python torch/bin/python]
    python3 bench/reference/sitting.py mlp [--hidden 1000] [--rounds 3] [--torch-python ...]
        [--numpy-python python3]

linear-np: per-sample NP on the paper's 100-10000-10 network in float64, npsim on 1 and 2
threads (`npsim bench linear-np`) against linear_np_numpy.py (numpy, one BLAS thread); the
table gives iterations per second and the ratio to numpy. Each round also times the step's
lookahead GEMM alone on 1 and 2 threads (`npsim bench gemm --m 10000 --n 32 --k 100 --lookahead
--precision f64`, row blocks kept on their threads as in the step): work with no hand-off
between threads, whose two / one is how much a second core gives on the machine at that time
(on a shared virtual machine it varies by the hour), a ceiling for the step's; and the hidden
layer's noise alone (`npsim bench noise --entries 10000`, 10 blocks of 1,024 draws), a parallel
region as short as the step's others (10-20 us), whose two / one is what such a region gets at
that time. Besides the ratio of the medians, the median of the rounds' own two / one (each
round runs one and two threads back to back). And the ceiling that matters most: two one-thread
runs at once (their rates summed), the step's own work on both cores with nothing shared; the
pair / one thread is what the machine gives a second core at that time, and npsim's two threads
/ the pair is what npsim keeps of it.

conv, mlp: mini-batch NP and SGD (batch 100, float32, 2 threads) on the convnet of
scenarios/cifar10_conv.ron or the 784-H-10 MLP, npsim (`npsim bench conv|mlp`) against
minibatch_torch.py (PyTorch) and, for the MLP, minibatch_numpy.py (numpy, 2 BLAS threads); the
table gives samples per second and npsim's ratio to each per rule (the median of the rounds'
ratios, as each round runs them back to back).

coba: the Vogels-Abbott network (scenarios/coba.ron) in npsim on 1 and 2 threads
(`npsim bench coba`), Brian2 cpp_standalone on 1 thread (coba_brian2.py; compilation not
timed) and NEST iaf_cond_exp on 1 and 2 threads (coba_nest.py). A simulator whose Python
cannot import it is skipped with the reason. Each round runs every case once, in the same
order; the table gives each case's median neuron-steps per second over the rounds, its mean
rate, and its ratio to Brian2 on one thread; then npsim's two / one, of the medians and each
round's own.
"""
import argparse
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
NPSIM = os.path.join(ROOT, "target", "release", "npsim")


def npsim_case(seconds, threads):
    cmd = [NPSIM, "bench", "coba", "--seconds", str(seconds), "--threads", str(threads), "--reps", "1"]

    def run():
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True).stdout
        fields = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
        return float(fields["neuron_steps_per_second"]), float(fields["mean_rate_hz"])

    return f"npsim, {threads} thread(s)", run


def reference_case(python, script, name, seconds, threads, extra=()):
    cmd = [python, os.path.join(HERE, script), "--seconds", str(seconds), "--threads", str(threads), *extra]

    def run():
        out = subprocess.run(cmd, cwd=HERE, capture_output=True, text=True, check=True).stdout
        row = [line for line in out.splitlines() if line.startswith(("brian2,", "nest,"))][-1].split(",")
        return float(row[5]), float(row[6])

    return f"{name}, {threads} thread(s)", run


def last_number(out):
    """The number on the last line of a program's output (`name: X`)."""
    return float(out.strip().splitlines()[-1].split(": ")[1])


def last_rate(cmd, cwd):
    """Runs `cmd` in `cwd` and returns its `last_number`."""
    return last_number(subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=True).stdout)


def npsim_linear_np_case(threads):
    cmd = [NPSIM, "bench", "linear-np", "--threads", str(threads), "--reps", "3"]
    return f"npsim, {threads} thread(s)", lambda: last_rate(cmd, ROOT)


def npsim_linear_np_pair_case():
    """Two one-thread runs at once, their rates summed: the same work on both cores with nothing
    shared and no hand-off, what a second core can give the step on this machine at this time.
    Nine repetitions each, so that the median of either falls while the other still runs."""
    cmd = [NPSIM, "bench", "linear-np", "--threads", "1", "--reps", "9"]

    def run():
        runs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True) for _ in range(2)]
        outs = [r.communicate()[0] for r in runs]
        if any(r.returncode for r in runs):
            raise subprocess.CalledProcessError(max(r.returncode for r in runs), cmd)
        return sum(last_number(out) for out in outs)

    return "npsim, two 1-thread runs at once", run


def numpy_linear_np_case(python):
    cmd = [python, os.path.join(HERE, "linear_np_numpy.py"), "--threads", "1", "--seconds", "2"]
    return "numpy reference, 1 thread(s)", lambda: last_rate(cmd, HERE)


def gemm_ceiling_case(threads):
    cmd = [NPSIM, "bench", "gemm", "--m", "10000", "--n", "32", "--k", "100", "--lookahead", "--precision",
           "f64", "--threads", str(threads), "--reps", "3"]
    return f"lookahead GEMM alone, {threads} thread(s)", lambda: last_rate(cmd, ROOT)


def noise_ceiling_case(threads):
    cmd = [NPSIM, "bench", "noise", "--entries", "10000", "--precision", "f64", "--threads", str(threads),
           "--reps", "3"]
    return f"hidden layer's noise alone, {threads} thread(s)", lambda: last_rate(cmd, ROOT) / 1e6


def print_two_over_one(one, two):
    """npsim's two / one: of the medians, and each round's own (its runs back to back)."""
    own = [b / a for a, b in zip(one, two)]
    print(f"\nnpsim two threads / one thread: {statistics.median(two) / statistics.median(one):.2f} "
          f"(the rounds' own: {' / '.join(f'{x:.2f}' for x in own)}, median {statistics.median(own):.2f})")


def linear_np_sitting(a):
    cases = [npsim_linear_np_case(1), npsim_linear_np_case(2), npsim_linear_np_pair_case(),
             numpy_linear_np_case(a.numpy_python)]
    ceilings = [("the machine's ceiling, the lookahead GEMM alone", "GFLOP/s",
                 [gemm_ceiling_case(1), gemm_ceiling_case(2)]),
                ("a short parallel region, the hidden layer's noise alone", "M draws/s",
                 [noise_ceiling_case(1), noise_ceiling_case(2)])]
    results = {name: [] for name, _ in cases}
    measured = {name: [] for _, _, one_and_two in ceilings for name, _ in one_and_two}
    for r in range(a.rounds):
        for name, run in cases:
            speed = run()
            results[name].append(speed)
            print(f"round {r + 1}: {name}: {speed:.4g} iterations/s", file=sys.stderr)
        for _, unit, one_and_two in ceilings:
            for name, run in one_and_two:
                speed = run()
                measured[name].append(speed)
                print(f"round {r + 1}: {name}: {speed:.3g} {unit}", file=sys.stderr)
    medians = {name: statistics.median(rows) for name, rows in results.items()}
    anchor = medians["numpy reference, 1 thread(s)"]
    print(f"| case | iterations/s (median of {a.rounds}) | rounds | ratio to numpy |")
    print("|---|---|---|---|")
    for name, rows in results.items():
        speeds = " / ".join(f"{v:.4g}" for v in rows)
        print(f"| {name} | {medians[name]:.4g} | {speeds} | {medians[name] / anchor:.1f} |")
    one, two = results["npsim, 1 thread(s)"], results["npsim, 2 thread(s)"]
    print_two_over_one(one, two)
    pair = results["npsim, two 1-thread runs at once"]
    print(f"two one-thread runs at once / one thread (what the machine gives two cores): "
          f"{statistics.median(pair) / statistics.median(one):.2f} (the rounds' own: "
          f"{' / '.join(f'{p / o:.2f}' for o, p in zip(one, pair))}); npsim's two threads / the pair, "
          f"median of the rounds': {statistics.median(t / p for t, p in zip(two, pair)):.2f}")
    for label, unit, one_and_two in ceilings:
        values = [measured[name] for name, _ in one_and_two]
        rows = [" / ".join(f"{v:.3g}" for v in vs) for vs in values]
        g1, g2 = (statistics.median(vs) for vs in values)
        print(f"{label}: {g1:.3g} {unit} on one thread ({rows[0]}), {g2:.3g} on two ({rows[1]}): "
              f"two / one {g2 / g1:.2f}")


def minibatch_sitting(a):
    size = ["--hidden", str(a.hidden)] if a.benchmark == "mlp" else []
    programs = {
        "npsim": ([NPSIM, "bench", a.benchmark, "--threads", "2", "--reps", "3", *size], ROOT),
        "PyTorch": ([a.torch_python, os.path.join(HERE, "minibatch_torch.py"), "--net", a.benchmark,
                     "--threads", "2", "--reps", "3", *size], HERE),
    }
    if a.benchmark == "mlp":
        programs["numpy"] = ([a.numpy_python, os.path.join(HERE, "minibatch_numpy.py"), "--threads", "2",
                              "--reps", "3", *size], HERE)
    results = {}
    for r in range(a.rounds):
        for rule in ("np", "sgd"):
            row = {name: last_rate(cmd + ["--rule", rule], cwd) for name, (cmd, cwd) in programs.items()}
            results.setdefault(rule, []).append(row)
            print(f"round {r + 1}: {rule}: " + ", ".join(f"{n} {v:.0f}" for n, v in row.items()) + " samples/s",
                  file=sys.stderr)
    what = f"784-{a.hidden}-10 MLP" if a.benchmark == "mlp" else "convnet"
    print(f"{what}, batch 100, float32, 2 threads; samples/s, medians of {a.rounds} rounds "
          "(ratios: medians of the rounds' ratios)")
    others = [name for name in programs if name != "npsim"]
    print("| rule | " + " | ".join(f"{n} | rounds" for n in programs) + " | "
          + " | ".join(f"npsim / {n}" for n in others) + " |")
    print("|---|" + "---|---|" * len(programs) + "---|" * len(others))
    for rule, rows in results.items():
        cells = []
        for name in programs:
            values = [row[name] for row in rows]
            cells.append(f"{statistics.median(values):.0f} | {' / '.join(f'{v:.0f}' for v in values)}")
        ratios = [f"{statistics.median(row['npsim'] / row[n] for row in rows):.2f}" for n in others]
        print(f"| {rule.upper()} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")


def importable(python, module):
    try:
        done = subprocess.run([python, "-c", f"import {module}"], capture_output=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{python}: {e}"
    return None if done.returncode == 0 else f"{python} cannot import {module}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("benchmark", choices=["coba", "linear-np", "conv", "mlp"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5.0, help="network time for npsim and Brian2")
    ap.add_argument("--nest-seconds", type=float, default=1.0, help="network time for NEST (slower)")
    ap.add_argument("--brian2-python", default="python3")
    ap.add_argument("--nest-python", default="python3")
    ap.add_argument("--numpy-python", default="python3")
    ap.add_argument("--torch-python", default="python3")
    ap.add_argument("--hidden", type=int, default=1000, help="hidden width of the mlp benchmark")
    a = ap.parse_args()
    if a.benchmark == "linear-np":
        return linear_np_sitting(a)
    if a.benchmark in ("conv", "mlp"):
        return minibatch_sitting(a)
    cases = [npsim_case(a.seconds, 1), npsim_case(a.seconds, 2)]
    brian2 = importable(a.brian2_python, "brian2")
    if brian2 is None:
        cases.append(reference_case(a.brian2_python, "coba_brian2.py", "Brian2 cpp_standalone", a.seconds, 1))
    else:
        print(f"skipped Brian2: {brian2}", file=sys.stderr)
    nest = importable(a.nest_python, "nest")
    if nest is None:
        for threads in (1, 2):
            cases.append(reference_case(a.nest_python, "coba_nest.py", "NEST iaf_cond_exp", a.nest_seconds, threads))
    else:
        print(f"skipped NEST: {nest}", file=sys.stderr)
    results = {name: [] for name, _ in cases}
    for r in range(a.rounds):
        for name, run in cases:
            speed, rate = run()
            results[name].append((speed, rate))
            print(f"round {r + 1}: {name}: {speed:.4g} neuron-steps/s, {rate:.2f} Hz", file=sys.stderr)
    medians = {name: statistics.median(s for s, _ in rows) for name, rows in results.items()}
    anchor = medians.get("Brian2 cpp_standalone, 1 thread(s)")
    print(f"| case | neuron-steps/s (median of {a.rounds}) | rounds | mean rate (Hz) | ratio to Brian2, 1 thread |")
    print("|---|---|---|---|---|")
    for name, rows in results.items():
        speeds = " / ".join(f"{s:.3g}" for s, _ in rows)
        ratio = f"{medians[name] / anchor:.2f}" if anchor else "-"
        print(f"| {name} | {medians[name]:.3g} | {speeds} | {rows[-1][1]:.2f} | {ratio} |")
    print_two_over_one(*([s for s, _ in results[f"npsim, {t} thread(s)"]] for t in (1, 2)))


if __name__ == "__main__":
    main()
