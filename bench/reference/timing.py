"""The timed loop shared by the mini-batch references: a warm-up step, then `reps` blocks of
`seconds` each, cycling through `batches`; returns samples per second of each block."""
import time


def samples_per_second(step, batches, batch_size, reps, seconds):
    step(*batches[0])  # warm-up: allocations, the BLAS's or oneDNN's kernel choice
    rates = []
    for _ in range(reps):
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            step(*batches[steps % len(batches)])
            steps += 1
        rates.append(steps * batch_size / (time.perf_counter() - start))
    return rates
