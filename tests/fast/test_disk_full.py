"""A disk that fills up mid-sweep: one line, exit 2, every run finished before kept, and the same command run
again (once there is room) resumes. The disk is made full by making the writes fail with ENOSPC (for the run
directories) or SQLite's "database or disk is full" (for the store)."""

import errno
import json
import sqlite3

import pytest

import georecall.results.run as run_mod
from georecall.cli import main
from georecall.results.store import ResultStore

SWEEP = {"name": "full", "base": {"task": {"n_subjects": 8, "n_relations": 2}, "model": {"d_model": 8, "d_mlp": 16},
                                  "train": {"steps": 3, "eval_every": 3}},
         "grid": {"model.d_model": [4, 6, 8], "seeds": [0, 1]}}  # three ensembles of two runs


def _sweep(tmp_path, capsys):
    spec = tmp_path / "sweep.json"
    spec.write_text(json.dumps(SWEEP))
    code = main(["sweep", str(spec), "--out", str(tmp_path / "out"), "--quiet", "--workers", "1", "--json"])
    return code, capsys.readouterr()


def _done(tmp_path):
    with ResultStore(tmp_path / "out" / "results.sqlite") as store:
        return {r["hash"] for r in store.rows(status="done")}


def test_a_disk_that_fills_while_a_run_directory_is_written(tmp_path, capsys, monkeypatch):
    real, calls = run_mod.write_atomic, {"n": 0}

    def filling(path, data):
        calls["n"] += 1
        if calls["n"] > 12 + 3:  # the first ensemble's two run directories (6 files each) fit, then part of one
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, data)

    monkeypatch.setattr(run_mod, "write_atomic", filling)
    code, out = _sweep(tmp_path, capsys)
    assert code == 2 and out.out == ""
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and "No space left on device writing" in lines[0] and "resume" in lines[0], out.err
    kept = _done(tmp_path)
    assert len(kept) == 2  # what was written before the disk filled is kept, and nothing half-written is done
    complete = [p for p in (tmp_path / "out" / "full").iterdir() if (p / "result.json").is_file()]
    assert len(complete) == 2
    monkeypatch.setattr(run_mod, "write_atomic", real)  # room again: the same command resumes
    code, out = _sweep(tmp_path, capsys)
    assert code == 0 and json.loads(out.out)["skipped"] == 2 and json.loads(out.out)["trained"] == 4
    assert kept < _done(tmp_path) and len(_done(tmp_path)) == 6


def test_a_store_that_cannot_grow(tmp_path, capsys, monkeypatch):
    real, calls = ResultStore.put, {"n": 0}

    def full(self, **kw):
        calls["n"] += 1
        if calls["n"] > 3:
            raise sqlite3.OperationalError("database or disk is full")
        real(self, **kw)

    monkeypatch.setattr(ResultStore, "put", full)
    code, out = _sweep(tmp_path, capsys)
    lines = out.err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "database or disk is full" in lines[0], out.err
    monkeypatch.setattr(ResultStore, "put", real)
    assert len(_done(tmp_path)) == 3
    code, out = _sweep(tmp_path, capsys)  # the run directory whose row could not be written is adopted, not redone
    assert code == 0 and json.loads(out.out)["skipped"] == 4 and len(_done(tmp_path)) == 6


def test_other_errors_still_reach_the_caller(monkeypatch):
    """Only a full disk is turned into a line here; anything else is a bug and keeps its traceback."""
    import georecall.cli as cli_mod

    def boom(*a, **k):
        raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(cli_mod.cli, "main", boom)
    with pytest.raises(OSError, match="Permission denied"):
        main(["--help"])
