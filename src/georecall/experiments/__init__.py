"""The experiments that test the paper's claims, one module each, by claim id (STYLE §4, §5)."""

from __future__ import annotations

import importlib
from types import ModuleType

#: Experiment id -> module. Modules are imported on demand (they pull in training and plotting).
EXPERIMENTS: dict[str, str] = {
    "constructions": "georecall.experiments.constructions",
    "threshold": "georecall.experiments.threshold",
    "frozen_control": "georecall.experiments.frozen_control",
    "multihop": "georecall.experiments.multihop",
    "capacity": "georecall.experiments.capacity",
    "superposition": "georecall.experiments.superposition",
    "intervention": "georecall.experiments.intervention",
    "transfer": "georecall.experiments.transfer",
}


def get_experiment(exp_id: str) -> ModuleType:
    """The module of experiment ``exp_id``; an unknown id raises ValueError listing the known ones."""
    if exp_id not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {exp_id!r}; choose from {', '.join(EXPERIMENTS)}")
    return importlib.import_module(EXPERIMENTS[exp_id])
