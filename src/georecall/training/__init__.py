"""Training ensembles and scoring them."""

from georecall.training.evaluate import EvalResult, GenerationScore, evaluate, generate_cot, score_generation
from georecall.training.loop import Progress, build_model, lr_factor, resolve_device, train

__all__ = [
    "EvalResult",
    "GenerationScore",
    "Progress",
    "build_model",
    "evaluate",
    "generate_cot",
    "lr_factor",
    "resolve_device",
    "score_generation",
    "train",
]
