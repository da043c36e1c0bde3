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
    "real_lm": "georecall.experiments.real_lm",
}


#: Experiment id -> the optional extras it needs: {importable module: pip extra}. Checked without importing
#: (so the report, which must not import torch, can say how to enable a skipped experiment).
REQUIRES: dict[str, dict[str, str]] = {
    "superposition": {"sklearn": "probes"},
    "real_lm": {"transformers": "lm", "gguf": "lm", "accelerate": "lm", "sklearn": "probes"},
}


def missing_extras(exp_id: str) -> list[str]:
    """The pip extras ``exp_id`` needs that are not installed (``[]`` when it can run)."""
    import importlib.util

    return sorted({extra for mod, extra in REQUIRES.get(exp_id, {}).items() if importlib.util.find_spec(mod) is None})


def extras_hint(exp_id: str) -> str:
    """One line: what ``exp_id`` needs and how to install it; ``""`` when nothing is missing."""
    extras = missing_extras(exp_id)
    if not extras:
        return ""
    names = ",".join(extras)
    return (f"experiment {exp_id} needs the optional extra(s) {names}: pip install -c constraints.txt "
            f"-e '.[{names}]' (or pip install 'georecall[{names}]')")


def get_experiment(exp_id: str) -> ModuleType:
    """The module of experiment ``exp_id``; an unknown id raises ValueError listing the known ones."""
    if exp_id not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {exp_id!r}; choose from {', '.join(EXPERIMENTS)}")
    return importlib.import_module(EXPERIMENTS[exp_id])
