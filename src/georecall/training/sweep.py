"""Sweeps: a grid of runs, trained as ensembles of one shape, stored crash-safely, resumable.

A *run* is one model: a :class:`RunConfig` with one seed, identified by its config hash. Runs that
differ only in seed and learning rate share a shape and train together as one ensemble
(``RunConfig.seeds``/``lrs``); the ensemble is split back into one run directory per member,
``<out>/<experiment>/<hash[:12]>/``, and one row per run in ``<out>/results.sqlite``.

A sweep is planned here, executed by an executor (:mod:`georecall.training.executors`: in this process,
local processes, or a Ray cluster) and recorded here, by one process. Re-running a sweep skips every run
whose row says ``done`` and whose directory is complete (whichever experiment trained it: experiments
sharing a run share its training), so a sweep killed at any point (Ctrl-C or SIGKILL) resumes without
redoing or losing finished runs; every file is written through a temporary file and a rename, and every
row in its own transaction. A group that raises records its error for each of its runs (``error.txt``
and a ``failed`` row) and the sweep goes on; failed runs are tried again on the next invocation.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from georecall.config import RunConfig, apply_overrides, config_hash, run_config_from_dict
from georecall.results import TrainResult, TrainRun, is_complete, write_run_files
from georecall.results.atomic import write_atomic
from georecall.results.store import STORE_NAME, ResultStore
from georecall.tasks import context_length, resolve_query_count
from georecall.training.loop import resolve_device, train

if TYPE_CHECKING:
    from georecall.training.executors import Executor

log = logging.getLogger(__name__)

#: TrainResult fields that hold one entry per ensemble member.
_PER_MEMBER = ("accuracy", "steps", "stop_reason", "loss", "per_relation", "per_hop", "seeds", "first_target_step")


@dataclass(frozen=True)
class SweepReport:
    """What one invocation of :func:`run_sweep` did."""

    total: int  # runs in the sweep
    skipped: int  # already done before this invocation
    trained: int  # done now
    failed: int  # failed now (their errors are in the store and in error.txt)
    out_dir: str
    retried: int = 0  # ensembles submitted again after their worker or node died


#: The most runs one grid may expand to (100,000 take about a second to expand and far longer to train).
MAX_GRID_RUNS = 100_000


def expand_grid(base: RunConfig, grid: Mapping[str, Sequence[Any]]) -> list[RunConfig]:
    """The cartesian product of ``grid`` over ``base``, one run (one seed) per combination.

    Keys are ``section.field`` (as in ``--set``) or ``seeds``/``seed``; values are lists. Seeds not
    in the grid come from ``base.seeds`` (each its own run).
    """
    import math

    from georecall.config import _coerce

    grid = dict(grid)
    seeds = grid.pop("seeds", None) or grid.pop("seed", None) or list(base.seeds)
    seeds = _coerce(tuple[int, ...], seeds, "grid seeds")  # a list of integers, named when it is not
    keys = list(grid)
    for key in keys:
        if not isinstance(grid[key], (list, tuple)) or not grid[key]:
            raise ValueError(f"grid values must be non-empty lists, got {key}: {grid[key]!r}")
    n_runs = math.prod(len(grid[k]) for k in keys) * len(seeds)
    if n_runs > MAX_GRID_RUNS:  # refused before expanding (a few grid values multiply fast)
        raise ValueError(f"the grid expands to {n_runs:,} runs, more than {MAX_GRID_RUNS:,}; split it into "
                         "several sweeps")
    runs = []
    for values in itertools.product(*(grid[k] for k in keys)):
        overrides = [f"{k}={_as_override(v)}" for k, v in zip(keys, values, strict=True)]
        cfg = apply_overrides(base, overrides)
        runs.extend(dataclasses.replace(cfg, seeds=(int(s),), lrs=None) for s in seeds)
    return runs


def _as_override(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def single_runs(config: RunConfig) -> list[RunConfig]:
    """The one-model runs of an ensemble config (member e: seed e, its own learning rate and source run)."""
    sources = config.init_from or (None,) * len(config.seeds)
    return [dataclasses.replace(config, seeds=(s,), lrs=None, train=dataclasses.replace(config.train, lr=lr),
                                init_from=None if src is None else (src,))
            for s, lr, src in zip(config.seeds, config.member_lrs(), sources, strict=True)]


def shape_key(run: RunConfig) -> str:
    """Runs with equal keys can share an ensemble: everything but seed, learning rate and source run agrees."""
    return config_hash(dataclasses.replace(run, seeds=(0,), lrs=None, init_from=None if run.init_from is None
                                           else ("0" * 64,), train=dataclasses.replace(run.train, lr=1.0)))


#: Activations of one CPU ensemble step, in bytes: measured on 2 cores, throughput per model peaks
#: when E members' widest activation fills about this much (N=1024, K=4, d=16: E=8-16 of 4-128;
#: N=128, K=4, d=16: E=32-64 of 8, 32, 64; N=64, K=4, d=12: E=128 of 8-128), and falls beyond it as
#: the activations leave the cache (benchmarks/RESULTS.md). GPUs want the largest E that fits.
CPU_ENSEMBLE_BYTES = 16 * 2**20


def member_activation_bytes(run: RunConfig) -> int:
    """Bytes of one member's widest activation in a training step: queries × positions × widest layer."""
    m = run.model
    width = max(m.d_model, 0 if m.attn_only else m.d_mlp, m.d_mlp2 or 0)
    n_queries = resolve_query_count(run.task)
    if run.train.batch_size is not None:
        n_queries = min(n_queries, run.train.batch_size)
    return n_queries * context_length(run.task) * width * 4


def cpu_members_cap(run: RunConfig) -> int:
    """The largest ensemble of this shape worth training at once on a CPU (:data:`CPU_ENSEMBLE_BYTES`)."""
    return max(1, CPU_ENSEMBLE_BYTES // member_activation_bytes(run))


def group_runs(runs: Sequence[RunConfig], max_members: int, *,
               cap: Callable[[RunConfig], int] | None = None) -> list[RunConfig]:
    """Pack one-model runs into ensemble configs of one shape, at most ``max_members`` each, in order.

    ``cap(run)``, where given, lowers the limit per shape (e.g. :func:`cpu_members_cap`).
    """
    groups: dict[str, list[RunConfig]] = {}
    for r in runs:
        groups.setdefault(shape_key(r), []).append(r)
    out = []
    for members in groups.values():
        size = max_members if cap is None else max(1, min(max_members, cap(members[0])))
        for i in range(0, len(members), size):
            chunk = members[i:i + size]
            lrs = tuple(r.train.lr for r in chunk)
            sources = None if chunk[0].init_from is None else tuple(r.init_from[0] for r in chunk)
            out.append(dataclasses.replace(chunk[0], seeds=tuple(r.seeds[0] for r in chunk),
                                           lrs=None if len(set(lrs)) == 1 else lrs, init_from=sources))
    # Runs that start from other runs go last, so a source trained in the same sweep is there when they start.
    return sorted(out, key=lambda g: g.init_from is not None)


def split_run(run: TrainRun) -> list[TrainRun]:
    """One :class:`TrainRun` per member of an ensemble run (weights, world, result, metrics)."""
    singles = single_runs(run.config)
    out = []
    for e, cfg in enumerate(singles):
        fields = dataclasses.asdict(run.result)
        for name in _PER_MEMBER:
            if fields[name] is not None:
                fields[name] = fields[name][e:e + 1]
        metrics = [{**m, "member": 0} for m in run.metrics if m["member"] == e]
        meta = {**run.meta, "seeds": list(cfg.seeds), "config_hash": cfg.config_hash(),
                "ensemble": {"size": len(singles), "member": e, "config_hash": run.config.config_hash()}}
        out.append(TrainRun(config=cfg, result=TrainResult(**fields), model=run.model.member(e),
                            worlds=[run.worlds[e]], metrics=metrics, meta=meta))
    return out


def source_states(store: ResultStore, out: Path, hashes: Sequence[str]) -> list[dict[str, torch.Tensor]]:
    """The parameters of each finished source run (by config hash), member axis dropped, read from the store.

    A source that is not finished raises ValueError (the dependent runs fail with that reason and are tried
    again on the next invocation, once the source exists).
    """
    from georecall.results.run import read_safetensors

    states = []
    for h in hashes:
        row = store.get(h)
        if row is None or row["status"] != "done" or not row["run_dir"] or not is_complete(out / row["run_dir"]):
            raise ValueError(f"init_from run {h[:12]} is not finished in {out / STORE_NAME}; train it first")
        state = read_safetensors(out / row["run_dir"] / "model.safetensors")
        states.append({k: v[0] for k, v in state.items()})
    return states


def check_sweep_name(name: str) -> str:
    """A sweep's name names a folder of the output folder: a plain name (no separators, no leading dot)."""
    if (not isinstance(name, str) or not name.strip() or "/" in name or "\\" in name or name.startswith(".")
            or "\0" in name):
        raise ValueError(f"a sweep name must be a plain folder name (no '/', '\\' or leading '.'), got {name!r}")
    return name


def run_dir_for(run: RunConfig, experiment: str) -> str:
    """``<experiment>/<hash[:12]>``, relative to the sweep's output folder."""
    return f"{experiment}/{run.config_hash()[:12]}"


def run_sweep(runs: Iterable[RunConfig], out_dir: str | os.PathLike[str], *, experiment: str,
              max_members: int = 64, device: str | None = None,
              progress: Callable[[int, int], None] | None = None,
              trainer: Callable[..., TrainRun] = train, workers: int = 1, executor: Executor | None = None,
              retries: int = 2) -> SweepReport:
    """Train every run not already done, as ensembles; write run directories and store rows.

    Plan, execute, record: the plan is every run not already done, packed into same-shape ensembles (at most
    ``max_members`` runs, and on the CPU at most :func:`cpu_members_cap`, the size that trains fastest);
    ``executor`` trains them (:mod:`georecall.training.executors`; by default in this process, or in
    ``workers`` local processes when ``workers > 1``), each worker writing its run directories; this
    process alone records the store's rows, one transaction each, as ensembles finish. Ensembles that
    start from other runs (``init_from``) are submitted once every other ensemble is recorded. A task whose
    worker or node dies is submitted again, at most ``retries`` times (its members are adopted instead
    when the lost worker had finished their run directories); an ensemble whose training raises is
    recorded as failed (tried again on the next invocation) and the sweep goes on.

    ``device`` overrides ``train.device`` (not part of a run's identity); ``progress(done, total)``
    is called after every finished or failed run, skipped runs included. A custom ``trainer`` trains in
    this process. A run's result does not depend on where it trained: the same seed gives bitwise-identical
    weights on the CPU in any executor.
    """
    from georecall.training.executors import (
        InProcess,
        Outcome,
        ProcessPool,
        RayExecutor,
        Task,
        WorkerLost,
        folder_token,
    )

    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    check_sweep_name(experiment)
    if max_members < 1:
        raise ValueError(f"max_members must be >= 1, got {max_members}")
    out = Path(out_dir)
    runs = [r if device is None else dataclasses.replace(r, train=dataclasses.replace(r.train, device=device))
            for r in runs]
    unique: dict[str, RunConfig] = {}
    for r in runs:
        if len(r.seeds) != 1:
            raise ValueError("run_sweep takes one-model runs (one seed each); see single_runs()")
        unique.setdefault(r.config_hash(), r)
    total = len(unique)
    counts = {"skipped": 0, "trained": 0, "failed": 0, "retried": 0}

    def tick() -> None:
        if progress is not None:
            progress(counts["skipped"] + counts["trained"] + counts["failed"], total)

    with ResultStore(out / STORE_NAME) as store:
        todo = [r for r in unique.values() if not _adopt(store, out, r, experiment)]
        counts["skipped"] = total - len(todo)
        if progress is not None:
            progress(counts["skipped"], total)

        def cap(r: RunConfig) -> int:
            on_cpu = r.train.device == "cpu" or (r.train.device == "auto" and resolve_device("auto").type == "cpu")
            return cpu_members_cap(r) if on_cpu else max_members

        groups = group_runs(todo, max_members, cap=cap)
        if trainer is not train:
            if executor is not None and not isinstance(executor, InProcess):
                log.warning("a custom trainer trains in this process, not in the %s executor", executor.name)
            chosen: Executor = InProcess(trainer)
        elif executor is not None:
            chosen = executor
        else:
            chosen = ProcessPool(workers) if workers > 1 and len(groups) > 1 else InProcess()
        token = folder_token(out) if isinstance(chosen, RayExecutor) and groups else ""

        def record(task: Task, outcome: Any) -> None:
            if outcome.rows is None:
                _record_failure(store, out, experiment, single_runs(task.group), outcome.message, outcome.detail,
                                counts)
            else:
                for rel, files in outcome.files.items():  # from a worker that did not see the output folder
                    write_run_files(files, out / rel)
                for cfg, rel, result, wall in outcome.rows:
                    store.put(hash=cfg.config_hash(), experiment=experiment, status="done", config=cfg.to_dict(),
                              result=result, run_dir=rel, wall_time_s=wall)
                    counts["trained"] += 1
            tick()

        for phase in (False, True):  # ensembles from scratch, then those starting from other runs
            tasks = []
            for g in groups:
                if (g.init_from is not None) != phase:
                    continue
                try:
                    states = None if g.init_from is None else source_states(store, out, g.init_from)
                except Exception as err:  # a missing source: these runs fail now and are tried again next time
                    failed = Outcome.failed(err)
                    _record_failure(store, out, experiment, single_runs(g), failed.message, failed.detail, counts)
                    tick()
                    continue
                tasks.append(Task(group=g, out=str(out), experiment=experiment, token=token, init_states=states))
            attempts: dict[int, int] = {}
            while tasks:
                lost = []
                for task, outcome in chosen.run(tasks):
                    if not isinstance(outcome, WorkerLost):
                        record(task, outcome)
                        continue
                    members = single_runs(task.group)
                    if all(_adopt(store, out, m, experiment) for m in members):  # it had finished its directories
                        counts["trained"] += len(members)
                        tick()
                        continue
                    n = attempts[id(task)] = attempts.get(id(task), 0) + 1
                    if n <= retries:
                        log.warning("ensemble of %d runs lost its worker (%s); submitting it again (%d of %d)",
                                    len(members), outcome, n, retries)
                        counts["retried"] += 1
                        lost.append(task)
                    else:
                        _record_failure(store, out, experiment, members, f"worker lost {n} times: {outcome}",
                                        str(outcome), counts)
                        tick()
                tasks = lost
    return SweepReport(total=total, out_dir=str(out), **counts)


def _adopt(store: ResultStore, out: Path, run: RunConfig, experiment: str) -> bool:
    """True when ``run`` is done: its row says so and its directory is complete, or (killed between the two)
    its directory under ``experiment`` is complete and readable, and its row is written now."""
    h = run.config_hash()
    row = store.get(h)
    if row is not None and row["status"] == "done" and row["run_dir"] and is_complete(out / row["run_dir"]):
        return True  # done already, perhaps by another experiment sharing the run
    rel = run_dir_for(run, experiment)
    if not is_complete(out / rel):
        return False
    try:
        result = json.loads((out / rel / "result.json").read_text())
        if not isinstance(result, dict):
            raise ValueError("not a JSON object")
    except (ValueError, OSError) as err:  # damaged by hand or by the disk: train it again
        log.warning("%s: unreadable result.json (%s); training the run again", out / rel, err)
        return False
    store.put(hash=h, experiment=experiment, status="done", config=run.to_dict(), result=result, run_dir=rel,
              wall_time_s=result.get("wall_time_s"))
    return True


def _record_failure(store: ResultStore, out: Path, experiment: str, members: Sequence[RunConfig], message: str,
                    detail: str, counts: dict[str, int]) -> None:
    """A failed ensemble: ``error.txt`` in each member's run directory and a ``failed`` row (retried next time)."""
    log.warning("ensemble of %d runs failed: %s", len(members), message)
    for m in members:
        rel = run_dir_for(m, experiment)
        (out / rel).mkdir(parents=True, exist_ok=True)
        write_atomic(out / rel / "error.txt", detail)
        store.put(hash=m.config_hash(), experiment=experiment, status="failed", config=m.to_dict(),
                  error=message, run_dir=rel)
        counts["failed"] += 1


def auto_workers(device: str | None = None, *, limit: int = 8) -> int:
    """Worker processes worth starting: one per CPU core this process may use (over its torch threads), at
    most ``limit``; 1 on a GPU (one device, shared)."""
    if resolve_device(device or "auto").type != "cpu":
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(limit, cores // max(1, torch.get_num_threads())))


def load_sweep_file(path: str | os.PathLike[str]) -> tuple[str, list[RunConfig]]:
    """Read a sweep file (JSON, or YAML with PyYAML): ``name``, ``base`` (a partial run config), ``grid``.

    Example (YAML)::

        name: width_vs_n
        base: {task: {n_relations: 4}, train: {steps: 2000}}
        grid: {task.n_subjects: [64, 128], model.d_model: [8, 16], seeds: [0, 1]}
    """
    p = Path(path)
    spec = _read_sweep_spec(p)
    if not isinstance(spec, dict):
        raise ValueError(f"{p}: a sweep file is an object with name, base and grid")
    unknown = sorted(set(spec) - {"name", "base", "grid"}, key=repr)
    if unknown:
        raise ValueError(f"{p}: unknown key(s) {', '.join(map(repr, unknown))}; a sweep file has name, base and grid")
    name, base, grid = spec.get("name"), spec.get("base"), spec.get("grid")
    if name is not None and not isinstance(name, str):
        raise ValueError(f"{p}: name must be a string (the sweep's folder name), got {name!r}")
    for key, value in (("base", base), ("grid", grid)):
        if value is not None and not isinstance(value, dict):
            raise ValueError(f"{p}: {key} must be an object, got {type(value).__name__} {value!r}")
    bad = [k for k in grid or {} if not isinstance(k, str)]
    if bad:
        raise ValueError(f"{p}: grid keys are names such as task.n_subjects or seeds, got {bad[0]!r}")
    try:
        return check_sweep_name(name or p.stem), expand_grid(run_config_from_dict(base or {}), grid or {})
    except ValueError as err:
        raise ValueError(f"{p}: {err}") from None


#: A sweep file is a few lines: larger files (or /dev/zero) are refused before being read whole.
MAX_SWEEP_FILE_BYTES = 16 * 2**20
#: Values a sweep file may hold once YAML aliases are expanded (a "billion laughs" file is refused), and its nesting.
MAX_SWEEP_VALUES, MAX_SWEEP_DEPTH = 100_000, 32


def _read_sweep_spec(p: Path) -> Any:
    """A sweep file parsed (YAML by PyYAML's safe loader, else JSON), or ValueError naming the file and the fault.

    Refused: bytes that are not UTF-8, a syntax error (with its line and column), a key given twice (the later
    one would silently win), tags beyond plain YAML (``!!python/object``), and a file too large or too deep.
    """
    with open(p, "rb") as f:
        raw = f.read(MAX_SWEEP_FILE_BYTES + 1)
    if len(raw) > MAX_SWEEP_FILE_BYTES:
        raise ValueError(f"{p}: larger than {MAX_SWEEP_FILE_BYTES // 2**20} MB; a sweep file is a few lines of YAML "
                         "or JSON")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(f"{p}: not UTF-8 text (byte {raw[err.start]:#04x} at offset {err.start})") from None
    try:
        spec = _parse_yaml(p, text) if p.suffix.lower() in (".yaml", ".yml") else _parse_json(p, text)
    except RecursionError:
        raise ValueError(f"{p}: nested too deeply to read (at most {MAX_SWEEP_DEPTH} levels)") from None
    budget, stack = MAX_SWEEP_VALUES, [(spec, 0)]
    while stack:  # iterative: the values counted as they would be expanded, aliases and all
        value, depth = stack.pop()
        budget -= 1
        if budget < 0:
            raise ValueError(f"{p}: holds more than {MAX_SWEEP_VALUES:,} values (YAML aliases expanded)")
        if depth > MAX_SWEEP_DEPTH:
            raise ValueError(f"{p}: nested more than {MAX_SWEEP_DEPTH} levels deep")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, (list, tuple)):
            stack.extend((v, depth + 1) for v in value)
    return spec


def _parse_json(p: Path, text: str) -> Any:
    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in pairs:
            if k in out:
                raise ValueError(f"duplicate key {k!r}")
            out[k] = v
        return out

    try:
        return json.loads(text, object_pairs_hook=unique)
    except ValueError as err:  # JSONDecodeError (with its line and column) or a duplicate key
        raise ValueError(f"{p}: not valid JSON: {err}") from None


def _parse_yaml(p: Path, text: str) -> Any:
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set[Any] = set()
            for key_node, _ in node.value if isinstance(node, yaml.MappingNode) else ():
                if key_node.tag == "tag:yaml.org,2002:merge":  # ``<<: *base``: merged keys may be overridden
                    continue
                key = self.construct_object(key_node, deep=deep)
                try:
                    if key in seen:
                        raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}",
                                                                key_node.start_mark)
                    seen.add(key)
                except TypeError:  # an unhashable key: the safe loader's own check names it
                    pass
            return super().construct_mapping(node, deep=deep)

    try:
        return yaml.load(text, Loader=UniqueKeyLoader)  # a SafeLoader: plain YAML only
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        problem = getattr(err, "problem", None)
        if problem is None:  # e.g. a ReaderError (a control character): its own one-sentence message
            problem = " ".join(str(err).split())
        else:
            context = getattr(err, "context", None)  # e.g. "expected a single document in the stream"
            problem = f"{context}, {problem}" if context else problem
            if mark is not None:
                problem += f" (line {mark.line + 1}, column {mark.column + 1})"
        raise ValueError(f"{p}: not valid YAML: {problem}") from None
