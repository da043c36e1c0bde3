"""Shared test settings: tests run on the CPU with few threads so the fast tier fits 2 cores."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _cpu_threads():
    torch.set_num_threads(min(2, torch.get_num_threads()))
    yield


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
