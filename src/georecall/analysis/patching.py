"""Activation patching: which activation carries which part of a query.

The method (as in TransformerLens's ``patching.py``): run the model on a *source* input and cache the
activation at one hook site; rerun it on a *clean* input with that site's activation at some positions
replaced by the cached one; read the clean run's output. If the patched output follows the source, the
patched activation (at those positions) carries everything the output depends on that differs between
the two inputs; if it follows the clean input, it carries none of it.

Here a clean query ``(s, r)`` is paired with a source ``(s, r')`` of the same subject and another
relation, so the only difference is the relation. :func:`relation_patching` reports per site ``switch``
(the patched model answers the source's ``f_{r'}(s)``) and ``keep`` (it still answers ``f_r(s)``). On
the selector (docs/theory.md §2.2), patching ``hook_embed`` at position 1 swaps the relation token and
switches every answer; the head's output ``hook_attn_out`` at position 1 is the subject's blocks only and
keeps every answer; the gated hidden units ``mlp.hook_post`` switch every answer.

:func:`patch_logits` is the one generic function; the rest are thin wrappers. Every run is a full
forward (all positions computed), so a hook sees ``[1, B, T, ...]``; the sequence axis patched is axis 2,
except for the attention pattern and scores (``[1, B, H, T_q, T_k]``), where it is the query axis 3.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from georecall.analysis._eval import queries_for, require_single, require_single_hop
from georecall.model import Transformer
from georecall.tasks import World, rng_for

PATCH_STREAM = 0x9A7C
ANSWER_POSITION = 1
DEFAULT_SITES = ("hook_embed", "blocks.0.hook_attn_out", "blocks.0.mlp.hook_post", "blocks.0.hook_resid_mid")

# Every site the architecture can have (model/transformer.py); a given model has a subset of them
# (no MLP sites when attention-only, no LayerNorm sites without LayerNorm, no hook_*2 with one hidden layer).
_ARCHITECTURE_SITES = re.compile(
    r"hook_embed|hook_pos_embed|ln_final\.hook_(scale|normalized)"
    r"|blocks\.(?P<layer>\d+)\.(hook_(resid_pre|attn_out|resid_mid|mlp_out|resid_post)"
    r"|ln[12]\.hook_(scale|normalized)|attn\.hook_(q|k|v|attn_scores|pattern|z)|mlp\.hook_(pre|post)2?)")


def has_site(model: Transformer, site: str) -> bool:
    """Whether ``model`` has hook ``site``: True if it does, False if the architecture has such a site
    but this model lacks it (e.g. ``blocks.0.mlp.hook_post`` of an attention-only model).

    Raises ValueError for a name that is no site of the architecture, or of a layer the model lacks.
    """
    if site in model.hook_names():
        return True
    match = _ARCHITECTURE_SITES.fullmatch(site)
    if match is None or (match["layer"] is not None and int(match["layer"]) >= model.cfg.n_layers):
        raise ValueError(f"unknown hook site {site!r}; the model's sites are {model.hook_names()}")
    return False


def require_site(model: Transformer, site: str) -> None:
    """ValueError unless ``model`` has hook ``site``."""
    if not has_site(model, site):
        raise ValueError(f"the model has no hook site {site!r} (its sites are {model.hook_names()})")


def seq_axis(site: str) -> int:
    """The axis of an activation at ``site`` that indexes (query) positions."""
    return 3 if site.endswith(("attn.hook_pattern", "attn.hook_attn_scores")) else 2


@torch.no_grad()
def site_activation(model: Transformer, tokens: torch.Tensor, site: str) -> torch.Tensor:
    """The activation at ``site`` of a full forward (every position) on ``tokens`` [B, T], E axis included
    (``[1, B, T, ...]``), detached; the logits are never computed."""
    require_site(model, site)
    cache: list[torch.Tensor] = []

    def save(act: torch.Tensor, hook) -> None:
        cache.append(act.detach())

    with model.hooks([(site, save)]):
        model.residual(tokens.to(model.embed.W_E.device))
    return cache[0]


@torch.no_grad()
def patch_logits(model: Transformer, clean_tokens: torch.Tensor, source_tokens: torch.Tensor, site: str,
                 positions: Sequence[int], *, answer_position: int = ANSWER_POSITION,
                 chunk: int = 4096) -> torch.Tensor:
    """Logits of the clean run with ``site`` patched from the source run at ``positions``: ``[B, V]``.

    ``clean_tokens`` and ``source_tokens`` [B, T] are paired row by row; the logits are read at
    ``answer_position`` (float32, CPU). ``positions`` index the sequence axis (:func:`seq_axis`).
    """
    require_single(model)
    require_site(model, site)
    if clean_tokens.shape != source_tokens.shape or clean_tokens.dim() != 2:
        raise ValueError(f"clean and source tokens must both be [B, T], got {tuple(clean_tokens.shape)} "
                         f"and {tuple(source_tokens.shape)}")
    t = clean_tokens.shape[1]
    pos = [int(p) for p in positions]
    if not pos or any(not 0 <= p < t for p in pos):
        raise ValueError(f"positions must be a non-empty list in [0, {t}), got {list(positions)}")
    if not 0 <= answer_position < t:
        raise ValueError(f"answer_position {answer_position} outside [0, {t})")
    device = model.embed.W_E.device
    axis = seq_axis(site)
    out = []
    for start in range(0, clean_tokens.shape[0], chunk):
        clean = clean_tokens[start:start + chunk].to(device)
        source = site_activation(model, source_tokens[start:start + chunk], site)

        def patch(act: torch.Tensor, hook, _source=source) -> torch.Tensor:
            act = act.clone()
            index = (slice(None),) * axis + (pos,)
            act[index] = _source[index]
            return act

        with model.hooks([(site, patch)]):
            resid = model.residual(clean)[:, :, [answer_position]]  # every position computed, one unembedded
        logits = model.unembed_residual(resid)[0, :, 0]  # [b, V]
        out.append(logits.float().cpu())
    return torch.cat(out)


@dataclass(frozen=True)
class PatchScore:
    """Shares of the ``n`` patched queries answering the source's answer (``switch``) or the clean one (``keep``)."""

    switch: float
    keep: float
    n: int


def relation_pairs(world: World, *, n_queries: int | None = None, seed: int = 0
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clean queries ``(s, r)`` and a source relation ``r'`` each: ``subjects, relations, sources`` [B].

    All N·K queries (or ``n_queries`` of them drawn without replacement); ``r'`` is drawn uniformly among
    the relations ``!= r`` whose answer for s differs from ``f_r(s)``, so that switch and keep exclude each
    other; queries with no such relation are dropped (B can be below ``n_queries``). Seeded.
    """
    n, k_rel = world.n_subjects, world.n_relations
    if k_rel < 2:
        raise ValueError(f"relation patching needs K >= 2 relations, the world has {k_rel}")
    rng = rng_for(seed, PATCH_STREAM)
    total = n * k_rel
    if n_queries is None:
        flat = np.arange(total)
    else:
        if n_queries < 1:
            raise ValueError(f"n_queries must be >= 1, got {n_queries}")
        flat = np.sort(rng.choice(total, size=min(n_queries, total), replace=False))
    s, r = flat % n, flat // n
    tokens = np.stack([queries_for(world, np.arange(n), np.full(n, q)).targets for q in range(k_rel)])  # [K, N]
    # Candidates: relations r' != r with a different answer token; pick one uniformly via random keys.
    ok = tokens[:, s].T != tokens[r, s][:, None]  # [B, K]; False at r' = r
    keys = np.where(ok, rng.random(ok.shape), -1.0)
    keep = ok.any(axis=1)
    return s[keep], r[keep], keys.argmax(axis=1)[keep]


def relation_patching(model: Transformer, world: World, *, sites: Sequence[str] = DEFAULT_SITES,
                      position: int = ANSWER_POSITION, n_queries: int | None = None,
                      seed: int = 0) -> dict[str, PatchScore]:
    """Patch each site at ``position`` from ``(s, r')`` into ``(s, r)`` and score the answers (module docstring).

    Returns ``{site: PatchScore}`` in the order of ``sites``. Sites of the architecture that this model
    lacks (the MLP sites of an attention-only model) are left out of the dict; a name that is no site at
    all raises ValueError. Pairs from :func:`relation_pairs` (``n_queries``, ``seed``).
    """
    require_single(model)
    require_single_hop(model, world)
    present = [site for site in sites if has_site(model, site)]
    s, r, r_src = relation_pairs(world, n_queries=n_queries, seed=seed)
    clean, source = queries_for(world, s, r), queries_for(world, s, r_src)
    out = {}
    for site in present:
        pred = patch_logits(model, clean.tokens, source.tokens, site, (position,)).argmax(-1).numpy()
        n = len(pred)
        out[site] = PatchScore(switch=float((pred == source.targets).mean()) if n else float("nan"),
                               keep=float((pred == clean.targets).mean()) if n else float("nan"), n=n)
    return out
