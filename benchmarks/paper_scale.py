"""Paper-scale wall time, extrapolated from a measured fraction of each experiment's ensembles.

The paper scales are GPU-sized grids that cannot be trained whole in a session; this script times a
fraction of them on the machine it runs on and extrapolates the rest by a stated cost model, labelled
as such. For each training experiment at ``--scale paper``:

1. the runs are grouped into ensembles exactly as the sweep engine groups them on this device;
2. a sample of ensembles is trained for ``s1`` and for ``s2`` steps (the largest by work always
   included); ``(t(s2) - t(s1)) / (s2 - s1)`` is the seconds per step, the rest the fixed cost
   (building, the step-0 and final evaluations);
3. the cost model, fitted on the sample by least squares in log-log (the sampled work spans orders of
   magnitude, where a line with an intercept would let the largest ensembles set the cost of the
   smallest): seconds per step = ``c · work^β``, floored at the smallest per-step time measured, with
   ``work`` = members x full-batch queries x (d · vocabulary + 2 · d · d_mlp · layers) (the readout and
   MLP multiply-adds of one step); the fixed seconds the same way;
4. every ensemble of the grid is predicted at its **full step budget**: an upper bound, since members
   stop at the target accuracy and most ensembles above the threshold stop after a fraction of it.

Prints, per experiment, the sampled ensembles, the fit and the extrapolated total (hours), with the
machine and the date. The constructions experiment trains nothing: its builds are built and scored in
increasing order of work (scored queries x d_model) until ``--constructions-budget`` seconds are spent,
and the rest are predicted by the same log-log fit of seconds on work (per construction where two or
more of its builds were timed, else over all of them).

    python benchmarks/paper_scale.py --sample 6           # ~10 minutes on 2 CPU cores
    python benchmarks/paper_scale.py --device cuda --json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import random
import time

import numpy as np
import torch

from georecall.config import RunConfig
from georecall.experiments import get_experiment
from georecall.tasks import Vocab, resolve_query_count
from georecall.training import resolve_device, train
from georecall.training.sweep import cpu_members_cap, group_runs

TRAINING_EXPERIMENTS = ("threshold", "frozen_control", "multihop")
EXPERIMENTS = (*TRAINING_EXPERIMENTS, "constructions")


def work(run: RunConfig) -> float:
    """Multiply-adds of one full-batch step's readout and MLPs, over the ensemble (the cost model's x)."""
    t, m = run.task, run.model
    vocab = Vocab(t.n_subjects, t.n_relations).d_vocab
    queries = resolve_query_count(t)
    d_mlp = m.d_mlp if m.d_mlp is not None else 4 * m.d_model
    return float(len(run.seeds) * queries * (m.d_model * vocab + 2 * m.d_model * d_mlp * m.n_layers))


def _loglog(x: list[float], y: list[float]) -> dict[str, float]:
    """``y = c · x^beta`` fitted on the points with y > 1 ms, with the smallest such y as the floor."""
    pts = [(a, b) for a, b in zip(x, y, strict=True) if b > 1e-3]
    if len(pts) < 2:
        return {"c": max(y, default=0.0), "beta": 0.0, "floor": max(y, default=0.0)}
    lx, ly = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
    beta, logc = np.polyfit(lx, ly, 1)
    return {"c": float(np.exp(logc)), "beta": float(beta), "floor": float(min(p[1] for p in pts))}


def _predict(fit: dict[str, float], x: float) -> float:
    return max(fit["floor"], fit["c"] * x ** fit["beta"])


def _timed(run: RunConfig, steps: int, device: str) -> float:
    cfg = dataclasses.replace(run, train=dataclasses.replace(run.train, steps=steps, target_accuracy=1.0,
                                                             eval_every=max(steps, 1), device=device))
    t0 = time.perf_counter()
    train(cfg)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def estimate(exp_id: str, *, device: str, sample: int, s1: int, s2: int, seed: int) -> dict:
    module = get_experiment(exp_id)
    cfg = module.config("paper")
    runs = module.runs(cfg)
    on_cpu = resolve_device(device).type == "cpu"
    ensembles = group_runs(runs, 64, cap=cpu_members_cap if on_cpu else None)
    ranked = sorted(ensembles, key=work)
    rng = random.Random(seed)
    chosen = {id(ranked[-1]): ranked[-1], id(ranked[0]): ranked[0]}  # the largest and the smallest
    for r in rng.sample(ranked, min(len(ranked), sample)):
        chosen.setdefault(id(r), r)
    rows = []
    for r in sorted(chosen.values(), key=work):
        a, b = _timed(r, s1, device), _timed(r, s2, device)
        per_step = max(0.0, (b - a) / (s2 - s1))
        rows.append({"N": r.task.n_subjects, "K": r.task.n_relations, "k": r.task.n_hops, "cot": r.task.cot,
                     "d": r.model.d_model, "d_mlp": r.model.d_mlp, "layers": r.model.n_layers,
                     "members": len(r.seeds), "work": work(r), "seconds_per_step": per_step,
                     "fixed_seconds": max(0.0, a - s1 * per_step)})
    step_fit = _loglog([r["work"] for r in rows], [r["seconds_per_step"] for r in rows])
    fixed_fit = _loglog([r["work"] for r in rows], [r["fixed_seconds"] for r in rows])
    total = sum(r.train.steps * _predict(step_fit, work(r)) + _predict(fixed_fit, work(r)) for r in ensembles)
    measured = sum(_s for _s in (r["seconds_per_step"] * s2 + r["fixed_seconds"] for r in rows))
    return {"experiment": exp_id, "n_runs": len(runs), "n_ensembles": len(ensembles), "sampled": rows,
            "fit_seconds_per_step": step_fit, "fit_fixed_seconds": fixed_fit,
            "extrapolated_upper_bound_hours": total / 3600.0, "measuring_took_s": measured}


def estimate_constructions(*, budget_s: float) -> dict:
    """Time the paper scale's construction builds, cheapest first, within ``budget_s``; extrapolate the rest."""
    from georecall.experiments import constructions as ce
    from georecall.theory import construction_cost

    cfg = ce.config("paper")

    def cwork(item: tuple[str, int, int, int]) -> float:
        name, n, k_rel, k = item
        space = n * k_rel ** k
        scored = space if space <= cfg.max_queries else min(space, cfg.n_sampled)
        return float(scored * construction_cost(name, n, k_rel, k).d_model)

    plan = sorted(cfg.plan(), key=cwork)
    timed, spent = [], 0.0
    for item in plan:
        if spent > budget_s:
            break
        t0 = time.perf_counter()
        ce.score_row(cfg, *item)
        dt = time.perf_counter() - t0
        spent += dt
        timed.append({"name": item[0], "N": item[1], "K": item[2], "k": item[3], "work": cwork(item), "seconds": dt})
    done = {(t["name"], t["N"], t["K"], t["k"]) for t in timed}
    overall = _loglog([t["work"] for t in timed], [t["seconds"] for t in timed])
    predicted = 0.0
    for item in plan:
        if item in done:
            continue
        own = [t for t in timed if t["name"] == item[0]]
        fit = _loglog([t["work"] for t in own], [t["seconds"] for t in own]) if len(own) >= 2 else overall
        predicted += _predict(fit, cwork(item))
    return {"experiment": "constructions", "n_builds": len(plan), "n_timed": len(timed), "timed_seconds": spent,
            "largest_timed": timed[-1] if timed else None, "predicted_rest_seconds": predicted,
            "extrapolated_hours": (spent + predicted) / 3600.0, "fit_all": overall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--sample", type=int, default=6, help="random ensembles per experiment, besides the extremes")
    ap.add_argument("--steps", default="2,12", help="the two step counts s1,s2 whose difference gives s/step")
    ap.add_argument("--experiments", default=",".join(EXPERIMENTS))
    ap.add_argument("--constructions-budget", type=float, default=300.0,
                    help="seconds spent timing construction builds before extrapolating the rest")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    s1, s2 = (int(v) for v in args.steps.split(","))
    out = {"machine": f"{platform.node()} {platform.processor() or platform.machine()}",
           "device": str(resolve_device(args.device)), "threads": args.threads, "date": time.strftime("%Y-%m-%d"),
           "experiments": [estimate_constructions(budget_s=args.constructions_budget) if e == "constructions" else
                           estimate(e, device=args.device, sample=args.sample, s1=s1, s2=s2, seed=args.seed)
                           for e in args.experiments.split(",")]}
    if args.json:
        print(json.dumps(out))
        return
    print(f"{out['date']} on {out['device']} ({out['threads']} thread(s)); extrapolated from a measured fraction, "
          "at full step budgets (an upper bound)")
    for e in out["experiments"]:
        if e["experiment"] == "constructions":
            print(f"constructions: {e['n_builds']} builds, {e['n_timed']} timed in {e['timed_seconds']:.0f} s, "
                  f"the rest predicted {e['predicted_rest_seconds'] / 60:.1f} min: ~{e['extrapolated_hours']:.2f} h")
            continue
        print(f"{e['experiment']}: {e['n_runs']} runs in {e['n_ensembles']} ensembles; "
              f"<= {e['extrapolated_upper_bound_hours']:.2f} h (fit: s/step = {e['fit_seconds_per_step']['c']:.3g}"
              f"·work^{e['fit_seconds_per_step']['beta']:.3f}, floor {e['fit_seconds_per_step']['floor']:.2g} s)")
        for r in e["sampled"]:
            print(f"   N={r['N']:>5} K={r['K']} k={r['k']} d={r['d']:>4} d_mlp={r['d_mlp']:>5} E={r['members']:>2} "
                  f"work={r['work']:.3g}  {r['seconds_per_step']:.4f} s/step  fixed {r['fixed_seconds']:.2f} s")


if __name__ == "__main__":
    main()
