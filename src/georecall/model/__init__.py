"""The ensemble-native decoder-only transformer (THEORY §1.2) and its hook sites."""

from georecall.model.hooks import HookFn, HookPoint
from georecall.model.interop import to_hooked_transformer
from georecall.model.transformer import Transformer, init_generator, param_counts

__all__ = ["HookFn", "HookPoint", "Transformer", "init_generator", "param_counts", "to_hooked_transformer"]
