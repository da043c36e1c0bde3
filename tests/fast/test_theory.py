"""Closed-form theory (docs/theory.md §6, §8): regression tables, the maximiser, the constructions against the bound,
brute-force counting on tiny worlds, and the figures."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from georecall.theory import (
    CONSTRUCTIONS,
    check_against_bound,
    construction_cost,
    gamma_global,
    gamma_local,
    information_bits,
    local_term,
    log2_factorial,
    log2_n_maps,
    nodes,
    required_bits,
)
from georecall.theory.figures import plot_cost_vs_hops, plot_dmodel_vs_n


def sig3(x: float) -> float:
    """``x`` as printed in the theory's tables (3 significant digits)."""
    return float(f"{x:.3g}")


# ------------------------------------------------------------------------------------------------
# Primitives


def test_log2_factorial_and_nodes() -> None:
    for n in range(0, 30):
        # lgamma is accurate to ~1e-15 relative; log2 n! < 110 here.
        assert log2_factorial(n) == pytest.approx(math.log2(math.factorial(n)), abs=1e-9)
    assert nodes(3, -1) == 0
    assert nodes(3, 0) == 1
    assert nodes(3, 2) == 13
    assert nodes(1, 4) == 5
    assert nodes(2, 7) == 255
    assert information_bits(5, 2) == pytest.approx(2 * math.log2(120))
    assert log2_n_maps(5, 2, 2) == pytest.approx(math.log2(120**2 / 25))  # (N!)^K / N^2
    assert log2_n_maps(5, 1, 3) == 0.0
    assert log2_n_maps(5, 3, 1) == pytest.approx(information_bits(5, 3))


# ------------------------------------------------------------------------------------------------
# §6.4 "Computed values": gamma_G, gamma_L, K^k log2 N, required P at B_e = 0 | gamma_G | sqrt | gamma_L

TABLE_64 = [
    (1000, 4, 1, 34.1, 39.9, 39.9, (3.41e4, 2.11e3, 656, 0)),
    (1000, 4, 2, 34.1, 159.4, 159.5, (3.41e4, 1.95e4, 1.18e4, 0)),
    (1000, 4, 3, 34.1, 636.6, 637.8, (3.41e4, 2.32e4, 1.79e4, 0)),
    (65536, 4, 2, 58.2, 256.0, 256.0, (3.82e6, 2.22e6, 1.39e6, 0)),
    (65536, 4, 4, 58.2, 4095.7, 4096.0, (3.82e6, 2.75e6, 2.42e6, 0)),
    (100000, 10, 3, 151.7, 16608.8, 16609.6, (1.52e7, 1.34e7, 1.21e7, 0)),
    (1000000, 2, 8, 37.0, 5102.4, 5102.5, (3.70e7, 1.74e7, 1.59e7, 0)),
]


@pytest.mark.parametrize("N,K,k,g_g,g_l,kk_log,req", TABLE_64)
def test_section_6_4_table(N: int, K: int, k: int, g_g: float, g_l: float, kk_log: float,
                           req: tuple[float, ...]) -> None:
    r = required_bits(N, K, k, 0.0)
    assert round(r.gamma_global, 1) == g_g
    assert round(r.gamma_local, 1) == g_l
    assert round(K**k * math.log2(N), 1) == kk_log
    budgets = (0.0, r.gamma_global, math.sqrt(r.gamma_global * r.gamma_local), r.gamma_local)
    got = [required_bits(N, K, k, b).required_bits for b in budgets]
    assert [sig3(v) for v in got] == [float(v) for v in req]
    assert got[-1] == 0.0  # exactly: L(M=1) at gamma_L is an exact float identity


def test_section_6_prose_values() -> None:
    # §6.6: KV within a factor ~ m / log2(N/e) of the bound at B_e = 0.
    for N, K, ratio in [(65536, 4, 1.10), (1000, 4, 1.17)]:
        kv = construction_cost("kv-memory", N, K, 2).P_bits_content
        assert round(kv / required_bits(N, K, 2, 0.0).required_bits, 2) == ratio
    # §6.4 regime 3: KV / bound = 1.9 at gamma_G, 4.5 halfway, 12 three quarters of the way to gamma_L.
    N, K = 65536, 4
    r = required_bits(N, K, 2, 0.0)
    kv = construction_cost("kv-memory", N, K, 2).P_bits_content
    for frac, ratio in [(0.0, 1.9), (0.5, 4.5), (0.75, 12.0)]:
        b = r.gamma_global + frac * (r.gamma_local - r.gamma_global)
        got = kv / required_bits(N, K, 2, b).required_bits
        assert round(got, 1 if ratio < 10 else 0) == ratio
    # §6.5: tied meet-in-the-middle budgets B_e = 2Km against gamma_L.
    for N, K, g_l in [(64, 3, 53.6), (256, 4, 127.8), (1000, 4, 159.4)]:
        assert round(gamma_local(N, K, 2), 1) == g_l
    # §6.2: for k = 1 the two constraints coincide at M = N.
    for N, K, b in [(10, 3, 0.0), (50, 2, 3.5), (200, 4, 20.0)]:
        assert local_term(N, K, 1, N, b) == pytest.approx(required_bits(N, K, 1, b).global_bits, abs=1e-6)


# ------------------------------------------------------------------------------------------------
# Regimes, thresholds, readouts


@pytest.mark.parametrize("N,K,k", [(1000, 4, 1), (1000, 4, 3), (65536, 4, 2), (100, 2, 4), (50, 1, 3)])
def test_regime_boundaries(N: int, K: int, k: int) -> None:
    r = required_bits(N, K, k, 0.0)
    g_g, g_l = r.gamma_global, r.gamma_local
    if g_g > 0:
        assert r.regime == 1
        assert required_bits(N, K, k, g_g * (1 - 1e-9)).regime == 1
    assert required_bits(N, K, k, g_g).regime == 3
    assert required_bits(N, K, k, g_g).global_bits <= 0
    below = required_bits(N, K, k, g_l * (1 - 1e-6))
    assert below.regime == 3 and below.local_bits > 0 and below.required_bits > 0
    at = required_bits(N, K, k, g_l)
    assert at.regime == 2 and at.required_bits == 0.0 and at.local_bits == 0.0
    assert required_bits(N, K, k, 2 * g_l).required_bits == 0.0


def test_readout_classes() -> None:
    fixed = required_bits(1000, 4, 2, 80.0)
    learned = required_bits(1000, 4, 2, 80.0, readout="learned")
    tied = required_bits(1000, 4, 2, 80.0, readout="tied")
    assert learned.required_bits == fixed.required_bits and learned.readout == "learned"
    assert tied.local_bits is None and tied.gamma_local is None and tied.best_M is None
    assert tied.required_bits == 0.0 and sig3(fixed.required_bits) == 1.06e4  # §6.6: "L would demand 1.06e4"
    assert tied.regime == 2 and required_bits(1000, 4, 2, 10.0, readout="tied").regime == 1
    # N < n_{k-1}: no tree fits, L does not apply.
    r = required_bits(4, 2, 3, 0.0)
    assert r.local_bits is None and r.gamma_local is None and r.best_M is None
    assert r.required_bits == pytest.approx(r.global_bits)
    assert r.global_ == r.global_bits and r.local is None


def test_gamma_global_le_gamma_local_grid() -> None:
    # §6.4: "gamma_G <= gamma_L wherever both apply (checked for N < 200, K <= 10, k <= 6)".
    checked = 0
    for N in range(2, 200):
        for K in range(1, 11):
            for k in range(1, 7):
                g_l = gamma_local(N, K, k)
                if g_l is None:
                    continue
                assert gamma_global(N, K, k) <= g_l + 1e-9, (N, K, k)
                checked += 1
    assert checked > 5000


def _brute_local(N: int, K: int, k: int, b: float) -> float | None:
    m_max = N // nodes(K, k - 1)
    if m_max < 1:
        return None
    return max(local_term(N, K, k, M, b) for M in range(1, m_max + 1))


def test_local_maximiser_equals_brute_force() -> None:
    for N in (2, 3, 5, 7, 16, 37, 100, 257, 1000, 4099):
        for K in (1, 2, 3, 5):
            for k in (1, 2, 3, 4):
                base = required_bits(N, K, k, 0.0)
                g_l = base.gamma_local
                if g_l is None:
                    assert _brute_local(N, K, k, 0.0) is None
                    continue
                for b in (0.0, base.gamma_global, 0.3 * g_l, 0.5 * (base.gamma_global + g_l), 0.9 * g_l, 0.99 * g_l,
                          g_l, 1.5 * g_l):
                    r = required_bits(N, K, k, b)
                    brute = _brute_local(N, K, k, b)
                    # lgamma differences of numbers ~N log N carry ~1e-12 relative error; L is clipped at 1e-6.
                    tol = 1e-9 * (1 + abs(brute))
                    assert r.local_bits == pytest.approx(0.0 if abs(brute) < 1e-6 else brute, abs=max(tol, 1e-6))
                    assert local_term(N, K, k, r.best_M, b) == pytest.approx(brute, abs=max(tol, 1e-6))


def test_large_n_is_fast() -> None:
    import time

    t0 = time.perf_counter()
    for b in (0.0, 10.0, 70.0, 79.0):
        required_bits(1_000_000, 4, 1, b)
    assert time.perf_counter() - t0 < 0.1  # O(log N) lgamma calls, not N


# ------------------------------------------------------------------------------------------------
# Construction costs against the measured tables of §2-§5 and §6.5


def test_selector_family_counts() -> None:  # §2.4
    for N, K, d, w, attn, mlp in [(16, 2, 14, 8, 252, 246), (100, 3, 31, 21, 1364, 1354),
                                  (257, 5, 59, 45, 5428, 5414), (1000, 4, 54, 40, 4428, 4414)]:
        c = construction_cost("selector", N, K, 1)
        assert (c.d_model, c.mlp_widths, c.attention, c.mlp, c.positional) == (d, (w,), attn, mlp, 0)
        assert c.embedding == d * (N + K) == c.unembedding
    c = construction_cost("selector-mlp3", 1000, 4, 1)
    assert (c.d_model, c.mlp_widths, c.attention, c.mlp) == (52, (44, 40), 4264, 6264)
    for N, K, d, attn in [(16, 2, 15, 300), (100, 3, 32, 1536), (257, 5, 60, 6000), (1000, 4, 55, 4840)]:
        c = construction_cost("attention-only", N, K, 1)
        assert (c.d_model, c.attention, c.mlp, c.n_heads, c.mlp_widths) == (d, attn, 0, K, ())


def test_disjoint_counts() -> None:  # §3, the n_A = N rows
    for N, K, d0, attn0, m1, d1, attn1, mlp1 in [(16, 2, 10, 180, 5, 17, 374, 367),
                                                 (100, 3, 24, 1056, 9, 39, 2184, 2172),
                                                 (257, 5, 50, 4600, 11, 71, 7952, 7936),
                                                 (1000, 4, 44, 3608, 12, 64, 6272, 6256)]:
        f0 = construction_cost("disjoint", N, K, 1)
        f1 = construction_cost("disjoint-mlp", N, K, 1)
        assert (f0.d_model, f0.attention, f0.mlp) == (d0, attn0, 0)
        assert (f1.m, f1.d_model, f1.attention, f1.mlp) == (m1, d1, attn1, mlp1)
        assert f0.d_vocab == N + K + K * N


TABLE_43 = [  # N, K, k, KV (d, widths, attn, MLP), pre-computation (d, widths, attn, MLP)
    (16, 2, 1, (11, (76,), 198, 1759), (19, (20,), 494, 799)),
    (16, 2, 2, (11, (76,) * 2, 308, 3518), (35, (36, 20), 1820, 4046)),
    (16, 2, 3, (11, (76,) * 3, 418, 5277), (67, (68, 36, 20), 6298, 16941)),
    (32, 3, 2, (14, (208,) * 2, 476, 12092), (74, (96, 36), 8436, 19816)),
    (32, 3, 3, (14, (208,) * 3, 644, 18138), (209, (276, 96, 36), 63954, 171579)),
    (100, 3, 2, (16, (620,) * 2, 608, 40952), (100, (132, 48), 15000, 36380)),
    (257, 5, 2, (22, (2598,) * 2, 1100, 233864), (292, (460, 100), 140744, 328184)),
    (100, 4, 3, (18, (822,) * 3, 1008, 91296), (606, (904, 232, 64), 568428, 1457418)),
]


@pytest.mark.parametrize("N,K,k,kv,pre", TABLE_43)
def test_multihop_counts(N: int, K: int, k: int, kv: tuple, pre: tuple) -> None:  # §4.3
    for name, want in (("kv-memory", kv), ("precompute", pre)):
        c = construction_cost(name, N, K, k)
        assert (c.d_model, c.mlp_widths, c.attention, c.mlp) == want
        assert (c.n_layers, c.n_ctx, c.positional) == (k, k + 1, c.d_model * (k + 1))
        assert c.total == c.embedding + c.positional + c.attention + c.mlp + c.unembedding
        assert c.total == c.attention + c.mlp + 2 * c.d_model * (N + K) + c.d_model * (k + 1)  # §8


def test_cot_counts() -> None:  # §5.3: same numbers for every k
    for N, K, ks, a, b in [(16, 2, (1, 3, 8), (17, 8, 374, 297), (28, 840, 484)),
                           (100, 3, (2, 5), (34, 21, 1632, 1483), (59, 3422, 2558)),
                           (257, 5, (3, 24), (62, 45, 5952, 5687), (113, 12430, 10328)),
                           (1000, 4, (2, 12), (57, 40, 4902, 4657), (102, 9996, 8302))]:
        for k in ks:
            ca = construction_cost("cot", N, K, k)
            cb = construction_cost("cot-question-first", N, K, k)
            assert (ca.d_model, ca.mlp_widths[0], ca.attention, ca.mlp) == a
            assert (cb.d_model, cb.attention, cb.mlp) == b
            assert ca.n_ctx == 2 * k + 1 and ca.positional == ca.d_model * (2 * k + 1)
            assert not ca.in_class and not cb.in_class


def test_readout_models_counts() -> None:  # §6.5
    c = construction_cost("readout-only", 1000, 4, 1)
    assert (c.d_model, c.attention, c.mlp, c.readout) == (54, 1188, 4850, "learned")
    for N, K, d, w in [(64, 3, 45, 111), (256, 4, 75, 260), (1000, 4, 91, 324), (500, 6, 123, 654)]:
        c = construction_cost("meet-in-middle", N, K, 2)
        assert (c.d_model, c.mlp_widths) == (d, (w,))
        assert d < K * K * c.m  # "all below K^2 m": d, against pre-computation's ~K^2 m
    t = construction_cost("meet-in-middle-tied", 64, 3, 2)
    assert (t.d_model, t.readout, t.unembedding, t.embedding_bits_content) == (3 * 18 + 6 + 3, "tied", 0, 36.0)


def test_content_and_float32_bits() -> None:  # §6.6 conventions
    N, K = 1000, 4
    m = 10
    assert construction_cost("kv-memory", N, K, 3).bits() == (K * N * m, 0.0)
    assert construction_cost("selector", N, K, 1).bits() == (0.0, K * m)
    assert construction_cost("precompute", N, K, 3).bits() == (0.0, K**3 * m)
    assert construction_cost("cot", N, K, 5).bits() == (0.0, K * m)
    assert construction_cost("readout-only", N, K, 1).bits() == (N * K * m, 0.0)
    assert construction_cost("meet-in-middle", N, K, 2).bits() == (N * K * m, K * m)
    assert construction_cost("meet-in-middle-tied", N, K, 2).bits() == (0.0, 2 * K * m)
    c = construction_cost("selector", N, K, 1)
    assert c.bits("float32") == (32.0 * (c.attention + c.mlp), 32.0 * c.d_model)
    r = construction_cost("readout-only", N, K, 1)
    assert r.bits("float32")[0] == 32.0 * (r.attention + r.mlp + r.unembedding)


# ------------------------------------------------------------------------------------------------
# §6.6 table and the grid


TABLE_66 = [  # name, N, K, k, P have, P needed
    ("selector", 1000, 4, 1, 0, 0),
    ("kv-memory", 1000, 4, 1, 4.00e4, 3.41e4),
    ("kv-memory", 65536, 4, 2, 4.19e6, 3.82e6),
    ("kv-memory", 65536, 4, 3, 4.19e6, 3.82e6),
    ("precompute", 65536, 4, 3, 0, 0),
    ("readout-only", 1000, 4, 1, 4.00e4, 3.41e4),
    ("meet-in-middle", 1000, 4, 2, 4.00e4, 1.83e4),
    ("meet-in-middle-tied", 1000, 4, 2, 0, 0),
    ("cot", 65536, 4, 3, 0, 2.63e6),
]


@pytest.mark.parametrize("name,N,K,k,have,need", TABLE_66)
def test_section_6_6_table(name: str, N: int, K: int, k: int, have: float, need: float) -> None:
    c = check_against_bound(name, N, K, k)
    assert (sig3(c.P_have), sig3(c.P_needed)) == (have, need)
    if name == "cot":
        assert c.outside_class and c.verdict == "outside the bound" and not c.holds
    else:
        assert c.in_class and c.holds and c.verdict == "holds"
    if c.readout == "learned":  # "U uncounted: P = 0, not in the class"
        assert c.P_have_readout_uncounted == 0.0 and c.P_needed > 0
    if name == "meet-in-middle-tied":  # "L would demand 1.06e4"
        assert sig3(c.P_needed_fixed_readout) == 1.06e4
    assert c.readout == {"readout-only": "learned", "meet-in-middle": "learned",
                         "meet-in-middle-tied": "tied"}.get(name, "fixed")


def _supported(name: str, K: int, k: int) -> bool:
    if name in ("selector", "selector-mlp3", "attention-only", "disjoint", "disjoint-mlp", "readout-only"):
        return k == 1
    if name.startswith("meet-in-middle"):
        return k == 2
    return K >= 2 or name != "precompute"


def test_no_construction_in_class_below_the_bound() -> None:
    checked = 0
    for N in (2, 3, 4, 5, 16, 100, 1000, 65536):
        for K in (1, 2, 3, 5):
            for k in (1, 2, 3, 4):
                for name in CONSTRUCTIONS:
                    if not _supported(name, K, k):
                        with pytest.raises(ValueError):
                            construction_cost(name, N, K, k)
                        continue
                    for convention in ("content", "float32"):
                        c = check_against_bound(name, N, K, k, convention=convention)
                        if c.in_class:
                            assert c.holds and c.verdict == "holds", (name, N, K, k, convention, c.P_have, c.P_needed)
                            checked += 1
                        else:
                            assert c.verdict == "outside the bound"
    assert checked > 400


def test_cot_lies_below_the_bound() -> None:
    # CoT keeps P = 0 at B_e = Km while a no-CoT model needs P > 0 once k >= 2, K >= 2 and a tree of
    # depth k-1 fits in [N] (where it does not, L does not apply and B_e = Km already clears G) (§6.6).
    checked = 0
    for N in (16, 100, 1000, 65536):
        for K in (2, 3, 5):
            for k in (2, 3, 4, 6):
                for name in ("cot", "cot-question-first"):
                    c = check_against_bound(name, N, K, k)
                    assert c.outside_class and c.verdict == "outside the bound" and c.P_have == 0.0
                    if c.bound.gamma_local is not None:
                        assert c.P_needed > 0 and not c.holds, (name, N, K, k)
                        checked += 1
    assert checked >= 30


# ------------------------------------------------------------------------------------------------
# Brute-force counting on tiny worlds (§6.3)


def _all_instances(N: int, K: int) -> np.ndarray:
    """Every K-tuple of bijections of [N]: ``[(N!)^K, K, N]``."""
    perms = np.array(list(itertools.permutations(range(N))), dtype=np.int64)
    idx = np.array(list(itertools.product(range(len(perms)), repeat=K)), dtype=np.int64)
    return perms[idx]


def _k_hop_maps(fs: np.ndarray, k: int) -> np.ndarray:
    """``F(s, rho) = f_{r_k}(...f_{r_1}(s))`` of each instance, flattened: ``[n_inst, K^k N]``."""
    n_inst, K, N = fs.shape
    out = []
    for rho in itertools.product(range(K), repeat=k):
        x = np.broadcast_to(np.arange(N), (n_inst, N))
        for r in rho:  # r_1 first
            x = np.take_along_axis(fs[:, r, :], x, axis=1)
        out.append(x)
    return np.concatenate(out, axis=1)


def _centralizer_size(perm: np.ndarray) -> int:
    """``|C(g)| = prod_l l^{a_l} a_l!`` for a permutation with a_l cycles of length l."""
    seen = np.zeros(len(perm), dtype=bool)
    lengths = []
    for s in range(len(perm)):
        n = 0
        while not seen[s]:
            seen[s] = True
            s = perm[s]
            n += 1
        if n:
            lengths.append(n)
    return math.prod(ell**a * math.factorial(a) for ell, a in Counter(lengths).items())


@pytest.mark.parametrize("N,k,expected", [(4, 1, None), (4, 2, None), (4, 3, None), (5, 1, None), (5, 2, 13234),
                                          (5, 3, None)])
def test_global_count_brute_force(N: int, k: int, expected: int | None) -> None:
    K = 2
    fs = _all_instances(N, K)
    _, inverse, counts = np.unique(_k_hop_maps(fs, k), axis=0, return_inverse=True, return_counts=True)
    n_maps = len(counts)
    n_inst = math.factorial(N) ** K
    assert len(fs) == n_inst
    if k == 1:
        assert n_maps == n_inst
    else:
        assert n_maps >= n_inst / N**2
        assert math.log2(n_maps) >= log2_n_maps(N, K, k) - 1e-9
        # Every fiber of instance -> F has at most |C(g_1)| elements, g_1 = f_1 f_0^{k-1}.
        fiber = counts[inverse.ravel()]
        for i in range(0, n_inst, 7 if n_inst > 1000 else 1):
            pi = np.arange(N)
            for _ in range(k - 1):
                pi = fs[i, 0][pi]
            assert fiber[i] <= _centralizer_size(fs[i, 1][pi])
    if expected is not None:
        assert n_maps == expected  # §6.3: "13234 distinct maps from 14400 instances"


def _local_family_count(N: int, K: int, k: int, M: int) -> int:
    """Distinct restricted maps ``(root_i, rho) -> f_rho(root_i)`` over the disjoint-tree family of §6.3."""
    # Internal vertices (depths 0..k-1) of M complete K-ary trees, numbered 0.. in BFS order per tree.
    children: dict[tuple[int, int], int] = {}  # (vertex, colour) -> child, for depths <= k-2
    roots, last = [], []  # depth-0 vertices; depth-(k-1) vertices (their out-edges vary)
    nxt = 0
    for _ in range(M):
        level = [nxt]
        roots.append(nxt)
        nxt += 1
        for _depth in range(k - 1):
            new = []
            for v in level:
                for r in range(K):
                    children[(v, r)] = nxt
                    new.append(nxt)
                    nxt += 1
            level = new
        last.extend(level)
    assert nxt == M * nodes(K, k - 1) <= N
    colour_choices = []
    for r in range(K):
        taken = {children[(v, r)] for v in range(nxt) if (v, r) in children}  # A = M n_{k-2} of them
        free = [t for t in range(N) if t not in taken]
        colour_choices.append(list(itertools.permutations(free, len(last))))  # injective last-hop edges
    maps = set()
    for choice in itertools.product(*colour_choices):
        f = []
        for r in range(K):
            fr = {v: c for (v, rr), c in children.items() if rr == r}
            fr.update(zip(last, choice[r], strict=True))
            rest_src = [s for s in range(N) if s not in fr]
            rest_tgt = [t for t in range(N) if t not in set(fr.values())]
            fr.update(zip(rest_src, rest_tgt, strict=True))  # complete to a bijection, canonically
            f.append(fr)
        key = []
        for root in roots:
            for rho in itertools.product(range(K), repeat=k):
                x = root
                for r in rho:
                    x = f[r][x]
                key.append(x)
        maps.add(tuple(key))
    return len(maps)


@pytest.mark.parametrize("N,K,k,M,expected", [(6, 2, 2, 2, 576), (7, 2, 3, 1, 576), (7, 2, 2, 1, 900),
                                              (5, 3, 2, 1, 13824)])
def test_local_family_brute_force(N: int, K: int, k: int, M: int, expected: int) -> None:
    n_maps = _local_family_count(N, K, k, M)
    assert n_maps == expected
    a, q = M * nodes(K, k - 2), M * K ** (k - 1)
    assert expected == (math.factorial(N - a) // math.factorial(N - a - q)) ** K
    # The bound's local term at B_e = 0 is log2 of that count.
    assert local_term(N, K, k, M, 0.0) == pytest.approx(math.log2(n_maps), abs=1e-9)


# ------------------------------------------------------------------------------------------------
# Figures, imports, errors


def test_figures_render(tmp_path) -> None:
    from matplotlib.figure import Figure

    p1, p2 = tmp_path / "cost_vs_hops.png", tmp_path / "dmodel_vs_n.png"
    fig1 = plot_cost_vs_hops(1000, 4, [1, 2, 3, 4], path=p1)
    fig2 = plot_dmodel_vs_n(4, [2, 16, 100, 257, 1000, 4096, 65536], path=p2)
    assert isinstance(fig1, Figure) and isinstance(fig2, Figure)
    for p in (p1, p2):
        assert p.stat().st_size > 5000
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert all(ax.get_xlabel() and ax.get_ylabel() and ax.get_title() for ax in fig1.axes + fig2.axes)
    plot_cost_vs_hops(64, 1, [1, 2])  # K = 1: no pre-computation line, no error
    with pytest.raises(ValueError, match="ks"):
        plot_cost_vs_hops(100, 2, [])
    with pytest.raises(ValueError, match="Ns"):
        plot_dmodel_vs_n(2, [1, 4])


def test_import_needs_no_torch() -> None:
    code = ("import sys; import georecall.theory, georecall.theory.figures; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("call,match", [
    (lambda: required_bits(1, 2, 1, 0.0), "N"),
    (lambda: required_bits(10, 0, 1, 0.0), "K"),
    (lambda: required_bits(10, 2, 0, 0.0), "k"),
    (lambda: required_bits(10, 2, 1, -1.0), "embedding_bits"),
    (lambda: required_bits(10, 2, 1, math.nan), "embedding_bits"),
    (lambda: required_bits(10, 2, 1, 0.0, readout="frozen"), "readout"),
    (lambda: required_bits(10.5, 2, 1, 0.0), "N"),
    (lambda: nodes(2, -2), "j"),
    (lambda: local_term(10, 2, 2, 4, 0.0), "M"),
    (lambda: construction_cost("transformer", 10, 2, 1), "transformer"),
    (lambda: construction_cost("selector", 10, 2, 2), "k=2"),
    (lambda: construction_cost("meet-in-middle", 10, 2, 3), "k=3"),
    (lambda: construction_cost("precompute", 10, 1, 2), "K=1"),
    (lambda: check_against_bound("kv-memory", 10, 2, 2, convention="bf16"), "convention"),
    (lambda: construction_cost("cot", 10, 2, 1).bits("int8"), "convention"),
])
def test_bad_inputs_raise(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()
