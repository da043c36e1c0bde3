"""Named hook sites: an identity module at each activation, and hooks that only live inside a ``with``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

#: A hook gets the activation and the HookPoint (``hook.name``); returning a tensor replaces the activation.
HookFn = Callable[[torch.Tensor, "HookPoint"], Any]


class HookPoint(nn.Module):
    """Identity at a named activation site. Hooks are attached through :meth:`Transformer.hooks` only."""

    def __init__(self) -> None:
        super().__init__()
        self.name: str = ""  # set by the owning model to its dotted module path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def add_hook(self, fn: HookFn) -> torch.utils.hooks.RemovableHandle:
        def _call(module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> Any:
            return fn(output, self)

        return self.register_forward_hook(_call)

    @property
    def n_hooks(self) -> int:
        return len(self._forward_hooks)
