"""Watch a running npsim recording: each run's progress and latest error, every few seconds.

    python3 docs/examples/watch_run.py runs/quickstart.h5 [--every SECONDS] [--polls N]

Give the final name (or the `.partial` one): while npsim writes `<file>.partial` this prints
the rows up to its last flush (`train.sync_seconds`, 30 s by default), and stops once the file
has been renamed to `<file>`, i.e. every run has ended. Needs h5py >= 3.5 (for `locking=`).
"""

import argparse
import fcntl
import os
import time

import h5py


def snapshot(path):
    """{run: (status, rows, last step, last error)} as of the writer's last flush."""
    # npsim holds the file's write lock while it runs: open without taking a read lock.
    with h5py.File(path, "r", locking=False) as f:
        runs = {}
        for name, run in f["runs"].items():
            # A flush appends to each metric, then publishes how many rows every metric holds.
            n = int(run.attrs["rows_committed"])
            metric = run.attrs["error_metric"]
            steps = run["metrics/step"][:n]
            errors = run["metrics"][metric][:n]
            last = (int(steps[-1]), float(errors[-1])) if n else (0, float("nan"))
            runs[name] = (run.attrs["status"], n) + last
        return runs


def being_written(path):
    """Whether a running npsim holds the file's lock (a killed one holds none)."""
    with open(path, "rb") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False


def read(path, attempts=50):
    # A read that overlaps a flush can find the file half updated: read again a moment later.
    for attempt in range(attempts):
        try:
            return snapshot(path)
        except (OSError, KeyError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.02)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between looks")
    parser.add_argument("--polls", type=int, default=0, help="stop after N looks (0: until done)")
    args = parser.parse_args()
    final = args.file[: -len(".partial")] if args.file.endswith(".partial") else args.file
    partial = final + ".partial"
    polls = 0
    while True:
        done = not os.path.exists(partial)
        live = not done and being_written(partial)
        for name, (status, rows, step, error) in read(final if done else partial).items():
            if live and status == "interrupted":  # what a run says until it ends
                status = "running" if step else "waiting"
            print(f"{name} {status} rows={rows} step={step} error={error:.6g}", flush=True)
        polls += 1
        if not live or polls == args.polls:
            if not done and not live:
                print(f"{partial}: no npsim is writing it; `npsim run --resume` finishes it")
            return
        print(flush=True)
        time.sleep(args.every)


if __name__ == "__main__":
    main()
