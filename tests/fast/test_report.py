"""The report re-decides every claim from result.json payloads and writes a readable, self-contained page.

Everything here is synthetic: fake envelopes, small real PNGs, and claims made in the test (the real
claim modules are not relied on).
"""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pagecheck import Page, check_self_contained

from georecall.experiments import EXPERIMENTS
from georecall.experiments.claims import Claim, Decision, evaluate
from georecall.report import DEVIATIONS, build_report, flatten_numbers, format_value
from georecall.results.envelope import make_envelope, result_folder, write_envelope

SCALE = "quick"
A, B, C = list(EXPERIMENTS)[:3]  # A and B are written; C never is
PAYLOADS = {A: {"acc": 0.99, "curve": [0.1, 0.5]}, B: {"acc": 0.7, "controls": {"frozen": 0.0123456}}}


def _verdict(acc: float, full: float, half: float) -> str:
    return "reproduced" if acc >= full else "partly" if acc >= half else "not reproduced"


def _decide_a(p):
    acc = p[A]["acc"]
    return Decision(_verdict(acc, 0.95, 0.5), {"acc": acc, "curve": p[A]["curve"]}, f"accuracy {acc} against 0.95")


def _decide_ab(p):
    acc = p[B]["acc"]
    return Decision(_verdict(acc, 0.95, 0.5), {"acc": acc, "reference": p[A]["acc"]}, "B's accuracy against A's")


def _decide_b(p):
    acc = p[B]["acc"]
    return Decision(_verdict(acc, 1.0, 0.9), {"acc": acc, "controls": {"frozen": [p[B]["controls"]["frozen"], 0.5]}},
                    "<script>alert(1)</script> accuracy under `0.9`")


CLAIMS = (
    Claim("C1", "One hop is recalled above the threshold.", "Theorem 4.1, §4.1", "acc >= 0.95 reproduces",
          (A,), _decide_a, figures=(f"{A}/acc.png", f"{A}/absent.png")),
    Claim("C2", "B matches A.", "§4.2", "B's acc >= 0.95 reproduces, >= 0.5 partly", (A, B), _decide_ab,
          figures=(f"{B}/acc.png",)),
    Claim("C3", "B is perfect.", "Theorem 4.3", "acc >= 1 reproduces, >= 0.9 partly", (B,), _decide_b),
    Claim("C4", "CoT needs one layer.", "Theorem 4.4", "not written yet", tested_by="the cot experiment (issue #99)"),
    Claim("C5", "Capacity grows linearly.", "Theorem 4.2", "slope within 10%", (C,),
          lambda p: Decision("reproduced", {}, "never called")),
)
EXPECTED = {"C1": "reproduced", "C2": "partly", "C3": "not reproduced", "C4": "not tested", "C5": "not tested"}
COLOUR = {A: "#ff00ff", B: "#00c0ff"}


def _png(path: Path, colour: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2.4, 1.6), dpi=60)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.axvspan(0.3, 0.7, color=colour)
    ax.plot([0, 1], [0, 1], color="black")
    fig.savefig(path, format="png")


def _meta(**kw):
    meta = {"georecall_version": "0.1.0", "git_sha": "0123abcd", "git_dirty": True, "torch_version": "2.5.0",
            "device": "cpu", "seeds": [3, 4], "scale": SCALE, "wall_time_s": 12.5, "created": "2025-01-01T00:00:00Z"}
    return {**meta, **kw}


def _write_results(out: Path) -> None:
    for exp, payload in PAYLOADS.items():
        folder = result_folder(out, exp, SCALE)
        # stored decisions that contradict the criteria: the report must not trust them
        stored = [{"id": c.id, "verdict": "not reproduced" if EXPECTED[c.id] == "reproduced" else "reproduced",
                   "numbers": {}, "reason": "stale"} for c in CLAIMS if exp in c.experiments]
        write_envelope(folder, make_envelope(
            experiment=exp, scale=SCALE, provenance={"claim": "C1", "paper_section": f"§4 ({exp})",
                                                      "theorems": ["Theorem 4.1", "Theorem 4.2"]},
            paper_reported={"statement": f"the paper says {exp} works"}, meta=_meta(wall_time_s=7.0),
            runs=["r1", "r2", "r3"], claims=stored, payload=payload))
        _png(folder / "acc.png", COLOUR[exp])


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    _write_results(out)
    paths = build_report(out, SCALE, claims=CLAIMS, timings={B: 4000.0})
    return out, paths, Page(paths.html.read_text())


def test_html_parses_balanced_and_is_self_contained(built):
    _, paths, page = built
    assert page.errors == []
    text = paths.html.read_text()
    assert text.startswith("<!DOCTYPE html>")
    check_self_contained(page)
    assert [t for t, _ in page.tags].count("style") == 1
    assert "url(" not in text.split("</style>")[0]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text  # claim text is escaped, never markup


def test_every_image_is_an_embedded_png_with_content(built):
    import matplotlib.image as mpimg

    _, paths, page = built
    srcs = [attrs["src"] for tag, attrs in page.tags if tag == "img"]
    assert len(srcs) == 2  # A/acc.png (C1) and B/acc.png (C2); A/absent.png is missing
    for src in srcs:
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix)
        data = base64.b64decode(src[len(prefix):], validate=True)
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        pixels = mpimg.imread(io.BytesIO(data), format="png")
        assert pixels.ndim == 3 and pixels.shape[0] > 50 and np.ptp(pixels[..., :3]) > 0.5
    assert f"figure missing: {A}/{SCALE}/absent.png does not exist" in paths.html.read_text()
    assert f"*figure missing: {A}/{SCALE}/absent.png does not exist*" in paths.markdown.read_text()


def test_verdicts_are_the_criteria_reapplied_not_the_stored_ones(built):
    out, paths, page = built
    reapplied = {c.id: evaluate(c, PAYLOADS).decision.verdict for c in CLAIMS}
    assert reapplied == EXPECTED  # every verdict occurs, and the fakes decide as intended
    assert page.verdict_rows() == reapplied
    md_rows = dict(re.findall(r"^\| \[(C\d)\]\(#claim-C\d\) \| .*? \| \*\*(.+?)\*\* \|", paths.markdown.read_text(),
                              re.M))
    assert md_rows == reapplied
    stored = json.loads((result_folder(out, A, SCALE) / "result.json").read_text())["claims"]
    assert {s["id"]: s["verdict"] for s in stored}["C1"] != reapplied["C1"]
    assert "recorded another verdict" in paths.html.read_text()


def test_sections_come_in_order_and_none_is_empty(built):
    _, paths, page = built
    heads = page.headings()
    assert [t for tag, t, _ in heads if tag == "h2"] == [
        "Verdicts", "Claims", "How to read this report", "Provenance", "Known deviations"]
    assert [(tag, t) for tag, t, ok in heads if not ok] == []
    assert [t for tag, t, _ in heads if tag == "h3"][:5] == [f"{c} {v}" for c, v in EXPECTED.items()]
    assert {A, B, "Not run"} <= {t for tag, t, _ in heads if tag == "h3"}
    md = paths.markdown.read_text()
    blocks = re.split(r"^#{1,4} .*$", md, flags=re.M)
    assert all(re.sub(r"<a id=[^>]*></a>", "", b).strip() for b in blocks[1:])
    assert [h for h in re.findall(r"^## (.*)$", md, re.M)] == [
        "Verdicts", "Claims", "How to read this report", "Provenance", "Known deviations"]


def test_claim_sections_show_numbers_criterion_and_what_will_test(built):
    _, paths, page = built
    html = paths.html.read_text()
    c3 = html.split('id="claim-C3"')[1].split("</section>")[0]
    assert "<code>controls.frozen</code></td><td>[0.01235, 0.5]</td>" in c3
    assert "acc &gt;= 1 reproduces, &gt;= 0.9 partly" in c3 and "Theorem 4.3" in c3
    c4 = html.split('id="claim-C4"')[1].split("</section>")[0]
    assert "What will test it." in c4 and "the cot experiment (issue #99)" in c4
    c5 = html.split('id="claim-C5"')[1].split("</section>")[0]
    assert f"running experiment {C} at scale {SCALE}" in c5 and "(not run)" in c5


def test_provenance_shows_meta_timings_and_the_papers_words_apart(built):
    from georecall.report.build import SCALE_NOTES

    _, paths, page = built
    html = paths.html.read_text()
    # What a verdict at this scale can mean stands under the title, in both reports.
    assert SCALE_NOTES[SCALE] in html and SCALE_NOTES[SCALE] in paths.markdown.read_text()
    prov = html.split('id="provenance"')[1]
    a_part = prov.split(f'id="exp-{A}"')[1].split("</section>")[0]
    b_part = prov.split(f'id="exp-{B}"')[1].split("</section>")[0]
    for part in (a_part, b_part):
        assert "0123abcd (dirty: uncommitted changes)" in part and "2.5.0" in part and "3, 4" in part
        assert "<td>training runs</td><td>3</td>" in part and "Theorem 4.1, Theorem 4.2" in part
        assert "the paper's own words and numbers" in part and "the paper says" in part
    assert "7.0 s (meta.wall_time_s: the invocation that wrote this result)" in a_part
    assert "<td>wall time, every invocation</td><td>not recorded" in a_part  # the fake meta has no cumulative
    assert "1 h 06 min (timed by this run of the pipeline)" in b_part
    not_run = [e for e in EXPERIMENTS if e not in PAYLOADS]
    assert all(f"<li><code>{e}</code>: no {e}/{SCALE}/result.json" in prov for e in not_run)


def test_only_marks_the_other_experiments_not_run(built, tmp_path):
    out, _, _ = built
    paths = build_report(out, SCALE, only=[A], claims=CLAIMS, dest=tmp_path)
    page = Page(paths.html.read_text())
    rows = page.verdict_rows()
    assert rows == {"C1": "reproduced", "C2": "not tested", "C3": "not tested", "C4": "not tested",
                    "C5": "not tested"}
    html = paths.html.read_text()
    assert f"not run here: {B}" in html
    assert f"<li><code>{B}</code>: not selected for this report (only: {A})</li>" in html
    assert f'id="exp-{B}"' not in html
    # B's figure is on disk but B does not count as run: it is reported, not shown
    assert len([1 for tag, _ in page.tags if tag == "img"]) == 1
    assert f"experiment {B} was not run for this report" in html
    with pytest.raises(ValueError, match="unknown experiment.*'nope'"):
        build_report(out, SCALE, only=["nope"], claims=CLAIMS, dest=tmp_path)


def test_a_corrupt_or_foreign_envelope_is_a_valueerror_naming_the_file(tmp_path):
    _write_results(tmp_path)
    bad = result_folder(tmp_path, B, SCALE) / "result.json"
    good = (result_folder(tmp_path, A, SCALE) / "result.json").read_text()
    bad.write_text("{ not json")
    with pytest.raises(ValueError, match=re.escape(str(bad))):
        build_report(tmp_path, SCALE, claims=CLAIMS)
    bad.write_text(good)  # A's envelope in B's folder
    with pytest.raises(ValueError, match=re.escape(str(bad)) + f".*holds experiment '{A}'"):
        build_report(tmp_path, SCALE, claims=CLAIMS)
    assert not (tmp_path / "report.html").exists() and not (tmp_path / "report.md").exists()


def test_with_nothing_run_every_section_still_says_something(tmp_path, monkeypatch):
    import georecall.experiments.claims as claims_mod

    monkeypatch.setattr(claims_mod, "all_claims", lambda: CLAIMS)  # the default claims come from all_claims()
    paths = build_report(tmp_path / "empty", SCALE, dest=tmp_path / "rep")
    page = Page(paths.html.read_text())
    assert page.errors == [] and [(t, x) for t, x, ok in page.headings() if not ok] == []
    assert set(page.verdict_rows().values()) == {"not tested"}
    html = paths.html.read_text()
    assert f"No experiment was run at scale <code>{SCALE}</code>" in html
    assert all(f"<li><code>{e}</code>:" in html for e in EXPERIMENTS)
    monkeypatch.setattr(claims_mod, "all_claims", lambda: ())
    paths = build_report(tmp_path / "empty", SCALE, dest=tmp_path / "rep")
    page = Page(paths.html.read_text())
    assert [(t, x) for t, x, ok in page.headings() if not ok] == []
    assert "No claims are declared" in paths.markdown.read_text()


def test_markdown_points_at_the_pngs_relative_to_the_report(built, tmp_path):
    out, _, _ = built
    dest = tmp_path / "elsewhere" / "reports"
    paths = build_report(out, SCALE, claims=CLAIMS, dest=dest)
    assert paths.markdown.parent == dest and paths.html.parent == dest
    links = re.findall(r"!\[[^\]]*\]\(<?([^)>]+)>?\)", paths.markdown.read_text())
    assert len(links) == 2
    for link in links:
        assert not Path(link).is_absolute() and (dest / link).resolve().is_file()
    assert sorted(p.name for p in dest.iterdir()) == ["report.html", "report.md"]  # no temp file left


def test_numbers_are_flattened_with_four_significant_digits():
    rows = flatten_numbers({"a": {"b": 0.123456, "c": [1, 2.0e-7], "m": [{"y": 1}, "z"]}, "ok": True, "n": None,
                            "e": {}, "x": 1234567.0})
    # A short list of numbers (an interval) stays on one line; other lists are flattened by index.
    assert rows == [("a.b", "0.1235"), ("a.c", "[1, 2e-07]"), ("a.m.0.y", "1"), ("a.m.1", "z"), ("ok", "true"),
                    ("n", "none"), ("e", "{}"), ("x", "1.235e+06")]
    assert format_value(float("nan")) == "nan" and format_value(np.float32(0.5)) == "0.5"
    assert format_value(np.int64(7)) == "7" and format_value(0.1234567, round_floats=False) == "0.1234567"


def test_every_deviation_points_to_the_theory_note():
    assert len(DEVIATIONS) >= 6
    assert all(re.search(r"docs/theory\.md §\d", d) for d in DEVIATIONS)


def test_import_and_build_stay_torch_free(tmp_path):
    code = (
        "import sys, georecall.report\n"
        "assert 'torch' not in sys.modules, 'import'\n"
        "from georecall.experiments.claims import Claim\n"
        f"georecall.report.build_report({str(tmp_path)!r}, 'quick', claims=[Claim('C1', 's', 'r', 'c')])\n"
        "assert 'torch' not in sys.modules, 'build'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "report.html").is_file()
