"""``georecall reproduce``: every registered experiment at one scale, then the report.

Each experiment runs through :func:`~georecall.experiments.base.run_experiment`, which skips every
training run already finished in ``<out>/results.sqlite`` (whichever experiment trained it), so a
killed reproduction resumes where it stopped and experiments sharing runs (threshold and capacity)
train them once. The report is then built from the saved ``result.json`` files alone
(:func:`georecall.report.build_report`), re-deciding every claim from them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from georecall.experiments import EXPERIMENTS, extras_hint, get_experiment
from georecall.experiments.base import SCALES, run_experiment


@dataclass(frozen=True)
class Reproduction:
    """What one ``reproduce`` call did."""

    markdown: Path  # report.md
    html: Path  # report.html
    timings: dict[str, float]  # experiment id -> wall seconds in this call (resumed work is cheap)
    verdicts: dict[str, str]  # claim id -> verdict, as the report decided it
    skipped: dict[str, str]  # experiment id -> why it did not run (a missing optional extra, and how to add it)


def _unavailable() -> tuple[type[BaseException], ...]:
    """Errors that mean an experiment cannot run on this machine (a model that is not installed), not a bug."""
    try:
        from georecall.lm.load import LMLoadError
    except ImportError:
        return ()
    return (LMLoadError,)


def select(only: Sequence[str] | None) -> list[str]:
    """The experiment ids to run, in registry order; unknown ids raise ValueError naming the known ones."""
    if not only:
        return list(EXPERIMENTS)
    unknown = [e for e in only if e not in EXPERIMENTS]
    if unknown:
        raise ValueError(f"unknown experiment(s) {', '.join(unknown)} in --only; choose from {', '.join(EXPERIMENTS)}")
    return [e for e in EXPERIMENTS if e in set(only)]


def run_hashes(ids: Sequence[str], scale: str) -> dict[str, set[str]]:
    """The config hashes of each experiment's training runs at ``scale`` (building, and so checking, every config)."""
    out = {}
    for exp_id in ids:
        module = get_experiment(exp_id)
        out[exp_id] = {r.config_hash() for r in module.runs(module.config(scale))}
    return out


def reproduce(scale: str, out_dir: str | os.PathLike[str], *, only: Sequence[str] | None = None,
              device: str | None = None, max_members: int = 64, dest: str | os.PathLike[str] | None = None,
              progress: Callable[[int, int, str], None] | None = None, workers: int = 1,
              executor: Any = None) -> Reproduction:
    """Run (or resume) the selected experiments at ``scale`` into ``out_dir`` and write the report.

    ``progress(done, total, label)`` is called as runs finish, over all experiments together (runs
    shared by two experiments, or finished before, count as done once their turn comes). An
    experiment whose optional extra is not installed is skipped (``Reproduction.skipped`` says how to
    add it), and so is one that finds a resource missing at run time (a language model that cannot be
    loaded, e.g. the packaged SmolLM2 weights); its claims are reported ``not tested`` with the same line.
    """
    from georecall.report import build_report

    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    selected = select(only)
    skipped = {e: extras_hint(e) for e in selected if extras_hint(e)}
    ids = [e for e in selected if e not in skipped]
    hashes = run_hashes(ids, scale)  # before anything trains: a bad config fails at once
    total = len(set().union(*hashes.values())) if hashes else 0  # shared runs counted once
    seen: set[str] = set()
    timings: dict[str, float] = {}
    # Adaptive experiments add runs stage by stage, so the bar's total grows as they do (``grown``).
    state = {"counted": 0, "grown": 0}
    for exp_id in ids:
        module = get_experiment(exp_id)
        mine = hashes[exp_id]
        new = len(mine - seen)
        overlap = len(mine) - new  # first-stage runs another experiment already counted
        mine_state = {"new": new}

        def step(done: int, n: int, *, _new: int = new, _overlap: int = overlap, _label: str = exp_id,
                 _mine: dict = mine_state) -> None:
            _mine["new"] = max(_new, n - _overlap)  # this experiment's runs not counted before (grows by stage)
            if progress is not None:  # a sweep reports (done, n) over its own runs, shared ones included
                progress(state["counted"] + min(_mine["new"], max(0, done - _overlap)),
                         total + state["grown"] + _mine["new"] - _new, _label)

        t0 = time.perf_counter()
        try:
            run_experiment(module, scale, out_dir, device=device, progress=step if progress else None,
                           max_members=max_members, workers=workers, executor=executor)
        except _unavailable() as err:  # e.g. the packaged LM is not installed: skip it, say how to add it
            skipped[exp_id] = str(err)
            continue
        finally:
            timings[exp_id] = time.perf_counter() - t0
        seen |= mine
        state["counted"] += mine_state["new"]
        state["grown"] += mine_state["new"] - new
        if progress is not None:
            progress(state["counted"], total + state["grown"], exp_id)
    # The report shows each envelope's own wall times (the invocation that wrote it, and all of them), not
    # this call's: resuming a finished reproduction takes seconds and must not read as its cost.
    paths = build_report(out_dir, scale, only=selected, dest=None if dest is None else Path(dest), skipped=skipped)
    return Reproduction(markdown=paths.markdown, html=paths.html, timings=timings, verdicts=dict(paths.verdicts),
                        skipped=skipped)

