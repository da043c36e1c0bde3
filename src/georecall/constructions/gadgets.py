"""The building blocks every construction shares: docs/theory.md §1.4's gadgets, weight pieces, and assembly.

* G4 positional table :func:`positional_table` and pointer head :func:`pointer_head` (fixed centre or
  relative offset), the uniform head of §2.2 :func:`uniform_head`, the block copy :func:`copy_blocks`;
* G1 gates :func:`gate_units` and the §2.2 selector MLP built from them :func:`selector_units`, G3
  erase units :func:`erase_units`, and :func:`concat_units` to put MLP units side by side;
* :func:`assemble`: the unpadded weights (each head with its own ``(d_k, d_v)``, each MLP with its own
  widths) counted, then zero-padded into a :func:`~georecall.constructions.base.zero_model`.

All pieces are numpy arrays in TransformerLens orientation (``W_Q[h] = (W_Q^h)^T`` and so on), built on a
:class:`~georecall.constructions.base.Layout` of named residual blocks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from georecall.constructions.base import (
    Layout,
    bits,
    dense_attention_count,
    dense_mlp_count,
    make_counts,
    zero_model,
)
from georecall.model import Transformer
from georecall.tasks import World

# A head's unpadded matrices: W_Q, W_K [d, d_k], W_V [d, d_v], W_O [d_v, d].
Head = dict[str, np.ndarray]


@dataclass(frozen=True, eq=False)
class Mlp:
    """An MLP's unpadded weights: ``W_in`` [d, w1], ``b_in`` [w1], optionally ``W_hidden`` [w1, w2] and
    ``b_hidden`` [w2] (a second hidden layer), ``W_out`` [w_last, d], ``b_out`` [d]."""

    w_in: np.ndarray
    b_in: np.ndarray
    w_out: np.ndarray
    b_out: np.ndarray
    w_hidden: np.ndarray | None = None
    b_hidden: np.ndarray | None = None

    @property
    def widths(self) -> list[int]:
        """Hidden widths, ``[w1]`` or ``[w1, w2]``."""
        return [self.w_in.shape[1]] + ([] if self.w_hidden is None else [self.w_hidden.shape[1]])


# ---------------------------------------------------------------------------------------------------
# Blocks of the residual stream


def add_blocks(lay: Layout, name: str, count: int, width: int) -> None:
    """Allocate ``name_0 .. name_{count-1}`` (``width`` each) contiguously, e.g. the tree ``S_0 .. S_{K-1}``."""
    for r in range(count):
        lay.add(f"{name}_{r}", width)


def span(lay: Layout, name: str) -> slice:
    """Block ``name``, or the contiguous run of blocks ``name_0 .. name_{K-1}`` (S, S')."""
    if name in lay.blocks:
        return lay[name]
    parts = [sl for key, sl in lay.blocks.items() if key.rpartition("_")[0] == name]
    if not parts or any(a.stop != b.start for a, b in zip(parts[:-1], parts[1:], strict=True)):
        raise KeyError(f"no block or contiguous run of blocks named {name!r}")
    return slice(parts[0].start, parts[-1].stop)


def coords(lay: Layout, name: str) -> np.ndarray:
    """The residual coordinates of :func:`span` ``(lay, name)`` as an index array."""
    sl = span(lay, name)
    return np.arange(sl.start, sl.stop)


def subject_tree(lay: Layout, codes: np.ndarray, m: int, n_vocab: int, *,
                 encode: Callable[[np.ndarray, int], np.ndarray] = bits) -> np.ndarray:
    """``W_E`` [V, d] whose subject rows hold the superposition ``sum_r iota_{S_r} encode(codes[r, s], m)``.

    ``codes`` [K, N] (subject s is token s); every other entry is 0, for the caller's relation codes etc.
    """
    w_e = np.zeros((n_vocab, lay.size))
    for r in range(codes.shape[0]):
        w_e[:codes.shape[1], lay[f"S_{r}"]] = encode(codes[r], m)
    return w_e


# ---------------------------------------------------------------------------------------------------
# Attention


def copy_blocks(lay: Layout, reads: list[str], writes: list[str], *, gain: float = 1.0) -> Head:
    """``W_V = Pi_reads`` [d, d_v] and ``W_O = gain iota_writes`` [d_v, d]: block ``reads[j]`` to ``writes[j]``.

    The value holds the read blocks side by side (``d_v`` = their total width); names resolve by :func:`span`.
    """
    srcs, dsts = [span(lay, r) for r in reads], [span(lay, w) for w in writes]
    widths = [sl.stop - sl.start for sl in srcs]
    if widths != [sl.stop - sl.start for sl in dsts]:
        raise AssertionError(f"blocks {reads} and {writes} differ in width")
    d, d_v = lay.size, sum(widths)
    w_v, w_o = np.zeros((d, d_v)), np.zeros((d_v, d))
    col = 0
    for src, dst, width in zip(srcs, dsts, widths, strict=True):
        w_v[src, col:col + width] = np.eye(width)
        w_o[col:col + width, dst] = gain * np.eye(width)
        col += width
    return {"W_V": w_v, "W_O": w_o}


def uniform_head(lay: Layout, reads: list[str], writes: list[str], *, gain: float) -> Head:
    """§2.2 head: ``W_Q = W_K = 0`` (``d_k = 1``), so two positions get 1/2 each exactly; copies ``reads``."""
    d = lay.size
    return {"W_Q": np.zeros((d, 1)), "W_K": np.zeros((d, 1)), **copy_blocks(lay, reads, writes, gain=gain)}


def positional_table(lay: Layout, n_ctx: int) -> np.ndarray:
    """``W_pos`` [T, d]: ``(1, t, t^2)`` in block Pi (gadget G4)."""
    t = np.arange(n_ctx, dtype=np.float64)
    w_pos = np.zeros((n_ctx, lay.size))
    w_pos[:, lay["Pi"]] = np.stack([np.ones_like(t), t, t * t], axis=1)
    return w_pos


def pointer_head(lay: Layout, beta: float, *, reads: list[str], writes: list[str], center: float | None = None,
                 offset: int | None = None, gain: float = 1.0) -> Head:
    """G4 quadratic pointer (docs/theory.md §1.4), copying blocks ``reads`` into ``writes`` (times ``gain``).

    Give exactly one target: ``center`` c, a fixed position (query ``beta (-c^2, 2c, -1)`` from the constant
    coordinate), or ``offset`` o, the relative position ``t - o`` (query ``beta (-(t-o)^2, 2(t-o), -1)``).
    With key ``(1, u, u^2)`` the score is ``-beta (u - c)^2`` either way. With ``c = 1/2`` positions 0 and 1
    share the mass and ``gain = 2`` undoes the 1/2.
    """
    if (center is None) == (offset is None):
        raise ValueError("give exactly one of center (fixed target) and offset (relative target)")
    # Column convention (docs/theory.md §1.4): row j gives q_j from the key coordinates (1, t, t^2).
    if center is None:
        o = float(offset)
        q_mat = beta * np.array([[-o * o, 2 * o, -1.0], [-2 * o, 2.0, 0.0], [-1.0, 0.0, 0.0]])
    else:
        c = float(center)
        q_mat = beta * np.array([[-c * c, 0.0, 0.0], [2 * c, 0.0, 0.0], [-1.0, 0.0, 0.0]])
    d, pi = lay.size, lay["Pi"]
    w_q = np.zeros((d, 3))
    w_q[pi] = q_mat.T  # TL orientation: W_Q[h] = (W_Q^h)^T
    w_k = np.zeros((d, 3))
    w_k[pi] = np.eye(3)
    return {"W_Q": w_q, "W_K": w_k, **copy_blocks(lay, reads, writes, gain=gain)}


# ---------------------------------------------------------------------------------------------------
# MLP units


def gate_units(d_in: int, d_out: int, bit_coords: np.ndarray, rel_coords: np.ndarray, out_coords: np.ndarray,
               *, weight: float = 2.0) -> Mlp:
    """G1 gates: unit ``(r, i)`` (hidden unit ``r m + i``) is ``ReLU(x[bit_coords[r, i]] + x[rel_coords[r]] - 1)``.

    For 0/1 inputs that is ``b_i [r = r*]``; it writes ``weight`` on ``out_coords[r, i]``. ``bit_coords``
    and ``out_coords`` [K, m], ``rel_coords`` [K]; input width ``d_in``, output width ``d_out``; ``b_out = 0``.
    """
    k_rel, m = bit_coords.shape
    w = k_rel * m
    u = np.arange(w)
    w_in, w_out = np.zeros((d_in, w)), np.zeros((w, d_out))
    w_in[bit_coords.reshape(w), u] = 1.0
    w_in[np.repeat(rel_coords, m), u] = 1.0
    w_out[u, out_coords.reshape(w)] = weight
    return Mlp(w_in, -np.ones(w), w_out, np.zeros(d_out))


def selector_units(lay: Layout, n_relations: int, m: int, *, read_bits: str = "S", read_rel: str = "Z") -> Mlp:
    """§2.2 selector: unit ``(r, i)`` = ``ReLU(bit_{r,i} + z_r - 1)`` (G1), output ``A = 2 sum - 1``.

    Bits are read from blocks ``{read_bits}_r`` (m each), the relation one-hot from block ``read_rel``.
    """
    bit_coords = np.stack([coords(lay, f"{read_bits}_{r}") for r in range(n_relations)])  # [K, m]
    out_coords = np.tile(coords(lay, "A"), (n_relations, 1))  # [K, m]
    gates = gate_units(lay.size, lay.size, bit_coords, coords(lay, read_rel), out_coords)
    b_out = np.zeros(lay.size)
    b_out[lay["A"]] = -1.0
    return dataclasses.replace(gates, b_out=b_out)


def selector_gate_units(n_relations: int, m: int) -> tuple[tuple[int, ...], ...]:
    """Hidden units of relation r's gates in :func:`gate_units`: ``(r*m, ..., r*m + m - 1)`` per relation."""
    return tuple(tuple(range(r * m, (r + 1) * m)) for r in range(n_relations))


def erase_units(lay: Layout, blocks: list[str]) -> Mlp:
    """G3 erase: units ``ReLU(x_i)``, ``ReLU(-x_i)`` with outputs ``-1``, ``+1`` add exactly ``-x_i``."""
    d = lay.size
    cs = np.concatenate([coords(lay, b) for b in blocks])
    w = 2 * len(cs)
    w_in, w_out = np.zeros((d, w)), np.zeros((w, d))
    units = np.arange(len(cs))
    w_in[cs, 2 * units] = 1.0
    w_out[2 * units, cs] = -1.0
    w_in[cs, 2 * units + 1] = -1.0
    w_out[2 * units + 1, cs] = 1.0
    return Mlp(w_in, np.zeros(w), w_out, np.zeros(d))


def concat_units(*parts: Mlp) -> Mlp:
    """One MLP holding the hidden units of one-hidden-layer ``parts`` side by side (output biases add)."""
    if any(p.w_hidden is not None for p in parts):
        raise ValueError("concat_units takes one-hidden-layer MLPs only")
    return Mlp(np.concatenate([p.w_in for p in parts], axis=1), np.concatenate([p.b_in for p in parts]),
               np.concatenate([p.w_out for p in parts], axis=0), sum(p.b_out for p in parts))


# ---------------------------------------------------------------------------------------------------
# Arguments and assembly


def check_chain_args(world: World, n_hops: int, beta: float | None) -> None:
    """Arguments of the chain constructions: ``n_hops >= 1``, ``beta > 0`` (None: no pointer), shared attributes."""
    if n_hops < 1:
        raise ValueError(f"n_hops must be >= 1, got {n_hops}")
    if beta is not None and not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    if world.attributes != "shared":
        raise ValueError(f"these constructions need shared attributes (chains compose), "
                         f"got {world.attributes!r}")


def assemble(*, w_e: np.ndarray, w_pos: np.ndarray | None, heads: list[list[Head]], mlps: list[Mlp] | None,
             w_u: np.ndarray | None, n_ctx: int, dtype: torch.dtype
             ) -> tuple[Transformer, dict[str, int], dict[str, Any]]:
    """Count the unpadded weights, zero-pad them into a :func:`zero_model`, and return model, counts, dims.

    ``w_e`` [V, d]; ``w_pos`` [T, d] or None (positions unused, counted 0); ``heads[l]`` the heads of layer
    l; ``mlps[l]`` its MLP, or ``mlps=None`` for an attention-only model; ``w_u`` [d, V], or None for the
    tied readout ``W_E^T`` (counted 0). Heads are padded to the largest ``d_k``/``d_v`` and MLPs to the
    largest widths: the padding is zero, so the model computes exactly the unpadded build.

    Counts are the theory's dense minimal ones of the unpadded weights. ``dims`` holds ``d_model``,
    ``mlp_widths`` (every layer's hidden widths in order), ``n_layers``, ``n_heads``, ``heads``
    (``[(d_k, d_v)]`` per layer) and ``n_ctx``.
    """
    v, d = w_e.shape
    if mlps is not None and len(mlps) != len(heads):
        raise ValueError(f"{len(heads)} attention layers but {len(mlps)} MLPs")
    for layer in heads:
        for h in layer:
            if h["W_K"].shape != h["W_Q"].shape or h["W_O"].shape != h["W_V"].shape[::-1]:
                raise AssertionError(f"head shapes disagree: { {k: a.shape for k, a in h.items()} }")
    head_dims = [[(h["W_Q"].shape[1], h["W_V"].shape[1]) for h in layer] for layer in heads]
    layer_widths = [] if mlps is None else [mlp.widths for mlp in mlps]
    if len({len(w) for w in layer_widths}) > 1:
        raise ValueError("every layer's MLP needs the same number of hidden layers")
    two_hidden = bool(layer_widths) and len(layer_widths[0]) == 2
    model = zero_model(d_model=d, d_vocab=v, n_ctx=n_ctx, n_layers=len(heads),
                       n_heads=max(len(layer) for layer in heads),
                       d_head=max(max(dk, dv) for layer in head_dims for dk, dv in layer),
                       d_mlp=max((w[0] for w in layer_widths), default=1),
                       d_mlp2=max(w[1] for w in layer_widths) if two_hidden else None,
                       attn_only=mlps is None, tie_unembed=w_u is None, dtype=dtype)
    _load(model, w_e=w_e, w_pos=w_pos, heads=heads, mlps=mlps, w_u=w_u)
    params = make_counts(
        embedding=w_e.size,
        positional=0 if w_pos is None else w_pos.size,
        attention=sum(dense_attention_count(d, layer) for layer in head_dims),
        mlp=sum(dense_mlp_count(d, widths) for widths in layer_widths),
        unembedding=0 if w_u is None else w_u.size,
    )
    dims: dict[str, Any] = {"d_model": d, "mlp_widths": [w for widths in layer_widths for w in widths],
                            "n_layers": len(heads), "n_heads": model.cfg.n_heads, "heads": head_dims,
                            "n_ctx": n_ctx}
    return model, params, dims


def _put(p: torch.Tensor, value: np.ndarray, padded: tuple[int, ...] = ()) -> None:
    """Copy ``value`` into the leading corner of ``p``; only the axes in ``padded`` may be longer in ``p``."""
    ok = len(p.shape) == value.ndim and all(
        a == b or (i in padded and a > b) for i, (a, b) in enumerate(zip(p.shape, value.shape, strict=True)))
    if not ok:
        raise AssertionError(f"shape mismatch: parameter {tuple(p.shape)}, weights {value.shape}")
    p[tuple(slice(0, n) for n in value.shape)].copy_(torch.from_numpy(value).to(p.dtype))


@torch.no_grad()
def _load(model: Transformer, *, w_e: np.ndarray, w_pos: np.ndarray | None, heads: list[list[Head]],
          mlps: list[Mlp] | None, w_u: np.ndarray | None) -> None:
    """Copy the unpadded weights into member 0 of ``model``, zero-padding heads and MLP widths."""
    _put(model.embed.W_E[0], w_e)
    if w_pos is not None:
        _put(model.pos_embed.W_pos[0], w_pos)
    for layer, block in enumerate(model.blocks):
        for h, head in enumerate(heads[layer]):
            _put(block.attn.W_Q[0, h], head["W_Q"], padded=(1,))
            _put(block.attn.W_K[0, h], head["W_K"], padded=(1,))
            _put(block.attn.W_V[0, h], head["W_V"], padded=(1,))
            _put(block.attn.W_O[0, h], head["W_O"], padded=(0,))
        if mlps is not None:  # units beyond a layer's width stay zero: ReLU(0) = 0 adds nothing
            mlp = mlps[layer]
            _put(block.mlp.W_in[0], mlp.w_in, padded=(1,))
            _put(block.mlp.b_in[0], mlp.b_in, padded=(0,))
            if mlp.w_hidden is not None:
                _put(block.mlp.W_hidden[0], mlp.w_hidden, padded=(0, 1))
                _put(block.mlp.b_hidden[0], mlp.b_hidden, padded=(0,))
            _put(block.mlp.W_out[0], mlp.w_out, padded=(0,))
            _put(block.mlp.b_out[0], mlp.b_out)
    if w_u is not None:
        _put(model.unembed.W_U[0], w_u)
