"""Single-hop and disjoint-attribute constructions (docs/theory.md §2, §3), executed on every query (tracr style)."""

from __future__ import annotations

import fnmatch
import math
import re

import numpy as np
import pytest
import torch

from georecall.constructions import (
    CONSTRUCTIONS,
    Construction,
    bits,
    build_construction,
    n_bits,
    score_construction,
    signs,
)
from georecall.constructions.disjoint import build_disjoint, build_disjoint_mlp
from georecall.constructions.single_hop import (
    build_attention_only,
    build_selector,
    build_selector_mlp3,
    edit_fact,
    selector_blocks,
)
from georecall.tasks import World, make_queries, make_world

SHARED = {"selector": build_selector, "selector-mlp3": build_selector_mlp3, "attention-only": build_attention_only}
DISJOINT = {"disjoint": build_disjoint, "disjoint-mlp": build_disjoint_mlp}
DTYPES = [torch.float32, torch.float64]

# Prime N (17, 31), K not a power of two (3, 5), the smallest world (N = 2), K = 1.
SHARED_SIZES = [(2, 1), (2, 3), (16, 2), (17, 3), (31, 5), (64, 4)]
# (N, K, n_A, bijective): bijections and arbitrary functions, n_A = 1 included.
DISJOINT_SIZES = [(2, 1, 2, True), (17, 3, 17, True), (31, 5, 31, True), (20, 3, 5, False), (9, 2, 1, False),
                  (40, 4, 7, False)]


def _answer_logits(c: Construction, fwd_hooks: list | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits at the answer position for every query, the targets and the queried relations: [B, V], [B], [B]."""
    q = make_queries(c.world, c.task)
    with torch.no_grad(), c.model.hooks(fwd_hooks or []):
        logits = c.model(q.tokens, q.positions)[0, :, 0]  # [B, V]
    return logits, q.targets[:, 0], q.relations[:, 0]


def _exact_margin(c: Construction) -> float:
    """the theory's margin for the exact builds: 2, except when the answer's own logit (the code length) is 1.

    The answer scores m (selectors) and relation rows score 0, so with m = 1 (N = 2, or K n_A = 2 for F1)
    the margin is 1; F0 scores the answer m_A + 2 and is 2 throughout.
    """
    return 2.0 if c.name == "disjoint" else float(min(2, c.dims["m"]))


# ---------------------------------------------------------------------------------------------------
# Every query right, counts equal the formulas


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(("n", "k"), SHARED_SIZES)
@pytest.mark.parametrize("name", SHARED)
def test_shared_constructions_answer_every_query(name: str, n: int, k: int, dtype: torch.dtype) -> None:
    c = SHARED[name](make_world(n, k, seed=n + k), dtype=dtype)
    score = score_construction(c)
    assert score.accuracy == 1.0 and score.n_queries == n * k
    if name == "attention-only":
        assert score.min_margin > 0
    else:
        assert score.min_margin == _exact_margin(c)  # integer logits: exact in any float format
    assert c.params == c.formula
    assert c.model.embed.W_E.dtype == dtype
    assert c.dims["d_model"] == c.model.cfg.d_model and c.dims["n_ctx"] == c.model.n_ctx == 2
    assert c.params["positional"] == 0 and not c.model.pos_embed.W_pos.any()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(("n", "k", "n_attr", "bijective"), DISJOINT_SIZES)
@pytest.mark.parametrize("name", DISJOINT)
def test_disjoint_constructions_answer_every_query(name: str, n: int, k: int, n_attr: int, bijective: bool,
                                                   dtype: torch.dtype) -> None:
    world = make_world(n, k, seed=n + k, attributes="disjoint", n_attributes=n_attr, bijective=bijective)
    assert world.is_bijective() == bijective
    c = DISJOINT[name](world, dtype=dtype)
    score = score_construction(c)
    assert score.accuracy == 1.0 and score.n_queries == n * k
    assert score.min_margin == _exact_margin(c)
    assert c.params == c.formula
    assert c.task.bijective == bijective and c.task.attributes == "disjoint"


def _nonzeros(c: Construction) -> int:
    """Non-zero attention and MLP weights, the "non-zeros" column of docs/theory.md §2.4."""
    return sum(int(p.count_nonzero()) for name, p in c.model.named_parameters() if name.startswith("blocks."))


# docs/theory.md §2.4: (N, K, construction, d, MLP widths, attn, MLP, non-zeros).
TABLE_2_4 = [
    (16, 2, "selector", 14, [8], 252, 246, 52),
    (100, 3, "selector", 31, [21], 1364, 1354, 133),
    (257, 5, "selector", 59, [45], 5428, 5414, 279),
    (1000, 4, "selector", 54, [40], 4428, 4414, 250),
    (1000, 4, "selector-mlp3", 52, [44, 40], 4264, 6264, 302),
    (16, 2, "attention-only", 15, [], 300, 0, 22),
    (100, 3, "attention-only", 32, [], 1536, 0, 54),
    (257, 5, "attention-only", 60, [], 6000, 0, 120),
    (1000, 4, "attention-only", 55, [], 4840, 0, 100),
]


@pytest.mark.parametrize(("n", "k", "name", "d", "widths", "attn", "mlp", "nnz"), TABLE_2_4)
def test_table_2_4(n: int, k: int, name: str, d: int, widths: list[int], attn: int, mlp: int, nnz: int) -> None:
    c = SHARED[name](make_world(n, k, seed=0))
    assert (c.dims["d_model"], c.dims["mlp_widths"], c.params["attention"], c.params["mlp"]) == (d, widths, attn, mlp)
    assert c.params == c.formula
    assert _nonzeros(c) == nnz
    if n * k <= 4000:  # every query of the row, a few ms each
        assert score_construction(c).accuracy == 1.0


# docs/theory.md §3: (N, K, n_A, bijective, F0 d, F0 attn, F1 m', F1 d, F1 attn, F1 MLP).
TABLE_3 = [
    (16, 2, 16, True, 10, 180, 5, 17, 374, 367),
    (100, 3, 100, True, 24, 1056, 9, 39, 2184, 2172),
    (257, 5, 257, True, 50, 4600, 11, 71, 7952, 7936),
    (1000, 4, 1000, True, 44, 3608, 12, 64, 6272, 6256),
    (1000, 4, 50, False, 28, 1400, 8, 44, 2904, 2892),
]


@pytest.mark.parametrize(("n", "k", "n_attr", "bijective", "d0", "attn0", "m1", "d1", "attn1", "mlp1"), TABLE_3)
def test_table_3(n: int, k: int, n_attr: int, bijective: bool, d0: int, attn0: int, m1: int, d1: int, attn1: int,
                 mlp1: int) -> None:
    world = make_world(n, k, seed=0, attributes="disjoint", n_attributes=n_attr, bijective=bijective)
    f0, f1 = build_disjoint(world), build_disjoint_mlp(world)
    assert (f0.dims["d_model"], f0.params["attention"], f0.params["mlp"]) == (d0, attn0, 0)
    assert (f1.dims["m"], f1.dims["d_model"], f1.params["attention"], f1.params["mlp"]) == (m1, d1, attn1, mlp1)
    assert f0.params == f0.formula and f1.params == f1.formula


# ---------------------------------------------------------------------------------------------------
# Structure: superposition, per-relation gates, one-fact edits


def test_selector_embedding_is_the_superposition() -> None:
    n, k = 17, 3
    world = make_world(n, k, seed=3)
    c = build_selector(world, dtype=torch.float64)
    lay, m = selector_blocks(n, k), n_bits(n)
    assert lay.blocks == c.anatomy.layout.blocks and lay.size == c.dims["d_model"] == (k + 1) * m + k
    expected = torch.zeros(n + k, lay.size, dtype=torch.float64)  # [V, d]
    for s in range(n):
        for r in range(k):
            a = int(world.maps[r, s])
            for i in range(m):
                expected[s, lay.index(f"S_{r}", i)] += (a >> i) & 1  # iota_{S_r} b(f_r(s))
    for r in range(k):
        expected[n + r, lay.index("Z", r)] = 1.0  # iota_Z e_r
    w_e = c.model.embed.W_E[0]  # [V, d]
    assert torch.equal(w_e, expected)
    # The linear probe of §2.2: Pi_{S_r} E[:, s] = b(f_r(s)), read back as an integer.
    place = 2.0 ** torch.arange(m, dtype=torch.float64)
    for r in range(k):
        decoded = (w_e[:n, lay[f"S_{r}"]] @ place).long()
        assert torch.equal(decoded, torch.tensor(world.maps[r]))


@pytest.mark.parametrize("name", ["selector", "selector-mlp3"])
def test_ablating_relation_gates_breaks_only_that_relation(name: str) -> None:
    n, k = 31, 5
    c = SHARED[name](make_world(n, k, seed=4))
    hook, units = c.anatomy.gate_hook, c.anatomy.gate_units
    logits, targets, relations = _answer_logits(c)
    assert bool((logits.argmax(-1) == targets).all())
    for r in range(k):

        def zero_r(act: torch.Tensor, hook_point: object, sl: tuple[int, ...] = units[r]) -> torch.Tensor:
            out = act.clone()  # [E, B, T, d_mlp]
            out[..., list(sl)] = 0
            return out

        logits, _, _ = _answer_logits(c, [(hook, zero_r)])
        right = logits.argmax(-1) == targets
        per_relation = [float(right[relations == j].float().mean()) for j in range(k)]
        # With its gates off, relation r's answer block is b_out = c(0): every query answers subject 0.
        assert per_relation[r] <= 1 / n + 1e-9
        assert all(acc == 1.0 for j, acc in enumerate(per_relation) if j != r)
    assert c.model.attached_hooks() == {}


@pytest.mark.parametrize("name", [*SHARED, *DISJOINT])
def test_edit_fact_changes_exactly_that_fact(name: str) -> None:
    n, k, s, r = 17, 3, 5, 1
    if name in DISJOINT:
        world = make_world(n, k, seed=5, attributes="disjoint", n_attributes=n)
        c = DISJOINT[name](world)
    else:
        world = make_world(n, k, seed=5)
        c = SHARED[name](world)
    old = int(world.maps[r, s])
    new = (old + 7) % n
    edited = edit_fact(c, s, r, new)

    assert int(edited.world.maps[r, s]) == new and not edited.world.is_bijective()
    assert int(c.world.maps[r, s]) == old  # the original is untouched
    assert score_construction(c).accuracy == 1.0
    score = score_construction(edited)
    assert score.accuracy == 1.0 and score.min_margin > 0
    # Exactly one embedding row changed, and within it only block S_r.
    diff = (edited.model.embed.W_E[0] != c.model.embed.W_E[0]).nonzero().tolist()
    block = c.anatomy.layout[f"S_{r}"]
    assert diff and all(row == s and block.start <= col < block.stop for row, col in diff)
    # Every other query keeps its argmax; the edited one moves to the new attribute.
    before, targets, relations = _answer_logits(c)
    after, new_targets, _ = _answer_logits(edited)
    q = make_queries(c.world, c.task)
    is_edited = (q.subjects == s) & (relations == r)
    assert int(is_edited.sum()) == 1
    assert torch.equal(before.argmax(-1)[~is_edited], after.argmax(-1)[~is_edited])
    assert int(after.argmax(-1)[is_edited]) == int(new_targets[is_edited]) != int(targets[is_edited])
    assert edited.anatomy.edits == ((s, r, new),) and c.anatomy.edits == ()
    assert edit_fact(edited, s, r, old).anatomy.edits == ((s, r, new), (s, r, old))


def test_edit_fact_rejects_out_of_range() -> None:
    c = build_selector(make_world(8, 2, seed=0))
    for args in [(8, 0, 0), (0, 2, 0), (0, 0, 8), (-1, 0, 0)]:
        with pytest.raises(ValueError):
            edit_fact(c, *args)


# ---------------------------------------------------------------------------------------------------
# Anatomy: the typed record of where every construction keeps its facts, codes and gates


@pytest.mark.parametrize("name", CONSTRUCTIONS)
def test_anatomy_is_consistent_with_the_weights(name: str) -> None:
    recipe = CONSTRUCTIONS[name]
    c = build_construction(name, 9, 3, 2 if recipe.hops is None else None, seed=1, dtype=torch.float64)
    a, world = c.anatomy, c.world
    assert set(a.content_bits) == {"P", "B_e"} and all(v >= 0 for v in a.content_bits.values())
    assert a.readout in ("fixed", "learned", "tied") and (a.readout == "tied") == c.model.cfg.tie_unembed
    assert a.edits == ()
    # Every fact-dependent parameter names real state-dict entries (rows in brackets, * as a wildcard).
    keys = list(c.model.state_dict())
    for entry in a.fact_dependent:
        assert fnmatch.filter(keys, re.sub(r"\[.*\]$", "", entry)), entry
    if a.layout is not None:
        assert a.layout.size == c.dims["d_model"]
        assert a.blocks == {k: (v.start, v.stop) for k, v in a.layout.blocks.items()}
        assert all(0 <= lo < hi <= a.layout.size for lo, hi in a.blocks.values())
    # Each subject block S_r holds the code of r * code_offset + f_r(s) in W_E.
    if a.subject_code is not None:
        assert len(a.subject_blocks) == world.n_relations
        encode = bits if a.subject_code == "bits" else signs
        w_e = c.model.embed.W_E[0].detach().numpy()  # [V, d]
        for r, block in enumerate(a.subject_blocks):
            width = block.stop - block.start
            codes = r * a.code_offset + world.maps[r]  # [N]
            assert codes.max() < 2 ** width
            np.testing.assert_array_equal(w_e[:world.n_subjects, block], encode(codes, width))
        # An edit lands in S_r of one row and is recorded in the anatomy.
        edited = edit_fact(c, 0, 1, int(world.maps[1, 1]))
        assert edited.anatomy.edits == ((0, 1, int(world.maps[1, 1])),) and c.anatomy.edits == ()
        np.testing.assert_array_equal(edited.model.embed.W_E[0][0, a.subject_blocks[1]].detach().numpy(),
                                      w_e[1, a.subject_blocks[1]])
    else:
        assert a.subject_blocks == ()
        with pytest.raises(ValueError, match="subject code"):
            edit_fact(c, 0, 0, 0)
    # Gate units: one group per relation, inside the width of the gate hook's activation.
    if a.gate_hook is None:
        assert a.gate_units == ()
    else:
        assert len(a.gate_units) == world.n_relations
        q = make_queries(world, c.task)
        _, cache = c.model.run_with_cache(q.tokens[:2], [a.gate_hook])
        width = cache[a.gate_hook].shape[-1]
        for units in a.gate_units:
            assert units and all(isinstance(u, int) and 0 <= u < width for u in units)
        flat = [u for units in a.gate_units for u in units]
        assert len(flat) == len(set(flat))  # the relations' gates are disjoint


# ---------------------------------------------------------------------------------------------------
# Attention-only: the softmax scale is a real condition


def test_attention_only_fails_below_the_scale_threshold() -> None:
    # Adversarial world (K = 4): relations 1..3 agree on f(s) = s + 1, relation 0 says f(s) = s. A query of
    # relation 0 sees lam(beta) c(s) + 3 lam(-beta) c(s + 1), which decodes to s + 1 when e^beta < 3.
    n, k = 8, 4
    base = np.arange(n)
    world = World(np.stack([base] + [np.roll(base, -1)] * (k - 1)))
    threshold = math.log(k - 1)
    below = score_construction(build_attention_only(world, beta=threshold - 0.05))
    assert below.accuracy == 1 - 1 / k and below.min_margin < 0  # exactly relation 0 fails
    above = score_construction(build_attention_only(world, beta=threshold + 0.05))
    assert above.accuracy == 1.0 and above.min_margin > 0
    # A random world (N = 31, K = 5; fixed seed) also fails below ln(K - 1), and is exact just above it.
    world = make_world(31, 5, seed=0)
    assert score_construction(build_attention_only(world, beta=math.log(4) - 0.1)).accuracy < 1.0
    assert score_construction(build_attention_only(world, beta=math.log(4) + 0.01)).accuracy == 1.0
    assert build_attention_only(world).dims["beta"] == pytest.approx(math.log(5) + 3)


# ---------------------------------------------------------------------------------------------------
# Input checks


def test_builders_reject_the_wrong_setting() -> None:
    shared = make_world(8, 2, seed=0)
    disjoint = make_world(8, 2, seed=0, attributes="disjoint", n_attributes=4, bijective=False)
    for build in SHARED.values():
        with pytest.raises(ValueError):
            build(disjoint)
    for build in DISJOINT.values():
        with pytest.raises(ValueError):
            build(shared)
    for beta in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError):
            build_attention_only(shared, beta=beta)
