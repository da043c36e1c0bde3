"""Executors: where a sweep's ensembles train.

A sweep is planned, executed and recorded (:func:`georecall.training.sweep.run_sweep`): the plan is a list
of :class:`Task` (one same-shape ensemble each); an executor maps them and yields each one's
:class:`Outcome` as it finishes; the sweep's own process alone records the store's rows.

- :class:`InProcess`: one after another in this process (the default; custom trainers run only here).
- :class:`ProcessPool`: local spawned processes (``--workers N``), kept for later sweeps of this process.
- :class:`RayExecutor`: tasks of a Ray cluster (``--executor ray``; ``pip install "georecall[ray]"``), an
  existing one at ``address`` or a local instance started for the sweep.
- :class:`SubmititExecutor`: Slurm jobs through submitit (``pip install submitit``), or local processes
  with ``cluster="local"``.

A worker that sees the sweep's output folder (a shared file system) writes the run directories itself,
crash-safely (:func:`georecall.results.write_run_files`); one that does not (another machine without the
folder) sends the files back and the sweep's process writes them. A task whose worker or node dies is
reported as :class:`WorkerLost`; the sweep submits it again (``retries``), and since a run's directory is
keyed by its config hash and written by rename, and its row by hash, its result lands exactly once even
when a lost task had in fact finished. The same seed gives the same bits whichever executor trains it
(on the CPU; see the README on GPUs).
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import secrets
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from georecall.config import RunConfig

log = logging.getLogger(__name__)

#: The file in a sweep's output folder whose token tells a worker it sees that folder.
TOKEN_FILE = ".georecall-sweep-token"

#: (config, run directory relative to the output folder, result.json as a dict, wall time) per member.
Row = tuple[RunConfig, str, dict[str, Any], float | None]


@dataclass(frozen=True)
class Task:
    """One ensemble to train: its config, where its run directories go, and its members' starting states."""

    group: RunConfig
    out: str
    experiment: str
    token: str = ""  # the output folder's token (:func:`folder_token`); empty: write there unconditionally
    init_states: Sequence[Mapping[str, torch.Tensor]] | None = None  # per member, for ``init_from`` groups


@dataclass
class Outcome:
    """What a task gives back: its members' rows, or the error that stopped it."""

    rows: list[Row] | None  # None: training raised (message and detail say what)
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)  # run dir -> files the worker did not write
    message: str = ""
    detail: str = ""

    @classmethod
    def failed(cls, err: BaseException) -> Outcome:
        """The outcome of a task that raised ``err`` (being handled): its one-line message and its traceback."""
        return cls(rows=None, message=f"{type(err).__name__}: {err}".replace("\n", " "), detail=traceback.format_exc())


class WorkerLost(Exception):  # noqa: N818 (an event the sweep handles, not an error it raises)
    """The worker or node running a task died (killed, out of memory, node lost); the sweep retries the task."""


def folder_token(out: Path) -> str:
    """Write a fresh token into ``out`` (:data:`TOKEN_FILE`) and return it; a worker that reads it back sees
    the folder and writes run directories there itself."""
    from georecall.results.atomic import write_atomic

    token = secrets.token_hex(8)
    write_atomic(out / TOKEN_FILE, token)
    return token


def _sees_folder(out: Path, token: str) -> bool:
    if not token:
        return True
    try:
        return (out / TOKEN_FILE).read_text() == token
    except OSError:
        return False


#: errno values that say the output folder cannot take more data (full disk, quota, read-only, file size limit).
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG})


def is_disk_full(err: BaseException) -> bool:
    """True for an error that says the disk (or quota) is full or read-only: no later write would succeed."""
    if isinstance(err, OSError) and err.errno in DISK_FULL_ERRNOS:
        return True
    import sqlite3

    return isinstance(err, sqlite3.OperationalError) and "disk is full" in str(err)


def execute(task: Task, trainer: Callable[..., Any] | None = None) -> Outcome:
    """Train one task's ensemble and write (or return) its members' run directories. Never raises for a
    training error: the outcome carries it, so the sweep records it and goes on."""
    from georecall.results import run_files, write_run_files
    from georecall.training.loop import train
    from georecall.training.sweep import run_dir_for, split_run

    trainer = trainer or train
    out = Path(task.out)
    try:
        if task.group.init_from is None:
            run = trainer(task.group)
        else:
            run = trainer(task.group, init_states=task.init_states)
        write_here = _sees_folder(out, task.token)
        rows: list[Row] = []
        files: dict[str, dict[str, bytes]] = {}
        for piece in split_run(run):
            rel = run_dir_for(piece.config, task.experiment)
            if write_here:
                write_run_files(run_files(piece), out / rel)
            else:
                files[rel] = run_files(piece)
            rows.append((piece.config, rel, dataclasses.asdict(piece.result), piece.result.wall_time_s))
        return Outcome(rows=rows, files=files)
    except Exception as err:  # a failing ensemble must not stop the sweep; KeyboardInterrupt does
        if is_disk_full(err):  # every later run would fail the same way: the sweep stops (what is written stays)
            raise
        return Outcome.failed(err)


class Executor(ABC):
    """Maps tasks to outcomes, yielding each ``(task, outcome)`` as it finishes, in any order."""

    name = "executor"

    @abstractmethod
    def run(self, tasks: Sequence[Task]) -> Iterator[tuple[Task, Outcome | WorkerLost]]:
        """Run ``tasks``; yield every one of them exactly once, with its outcome or :class:`WorkerLost`."""

    def close(self) -> None:  # noqa: B027 (most executors hold nothing)
        """Release what the executor holds (processes, a cluster connection)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InProcess(Executor):
    """One task after another in this process; ``trainer`` replaces :func:`~georecall.training.train`."""

    name = "in-process"

    def __init__(self, trainer: Callable[..., Any] | None = None) -> None:
        self.trainer = trainer

    def run(self, tasks: Sequence[Task]) -> Iterator[tuple[Task, Outcome | WorkerLost]]:
        for task in tasks:
            yield task, execute(task, self.trainer)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()


# ---------------------------------------------------------------------------------------------------
# Local worker processes

_POOL: tuple[Any, int, int] | None = None  # (executor, workers, torch threads), reused across sweeps


def _init_worker(threads: int, parent: int) -> None:
    """Set up a pool worker of the process ``parent``; exit at once if that process has already died.

    A worker killed with its parent must not live on: it would hold the pool's queues (each spawned
    worker holds both ends, so it never sees end-of-file) and the parent's stdout, and wait forever.
    """
    import signal

    try:  # Linux: die with the parent (a sweep killed with SIGKILL must not leave workers writing run directories)
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    # The signal covers only a parent that dies from now on; one killed while this worker was starting
    # (seconds of imports) has already left it to another parent.
    if os.getppid() != parent:
        os._exit(1)
    torch.set_num_threads(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops the workers


def worker_pool(workers: int) -> Any:
    """A process pool of ``workers`` spawned processes, kept for later sweeps of this process.

    Spawned (not forked: the parent may hold torch threads and open SQLite handles); each worker uses
    this process's torch thread count. Started once (a few seconds of imports per worker).
    """
    global _POOL
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    threads = torch.get_num_threads()
    if _POOL is not None and _POOL[1:] == (workers, threads):
        return _POOL[0]
    shutdown_pool()
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"), initializer=_init_worker,
                               initargs=(threads, os.getpid()))
    _POOL = (pool, workers, threads)
    return pool


def shutdown_pool(*, kill: bool = False) -> None:
    """Stop the kept worker pool (``kill``: terminate its processes at once, e.g. after Ctrl-C)."""
    global _POOL
    if _POOL is None:
        return
    pool = _POOL[0]
    _POOL = None
    if kill:
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.terminate()
    pool.shutdown(wait=not kill, cancel_futures=True)


class ProcessPool(Executor):
    """Tasks in ``workers`` local spawned processes (:func:`worker_pool`), each with this process's torch
    thread count. A dead worker breaks the pool: its tasks come back as :class:`WorkerLost` and the next
    :meth:`run` starts a fresh pool."""

    name = "process pool"

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers

    def run(self, tasks: Sequence[Task]) -> Iterator[tuple[Task, Outcome | WorkerLost]]:
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        if not tasks:
            return
        pool = worker_pool(self.workers)
        broken = False
        try:
            futures = {pool.submit(execute, t): t for t in tasks}
            pending = set(futures)
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in finished:
                    try:
                        outcome: Outcome | WorkerLost = f.result()
                    except BrokenProcessPool as err:  # a worker died (killed, out of memory)
                        broken = True
                        outcome = WorkerLost(f"worker process died: {err}")
                    yield futures[f], outcome
        except BaseException:
            shutdown_pool(kill=True)
            raise
        if broken:
            shutdown_pool(kill=True)  # a broken pool cannot take more work; the next run starts a fresh one


# ---------------------------------------------------------------------------------------------------
# Ray


def _ray_execute(task: Task, threads: int) -> Outcome:
    """A Ray task: train with the CPUs the task holds."""
    torch.set_num_threads(max(1, threads))
    return execute(task)


def check_ray_address(address: str, *, timeout: float = 5.0) -> None:
    """Refuse a ``host:port`` (or ``ray://host:port``) address that nothing answers at, at once (``ray.init``
    would wait minutes); other forms (``auto``) are left to Ray."""
    import socket

    if address == "auto":
        return
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit() or not host or not 0 < int(port) < 65536:
        raise ValueError(f"a Ray address is host:port, ray://host:port or auto, got {address!r}")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as err:
        raise ConnectionError(f"no Ray cluster answers at {address} ({err.strerror or err}); start one with "
                              "`ray start --head` or leave --ray-address out for a local instance") from None


class RayExecutor(Executor):
    """Tasks on a Ray cluster: an existing one at ``address`` (anything ``ray.init`` takes: ``host:port``,
    ``auto``, ``ray://host:10001``), or a local instance with ``num_cpus`` CPUs started here (and stopped
    by :meth:`close`). Each task holds ``cpus_per_task`` CPUs (and ``gpus_per_task`` GPUs).

    Every node needs georecall installed (the same version) and, for the workers to write run directories
    themselves, the sweep's output folder at the same path; without it they send the files back. Ray's own
    retries are off (``max_retries=0``): a task whose node dies comes back as :class:`WorkerLost`, and the
    sweep submits it again, so a retried task never counts twice.
    """

    name = "ray"

    def __init__(self, address: str | None = None, *, num_cpus: int | None = None, cpus_per_task: float = 1,
                 gpus_per_task: float = 0, init_kwargs: Mapping[str, Any] | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise ImportError('--executor ray needs Ray: pip install "georecall[ray]"') from None
        if cpus_per_task <= 0 or gpus_per_task < 0:
            raise ValueError(f"cpus_per_task must be > 0 and gpus_per_task >= 0, got {cpus_per_task}, {gpus_per_task}")
        self._ray = ray
        self._owns = False
        if not ray.is_initialized():
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            kwargs: dict[str, Any] = {"log_to_driver": False, **(init_kwargs or {})}
            if address:
                check_ray_address(address)
                ray.init(address=address, **kwargs)
            else:
                kwargs.setdefault("include_dashboard", False)
                kwargs.setdefault("object_store_memory", 256 * 2**20)
                ray.init(num_cpus=num_cpus, **kwargs)
            self._owns = True
        self._threads = max(1, int(cpus_per_task))
        self._remote = ray.remote(num_cpus=cpus_per_task, num_gpus=gpus_per_task, max_retries=0)(_ray_execute)

    def run(self, tasks: Sequence[Task]) -> Iterator[tuple[Task, Outcome | WorkerLost]]:
        ray = self._ray
        lost = (ray.exceptions.NodeDiedError, ray.exceptions.WorkerCrashedError, ray.exceptions.ObjectLostError,
                ray.exceptions.OwnerDiedError, ray.exceptions.RaySystemError, ray.exceptions.LocalRayletDiedError)
        refs = {self._remote.remote(t, self._threads): t for t in tasks}
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                ref = done[0]
                try:
                    outcome: Outcome | WorkerLost = ray.get(ref)
                except lost as err:
                    outcome = WorkerLost(f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
                except ray.exceptions.RayError as err:  # e.g. the task could not be unpickled on the node
                    if is_disk_full(err):  # raised in the task; Ray's error is also the task's OSError
                        raise
                    outcome = Outcome.failed(err)
                yield refs[ref], outcome
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise

    def close(self) -> None:
        if self._owns and self._ray.is_initialized():
            self._ray.shutdown()
        self._owns = False



# ---------------------------------------------------------------------------------------------------
# submitit (Slurm)


class SubmititExecutor(Executor):
    """One Slurm job per ensemble through submitit: ``cluster=None`` lets submitit pick (Slurm where
    ``sbatch`` exists), ``"local"`` runs the jobs as local processes (all at once), ``"debug"`` in this
    process. ``parameters`` go to ``update_parameters`` (``slurm_partition``, ``timeout_min``, ``gpus_per_node``,
    ...); job files and logs go under ``folder``. The output folder must be on a file system the nodes share.
    A job that ends without a result (preempted, cancelled, killed, over its time) comes back as
    :class:`WorkerLost` and the sweep submits it again.
    """

    name = "submitit"

    def __init__(self, folder: str | os.PathLike[str], *, cluster: str | None = None,
                 parameters: Mapping[str, Any] | None = None, poll_s: float = 0.5) -> None:
        try:
            import submitit
        except ImportError:
            raise ImportError("the submitit executor needs submitit: pip install submitit") from None
        self._submitit = submitit
        self._ex = submitit.AutoExecutor(folder=os.fspath(folder), cluster=cluster)
        params = {"timeout_min": 24 * 60, **({} if cluster == "debug" else {"cpus_per_task": 1}),
                  **(parameters or {})}
        self._ex.update_parameters(**params)
        self.poll_s = poll_s

    def run(self, tasks: Sequence[Task]) -> Iterator[tuple[Task, Outcome | WorkerLost]]:
        import time

        from submitit.core.utils import FailedJobError, UncompletedJobError

        jobs = {self._ex.submit(execute, t): t for t in tasks}
        pending = list(jobs)
        try:
            while pending:
                finished = [j for j in pending if j.done()]
                if not finished:
                    time.sleep(self.poll_s)
                    continue
                for job in finished:
                    pending.remove(job)
                    try:
                        outcome: Outcome | WorkerLost = job.result()
                    except UncompletedJobError as err:  # the job's process ended without a result
                        outcome = WorkerLost(f"job {job.job_id} ended without a result: {str(err).splitlines()[0]}")
                    except FailedJobError as err:  # it raised (execute catches training errors: a disk, a bug)
                        if "No space left on device" in str(err) or "disk is full" in str(err):
                            raise OSError(errno.ENOSPC, f"No space left on device (job {job.job_id})") from None
                        outcome = Outcome(rows=None, message=f"job {job.job_id} failed: {str(err).splitlines()[0]}",
                                          detail=str(err))
                    yield jobs[job], outcome
        except BaseException:
            for job in pending:
                job.cancel(check=False)
            raise
