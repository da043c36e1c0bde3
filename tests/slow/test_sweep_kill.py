"""`georecall sweep` killed with SIGKILL at five random moments, resumed each time: the final store equals an
uninterrupted sweep's, every run in it once, no half-written run taken for finished (slow: real processes)."""

import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from killing import kill_and_reap
from store_snapshot import store_snapshot

from georecall.results.store import ResultStore

SWEEP = """\
name: killed
base: {task: {n_subjects: 16, n_relations: 2}, model: {d_model: 8, d_mlp: 32},
       train: {steps: 150, eval_every: 50, stop_at_target: false}}
grid: {model.d_model: [4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15], seeds: [0, 1]}
"""
N_RUNS = 24


def _sweep(spec: Path, out: Path) -> subprocess.Popen:
    exe = str(Path(sys.executable).with_name("georecall"))
    return subprocess.Popen([exe, "sweep", str(spec), "--out", str(out), "--quiet"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _done(out: Path) -> int:
    """Finished rows, read without writing (the sweep may be mid-transaction)."""
    path = out / "results.sqlite"
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as db:
            return db.execute("SELECT COUNT(*) FROM runs WHERE status = 'done'").fetchone()[0]
    except sqlite3.OperationalError:  # created but its table not yet
        return 0


def _snapshot(out: Path):
    with ResultStore(out / "results.sqlite") as store:
        assert store._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    return store_snapshot(out)


@pytest.mark.slow
def test_a_sweep_killed_at_five_random_moments_ends_with_the_uninterrupted_results(tmp_path):
    spec = tmp_path / "sweep.yaml"
    spec.write_text(SWEEP)
    whole = _sweep(spec, tmp_path / "whole")
    assert whole.wait(timeout=600) == 0, whole.stderr.read()

    rng = random.Random(20261201)
    out = tmp_path / "killed"
    hits = []
    for _ in range(5):
        before = _done(out)
        proc = _sweep(spec, out)
        # A random moment once this attempt is under way (it has recorded a run of its own): mid-training,
        # mid-write of a run directory, between a directory and its row, or while the pool starts.
        end = time.monotonic() + 300
        while proc.poll() is None and _done(out) <= before and time.monotonic() < end:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.0))
        if proc.poll() is None:
            kill_and_reap(proc)  # the sweep's worker processes must die with it
            hits.append(_done(out))
    assert sum(0 < n < N_RUNS for n in hits) >= 4, f"the kills did not land mid-sweep: {hits}"
    last = _sweep(spec, out)
    assert last.wait(timeout=600) == 0, last.stderr.read()

    a, b = _snapshot(tmp_path / "whole"), _snapshot(out)
    assert len(a) == N_RUNS and a.keys() == b.keys()
    for h in a:
        assert b[h][0] == "done" and a[h][1] == b[h][1], h
        assert all(torch.equal(a[h][2][k], b[h][2][k]) for k in a[h][2]), f"{h}: weights differ"
    run_dirs = sorted(p.name for p in (out / "killed").iterdir())
    assert len(run_dirs) == N_RUNS and not list((out / "killed").glob("*/.*.tmp"))
    assert not list((out / "killed").glob("*/error.txt"))
