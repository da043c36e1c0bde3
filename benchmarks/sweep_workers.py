"""Sweep workers: the same sweep trained in one process against ``--workers N`` local processes.

Each measurement runs one sweep of small threshold-like ensembles (several widths at two quick-scale
shapes, three seeds each, members stopping at the target or the budget) into a fresh folder in a fresh
process, alternating the worker counts so that drift in the machine's load hits all of them. The pool's
start-up (spawning the workers and importing torch there) is inside the measured time. Prints seconds
per worker count and the ratio to the first one, measured in the same run.

    python benchmarks/sweep_workers.py                  # 1 against 2 workers, 3 repeats; ~3 minutes on 2 cores
    python benchmarks/sweep_workers.py --workers 1,2,4 --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

_CHILD = r"""
import sys, tempfile, time, torch
torch.set_num_threads(1)
from georecall.config import ModelConfig, RunConfig, TaskConfig, TrainConfig
from georecall.training.executors import shutdown_pool
from georecall.training.sweep import run_sweep
workers, steps = int(sys.argv[1]), int(sys.argv[2])
runs = []
for n, k in ((64, 4), (128, 4)):
    for d in (4, 6, 8, 10, 12, 16):
        std = d ** -0.5
        for s in (0, 1, 2):
            runs.append(RunConfig(task=TaskConfig(n_subjects=n, n_relations=k),
                                  model=ModelConfig(d_model=d, n_layers=1, n_heads=1, d_mlp=4 * d, init_std=std,
                                                    unembed_init_std=std),
                                  train=TrainConfig(steps=steps, lr=3e-2, eval_every=50, device="cpu"), seeds=(s,)))
with tempfile.TemporaryDirectory() as out:
    t0 = time.perf_counter()
    run_sweep(runs, out, experiment="bench", workers=workers)
    shutdown_pool()
    print(time.perf_counter() - t0)
"""


def measure(workers: int, steps: int) -> float:
    out = subprocess.run([sys.executable, "-c", _CHILD, str(workers), str(steps)], capture_output=True, text=True,
                         check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", default="1,2", help="worker counts to compare (the first is the baseline)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    times: dict[int, list[float]] = {n: [] for n in counts}
    for _ in range(args.repeats):
        for n in counts:
            times[n].append(measure(n, args.steps))
    base = statistics.median(times[counts[0]])
    rows = [{"workers": n, "median_s": statistics.median(times[n]), "runs_s": times[n],
             "ratio_to_baseline": statistics.median(times[n]) / base} for n in counts]
    if args.json:
        print(json.dumps(rows))
        return
    print(f"{'workers':>7} {'median s':>9} {'x baseline':>10}")
    for r in rows:
        print(f"{r['workers']:>7} {r['median_s']:>9.2f} {r['ratio_to_baseline']:>10.2f}")


if __name__ == "__main__":
    main()
