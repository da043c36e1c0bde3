"""The experiment framework: the one smallest-size rule, the outcome table, config checks and --set overrides."""

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from georecall.experiments import EXPERIMENTS, get_experiment
from georecall.experiments.base import (
    Recipe,
    apply_config_overrides,
    next_size,
    outcome_table,
    smallest_size,
)
from georecall.experiments.claims import VERDICTS, Claim, Decision, all_claims, evaluate


def test_smallest_size_on_a_curve_reports_the_rule_and_the_first_success():
    est = smallest_size([4, 8, 16, 32], [False, True, False, True])
    assert (est.size, est.first_success, est.status, est.failed_above) == (32, 8, "bracketed", (16,))
    assert est.non_monotone
    est = smallest_size([16, 4, 8], [True, True, True])  # any order
    assert (est.size, est.status, est.non_monotone) == (4, "censored_low", False)
    est = smallest_size([4, 8], [True, False])
    assert (est.size, est.first_success, est.status) == (None, 4, "censored_high")
    with pytest.raises(ValueError, match="distinct"):
        smallest_size([4, 4], [True, True])


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.integers(1, 64), st.booleans(), min_size=1, max_size=10))
def test_smallest_size_is_the_start_of_the_working_suffix(curve):
    est = smallest_size(list(curve), list(curve.values()))
    sizes = sorted(curve)
    if est.size is None:
        assert not curve[sizes[-1]]
    else:
        assert all(curve[s] for s in sizes if s >= est.size)
        below = [s for s in sizes if s < est.size]
        assert not below or not curve[below[-1]]
        assert est.status == ("bracketed" if below else "censored_low")
    works = [s for s in sizes if curve[s]]
    assert est.first_success == (works[0] if works else None)


def test_smallest_size_on_a_grid_needs_every_wider_point_to_work():
    # (d, m): (8, 64) works but (16, 64) above it fails, so the rule takes (16, 128), the cheapest robust point.
    sizes = [(8, 16), (8, 64), (16, 16), (16, 64), (16, 128), (8, 128)]
    works = [False, True, False, False, True, True]
    est = smallest_size(sizes, works, cost=lambda s: s[0] * s[1])
    assert est.first_success == (8, 64) and est.failed_above == ((16, 64),)
    assert est.size == (8, 128) and est.status == "bracketed"


def _row(cell, seed, acc, status="done"):
    return {"hash": f"{cell}{seed}", "status": status, "cell": cell, "config.seeds": [seed], "error": "boom",
            "result.accuracy": [acc], "result.steps": [10], "result.stop_reason": ["target"],
            "result.n_params.total": 100, "result.n_params.mlp": 40}


def test_outcome_table_groups_seeds_and_counts_failed_runs_as_misses():
    rows = [_row("a", 1, 1.0), _row("a", 0, 0.995), _row("a", 2, None, status="failed"), _row("b", 0, 0.5)]
    cells = outcome_table(rows, key=lambda r: (r["cell"],))
    a = cells[("a",)]
    assert a.seeds == (0, 1, 2) and a.accuracy == (0.995, 1.0, None) and a.errors == ("boom",)
    assert a.n_params == {"total": 100, "mlp": 40}
    assert a.n_success(0.99) == 2 and a.works(0.99) and not a.works(0.999)
    assert not a.works(0.99, n_seeds=5)  # seeds that never ran count as misses
    assert not cells[("b",)].works(0.99)
    with pytest.raises(ValueError, match="repeated seed"):
        outcome_table(rows + [_row("a", 0, 1.0)], key=lambda r: (r["cell"],))


@pytest.mark.parametrize("exp_id", list(EXPERIMENTS))
def test_every_experiment_config_takes_set_overrides_checked_by_name_and_type(exp_id):
    module = get_experiment(exp_id)
    cfg = module.config("smoke")
    names = {f.name for f in dataclasses.fields(cfg)}
    with pytest.raises(ValueError, match="unknown key 'no_such_field'"):
        apply_config_overrides(cfg, ["no_such_field=1"])
    with pytest.raises(ValueError, match="malformed"):
        apply_config_overrides(cfg, ["recipe.lr"])
    if "recipe" in names:
        assert isinstance(cfg.recipe, Recipe)
        new = apply_config_overrides(cfg, ["recipe.lr=1e-2", "recipe.steps=7"])
        assert new.recipe.lr == 0.01 and new.recipe.steps == 7 and new.scale == cfg.scale
        assert all(r.train.lr == 0.01 and r.train.steps == 7 for r in module.runs(new))
        with pytest.raises(ValueError, match="recipe.lr"):
            apply_config_overrides(cfg, ["recipe.lr=fast"])
        with pytest.raises(ValueError, match="lr must be > 0"):
            apply_config_overrides(cfg, ["recipe.lr=-1"])  # the recipe's own check runs again
        with pytest.raises(ValueError, match="unknown key 'recipe.nope'"):
            apply_config_overrides(cfg, ["recipe.nope=1"])
        with pytest.raises(ValueError, match="is a section"):
            apply_config_overrides(cfg, ["recipe=1"])
    if "seeds" in names:
        new = apply_config_overrides(cfg, ["seeds=[0, 1, 5]"])
        assert new.seeds == (0, 1, 5)
        with pytest.raises(ValueError, match="seeds"):
            apply_config_overrides(cfg, ["seeds=[0, 0, 1]"])  # the field's metadata: distinct
    with pytest.raises(ValueError, match="scale"):
        apply_config_overrides(cfg, ["scale=huge"])


def test_the_report_carries_every_claim_of_the_paper_once():
    claims = all_claims()
    assert [c.id for c in claims] == [f"C{i}" for i in range(1, 14)]
    for c in claims:
        assert c.statement and c.paper_ref and c.criterion
        assert c.decide is not None or c.tested_by  # an untested claim says what will test it
        assert set(c.experiments) <= set(EXPERIMENTS), c.id
        assert all(f.split("/")[0] in EXPERIMENTS and f.endswith(".png") for f in c.figures), c.id


def test_a_claim_whose_experiment_did_not_run_is_not_tested():
    claim = Claim(id="C99", statement="s", paper_ref="p", criterion="c", experiments=("threshold",),
                  decide=lambda p: Decision("reproduced", {}, "r"))
    assert evaluate(claim, {}).decision.verdict == "not tested"
    assert evaluate(claim, {"threshold": {}}).decision.verdict == "reproduced"
    with pytest.raises(ValueError, match="verdict"):
        Decision("maybe", {}, "r")
    assert VERDICTS == ("reproduced", "partly", "not reproduced", "not tested")


def _search(threshold: int, start: int, hi: int = 4096) -> tuple[dict[int, bool], int]:
    tried: dict[int, bool] = {}
    for steps in range(1, 100):
        nxt = next_size(tried, start=start, hi=hi)
        if nxt is None:
            return tried, steps
        assert nxt not in tried  # the search never asks twice
        tried[nxt] = nxt >= threshold
    raise AssertionError("the search did not end")


@settings(max_examples=60, deadline=None)
@given(threshold=st.integers(1, 3000), start=st.integers(1, 512))
def test_next_size_finds_any_monotone_threshold_from_any_start(threshold, start):
    tried, steps = _search(threshold, start)
    est = smallest_size(sorted(tried), [tried[d] for d in sorted(tried)])
    assert est.size == threshold
    assert est.status == ("censored_low" if threshold == 1 else "bracketed")
    assert steps <= 2 * 12 + 3  # doubling/halving, then bisection: logarithmic in the range


def test_next_size_reports_an_unbracketed_search_and_survives_non_monotone_outcomes():
    tried, _ = _search(10_000, start=8, hi=100)
    assert max(tried) == 100 and not any(tried.values())  # range exhausted: censored_high for smallest_size
    # Works at 6, fails at 7, works from 9: the bisection ends; smallest_size reports the violation.
    outcome = {d: d == 6 or d >= 9 for d in range(1, 64)}
    tried = {}
    while (nxt := next_size(tried, start=32, hi=64)) is not None:
        tried[nxt] = outcome[nxt]
    est = smallest_size(sorted(tried), [tried[d] for d in sorted(tried)])
    assert est.first_success <= est.size
    with pytest.raises(ValueError, match="lo <= start <= hi"):
        next_size({}, start=0, hi=4)


def test_an_adaptive_experiment_trains_stage_by_stage_and_resumes(tmp_path):
    import types
    from dataclasses import dataclass

    from georecall.config import ModelConfig, RunConfig, TaskConfig, TrainConfig
    from georecall.experiments.base import run_experiment

    def run(d: int) -> RunConfig:
        return RunConfig(task=TaskConfig(n_subjects=4, n_relations=1), model=ModelConfig(d_model=d, d_mlp=4),
                         train=TrainConfig(steps=2, warmup_steps=0), seeds=(0,))

    @dataclass(frozen=True)
    class Cfg:
        scale: str

    @dataclass(frozen=True)
    class Res:
        seen: list
        sweep: dict
        wall_time_s: float = 0.0

    stages = []

    def next_runs(cfg, rows, out):
        stages.append(sorted(int(r["config.model.d_model"]) for r in rows))
        ds = {int(r["config.model.d_model"]) for r in rows}
        return [run(max(ds) * 2)] if max(ds) < 8 else []

    mod = types.ModuleType("fake_adaptive")
    mod.ID, mod.config, mod.runs, mod.next_runs = "fake", lambda s: Cfg(s), lambda c: [run(2)], next_runs
    mod.analyze = lambda cfg, rows, out: Res(sorted(int(r["config.model.d_model"]) for r in rows), {})
    mod.plot = lambda folder: []
    first = run_experiment(mod, "smoke", tmp_path)
    assert first.result.seen == [2, 4, 8] and stages == [[2], [2, 4], [2, 4, 8]]
    assert first.result.sweep == {"total": 3, "skipped": 0, "trained": 3, "failed": 0}
    again = run_experiment(mod, "smoke", tmp_path)
    assert again.result.seen == [2, 4, 8] and again.result.sweep["trained"] == 0
