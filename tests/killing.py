"""SIGKILL a command started by a test and check that nothing it started outlives it.

A command killed with SIGKILL must take its worker processes with it: one that lives on holds the
command's stdout and stderr (a test reading them would wait forever) and keeps writing. Start the command
with ``start_new_session=True`` so that whatever outlives it can be found and cleaned up here.
"""

from __future__ import annotations

import os
import signal
import subprocess

import pytest


def kill_and_reap(proc: subprocess.Popen, *, grace: float = 60.0) -> tuple[str, str]:
    """SIGKILL ``proc``; return its (stdout, stderr) once every process holding them has exited.

    Fails the test, after killing its session, if something ``proc`` started still holds them after
    ``grace`` seconds (a worker that did not die with its parent).
    """
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    try:
        out, err = proc.communicate(timeout=grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
        pytest.fail(f"processes started by pid {proc.pid} outlived its SIGKILL by over {grace:.0f} s")
    return out or "", err or ""
