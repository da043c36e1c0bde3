"""The sweep's plan -> execute -> record split: executors that lose workers, workers that cannot see the output
folder, and crash-safe run directories. Training is real but tiny (a few steps)."""

import dataclasses
import os

import pytest
import torch
from store_snapshot import store_snapshot

from georecall.config import ModelConfig, RunConfig, TaskConfig, TrainConfig
from georecall.results import write_run_files
from georecall.results.store import ResultStore
from georecall.training.executors import Executor, InProcess, Task, WorkerLost, execute
from georecall.training.sweep import expand_grid, run_sweep

BASE = RunConfig(task=TaskConfig(n_subjects=8, n_relations=2), model=ModelConfig(d_model=8, d_mlp=16),
                 train=TrainConfig(steps=3, eval_every=3))
RUNS = expand_grid(BASE, {"model.d_model": [6, 8], "seeds": [0, 1]})  # two ensembles of two runs


class Scripted(Executor):
    """Runs tasks in this process, but loses the worker of the first ``lose`` submissions of each ensemble
    (``after=True``: after it had written its run directories); ``token`` replaces each task's token."""

    name = "scripted"

    def __init__(self, lose: int = 0, *, after: bool = False, token: str | None = None) -> None:
        self.lose, self.after, self.token = lose, after, token
        self.seen: dict[str, int] = {}
        self.calls = 0

    def run(self, tasks):
        for task in tasks:
            self.calls += 1
            key = task.group.config_hash()
            self.seen[key] = self.seen.get(key, 0) + 1
            if self.token is not None:
                task = dataclasses.replace(task, token=self.token)
            if self.seen[key] <= self.lose:
                if self.after:
                    execute(task)  # the worker finished its directories, then its node died
                yield task, WorkerLost("node died (scripted)")
            else:
                yield task, execute(task)


def _same(a, b):
    assert a.keys() == b.keys()
    for h in a:
        assert a[h][:2] == b[h][:2], h
        assert a[h][2].keys() == b[h][2].keys() and all(torch.equal(a[h][2][k], b[h][2][k]) for k in a[h][2])


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref")
    assert run_sweep(RUNS, out, experiment="e").trained == 4
    return store_snapshot(out)


def test_a_lost_worker_is_retried_and_its_runs_land_once(tmp_path, reference):
    ex = Scripted(lose=1)
    rep = run_sweep(RUNS, tmp_path, experiment="e", executor=ex)
    assert (rep.trained, rep.failed, rep.retried, ex.calls) == (4, 0, 2, 4)
    _same(store_snapshot(tmp_path), reference)


def test_a_lost_worker_that_had_finished_is_adopted_not_retrained(tmp_path, reference):
    ex = Scripted(lose=1, after=True)
    rep = run_sweep(RUNS, tmp_path, experiment="e", executor=ex)
    assert (rep.trained, rep.failed, rep.retried, ex.calls) == (4, 0, 0, 2)
    _same(store_snapshot(tmp_path), reference)


def test_a_worker_lost_beyond_the_retries_fails_its_runs_and_the_next_invocation_trains_them(tmp_path, reference):
    rep = run_sweep(RUNS, tmp_path, experiment="e", executor=Scripted(lose=5), retries=2)
    assert (rep.trained, rep.failed, rep.retried) == (0, 4, 4)
    with ResultStore(tmp_path / "results.sqlite") as store:
        errors = {r["error"] for r in store.rows(status="failed")}
    assert errors == {"worker lost 3 times: node died (scripted)"}
    again = run_sweep(RUNS, tmp_path, experiment="e")
    assert (again.skipped, again.trained) == (0, 4)
    _same(store_snapshot(tmp_path), reference)
    with pytest.raises(ValueError, match="retries"):
        run_sweep(RUNS, tmp_path, experiment="e", retries=-1)


def test_a_worker_that_cannot_see_the_output_folder_sends_the_files_back(tmp_path, reference):
    task = Task(group=dataclasses.replace(RUNS[0], seeds=(0, 1)), out=str(tmp_path / "elsewhere"), experiment="e",
                token="not-this-folder")
    outcome = execute(task)
    assert outcome.rows is not None and len(outcome.files) == 2 and not (tmp_path / "elsewhere").exists()
    assert all(list(files)[-1] == "result.json" for files in outcome.files.values())
    rep = run_sweep(RUNS, tmp_path / "sweep", experiment="e", executor=Scripted(token="wrong"))
    assert rep.trained == 4
    _same(store_snapshot(tmp_path / "sweep"), reference)


def test_a_training_error_is_an_outcome_not_an_exception(tmp_path):
    def broken(config, **_):
        raise RuntimeError("boom\nsecond line")

    outcome = execute(Task(group=RUNS[0], out=str(tmp_path), experiment="e"), broken)
    assert outcome.rows is None and outcome.message == "RuntimeError: boom second line"
    assert "Traceback" in outcome.detail
    tasks = [Task(group=RUNS[0], out=str(tmp_path), experiment="e")]
    assert [o.rows for _, o in InProcess(broken).run(tasks)] == [None]


def test_run_directories_are_written_file_by_file_with_result_json_last(tmp_path, monkeypatch):
    """A writer killed before result.json leaves a run that is not taken for finished; the next writer completes
    it and removes a dead writer's temporary file and an earlier attempt's error.txt."""
    import georecall.results.run as run_mod

    files = {"config.json": b"{}", "metrics.jsonl": b"", "result.json": b"{}"}
    target = tmp_path / "run"
    written = []
    real = run_mod.write_atomic

    def dying(path, data):
        if path.name == "result.json":
            raise KeyboardInterrupt  # the process is stopped here
        written.append(path.name)
        real(path, data)

    monkeypatch.setattr(run_mod, "write_atomic", dying)
    with pytest.raises(KeyboardInterrupt):
        write_run_files(files, target)
    assert written == ["config.json", "metrics.jsonl"] and not run_mod.is_complete(target)
    monkeypatch.setattr(run_mod, "write_atomic", real)
    (target / "error.txt").write_text("earlier attempt")
    dead = 2**22 + 12345  # beyond Linux's default pid_max: no such process
    (target / f".model.safetensors.{dead}.tmp").write_bytes(b"half")
    write_run_files(files, target)
    assert run_mod.is_complete(target) and sorted(os.listdir(target)) == sorted(files)
    with pytest.raises(ValueError, match="plain names"):
        write_run_files({"../x": b"", "result.json": b"{}"}, target)


@pytest.mark.parametrize("args, says", [
    (["--ray-address", "127.0.0.2:6379"], "--ray-address applies only with --executor ray"),
    (["--executor", "ray", "--ray-address", "127.0.0.2:1"], "no Ray cluster answers at 127.0.0.2:1"),
    (["--executor", "ray", "--ray-address", "head:port"], "a Ray address is host:port"),
    (["--executor", "slurm"], "Invalid value for '--executor'"),
])
def test_executor_options_are_checked_before_any_work(tmp_path, capsys, args, says):
    import json

    from georecall.cli import main

    spec = tmp_path / "s.json"
    spec.write_text(json.dumps({"name": "x", "base": {"task": {"n_subjects": 8, "n_relations": 2}},
                                "grid": {"seeds": [0]}}))
    if "answers" in says or "host:port" in says:  # checked by the Ray executor, which needs ray
        pytest.importorskip("ray")
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0], err
    assert not (tmp_path / "out" / "results.sqlite").exists()


def test_the_ray_executor_without_ray_says_how_to_install_it(monkeypatch):
    import builtins

    from georecall.training.executors import RayExecutor

    real = builtins.__import__

    def no_ray(name, *a, **k):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(ImportError, match=r'pip install "georecall\[ray\]"'):
        RayExecutor()


def test_a_size_that_cannot_fit_fails_its_runs_with_the_estimate_and_the_sweep_goes_on(tmp_path):
    huge = expand_grid(BASE, {"model.d_model": [10**23], "seeds": [0]})
    rep = run_sweep([*RUNS[:2], *huge], tmp_path, experiment="e")
    assert (rep.trained, rep.failed) == (2, 1)
    with ResultStore(tmp_path / "results.sqlite") as store:
        (row,) = store.rows(status="failed")
    assert row["error"].startswith("ValueError: training 1 member(s) of") and "PB of memory" in row["error"]
