"""The command line: the README's demo, JSON output, run directories, and one-line errors with exit 2."""

import json
import shutil
import subprocess
import sys

import pytest

from georecall.cli import main
from georecall.results import load_run

BAD = [
    (["--n-subjects", "1"], "n_subjects must be >= 2"),
    (["--n-relations", "0"], "n_relations must be >= 1"),
    (["--d-model", "0"], "d_model must be >= 1"),
    (["--d-model", "30", "--n-heads", "4"], "divisible by n_heads"),
    (["--hops", "0"], "n_hops must be in [1, 1000]"),
    # Refused before N*K^k is counted: 2**(10**20) as an exact integer never finished (found by fuzzing).
    (["--hops", "100000000000000000000", "--n-relations", "2"], "n_hops must be in [1, 1000]"),
    (["--hops", "12", "--n-relations", "8", "--set", "task.n_queries=100000000"], "over the memory limit"),
    (["--device", "tpu"], "unknown device"),
    (["--set", "model.d_mlp"], "malformed --set"),
    (["--set", "model.nope=3"], "unknown key 'model.nope'"),
    (["--set", "model.d_mlp=abc"], "expects int"),
    (["--seeds", "a,b"], "--seeds expects"),
    (["--n-subjects", "abc"], "not a valid integer"),
    (["--cot", "sideways"], "not one of"),
]


@pytest.mark.parametrize(("args", "match"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_exits_2_with_one_line(args, match, capsys):
    assert main(["train", *args, "--steps", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("georecall: error:") and match in err
    assert "Traceback" not in err


def test_installed_entry_point_prints_no_traceback():
    exe = shutil.which("georecall")
    assert exe is not None, "the georecall console script is not installed"
    proc = subprocess.run([exe, "train", "--n-subjects", "1"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == "georecall: error: n_subjects must be >= 2, got 1"


@pytest.mark.slow
def test_readme_demo_trains_four_models_at_once(tmp_path):
    """The README's train example: N=512, K=4, d=32 to >= 99 % on all facts, four seeds in one ensemble (~15 s)."""
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "georecall.cli", "train", "--n-subjects", "512", "--n-relations", "4",
         "--d-model", "32", "--seeds", "0,1,2,3", "--device", "cpu", "--out", str(out), "--json"],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert len(payload["accuracy"]) == 4 and all(a >= 0.99 for a in payload["accuracy"])
    assert len(payload["steps"]) == 4
    assert payload["config"]["task"]["n_subjects"] == 512 and payload["config"]["seeds"] == [0, 1, 2, 3]
    assert payload["n_queries"] == 512 * 4
    assert load_run(out).result.accuracy == payload["accuracy"]


def test_human_output_and_set_overrides(capsys):
    assert main(["train", "--n-subjects", "16", "--n-relations", "2", "--d-model", "8", "--steps", "5",
                 "--set", "train.eval_every=1", "--set", "model.d_mlp2=8", "--no-layernorm", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "N=16 K=2" in out and "seed 0: accuracy" in out


def test_help_and_version(capsys):
    assert main(["--version"]) == 0
    assert "georecall" in capsys.readouterr().out
    assert main(["train", "--help"]) == 0
    assert "--seeds" in capsys.readouterr().out


REPRODUCE_BAD = [
    (["reproduce", "--only", "bogus"], "unknown experiment(s) bogus"),
    (["reproduce", "--only", ","], "--only expects"),
    (["reproduce", "--out", ""], "--out must name a folder"),
    (["reproduce", "--threads", "0"], "--threads must be between 1 and"),
    (["reproduce", "--device", "tpu"], "unknown device"),
    (["reproduce", "--scale", "huge"], "not one of"),
    (["run", "threshold", "--set", "recipe.lr=abc"], "recipe.lr expects float"),
    (["run", "threshold", "--set", "recipe.nope=1"], "unknown key 'recipe.nope'"),
    (["run", "threshold", "--set", "n_subjects=[1, 8]"], "n_subjects must hold finite numbers >= 2"),
    (["run", "threshold", "--set", "scale=paper"], "--scale"),
    (["plot", "threshold", "--out", ""], "--out must name a folder"),
]


@pytest.mark.parametrize(("args", "match"), REPRODUCE_BAD, ids=[" ".join(a) for a, _ in REPRODUCE_BAD])
def test_reproduce_run_and_plot_refuse_bad_input_with_one_line(args, match, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # refused before anything was written


def test_plot_of_a_corrupt_result_is_one_line(tmp_path, capsys):
    folder = tmp_path / "threshold" / "quick"
    folder.mkdir(parents=True)
    (folder / "result.json").write_text("{not json")
    assert main(["plot", "threshold", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not valid JSON" in err
