"""Claims C1-C6 (constructions and the lower bound): each criterion on hand-built payloads giving every verdict,
then on a real smoke run of the ``constructions`` experiment, whose figures must render from the payload."""

import dataclasses
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from georecall.experiments.claims import VERDICTS, Decision
from georecall.experiments.claims.constructions import CLAIMS, margin_guarantee

BY_ID = {c.id: c for c in CLAIMS}


# ---------------------------------------------------------------------------------------------------
# Hand-built payloads: small dicts with the payload's field names


def _m(n):
    return max(1, math.ceil(math.log2(n)))


def row(name, n, k_rel, k=1, **kw):
    """One ``constructions`` row of an exact construction sized as docs/theory.md says; ``kw`` overrides fields."""
    m = _m(n)
    d = {"selector": (k_rel + 1) * m + k_rel, "selector-mlp3": k_rel * m + _m(k_rel) + m,
         "attention-only": (k_rel + 1) * m + k_rel + 1, "cot": (k_rel + 1) * m + k_rel + 3,
         "cot-question-first": 2 * k_rel * m + 2 * k_rel + m + 4, "kv-memory": m + 2 * k_rel + 3,
         "precompute": m * (k_rel ** (k + 1) - 1) // (k_rel - 1) + 2 * k_rel + 3 if k_rel > 1 else 0,
         }.get(name, k_rel * m + k_rel)
    cot = name.startswith("cot")
    r = {"name": name, "n_subjects": n, "n_relations": k_rel, "n_hops": k, "cot": cot, "m": m,
         "accuracy": 1.0, "n_wrong": 0, "n_queries": n * k_rel ** k, "n_query_space": n * k_rel ** k,
         "all_queries": True, "min_margin": 2.0, "beta": None, "d_model": d, "d_model_formula": d,
         "d_match": True, "mlp_widths": [k_rel * m], "mlp_widths_formula": [k_rel * m], "widths_match": True,
         "n_layers": 1 if cot else k, "params_match": True, "params_total": 10 * d + (2 * k + 1) * d * cot,
         "params_non_positional": 10 * d, "params": {"positional": (2 * k + 1) * d * cot},
         "k_log2_n": k_rel * math.log2(n), "readout": "fixed", "in_class": not cot,
         "content_P_bits": 0.0, "content_embedding_bits": float(k_rel * m), "bound_required_bits": 0.0,
         "bound_holds": True, "regime": 2}
    r.update(kw)
    return r


def bound_row(n, k_rel, k, point, required, regime, gamma_g=10.0, gamma_l=40.0, log2_maps=100.0):
    return {"n_subjects": n, "n_relations": k_rel, "n_hops": k, "point": point, "required_bits": required,
            "regime": regime, "gamma_global": gamma_g, "gamma_local": gamma_l, "log2_maps": log2_maps}


GOOD_BOUND = [bound_row(64, 2, 2, "zero", 500.0, 1), bound_row(64, 2, 2, "gamma_G", 100.0, 3),
              bound_row(64, 2, 2, "mid", 50.0, 3), bound_row(64, 2, 2, "gamma_L", 0.0, 2)]


def payload(*rows, bound=None):
    return {"constructions": {"constructions": list(rows), "bound_table": GOOD_BOUND if bound is None else bound}}


def verdict(claim_id, p):
    d = BY_ID[claim_id].decide(p)
    assert isinstance(d, Decision) and d.verdict in VERDICTS and d.reason
    json.dumps(d.numbers, allow_nan=False)  # plain JSON numbers
    return d


def selectors(ns=(16, 256), k_rel=2, **kw):
    return [row(name, n, k_rel, **kw) for name in ("selector", "selector-mlp3") for n in ns]


def test_every_claim_is_declared_for_this_experiment():
    assert [c.id for c in CLAIMS] == ["C1", "C2", "C3", "C4", "C5", "C6"]
    for c in CLAIMS:
        assert c.experiments[0] == "constructions" and c.decide is not None and c.criterion and c.statement
        assert c.figures and all(f.startswith("constructions/") and f.endswith(".png") for f in c.figures)


def test_c1_verdicts():
    assert verdict("C1", payload(*selectors())).verdict == "reproduced"
    d = verdict("C1", payload(*selectors()))
    assert d.numbers["max_d_over_K_log2_N"] == pytest.approx(14 / 8)  # N = 16, K = 2: d = 14
    # d grows like K log^2 N (exact answers): partly.
    grown = [dict(r, d_model=r["n_relations"] * r["m"] ** 2) for r in selectors()]
    assert verdict("C1", payload(*grown)).verdict == "partly"
    assert verdict("C1", payload(*selectors(ns=(16, 64)))).verdict == "partly"  # span 4x < 16x
    assert verdict("C1", payload(*[r for r in selectors() if r["name"] == "selector"])).verdict == "partly"
    assert verdict("C1", payload(*selectors(), row("selector", 1024, 2, all_queries=False))).verdict == "partly"
    assert verdict("C1", payload(*selectors()[:-1], row("selector-mlp3", 256, 2, d_match=False))).verdict == "partly"
    bad = selectors()[:-1] + [row("selector-mlp3", 256, 2, accuracy=0.999, n_wrong=1)]
    assert verdict("C1", payload(*bad)).verdict == "not reproduced"
    assert verdict("C1", payload(row("cot", 16, 2, 2))).verdict == "not tested"


def test_c1_rounding_of_the_code_length_is_not_growth():
    # N = 2^j + 1 needs one more bit than 2^j: d / (K log2 N) may rise a little, d / (K m) does not.
    rows = selectors(ns=(64, 1025))
    assert rows[1]["d_model"] / rows[1]["k_log2_n"] > rows[0]["d_model"] / rows[0]["k_log2_n"]
    assert verdict("C1", payload(*rows)).verdict == "reproduced"


def test_c2_verdicts():
    beta = math.log(4) + 3
    g = margin_guarantee(beta, 4)
    assert 0 < g < 2
    good = [row("attention-only", n, 4, beta=beta, min_margin=g) for n in (16, 256)]
    assert verdict("C2", payload(*good)).verdict == "reproduced"
    low = [dict(good[0], min_margin=0.5 * g), good[1]]  # exact, margin > 0 but below docs/theory.md §2.3's guarantee
    assert verdict("C2", payload(*low)).verdict == "partly"
    assert verdict("C2", payload(good[0], dict(good[1], params_match=False))).verdict == "partly"
    wrong = [dict(good[0], accuracy=0.5, n_wrong=8, min_margin=-1.0), good[1]]
    assert verdict("C2", payload(*wrong)).verdict == "not reproduced"


def test_c3_verdicts():
    good = [row(name, n, 2, mlp_widths=[]) for name in ("disjoint", "disjoint-mlp") for n in (16, 64)]
    assert verdict("C3", payload(*good)).verdict == "reproduced"
    assert verdict("C3", payload(*good[:2])).verdict == "partly"  # F1 absent
    assert verdict("C3", payload(*good[:3], dict(good[3], accuracy=0.9, n_wrong=3))).verdict == "not reproduced"


def multihop(hops=(2, 3), **kw):
    return [row(name, 16, 2, k, **kw) for name in ("kv-memory", "precompute") for k in hops]


def test_c4_verdicts():
    d = verdict("C4", payload(*multihop()))
    assert d.verdict == "reproduced"
    assert d.numbers["d_growth_per_hop"]["kv-memory N=16 K=2"] == 1.0  # d = m + 2K + 3 for every k
    assert d.numbers["d_growth_per_hop"]["precompute N=16 K=2"] == pytest.approx(67 / 35)
    assert verdict("C4", payload(*multihop(hops=(1, 2)))).verdict == "partly"  # one k >= 2
    assert verdict("C4", payload(*multihop(), row("kv-memory", 16, 2, 4, widths_match=False))).verdict == "partly"
    bad = multihop()[:-1] + [row("precompute", 16, 2, 3, accuracy=0.75, n_wrong=32)]
    assert verdict("C4", payload(*bad)).verdict == "not reproduced"


def cots(hops=(1, 2, 4), **kw):
    return [row(name, 16, 2, k, **kw) for name in ("cot", "cot-question-first") for k in hops]


def test_c5_verdicts():
    assert verdict("C5", payload(*cots())).verdict == "reproduced"
    grows = [dict(r, d_model=r["d_model"] + r["n_hops"]) for r in cots()]  # exact, but d grows with k
    assert verdict("C5", payload(*grows)).verdict == "partly"
    assert verdict("C5", payload(*cots(hops=(1, 2)))).verdict == "partly"  # k never reaches 4
    thin = cots() + [row("cot", 16, 2, 12, all_queries=False, n_queries=500)]
    assert verdict("C5", payload(*thin)).verdict == "partly"
    big = cots() + [row("cot", 16, 2, 12, all_queries=False, n_queries=20_000)]  # a large sample is enough
    assert verdict("C5", payload(*big)).verdict == "reproduced"
    bad = cots()[:-1] + [row("cot-question-first", 16, 2, 4, accuracy=0.99, n_wrong=2)]
    assert verdict("C5", payload(*bad)).verdict == "not reproduced"
    assert verdict("C5", payload(*[r for r in cots() if r["name"] != "cot"])).verdict == "not tested"


def bound_rows():
    kv = row("kv-memory", 64, 2, 2, content_P_bits=768.0, content_embedding_bits=0.0, bound_required_bits=580.0,
             regime=1)
    pre = row("precompute", 64, 2, 2, content_embedding_bits=24.0, bound_required_bits=0.0, regime=2)
    ro = row("readout-only", 64, 2, 1, readout="learned", content_P_bits=768.0, content_embedding_bits=0.0,
             bound_required_bits=592.0, regime=1)
    cot = row("cot", 64, 2, 2, content_P_bits=0.0, bound_required_bits=300.0, bound_holds=False, regime=3)
    return [kv, pre, ro, cot]


def test_c6_verdicts():
    d = verdict("C6", payload(*bound_rows()))
    assert d.verdict == "reproduced"
    assert d.numbers["n_in_class"] == 3  # CoT is outside the class: its P = 0 below the no-CoT bound is no violation
    assert d.numbers["n_cot_rows_below_no_cot_bound"] == 1
    assert d.numbers["min_P_over_required"] == pytest.approx(768 / 592)
    assert "elsewhere" in d.reason
    vacuous = [dict(GOOD_BOUND[0], required_bits=0.0)] + GOOD_BOUND[1:]  # 0 where regime 1 binds
    assert verdict("C6", payload(*bound_rows(), bound=vacuous)).verdict == "partly"
    never_binds = [r for r in bound_rows() if r["regime"] != 1]
    assert verdict("C6", payload(*never_binds)).verdict == "partly"
    below = bound_rows() + [row("kv-memory", 64, 2, 3, content_P_bits=100.0, bound_required_bits=580.0,
                                bound_holds=False, regime=1)]
    assert verdict("C6", payload(*below)).verdict == "not reproduced"
    learned_uncounted = bound_rows() + [row("meet-in-middle", 64, 2, 2, readout="learned", content_P_bits=0.0,
                                            bound_required_bits=200.0, bound_holds=False, regime=3)]
    assert verdict("C6", payload(*learned_uncounted)).verdict == "not reproduced"


def _multihop(*break_even):
    """A multihop payload of successful no-CoT models (fixed readout) with these break-even precisions b*.

    Each model is compared at 1 and 32 bits per number (B_e = b d, P = b x fact-dependent parameters); it is
    below the bound at b exactly when b < b* (None: below it up to 64 bits).
    """
    bound = []
    for i, b_star in enumerate(break_even):
        comps = [{"bits": b, "bites": b * 8 < 24, "below": b_star is None or b < b_star,
                  "ratio": None if b * 8 >= 24 else 3.0 * b} for b in (1.0, 32.0)]
        bound.append({"N": 64, "k": 2, "condition": "direct-frozen", "d_model": 8, "seed": i, "in_class": True,
                      "comparisons": comps, "break_even_bits": b_star})
    learned = {"N": 64, "k": 2, "condition": "direct-learned", "d_model": 8, "seed": 0, "in_class": False,
               "comparisons": [], "break_even_bits": 0.01, "fixed_readout_break_even_bits": 40.0}
    return {"bits_per_number": [1.0, 32.0], "bound": [*bound, learned]}


def test_c6_trained_side_compares_in_one_unit_and_flags_a_model_below_at_float32():
    both = {**payload(*bound_rows()), "multihop": _multihop(0.3, 0.05)}
    d = verdict("C6", both)
    assert d.verdict == "reproduced" and d.numbers["n_trained_in_class"] == 2  # the learned readout is outside it
    assert d.numbers["trained_max_break_even_bits"] == pytest.approx(0.3) and "32 bits per number" in d.reason
    assert d.numbers["trained_per_bits"][0] == {"bits": 1.0, "n_bites": 2, "n_below": 0, "min_ratio": 3.0}
    # outside the class, a learned readout below the fixed-readout bound up to 40 bits is reported, not decisive
    assert d.numbers["learned_readout_max_break_even_bits"] == pytest.approx(40.0)
    for planted in ((0.3, 33.0), (0.3, None)):  # below the bound even at 32 bits per number
        d = verdict("C6", {**payload(*bound_rows()), "multihop": _multihop(*planted)})
        assert d.verdict == "not reproduced" and d.numbers["trained_n_below_float32"] == 1
        assert d.numbers["trained_below_bound_at_float32"] == ["N=64 k=2 direct-frozen d=8 seed 1"]
    below_at_1 = verdict("C6", {**payload(*bound_rows()), "multihop": _multihop(2.0)})  # needs > 1 bit: allowed
    assert below_at_1.verdict == "reproduced" and below_at_1.numbers["trained_per_bits"][0]["n_below"] == 1
    never_binds = [r for r in bound_rows() if r["regime"] != 1]
    assert verdict("C6", {**payload(*never_binds), "multihop": _multihop(0.3)}).verdict == "partly"
    none = verdict("C6", {**payload(*bound_rows()), "multihop": {"bits_per_number": [1.0], "bound": []}})
    assert none.verdict == "reproduced" and "no successful trained model" in none.reason
    no_class = [r for r in bound_rows() if not r["in_class"]]
    assert verdict("C6", {**payload(*no_class), "multihop": _multihop(33.0)}).verdict == "not tested"
    assert BY_ID["C6"].experiments == ("constructions", "multihop")


def test_claims_and_plotting_modules_are_torch_free():
    code = ("import sys; import georecall.experiments.claims.constructions, georecall.plotting.constructions; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------------------------------------
# A real smoke run


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    from georecall.experiments import constructions as exp

    cfg = exp.config("smoke")
    result = exp.analyze(cfg, [], tmp_path_factory.mktemp("out"))
    return exp, cfg, result, json.loads(json.dumps(dataclasses.asdict(result), allow_nan=False))


def test_smoke_analyze_builds_every_construction_exactly(smoke):
    exp, cfg, result, p = smoke
    assert exp.ID == "constructions" and exp.runs(cfg) == []
    for scale in ("smoke", "quick", "paper"):
        assert exp.config(scale).scale == scale
    with pytest.raises(ValueError):
        exp.config("huge")
    assert p["schema_version"] >= 1 and p["scale"] == "smoke" and p["dtype"] == "float32"
    names = {r["name"] for r in p["constructions"]}
    assert names == {n for fam in exp.FAMILIES.values() for n in fam}
    assert len(p["constructions"]) == len(cfg.plan())
    for r in p["constructions"]:
        assert r["accuracy"] == 1.0 and r["all_queries"] and r["n_queries"] == r["n_query_space"]
        assert r["d_match"] and r["widths_match"] and r["params_match"], r["name"]
        assert r["min_margin"] > 0 and r["build_s"] >= 0 and r["score_s"] >= 0
        assert r["bound_verdict"] == ("outside the bound" if r["cot"] else "holds")
    assert {t["point"] for t in p["bound_table"]} == {"zero", "gamma_G", "mid", "gamma_L"}
    assert "constructions (smoke" in exp.summarize(result)


def test_smoke_payload_reproduces_every_claim(smoke):
    p = smoke[3]
    for c in CLAIMS:
        d = c.decide({"constructions": p})
        assert d.verdict == "reproduced", (c.id, d.reason)
        json.dumps(d.numbers, allow_nan=False)


def _nonblank(png):
    from matplotlib.image import imread

    img = np.asarray(imread(png))
    return img.ndim == 3 and float(img[..., :3].std()) > 0.01


def test_smoke_figures_render_from_the_saved_payload(smoke, tmp_path):
    from georecall.plotting.constructions import FIGURES
    from georecall.results.envelope import make_envelope, write_envelope

    exp, _, _, p = smoke
    write_envelope(tmp_path, make_envelope(experiment="constructions", scale="smoke", provenance={},
                                           paper_reported={}, meta={}, runs=[], claims=[], payload=p))
    paths = exp.plot(tmp_path)  # reads result.json, draws with georecall.plotting.constructions.plot
    assert sorted(p.name for p in paths) == sorted([f"{f}.png" for f in FIGURES] + [f"{f}.csv" for f in FIGURES])
    for path in paths:
        assert path.stat().st_size > 0
        if path.suffix == ".png":
            assert _nonblank(path), path
        else:
            assert len(path.read_text().splitlines()) >= 2  # header and at least one row
