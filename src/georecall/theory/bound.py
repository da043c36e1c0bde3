"""Closed-form lower bound of Theorem 4.2 and the constructions' costs against it (docs/theory.md §6, §8).

Pure Python (``math`` only). Units: *bits*. ``P`` is log2 of the number of distinct values the
fact-dependent non-embedding parameters take over instances, ``B_e`` (``embedding_bits``) is log2 of
the number of distinct values one subject embedding takes (docs/theory.md §6.1). ``N``, ``K``, ``k`` are the
numbers of subjects, relations and hops (the configs' ``n_subjects``, ``n_relations``, ``n_hops``).

* :func:`required_bits` — ``P >= max(0, G, L)`` (§6.2, §6.4), with both thresholds and the regime.
* :func:`construction_cost` — d_model, MLP widths and dense parameter counts of every construction
  (§2-§5, §6.5, §8), and its (P, B_e) under the content and the crude float32 conventions (§6.6).
* :func:`check_against_bound` — a construction's P against the P the bound needs at its B_e (§6.6).
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Literal

Readout = Literal["fixed", "learned", "tied"]
Convention = Literal["content", "float32"]

READOUTS: tuple[str, ...] = ("fixed", "learned", "tied")
CONVENTIONS: tuple[str, ...] = ("content", "float32")

#: Bit counts below this are float rounding of an exact 0 (docs/theory.md §6.4).
ZERO_TOL = 1e-6

_LN2 = math.log(2.0)


# --------------------------------------------------------------------------------------------------
# Input checks


def _as_int(name: str, value: object, minimum: int) -> int:
    """``value`` as a Python int >= ``minimum``, else ``ValueError`` naming it."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    try:
        v = operator.index(value)  # accepts int and numpy integers, rejects floats
    except TypeError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v}")
    return v


def _as_bits(name: str, value: object) -> float:
    """``value`` as a finite float >= 0, else ``ValueError`` naming it."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number of bits, got {value!r}")
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number of bits, got {value!r}") from None
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    return v


def _check_readout(readout: str) -> str:
    if readout not in READOUTS:
        raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
    return readout


def _clip(x: float) -> float:
    """Treat |x| < ZERO_TOL as exactly 0 (float rounding of an exact identity)."""
    return 0.0 if abs(x) < ZERO_TOL else x


# --------------------------------------------------------------------------------------------------
# Counting primitives


def log2_factorial(n: int) -> float:
    """``log2 n!`` via ``lgamma`` (docs/theory.md §6.4); exact enough for n up to ~1e15."""
    n = _as_int("n", n, 0)
    return math.lgamma(n + 1) / _LN2


def nodes(K: int, j: int) -> int:
    """``n_j = 1 + K + ... + K^j``: vertices of a complete K-ary tree of depth j (docs/theory.md §6.2).

    ``n_{-1} = 0``; ``n_j = j + 1`` for ``K = 1``. Exact integer arithmetic.
    """
    K = _as_int("K", K, 1)
    j = _as_int("j", j, -1)
    if j == -1:
        return 0
    if K == 1:
        return j + 1
    return (K ** (j + 1) - 1) // (K - 1)


def information_bits(N: int, K: int) -> float:
    """``K log2 N!``: the information content of a world of K bijections of [N] (docs/theory.md §6.2, k = 1)."""
    N = _as_int("N", N, 2)
    K = _as_int("K", K, 1)
    return K * log2_factorial(N)


def log2_n_maps(N: int, K: int, k: int) -> float:
    """Lower bound on log2 of the number of distinct k-hop maps ``F`` over instances (docs/theory.md §6.2, §6.3).

    ``K log2 N!`` for k = 1; ``K log2 N! - 2 log2 N`` for k >= 2, K >= 2; 0 (no count) for k >= 2, K = 1.
    """
    N = _as_int("N", N, 2)
    K = _as_int("K", K, 1)
    k = _as_int("k", k, 1)
    if k == 1:
        return K * log2_factorial(N)
    if K == 1:
        return 0.0
    return K * log2_factorial(N) - 2.0 * math.log2(N)


def gamma_global(N: int, K: int, k: int) -> float:
    """``gamma_G = log2 #maps / N``: bits per subject embedding at which G vanishes (docs/theory.md §6.4)."""
    return log2_n_maps(N, K, k) / _as_int("N", N, 2)


def local_term(N: int, K: int, k: int, M: int, embedding_bits: float = 0.0) -> float:
    """The M-tree local count ``K [log2 (N - M n_{k-2})! - log2 (N - M n_{k-1})!] - M B_e`` (docs/theory.md §6.2).

    ``M`` must be admissible: ``1 <= M <= N // n_{k-1}``. With ``B_e = 0`` this is log2 of the number of
    restricted maps of the disjoint-tree family of §6.3.
    """
    N = _as_int("N", N, 2)
    K = _as_int("K", K, 1)
    k = _as_int("k", k, 1)
    b = _as_bits("embedding_bits", embedding_bits)
    a, n = nodes(K, k - 2), nodes(K, k - 1)
    M = _as_int("M", M, 1)
    if M * n > N:
        raise ValueError(f"M must be <= N // n_(k-1) = {N // n}, got {M}")
    return _local(N, K, a, n, M, b)


def _local(N: int, K: int, a: int, n: int, M: int, b: float) -> float:
    return K * (math.lgamma(N - M * a + 1) - math.lgamma(N - M * n + 1)) / _LN2 - M * b


def _max_local(N: int, K: int, k: int, b: float) -> tuple[float, int] | None:
    """``(max_M L(M), argmax)`` over ``1 <= M <= N // n_{k-1}``, or None if no M is admissible.

    L(M) is strictly concave on the reals (its second derivative is
    ``K/ln2 [a^2 psi1(N - M a + 1) - n^2 psi1(N - M n + 1)] < 0`` since ``n > a`` and the trigamma
    function psi1 is positive and decreasing), so its forward differences decrease: binary-search the
    first non-positive difference, then scan a few neighbours to absorb float ties. O(log N) lgamma calls.
    """
    a, n = nodes(K, k - 2), nodes(K, k - 1)
    m_max = N // n
    if m_max < 1:
        return None
    lo, hi = 1, m_max  # invariant: the argmax lies in [lo, hi]
    while lo < hi:
        mid = (lo + hi) // 2
        if _local(N, K, a, n, mid + 1, b) - _local(N, K, a, n, mid, b) > 0:
            lo = mid + 1
        else:
            hi = mid
    best_m, best = lo, _local(N, K, a, n, lo, b)
    for m in range(max(1, lo - 3), min(m_max, lo + 3) + 1):
        v = _local(N, K, a, n, m, b)
        if v > best or (v == best and m < best_m):
            best_m, best = m, v
    return best, best_m


def gamma_local(N: int, K: int, k: int, readout: Readout = "fixed") -> float | None:
    """``gamma_L``: the M = 1 local term at ``B_e = 0`` (about ``K^k log2 N``), where L vanishes (docs/theory.md §6.4).

    None where L does not apply (tied readout, or ``N < n_{k-1}``).
    """
    N = _as_int("N", N, 2)
    K = _as_int("K", K, 1)
    k = _as_int("k", k, 1)
    if _check_readout(readout) == "tied" or N < nodes(K, k - 1):
        return None
    return _local(N, K, nodes(K, k - 2), nodes(K, k - 1), 1, 0.0)


# --------------------------------------------------------------------------------------------------
# The bound


@dataclass(frozen=True)
class BoundResult:
    """What Theorem 4.2 demands of a no-CoT model at a given embedding budget (docs/theory.md §6.2, §6.4)."""

    N: int  # subjects
    K: int  # relations
    k: int  # hops
    embedding_bits: float  # B_e: bits per subject embedding the model uses
    readout: str  # class assumed: "fixed", "learned" (readout bits belong in P) or "tied" (U = E^T)
    required_bits: float  # max(0, G, L): bits P the fact-dependent non-embedding parameters need
    global_bits: float  # G = log2 #maps - N B_e (may be negative)
    local_bits: float | None  # L = max_M local term; None where L does not apply
    best_M: int | None  # the maximising number of trees M for L; None where L does not apply
    gamma_global: float  # gamma_G: B_e at which G vanishes
    gamma_local: float | None  # gamma_L: B_e at which L vanishes; None where L does not apply
    regime: int  # 1: B_e < gamma_G; 3: gamma_G <= B_e < gamma_L; 2: both vanished (§6.4)
    log2_maps: float  # the lower bound on log2 #maps used for G

    @property
    def global_(self) -> float:
        """Alias of :attr:`global_bits` (G)."""
        return self.global_bits

    @property
    def local(self) -> float | None:
        """Alias of :attr:`local_bits` (L)."""
        return self.local_bits


def required_bits(N: int, K: int, k: int, embedding_bits: float, readout: Readout = "fixed") -> BoundResult:
    """Bits ``P >= max(0, G, L)`` a no-CoT model needs at ``B_e = embedding_bits`` (docs/theory.md §6.2, §6.4).

    ``readout`` names the class of the caller's model (§6.5): ``"fixed"`` (readout fixed before the
    facts), ``"learned"`` (same numbers; the caller counts the readout's bits in its P) or ``"tied"``
    (``U = E^T``: only G applies; L, gamma_L and best_M are None).
    """
    N = _as_int("N", N, 2)
    K = _as_int("K", K, 1)
    k = _as_int("k", k, 1)
    b = _as_bits("embedding_bits", embedding_bits)
    readout = _check_readout(readout)

    log2maps = log2_n_maps(N, K, k)
    g = log2maps - N * b
    gam_g = log2maps / N
    loc = None if readout == "tied" else _max_local(N, K, k, b)
    if loc is None:
        l_bits, best_m, gam_l = None, None, None
    else:
        l_bits, best_m = _clip(loc[0]), loc[1]
        gam_l = gamma_local(N, K, k, readout)
    g = _clip(g)
    req = _clip(max(0.0, g, -math.inf if l_bits is None else l_bits))
    if b < gam_g:
        regime = 1
    elif gam_l is not None and b < gam_l:
        regime = 3
    else:
        regime = 2
    return BoundResult(N=N, K=K, k=k, embedding_bits=b, readout=readout, required_bits=req, global_bits=g,
                       local_bits=l_bits, best_M=best_m, gamma_global=gam_g, gamma_local=gam_l, regime=regime,
                       log2_maps=log2maps)


# --------------------------------------------------------------------------------------------------
# Construction costs

#: Every construction of docs/theory.md with a closed-form cost (§8), in the order of the summary table.
CONSTRUCTIONS: tuple[str, ...] = (
    "selector", "selector-mlp3", "attention-only", "disjoint", "disjoint-mlp", "kv-memory", "precompute",
    "cot", "cot-question-first", "readout-only", "meet-in-middle", "meet-in-middle-tied",
)
_SINGLE_HOP = ("selector", "selector-mlp3", "attention-only", "disjoint", "disjoint-mlp", "readout-only")
_COT = ("cot", "cot-question-first")


def code_length(n: int) -> int:
    """``m = ceil(log2 n)``, at least 1 (docs/theory.md §1.3); exact integer arithmetic."""
    n = _as_int("n", n, 1)
    return max(1, (n - 1).bit_length())


@dataclass(frozen=True)
class CostResult:
    """Closed-form size of one construction and its (P, B_e) under both conventions (docs/theory.md §6.6, §8).

    Dense minimal counts as in docs/theory.md §1.2: attention is ``sum over heads of 2 d_k d + 2 d_v d``, an MLP
    is ``w d + w + d w + d`` per hidden layer pair, embedding ``d V``, unembedding ``V d`` (0 when tied:
    it is the embedding), positional ``d T`` where positions are used.
    """

    name: str  # construction, one of CONSTRUCTIONS
    N: int  # subjects
    K: int  # relations
    k: int  # hops
    m: int  # code length of the construction (ceil(log2 N); m_A or m' = ceil(log2(K n_A)) for disjoint)
    d_model: int  # residual width d
    n_layers: int  # transformer layers
    n_heads: int  # heads per layer
    mlp_widths: tuple[int, ...]  # hidden width per layer (selector-mlp3: its two hidden layers); () if no MLP
    d_vocab: int  # V = N + K (disjoint: N + K + K n_A, n_A = N)
    n_ctx: int  # T = k + 1 without CoT, 2k + 1 with CoT
    uses_positions: bool  # whether a positional table (d T) is part of the model
    embedding: int  # token embedding d V
    positional: int  # d T or 0
    attention: int  # all heads of all layers
    mlp: int  # all MLPs of all layers (dense, layers counted separately even where weight-tied)
    unembedding: int  # V d; 0 for a tied readout
    total: int  # sum of the five
    readout: str  # "fixed", "learned" or "tied" (docs/theory.md §6.5)
    in_class: bool  # inside the no-CoT bound's model class (False for CoT: it escapes, §6.6)
    P_bits_content: float  # fact-dependent non-embedding bits, 1 bit per code coordinate (§6.6)
    embedding_bits_content: float  # B_e: fact-dependent code coordinates per subject embedding (§6.6)
    P_bits_float32: float  # 32 x (attention + MLP), plus 32 x the readout where learned (§6.6)
    embedding_bits_float32: float  # 32 d (§6.6)

    def bits(self, convention: Convention = "content") -> tuple[float, float]:
        """``(P, B_e)`` under ``convention`` ("content" or "float32", docs/theory.md §6.6)."""
        if convention == "content":
            return self.P_bits_content, self.embedding_bits_content
        if convention == "float32":
            return self.P_bits_float32, self.embedding_bits_float32
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")


def _mlp(widths: tuple[int, ...], d: int) -> int:
    """Dense count of one-hidden-layer MLPs ``d -> w -> d`` with biases, one per width."""
    return sum(2 * w * d + w + d for w in widths)


def construction_cost(name: str, N: int, K: int, k: int) -> CostResult:
    """Closed-form d_model, widths, dense counts and (P, B_e) of construction ``name`` (docs/theory.md §8, §6.6).

    Single-hop constructions (selector family, disjoint, readout-only) need k = 1, the meet-in-the-middle
    models k = 2, pre-computation K >= 2; ``ValueError`` otherwise. The disjoint constructions are costed
    with ``n_A = N`` attribute tokens per relation and bijective maps, where §6's count is unchanged.
    """
    if name not in CONSTRUCTIONS:
        raise ValueError(f"unknown construction {name!r}; expected one of {CONSTRUCTIONS}")
    N = _as_int("N", N, 2)
    K = _as_int("K", K, 1)
    k = _as_int("k", k, 1)
    if name in _SINGLE_HOP and k != 1:
        raise ValueError(f"construction {name!r} answers single-hop queries only (k = 1), got k={k}")
    if name.startswith("meet-in-middle") and k != 2:
        raise ValueError(f"construction {name!r} is built for k = 2 only, got k={k}")
    if name == "precompute" and K < 2:
        raise ValueError(f"construction 'precompute' needs K >= 2 (its d has K - 1 in a denominator), got K={K}")

    m = code_length(N)
    V = N + K
    T = 2 * k + 1 if name in _COT else k + 1
    uses_positions = name in ("kv-memory", "precompute", "cot", "cot-question-first",
                              "meet-in-middle", "meet-in-middle-tied")
    n_layers, n_heads, readout = 1, 1, "fixed"
    widths: tuple[int, ...]

    if name == "selector":  # §2.1
        d = (K + 1) * m + K
        widths = (K * m,)
        attn, mlp = 2 * d + 2 * K * m * d, _mlp(widths, d)
        p_c, b_c = 0.0, K * m
    elif name == "selector-mlp3":  # §2.2, 3-layer variant
        ell = max(1, (K - 1).bit_length())  # ceil(log2 K), at least 1
        d = K * m + ell + m
        w1, w2 = K * m + K, K * m
        widths = (w1, w2)
        attn = 2 * d + 2 * K * m * d
        mlp = w1 * d + w1 + w2 * w1 + w2 + d * w2 + d
        p_c, b_c = 0.0, K * m
    elif name == "attention-only":  # §2.3
        d = (K + 1) * m + K + 1
        n_heads, widths = K, ()
        attn, mlp = K * (2 * d + 2 * m * d), 0
        p_c, b_c = 0.0, K * m
    elif name == "disjoint":  # §3, F0 (n_A = N)
        V = N + K + K * N
        m = code_length(N)  # m_A
        d = K * m + K
        widths = ()
        attn, mlp = 2 * d + 2 * K * m * d, 0
        p_c, b_c = 0.0, K * m
    elif name == "disjoint-mlp":  # §3, F1 (n_A = N)
        V = N + K + K * N
        m = code_length(K * N)  # m'
        d = (K + 1) * m + K
        widths = (K * m,)
        attn, mlp = 2 * d + 2 * K * m * d, _mlp(widths, d)
        p_c, b_c = 0.0, K * m
    elif name == "kv-memory":  # §4.1
        d = m + 2 * K + 3
        n_layers = k
        widths = (2 * N * K + 2 * m + 2 * K,) * k
        attn = 6 * d + 2 * (m + K) * d + (k - 1) * (6 * d + 2 * K * d)
        mlp = _mlp(widths, d)
        p_c, b_c = float(K * N * m), 0  # one lookup table, shared by the k layers
    elif name == "precompute":  # §4.2
        if (k + 1) * math.log2(K) > 1024:  # its P_bits_float32 overflows anyway: say so before k huge powers
            raise OverflowError(f"precompute's K^(k+1) = {K}^{k + 1} is beyond floating point")
        d = m * (K ** (k + 1) - 1) // (K - 1) + 2 * K + 3
        n_layers = k
        widths = tuple(2 * K ** (k - ell + 1) * m + 2 * K for ell in range(1, k + 1))
        attn = 6 * d + 2 * (K**k * m + K) * d + (k - 1) * (6 * d + 2 * K * d)
        mlp = _mlp(widths, d)
        p_c, b_c = 0.0, K**k * m
    elif name == "cot":  # §5.1, format A
        d = (K + 1) * m + K + 3
        widths = (K * m,)
        attn, mlp = 6 * d + 2 * K * m * d, _mlp(widths, d)
        p_c, b_c = 0.0, K * m
    elif name == "cot-question-first":  # §5.2, format B
        d = 2 * K * m + 2 * K + m + 4
        n_heads, widths = 2, (K * m,)
        attn = 6 * d + 2 * K * d + 4 * d + 2 * K * m * d
        mlp = _mlp(widths, d)
        p_c, b_c = 0.0, K * m
    elif name == "readout-only":  # §6.5
        d = m + K + K * m
        widths = (K * m + K,)
        attn, mlp = 2 * d + 2 * m * d, _mlp(widths, d)
        readout = "learned"
        p_c, b_c = float(N * K * m), 0  # the backward codes in u_a
    elif name == "meet-in-middle":  # §6.5, learned readout
        d = 2 * K * m + 2 * K + 3
        widths = (2 * K * K * m + K,)
        attn, mlp = 6 * d + 2 * (K * m + K) * d, _mlp(widths, d)
        readout = "learned"
        p_c, b_c = float(N * K * m), K * m
    else:  # "meet-in-middle-tied", §6.5
        d = 3 * K * m + 2 * K + 3
        widths = (2 * K * K * m + K,)
        attn, mlp = 6 * d + 2 * (K * m + K) * d, _mlp(widths, d)
        readout = "tied"
        p_c, b_c = 0.0, 2 * K * m  # forward and backward codes, both in e_s

    embedding = d * V
    positional = d * T if uses_positions else 0
    unembedding = 0 if readout == "tied" else V * d
    p_f = 32.0 * (attn + mlp) + (32.0 * unembedding if readout == "learned" else 0.0)
    return CostResult(
        name=name, N=N, K=K, k=k, m=m, d_model=d, n_layers=n_layers, n_heads=n_heads, mlp_widths=widths,
        d_vocab=V, n_ctx=T, uses_positions=uses_positions, embedding=embedding, positional=positional,
        attention=attn, mlp=mlp, unembedding=unembedding,
        total=embedding + positional + attn + mlp + unembedding, readout=readout, in_class=name not in _COT,
        P_bits_content=float(p_c), embedding_bits_content=float(b_c), P_bits_float32=p_f,
        embedding_bits_float32=32.0 * d,
    )


# --------------------------------------------------------------------------------------------------
# Constructions against the bound


@dataclass(frozen=True)
class BoundCheck:
    """One construction's P against the P the bound needs at its B_e (docs/theory.md §6.6)."""

    name: str  # construction
    N: int  # subjects
    K: int  # relations
    k: int  # hops
    convention: str  # "content" or "float32"
    readout: str  # the construction's own readout, the class the bound is evaluated in
    P_have: float  # the construction's P (bits), readout included where learned
    embedding_bits: float  # its B_e (bits)
    P_needed: float  # required_bits at that B_e and readout
    holds: bool  # P_have >= P_needed (up to float rounding)
    in_class: bool  # inside the no-CoT class; False for CoT
    outside_class: bool  # not in_class: the bound does not apply (CoT escapes it)
    verdict: str  # "holds", "violated" (would refute the theorem) or "outside the bound"
    P_have_readout_uncounted: float | None  # learned readout only: P with the readout left out
    P_needed_fixed_readout: float  # the requirement if the readout were scored as fixed (L included)
    bound: BoundResult  # the full bound at (N, K, k, B_e, readout)


def check_against_bound(name: str, N: int, K: int, k: int, convention: Convention = "content") -> BoundCheck:
    """Score construction ``name`` against Theorem 4.2 at its own B_e and readout (docs/theory.md §6.6).

    A construction in the class with ``holds = False`` would contradict the theorem; CoT is scored too
    (so its P can be compared) but is ``outside_class``: each step reads a new subject embedding.
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    cost = construction_cost(name, N, K, k)
    p_have, b_e = cost.bits(convention)
    bound = required_bits(cost.N, cost.K, cost.k, b_e, readout=cost.readout)  # type: ignore[arg-type]
    fixed = bound if cost.readout == "fixed" else required_bits(cost.N, cost.K, cost.k, b_e, readout="fixed")
    holds = p_have >= bound.required_bits * (1 - 1e-12) - ZERO_TOL
    if not cost.in_class:
        verdict = "outside the bound"
    else:
        verdict = "holds" if holds else "violated"
    uncounted = None
    if cost.readout == "learned":
        uncounted = p_have - (32.0 * cost.unembedding if convention == "float32" else cost.P_bits_content)
    return BoundCheck(name=cost.name, N=cost.N, K=cost.K, k=cost.k, convention=convention, readout=cost.readout,
                      P_have=p_have, embedding_bits=b_e, P_needed=bound.required_bits, holds=holds,
                      in_class=cost.in_class, outside_class=not cost.in_class, verdict=verdict,
                      P_have_readout_uncounted=uncounted, P_needed_fixed_readout=fixed.required_bits, bound=bound)
