"""Hostile input, fuzzed: whatever a sweep file (JSON or YAML), a --set override (of train or of an experiment), a
reproduce selection or a construct/bound size holds, the command line answers with success or one line and exit 2 —
never a traceback, never exit 1. Training and reproduction are replaced by stubs (the parsing is what is fuzzed);
constructions are built and scored for real, at sizes kept tiny."""

import dataclasses
import json
import time
from pathlib import Path

import pytest
import yaml
from cli_answers import one_line_or_success as _one_line_or_success
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from georecall.cli import _CONSTRUCTION_NAMES, main
from georecall.config import RunConfig
from georecall.experiments import EXPERIMENTS, get_experiment
from georecall.experiments import base as exp_base
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
    _one_line_or_success(code, capsys.readouterr().err)


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

    with monkeypatch.context() as patch:  # undone after each example (else each wraps the one before)
        patch.setattr(training, "train", no_steps)
        code = main(["train", "--steps", "0", "--quiet", "--n-subjects", "4", "--n-relations", "1", "--d-model", "4",
                     "--set", f"{key}={value}"])
    err = capsys.readouterr().err
    assert code in (0, 2), (code, err)
    assert "Traceback" not in err


# ---------------------------------------------------------------------------------------------------
# Shared by the tests below: one command, and the property every command keeps.


def _answer(argv, capsys):
    """Exit status, stdout and stderr of one command (``main`` raises if a traceback would have reached a user)."""
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _refused(argv, capsys, *needles):
    """``argv`` is refused in one line that holds every needle."""
    code, _, err = _answer(argv, capsys)
    assert code == 2, (code, err)
    _one_line_or_success(code, err)
    for needle in needles:
        assert needle in err, (needle, err)
    return err


# ---------------------------------------------------------------------------------------------------
# Sweep files as YAML, with YAML's own hostility mixed in


_YAML_HOSTILE = st.sampled_from([
    "\t", "\t- x\n", "!!python/object/apply:os.system ['true']", "!!python/object:builtins.object {}",
    "!!python/name:os.system", "!!python/tuple [1, 2]", "!!binary aGk=", "!!set {a, b}", "!!timestamp 2001-12-14",
    "!!int x", "!custom 1", "&a ", "*a", "*nope", "<<: *a\n", "&a [1, 2]\nx: *a\n", "? [1, 2]\n: 3\n", "{", "]",
    ": :", "---\n", "...\n", "%YAML 1.1\n---\n", "\x00", "\x1b[31m", "\ufeff", "\u2028", "name: a\nname: b\n",
    "base: {}\nbase: {}\n", "grid: {seeds: [0]}\n", "'", '"', "|\n  x\n", ">-\n", "#", "@", "`", "[" * 300,
    "{a: " * 300, "- " * 300, "name: ../up\n", "name: .hidden\n", "name: 12\n",
]).map(str.encode)
_BAD_BYTES = st.sampled_from([b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80abc", b"\xf8\x88\x80\x80\x80"])


@st.composite
def _yaml_files(draw):
    """A sweep spec written as YAML, then (sometimes) hostile snippets or bytes dropped into it anywhere."""
    spec = draw(_SWEEPS)
    text = yaml.safe_dump(spec, default_flow_style=draw(st.sampled_from([None, True, False])),
                          allow_unicode=draw(st.booleans()))
    data = text.encode()
    for _ in range(draw(st.integers(0, 3))):
        snippet = draw(st.one_of(_YAML_HOSTILE, _BAD_BYTES, st.binary(max_size=6)))
        at = draw(st.integers(0, len(data)))
        data = data[:at] + snippet + data[at:]
    return data


def _sweep_answer(folder, filename, data, capsys):
    path = folder / filename
    path.write_bytes(data)
    return _answer(["sweep", str(path), "--out", str(folder / "out"), "--quiet", "--workers", "1"], capsys)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=_yaml_files(), filename=st.sampled_from(["s.yaml", "s.yml", "S.YAML"]))
def test_any_yaml_sweep_file_gets_an_answer_not_a_traceback(data, filename, tmp_path_factory, monkeypatch, capsys):
    monkeypatch.setattr(sweep_mod, "run_sweep", _stub_sweep)
    code, _, err = _sweep_answer(tmp_path_factory.mktemp("fy"), filename, data, capsys)
    _one_line_or_success(code, err)


_DEEP = 5000


@pytest.mark.parametrize(("data", "needles"), [
    (b"name: x\nbase:\n\ttask: {}\n", ["not valid YAML", "found character '\\t'", "line 3, column 1"]),
    (b"name: a\nname: b\n", ["not valid YAML", "duplicate key 'name'", "line 2"]),
    (b"base: {task: {n_subjects: 8, n_subjects: 16}}\n", ["duplicate key 'n_subjects'"]),
    (b"- 1\n- 2\n", ["a sweep file is an object with name, base and grid"]),
    (b"just words\n", ["a sweep file is an object"]),
    (b"", ["a sweep file is an object"]),
    (b"---\nname: a\n---\nname: b\n", ["not valid YAML", "expected a single document"]),
    (b"base: " + b"[" * _DEEP + b"]" * _DEEP + b"\n", ["nested"]),
    (b"base: " + b"{a: " * _DEEP + b"1" + b"}" * _DEEP + b"\n", ["nested"]),
    (b"base: " + b"[" * 40 + b"]" * 40 + b"\n", ["nested more than 32 levels deep"]),
    (b"name: \xff\xfe\n", ["not UTF-8 text", "0xff", "offset 6"]),
    (b"\x00name: x\n", ["not valid YAML", "special characters are not allowed"]),
    (b"name: 5\n", ["name must be a string", "got 5"]),
    (b"name: 2020-01-01\n", ["name must be a string", "datetime.date(2020, 1, 1)"]),
    (b"name: !!binary aGk=\n", ["name must be a string", "b'hi'"]),
    (b"name: [a, b]\n", ["name must be a string"]),
    (b"base: [1, 2]\n", ["base must be an object, got list"]),
    (b"grid: 7\n", ["grid must be an object, got int"]),
    (b"grid: {1: [2]}\n", ["grid keys are names such as task.n_subjects", "got 1"]),
    (b"grid: {~: [2]}\n", ["grid keys", "got None"]),
    (b"base: {1: 2}\n", ["unknown key(s) in run config: 1"]),
    (b"base: {task: {1: 2, x: 3}}\n", ["unknown key(s) in task: 1, x"]),
    (b"1: 2\nname: x\n", ["unknown key(s) 1"]),
    (b"grid: {seeds: [a]}\n", ["grid seeds expects int", "'a'"]),
    (b"grid: {seeds: [1.5]}\n", ["grid seeds expects int", "1.5"]),
    (b"grid: {seed: 3}\n", ["grid seeds expects list of int", "got 3"]),
    (b"grid: {seeds: {a: 1}}\n", ["grid seeds expects list of int"]),
    (b"grid: {train.lr: [.nan]}\n", ["lr must be > 0, got nan"]),
    (b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
     b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
     b"e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
     b"g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
     b"grid: {task.n_subjects: *h}\n", ["more than 100,000 values", "aliases"]),
    (b"base: &r [*r]\n", ["more than"]),  # an alias inside its own anchor: a list that holds itself
    (b"grid: {train.lr: [" + b", ".join(b"0.%d" % i for i in range(1, 100)) + b"], model.d_model: ["
     + b", ".join(b"%d" % i for i in range(1, 60)) + b"], seeds: [" + b", ".join(b"%d" % i for i in range(30))
     + b"]}\n", ["the grid expands to 175,230 runs", "more than 100,000"]),
], ids=["tab", "duplicate", "duplicate-nested", "list", "scalar", "empty", "two-documents", "deep-lists", "deep-maps",
        "forty-deep", "invalid-utf8", "nul", "name-int", "name-date", "name-binary", "name-list", "base-list",
        "grid-int", "grid-key-int", "grid-key-null", "base-key-int", "task-key-int", "top-key-int", "seeds-text",
        "seeds-float", "seed-scalar", "seeds-map", "lr-nan", "billion-laughs", "self-alias", "huge-grid"])
def test_yaml_sweep_faults_are_named_in_one_line(data, needles, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sweep_mod, "run_sweep", _stub_sweep)
    path = tmp_path / "s.yaml"
    path.write_bytes(data)
    _refused(["sweep", str(path), "--out", str(tmp_path / "out"), "--quiet", "--workers", "1"], capsys, str(path),
             *needles)


@pytest.mark.parametrize("payload", [
    "!!python/object/apply:os.system ['touch {marker}']",
    "!!python/object/apply:builtins.exec [\"open('{marker}', 'w')\"]",
    "!!python/object/new:builtins.open ['{marker}', 'w']",
])
def test_yaml_python_tags_are_refused_never_run(payload, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sweep_mod, "run_sweep", _stub_sweep)
    marker = tmp_path / "ran"
    for text in (payload, f"name: {payload}", f"base: {{task: {{n_subjects: {payload}}}}}"):
        path = tmp_path / "s.yaml"
        path.write_text(text.replace("{marker}", str(marker)) + "\n")
        _refused(["sweep", str(path), "--out", str(tmp_path / "out"), "--quiet"], capsys, "not valid YAML",
                 "could not determine a constructor for the tag", "python/object")
        assert not marker.exists()


def test_plain_yaml_features_still_work_anchors_merge_bom_and_case(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sweep_mod, "run_sweep", _stub_sweep)
    anchored = (b"name: anchored\nbase:\n  task: &t {n_subjects: 8, n_relations: 1}\n  model: {d_model: 4}\n"
                b"grid:\n  task.n_subjects: [8, 16]\n  seeds: &s [0, 1]\n")
    merged = b"name: merged\nbase:\n  task: {<<: {n_subjects: 8, n_relations: 2}, n_relations: 1}\n"
    for filename, data, total in (("a.yaml", anchored, 4), ("b.YML", b"\xef\xbb\xbf" + anchored, 4),
                                  ("c.yaml", merged, 1)):
        path = tmp_path / filename
        path.write_bytes(data)
        code, out, err = _answer(["sweep", str(path), "--out", str(tmp_path / "out"), "--quiet", "--json"], capsys)
        assert code == 0, err
        assert json.loads(out)["total"] == total


@pytest.mark.parametrize(("text", "needles"), [
    ('{"name": "a", "name": "b"}', ["not valid JSON", "duplicate key 'name'"]),
    ('{"base": {"task": {"n_subjects": 8, "n_subjects": 9}}}', ["duplicate key 'n_subjects'"]),
    ("{not json", ["not valid JSON", "line 1 column 2"]),
    ('{"name": "x"', ["not valid JSON"]),
    ("[" * 100_000, ["nested"]),
    ('{"base": 3}', ["base must be an object, got int 3"]),
    ('{"name": true}', ["name must be a string", "True"]),
])
def test_json_sweep_faults_name_the_file_in_one_line(text, needles, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sweep_mod, "run_sweep", _stub_sweep)
    path = tmp_path / "s.json"
    path.write_text(text)
    _refused(["sweep", str(path), "--out", str(tmp_path / "out"), "--quiet"], capsys, str(path), *needles)


def test_an_oversized_sweep_file_is_refused_before_it_is_read_whole(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sweep_mod, "MAX_SWEEP_FILE_BYTES", 1000)
    path = tmp_path / "big.yaml"
    path.write_text("name: big\n" + "# padding\n" * 200)
    _refused(["sweep", str(path), "--out", str(tmp_path / "out"), "--quiet"], capsys, "larger than")


def test_config_loading_names_wrong_shapes_and_odd_keys():
    from georecall.config import run_config_from_dict
    from georecall.training.sweep import MAX_GRID_RUNS, expand_grid

    with pytest.raises(ValueError, match="a run config must be an object, got list"):
        run_config_from_dict([1, 2])
    with pytest.raises(ValueError, match="unknown key"):
        run_config_from_dict({"task": {1: 2, None: 3, "x": 4}})
    with pytest.raises(ValueError, match="grid seeds expects"):
        expand_grid(RunConfig(), {"seeds": ["zero"]})
    with pytest.raises(ValueError, match=f"more than {MAX_GRID_RUNS:,}"):
        expand_grid(RunConfig(), {"train.lr": [0.1] * 1000, "model.d_model": [4] * 1000})
    assert [r.seeds for r in expand_grid(RunConfig(), {"seeds": "0,1"})] == [(0,), (1,)]


# ---------------------------------------------------------------------------------------------------
# georecall run EXPERIMENT --set ...: every field of every experiment's config, typed values and junk


def _config_paths(obj, prefix=""):
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            yield f"{prefix}{f.name}", value  # a section: setting it whole is refused
            yield from _config_paths(value, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", value


_EXPERIMENT_FIELDS = {e: dict(_config_paths(get_experiment(e).config("smoke"))) for e in EXPERIMENTS}


def _like(value):
    """Values of a field's own type (so the range checks run, not just the type check), edges included."""
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        return st.one_of(st.integers(-3, 40), st.sampled_from([0, -1, 2**31, 2**63, 10**30, -(10**30)]))
    if isinstance(value, float):
        return st.one_of(st.floats(), st.sampled_from([0.0, -0.0, 1e-300, 1e300]))
    if isinstance(value, str):
        return st.one_of(st.just(value), st.text(max_size=6), st.sampled_from(["", "none", "cpu", "cuda:7", "tiny"]))
    if isinstance(value, tuple):
        inner = _like(value[0]) if value else st.one_of(st.integers(-3, 40), st.floats(0, 10), st.text(max_size=4))
        return st.one_of(st.lists(inner, max_size=4), st.just(list(value)), st.just([]))
    return st.one_of(st.none(), st.integers(-3, 100), st.floats(), st.text(max_size=5))


def _stub_experiment(module, scale, out_dir, *, overrides=(), **_):
    """The driver up to its first stage: the config with the overrides, and its runs built (checked)."""
    cfg = exp_base.apply_config_overrides(module.config(scale), overrides)
    list(module.runs(cfg))
    return exp_base.ExperimentRun(result=None, envelope={"claims": []}, figures=[], folder=Path(out_dir))


_JUNK_NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_-.0 ", max_size=10)


@st.composite
def _run_args(draw):
    if draw(st.integers(0, 9)) == 0:  # a bad experiment name or scale
        return ["run", draw(st.one_of(_JUNK_NAMES, st.sampled_from(list(EXPERIMENTS)))), "--scale",
                draw(st.one_of(_JUNK_NAMES, st.sampled_from(["smoke", "quick", "paper", "SMOKE", ""])))]
    exp = draw(st.sampled_from(list(EXPERIMENTS)))
    fields = _EXPERIMENT_FIELDS[exp]
    args = ["run", exp, "--scale", draw(st.sampled_from(["smoke", "quick", "paper"]))]
    for _ in range(draw(st.integers(1, 3))):  # mostly a real field and a value of its type, else junk
        key = draw(st.sampled_from(sorted(fields)) if draw(st.integers(0, 5)) else
                   st.sampled_from(["nope", "recipe.nope", "a.b.c", "", ".", "recipe.", "scale"]))
        value = fields.get(key)
        if dataclasses.is_dataclass(value) or value is None and key not in fields or not draw(st.integers(0, 5)):
            raw = draw(st.text(max_size=10))
        else:
            raw = json.dumps(draw(_like(value)), allow_nan=True)
        form = draw(st.integers(0, 9))
        args += ["--set", f"{key}={raw}" if form < 7 else [f"{key} = {raw}", key, f"{key}=={raw}"][form - 7]]
    if draw(st.integers(0, 9)) == 0:
        args += ["--model", draw(st.text(max_size=6))]
    return args


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=_run_args())
def test_any_run_override_gets_an_answer_not_a_traceback(args, tmp_path_factory, monkeypatch, capsys):
    monkeypatch.setattr(exp_base, "run_experiment", _stub_experiment)
    out = tmp_path_factory.mktemp("fr")
    code, _, err = _answer([*args, "--out", str(out), "--quiet", "--json", "--workers", "1"], capsys)
    _one_line_or_success(code, err)


def test_run_refuses_a_budget_ladder_that_never_ends(tmp_path, monkeypatch, capsys):
    """2 ** budget_doublings step budgets were computed before any check: 10**21 hung the command for good."""
    monkeypatch.setattr(exp_base, "run_experiment", _stub_experiment)
    for exp, key in (("threshold", "budget_doublings"), ("capacity", "budget_doublings"),
                     ("frozen_control", "threshold.budget_doublings")):
        _refused(["run", exp, "--scale", "smoke", "--set", f"{key}={10**21}", "--out", str(tmp_path)], capsys,
                 "budget_doublings must be <= 30", str(10**21))
    assert _answer(["run", "threshold", "--scale", "smoke", "--set", "budget_doublings=30", "--out", str(tmp_path),
                    "--quiet", "--json"], capsys)[0] == 0


# ---------------------------------------------------------------------------------------------------
# georecall reproduce: --only lists of every shape, --scale, --max-members


_ONLY = st.one_of(
    st.none(),
    st.tuples(st.lists(st.one_of(st.sampled_from(list(EXPERIMENTS)), _JUNK_NAMES), max_size=4),
              st.sampled_from([",", " , ", ",,", ", ", ";"])).map(lambda t: t[1].join(t[0])),
    st.text(max_size=12),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(only=_ONLY, scale=st.integers(0, 4).flatmap(lambda i: st.sampled_from(["smoke", "quick", "paper"]) if i
                                                   else _JUNK_NAMES), max_members=st.integers(-3, 100))
def test_any_reproduce_selection_gets_an_answer_not_a_traceback(only, scale, max_members, tmp_path_factory,
                                                                 monkeypatch, capsys):
    import georecall.experiments.reproduce as reproduce_mod

    calls = []

    def stub(scale_, out_dir, *, only=None, **_):
        calls.append(only)
        folder = Path(out_dir)
        return reproduce_mod.Reproduction(markdown=folder / "report.md", html=folder / "report.html", timings={},
                                          verdicts={}, skipped={})

    monkeypatch.setattr(reproduce_mod, "reproduce", stub)
    out = tmp_path_factory.mktemp("fp")
    args = ["reproduce", "--scale", scale, "--max-members", str(max_members), "--out", str(out), "--quiet",
            "--json", "--workers", "1"]
    code, _, err = _answer(args + ([] if only is None else ["--only", only]), capsys)
    _one_line_or_success(code, err)
    ids = None if only is None else [s.strip() for s in only.split(",") if s.strip()]
    unknown = [i for i in ids or [] if i not in EXPERIMENTS]
    if code == 0:  # only a valid selection runs, and it runs exactly what was asked
        assert scale in ("smoke", "quick", "paper") and max_members >= 1 and not unknown
        assert calls == [ids] and (only is None or ids)
    else:
        assert not calls
        if scale in ("smoke", "quick", "paper") and unknown and all(u.isprintable() for u in unknown):
            assert "unknown experiment(s)" in err and unknown[0] in err


# ---------------------------------------------------------------------------------------------------
# georecall construct NAME and georecall bound: sizes of every sign and size, and not numbers at all

# Valid sizes stay tiny (N <= 8, K <= 2, k <= 3: milliseconds to build and score); the huge ones are refused by
# the memory estimate, the --hops range or the overflow check before anything is built.
_HUGE = st.sampled_from([10**12, 10**20, 2**63, 10**400, 10**1000])
_NOT_INT = st.sampled_from(["", " ", "1.5", "1e3", "abc", "0x10", "--", "nan", "inf", "4 4", "٤", "-", "+"])


@st.composite
def _int_arg(draw, lo, hi):
    """Mostly a small size of either sign (so that whole commands are valid often enough), else huge or no number."""
    kind = draw(st.integers(0, 9))
    if kind < 7:
        return str(draw(st.integers(lo, hi)))
    return draw(_NOT_INT) if kind == 9 else str(draw(_HUGE) * (1 if kind == 7 else -1))


@st.composite
def _construct_args(draw):
    if draw(st.booleans()):  # a tiny, likely valid construction (the other half: anything)
        args = ["construct", draw(st.sampled_from(_CONSTRUCTION_NAMES)), "--n-subjects", str(draw(st.integers(2, 8))),
                "--n-relations", str(draw(st.integers(1, 2))), "--seed", str(draw(st.integers(0, 5)))]
        if draw(st.booleans()):
            args += ["--hops", str(draw(st.integers(1, 3)))]
        if draw(st.booleans()):
            args += ["--n-queries", str(draw(st.integers(1, 4)))]
        return args
    name = draw(st.sampled_from(_CONSTRUCTION_NAMES)) if draw(st.integers(0, 9)) else draw(_JUNK_NAMES)
    args = ["construct", name]
    for option, lo, hi in (("--n-subjects", 0, 8), ("--n-relations", -1, 2), ("--hops", 0, 3),
                           ("--seed", -1, 5), ("--n-queries", -1, 6)):
        required = option in ("--n-subjects", "--n-relations")
        if required and draw(st.integers(0, 19)) or not required and draw(st.booleans()):
            args += [option, draw(_int_arg(lo, hi))]
    if draw(st.booleans()):
        args += ["--dtype", draw(st.sampled_from(["float32", "float64", "float32", "float64", "float16", ""]))]
    if draw(st.integers(0, 4)) == 0:
        args += ["--device", draw(st.sampled_from(["cpu", "tpu", "", "cuda:x", "cpu:0"]))]
    return args


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=_construct_args())
def test_any_construct_arguments_get_an_answer_not_a_traceback(args, capsys):
    code, out, err = _answer([*args, "--json"], capsys)
    _one_line_or_success(code, err)
    if code == 0:
        assert json.loads(out)["accuracy"] == 1.0  # the constructions are exact wherever they are built


_FLOATS = st.one_of(st.floats(0, 1e4).map(repr), st.floats().map(repr),
                    st.sampled_from(["nan", "inf", "-inf", "1e308", "1e309", "-0", "x", "", "1,5", "0x1p3"]))


@st.composite
def _bound_args(draw):
    args = ["bound"]
    for option, lo, hi in (("--n-subjects", 0, 2**20), ("--n-relations", 0, 64), ("--hops", 0, 1200)):
        if option == "--hops" and draw(st.booleans()):
            continue
        if draw(st.integers(0, 19)):
            args += [option, draw(_int_arg(lo, hi))]
    if draw(st.integers(0, 19)):
        args += ["--embedding-bits", draw(_FLOATS)]
    if draw(st.booleans()):
        readout = st.sampled_from(["fixed", "learned", "tied"]) if draw(st.integers(0, 4)) else _JUNK_NAMES
        args += ["--readout", draw(readout)]
    return args


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=_bound_args(), as_json=st.booleans())
def test_any_bound_arguments_get_an_answer_not_a_traceback(args, as_json, capsys):
    code, out, err = _answer(args + (["--json"] if as_json else []), capsys)
    _one_line_or_success(code, err)
    if code == 0 and as_json:
        payload = json.loads(out)
        assert payload["required_bits"] >= 0


@pytest.mark.parametrize(("args", "needles"), [
    # an unbounded k: nodes(K, k) = K^k was computed first, and 10**20 hops never finished
    (["bound", "--n-subjects", "4", "--n-relations", "2", "--hops", str(10**20), "--embedding-bits", "0"],
     ["--hops", "x<=1000"]),
    (["bound", "--n-subjects", str(10**400), "--n-relations", "2", "--embedding-bits", "0"],
     ["too large for floating point", "K=2"]),  # an OverflowError traceback before
    (["bound", "--n-subjects", "4", "--n-relations", str(10**400), "--embedding-bits", "0"],
     ["too large for floating point"]),
    (["construct", "selector", "--n-subjects", "4", "--n-relations", "2", "--seed", "-1"],
     ["--seed", "-1", "x>=0"]),  # numpy's "expected non-negative integer", naming nothing, before
    (["construct", "kv-memory", "--n-subjects", "4", "--n-relations", "2", "--hops", str(10**20)],
     ["--hops", "x<=1000"]),  # an OverflowError traceback before
    (["construct", "precompute", "--n-subjects", "4", "--n-relations", "2", "--hops", str(10**20)],
     ["--hops"]),  # hung computing K^(k+1) before
    (["construct", "precompute", "--n-subjects", "4", "--n-relations", "2", "--hops", "1000"],
     ["precompute", "k=1000", "too large to count"]),
    (["construct", "precompute", "--n-subjects", "4", "--n-relations", str(10**300), "--hops", "1000"],
     ["too large to count", "beyond floating point"]),  # about a minute of big-integer powers before
    (["theory-figures", "--out", "{tmp}", "--max-hops", str(10**7)], ["--max-hops", "x<=1000"]),  # hung before
    (["theory-figures", "--out", "{tmp}", "--max-hops", "1000"], ["too large for floating point", "--max-hops"]),
], ids=["bound-hops-huge", "bound-N-past-float", "bound-K-past-float", "construct-seed-negative",
        "construct-kv-hops-huge", "construct-precompute-hops-huge", "construct-precompute-overflow",
        "construct-precompute-K-huge", "figures-max-hops-huge", "figures-overflow"])
def test_theory_commands_refuse_sizes_past_counting_in_one_line(args, needles, tmp_path, capsys):
    t0 = time.perf_counter()
    _refused([a.format(tmp=tmp_path) for a in args], capsys, *needles)
    assert time.perf_counter() - t0 < 15  # refused before any unbounded work


def test_bound_skips_constructions_whose_size_leaves_floating_point(capsys):
    # K^k past floating point: the precompute row is left out (an OverflowError traceback before) and the
    # bound itself is answered; at K = 10**300 that took about a minute of big-integer powers.
    for k_rel in ("3", str(10**300)):
        t0 = time.perf_counter()
        code, out, err = _answer(["bound", "--n-subjects", "4", "--n-relations", k_rel, "--hops", "1000",
                                  "--embedding-bits", "0", "--json"], capsys)
        assert code == 0, err
        assert "precompute" not in {r["name"] for r in json.loads(out)["constructions"]}
        assert time.perf_counter() - t0 < 15
    from georecall.theory import construction_cost

    with pytest.raises(OverflowError, match="beyond floating point"):
        construction_cost("precompute", 4, 10**300, 1000)
