"""Hand one member to TransformerLens's ``HookedTransformer`` (an outside oracle; optional dependency).

Needs ``transformer-lens>=3.9,<4`` (``pip install 'georecall[tl]'``): 4.x removed ``HookedTransformer``.
Only one-hidden-layer MLPs have a TransformerLens counterpart.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from georecall.model.transformer import LN_EPS, Transformer


def to_hooked_transformer(model: Transformer, member: int = 0) -> Any:
    """A ``HookedTransformer`` whose logits equal member ``member``'s (positions 0-based, no BOS)."""
    try:
        from transformer_lens import HookedTransformer, HookedTransformerConfig
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("to_hooked_transformer needs transformer-lens>=3.9,<4: "
                          "pip install 'georecall[tl]'") from err
    cfg = model.cfg
    if cfg.d_mlp2 is not None:
        raise ValueError("TransformerLens has no two-hidden-layer MLP")
    tl_cfg = HookedTransformerConfig(
        n_layers=cfg.n_layers, d_model=cfg.d_model, n_ctx=model.n_ctx, d_head=cfg.head_dim,
        n_heads=cfg.n_heads, d_mlp=None if cfg.attn_only else cfg.d_mlp, d_vocab=model.d_vocab,
        act_fn="relu", attn_only=cfg.attn_only, normalization_type="LN" if cfg.layernorm else None,
        eps=LN_EPS, use_attn_scale=True, attn_scale=1.0 / cfg.scale, positional_embedding_type="standard",
        default_prepend_bos=False, device="cpu", dtype=model.embed.W_E.dtype,
    )
    with warnings.catch_warnings():  # 3.x warns that 4.0 drops the class; that is why we pin <4
        warnings.filterwarnings("ignore", message="HookedTransformer is deprecated", category=DeprecationWarning)
        tl = HookedTransformer(tl_cfg)
    ours = {k: v[member].detach().cpu() for k, v in model.state_dict().items()}
    if cfg.tie_unembed:
        ours["unembed.W_U"] = ours["embed.W_E"].T.contiguous()
    state = tl.state_dict()
    for key in state:
        if key in ours:
            state[key] = ours[key]
        elif key.endswith((".b_Q", ".b_K", ".b_V", ".b_O")):  # our model built without attention biases
            state[key] = torch.zeros_like(state[key])
    tl.load_state_dict(state)
    return tl.eval()
