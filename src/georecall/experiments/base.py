"""What every experiment module provides, and the driver that runs one.

An experiment module (``georecall/experiments/<id>.py``) holds, in this order (STYLE §5):

1. ``PROVENANCE``: a :class:`Provenance` naming the claim, the paper section and theorems, and the
   paper's own reported values in ``paper_reported`` (never mixed with our outputs).
2. ``config(scale) -> Config``: a frozen dataclass per scale, ``smoke`` (seconds on a CPU, the same
   code path), ``quick`` (minutes on 2 CPU cores) and ``paper`` (the paper's setting, GPU hours).
3. ``runs(config) -> list[RunConfig]``: the one-model training runs the sweep engine trains (ensembles
   of one shape are formed for you); may be empty for an analysis-only experiment.
4. ``analyze(config, rows, out_dir) -> Result``: turns the store's rows (flat dicts,
   :meth:`ResultStore.table`) of exactly these runs into a frozen ``Result`` dataclass with
   ``schema_version`` (plain numbers and lists: the contract of ``result.json``). It may load run
   directories (``out_dir / row['run_dir']``) for weights, and may compute what needs no training.
5. ``plot(result_dir) -> list[Path]``: renders PNG figures and their CSV tables into ``result_dir``
   **from the saved files only** (``result.json`` and the CSVs), so figures rebuild without retraining.

The driver :func:`run_experiment` trains what is missing (resuming a killed run), analyses, writes
``<out>/<id>/<scale>/result.json`` and draws the figures.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from georecall.results.store import ResultStore
from georecall.training.sweep import STORE_NAME, run_sweep

Scale = Literal["smoke", "quick", "paper"]
SCALES: tuple[str, ...] = ("smoke", "quick", "paper")
RESULT_FILE = "result.json"


@dataclass(frozen=True)
class Provenance:
    """Where a claim comes from; ``paper_reported`` holds the paper's numbers, never ours."""

    claim: str  # the claim in one sentence
    paper_section: str  # e.g. "§5 Empirical verification"
    theorems: tuple[str, ...] = ()  # e.g. ("Theorem 4.1", "THEORY §2.2")
    paper_reported: dict[str, Any] = field(default_factory=dict)


def result_dir(out_dir: str | os.PathLike[str], experiment: str, scale: str) -> Path:
    """``<out>/<experiment>/<scale>``: where an experiment's result.json, figures and CSVs go."""
    return Path(out_dir) / experiment / scale


def save_result(result: Any, folder: str | os.PathLike[str]) -> Path:
    """Write a Result dataclass as ``result.json`` (atomically) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (RESULT_FILE + ".tmp")
    tmp.write_text(json.dumps(dataclasses.asdict(result), indent=2) + "\n")
    os.replace(tmp, folder / RESULT_FILE)
    return folder / RESULT_FILE


def load_result_json(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The saved ``result.json`` of an experiment as a dict (what ``plot`` reads)."""
    path = Path(folder) / RESULT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {RESULT_FILE} in {folder}: run the experiment first")
    return json.loads(path.read_text())


def write_csv(path: str | os.PathLike[str], header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    """Write the table behind a figure (None as an empty cell); returns the path."""
    path = Path(path)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for r in rows:
            w.writerow(["" if v is None else v for v in r])
    return path


def run_experiment(module: ModuleType, scale: str, out_dir: str | os.PathLike[str], *, device: str | None = None,
                   progress: Callable[[int, int], None] | None = None, max_members: int = 64) -> tuple[Any, list[Path]]:
    """Train (or resume) an experiment's runs at ``scale``, analyse them, save the result and figures."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    exp_id = module.ID
    t0 = time.perf_counter()
    cfg = module.config(scale)
    runs = module.runs(cfg)
    sweep_name = f"{exp_id}-{scale}"
    report = run_sweep(runs, out_dir, experiment=sweep_name, device=device, progress=progress,
                       max_members=max_members)
    wanted = {r.config_hash() for r in runs}
    with ResultStore(Path(out_dir) / STORE_NAME) as store:
        # By hash, not by sweep name: a run another experiment already trained is this one's too.
        rows = [r for r in store.table(None, status=None) if r["hash"] in wanted]
    folder = result_dir(out_dir, exp_id, scale)
    folder.mkdir(parents=True, exist_ok=True)
    result = module.analyze(cfg, rows, Path(out_dir))
    extra = {"sweep": dataclasses.asdict(report), "wall_time_s": time.perf_counter() - t0}
    if dataclasses.is_dataclass(result) and {f.name for f in dataclasses.fields(result)} >= set(extra):
        result = dataclasses.replace(result, **extra)
    save_result(result, folder)
    figures = module.plot(folder)
    return result, figures
