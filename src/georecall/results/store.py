"""The results store of a sweep: one SQLite row per run, keyed by the run's config hash.

SQLite in WAL mode, each write one transaction: a sweep killed at any moment (Ctrl-C, SIGKILL, a
power cut) keeps every row it committed, and a reader never sees half a row. A row is written only
after its run directory is complete, so ``status = 'done'`` always points at a loadable run.

Table ``runs``::

    hash        TEXT PRIMARY KEY   SHA-256 of the run's canonical config (georecall.config.config_hash)
    experiment  TEXT               experiment id or sweep name
    status      TEXT               'done' or 'failed'
    config      TEXT               the run's config as JSON
    result      TEXT               its TrainResult as JSON (NULL when failed)
    error       TEXT               the error, one line (NULL when done)
    run_dir     TEXT               the run directory, relative to the store's folder
    wall_time_s REAL               seconds of the ensemble it trained in, shared among its members
    finished    TEXT               ISO time of the write
"""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: The file name of the results store inside an output folder (``<out>/results.sqlite``).
STORE_NAME = "results.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    hash TEXT PRIMARY KEY,
    experiment TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('done', 'failed')),
    config TEXT NOT NULL,
    result TEXT,
    error TEXT,
    run_dir TEXT,
    wall_time_s REAL,
    finished TEXT NOT NULL
)
"""


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"model": {"d_model": 8}} -> {"model.d_model": 8}``; lists stay values (JSON text in CSV)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


class ResultStore:
    """A sweep's SQLite results file; use as a context manager or call :meth:`close`."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, one transaction per write.
        self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process kills
        self._db.execute(_SCHEMA)

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def put(self, *, hash: str, experiment: str, status: str, config: dict[str, Any],
            result: dict[str, Any] | None = None, error: str | None = None, run_dir: str | None = None,
            wall_time_s: float | None = None) -> None:
        """Insert or replace one run's row, in one transaction."""
        if run_dir is not None and os.path.isabs(run_dir):
            raise ValueError(f"run_dir must be relative to the store's folder, got {run_dir!r}")
        row = (hash, experiment, status, json.dumps(config), None if result is None else json.dumps(result),
               error, run_dir, wall_time_s, time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row)

    def status(self, hash: str) -> str | None:
        """'done', 'failed', or None for a run never written."""
        row = self._db.execute("SELECT status FROM runs WHERE hash = ?", (hash,)).fetchone()
        return None if row is None else row[0]

    def get(self, hash: str) -> dict[str, Any] | None:
        """One run's row (``config`` and ``result`` decoded), or None."""
        cur = self._db.execute("SELECT * FROM runs WHERE hash = ?", (hash,))
        values = cur.fetchone()
        if values is None:
            return None
        row = dict(zip([c[0] for c in cur.description], values, strict=True))
        row["config"] = json.loads(row["config"])
        row["result"] = None if row["result"] is None else json.loads(row["result"])
        return row

    def done_hashes(self) -> set[str]:
        return {h for (h,) in self._db.execute("SELECT hash FROM runs WHERE status = 'done'")}

    def rows(self, experiment: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        """Rows as dicts with ``config`` and ``result`` decoded."""
        query, args = "SELECT * FROM runs WHERE 1=1", []
        if experiment is not None:
            query, args = query + " AND experiment = ?", [*args, experiment]
        if status is not None:
            query, args = query + " AND status = ?", [*args, status]
        cur = self._db.execute(query + " ORDER BY finished, hash", args)
        names = [c[0] for c in cur.description]
        out = []
        for values in cur.fetchall():
            row = dict(zip(names, values, strict=True))
            row["config"] = json.loads(row["config"])
            row["result"] = None if row["result"] is None else json.loads(row["result"])
            out.append(row)
        return out

    def table(self, experiment: str | None = None, status: str | None = "done") -> list[dict[str, Any]]:
        """One flat dict per run: ``hash``, ``status``, ``config.model.d_model``…, ``result.accuracy``…"""
        flat = []
        for row in self.rows(experiment, status):
            entry = {k: row[k] for k in ("hash", "experiment", "status", "error", "run_dir", "wall_time_s")}
            entry.update(flatten(row["config"], "config."))
            if row["result"] is not None:
                entry.update(flatten(row["result"], "result."))
            flat.append(entry)
        return flat

    def export_csv(self, path: str | os.PathLike[str], experiment: str | None = None, *,
                   hashes: Collection[str] | None = None) -> Path:
        """Write :meth:`table` as CSV (lists as JSON text), atomically (a temp file, then a rename); returns the path.

        ``hashes`` selects runs by config hash instead (done and failed alike), whichever experiment's name
        their row carries: a sweep's export holds every run of the sweep, including runs another sweep
        sharing them finished first.
        """
        if hashes is None:
            table = self.table(experiment)
        else:
            wanted = set(hashes)
            table = [r for r in self.table(None, status=None) if r["hash"] in wanted]
        columns = sorted({k for row in table for k in row})
        from georecall.results.atomic import write_atomic

        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=columns)
        writer.writeheader()
        for row in table:
            writer.writerow({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in row.items()})
        return write_atomic(path, text.getvalue())

    def export_parquet(self, path: str | os.PathLike[str], experiment: str | None = None) -> Path:
        """Write :meth:`table` as parquet; needs pandas and pyarrow (``pip install 'georecall[analysis]'``)."""
        try:
            import pandas as pd
        except ImportError as err:  # pragma: no cover - optional dependency
            raise ImportError("parquet export needs pandas and pyarrow: pip install 'georecall[analysis]'") from err
        table = [{k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in row.items()}
                 for row in self.table(experiment)]
        pd.DataFrame(table).to_parquet(path, index=False)
        return Path(path)
