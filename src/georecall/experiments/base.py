"""The experiment framework: what every experiment module provides, the shared pieces, and the driver.

An experiment module (``georecall/experiments/<id>.py``) holds its science and nothing else (STYLE §5):

1. ``ID`` and ``PROVENANCE``: a :class:`Provenance` naming the claim, the paper section and theorems,
   and in ``paper_reported`` only what the paper itself says (never our numbers, never other papers').
2. ``config(scale) -> Config``: a frozen dataclass per scale — ``smoke`` (seconds on a CPU, the same
   code path), ``quick`` (minutes on 2 CPU cores) and ``paper`` (the paper's setting). Its training
   recipe is a :class:`Recipe` field named ``recipe``; every field is checked by :func:`validate_config`
   (types from the annotations, ranges from ``field(metadata=...)``), so a module writes only the
   checks that tie its fields together. :func:`apply_config_overrides` reaches any field by its dotted
   name (``recipe.lr=1e-2``), checked by name and type.
3. ``runs(config) -> list[RunConfig]``: the one-model training runs (the sweep engine forms the
   ensembles); empty for an analysis-only experiment. An adaptive experiment also defines
   ``next_runs(config, rows, out_dir) -> list[RunConfig]``: the runs to add given the rows so far (a
   search, then models placed by its answer); the driver trains stage after stage until it returns no
   new run, and every stage resumes after a kill like the first (:func:`next_size` searches a size).
4. ``analyze(config, rows, out_dir) -> Result``: the store's rows of exactly these runs (flat dicts,
   :meth:`ResultStore.table`) become a frozen ``Result`` dataclass with ``schema_version`` — the
   ``payload`` of ``result.json``. :func:`outcome_table` groups rows into cells (one per condition and
   size, seeds gathered) and :func:`smallest_size` is the one rule for "the smallest size that works".
5. ``plot(result_dir) -> list[Path]``: figures from the saved payload only, drawn by ``georecall.plotting``.

Its claims live in ``georecall.experiments.claims`` (torch-free, so the report can re-decide them).
The driver :func:`run_experiment` trains what is missing (resuming a killed run), analyses, writes
``<out>/<id>/<scale>/result.json`` as an envelope (:mod:`georecall.results.envelope`) and draws the figures.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from georecall.config import TrainConfig, _coerce
from georecall.experiments import stats
from georecall.experiments.claims import all_claims, evaluate
from georecall.results.envelope import make_envelope, read_envelope, read_payload, result_folder, write_envelope
from georecall.results.store import STORE_NAME, ResultStore

Scale = Literal["smoke", "quick", "paper"]
SCALES: tuple[str, ...] = ("smoke", "quick", "paper")
result_dir = result_folder


@dataclass(frozen=True)
class Provenance:
    """Where a claim comes from; ``paper_reported`` holds the paper's own statements, never ours."""

    claim: str  # the claim in one sentence
    paper_section: str  # e.g. "§5 Empirical verification"
    theorems: tuple[str, ...] = ()  # e.g. ("Theorem 4.1", "docs/theory.md §2.2")
    paper_reported: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------
# The recipe and config validation


@dataclass(frozen=True)
class Recipe(TrainConfig):
    """The training recipe an experiment's runs share: a :class:`TrainConfig` plus the success rule.

    Every TrainConfig field is here under its own name (``recipe.lr``, ``recipe.steps``, ...), checked
    by TrainConfig's own checks; ``success_accuracy`` is the accuracy a seed must reach to count as a
    success at a size (members stop training at ``target_accuracy``).
    """

    success_accuracy: float = 0.99  # a seed succeeds when its final accuracy is >= this

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.success_accuracy <= 1:
            raise ValueError(f"recipe.success_accuracy must be in (0, 1], got {self.success_accuracy}")

    def train_config(self) -> TrainConfig:
        """The TrainConfig of every run (the success rule is the analysis's, not the run's)."""
        return TrainConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(TrainConfig)})

    def describe(self) -> dict[str, Any]:
        """The recipe as plain JSON, reported beside every size it decided."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


class RecipeFields:
    """Shorthands of an experiment config whose training recipe is its ``recipe`` field."""

    recipe: Recipe

    @property
    def steps(self) -> int:
        """The step budget (``recipe.steps``)."""
        return self.recipe.steps

    @property
    def success_accuracy(self) -> float:
        """The accuracy a seed must reach to succeed at a size (``recipe.success_accuracy``)."""
        return self.recipe.success_accuracy

    def train_config(self) -> TrainConfig:
        """The TrainConfig every run of the experiment uses."""
        return self.recipe.train_config()


def _check_range(name: str, value: Any, meta: Mapping[str, Any]) -> None:
    items = list(value) if isinstance(value, tuple) else [value]
    shown = items if isinstance(value, tuple) else value
    if meta.get("nonempty") and isinstance(value, tuple) and not value:
        raise ValueError(f"{name} must not be empty, got ()")
    lo = meta.get("min")
    if lo is not None:
        for v in items:
            if isinstance(v, (int, float)) and not isinstance(v, bool) and not (math.isfinite(v) and v >= lo):
                raise ValueError(f"{name} must hold finite numbers >= {lo}, got {shown!r}")
    hi = meta.get("max")
    if hi is not None and any(isinstance(v, (int, float)) and not isinstance(v, bool) and v > hi for v in items):
        raise ValueError(f"{name} must be <= {hi}, got {shown!r}")
    if meta.get("distinct") and len(set(items)) != len(items):
        raise ValueError(f"{name} must not repeat values, got {shown!r}")
    if meta.get("increasing") and items != sorted(items):
        raise ValueError(f"{name} must be in increasing order, got {shown!r}")
    choices = meta.get("choices")
    if choices is not None and any(v not in choices for v in items):
        raise ValueError(f"{name} must be chosen from {tuple(choices)}, got {shown!r}")


def validate_config(cfg: Any) -> None:
    """Check every field of an experiment config: its type (the annotation) and its ``metadata`` range.

    ``metadata`` keys: ``min`` (every number >= it), ``max`` (every number <= it), ``nonempty``, ``distinct``,
    ``increasing`` (for tuples) and ``choices``. A nested config (the recipe) checked itself when it was built.
    The scale must be one of :data:`SCALES`.
    """
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, tp):
                raise ValueError(f"{f.name} must be a {tp.__name__}, got {type(value).__name__}")
            continue
        try:
            coerced = _coerce(tp, value, f.name)
        except TypeError:  # a type the coercion does not know (e.g. a mapping): no check beyond the module's
            continue
        if isinstance(value, str) and not isinstance(coerced, str):  # no silent string-to-number here
            raise ValueError(f"{f.name} expects {tp}, got {value!r}")
        _check_range(f.name, value, f.metadata)
    if getattr(cfg, "scale", "smoke") not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {cfg.scale!r}")


def _parse_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def apply_config_overrides(cfg: Any, overrides: Sequence[str]) -> Any:
    """Apply ``path.to.field=value`` strings to an experiment config; unknown names and bad types raise.

    The value is read as JSON when it parses (``[16, 32]``, ``[[16, 2], [32, 2]]``, ``null``), else as
    the text itself (``cosine``, ``1e-2``, ``16,32``); it is then coerced to the field's type and the
    config rebuilt, so every check runs again.
    """
    for item in overrides:
        key, eq, raw = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise ValueError(f"malformed --set {item!r}: expected path.field=value, e.g. recipe.lr=1e-2")
        if key == "scale":
            raise ValueError("the scale is chosen with --scale, not --set scale=...")
        cfg = _override(cfg, key.split("."), raw.strip(), key)
    return cfg


def _override(obj: Any, path: list[str], raw: str, key: str) -> Any:
    names = {f.name for f in dataclasses.fields(obj)}
    head = path[0]
    if head not in names:
        raise ValueError(f"unknown key {key!r} in --set; {type(obj).__name__} has: {', '.join(sorted(names))}")
    tp = typing.get_type_hints(type(obj))[head]
    if len(path) > 1:
        child = getattr(obj, head)
        if not dataclasses.is_dataclass(child):
            raise ValueError(f"--set {key!r}: {head} is a value, not a section")
        return dataclasses.replace(obj, **{head: _override(child, path[1:], raw, key)})
    if dataclasses.is_dataclass(tp):
        raise ValueError(f"--set {key!r}: {head} is a section; set one of its fields ({head}.FIELD=VALUE)")
    value = _parse_value(raw)
    try:
        new = _coerce(tp, value, key)
    except ValueError:
        new = _coerce(tp, raw, key)  # e.g. "16,32" for a tuple, "none"
    return dataclasses.replace(obj, **{head: new})


# ---------------------------------------------------------------------------------------------------
# Outcomes: rows -> cells -> the smallest size that works


@dataclass(frozen=True)
class Cell:
    """One (condition, world, size) of an experiment: its seeds' outcomes, gathered from the store's rows."""

    key: tuple  # the experiment's cell key, e.g. (condition, N, K, d)
    seeds: tuple[int, ...]  # seeds with a row, ascending
    accuracy: tuple[float | None, ...]  # final accuracy per seed (None: the run failed)
    steps: tuple[int | None, ...]  # steps trained per seed
    stop_reason: tuple[str | None, ...]  # why each seed stopped
    errors: tuple[str, ...]  # errors of the failed runs
    n_params: dict[str, int] | None  # parameter groups of one member (None when no run finished)

    def n_success(self, success_accuracy: float, *, tol: float = 1e-9) -> int:
        """Seeds whose final accuracy reached ``success_accuracy`` (a failed run is a miss)."""
        return sum(1 for a in self.accuracy if a is not None and a >= success_accuracy - tol)

    def works(self, success_accuracy: float, n_seeds: int | None = None) -> bool:
        """The majority rule: a strict majority of ``n_seeds`` (default: the seeds with a row) succeeded.

        Seeds that should exist but have no row count as misses, so a half-trained cell never works.
        """
        total = max(len(self.seeds), n_seeds or 0)
        return total > 0 and stats.is_majority(self.n_success(success_accuracy), total)


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) else value


def outcome_table(rows: Iterable[Mapping[str, Any]], key: Callable[[Mapping[str, Any]], tuple]) -> dict[tuple, Cell]:
    """Group the store's one-seed rows into :class:`Cell` s by ``key(row)``; a repeated (cell, seed) raises."""
    acc: dict[tuple, dict[int, Mapping[str, Any]]] = {}
    for row in rows:
        seed = int(_first(row["config.seeds"]))
        cell = acc.setdefault(key(row), {})
        if seed in cell:
            raise ValueError(f"repeated seed {seed} in cell {key(row)}")
        cell[seed] = row
    out = {}
    for k, by_seed in acc.items():
        seeds = tuple(sorted(by_seed))
        done = [by_seed[s].get("status") == "done" for s in seeds]
        first_done = next((by_seed[s] for s, d in zip(seeds, done, strict=True) if d), None)
        params = None
        if first_done is not None:
            params = {name.removeprefix("result.n_params."): int(v) for name, v in first_done.items()
                      if name.startswith("result.n_params.")}
        out[k] = Cell(
            key=k, seeds=seeds,
            accuracy=tuple(float(_first(by_seed[s]["result.accuracy"])) if d else None
                           for s, d in zip(seeds, done, strict=True)),
            steps=tuple(int(_first(by_seed[s]["result.steps"])) if d else None
                        for s, d in zip(seeds, done, strict=True)),
            stop_reason=tuple(None if not d or by_seed[s].get("result.stop_reason") is None
                              else str(_first(by_seed[s]["result.stop_reason"]))
                              for s, d in zip(seeds, done, strict=True)),
            errors=tuple(str(by_seed[s].get("error")) for s, d in zip(seeds, done, strict=True) if not d),
            n_params=params)
    return out


@dataclass(frozen=True)
class SmallestSize:
    """The smallest size that works among tried sizes, by the project's one rule (:func:`smallest_size`).

    ``size`` (the rule): the cheapest tried size that works **and from which every larger tried size
    works too**, so a lucky small size followed by a failure does not count. ``first_success``: the
    cheapest tried size that works, failures above it ignored; it differs from ``size`` exactly when
    the outcomes are not monotone, and both are reported. ``status``: ``bracketed`` (some smaller tried
    size fails), ``censored_low`` (no tried size is smaller: the need is at most ``size``),
    ``censored_high`` (no size qualifies, e.g. the largest fails: ``size`` is None).
    """

    size: Any  # None when censored_high
    first_success: Any  # None when no tried size works
    status: str  # bracketed | censored_low | censored_high
    failed_above: tuple  # tried sizes larger than first_success that fail
    tried: tuple  # the tried sizes, cheapest first

    @property
    def non_monotone(self) -> bool:
        return bool(self.failed_above)


def _at_least(a: Any, b: Any) -> bool:
    """``a >= b`` in every dimension (sizes are numbers or equal-length tuples of numbers)."""
    if isinstance(a, tuple):
        return all(x >= y for x, y in zip(a, b, strict=True))
    return a >= b


def smallest_size(sizes: Sequence[Any], works: Sequence[bool], *,
                  cost: Callable[[Any], Any] | None = None) -> SmallestSize:
    """The one rule for "the smallest size that works", over tried ``sizes`` and whether each ``works``.

    A size is a number (d, d_mlp) or a tuple of numbers ((d, d_mlp) of a 2-D grid, ordered in every dimension);
    ``cost`` ranks qualifying sizes (default: the size itself; e.g. trainable parameters). On a 1-D
    curve this is the start of the working suffix.
    """
    if len(sizes) != len(works) or not sizes:
        raise ValueError(f"sizes and works must be non-empty and of one length, got {len(sizes)} and {len(works)}")
    if len(set(sizes)) != len(sizes):
        raise ValueError(f"sizes must be distinct, got {list(sizes)}")
    rank = cost or (lambda s: s)
    order = sorted(range(len(sizes)), key=lambda i: (rank(sizes[i]), sizes[i]))
    s = [sizes[i] for i in order]
    ok = dict(zip(s, (bool(works[i]) for i in order), strict=True))
    first = next((v for v in s if ok[v]), None)
    failed_above = () if first is None else tuple(v for v in s if v != first and _at_least(v, first) and not ok[v])
    qualifying = [v for v in s if ok[v] and all(ok[t] for t in s if _at_least(t, v))]
    if not qualifying:
        return SmallestSize(None, first, "censored_high", failed_above, tuple(s))
    best = qualifying[0]
    below = any(t != best and _at_least(best, t) for t in s)
    return SmallestSize(best, first, "bracketed" if below else "censored_low", failed_above, tuple(s))


def next_size(tried: Mapping[int, bool], *, start: int, lo: int = 1, hi: int, resolution: float = 0.0) -> int | None:
    """The next integer size to try when searching for the smallest that works, with no prior on the answer.

    ``tried`` maps each tried size to whether it works. From ``start`` the search doubles while every
    tried size fails and halves while every tried size works (bracketing), then bisects between the
    smallest working size and the largest failing size below it, to the integer. Returns None when
    there is nothing left to try: bisected to adjacent integers — or, with ``resolution > 0``, to a bracket
    no wider than ``max(1, resolution · smallest working size)`` — or the range [lo, hi] is exhausted
    (then :func:`smallest_size` on the tried sizes says ``censored_low`` / ``censored_high``). Sizes that
    fail above a working one are left for :func:`smallest_size` to report (``failed_above``).
    """
    if not lo <= start <= hi:
        raise ValueError(f"need lo <= start <= hi, got {lo}, {start}, {hi}")
    if not tried:
        return start
    works = [d for d, ok in tried.items() if ok]
    fails = [d for d, ok in tried.items() if not ok]
    if not works:
        nxt = max(fails) * 2
        return min(nxt, hi) if max(fails) < hi else None
    best = min(works)
    below = [d for d in fails if d < best]
    if not below:
        return None if best <= lo else max(lo, best // 2)
    gap_lo = max(below)
    return None if best - gap_lo <= max(1, resolution * best) else (best + gap_lo) // 2


def replay_search(lookup: Callable[[int], Sequence[float | None] | None], first: Sequence[int], *, lo: int, hi: int,
                  success_accuracy: float, resolution: float = 0.0,
                  then: Callable[[Mapping[int, bool]], Sequence[int]] | None = None,
                  ) -> tuple[dict[int, bool], dict[int, tuple[float | None, ...]], list[int]]:
    """Replay one size search from its outcomes: the sizes ``first`` together, then :func:`next_size`.

    ``lookup(size)`` gives the per-seed final accuracies of a size (None for a failed run), or None while it
    is not trained. ``then(tried)``, once the search has ended, names sizes to look up as well (e.g. re-tests
    above the bracket). Returns the tried sizes with whether they work (majority rule), their accuracies, and
    the sizes to train next (empty: the search is done).
    """
    tried: dict[int, bool] = {}
    accs: dict[int, tuple[float | None, ...]] = {}

    def look(sizes: Sequence[int]) -> list[int]:
        missing = []
        for size in sizes:
            o = lookup(size)
            if o is None:
                missing.append(size)
            else:
                accs[size] = tuple(o)
                tried[size] = stats.majority_success(list(o), success_accuracy, tol=1e-9)
        return missing

    missing = look(first)
    while not missing and (nxt := next_size(tried, start=first[0], lo=lo, hi=hi, resolution=resolution)) is not None:
        missing = look([nxt])
    if not missing and then is not None:
        missing = look([size for size in then(tried) if size not in tried])
    return tried, accs, missing


def converged(before: int, after: int, *, abs_tol: float, rel_tol: float) -> bool:
    """A size moved by at most ``max(abs_tol, rel_tol · before)`` when the step budget doubled."""
    return abs(after - before) <= max(abs_tol, rel_tol * before)


# ---------------------------------------------------------------------------------------------------
# Result files and the driver


def load_result_json(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The payload of an experiment's saved ``result.json`` (what ``plot`` draws from)."""
    return read_payload(folder)


def save_result(result: Any, folder: str | os.PathLike[str], *, experiment: str = "", scale: str = "") -> Path:
    """Write a Result dataclass as the payload of a bare envelope (no provenance or meta) into ``folder``.

    For figures drawn from a hand-made or re-analysed result; :func:`run_experiment` writes the full one.
    """
    payload = json.loads(json.dumps(dataclasses.asdict(result)))
    env = make_envelope(experiment=experiment, scale=scale or str(payload.get("scale", "")), provenance={},
                        paper_reported={}, meta={}, runs=[], claims=[], payload=payload)
    return write_envelope(folder, env)


def claims_of(exp_id: str) -> list[Any]:
    """The claims decided by this experiment's payload alone (those reading several are decided in the report)."""
    return [c for c in all_claims() if c.decide is not None and c.experiments and set(c.experiments) <= {exp_id}]


def _meta(cfg: Any, runs: Sequence[Any], device: str | None, wall: float, overrides: Sequence[str],
          sweep: dict[str, Any]) -> dict[str, Any]:
    import platform

    import torch

    from georecall import __version__
    from georecall.results.run import _git_info
    from georecall.training import resolve_device

    seeds = sorted({s for r in runs for s in r.seeds}) or list(getattr(cfg, "seeds", ()) or [])
    try:
        resolved = str(resolve_device(device or "auto"))
    except ValueError:
        resolved = device or "auto"
    return {"georecall_version": __version__, **_git_info(), "torch_version": torch.__version__,
            "python_version": platform.python_version(), "device": resolved, "torch_threads": torch.get_num_threads(),
            "seeds": seeds, "scale": cfg.scale, "wall_time_s": wall, "overrides": list(overrides), "sweep": sweep,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def _previous_cumulative(folder: Path, scale: str) -> float:
    """The cumulative wall time recorded by the result this run replaces (0 when there is none, or it is unreadable)."""
    try:
        prev = read_envelope(folder)
    except (FileNotFoundError, ValueError):
        return 0.0
    value = prev["meta"].get("cumulative_wall_time_s", prev["meta"].get("wall_time_s", 0.0))
    return float(value) if isinstance(value, (int, float)) and prev["scale"] == scale else 0.0


@dataclass(frozen=True)
class ExperimentRun:
    """What :func:`run_experiment` produced."""

    result: Any  # the module's Result dataclass (the envelope's payload)
    envelope: dict[str, Any]  # what result.json holds
    figures: list[Path]  # PNGs and the CSVs behind them
    folder: Path  # <out>/<id>/<scale>


#: An adaptive experiment may add runs in at most this many stages (a guard against a search that never ends).
MAX_STAGES = 64


def run_experiment(module: ModuleType, scale: str, out_dir: str | os.PathLike[str], *, device: str | None = None,
                   progress: Callable[[int, int], None] | None = None, max_members: int = 64,
                   overrides: Sequence[str] = (), workers: int = 1, executor: Any = None) -> ExperimentRun:
    """Train (or resume) an experiment's runs at ``scale``, analyse them, save the envelope and figures.

    ``workers > 1`` trains each stage's ensembles in that many local processes, and ``executor`` (a
    :class:`georecall.training.executors.Executor`, e.g. a Ray cluster's) wherever it sends them (``run_sweep``).
    """
    from georecall.training.sweep import run_sweep

    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    exp_id = module.ID
    t0 = time.perf_counter()
    cfg = apply_config_overrides(module.config(scale), overrides)
    runs = list(module.runs(cfg))
    # An adaptive experiment (``next_runs(cfg, rows, out_dir)``) adds runs stage by stage from the rows so far
    # (e.g. a threshold search, then models at multiples of it); every stage resumes like the first.
    next_runs = getattr(module, "next_runs", None)
    wanted: set[str] = set()
    rows: list[dict[str, Any]] = []
    totals = {"total": 0, "skipped": 0, "trained": 0, "failed": 0}
    batch = runs
    for _stage in range(MAX_STAGES):
        offset = len(wanted)

        def staged(done: int, n: int, _offset: int = offset) -> None:
            if progress is not None:
                progress(_offset + done, _offset + n)

        report = run_sweep(batch, out_dir, experiment=f"{exp_id}-{scale}", device=device,
                           progress=staged if progress else None, max_members=max_members, workers=workers,
                           executor=executor)
        for k in ("total", "skipped", "trained", "failed"):
            totals[k] += getattr(report, k)
        wanted |= {r.config_hash() for r in batch}
        rows = []
        if wanted:
            with ResultStore(Path(out_dir) / STORE_NAME) as store:
                # By hash, not by sweep name: a run another experiment already trained is this one's too.
                rows = [r for r in store.table(None, status=None) if r["hash"] in wanted]
        if next_runs is None:
            break
        batch = [r for r in next_runs(cfg, rows, Path(out_dir)) if r.config_hash() not in wanted]
        if not batch:
            break
    else:
        raise RuntimeError(f"{exp_id}: more than {MAX_STAGES} stages of adaptive runs; the search does not end")
    folder = result_dir(out_dir, exp_id, scale)
    folder.mkdir(parents=True, exist_ok=True)
    result = module.analyze(cfg, rows, Path(out_dir))
    wall = time.perf_counter() - t0
    sweep = dict(totals)  # summed over stages; no machine paths stored
    extra = {"sweep": sweep, "wall_time_s": wall}
    if dataclasses.is_dataclass(result) and {f.name for f in dataclasses.fields(result)} >= set(extra):
        result = dataclasses.replace(result, **extra)
    payload = json.loads(json.dumps(dataclasses.asdict(result)))
    decided = [evaluate(c, {exp_id: payload}) for c in claims_of(exp_id)]
    meta = _meta(cfg, runs, device, wall, overrides, sweep)
    meta["cumulative_wall_time_s"] = wall + _previous_cumulative(folder, scale)
    prov = getattr(module, "PROVENANCE", None) or Provenance(claim="", paper_section="")
    envelope = make_envelope(
        experiment=exp_id, scale=scale,
        provenance={"claim": prov.claim, "paper_section": prov.paper_section, "theorems": list(prov.theorems)},
        paper_reported=dict(prov.paper_reported), meta=meta,
        runs=sorted(wanted),
        claims=[{"id": d.claim.id, "verdict": d.decision.verdict, "numbers": d.decision.numbers,
                 "reason": d.decision.reason} for d in decided],
        payload=payload)
    write_envelope(folder, envelope)
    return ExperimentRun(result=result, envelope=envelope, figures=module.plot(folder), folder=folder)
