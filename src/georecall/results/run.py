"""Run directories: what a training run leaves on disk, and loading it back as the live objects.

Layout of a run directory (every path inside is relative to it)::

    config.json        the RunConfig (task, model, train, seeds)
    result.json        the TrainResult (schema_version, per-member accuracy, steps, stop reasons, ...)
    metrics.jsonl      one JSON object per evaluation and member: step, member, seed, loss, accuracy, lr
    meta.json          georecall version, git sha and dirty flag when known, torch version, device,
                       seeds, wall time, creation time
    model.safetensors  the ensemble's state dict (leading member axis), with its config in the metadata
    worlds.safetensors the facts of every member: ``maps`` [E, K, N]

Weights are safetensors (no pickle), so loading a run never executes code from the directory.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file

from georecall.config import RunConfig, run_config_from_dict, to_dict
from georecall.model import Transformer
from georecall.results.atomic import write_atomic
from georecall.tasks import World, context_length

SCHEMA_VERSION = 1
FILES = ("config.json", "result.json", "metrics.jsonl", "meta.json", "model.safetensors", "worlds.safetensors")


@dataclass(frozen=True)
class TrainResult:
    """The contract of ``result.json``: plain numbers and lists, one entry per ensemble member."""

    accuracy: list[float]  # final accuracy on the query set (whole chain for CoT)
    steps: list[int]  # optimiser steps the member took before it stopped
    # "target" | "budget" | "non-finite loss at step S" | "diverged: loss L at step S, above Fx max(its initial
    # L0, ln V V0)" (train.divergence_factor F; georecall.training.loop.divergence_reason)
    stop_reason: list[str]
    loss: list[float]  # final mean cross-entropy over answer positions
    per_relation: list[list[float]]  # [E][K]
    per_hop: list[list[float]]  # [E][P]
    seeds: list[int]
    n_queries: int  # queries per member
    n_query_space: int  # N*K^k
    sampled: bool  # the queries are a sample of the space
    n_params: dict[str, int]  # per member, by group (model.param_counts)
    wall_time_s: float
    device: str
    weights: str = "model.safetensors"  # relative to the run directory
    # Per member: the first step at which it reached train.target_accuracy (None: never; the whole field is
    # None in runs saved before it existed). With stop_at_target it equals ``steps`` for stopped members.
    first_target_step: list[int | None] | None = None
    schema_version: int = SCHEMA_VERSION


@dataclass(eq=False)
class TrainRun:
    """What :func:`georecall.training.train` returns and :func:`load_run` rebuilds."""

    config: RunConfig
    result: TrainResult
    model: Transformer
    worlds: list[World]
    metrics: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


def _git_info() -> dict[str, Any]:
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain"], cwd=here, capture_output=True, text=True,
                                    timeout=5, check=True).stdout.strip())
        return {"git_sha": sha, "git_dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"git_sha": None, "git_dirty": None}


def run_meta(config: RunConfig, device: str, wall_time_s: float) -> dict[str, Any]:
    """Provenance for ``meta.json``."""
    from georecall import __version__

    return {"georecall_version": __version__, **_git_info(), "torch_version": torch.__version__,
            "python_version": platform.python_version(), "device": device, "seeds": list(config.seeds),
            "wall_time_s": wall_time_s, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "config_hash": config.config_hash()}


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode()


def run_files(run: TrainRun) -> dict[str, bytes]:
    """The files of ``run``'s directory, in memory (name -> bytes), ``result.json`` last.

    What a worker that cannot see the sweep's output folder sends back to the process that writes it.
    """
    from safetensors.torch import save

    state = {k: v.detach().cpu().contiguous() for k, v in run.model.state_dict().items()}
    header = {"config": json.dumps(to_dict(run.model.cfg)), "d_vocab": str(run.model.d_vocab),
              "n_ctx": str(run.model.n_ctx), "n_members": str(run.model.n_members)}
    maps = torch.from_numpy(np.stack([w.maps for w in run.worlds]))
    return {
        "config.json": _json_bytes(run.config.to_dict()),
        "metrics.jsonl": "".join(json.dumps(row) + "\n" for row in run.metrics).encode(),
        "model.safetensors": save(state, metadata=header),
        "worlds.safetensors": save({"maps": maps}),
        "meta.json": _json_bytes(run.meta),
        "result.json": _json_bytes(dataclasses.asdict(run.result)),
    }


def write_run_files(files: dict[str, bytes], out_dir: str | os.PathLike[str]) -> Path:
    """Write a run directory's files crash-safely: each through a temporary file renamed into place, and
    ``result.json`` (the mark of a complete run) removed first and written last, so a process killed at any
    moment leaves either the finished run or one that is not taken for finished (and anything else the
    folder held, e.g. an earlier attempt's ``error.txt``, is removed once the run is complete).
    """
    if "result.json" not in files or any(Path(name).name != name or name.startswith(".") for name in files):
        raise ValueError(f"a run directory's files are plain names with result.json among them, got {sorted(files)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").unlink(missing_ok=True)
    for name in sorted(files, key=lambda n: n == "result.json"):
        write_atomic(out / name, files[name])
    (out / "error.txt").unlink(missing_ok=True)
    for stale in out.glob(".*.tmp"):  # left by a writer killed mid-file (its pid no longer runs)
        pid = stale.name.rsplit(".", 2)[-2]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            stale.unlink(missing_ok=True)
    return out


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True


def save_run(run: TrainRun, out_dir: str | os.PathLike[str]) -> Path:
    """Write ``run`` into ``out_dir`` (created if needed), crash-safely (:func:`write_run_files`):
    ``result.json`` is written last, so its presence marks a complete run."""
    return write_run_files(run_files(run), out_dir)


def is_complete(path: str | os.PathLike[str]) -> bool:
    """True when a run directory holds a finished run."""
    return (Path(path) / "result.json").is_file()


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file; anything else (a pickle, a truncated file) is refused, never unpickled."""
    try:
        return load_file(str(path))
    except Exception as err:  # safetensors raises its own error type for a bad header
        raise ValueError(f"{path} is not a readable safetensors file ({type(err).__name__}: {err}); georecall "
                         "reads weights only as safetensors and never unpickles a checkpoint") from None


def load_run(path: str | os.PathLike[str], *, device: str | torch.device = "cpu") -> TrainRun:
    """Load a run directory back into the objects the live run returned (weights, worlds, result, metrics)."""
    root = Path(path)
    missing = [f for f in FILES if not (root / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{root} is not a complete run directory (missing {', '.join(missing)})")
    config = run_config_from_dict(json.loads((root / "config.json").read_text()))
    raw = json.loads((root / "result.json").read_text())
    if raw.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"{root}/result.json has schema_version {raw.get('schema_version')}, "
                         f"this georecall reads {SCHEMA_VERSION}")
    result = TrainResult(**raw)
    task = config.task
    maps = read_safetensors(root / "worlds.safetensors")["maps"].numpy()
    if maps.shape != (len(config.seeds), task.n_relations, task.n_subjects):
        raise ValueError(f"{root}/worlds.safetensors holds maps of shape {maps.shape}, the config asks for "
                         f"{(len(config.seeds), task.n_relations, task.n_subjects)}")
    worlds = [World(m, attributes=task.attributes, n_attributes=task.n_attributes,
                    seed=s if task.world_seed is None else task.world_seed)
              for m, s in zip(maps, config.seeds, strict=True)]
    weights = Path(str(result.weights))
    if weights.name != str(result.weights) or weights.suffix != ".safetensors":
        raise ValueError(f"{root}/result.json names weights {result.weights!r}: only a .safetensors file inside "
                         "the run directory is read")
    state = read_safetensors(root / weights)
    model = Transformer(config.model, d_vocab=worlds[0].vocab.d_vocab, n_ctx=context_length(config.task),
                        n_members=len(config.seeds))
    model.load_state_dict(state)
    metrics = [json.loads(line) for line in (root / "metrics.jsonl").read_text().splitlines() if line.strip()]
    meta = json.loads((root / "meta.json").read_text())
    return TrainRun(config=config, result=result, model=model.to(device), worlds=worlds, metrics=metrics, meta=meta)
