"""Sweeps in local worker processes: the same results, bit for bit, as in one process (spawning workers takes
seconds, hence the slow tier; CI runs it)."""

import dataclasses

import pytest
import torch

from georecall.config import ModelConfig, RunConfig, TaskConfig, TrainConfig
from georecall.results.store import ResultStore
from georecall.training.sweep import expand_grid, run_sweep

BASE = RunConfig(task=TaskConfig(n_subjects=16, n_relations=2), model=ModelConfig(d_model=8, d_mlp=32),
                 train=TrainConfig(steps=20, eval_every=10))

@pytest.mark.slow
def test_worker_processes_give_bitwise_the_in_process_results_and_record_failures(tmp_path):
    """The same runs trained in two local worker processes: the same rows and weights as in this process; a
    group that raises in a worker is recorded failed and the sweep goes on."""
    from safetensors.torch import load_file

    from georecall.training.executors import shutdown_pool

    runs = expand_grid(dataclasses.replace(BASE, train=dataclasses.replace(BASE.train, steps=20)),
                       {"model.d_model": [8, 12, 16], "seeds": [0, 1]})
    # No GPU here (the GPU tier tests the device): asking for CUDA raises inside the worker.
    bad = dataclasses.replace(runs[0], model=dataclasses.replace(runs[0].model, d_model=20),
                              train=dataclasses.replace(runs[0].train, device="cuda"))
    if torch.cuda.is_available():
        pytest.skip("this test makes a group fail by asking for CUDA on a machine without it")
    here = run_sweep(runs, tmp_path / "here", experiment="w")
    try:
        pooled = run_sweep([*runs, bad], tmp_path / "pool", experiment="w", workers=2)
    finally:
        shutdown_pool()
    assert (here.trained, pooled.trained, pooled.failed) == (6, 6, 1)
    with ResultStore(tmp_path / "here" / "results.sqlite") as a, ResultStore(tmp_path / "pool" / "results.sqlite") as b:
        rows_a = {r["hash"]: r for r in a.table("w")}
        rows_b = {r["hash"]: r for r in b.table("w", status=None)}
        failed = [r for r in rows_b.values() if r["status"] == "failed"]
        assert len(failed) == 1 and "CUDA" in failed[0]["error"]
        for h, r in rows_a.items():
            assert rows_b[h]["status"] == "done" and rows_b[h]["result.accuracy"] == r["result.accuracy"]
            wa = load_file(str(tmp_path / "here" / r["run_dir"] / "model.safetensors"))
            wb = load_file(str(tmp_path / "pool" / rows_b[h]["run_dir"] / "model.safetensors"))
            assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    with pytest.raises(ValueError, match="workers"):
        run_sweep(runs, tmp_path / "x", experiment="w", workers=0)


@pytest.mark.slow
def test_a_killed_worker_process_is_replaced_and_its_ensembles_land_once(tmp_path):
    """SIGKILL to a worker process mid-sweep: its ensembles are submitted again to a fresh pool; every run is in
    the store once, with the weights an in-process sweep gives."""
    import os
    import signal

    from safetensors.torch import load_file

    from georecall.training import executors

    runs = expand_grid(dataclasses.replace(BASE, train=dataclasses.replace(BASE.train, steps=300, eval_every=300,
                                                                           stop_at_target=False)),
                       {"model.d_model": [6, 8, 10, 12, 14], "seeds": [0, 1]})
    here = run_sweep(runs, tmp_path / "here", experiment="w")
    killed = []

    def progress(done, total):
        if done > 0 and not killed and executors._POOL is not None:
            pid = next(iter(executors._POOL[0]._processes))
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    try:
        pooled = run_sweep(runs, tmp_path / "pool", experiment="w", workers=2, progress=progress)
    finally:
        executors.shutdown_pool()
    assert killed and (pooled.trained, pooled.failed) == (10, 0) and pooled.retried >= 1
    with ResultStore(tmp_path / "here" / "results.sqlite") as a, ResultStore(tmp_path / "pool" / "results.sqlite") as b:
        rows_a, rows_b = {r["hash"]: r for r in a.rows()}, {r["hash"]: r for r in b.rows(status=None)}
        assert rows_a.keys() == rows_b.keys() and here.trained == 10
        for h, r in rows_a.items():
            assert rows_b[h]["status"] == "done"
            assert {k: v for k, v in r["result"].items() if k != "wall_time_s"} == \
                   {k: v for k, v in rows_b[h]["result"].items() if k != "wall_time_s"}
            wa = load_file(str(tmp_path / "here" / r["run_dir"] / "model.safetensors"))
            wb = load_file(str(tmp_path / "pool" / rows_b[h]["run_dir"] / "model.safetensors"))
            assert all(torch.equal(wa[k], wb[k]) for k in wa)


_PARENT = """\
import os, sys, time
from georecall.training.executors import worker_pool
if __name__ == "__main__":
    pool = worker_pool(2)
    pool.submit(os.getpid)  # starts the workers: seconds of imports before their set-up runs
    time.sleep(float(sys.argv[1]))
    os.kill(os.getpid(), 9)
"""


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.1, 0.4, 0.8, 1.5, 3.0])
def test_workers_die_with_a_parent_killed_at_any_moment_of_their_start(tmp_path, delay):
    """A parent SIGKILLed while its workers are still importing (before they can ask to die with it) or after:
    no worker lives on. One that did held the pool's queues and the parent's stdout, and waited forever (a
    killed `reproduce` once hung CI this way)."""
    import subprocess
    import sys

    from killing import kill_and_reap

    script = tmp_path / "parent.py"
    script.write_text(_PARENT)
    proc = subprocess.Popen([sys.executable, str(script), str(delay)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    proc.wait(timeout=60)
    assert proc.returncode == -9
    kill_and_reap(proc, grace=20)
