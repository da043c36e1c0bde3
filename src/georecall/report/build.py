"""Build ``report.md`` and a self-contained ``report.html`` from the saved results of every experiment.

Torch-free: it reads the ``result.json`` envelopes (:mod:`georecall.results.envelope`) and the PNG
figures beside them, re-decides every claim from the payloads with
:func:`georecall.experiments.claims.evaluate` (the ``claims`` stored in an envelope are never trusted),
and renders two Jinja2 templates from ``templates/``. Expected on disk, for each experiment run::

    <out_dir>/<experiment>/<scale>/result.json     the envelope
    <out_dir>/<experiment>/<scale>/<file>.png      the figures claims name as "<experiment>/<file>.png"
"""

from __future__ import annotations

import base64
import math
import numbers
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import georecall
from georecall import experiments as _experiments
from georecall.experiments import claims as _claims
from georecall.experiments.claims import VERDICTS, Claim, ClaimResult
from georecall.report.deviations import DEVIATIONS
from georecall.results.atomic import write_atomic
from georecall.results.envelope import RESULT_FILE, read_envelope, result_folder

__all__ = ["VERDICT_COLOURS", "ReportPaths", "build_report", "flatten_numbers", "format_value"]

REPORT_MD = "report.md"
REPORT_HTML = "report.html"
#: Badge colour of each verdict in the HTML report (white text on it).
VERDICT_COLOURS: dict[str, str] = {
    "reproduced": "#1a7f37", "partly": "#9a6700", "not reproduced": "#cf222e", "not tested": "#6e7781",
}
#: What each verdict means (the "How to read this report" section), in the words of the claims module.
VERDICT_MEANINGS: dict[str, str] = {
    "reproduced": "the criterion holds in full: direction, size and scope.",
    "partly": "the direction holds but the size or the scope does not; the reason says which.",
    "not reproduced": "the direction does not hold, or the evidence contradicts the claim.",
    "not tested": "there is no experiment for the claim yet, or its experiment was not run for this report.",
}
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class ReportPaths:
    """Where :func:`build_report` wrote the two reports."""

    markdown: Path
    html: Path
    verdicts: dict[str, str] = field(default_factory=dict)  # claim id -> verdict, as decided in this report


#: What a verdict at each scale can mean, said under the title.
SCALE_NOTES: dict[str, str] = {
    "smoke": ("Smoke scale: the same code path on toy sizes, to check the pipeline in seconds. Its grids are too "
              "small to bracket most thresholds, so its verdicts on the trained claims say nothing about the "
              "paper; run --scale quick or paper for those."),
    "quick": ("Quick scale: grids sized for 2 CPU cores (about 17 minutes), with N spanning 8x; the verdicts hold "
              "for these ranges and budgets only."),
    "paper": "Paper scale: the paper's grids (GPU-sized).",
}


def format_value(value: Any, *, round_floats: bool = True) -> str:
    """One number (or other JSON value) as the report shows it: floats to 4 significant digits."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        x = float(value)
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return f"{x:.4g}" if round_floats else repr(x)
    return str(value)


def flatten_numbers(obj: Any, prefix: str = "", *, round_floats: bool = True) -> list[tuple[str, str]]:
    """``(key, shown value)`` rows of a nested dict/list, keys joined with dots (``a.b``, ``a.0``)."""
    if isinstance(obj, Mapping):
        if not obj:
            return [(prefix, "{}")] if prefix else []
        rows: list[tuple[str, str]] = []
        for key, val in obj.items():
            rows += flatten_numbers(val, f"{prefix}.{key}" if prefix else str(key), round_floats=round_floats)
        return rows
    if isinstance(obj, (list, tuple)):
        if not obj:
            return [(prefix or "value", "[]")]
        if len(obj) <= 8 and all(v is None or (isinstance(v, numbers.Real) and not isinstance(v, bool)) for v in obj):
            # A short list of numbers (an interval, one value per k) reads best on one line.
            return [(prefix or "value", "[" + ", ".join(format_value(v, round_floats=round_floats) for v in obj) + "]")]
        rows = []
        for i, val in enumerate(obj):
            rows += flatten_numbers(val, f"{prefix}.{i}" if prefix else str(i), round_floats=round_floats)
        return rows
    return [(prefix or "value", format_value(obj, round_floats=round_floats))]


# --- what the templates get -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Figure:
    ref: str  # "<experiment>/<file>.png" as the claim names it
    md_path: str  # relative path from the report to the PNG ("" when not shown)
    data_uri: str  # data:image/png;base64,... ("" when not shown)
    problem: str  # why it is not shown ("" when shown)


@dataclass(frozen=True)
class _ClaimView:
    id: str
    anchor: str
    statement: str
    paper_ref: str
    criterion: str
    verdict: str
    verdict_class: str
    reason: str
    numbers: list[tuple[str, str]]
    no_numbers: str  # said instead of the table when ``numbers`` is empty
    figures: list[_Figure]
    sources: list[tuple[str, str]]  # (result.json path, " (not run)" or "")
    what_tests_it: str  # only for a "not tested" claim
    stored_note: str  # when a result.json stored another verdict for this claim


@dataclass(frozen=True)
class _RunView:
    id: str
    anchor: str
    source: str
    provenance: list[tuple[str, str]]
    paper_reported: list[tuple[str, str]]
    meta: list[tuple[str, str]]
    n_runs: int


def _verdict_class(verdict: str) -> str:
    return "v-" + verdict.replace(" ", "-")


def _anchor(prefix: str, name: str) -> str:
    return prefix + "-" + (re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "x")


def _rel(path: Path, start: Path) -> str:
    try:
        return Path(os.path.relpath(path.resolve(), start.resolve())).as_posix()
    except ValueError:  # another drive on Windows
        return path.resolve().as_posix()


def _read_runs(out_dir: Path, scale: str, only: Sequence[str] | None) -> tuple[dict[str, dict], dict[str, str]]:
    """Envelopes of the experiments run (registry order), and why each other registered one was not run."""
    registry = list(_experiments.EXPERIMENTS)
    if isinstance(only, str):
        only = [only]
    if only is not None:
        unknown = [e for e in only if e not in registry]
        if unknown:
            raise ValueError(f"unknown experiment(s) {', '.join(map(repr, unknown))} in only; "
                             f"choose from {', '.join(registry)}")
    envelopes: dict[str, dict] = {}
    not_run: dict[str, str] = {}
    for exp in registry:
        if only is not None and exp not in only:
            not_run[exp] = f"not selected for this report (only: {', '.join(only) or 'none'})"
            continue
        folder = result_folder(out_dir, exp, scale)
        path = folder / RESULT_FILE
        if not path.is_file():
            hint = _experiments.extras_hint(exp)
            not_run[exp] = hint or f"no {exp}/{scale}/{RESULT_FILE} in the output folder"
            continue
        env = read_envelope(folder)  # ValueError naming the file when corrupt
        if env["experiment"] != exp or env["scale"] != scale:
            raise ValueError(f"{path} holds experiment {env['experiment']!r} at scale {env['scale']!r}, "
                             f"expected {exp!r} at {scale!r}; re-run the experiment")
        for key, kind in (("payload", dict), ("provenance", dict), ("paper_reported", dict), ("meta", dict),
                          ("runs", list), ("claims", list)):
            if not isinstance(env[key], kind):
                raise ValueError(f"{path}: {key!r} is a {type(env[key]).__name__}, not a {kind.__name__}; "
                                 "re-run the experiment")
        envelopes[exp] = env
    return envelopes, not_run


def _decide(claims: Sequence[Claim], payloads: Mapping[str, Mapping[str, Any]], scale: str) -> list[ClaimResult]:
    ids = [c.id for c in claims]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ValueError(f"duplicate claim ids: {', '.join(dup)}")
    results = []
    for claim in claims:
        try:
            results.append(_claims.evaluate(claim, payloads))
        except Exception as err:
            files = ", ".join(f"{e}/{scale}/{RESULT_FILE}" for e in claim.experiments)
            raise RuntimeError(f"claim {claim.id}: its criterion failed on {files} ({type(err).__name__}: {err}); "
                               "re-run the experiment, or fix the criterion") from err
    return results


def _figure(ref: str, out_dir: Path, scale: str, dest: Path, run: Mapping[str, Any]) -> _Figure:
    exp, sep, name = ref.partition("/")
    if not sep or not name or not exp:
        return _Figure(ref, "", "", f"figure reference {ref!r} is not of the form <experiment>/<file>.png")
    path = result_folder(out_dir, exp, scale) / name
    shown = _rel(path, dest)
    if exp not in run:
        return _Figure(ref, "", "", f"figure missing: experiment {exp} was not run for this report ({shown})")
    if not path.is_file():
        return _Figure(ref, "", "", f"figure missing: {shown} does not exist")
    data = path.read_bytes()
    if not data.startswith(_PNG_MAGIC):
        return _Figure(ref, "", "", f"figure missing: {shown} is not a PNG file")
    return _Figure(ref, shown, "data:image/png;base64," + base64.b64encode(data).decode("ascii"), "")


def _claim_view(res: ClaimResult, out_dir: Path, scale: str, dest: Path, run: Mapping[str, Any],
                stored: Mapping[str, list[tuple[str, str]]], skipped: Mapping[str, str]) -> _ClaimView:
    claim, dec = res.claim, res.decision
    sources = [(f"{e}/{scale}/{RESULT_FILE}", "" if e in run else " (not run)") for e in claim.experiments]
    what = ""
    if dec.verdict == "not tested":
        if claim.decide is None:
            what = claim.tested_by or "no experiment is planned for it yet."
        elif res.missing:
            what = (f"running experiment {', '.join(res.missing)} at scale {scale}: once its {RESULT_FILE} is in "
                    "the output folder, the next report decides the claim.")
            hints = [h for h in (skipped.get(e) or _experiments.extras_hint(e) for e in res.missing) if h]
            if hints:
                what = "; ".join(hints) + ". Then " + what
            if claim.tested_by:
                what += f" {claim.tested_by}"
        else:
            what = claim.tested_by or "the criterion found these results insufficient to decide; see the reason."
    if dec.numbers:
        no_numbers = ""
    elif dec.verdict == "not tested":
        no_numbers = "No numbers: the claim was not decided."
    else:
        no_numbers = "The criterion recorded no numbers."
    others = [f"{v!r} in {e}/{scale}/{RESULT_FILE}" for e, v in stored.get(claim.id, []) if v != dec.verdict]
    stored_note = ""
    if others:
        stored_note = (f"When it was written, {'; '.join(others)} recorded another verdict; this report shows the "
                       "verdict recomputed now from the payload.")
    return _ClaimView(
        id=claim.id, anchor=_anchor("claim", claim.id), statement=claim.statement, paper_ref=claim.paper_ref,
        criterion=claim.criterion, verdict=dec.verdict, verdict_class=_verdict_class(dec.verdict), reason=dec.reason,
        numbers=flatten_numbers(dec.numbers), no_numbers=no_numbers,
        figures=[_figure(f, out_dir, scale, dest, run) for f in claim.figures], sources=sources, what_tests_it=what,
        stored_note=stored_note)


def _duration(seconds: Any) -> str:
    if isinstance(seconds, bool) or not isinstance(seconds, numbers.Real) or not math.isfinite(seconds):
        return "not recorded"
    s = float(seconds)
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {s % 60:04.1f} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


def _run_view(exp: str, env: Mapping[str, Any], scale: str, timings: Mapping[str, float] | None) -> _RunView:
    prov = dict(env["provenance"])
    rows: list[tuple[str, str]] = []
    if "paper_section" in prov:
        rows.append(("paper section", format_value(prov.pop("paper_section"))))
    if "theorems" in prov:
        thms = prov.pop("theorems")
        rows.append(("theorems", ", ".join(map(str, thms)) if isinstance(thms, list) else format_value(thms)))
    if "claim" in prov:
        rows.append(("claim", format_value(prov.pop("claim"))))
    rows += flatten_numbers(prov, round_floats=False)

    meta = env["meta"]

    def get(key: str) -> str:
        return format_value(meta[key], round_floats=False) if meta.get(key) is not None else "not recorded"

    dirty = meta.get("git_dirty")
    sha = get("git_sha")
    if dirty is True:
        sha += " (dirty: uncommitted changes)"
    elif dirty is False:
        sha += " (clean)"
    else:
        sha += " (dirty flag not recorded)"
    seeds = meta.get("seeds")
    if timings is not None and exp in timings:
        wall = f"{_duration(timings[exp])} (timed by this run of the pipeline)"
    else:
        wall = _duration(meta.get("wall_time_s"))
        if wall != "not recorded":
            wall += " (meta.wall_time_s: the invocation that wrote this result)"
    sweep = meta.get("sweep") if isinstance(meta.get("sweep"), Mapping) else {}
    meta_rows = [
        ("georecall version", get("georecall_version")), ("git commit", sha), ("torch version", get("torch_version")),
        ("device", get("device")), ("torch threads", get("torch_threads")),
        ("seeds", ", ".join(map(str, seeds)) if isinstance(seeds, list) and seeds else get("seeds")),
        ("scale", get("scale") if "scale" in meta else scale), ("wall time", wall),
        ("wall time, every invocation", _duration(meta.get("cumulative_wall_time_s"))
         + " (meta.cumulative_wall_time_s: training and analysis summed over the invocations that wrote a result; "
           "a killed one is not counted)"),
        ("runs trained / already done", f"{sweep.get('trained', 'n/a')} / {sweep.get('skipped', 'n/a')}"),
        ("written", get("created")),
    ]
    return _RunView(id=exp, anchor=_anchor("exp", exp), source=f"{exp}/{scale}/{RESULT_FILE}", provenance=rows,
                    paper_reported=flatten_numbers(env["paper_reported"], round_floats=False), meta=meta_rows,
                    n_runs=len(env["runs"]))


# --- rendering ----------------------------------------------------------------------------------------------------


def _inline(text: Any) -> Any:
    """HTML filter: escape, then show `backtick spans` as <code>."""
    from markupsafe import Markup, escape

    escaped = str(escape(str(text)))
    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped))


def _md_cell(text: Any) -> str:
    """Markdown filter for a table cell: one line, pipes escaped."""
    return re.sub(r"\s*\n\s*", " ", str(text)).replace("|", "\\|")


def _md_dest(path: str) -> str:
    return f"<{path}>" if re.search(r"[\s()<>]", path) else path


def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("georecall.report", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=True),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(inline=_inline, md_cell=_md_cell, md_dest=_md_dest)
    return env


def build_report(out_dir: str | os.PathLike[str], scale: str, *, only: Sequence[str] | None = None,
                 dest: Path | None = None, claims: Sequence[Claim] | None = None,
                 timings: Mapping[str, float] | None = None,
                 skipped: Mapping[str, str] | None = None) -> ReportPaths:
    """Write ``report.md`` and ``report.html`` for the results at ``scale`` under ``out_dir``.

    Reads ``<out_dir>/<experiment>/<scale>/result.json`` of every registered experiment that has one
    (``only``: just those experiments count as run, the others are reported not run), re-decides every
    claim (``claims``, default :func:`~georecall.experiments.claims.all_claims`) on the payloads, and
    writes both reports into ``dest`` (default ``out_dir``) atomically. ``timings`` (experiment id ->
    seconds) overrides each envelope's ``meta.wall_time_s``; ``skipped`` (experiment id -> why it could not
    run, e.g. a model that is not installed) is shown for experiments without a result. A corrupt or
    foreign envelope raises ValueError naming the file; an unknown id in ``only`` raises ValueError; a
    criterion that raises on a payload is a RuntimeError naming the claim and the files it read. A figure
    that is not on disk (or whose experiment was not run) is reported as missing in the text.
    """
    out_dir = Path(out_dir)
    dest = Path(dest) if dest is not None else out_dir
    envelopes, not_run = _read_runs(out_dir, scale, only)
    for exp, why in (skipped or {}).items():
        if exp in not_run:
            not_run[exp] = why
    payloads = {exp: env["payload"] for exp, env in envelopes.items()}
    claim_list = tuple(claims) if claims is not None else tuple(_claims.all_claims())
    results = _decide(claim_list, payloads, scale)

    stored: dict[str, list[tuple[str, str]]] = {}
    for exp, env in envelopes.items():
        for entry in env["claims"]:
            if isinstance(entry, Mapping) and "id" in entry and "verdict" in entry:
                stored.setdefault(str(entry["id"]), []).append((exp, str(entry["verdict"])))

    dest.mkdir(parents=True, exist_ok=True)
    views = [_claim_view(r, out_dir, scale, dest, envelopes, stored, skipped or {}) for r in results]
    counts = [(v, n) for v in VERDICTS if (n := sum(r.decision.verdict == v for r in results))]
    summary = (f"{len(results)} claim{'' if len(results) == 1 else 's'}: "
               + ", ".join(f"{n} {v}" for v, n in counts) + ".")
    shown_out = _rel(out_dir, dest)
    context = {
        "scale": scale,
        "scale_note": SCALE_NOTES.get(scale, ""),
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "georecall_version": georecall.__version__,
        "out_dir": "the folder of this report" if shown_out == "." else f"`{shown_out}`",
        "claims": views,
        "summary": summary,
        "runs": [_run_view(exp, env, scale, timings) for exp, env in envelopes.items()],
        "not_run": list(not_run.items()),
        "deviations": list(DEVIATIONS),
        "verdicts": [(v, _verdict_class(v), VERDICT_MEANINGS[v]) for v in VERDICTS],
        "colours": [(_verdict_class(v), VERDICT_COLOURS[v]) for v in VERDICTS],
        "result_file": RESULT_FILE,
    }
    jenv = _environment()
    markdown = jenv.get_template("report.md.j2").render(**context)
    html = jenv.get_template("report.html.j2").render(**context)
    paths = ReportPaths(markdown=dest / REPORT_MD, html=dest / REPORT_HTML,
                        verdicts={r.claim.id: r.decision.verdict for r in results})
    write_atomic(paths.markdown, markdown, fsync=True)
    write_atomic(paths.html, html, fsync=True)
    return paths
