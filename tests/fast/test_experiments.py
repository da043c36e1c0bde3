"""Registry-wide integrity (PyKEEN's idea): every experiment runs its smoke scale, saves a result,
renders its figures from the saved files alone, and resumes without retraining."""

import json

import pytest

from georecall.experiments import EXPERIMENTS, get_experiment
from georecall.experiments.base import SCALES, result_dir, run_experiment
from georecall.results.envelope import ENVELOPE_SCHEMA, RESULT_FILE


@pytest.mark.parametrize("exp_id", list(EXPERIMENTS))
def test_smoke_run_saves_result_and_figures_rebuild_from_files(exp_id, tmp_path):
    module = get_experiment(exp_id)
    assert module.ID == exp_id
    assert module.PROVENANCE.claim and module.PROVENANCE.paper_section
    for scale in SCALES:  # every scale is declared and valid
        module.config(scale)
    done = run_experiment(module, "smoke", tmp_path)
    figures = done.figures
    folder = result_dir(tmp_path, exp_id, "smoke")
    assert done.folder == folder
    env = json.loads((folder / RESULT_FILE).read_text())
    assert env["schema"] == ENVELOPE_SCHEMA and env["experiment"] == exp_id and env["scale"] == "smoke"
    assert env["provenance"]["paper_section"] and env["meta"]["torch_version"] and env["meta"]["scale"] == "smoke"
    first_stage = {r.config_hash() for r in module.runs(module.config("smoke"))}
    if hasattr(module, "next_runs"):  # adaptive: the first stage and what the stages after it added
        assert first_stage <= set(env["runs"]) and len(env["runs"]) > len(first_stage)
    else:
        assert sorted(env["runs"]) == sorted(first_stage)
    saved = env["payload"]
    assert saved["schema_version"] >= 1 and saved["scale"] == "smoke"
    assert figures and all(f.suffix in (".png", ".csv") and f.stat().st_size > 0 for f in figures)
    assert any(f.suffix == ".png" for f in figures)
    for f in figures:
        f.unlink()
    again = module.plot(folder)  # from saved files only
    assert sorted(again) == sorted(figures)
    resumed = run_experiment(module, "smoke", tmp_path)
    assert resumed.envelope["meta"]["sweep"]["trained"] == 0  # idempotent: nothing retrained
    first, again = done.envelope["meta"], resumed.envelope["meta"]
    assert first["cumulative_wall_time_s"] == pytest.approx(first["wall_time_s"])
    assert again["cumulative_wall_time_s"] == pytest.approx(first["cumulative_wall_time_s"] + again["wall_time_s"])
