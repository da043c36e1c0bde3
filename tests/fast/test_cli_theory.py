"""The construct, bound and theory-figures commands."""

import json

import pytest

from georecall.cli import main


def _json(capsys, args):
    assert main(args) == 0
    return json.loads(capsys.readouterr().out)


def test_construct_selector_reports_the_theorem_dimension(capsys):
    n, k = 4096, 8
    out = _json(capsys, ["construct", "selector", "--n-subjects", str(n), "--n-relations", str(k), "--json"])
    assert out["accuracy"] == 1.0 and out["n_queries"] == n * k
    assert out["d_model"] == (k + 1) * 12 + k  # (K+1) ceil(log2 N) + K
    assert out["min_margin"] == 2.0 and out["params"] == out["formula"]
    for key in ["accuracy", "n_queries", "d_model", "params", "min_margin", "mlp_widths"]:
        assert key in out


@pytest.mark.parametrize(("name", "hops"), [("selector-mlp3", 1), ("attention-only", 1), ("disjoint", 1),
                                            ("disjoint-mlp", 1), ("kv-memory", 2), ("precompute", 2), ("cot", 3),
                                            ("cot-question-first", 3), ("meet-in-middle", 2),
                                            ("meet-in-middle-tied", 2), ("readout-only", 1)])
def test_every_construction_scores_every_query_from_the_cli(name, hops, capsys):
    out = _json(capsys, ["construct", name, "--n-subjects", "37", "--n-relations", "3", "--hops", str(hops),
                         "--json"])
    assert out["accuracy"] == 1.0 and out["n_queries"] == 37 * 3**hops and out["min_margin"] > 0.5


@pytest.mark.parametrize(("args", "match"), [
    (["construct", "selector", "--n-subjects", "1", "--n-relations", "2"], "n_subjects must be >= 2"),
    (["construct", "selector", "--n-subjects", "8", "--n-relations", "2", "--hops", "2"], "1-hop queries only"),
    (["construct", "precompute", "--n-subjects", "8", "--n-relations", "1", "--hops", "2"], "K"),
    (["construct", "nonsense", "--n-subjects", "8", "--n-relations", "2"], "not one of"),
    (["construct", "selector", "--n-subjects", "8", "--n-relations", "2", "--device", "tpu"], "unknown device"),
    (["bound", "--n-subjects", "1", "--n-relations", "2", "--embedding-bits", "0"], "N must be >= 2"),
    (["bound", "--n-subjects", "8", "--n-relations", "2", "--embedding-bits", "-1"], "embedding_bits"),
    (["bound", "--n-subjects", "8", "--n-relations", "2", "--embedding-bits", "0", "--readout", "x"], "not one of"),
])
def test_bad_input_exits_2_with_one_line(args, match, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err, err


def test_bound_json_keys_and_values(capsys):
    out = _json(capsys, ["bound", "--n-subjects", "1000", "--n-relations", "4", "--hops", "2",
                         "--embedding-bits", "0", "--json"])
    for key in ["required_bits", "global", "local", "gamma_global", "gamma_local", "regime", "readout"]:
        assert key in out
    assert out["readout"] == "fixed" and out["regime"] == 1
    assert out["required_bits"] == pytest.approx(3.41e4, rel=1e-2)  # docs/theory.md §6.4 table
    assert out["gamma_global"] == pytest.approx(34.1, abs=0.05) and out["gamma_local"] == pytest.approx(159.4, abs=0.05)
    verdicts = {r["name"]: r["verdict"] for r in out["constructions"]}
    assert verdicts["kv-memory"] == "holds" and verdicts["cot"] == "outside the bound"
    tied = _json(capsys, ["bound", "--n-subjects", "1000", "--n-relations", "4", "--hops", "2",
                          "--embedding-bits", "40", "--readout", "tied", "--json"])
    assert tied["local"] is None and tied["gamma_local"] is None and tied["readout"] == "tied"


def test_theory_figures_are_written(tmp_path, capsys):
    assert main(["theory-figures", "--out", str(tmp_path), "--n-subjects", "1024", "--max-hops", "3"]) == 0
    pngs = sorted(tmp_path.glob("*.png"))
    assert len(pngs) == 2 and all(p.stat().st_size > 10_000 for p in pngs)


def test_cli_lists_every_registered_construction():
    from georecall.cli import _CONSTRUCTION_NAMES
    from georecall.constructions import CONSTRUCTIONS

    assert sorted(_CONSTRUCTION_NAMES) == sorted(CONSTRUCTIONS)  # the CLI keeps the names to start fast
