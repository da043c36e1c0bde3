"""georecall.plotting: torch-free, no pyplot, and every experiment's figures render from a synthetic payload.

The payloads are built here by hand with the field names of the experiments' Result dataclasses (read
from their source with ``ast``, so this file never imports torch through them).
"""

import ast
import csv
import io
import json
import math
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

import georecall.plotting
from georecall.plotting import capacity, frozen_control, style, tables, threshold

PLOTTING_DIR = Path(georecall.plotting.__file__).parent
EXPERIMENTS_DIR = PLOTTING_DIR.parent / "experiments"
MODULES = ("threshold", "frozen_control", "multihop", "capacity")


def _result_fields(module: str, cls: str) -> set[str]:
    tree = ast.parse((EXPERIMENTS_DIR / f"{module}.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == cls:
            return {n.target.id for n in node.body if isinstance(n, ast.AnnAssign)}
    raise AssertionError(f"no class {cls} in experiments/{module}.py")


def _header(path: Path) -> list[str]:
    with open(path, newline="") as fh:
        return next(csv.reader(fh))


def _assert_png_drawn(path: Path) -> None:
    from matplotlib.image import imread

    assert path.suffix == ".png" and path.is_file()
    img = imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    assert float(img[..., :3].std()) > 0.02, f"{path.name} looks blank"


# ---------------------------------------------------------------------------------------------------
# Synthetic payloads (the shape of dataclasses.asdict(Result))


def _threshold_payload() -> dict:
    """A real analysis of planted thresholds (the search driven on synthetic outcomes), as result.json holds it."""
    import dataclasses as dc
    import tempfile

    from georecall.experiments import threshold as th_exp
    from tests.fast.test_threshold_capacity import _drive, _small, _step

    cfg = _small(n_subjects=(8, 16, 64), n_relations=(2, 4), n_bootstrap=20, search_max=200)
    need = {("ln_frozen", 64, 4): 10_000}  # above the range: drawn as unbracketed
    rows, _ = _drive(cfg, _step(lambda c, n, k, steps: need.get((c, n, k), k * (2 if c == "ln_frozen" else 1)
                                                                       * round(1 + math.log2(n)))))
    with tempfile.TemporaryDirectory() as tmp:
        return json.loads(json.dumps(dc.asdict(th_exp.analyze(cfg, rows, Path(tmp)))))


def _per(info: float, params: int | None) -> float | None:
    return None if params is None else info / params


def _capacity_payload() -> dict:
    """The capacity view of the same planted analysis."""
    import dataclasses as dc
    import tempfile

    from georecall.experiments import capacity as cap_exp
    from tests.fast.test_threshold_capacity import _drive, _small, _step

    cfg = _small(n_subjects=(8, 16, 64), n_relations=(2, 4), n_bootstrap=20)
    rows, _ = _drive(cfg, _step(lambda c, n, k, steps: k * round(1 + math.log2(n))))
    with tempfile.TemporaryDirectory() as tmp:
        return json.loads(json.dumps(dc.asdict(cap_exp.analyze(cfg, rows, Path(tmp)))))


PAYLOADS = {"threshold": (_threshold_payload, "ThresholdResult"), "capacity": (_capacity_payload, "CapacityResult")}
# multihop's and frozen_control's payloads come from their own analyses of trained models (probes, run
# directories), so their figures are drawn from real smoke payloads in tests/fast/test_experiments.py and in
# their own test modules.
#: What each module writes: PNG stems and (CSV name, a column its header must hold).
EXPECTED = {
    "threshold": ({"d_star_vs_n", "d_star_collapse", "d_star_vs_budget"},
                  {"d_star_vs_n.csv": ["condition", "n_subjects", "n_relations", "d_star", "ci95_lo", "ci95_hi",
                                       "status", "converged", "final_steps", "selector_d", "gamma_global_bits"],
                   "d_star_vs_budget.csv": ["condition", "n_subjects", "n_relations", "steps", "d_star", "status"]}),
    "capacity": ({"bits_per_param"}, {"bits_per_param.csv": list(capacity.COLUMNS)}),
}


# ---------------------------------------------------------------------------------------------------
# (a) torch-free, (c) no pyplot


def test_importing_every_plotting_module_leaves_torch_out():
    mods = ", ".join(["georecall.plotting", "georecall.plotting.style", "georecall.plotting.tables",
                      *(f"georecall.plotting.{m}" for m in MODULES)])
    code = f"import sys, {mods}; print('torch' in sys.modules, 'matplotlib.pyplot' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["False", "False"], out.stdout + out.stderr


def _code_only(text: str) -> str:
    """The source without its comments and docstrings (prose may name what the code must not do)."""
    tree = ast.parse(text)
    doc_lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                doc_lines.update(range(first.lineno, first.end_lineno + 1))
    kept = []
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type != tokenize.COMMENT and tok.start[0] not in doc_lines:
            kept.append(tok.string)
    return "".join(kept)


def test_no_plotting_module_uses_pyplot_or_sets_the_backend():
    files = sorted(PLOTTING_DIR.glob("*.py"))
    assert {f.stem for f in files} >= {"__init__", "style", "tables", *MODULES}
    for f in files:
        code = _code_only(f.read_text())
        assert "matplotlib.use" not in code and "pyplot" not in code, f.name
    assert "pyplot" in _code_only("import matplotlib.pyplot as plt\n")  # the check sees real code
    assert "matplotlib.use" in _code_only('"""Doc."""\nimport matplotlib\nmatplotlib.use("Agg")  # no\n')


def test_no_plotting_module_imports_torch_training_model_or_experiments():
    for f in PLOTTING_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert not name.startswith(("torch", "georecall.experiments", "georecall.training",
                                            "georecall.model")), (f.name, name)


# ---------------------------------------------------------------------------------------------------
# (b) every module renders from a synthetic payload


@pytest.mark.parametrize("module", sorted(PAYLOADS))
def test_synthetic_payload_uses_the_result_fields(module):
    build, cls = PAYLOADS[module]
    fields = _result_fields(module, cls)
    assert set(build()) <= fields, sorted(set(build()) - fields)


@pytest.mark.parametrize("module", sorted(PAYLOADS))
def test_each_module_renders_pngs_and_csvs_from_a_payload(module, tmp_path):
    plot = getattr(georecall.plotting, module).plot
    files = plot(PAYLOADS[module][0](), tmp_path)
    pngs, csvs = EXPECTED[module]
    assert {f.stem for f in files if f.suffix == ".png"} == pngs
    assert {f.name for f in files if f.suffix == ".csv"} == set(csvs)
    assert all(f.parent == tmp_path and f.stat().st_size > 0 for f in files)
    for f in files:
        if f.suffix == ".png":
            _assert_png_drawn(f)
    for name, header in csvs.items():
        assert _header(tmp_path / name) == header, name
    assert not list(tmp_path.glob("*.tmp*"))  # saved atomically


def test_csv_rows_follow_the_payload(tmp_path):
    payload = _threshold_payload()
    threshold.plot(payload, tmp_path)
    with open(tmp_path / "d_star_vs_n.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == sum(len(es) for es in payload["d_star_by_condition"].values())
    row = next(r for r in rows if (r["condition"], r["n_subjects"], r["n_relations"]) == ("ln_learned", "16", "2"))
    assert row["d_star"] == str(2 * 5) and row["status"] == "bracketed" and row["converged"] == "True"
    censored = [r for r in rows if r["d_star"] == ""]
    assert [(r["condition"], r["n_subjects"], r["status"]) for r in censored] == [("ln_frozen", "64", "censored_high")]


def test_capacity_renders_when_no_d_star_was_found(tmp_path):
    cap = _capacity_payload()
    for e in cap["entries"]:
        e.update(d_star=None, params_total=None, params_trainable=None, bits_per_param_total=None,
                 bits_per_param_embedding=None, params_over_bound_1bit=None)
    _assert_png_drawn(capacity.plot(cap, tmp_path)[0])


# ---------------------------------------------------------------------------------------------------
# Style helpers, the shared CSV writer, the external reference


def test_seed_spread_and_majority_rule():
    assert style.seed_spread([0.5, None, 1.0]) == (0.75, 0.5, 1.0)
    assert style.seed_spread([None]) is None and style.seed_spread([]) is None


def test_write_csv_writes_none_as_an_empty_cell(tmp_path):
    path = tables.write_csv(tmp_path / "t.csv", ["a", "b"], [(1, None), ("x", 2.5)])
    assert path.read_text().splitlines() == ["a,b", "1,", "x,2.5"]


def test_the_lm_reference_is_labelled_external_not_this_papers():
    assert capacity.REFERENCE_LABEL.startswith("external reference, not this paper")
    assert "Allen-Zhu" in capacity.REFERENCE_LABEL


def test_frozen_control_reads_the_success_level_from_either_config_shape():
    assert frozen_control.success_level({"recipe": {"success_accuracy": 0.95, "target_accuracy": 0.99}}) == 0.95
    assert frozen_control.success_level({"target_accuracy": 0.9}) == 0.9  # the flat config of schema 1
