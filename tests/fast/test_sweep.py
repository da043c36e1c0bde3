"""Sweeps: grid expansion, ensembles of one shape, the SQLite store, failures, and crash-safe resume."""

import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import torch

from georecall.config import ModelConfig, RunConfig, TaskConfig, TrainConfig
from georecall.results import load_run
from georecall.results.store import ResultStore
from georecall.training import train
from georecall.training.sweep import (
    cpu_members_cap,
    expand_grid,
    group_runs,
    member_activation_bytes,
    run_sweep,
    shape_key,
    single_runs,
    split_run,
)

BASE = RunConfig(task=TaskConfig(n_subjects=16, n_relations=2), model=ModelConfig(d_model=8, d_mlp=32),
                 train=TrainConfig(steps=40, eval_every=10))


def test_grid_expands_to_one_seed_runs_with_distinct_hashes():
    runs = expand_grid(BASE, {"model.d_model": [8, 16], "train.lr": [0.01, 0.003], "seeds": [0, 1, 2]})
    assert len(runs) == 12 and all(len(r.seeds) == 1 for r in runs)
    assert len({r.config_hash() for r in runs}) == 12
    groups = group_runs(runs, max_members=64)
    assert len(groups) == 2  # seeds and learning rates share an ensemble; d_model does not
    assert sorted(len(g.seeds) for g in groups) == [6, 6] and all(g.lrs is not None for g in groups)
    assert len({shape_key(r) for r in runs}) == 2
    assert [len(g.seeds) for g in group_runs(runs, max_members=4)] == [4, 2, 4, 2]
    with pytest.raises(ValueError, match="unknown key"):
        expand_grid(BASE, {"model.nope": [1]})


def test_split_members_equal_single_model_runs():
    ens = train(dataclasses.replace(BASE, seeds=(3, 4)))
    pieces = split_run(ens)
    assert [p.config for p in pieces] == single_runs(ens.config)
    alone = train(dataclasses.replace(BASE, seeds=(4,)))
    assert pieces[1].result.accuracy == alone.result.accuracy and pieces[1].result.steps == alone.result.steps
    for (k, a), b in zip(pieces[1].model.state_dict().items(), alone.model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=k)


def test_sweep_stores_every_run_and_skips_finished_ones(tmp_path):
    runs = expand_grid(BASE, {"model.d_model": [8, 12], "seeds": [0, 1]})
    calls = []

    def counting_train(cfg):
        calls.append(len(cfg.seeds))
        return train(cfg)

    first = run_sweep(runs, tmp_path, experiment="demo", trainer=counting_train)
    assert (first.total, first.skipped, first.trained, first.failed) == (4, 0, 4, 0) and calls == [2, 2]
    again = run_sweep(runs, tmp_path, experiment="demo", trainer=counting_train)
    assert (again.skipped, again.trained) == (4, 0) and calls == [2, 2]  # nothing retrained
    # Killed after a run directory was complete but before its row: the next invocation adopts it.
    with sqlite3.connect(tmp_path / "results.sqlite") as con:
        con.execute("DELETE FROM runs WHERE hash = ?", (runs[0].config_hash(),))
    adopted = run_sweep(runs, tmp_path, experiment="demo", trainer=counting_train)
    assert (adopted.skipped, adopted.trained) == (4, 0) and calls == [2, 2]
    with ResultStore(tmp_path / "results.sqlite") as store:
        rows = store.rows("demo")
        assert len(rows) == 4 and {r["status"] for r in rows} == {"done"}
        for row in rows:
            assert not os.path.isabs(row["run_dir"])
            run = load_run(tmp_path / row["run_dir"])
            assert run.config.config_hash() == row["hash"] and run.result.accuracy == row["result"]["accuracy"]
        table = store.table("demo")
        assert {"config.model.d_model", "result.accuracy", "hash"} <= set(table[0])
        csv_path = store.export_csv(tmp_path / "demo.csv", "demo")
        assert len(csv_path.read_text().splitlines()) == 5


def test_a_failing_ensemble_is_recorded_and_the_sweep_goes_on(tmp_path):
    runs = expand_grid(BASE, {"model.d_model": [8, 12], "seeds": [0]})

    def flaky(cfg):
        if cfg.model.d_model == 8:
            raise RuntimeError("boom\nsecond line")
        return train(cfg)

    report = run_sweep(runs, tmp_path, experiment="flaky", trainer=flaky)
    assert (report.trained, report.failed) == (1, 1)
    with ResultStore(tmp_path / "results.sqlite") as store:
        failed = store.rows("flaky", status="failed")
        assert len(failed) == 1 and failed[0]["error"] == "RuntimeError: boom second line"
        assert (tmp_path / failed[0]["run_dir"] / "error.txt").is_file()
    retry = run_sweep(runs, tmp_path, experiment="flaky")  # failed runs are tried again
    assert (retry.skipped, retry.trained, retry.failed) == (1, 1, 0)


SWEEP = {"name": "killme", "base": {"task": {"n_subjects": 24, "n_relations": 2},
                                    "model": {"d_model": 8, "d_mlp": 32},
                                    # The whole budget, no early stop: each ensemble takes long enough that
                                    # the sweep cannot finish between the test's polls of the store.
                                    "train": {"steps": 300, "eval_every": 50, "target_accuracy": 1.0,
                                              "stop_at_target": False, "device": "cpu"}},
         "grid": {"model.d_model": [8, 10, 12, 14, 16, 18], "seeds": [0, 1]}}


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "Ctrl-C"])
def test_interrupted_sweep_resumes_without_redoing_or_losing_runs(tmp_path, sig):
    spec = tmp_path / "sweep.json"
    spec.write_text(json.dumps(SWEEP))
    out = tmp_path / "out"
    # In one process: the exact count of runs kept below holds there (with worker processes, a run a worker
    # finished just before the kill is found complete on resume and adopted, so more are skipped).
    cmd = [sys.executable, "-m", "georecall.cli", "sweep", str(spec), "--out", str(out), "--quiet", "--json",
           "--workers", "1"]
    # A test run started in the background of a non-interactive shell (nohup ... &) inherits SIGINT ignored, and
    # so would the sweep (Python then installs no KeyboardInterrupt handler): give the child the default back.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    db = out / "results.sqlite"
    deadline = time.time() + 300
    done_before: dict[str, str] = {}
    while time.time() < deadline and proc.poll() is None:
        if db.exists():
            try:
                with sqlite3.connect(db) as con:
                    done_before = dict(con.execute("SELECT hash, finished FROM runs WHERE status='done'").fetchall())
            except sqlite3.OperationalError:  # the file exists a moment before its table does
                done_before = {}
            if len(done_before) >= 2:
                break
        time.sleep(0.05)
    assert proc.poll() is None, "the sweep finished before it could be interrupted; make it longer"
    proc.send_signal(sig)
    proc.wait(timeout=60)
    with sqlite3.connect(db) as con:
        kept = dict(con.execute("SELECT hash, finished FROM runs WHERE status='done'").fetchall())
    assert 2 <= len(kept) < 12 and all(kept[h] == t for h, t in done_before.items())  # nothing lost
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["total"] == 12 and report["skipped"] == len(kept) and report["trained"] == 12 - len(kept)
    with sqlite3.connect(db) as con:
        final = dict(con.execute("SELECT hash, finished FROM runs WHERE status='done'").fetchall())
    assert len(final) == 12 and all(final[h] == t for h, t in kept.items())  # finished runs not redone


def test_a_run_done_by_another_sweep_is_not_trained_again(tmp_path):
    runs = expand_grid(BASE, {"seeds": [0, 1]})
    run_sweep(runs, tmp_path, experiment="first")
    calls = []
    report = run_sweep(runs, tmp_path, experiment="second", trainer=lambda c: calls.append(c) or train(c))
    assert (report.skipped, report.trained) == (2, 0) and calls == []
    with ResultStore(tmp_path / "results.sqlite") as store:
        assert {r["experiment"] for r in store.rows()} == {"first"}  # rows not overwritten


def test_cpu_ensembles_are_capped_by_activation_size():
    small = RunConfig(task=TaskConfig(n_subjects=64, n_relations=4), model=ModelConfig(d_model=12, d_mlp=48))
    big = RunConfig(task=TaskConfig(n_subjects=1024, n_relations=4), model=ModelConfig(d_model=16, d_mlp=64))
    assert member_activation_bytes(big) == 4096 * 2 * 64 * 4
    assert cpu_members_cap(big) == 8 and cpu_members_cap(small) >= 128  # the measured optima
    runs = [dataclasses.replace(big, seeds=(s,)) for s in range(20)]
    assert [len(g.seeds) for g in group_runs(runs, 64, cap=cpu_members_cap)] == [8, 8, 4]
    assert [len(g.seeds) for g in group_runs(runs, 6, cap=cpu_members_cap)] == [6, 6, 6, 2]
    minibatch = dataclasses.replace(big, train=dataclasses.replace(big.train, batch_size=512))
    assert cpu_members_cap(minibatch) == 64


def test_run_sweep_applies_the_cpu_cap(tmp_path):
    big = RunConfig(task=TaskConfig(n_subjects=1024, n_relations=4), model=ModelConfig(d_model=16, d_mlp=64),
                    train=TrainConfig(steps=0, device="cpu"))
    runs = [dataclasses.replace(big, seeds=(s,)) for s in range(10)]
    sizes = []

    def trainer(cfg):
        sizes.append(len(cfg.seeds))
        return train(cfg)

    report = run_sweep(runs, tmp_path, experiment="cap", max_members=64, trainer=trainer)
    assert sizes == [8, 2] and report.trained == 10

