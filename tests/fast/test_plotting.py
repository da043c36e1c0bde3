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
from georecall.plotting import capacity, frozen_control, multihop, style, tables, threshold
from georecall.theory import construction_cost, information_bits, required_bits

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


def _frozen_control_payload() -> dict:
    worlds, d, ratio = ((16, 2), (32, 2), (32, 4)), 8, 4
    curves, points = [], []
    for cond, sizes in (("frozen", (4, 8, 16, 32)), ("learned", (4, 6, 8))):
        for n, k in worlds:
            need = max(sizes[0] * 2, n * k // 4) if cond == "frozen" else 6
            need = min(s for s in sizes if s >= need) if any(s >= need for s in sizes) else None
            for size in sizes:
                ok = need is not None and size >= need
                accs = [1.0, 0.995, 0.99] if ok else [0.5, 0.6, None]
                fin = [a for a in accs if a is not None]
                curves.append({"condition": cond, "N": n, "K": k, "NK": n * k, "size": size,
                               "d_model": d if cond == "frozen" else size,
                               "d_mlp": size if cond == "frozen" else ratio * size, "n_seeds": 3,
                               "n_success": 3 if ok else 0, "majority": ok, "accuracy": accs, "steps": [10, 10, 10],
                               "mean_accuracy": sum(fin) / len(fin), "median_accuracy": sorted(fin)[len(fin) // 2],
                               "min_accuracy": min(fin), "max_accuracy": max(fin), "median_steps": 10.0,
                               "params_non_embedding": 50 * size, "params_trainable": 50 * size,
                               "params_total": 80 * size})
            points.append({"condition": cond, "N": n, "K": k, "NK": n * k, "needed_size": need,
                           "status": "censored_high" if need is None else "bracketed",
                           "size_name": "d_mlp" if cond == "frozen" else "d_model", "first_success": need,
                           "tried": list(sizes), "d_model": d if cond == "frozen" else need,
                           "d_mlp": need if cond == "frozen" else (None if need is None else ratio * need),
                           "params_non_embedding": None if need is None else 50 * need,
                           "params_trainable": None if need is None else 50 * need,
                           "params_total": None if need is None else 80 * need,
                           "information_bits": information_bits(n, k)})
    fz = [p for p in points if p["condition"] == "frozen" and p["status"] == "bracketed"]
    slope = {"slope": 0.25, "intercept": 0.0, "stderr": 0.01, "boot_stderr": 0.02, "ci95": [0.2, 0.3], "r2": 1.0,
             "n_points": len(fz), "n_boot": 50, "x": [float(p["NK"]) for p in fz], "y": [p["needed_size"] for p in fz],
             "kind": "linear"}
    expo = {c: {"slope": 1.0 if c == "frozen" else 0.0, "intercept": 1.0, "stderr": 0.1, "r2": 0.9, "n": 3,
                "n_points": 3, "x": [32.0, 64.0, 128.0], "y": [1.0, 2.0, 3.0], "kind": "log-log"}
            for c in ("frozen", "learned")}
    return {"schema_version": 1, "scale": "smoke",
            "config": {"d_model": d, "learned_mlp_ratio": ratio, "seeds": [0, 1, 2],
                       "recipe": {"steps": 50, "lr": 0.01, "target_accuracy": 0.99, "success_accuracy": 0.99}},
            "recipe": "1 layer, 1 head, pre-LN; AdamW lr 0.01; full batch; budget 50 steps", "curves": curves,
            "points": points, "width_slope": slope, "width_exponent": dict(slope, slope=1.0), "param_exponent": expo,
            "param_per_fact": expo, "comparison": [], "n_runs": 63, "n_failed_runs": 1, "sweep": {},
            "wall_time_s": 1.0}


def _multihop_payload(*, probes: bool = True) -> dict:
    n, k_rel, hops, conds = 8, 2, [1, 2], ["direct-frozen", "direct-learned", "cot-frozen", "cot-learned"]
    ds, ws, seeds = [8, 16], [16, 32], [0, 1, 2]
    sizes, smallest = [], []
    for k in hops:
        for c in conds:
            for d in ds:
                for w in ws:
                    ok = d * w >= 128 * k
                    sizes.append({"k": k, "condition": c, "d_model": d, "d_mlp": w, "n_layers": k, "seeds": seeds,
                                  "accuracy": [1.0 if ok else 0.5] * 3, "steps": [50] * 3,
                                  "n_success": 3 if ok else 1, "n_runs": 3, "success": ok,
                                  "trainable_params": 20 * d * w, "total_params": 25 * d * w,
                                  "non_embedding_trainable_params": 15 * d * w})
            best = next((e for e in sizes if e["k"] == k and e["condition"] == c and e["success"]), None)
            smallest.append({"k": k, "condition": c, "found": False} if best is None else
                            {"k": k, "condition": c, "found": True, "d_model": best["d_model"], "d_mlp": best["d_mlp"],
                             "trainable_params": best["trainable_params"], "total_params": best["total_params"]})
    theory = []
    for k in hops:
        b0 = required_bits(n, k_rel, k, 0.0, readout="fixed")
        t = {"k": k, "gamma_G": b0.gamma_global, "gamma_L": b0.gamma_local,
             "required_bits_at_zero_embedding": b0.required_bits}
        for name in ("kv-memory", "precompute", "cot"):
            cc, key = construction_cost(name, n, k_rel, k), name.replace("-", "_")
            t.update({f"{key}_d_model": cc.d_model, f"{key}_total_params": cc.total,
                      f"{key}_embedding_bits": cc.embedding_bits_content, f"{key}_P_bits": cc.P_bits_content})
        theory.append(t)
    probe_list = [{"k": 1, "d_model": 16, "d_mlp": w, "seed": s, "accuracy": 1.0, "embedding_bits": 16.0,
                   "gamma_L": 3.0, "below_gamma_L": False, "index_metric": "bit_accuracy", "index_score": 0.6,
                   "index_control_mean": 0.5, "index_control_max": 0.55, "index_beats_control": False,
                   "readout_metric": "r2", "readout_score": 0.3, "readout_control_mean": -0.1,
                   "readout_control_max": 0.05, "readout_beats_control": True, "readout_holds_backward_codes": True}
                  for w in ws for s in seeds] if probes else []
    return {"scale": "smoke", "n_subjects": n, "n_relations": k_rel, "hops": hops, "conditions": conds,
            "d_models": ds, "d_mlps": ws, "seeds": seeds, "target_accuracy": 0.99, "steps": 120,
            "recipe": {"lr": 0.01, "probe": {"folds": 2, "ridge": 1.0, "shuffles": 4, "margin": 0.05}},
            "bits_per_coordinate": 1.0, "sizes": sizes, "smallest": smallest, "theory": theory,
            "probes": probe_list, "n_flagged": len(probe_list), "n_failed_runs": 0, "sweep": {}, "wall_time_s": 1.0,
            "schema_version": 1}


PAYLOADS = {"threshold": (_threshold_payload, "ThresholdResult"), "capacity": (_capacity_payload, "CapacityResult"),
            "frozen_control": (_frozen_control_payload, "Result"), "multihop": (_multihop_payload, "Result")}
#: What each module writes: PNG stems and (CSV name, a column its header must hold).
EXPECTED = {
    "threshold": ({"d_star_vs_n", "d_star_collapse", "d_star_vs_budget"},
                  {"d_star_vs_n.csv": ["condition", "n_subjects", "n_relations", "d_star", "ci95_lo", "ci95_hi",
                                       "status", "converged", "final_steps", "selector_d", "gamma_global_bits"],
                   "d_star_vs_budget.csv": ["condition", "n_subjects", "n_relations", "steps", "d_star", "status"]}),
    "capacity": ({"bits_per_param"}, {"bits_per_param.csv": list(capacity.COLUMNS)}),
    "frozen_control": (set(frozen_control.FIGURES),
                       {"frozen_accuracy_vs_width.csv": list(frozen_control.CURVE_COLUMNS),
                        "learned_accuracy_vs_d.csv": list(frozen_control.CURVE_COLUMNS),
                        "params_needed_vs_nk.csv": list(frozen_control.POINT_COLUMNS)}),
    "multihop": ({"capacity_depth", "success_grid", "backward_probe"},
                 {"capacity_depth.csv": ["series", "k", "value", "unit"],
                  "success_grid.csv": ["condition", "k", "d_model", "d_mlp", "n_success", "n_runs", "success",
                                       "trainable_params", "total_params"],
                  "backward_probe.csv": ["k", "d_model", "d_mlp", "seed", "embedding_bits", "gamma_L",
                                         "below_gamma_L", "index_score", "index_control_mean", "index_control_max",
                                         "readout_score", "readout_control_mean", "readout_control_max", "flagged"]}),
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


@pytest.mark.parametrize("module", MODULES)
def test_synthetic_payload_uses_the_result_fields(module):
    build, cls = PAYLOADS[module]
    fields = _result_fields(module, cls)
    assert set(build()) <= fields, sorted(set(build()) - fields)


@pytest.mark.parametrize("module", MODULES)
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


def test_multihop_renders_with_nothing_found_and_nothing_probed(tmp_path):
    mh = _multihop_payload(probes=False)
    for s in mh["smallest"]:
        s.update(found=False)
    files = multihop.plot(mh, tmp_path)
    assert {f.name for f in files} >= {"backward_probe.png", "capacity_depth.png"}
    _assert_png_drawn(tmp_path / "backward_probe.png")  # says there is nothing to probe
    assert _header(tmp_path / "backward_probe.csv")[0] == "k"


def test_frozen_control_renders_when_no_size_succeeded(tmp_path):
    fc = _frozen_control_payload()
    fc["width_slope"] = dict(fc["width_slope"], slope=None, intercept=None, stderr=None, ci95=None)
    for p in fc["points"]:
        p.update(needed_size=None, status="censored_high", params_non_embedding=None, params_total=None)
    for c in fc["param_exponent"].values():
        c.update(slope=None, intercept=None)
    assert len(frozen_control.plot(fc, tmp_path)) == 6


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
