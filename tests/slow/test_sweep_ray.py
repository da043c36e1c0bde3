"""A sweep on a real Ray cluster of two nodes (a head and a worker node, each its own `ray start` process on
this machine), whose worker node is killed mid-sweep: every run lands exactly once, with the results an
uninterrupted in-process sweep gives. Needs the ``ray`` extra; skipped without it."""

import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import torch
from store_snapshot import store_snapshot

from georecall.config import ModelConfig, RunConfig, TaskConfig, TrainConfig
from georecall.training.sweep import expand_grid, run_sweep

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

HEAD, WORKER = "127.0.0.2", "127.0.0.3"  # loopback addresses Ray does not rewrite to the machine's own


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HEAD, 0))
        return s.getsockname()[1]


def _ray_start(args, temp_dir, env):
    ray_cli = str(Path(sys.executable).with_name("ray"))
    # --block: the node lives as long as this process; it is stopped with SIGTERM (`ray stop` would stop every
    # Ray process on the machine).
    return subprocess.Popen([ray_cli, "start", *args, "--num-cpus=1", "--disable-usage-stats",
                             f"--temp-dir={temp_dir}", "--object-store-memory=80000000", "--block"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _wait(predicate, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _raylet_of(node: subprocess.Popen):
    kids = [(p, " ".join(p.cmdline())) for p in psutil.Process(node.pid).children(recursive=True)]
    return next(p for p, cmd in kids if "raylet" in cmd and "--raylet_socket_name" in cmd)


@pytest.fixture
def cluster(tmp_path):
    """A head node and a worker node, one CPU each; yields (address, worker node process)."""
    temp = Path(tempfile.mkdtemp(prefix="gr-ray-", dir="/tmp"))  # short: Ray's socket paths have a length limit
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "HOME": str(tmp_path), "RAY_AUTH_MODE": "disabled",
           # declare a killed node dead within seconds rather than the default ~15 s
           "RAY_health_check_period_ms": "500", "RAY_health_check_timeout_ms": "500",
           "RAY_health_check_failure_threshold": "3"}
    port = _free_port()
    head = _ray_start(["--head", f"--port={port}", f"--node-ip-address={HEAD}", "--include-dashboard=false"],
                      temp / "h", env)
    worker = None
    try:
        _wait(lambda: socket.socket().connect_ex((HEAD, port)) == 0, 60, "the head node")
        worker = _ray_start([f"--address={HEAD}:{port}", f"--node-ip-address={WORKER}"], temp / "w", env)
        os.environ.update({k: env[k] for k in ("RAY_USAGE_STATS_ENABLED", "RAY_AUTH_MODE")})
        ray.init(address=f"{HEAD}:{port}", log_to_driver=False)
        _wait(lambda: sum(n["Alive"] for n in ray.nodes()) == 2, 60, "the worker node to join")
        ray.shutdown()
        yield f"{HEAD}:{port}", worker
    finally:
        if ray.is_initialized():
            ray.shutdown()
        for node in (worker, head):
            if node is not None and node.poll() is None:
                node.send_signal(signal.SIGTERM)  # the `ray start` process drains its node
        for node in (worker, head):
            if node is not None:
                try:
                    node.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(node.pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.slow
def test_a_sweep_on_a_ray_cluster_survives_its_worker_node_dying(tmp_path, cluster):
    from georecall.training.executors import RayExecutor

    address, worker = cluster
    base = RunConfig(task=TaskConfig(n_subjects=16, n_relations=2), model=ModelConfig(d_model=8, d_mlp=32),
                     train=TrainConfig(steps=400, eval_every=200, stop_at_target=False))
    runs = expand_grid(base, {"model.d_model": [6, 8, 10, 12, 14, 16], "seeds": [0, 1]})  # six ensembles of two

    local = run_sweep(runs, tmp_path / "local", experiment="r")
    assert local.trained == 12

    killed = []

    def kill_when_busy():  # once the worker node runs an ensemble (Ray titles the process ray::<function>)
        end = time.monotonic() + 120
        while time.monotonic() < end:
            for p in psutil.Process(worker.pid).children(recursive=True):
                try:
                    busy = " ".join(p.cmdline()).startswith("ray::_ray_execute")
                except psutil.Error:
                    continue
                if busy:
                    time.sleep(0.5)  # mid-training
                    raylet = _raylet_of(worker)
                    raylet.send_signal(signal.SIGKILL)
                    killed.append(raylet.pid)
                    return
            time.sleep(0.05)

    with RayExecutor(address=address) as executor:
        assert sum(n["Alive"] for n in ray.nodes()) == 2
        killer = threading.Thread(target=kill_when_busy, daemon=True)
        killer.start()
        report = run_sweep(runs, tmp_path / "ray", experiment="r", executor=executor)
        killer.join(timeout=1)
        alive = sum(n["Alive"] for n in ray.nodes())
    assert killed and alive == 1, "the worker node was not lost"
    assert (report.total, report.trained, report.failed) == (12, 12, 0)
    assert report.retried >= 1  # the ensemble on the dead node was submitted again
    assert not ray.is_initialized()  # the executor closed its connection; the cluster is not ours to stop

    a, b = store_snapshot(tmp_path / "local"), store_snapshot(tmp_path / "ray")
    assert a.keys() == b.keys() and len(b) == 12  # every run, once (the store is keyed by run)
    for h in a:
        assert b[h][0] == "done" and a[h][1] == b[h][1]
        assert all(torch.equal(a[h][2][k], b[h][2][k]) for k in a[h][2]), "weights differ from the local run"
    dirs = [p for p in (tmp_path / "ray" / "r").iterdir()]
    assert len(dirs) == 12 and not list((tmp_path / "ray" / "r").glob("*/.*.tmp"))

    again = run_sweep(runs, tmp_path / "ray", experiment="r")
    assert (again.skipped, again.trained) == (12, 0)


@pytest.mark.slow
def test_the_ray_executor_starts_and_stops_a_local_instance(tmp_path, monkeypatch):
    """Without an address: a local Ray instance for the sweep, stopped by close()."""
    from georecall.training.executors import RayExecutor

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    base = RunConfig(task=TaskConfig(n_subjects=8, n_relations=2), model=ModelConfig(d_model=8, d_mlp=16),
                     train=TrainConfig(steps=5, eval_every=5))
    runs = expand_grid(base, {"model.d_model": [6, 8], "seeds": [0]})
    with RayExecutor(num_cpus=2, init_kwargs={"_temp_dir": tempfile.mkdtemp(prefix="gr-ray-", dir="/tmp")}) as ex:
        report = run_sweep(runs, tmp_path / "out", experiment="r", executor=ex)
    assert report.trained == 2 and not ray.is_initialized()
    here = run_sweep([dataclasses.replace(r) for r in runs], tmp_path / "here", experiment="r")
    assert here.trained == 2
    a, b = store_snapshot(tmp_path / "out"), store_snapshot(tmp_path / "here")
    assert a.keys() == b.keys() and all(a[h][1] == b[h][1] for h in a)
