"""The ensemble-native decoder-only transformer (docs/theory.md §1.2), its hook sites and greedy CoT generation."""

from georecall.model.generate import generate_cot
from georecall.model.hooks import HookFn, HookPoint
from georecall.model.interop import to_hooked_transformer
from georecall.model.transformer import Transformer, init_generator, param_counts

__all__ = ["HookFn", "HookPoint", "Transformer", "generate_cot", "init_generator", "param_counts",
           "to_hooked_transformer"]
