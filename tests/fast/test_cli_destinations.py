"""What a new user hit, each now a one-line error with exit 2 and nothing lost: destinations checked before any
training, run directories never overwritten, sweep names kept inside their folder, failed sweeps reported,
CSV exports that hold every run of the sweep, and damaged run directories trained again."""

import csv
import json

import pytest
import torch

from georecall.cli import main


def _one_line_error(capsys, match: str) -> None:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("georecall: error:") and match in err, err
    assert "Traceback" not in err


def test_train_refuses_an_unwritable_out_before_training(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main(["train", "--steps", "100000", "--out", str(blocker / "run"), "--quiet"]) == 2  # no 100000 steps
    _one_line_error(capsys, "cannot be written")


def test_train_refuses_to_overwrite_a_run_directory(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--n-subjects", "8", "--n-relations", "2", "--steps", "5", "--out", str(out),
                 "--quiet"]) == 0
    before = (out / "result.json").read_bytes()
    capsys.readouterr()
    assert main(["train", "--n-subjects", "8", "--n-relations", "2", "--steps", "6", "--out", str(out),
                 "--quiet"]) == 2
    _one_line_error(capsys, "already holds files")
    assert (out / "result.json").read_bytes() == before  # the first run is untouched


def _sweep_file(tmp_path, name: str, **train) -> str:
    spec = {"name": name, "base": {"task": {"n_subjects": 8, "n_relations": 2},
                                   "model": {"d_model": 8, "d_mlp": 16},
                                   "train": {"steps": 5, "eval_every": 5, **train}},
            "grid": {"seeds": [0, 1]}}
    path = tmp_path / f"{abs(hash(name))}.json"
    path.write_text(json.dumps(spec))
    return str(path)


@pytest.mark.parametrize("name", ["../../evil", "a/b", ".hidden", "back\\slash"])
def test_a_sweep_name_cannot_leave_its_folder(tmp_path, capsys, name):
    assert main(["sweep", _sweep_file(tmp_path, name), "--out", str(tmp_path / "out"), "--quiet",
                 "--workers", "1"]) == 2
    _one_line_error(capsys, "plain folder name")
    assert not (tmp_path / "evil").exists() and not any((tmp_path / "out").glob("*/*"))


def test_a_sweep_whose_runs_all_failed_exits_2(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("the runs fail by asking for CUDA on a machine without it")
    out = tmp_path / "out"
    assert main(["sweep", _sweep_file(tmp_path, "nogpu", device="cuda"), "--out", str(out), "--quiet",
                 "--workers", "1"]) == 2
    _one_line_error(capsys, "all 2 runs failed")
    assert len(list(out.glob("nogpu/*/error.txt"))) == 2  # the errors are kept


def test_sweep_csv_holds_every_run_of_the_sweep_whoever_trained_it(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["sweep", _sweep_file(tmp_path, "first"), "--out", str(out), "--quiet", "--workers", "1"]) == 0
    table = tmp_path / "second.csv"
    assert main(["sweep", _sweep_file(tmp_path, "second"), "--out", str(out), "--quiet", "--workers", "1",
                 "--csv", str(table)]) == 0  # the same runs: all found done under the name "first"
    with open(table, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 and {r["status"] for r in rows} == {"done"}


def test_sweep_refuses_an_unwritable_csv_folder_before_training(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert main(["sweep", _sweep_file(tmp_path, "s"), "--out", str(tmp_path / "out"), "--quiet", "--workers", "1",
                 "--csv", str(blocker / "t.csv")]) == 2
    _one_line_error(capsys, "cannot be written")
    assert not (tmp_path / "out" / "s").exists()  # nothing trained


def test_a_damaged_result_json_is_trained_again_not_a_traceback(tmp_path, capsys):
    out = tmp_path / "out"
    sweep = _sweep_file(tmp_path, "dmg")
    assert main(["sweep", sweep, "--out", str(out), "--quiet", "--workers", "1"]) == 0
    (out / "results.sqlite").unlink()  # the rows are lost; the run directories remain, one of them damaged
    for extra in ("-wal", "-shm"):
        (out / f"results.sqlite{extra}").unlink(missing_ok=True)
    damaged = next(out.glob("dmg/*/result.json"))
    damaged.write_text("{ not json")
    capsys.readouterr()
    assert main(["sweep", sweep, "--out", str(out), "--quiet", "--workers", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["skipped"], report["trained"]) == (1, 1)
    assert json.loads(damaged.read_text())["schema_version"] >= 1


@pytest.mark.parametrize("cmd", [["run", "constructions", "--scale", "smoke"], ["reproduce", "--scale", "smoke"],
                                 ["theory-figures"]])
def test_commands_that_write_check_their_out_first(tmp_path, capsys, cmd):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert main([*cmd, "--out", str(blocker / "sub")]) == 2
    _one_line_error(capsys, "cannot be written")


@pytest.mark.parametrize("args", [
    ["train", "--d-model", "100000", "--steps", "1"],
    ["train", "--n-subjects", "1000000000", "--steps", "1"],
    ["construct", "precompute", "--n-subjects", "16", "--n-relations", "8", "--hops", "6"],
    ["construct", "selector", "--n-subjects", "1000000000", "--n-relations", "4"],
], ids=["d-model", "n-subjects", "precompute-k6", "selector-1e9"])
def test_a_huge_size_is_refused_with_its_estimate_before_allocating(args, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("georecall: error:") and "Traceback" not in err
    assert "memory" in err  # the estimate (or the query set's memory limit) names why


def test_the_memory_estimate_grows_with_the_model_and_fits_a_small_one():
    from georecall.config import ModelConfig, RunConfig, TaskConfig
    from georecall.machine import check_fits
    from georecall.training.memory import model_params, train_bytes

    small = RunConfig(task=TaskConfig(n_subjects=16, n_relations=2), model=ModelConfig(d_model=8, d_mlp=32))
    wide = RunConfig(task=small.task, model=ModelConfig(d_model=16, d_mlp=64))
    assert 0 < model_params(small) < model_params(wide) and train_bytes(small) < train_bytes(wide)
    check_fits(train_bytes(small), "a small training")  # fits
    with pytest.raises(ValueError, match="needs about .* more than this machine has"):
        check_fits(10 ** 6, "x", limit=10 ** 5)
