"""Single hop, shared attributes (Theorem 4.1, THEORY §2): the selector, its 3-layer-MLP variant, attention-only.

All three store the facts only in the subject embeddings, as a *superposition* of per-relation codes:
subject s holds the code of ``f_r(s)`` in its own block ``S_r`` for every relation r. Attention (and the
MLP) are fact-free; the unembedding reads the ±1 code ``c(a)`` of the answer from block ``A``.

Layouts (column convention of THEORY; our weights are the TransformerLens transposes):

* selector:        ``S_0 .. S_{K-1}`` (m each, 0/1 bits), ``Z`` (K, relation one-hot), ``A`` (m)
* selector-mlp3:   ``S_0 .. S_{K-1}`` (m each), ``Z`` (l, ±1 relation code), ``A`` (m)
* attention-only:  ``S_0 .. S_{K-1}`` (m each, ±1 codes), ``Z`` (K), ``sigma`` (1), ``A`` (m)

``c.notes`` of every construction here (and of :mod:`georecall.constructions.disjoint`) holds the
``layout``, how block ``S_r`` encodes an attribute (``subject_code``: ``"bits"`` or ``"signs"``, plus
``code_offset`` per relation), and, where there is an MLP, the hook site and unit slices of the
per-relation gates (``gate_hook``, ``gate_units[r]``), so probing, ablation and :func:`edit_fact` need
no knowledge of the weights.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch

from georecall.config import TaskConfig
from georecall.constructions.base import (
    Construction,
    Layout,
    bits,
    dense_attention_count,
    dense_mlp_count,
    make_counts,
    n_bits,
    signs,
    zero_model,
)
from georecall.model import Transformer
from georecall.tasks import World

N_CTX = 2  # a single-hop query is (s, r); the answer is read at position 1


# ---------------------------------------------------------------------------------------------------
# Shared helpers (also used by constructions.disjoint)


def _selector_layout(n_relations: int, m: int, *, z_width: int | None = None, sigma: bool = False,
                     answer_block: bool = True) -> Layout:
    """Blocks ``S_0..S_{K-1}`` (m each), ``Z`` (``z_width``, default K), optional ``sigma`` (1), ``A`` (m)."""
    lay = Layout()
    for r in range(n_relations):
        lay.add(f"S_{r}", m)
    lay.add("Z", n_relations if z_width is None else z_width)
    if sigma:
        lay.add("sigma", 1)
    if answer_block:
        lay.add("A", m)
    return lay


def selector_blocks(n_subjects: int, n_relations: int) -> Layout:
    """The residual layout of the selector (THEORY §2.2): ``S_r`` blocks of m, ``Z`` (K), ``A`` (m).

    ``lay[f"S_{r}"]`` is the block where a subject embedding holds ``b(f_r(s))``: the linear probe
    ``b(f_r(s)) = Pi_{S_r} E[:, s]``. Its MLP unit ``(r, i)`` is hidden unit ``r*m + i``.
    """
    if n_subjects < 2 or n_relations < 1:
        raise ValueError(f"need n_subjects >= 2 and n_relations >= 1, got {n_subjects}, {n_relations}")
    return _selector_layout(n_relations, n_bits(n_subjects))


def _s_span(lay: Layout, n_relations: int) -> slice:
    """All of ``S = (S_0, ..., S_{K-1})``, which the layouts allocate contiguously."""
    return slice(lay["S_0"].start, lay[f"S_{n_relations - 1}"].stop)


def _load(model: Transformer, weights: dict[str, np.ndarray]) -> None:
    """Copy per-member weights (no ensemble axis) into member 0 under our state-dict keys, checking shapes."""
    with torch.no_grad():
        for key, value in weights.items():
            p = model.get_parameter(key)
            if tuple(value.shape) != tuple(p.shape[1:]):
                raise AssertionError(f"{key}: built {tuple(value.shape)}, model has {tuple(p.shape[1:])}")
            p[0].copy_(torch.as_tensor(value, dtype=p.dtype))


def _check_head_padding(model: Transformer, heads: list[list[tuple[int, int]]]) -> None:
    """Every head is zero outside its declared ``(d_k, d_v)``: the padded build computes the unpadded one."""
    for layer, layer_heads in enumerate(heads):
        attn = model.blocks[layer].attn
        for h, (dk, dv) in enumerate(layer_heads):
            pads = (attn.W_Q[0, h, :, dk:], attn.W_K[0, h, :, dk:], attn.W_V[0, h, :, dv:], attn.W_O[0, h, dv:, :])
            assert all(not p.any() for p in pads), f"layer {layer} head {h} uses more than (d_k, d_v)=({dk}, {dv})"


def _measured_counts(model: Transformer, heads: list[list[tuple[int, int]]]) -> dict[str, int]:
    """Dense minimal counts of the build (THEORY §1.2), from the model's shapes and the unpadded head dims.

    The constructions here use no positions, so the positional group is 0 whatever ``n_ctx`` is.
    """
    _check_head_padding(model, heads)
    cfg = model.cfg
    d, v = cfg.d_model, model.d_vocab
    attention = sum(dense_attention_count(d, layer_heads) for layer_heads in heads)
    mlp = 0
    for block in model.blocks:
        if block.mlp is not None:
            widths = [block.mlp.W_in.shape[-1]]
            if block.mlp.W_hidden is not None:
                widths.append(block.mlp.W_hidden.shape[-1])
            mlp += dense_mlp_count(d, widths)
    return make_counts(embedding=d * v, attention=attention, mlp=mlp, unembedding=v * d)


def _ceil_log2(n: int) -> int:
    """``max(1, ceil(log2 n))`` by integer arithmetic (the formulas' own m, apart from :func:`n_bits`)."""
    return max(1, (n - 1).bit_length())


def _selector_model(codes: np.ndarray, m: int, readout: np.ndarray, *,
                    dtype: torch.dtype) -> tuple[Transformer, Layout, list[list[tuple[int, int]]]]:
    """The selector of THEORY §2.2 for subject codes ``codes[r, s]`` (< 2^m) and readout rows ``readout``.

    ``codes`` [K, N] ints; ``readout`` [V, m] (row v is what token v reads from block A: ``c(a)`` for an
    answer token, 0 otherwise). Relation r is token ``N + r``.
    """
    k_rel, n = codes.shape
    v = readout.shape[0]
    lay = _selector_layout(k_rel, m)
    d, km = lay.size, k_rel * m
    s_all, a_blk = _s_span(lay, k_rel), lay["A"]
    model = zero_model(d_model=d, d_vocab=v, n_ctx=N_CTX, d_head=km, d_mlp=km, dtype=dtype)

    w_e = np.zeros((v, d))  # [V, d]
    for r in range(k_rel):
        w_e[:n, lay[f"S_{r}"]] = bits(codes[r], m)  # the superposition sum_r iota_{S_r} b(f_r(s))
        w_e[n + r, lay.index("Z", r)] = 1.0
    # Uniform head (W_Q = W_K = 0): v = Pi_S h, W_O = 2 iota_S; at position 1 alpha = (1/2, 1/2) exactly.
    w_v = np.zeros((1, d, km))  # [H, d, d_head]
    w_v[0, s_all, :] = np.eye(km)
    w_o = np.zeros((1, km, d))  # [H, d_head, d]
    w_o[0, :, s_all] = 2 * np.eye(km)
    # Gate (r, i) = ReLU(S_{r,i} + Z_r - 1) = b_i(f_r(s)) [r = r*]   (G1), written as 2 b_i - 1 into A_i.
    w_in = np.zeros((d, km))  # [d, d_mlp]
    w_out = np.zeros((km, d))  # [d_mlp, d]
    for r in range(k_rel):
        for i in range(m):
            unit = r * m + i
            w_in[lay.index(f"S_{r}", i), unit] = 1.0
            w_in[lay.index("Z", r), unit] = 1.0
            w_out[unit, lay.index("A", i)] = 2.0
    b_out = np.zeros(d)
    b_out[a_blk] = -1.0
    w_u = np.zeros((d, v))  # [d, V]
    w_u[a_blk, :] = readout.T
    _load(model, {"embed.W_E": w_e, "blocks.0.attn.W_V": w_v, "blocks.0.attn.W_O": w_o,
                  "blocks.0.mlp.W_in": w_in, "blocks.0.mlp.b_in": -np.ones(km), "blocks.0.mlp.W_out": w_out,
                  "blocks.0.mlp.b_out": b_out, "unembed.W_U": w_u})
    return model, lay, [[(1, km)]]


def _gate_units(n_relations: int, m: int) -> list[slice]:
    """Hidden units of relation r's gates: ``r*m .. r*m + m - 1``."""
    return [slice(r * m, (r + 1) * m) for r in range(n_relations)]


def _require_shared(world: World) -> None:
    if world.attributes != "shared":
        raise ValueError(f"the single-hop constructions need shared attributes, got {world.attributes!r} "
                         "(use constructions.disjoint)")


def _shared_task(world: World) -> TaskConfig:
    return TaskConfig(n_subjects=world.n_subjects, n_relations=world.n_relations)


def _subject_readout(n_subjects: int, n_relations: int, m: int) -> np.ndarray:
    """``U[a, A] = c(a)`` for subjects, relation rows 0: ``[N + K, m]``."""
    return np.concatenate([signs(np.arange(n_subjects), m), np.zeros((n_relations, m))])


# ---------------------------------------------------------------------------------------------------
# Theorem 4.1


def build_selector(world: World, *, dtype: torch.dtype = torch.float32) -> Construction:
    """The selector of Theorem 4.1 (THEORY §2.2): one layer, one uniform head, a one-hidden-layer ReLU MLP.

    Guarantee: for every N >= 2, K >= 1 and every choice of maps (bijections or not), the argmax over the
    whole vocabulary is ``f_r(s)`` on all N·K queries ``(s, r)``, exactly in any float format. The
    answer's logit is m and every other subject's at most m - 2, so the margin is 2 for N >= 3; relation
    logits are 0, so at N = 2 (m = 1) the margin is 1.
    Dimensions: ``m = ceil(log2 N)``, ``d = (K+1)m + K``, one head with ``d_k = 1``, ``d_v = Km``, MLP
    width ``Km``, no positional embedding, no softmax scale. Only the subject embeddings depend on the facts.
    """
    _require_shared(world)
    n, k_rel = world.n_subjects, world.n_relations
    m = n_bits(n)
    model, lay, heads = _selector_model(world.maps, m, _subject_readout(n, k_rel, m), dtype=dtype)
    return Construction(
        name="selector", model=model, world=world, task=_shared_task(world),
        theorem="Theorem 4.1 (THEORY §2.2)",
        dims={"d_model": lay.size, "mlp_widths": [k_rel * m], "n_layers": 1, "n_heads": 1, "heads": heads,
              "n_ctx": N_CTX, "m": m},
        params=_measured_counts(model, heads), formula=_selector_formula(n, k_rel),
        notes={"layout": lay, "subject_code": "bits", "code_offset": 0,
               "gate_hook": "blocks.0.mlp.hook_post", "gate_units": _gate_units(k_rel, m)})


def _selector_formula(n: int, k_rel: int) -> dict[str, int]:
    """THEORY §2.1: attention ``2d + 2Kmd``, MLP ``2Kmd + Km + d``, embedding and unembedding ``d(N+K)``."""
    m = _ceil_log2(n)
    d = (k_rel + 1) * m + k_rel
    v = n + k_rel
    return make_counts(embedding=d * v, attention=2 * d + 2 * k_rel * m * d,
                       mlp=2 * k_rel * m * d + k_rel * m + d, unembedding=v * d)


def build_selector_mlp3(world: World, *, dtype: torch.dtype = torch.float32) -> Construction:
    """The selector of Theorem 4.1 with a two-hidden-layer ("3-layer") MLP, THEORY §2.2 (the paper's wording).

    Guarantee: as :func:`build_selector` (all N·K queries right, exactly, margin 2 for N >= 3, 1 at N = 2).
    Dimensions: relation r carries the ±1 code ``c(r)`` of length ``l = max(1, ceil(log2 K))`` in Z, so
    ``d = Km + l + m``; hidden widths ``Km + K`` (pass-through ``ReLU(S_j)`` and relation indicators
    ``ReLU(<c(r), z> - l + 1) = [r = r*]``) and ``Km`` (gates ``ReLU(x_{r,i} + ind_r - 1)``).
    """
    _require_shared(world)
    n, k_rel = world.n_subjects, world.n_relations
    m, l_z = n_bits(n), n_bits(k_rel)
    km, w1 = k_rel * m, k_rel * m + k_rel
    lay = _selector_layout(k_rel, m, z_width=l_z)
    d, s_all, z_blk, a_blk = lay.size, _s_span(lay, k_rel), lay["Z"], lay["A"]
    model = zero_model(d_model=d, d_vocab=n + k_rel, n_ctx=N_CTX, d_head=km, d_mlp=w1, d_mlp2=km, dtype=dtype)

    w_e = np.zeros((n + k_rel, d))  # [V, d]
    for r in range(k_rel):
        w_e[:n, lay[f"S_{r}"]] = bits(world.maps[r], m)
    w_e[n:, z_blk] = signs(np.arange(k_rel), l_z)
    w_v = np.zeros((1, d, km))  # [H, d, d_head]
    w_v[0, s_all, :] = np.eye(km)
    w_o = np.zeros((1, km, d))  # [H, d_head, d]
    w_o[0, :, s_all] = 2 * np.eye(km)
    w_in = np.zeros((d, w1))  # [d, Km + K]: units 0..Km-1 pass S through, Km + r is relation r's indicator
    w_in[s_all, :km] = np.eye(km)
    w_in[z_blk, km:] = signs(np.arange(k_rel), l_z).T
    b_in = np.zeros(w1)
    b_in[km:] = 1 - l_z  # <c(r), c(r*)> = l if r = r*, else <= l - 2
    w_hidden = np.zeros((w1, km))  # [Km + K, Km]
    w_hidden[:km, :] = np.eye(km)
    for r in range(k_rel):
        w_hidden[km + r, r * m:(r + 1) * m] = 1.0
    w_out = np.zeros((km, d))  # [Km, d]
    for r in range(k_rel):
        w_out[r * m:(r + 1) * m, a_blk] = 2 * np.eye(m)
    b_out = np.zeros(d)
    b_out[a_blk] = -1.0
    w_u = np.zeros((d, n + k_rel))  # [d, V]
    w_u[a_blk, :] = _subject_readout(n, k_rel, m).T
    _load(model, {"embed.W_E": w_e, "blocks.0.attn.W_V": w_v, "blocks.0.attn.W_O": w_o,
                  "blocks.0.mlp.W_in": w_in, "blocks.0.mlp.b_in": b_in, "blocks.0.mlp.W_hidden": w_hidden,
                  "blocks.0.mlp.b_hidden": -np.ones(km), "blocks.0.mlp.W_out": w_out,
                  "blocks.0.mlp.b_out": b_out, "unembed.W_U": w_u})
    heads = [[(1, km)]]
    return Construction(
        name="selector-mlp3", model=model, world=world, task=_shared_task(world),
        theorem="Theorem 4.1, 3-layer MLP variant (THEORY §2.2)",
        dims={"d_model": d, "mlp_widths": [w1, km], "n_layers": 1, "n_heads": 1, "heads": heads,
              "n_ctx": N_CTX, "m": m, "l": l_z},
        params=_measured_counts(model, heads), formula=_selector_mlp3_formula(n, k_rel),
        notes={"layout": lay, "subject_code": "bits", "code_offset": 0,
               "gate_hook": "blocks.0.mlp.hook_post2", "gate_units": _gate_units(k_rel, m)})


def _selector_mlp3_formula(n: int, k_rel: int) -> dict[str, int]:
    """THEORY §2.2: attention ``2d + 2Kmd``; MLP ``w1 d + w1 + Km w1 + Km + d Km + d``, ``w1 = Km + K``."""
    m, l_z = _ceil_log2(n), _ceil_log2(k_rel)
    km = k_rel * m
    d = km + l_z + m
    w1 = km + k_rel
    v = n + k_rel
    return make_counts(embedding=d * v, attention=2 * d + 2 * km * d,
                       mlp=w1 * d + w1 + km * w1 + km + d * km + d, unembedding=v * d)


def build_attention_only(world: World, *, beta: float | None = None,
                         dtype: torch.dtype = torch.float32) -> Construction:
    """The attention-only variant of Theorem 4.1 (THEORY §2.3): K heads, one per relation, no MLP.

    Head r scores the subject ``+beta`` when the query's relation is r and ``-beta`` otherwise, and copies
    ``c(f_r(s))`` into A; the softmax is the nonlinearity that selects. Guarantee: every query is right
    when ``e^beta > K - 1`` (any ``beta > 0`` for K <= 2), with margin at least
    ``2 (lam(beta) - (K-1) lam(-beta))``, ``lam(x) = 1/(1 + e^{-x})``. Default ``beta = ln K + 3``.
    Dimensions: ``d = (K+1)m + K + 1``, K heads with ``d_k = 1``, ``d_v = m``, positions unused.
    """
    _require_shared(world)
    n, k_rel = world.n_subjects, world.n_relations
    beta = math.log(k_rel) + 3 if beta is None else float(beta)
    if not (math.isfinite(beta) and beta > 0):
        raise ValueError(f"beta must be a finite number > 0, got {beta}")
    m = n_bits(n)
    lay = _selector_layout(k_rel, m, sigma=True)
    d, z_blk, a_blk = lay.size, lay["Z"], lay["A"]
    model = zero_model(d_model=d, d_vocab=n + k_rel, n_ctx=N_CTX, n_heads=k_rel, d_head=m, attn_only=True,
                       dtype=dtype)

    w_e = np.zeros((n + k_rel, d))  # [V, d]
    for r in range(k_rel):
        w_e[:n, lay[f"S_{r}"]] = signs(world.maps[r], m)
        w_e[n + r, lay.index("Z", r)] = 1.0
    w_e[:n, lay.index("sigma")] = 1.0
    w_q = np.zeros((k_rel, d, m))  # [H, d, d_head]; only column 0 (d_k = 1) is used
    w_k = np.zeros((k_rel, d, m))
    w_v = np.zeros((k_rel, d, m))
    w_o = np.zeros((k_rel, m, d))  # [H, d_head, d]
    for r in range(k_rel):
        w_q[r, z_blk, 0] = -beta  # beta (2 e_{Z_r} - sum_r' e_{Z_r'})
        w_q[r, lay.index("Z", r), 0] = beta
        w_k[r, lay.index("sigma"), 0] = 1.0
        w_v[r, lay[f"S_{r}"], :] = np.eye(m)
        w_o[r, :, a_blk] = np.eye(m)
    w_u = np.zeros((d, n + k_rel))  # [d, V]
    w_u[a_blk, :] = _subject_readout(n, k_rel, m).T
    _load(model, {"embed.W_E": w_e, "blocks.0.attn.W_Q": w_q, "blocks.0.attn.W_K": w_k,
                  "blocks.0.attn.W_V": w_v, "blocks.0.attn.W_O": w_o, "unembed.W_U": w_u})
    heads = [[(1, m)] * k_rel]
    return Construction(
        name="attention-only", model=model, world=world, task=_shared_task(world),
        theorem="Theorem 4.1, attention-only variant (THEORY §2.3)",
        dims={"d_model": d, "mlp_widths": [], "n_layers": 1, "n_heads": k_rel, "heads": heads,
              "n_ctx": N_CTX, "m": m, "beta": beta},
        params=_measured_counts(model, heads), formula=_attention_only_formula(n, k_rel),
        notes={"layout": lay, "subject_code": "signs", "code_offset": 0})


def _attention_only_formula(n: int, k_rel: int) -> dict[str, int]:
    """THEORY §2.3: ``d = (K+1)m + K + 1``, attention ``K (2d + 2md)``, no MLP."""
    m = _ceil_log2(n)
    d = (k_rel + 1) * m + k_rel + 1
    v = n + k_rel
    return make_counts(embedding=d * v, attention=k_rel * (2 * d + 2 * m * d), unembedding=v * d)


# ---------------------------------------------------------------------------------------------------
# Editing one fact (THEORY §7, last bullet)


def edit_fact(c: Construction, subject: int, relation: int, new_attribute: int) -> Construction:
    """A new construction in which ``f_relation(subject) = new_attribute``: one block of one embedding edited.

    The edit is ``Pi_{S_r} E[:, s] := code(new_attribute)`` (``b(a')`` for the selectors, ``c(a')`` for the
    ±1-coded builds); attention, MLP and readout are untouched, so exactly that fact changes. The returned
    world has the edited map (relation r is then no longer a bijection in general); ``c`` is not modified.
    Works for every construction that records its ``subject_code`` in ``notes`` (this module and
    :mod:`georecall.constructions.disjoint`).
    """
    if "subject_code" not in c.notes:
        raise ValueError(f"construction {c.name!r} does not record a per-relation subject code; cannot edit")
    world = c.world
    n, k_rel, n_attr = world.n_subjects, world.n_relations, world.vocab.attributes_per_relation
    if not 0 <= subject < n:
        raise ValueError(f"subject {subject} out of range [0, {n})")
    if not 0 <= relation < k_rel:
        raise ValueError(f"relation {relation} out of range [0, {k_rel})")
    if not 0 <= new_attribute < n_attr:
        raise ValueError(f"new_attribute {new_attribute} out of range [0, {n_attr})")
    lay: Layout = c.notes["layout"]
    block = lay[f"S_{relation}"]
    width = block.stop - block.start
    code = relation * c.notes["code_offset"] + new_attribute
    encode = bits if c.notes["subject_code"] == "bits" else signs
    model = copy.deepcopy(c.model)
    with torch.no_grad():
        w_e = model.embed.W_E  # [E, V, d]
        w_e[0, subject, block] = torch.as_tensor(encode(code, width), dtype=w_e.dtype)
    maps = world.maps.copy()  # [K, N]
    maps[relation, subject] = new_attribute
    new_world = World(maps, attributes=world.attributes, n_attributes=world.n_attributes)
    task = c.task
    if world.attributes == "disjoint":
        task = TaskConfig(**{**c.task.__dict__, "bijective": new_world.is_bijective()})
    notes: dict[str, Any] = {**c.notes, "edits": [*c.notes.get("edits", []), (subject, relation, new_attribute)]}
    return Construction(name=c.name, model=model, world=new_world, task=task, theorem=c.theorem, dims=c.dims,
                        params=c.params, formula=c.formula, notes=notes)
