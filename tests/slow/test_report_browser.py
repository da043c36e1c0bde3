"""A real headless browser draws report.html from disk: the verdict table and the figures are on screen."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pagecheck import BROWSER_MISSING, colour_mask, find_browser, screenshot

from georecall.experiments import EXPERIMENTS
from georecall.experiments.claims import Claim, Decision
from georecall.report import VERDICT_COLOURS, build_report
from georecall.results.envelope import make_envelope, result_folder, write_envelope

pytestmark = pytest.mark.slow

SCALE = "quick"
A, B = list(EXPERIMENTS)[:2]
FIGURE_COLOUR = "#ff00ff"  # the solid band drawn in the first figure


def _png(path: Path, colour: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.0, 2.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.axvspan(0.25, 0.75, color=colour)
    ax.plot([0, 1], [0, 1], color="black", linewidth=2)
    ax.set_xlabel("N (subjects)")
    fig.savefig(path, format="png")


def _synthetic_report(out: Path) -> Path:
    meta = {"georecall_version": "0.1.0", "git_sha": "0123abcd", "git_dirty": False, "torch_version": "2.5.0",
            "device": "cpu", "seeds": [0, 1], "scale": SCALE, "wall_time_s": 3.2, "created": "2025-01-01T00:00:00Z"}
    for exp, acc, colour in ((A, 0.99, FIGURE_COLOUR), (B, 0.7, "#00c0ff")):
        folder = result_folder(out, exp, SCALE)
        write_envelope(folder, make_envelope(
            experiment=exp, scale=SCALE, provenance={"paper_section": "§4", "theorems": ["Theorem 4.1"]},
            paper_reported={"statement": "near-perfect recall"}, meta=meta, runs=["r1"], claims=[],
            payload={"acc": acc}))
        _png(folder / "acc.png", colour)

    def grade(exp: str):
        def decide(p):
            acc = p[exp]["acc"]
            verdict = "reproduced" if acc >= 0.95 else "partly" if acc >= 0.5 else "not reproduced"
            return Decision(verdict, {"acc": acc, "controls": {"frozen": 0.01}}, f"accuracy {acc} against 0.95")
        return decide

    claims = (
        Claim("C1", "One hop is recalled above the threshold.", "Theorem 4.1", "acc >= 0.95", (A,), grade(A),
              figures=(f"{A}/acc.png",)),
        Claim("C2", "Two hops are recalled too.", "Theorem 4.3", "acc >= 0.95", (B,), grade(B),
              figures=(f"{B}/acc.png",)),
        Claim("C3", "The frozen control fails.", "§5", "acc <= 0.1", (B,),
              lambda p: Decision("not reproduced", {"acc": p[B]["acc"]}, "the control recalls 0.7")),
        Claim("C4", "CoT needs one layer.", "Theorem 4.4", "later", tested_by="the cot experiment"),
    )
    return build_report(out, SCALE, claims=claims).html


def test_a_headless_browser_shows_the_verdict_table_and_the_figures(tmp_path):
    browser = find_browser()
    if browser is None:
        pytest.skip(BROWSER_MISSING)
    html = _synthetic_report(tmp_path / "out")
    rgb = screenshot(browser, html, tmp_path / "shot.png")
    assert rgb.shape[:2] == (1400, 1000)

    # the first figure: its solid band, drawn at its natural size, with the black line across it
    band = colour_mask(rgb, FIGURE_COLOUR)
    ys, xs = np.nonzero(band)
    assert band.sum() > 10_000, "the first figure is not on screen"
    top, bottom, left, right = ys.min(), ys.max(), xs.min(), xs.max()
    assert bottom - top > 100 and right - left > 100
    region = rgb[top:bottom + 1, left:right + 1]
    assert (region.max(axis=-1) < 60).any(), "the black line drawn across the band is not visible"
    frame = rgb[max(top - 40, 0):bottom + 60, max(left - 80, 0):right + 80]
    assert frame.reshape(-1, 3).std(axis=0).max() > 20, "the figure region is blank"

    # the verdict table: each verdict's badge, a filled pill of its colour, is drawn above the first figure
    for verdict, colour in VERDICT_COLOURS.items():
        above = colour_mask(rgb[:top], colour)
        assert above.sum() > 200, f"no {verdict!r} badge ({colour}) above the first figure"
