"""Hostile input, fuzzed: whatever a sweep file or a --set override holds, the command line answers with success or
one line and exit 2 — never a traceback. Training itself is replaced by a stub (the parsing is what is fuzzed)."""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from georecall.cli import main
from georecall.training import sweep as sweep_mod

_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10 ** 12, 10 ** 12),
                     st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12))
_JSON = st.recursive(_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                     st.dictionaries(st.text(max_size=10), inner, max_size=4)),
                     max_leaves=12)
_KEYS = st.sampled_from(["task", "model", "train", "seeds", "task.n_subjects", "model.d_model", "train.lr",
                         "train.steps", "task.n_relations", "model.n_heads", "nope", "task.cot"])
_SWEEPS = st.one_of(
    _JSON,
    st.fixed_dictionaries({}, optional={"name": st.one_of(st.text(max_size=12), _SCALARS),
                                        "base": st.one_of(_JSON, st.dictionaries(_KEYS, _JSON, max_size=3)),
                                        "grid": st.one_of(_JSON, st.dictionaries(_KEYS, st.lists(_SCALARS, max_size=3),
                                                                                 max_size=3))}))


def _stub_sweep(runs, out_dir, **_):
    return sweep_mod.SweepReport(total=len(list(runs)), skipped=0, trained=0, failed=0, out_dir=str(out_dir))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=_SWEEPS)
def test_any_sweep_file_gets_an_answer_not_a_traceback(spec, tmp_path_factory, monkeypatch, capsys):
    monkeypatch.setattr(sweep_mod, "run_sweep", _stub_sweep)
    folder = tmp_path_factory.mktemp("fz")
    path = folder / "s.json"
    path.write_text(json.dumps(spec, allow_nan=True))
    code = main(["sweep", str(path), "--out", str(folder / "out"), "--quiet", "--workers", "1"])
    err = capsys.readouterr().err
    assert code in (0, 2), (code, err)
    assert "Traceback" not in err
    if code == 2:
        assert len(err.strip().splitlines()) == 1 and err.startswith("georecall: error:")


# Sizes bounded to +-1000 here (huge ones are refused by the memory estimate, tested in test_cli_destinations):
# a valid override still evaluates its model once, and that must stay quick.
_SMALL = st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), st.floats(-1e3, 1e3),
                   st.sampled_from([float("nan"), float("inf")]), st.text(max_size=12))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=_KEYS, value=st.one_of(_SMALL.map(json.dumps), st.lists(_SMALL, max_size=3).map(json.dumps),
                                  st.text(max_size=15)))
def test_any_set_override_of_train_gets_an_answer_not_a_traceback(key, value, capsys, monkeypatch):
    import dataclasses

    import georecall.training as training

    real = training.train

    def no_steps(cfg, **kw):  # a valid override trains zero steps: the answer is what is checked
        return real(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, steps=0)), **kw)

    monkeypatch.setattr(training, "train", no_steps)
    code = main(["train", "--steps", "0", "--quiet", "--n-subjects", "4", "--n-relations", "1", "--d-model", "4",
                 "--set", f"{key}={value}"])
    err = capsys.readouterr().err
    assert code in (0, 2), (code, err)
    assert "Traceback" not in err
