"""Run directories (save a training run, load it back, its provenance), the results store, and the
experiment result envelope.

``georecall.results.store`` and ``georecall.results.envelope`` are torch-free (the report and the
plotting layer read them); the run-directory names below load :mod:`georecall.results.run`, and with
it torch, only when first used.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["SCHEMA_VERSION", "TrainResult", "TrainRun", "is_complete", "load_run", "run_files", "run_meta", "save_run",
           "write_run_files"]


def __getattr__(name: str) -> Any:  # PEP 562: keep ``import georecall.results.store`` free of torch
    if name in __all__:
        return getattr(importlib.import_module("georecall.results.run"), name)
    raise AttributeError(f"module 'georecall.results' has no attribute {name!r}")
