"""Score every fact of the selector at large N with bounded memory, and time it.

    python benchmarks/construction_eval.py                      # N = 65536, K = 8 on the CPU
    python benchmarks/construction_eval.py --device cuda --json

Prints build and scoring wall time, facts per second, peak memory, and the accuracy (must be 1.0).
The baseline in the same run is the plain path: the model's full logits for a sample of queries,
argmax over the vocabulary, timed per fact, so the ratio says what the sparse, deduplicated readout
of ``score_construction`` buys on this machine.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import torch

from georecall.constructions import build_construction, score_construction
from georecall.tasks import make_queries


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-subjects", type=int, default=65536)
    ap.add_argument("--n-relations", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--baseline-queries", type=int, default=8192, help="queries timed on the plain path")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    dev = torch.device(args.device)

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    t0 = time.perf_counter()
    c = build_construction("selector", args.n_subjects, args.n_relations)
    build_s = time.perf_counter() - t0
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    score_construction(c, device=dev, n_queries=min(4096, args.n_subjects * args.n_relations))  # warm-up
    sync()
    t0 = time.perf_counter()
    score = score_construction(c, device=dev)
    sync()
    score_s = time.perf_counter() - t0

    # Baseline: the model's full logits, argmax over the vocabulary, on a sample of queries.
    model = c.model.to(dev)
    q = make_queries(c.world, c.task.__class__(**{**c.task.__dict__, "n_queries": args.baseline_queries}))
    with torch.no_grad():
        model(q.tokens[:256].to(dev), q.positions)  # warm-up
        sync()
        t0 = time.perf_counter()
        right = 0
        for start in range(0, len(q), 1024):
            logits = model(q.tokens[start:start + 1024].to(dev), q.positions)[0]
            right += int((logits.argmax(-1) == q.targets[start:start + 1024].to(dev)).all(-1).sum())
        sync()
        base_s = time.perf_counter() - t0
    base_rate = len(q) / base_s
    rate = score.n_queries / score_s
    row = {"n_subjects": args.n_subjects, "n_relations": args.n_relations, "device": str(dev),
           "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
           "threads": torch.get_num_threads(), "n_facts": score.n_queries, "accuracy": score.accuracy,
           "min_margin": score.min_margin, "build_s": build_s, "score_s": score_s, "facts_per_s": rate,
           "baseline_facts_per_s": base_rate, "baseline_accuracy": right / len(q), "ratio": rate / base_rate,
           "peak_host_rss_gb": _peak_rss_gb(),
           "peak_device_mem_gb": torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else None}
    if args.json:
        print(json.dumps(row))
        return
    print(f"selector N={args.n_subjects} K={args.n_relations} on {row['device_name']} ({row['threads']} threads)")
    print(f"  {score.n_queries:,} facts: accuracy {score.accuracy:.6f}, min margin {score.min_margin:.3f}")
    print(f"  build {build_s:.2f}s, score {score_s:.2f}s = {rate:,.0f} facts/s; plain full-logit path "
          f"{base_rate:,.0f} facts/s -> ratio {row['ratio']:.1f}x")
    print(f"  peak host RSS {row['peak_host_rss_gb']:.2f} GB"
          + (f", peak device memory {row['peak_device_mem_gb']:.2f} GB" if dev.type == "cuda" else ""))


if __name__ == "__main__":
    main()
