"""Shared test settings: tests run on the CPU with one torch thread (benchmarks/threads.py: two threads ran
small trainings 4-13x slower on our 2-core machines, quiet or loaded)."""

import os
import sys

import pytest
import torch
from hypothesis import settings

# Property tests draw the same examples on every run ("ci", the default), so a change that passes once
# passes in CI too; their properties are still checked on every example drawn. A random campaign that
# explores new inputs: --hypothesis-profile explore (and --hypothesis-seed to replay what it found).
settings.register_profile("ci", derandomize=True, database=None)
settings.register_profile("explore")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Shared helpers that are not tests (tests/pagecheck.py) import from this folder.
sys.path.insert(0, os.path.dirname(__file__))


@pytest.fixture(autouse=True, scope="session")
def _cpu_threads():
    torch.set_num_threads(1)
    yield


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
