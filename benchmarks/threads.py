"""Torch CPU threads for georecall's small trainings: 1 against 2 (or more), quiet and under load.

Each measurement trains the same ensembles (a quick-scale threshold shape and a larger one) in a fresh
process with ``torch.set_num_threads(n)``, alternating thread counts so that drift in the machine's
load hits both; ``--load`` also runs one busy-looping process beside it (another job on a 2-core
machine). Prints seconds per configuration and the ratio to one thread measured in the same run.

    python benchmarks/threads.py            # quiet, then under load; ~2 minutes on 2 cores
    python benchmarks/threads.py --json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import subprocess
import sys
import time

_CHILD = r"""
import sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
from georecall.config import ModelConfig, RunConfig, TaskConfig, TrainConfig
from georecall.training import train
shapes = [(64, 4, 8), (128, 8, 16)]
t0 = time.perf_counter()
for n, k, d in shapes:
    std = d ** -0.5
    run = RunConfig(task=TaskConfig(n_subjects=n, n_relations=k),
                    model=ModelConfig(d_model=d, n_layers=1, n_heads=1, d_mlp=4 * d, init_std=std,
                                      unembed_init_std=std),
                    train=TrainConfig(steps=int(sys.argv[2]), lr=3e-2, target_accuracy=1.0, device="cpu"),
                    seeds=(0, 1, 2))
    train(run)
print(time.perf_counter() - t0)
"""


def _busy(stop: mp.Event) -> None:
    x = 0
    while not stop.is_set():
        x += 1


def measure(threads: int, steps: int) -> float:
    out = subprocess.run([sys.executable, "-c", _CHILD, str(threads), str(steps)], capture_output=True, text=True,
                         check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,2", help="thread counts to compare (the first is the baseline)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    counts = [int(t) for t in args.threads.split(",")]
    rows = []
    for load in (False, True):
        stop = mp.Event()
        busy = mp.Process(target=_busy, args=(stop,), daemon=True) if load else None
        if busy:
            busy.start()
            time.sleep(0.5)
        times: dict[int, list[float]] = {n: [] for n in counts}
        try:
            for _ in range(args.repeats):
                for n in counts:
                    times[n].append(measure(n, args.steps))
        finally:
            if busy:
                stop.set()
                busy.join()
        base = statistics.median(times[counts[0]])
        for n in counts:
            med = statistics.median(times[n])
            rows.append({"load": "one busy process" if load else "quiet", "threads": n, "median_s": med,
                         "runs_s": times[n], "ratio_to_baseline": med / base})
    if args.json:
        print(json.dumps(rows))
        return
    print(f"{'load':>18} {'threads':>7} {'median s':>9} {'x baseline':>10}")
    for r in rows:
        print(f"{r['load']:>18} {r['threads']:>7} {r['median_s']:>9.2f} {r['ratio_to_baseline']:>10.2f}")


if __name__ == "__main__":
    main()
