"""Hostile input for the commands' own options (test_fuzz_inputs.py fuzzes their files and --set overrides): train's
sizes and flags, sweep's engine options (--max-members, --workers, --threads, --executor, --ray-address, --csv),
plot and theory-figures. Success or one line and exit 2; never a traceback, never exit 1. Training, sweeping and
PNG encoding are stubbed or cut to zero steps: the parsing and checking are what is fuzzed."""

import dataclasses
import json

from cli_answers import one_line_or_success as _check
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from georecall.cli import main
from georecall.experiments import EXPERIMENTS
from georecall.training import sweep as sweep_mod

_INTS = st.one_of(st.integers(-3, 40).map(str), st.integers(-10**30, 10**30).map(str),
                  st.sampled_from(["", "x", "1.5", "1e3", "0x10", " 4", "nan", "٣"]))
_FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr),
                    st.sampled_from(["", "x", "1e-2", "-1", "0", "1,5"]))
_NAMES = st.one_of(st.text(max_size=10), st.sampled_from(["..", "/", "-", "--json", "a b", "\x00"]))
_SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def _train_args(draw):
    args = ["train", "--quiet"]
    for option, values in (("--n-subjects", _INTS), ("--n-relations", _INTS), ("--hops", _INTS),
                           ("--d-model", _INTS), ("--d-mlp", _INTS), ("--n-layers", _INTS), ("--n-heads", _INTS),
                           ("--steps", _INTS), ("--lr", _FLOATS), ("--threads", _INTS)):
        if draw(st.integers(0, 2)) == 0:
            args += [option, draw(values)]
    if draw(st.integers(0, 3)) == 0:
        seeds = st.lists(st.integers(-2, 5), max_size=3).map(lambda s: ",".join(map(str, s)))
        args += ["--seeds", draw(st.one_of(seeds, st.text(max_size=6)))]
    if draw(st.integers(0, 3)) == 0:
        args += ["--cot", draw(st.sampled_from(["interleaved", "question-first", "none", "", "yes"]))]
    if draw(st.integers(0, 4)) == 0:
        args += ["--device", draw(st.sampled_from(["cpu", "auto", "tpu", "", "cuda:x", "cpu:0", "cuda"]))]
    for flag in ("--layernorm", "--no-layernorm", "--frozen-embeddings", "--json"):
        if draw(st.integers(0, 4)) == 0:
            args.append(flag)
    return args


@_SETTINGS
@given(args=_train_args())
def test_any_train_options_get_an_answer_not_a_traceback(args, capsys, monkeypatch):
    import georecall.training as training

    real = training.train

    def no_steps(cfg, **kw):  # a valid size trains zero steps on a sample of at most 64 queries
        return real(dataclasses.replace(cfg, task=dataclasses.replace(cfg.task, max_queries=64),
                                        train=dataclasses.replace(cfg.train, steps=0)), **kw)

    with monkeypatch.context() as patch:  # undone after each example (else each wraps the one before)
        patch.setattr(training, "train", no_steps)
        code = main(args)
    _check(code, capsys.readouterr().err)


@st.composite
def _sweep_args(draw, folder):
    args = ["sweep", str(folder / "s.json"), "--quiet"]
    if draw(st.booleans()):
        args += ["--out", draw(st.one_of(st.just(str(folder / "out")), st.just(""), st.just(str(folder / "s.json")),
                                         st.just("/proc/forbidden"), _NAMES.map(lambda n: str(folder / "o" / n))))]
    else:
        args += ["--out", str(folder / "out")]
    for option, values in (("--max-members", _INTS), ("--workers", _INTS), ("--threads", _INTS)):
        if draw(st.booleans()):
            args += [option, draw(values)]
    if draw(st.integers(0, 3)) == 0:
        args += ["--executor", draw(st.sampled_from(["local", "", "dask", "LOCAL"]))]
    if draw(st.integers(0, 4)) == 0:
        args += ["--ray-address", draw(st.one_of(st.just("127.0.0.2:1"), _NAMES))]
    if draw(st.integers(0, 3)) == 0:
        args += ["--csv", draw(st.one_of(st.just(str(folder / "t.csv")), st.just(""), st.just(str(folder)),
                                         st.just("/proc/x/t.csv")))]
    if draw(st.integers(0, 4)) == 0:
        args += ["--device", draw(st.sampled_from(["cpu", "tpu", "", "cuda:x"]))]
    return args


@_SETTINGS
@given(data=st.data())
def test_any_sweep_options_get_an_answer_not_a_traceback(data, tmp_path_factory, capsys, monkeypatch):
    folder = tmp_path_factory.mktemp("sw")
    (folder / "s.json").write_text(json.dumps({"name": "fz", "base": {"task": {"n_subjects": 8, "n_relations": 2}},
                                               "grid": {"seeds": [0, 1]}}))

    def stub(runs, out_dir, **_):
        return sweep_mod.SweepReport(total=len(list(runs)), skipped=0, trained=0, failed=0, out_dir=str(out_dir))

    monkeypatch.setattr(sweep_mod, "run_sweep", stub)
    code = main(data.draw(_sweep_args(folder)))
    _check(code, capsys.readouterr().err)


@_SETTINGS
@given(experiment=st.one_of(st.sampled_from(list(EXPERIMENTS)), _NAMES),
       scale=st.one_of(st.sampled_from(["smoke", "quick", "paper"]), _NAMES), out=st.one_of(st.none(), _NAMES))
def test_any_plot_arguments_get_an_answer_not_a_traceback(experiment, scale, out, tmp_path_factory, capsys):
    folder = tmp_path_factory.mktemp("pl")
    args = ["plot", experiment, "--scale", scale, "--out", str(folder / (out or "runs"))]
    code = main(args)  # nothing was ever run there: a missing result is one line
    _check(code, capsys.readouterr().err)


@_SETTINGS
@given(n=_INTS, k=_INTS, hops=_INTS, out=st.one_of(st.none(), _NAMES))
def test_any_theory_figures_arguments_get_an_answer_not_a_traceback(n, k, hops, out, tmp_path_factory, capsys,
                                                                      monkeypatch):
    import georecall.theory.figures as figures

    monkeypatch.setattr(figures, "_save", lambda fig, path: None)  # the numbers are drawn; PNG encoding skipped
    folder = tmp_path_factory.mktemp("tf")
    args = ["theory-figures", "--out", str(folder / (out or "f")) if out != "" else "", "--n-subjects", n,
            "--n-relations", k, "--max-hops", hops]
    code = main(args)
    _check(code, capsys.readouterr().err)
