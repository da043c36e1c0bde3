"""The envelope every experiment's ``result.json`` is written in, and its reader (torch-free).

Layout (``schema`` = :data:`ENVELOPE_SCHEMA`)::

    {
      "schema": "georecall.result/1",
      "experiment": "threshold", "scale": "quick",
      "provenance": {"claim": ..., "paper_section": ..., "theorems": [...]},
      "paper_reported": {...},            # only what the paper itself says; never our numbers
      "meta": {"georecall_version", "git_sha", "git_dirty", "torch_version", "device", "seeds",
               "scale", "wall_time_s", "created"},
      "runs": ["<sha256>", ...],          # the config hashes of the training runs behind it
      "claims": [{"id", "verdict", "numbers", "reason"}, ...],   # as decided when it was written
      "payload": {...}                    # the experiment's own Result (schema_version inside)
    }

The report re-decides every claim from ``payload`` rather than trusting ``claims``; the stored
decisions are there for a reader of one file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

ENVELOPE_SCHEMA = "georecall.result/1"
RESULT_FILE = "result.json"
_KEYS = ("schema", "experiment", "scale", "provenance", "paper_reported", "meta", "runs", "claims", "payload")


def result_folder(out_dir: str | os.PathLike[str], experiment: str, scale: str) -> Path:
    """``<out>/<experiment>/<scale>``: where an experiment's result.json, figures and CSVs go."""
    return Path(out_dir) / experiment / scale


def make_envelope(*, experiment: str, scale: str, provenance: dict[str, Any], paper_reported: dict[str, Any],
                  meta: dict[str, Any], runs: list[str], claims: list[dict[str, Any]],
                  payload: dict[str, Any]) -> dict[str, Any]:
    """The envelope as a plain dict (every value JSON-ready)."""
    env = {"schema": ENVELOPE_SCHEMA, "experiment": experiment, "scale": scale, "provenance": provenance,
           "paper_reported": paper_reported, "meta": meta, "runs": sorted(runs), "claims": claims,
           "payload": payload}
    json.dumps(env)  # raises TypeError on a value that is not JSON-ready, before anything is written
    return env


def write_envelope(folder: str | os.PathLike[str], envelope: dict[str, Any]) -> Path:
    """Write ``result.json`` atomically (temp file, fsync, rename) into ``folder``."""
    from georecall.results.atomic import write_atomic

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return write_atomic(folder / RESULT_FILE, json.dumps(envelope, indent=2, allow_nan=False) + "\n", fsync=True)


def read_envelope(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The envelope in ``folder/result.json``; FileNotFoundError if absent, ValueError if corrupt or foreign."""
    path = Path(folder) / RESULT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {RESULT_FILE} in {folder}: run the experiment first")
    try:
        env = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON ({err}); delete it and re-run the experiment") from None
    if not isinstance(env, dict) or env.get("schema") != ENVELOPE_SCHEMA:
        got = env.get("schema") if isinstance(env, dict) else type(env).__name__
        raise ValueError(f"{path} is not a {ENVELOPE_SCHEMA} envelope (schema {got!r}); re-run the experiment")
    missing = [k for k in _KEYS if k not in env]
    if missing:
        raise ValueError(f"{path} lacks {', '.join(missing)}; re-run the experiment")
    return env


def read_payload(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``payload`` of ``folder/result.json`` (what an experiment's figures are drawn from)."""
    return read_envelope(folder)["payload"]
