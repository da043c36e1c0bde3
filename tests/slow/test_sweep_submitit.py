"""The submitit executor in its local mode (each ensemble a job, a local process, as on Slurm), one job killed
mid-run: it is submitted again and every run lands once, with the in-process results. Needs submitit."""

import os
import signal
import threading
import time

import pytest
import torch
from store_snapshot import store_snapshot

from georecall.config import ModelConfig, RunConfig, TaskConfig, TrainConfig
from georecall.training.sweep import expand_grid, run_sweep

submitit = pytest.importorskip("submitit")


@pytest.mark.slow
def test_a_killed_submitit_job_is_submitted_again_and_lands_once(tmp_path, monkeypatch):
    from georecall.training.executors import SubmititExecutor

    base = RunConfig(task=TaskConfig(n_subjects=16, n_relations=2), model=ModelConfig(d_model=8, d_mlp=32),
                     train=TrainConfig(steps=200, eval_every=100, stop_at_target=False))
    runs = expand_grid(base, {"model.d_model": [6, 8], "seeds": [0, 1]})
    run_sweep(runs, tmp_path / "here", experiment="s")

    submitted, killed = [], []
    real_submit = submitit.AutoExecutor.submit

    def submit(self, fn, *args, **kwargs):
        job = real_submit(self, fn, *args, **kwargs)
        submitted.append(job)
        return job

    def kill_first():  # the first job, a second in (starting: importing torch), before it can have finished
        while not submitted:
            time.sleep(0.05)
        time.sleep(1.0)
        os.kill(int(submitted[0].job_id), signal.SIGKILL)
        killed.append(submitted[0].job_id)

    monkeypatch.setattr(submitit.AutoExecutor, "submit", submit)
    # submitit waits 15-30 s for a dead job's result file to appear on a slow shared file system; not here
    monkeypatch.setattr(submitit.core.core.Job, "_results_timeout_s", 1)
    threading.Thread(target=kill_first, daemon=True).start()
    report = run_sweep(runs, tmp_path / "jobs", experiment="s",
                       executor=SubmititExecutor(tmp_path / "submitit", cluster="local"))
    assert killed and len(submitted) == 3  # two ensembles, one of them twice
    assert (report.trained, report.failed, report.retried) == (4, 0, 1)
    a, b = store_snapshot(tmp_path / "here"), store_snapshot(tmp_path / "jobs")
    assert a.keys() == b.keys() and len(a) == 4
    for h in a:
        assert b[h][0] == "done" and a[h][1] == b[h][1]
        assert all(torch.equal(a[h][2][k], b[h][2][k]) for k in a[h][2])
