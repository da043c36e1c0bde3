"""The mechanism experiments' shared design: the prior-free threshold search, models at multiples of d*,
the transfer runs, and that only the search's own widths decide d* (fake store rows, no training)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from georecall.experiments import mechanism as mech

CFG = dataclasses.replace(mech.config("smoke"), conditions=("primary", "frozen_readout", "tied_readout",
                                                            "stop_at_target"), multiples=(1.3, 2.0),
                          side_multiples=(2.0,))
THRESHOLD = {"ln_learned": 11, "ln_frozen": 23, "ln_tied": 6}


def _row(run, accuracy: float) -> dict:
    return {"hash": run.config_hash(), "status": "done", "config.seeds": list(run.seeds),
            "config.model.d_model": run.model.d_model, "result.accuracy": [accuracy], "result.steps": [10],
            "result.stop_reason": ["target"]}


def _train(runs, rows, threshold=THRESHOLD):
    """Pretend to train: a search run succeeds exactly when d >= its architecture's planted threshold."""
    for r in runs:
        arch = next(a for a, (ln, ro) in mech.ARCHITECTURES.items()
                    if r.model.layernorm == ln and r.model.frozen_unembedding == (ro == "frozen")
                    and r.model.tie_unembed == (ro == "tied"))
        rows.append(_row(r, 1.0 if r.model.d_model >= threshold[arch] else 0.2))


def _search(cfg=CFG, threshold=THRESHOLD, with_transfer=False):
    rows: list[dict] = []
    batch = mech.search_runs(cfg)
    for _ in range(40):
        _train(batch, rows, threshold)
        batch = mech.next_runs(cfg, rows, Path("."), with_transfer=with_transfer)
        if all(r.train.stop_at_target and r.train.weight_decay == 0 and r.init_from is None
               and r.task.world_variant == 0 and r.config_hash() not in {x["hash"] for x in rows} for r in batch) \
                and any(r.config_hash() not in {x["hash"] for x in rows} for r in batch):
            continue  # still searching
        return rows, batch
    raise AssertionError("the search did not end")


def test_the_search_finds_each_planted_threshold_then_places_the_models():
    rows, models = _search()
    found = mech.thresholds(CFG, rows)
    assert {a: t.d_star for a, t in found.items()} == THRESHOLD
    assert all(t.status == "bracketed" for t in found.values())
    widths = {(r.model.layernorm, r.model.frozen_unembedding, r.model.tie_unembed, r.train.stop_at_target,
               r.model.d_model) for r in models}
    assert widths == {(True, False, False, False, 14), (True, False, False, False, 22),  # primary 1.3x, 2x of 11
                      (True, True, False, False, 46), (True, False, True, False, 12),  # frozen, tied at 2x
                      (True, False, False, True, 22)}  # stop at target at 2x: the search's own recipe
    assert len(models) == 5 * len(CFG.seeds)


def test_models_trained_for_other_reasons_never_move_d_star():
    rows, models = _search()
    # The stop-at-target model at 2x d* is a search run by config; make it fail (non-monotone outcome).
    stop = [r for r in models if r.train.stop_at_target]
    rows += [_row(r, 0.1) for r in stop]
    assert mech.thresholds(CFG, rows)["ln_learned"].d_star == THRESHOLD["ln_learned"]


def test_transfer_adds_a_swap_and_an_untrained_control_per_model_except_tied():
    _, runs = _search(with_transfer=True)
    swaps = [r for r in runs if r.init_from is not None]
    controls = [r for r in runs if r.task.world_variant == 1 and r.init_from is None]
    models = [r for r in runs if r.task.world_variant == 0]
    sources = {r.config_hash(): r for r in models}
    assert len(swaps) == len(controls) == len(models) - len(CFG.seeds)  # every model but the tied one
    for s in swaps:
        src = sources[s.init_from[0]]
        assert not src.model.tie_unembed and s.seeds == src.seeds and s.model == src.model
        assert s.task.world_variant == 1 and set(s.train.freeze) == set(s.init_params)
        assert "embed.W_E" not in s.init_params  # the embeddings start fresh


def test_an_unbracketed_architecture_gets_no_models():
    cfg = dataclasses.replace(CFG, search_max=16)
    rows, models = _search(cfg)
    found = mech.thresholds(cfg, rows)
    assert found["ln_frozen"].d_star is None and found["ln_frozen"].status == "censored_high"
    assert not any(r.model.frozen_unembedding for r in models)


@pytest.mark.parametrize("bad, match", [({"primary_multiple": 3.0}, "primary_multiple"),
                                        ({"conditions": ("frozen_readout",)}, "primary"),
                                        ({"conditions": ("primary", "nope")}, "chosen from"),
                                        ({"attribution_threshold": 1.5}, "attribution_threshold"),
                                        ({"search_start": 1000}, "search_start")])
def test_bad_configs_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(CFG, **bad)
