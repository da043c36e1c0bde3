"""The mechanism figures (superposition, intervention, transfer): torch-free, and drawn from a payload alone.

The payloads are built here by hand with the field names of the experiments' Result dataclasses (read
from their source with ``ast``, so this file never imports torch through them); the smoke payloads of a
real run are drawn too when they are present (``/tmp/mech/<experiment>/smoke``).
"""

import ast
import csv
import subprocess
import sys
from pathlib import Path

import pytest

import georecall.plotting
from georecall.plotting import intervention, superposition, transfer

PLOTTING_DIR = Path(georecall.plotting.__file__).parent
EXPERIMENTS_DIR = PLOTTING_DIR.parent / "experiments"
MODULES = {"superposition": superposition, "intervention": intervention, "transfer": transfer}
RESULT_CLASSES = {"superposition": "SuperpositionResult", "intervention": "InterventionResult",
                  "transfer": "TransferResult"}
SMOKE_DIR = Path("/tmp/mech")

N, K, SEEDS = 12, 3, (0, 1, 2)
CELLS = (("primary", 1.3, 10), ("primary", 2.0, 10), ("primary", 4.0, 10), ("frozen_readout", 2.0, 12),
         ("frozen_readout", 4.0, 12))
PRIMARY_MULTIPLE = 2.0
EDIT_SCALES = [0.25, 0.5, 1.0, 2.0, 4.0]
LABELS = {"primary": "pre-LN, learned untied readout, no weight decay, full schedule",
          "frozen_readout": "as primary, frozen random readout (fact-free W_U)"}
RULE = ("a hidden unit (at blocks.0.mlp.hook_post) belongs to relation r when at least 50% of its mean activation at "
        "the answer position over all N·K queries comes from relation r's queries, and its mean activation exceeds "
        "1e-6 of the most active unit's (dead units belong to none)")
NOTE = "ln_frozen: threshold not bracketed (censored_high); its conditions have no models"


def _result_fields(module: str, cls: str) -> set[str]:
    tree = ast.parse((EXPERIMENTS_DIR / f"{module}.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == cls:
            return {n.target.id for n in node.body if isinstance(n, ast.AnnAssign)}
    raise AssertionError(f"no class {cls} in experiments/{module}.py")


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _header(path: Path) -> list[str]:
    with open(path, newline="") as fh:
        return next(csv.reader(fh))


def _assert_png_drawn(path: Path) -> None:
    from matplotlib.image import imread

    assert path.suffix == ".png" and path.is_file() and path.stat().st_size > 5000, path
    img = imread(path)
    assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 200
    assert float(img[..., :3].std()) > 0.02, f"{path.name} looks blank"


# ---------------------------------------------------------------------------------------------------
# Synthetic payloads (the shape of dataclasses.asdict(Result))


def _spread(per_seed: list, **extra) -> dict:
    vals = [v for v in per_seed if v is not None]
    s = {"mean": sum(vals) / len(vals), "min": min(vals), "max": max(vals)} if vals else \
        {"mean": None, "min": None, "max": None}
    return {"per_seed": per_seed, **s, "n": len(vals), "missing": len(per_seed) - len(vals), **extra}


def _design() -> dict:
    return {"n_subjects": N, "n_relations": K, "seeds": list(SEEDS), "multiples": [1.3, 2.0, 4.0],
            "side_multiples": [2.0, 4.0], "primary_condition": "primary", "primary_multiple": PRIMARY_MULTIPLE,
            "conditions": {c: {"label": lab, "architecture": "ln_learned", "weight_decay": 0.0,
                               "full_schedule": True} for c, lab in LABELS.items()},
            "thresholds": {}, "search": "…", "recipe": {"steps": 300, "lr": 0.03}}


def _cell_head(cond: str, m: float, d_star: int) -> dict:
    return {"condition": cond, "multiple": m, "d_star": d_star, "d_model": round(m * d_star), "seeds": list(SEEDS)}


def _superposition_payload() -> dict:
    cells = []
    for cond, m, d_star in CELLS:
        base = min(1.0, 0.3 * m)
        unemb = {"probe_accuracy": _spread([base, base - 0.05, None]),
                 "probe_random_bijection": _spread([0.08, 0.1, None]), "probe_shuffled": _spread([0.0, 0.05, None]),
                 "additive_r2": _spread([base - 0.1, base, None]), "additive_r2_control": _spread([-0.05, 0.0, None]),
                 "additive_r2_in_sample": _spread([0.9, 0.95, None]), "chance": _spread([1 / N] * 2 + [None])}
        cells.append({**_cell_head(cond, m, d_star), "unembedding": unemb, "embedding": unemb,
                      "accuracy": {"train_accuracy": _spread([1.0, 1.0, None])}})
    head = next(c for c in cells if c["condition"] == "primary" and c["multiple"] == PRIMARY_MULTIPLE)
    control = [float((5 * i) % N) for i in range(N)]
    panels = [{"relation": r, "x": [0.1 * i for i in range(N)], "y": [(-1) ** i * 0.2 * r for i in range(N)],
               "colour": [float(i) for i in range(N)]} for r in range(K)]
    return {"scale": "test", "probe_accuracy": 0.55, "probe_accuracy_control": 0.09, "probe_accuracy_shuffled": 0.02,
            "additive_r2": 0.5, "additive_r2_control": -0.02, "chance": 1 / N,
            "primary": {"condition": "primary", "multiple": PRIMARY_MULTIPLE, "d_model": head["d_model"],
                        "unembedding": head["unembedding"]},
            "cells": cells, "design": _design(),
            "projection": {"panels": panels, "control": {**panels[0], "colour": control}},
            "notes": ["primary ×1.3 seed 2: no trained model"], "n_runs": 30, "schema_version": 1, "sweep": {},
            "wall_time_s": 1.0}


def _matrix(diag: float, off: float) -> list[list[float]]:
    return [[diag if i == j else off for j in range(K)] for i in range(K)]


def _intervention_cell(cond: str, m: float, d_star: int) -> dict:
    numbers = {"edit_success": _spread([0.7, 0.8, 0.9]), "edit_collateral": _spread([0.0, 0.05, 0.1]),
               "control_edit_success": _spread([0.0, 0.0, 0.02]), "control_edit_changed": _spread([0.1, 0.1, 0.2]),
               "zero_diagonal_fraction": _spread([0.9, 0.95, None]),
               "zero_random_diagonal_fraction": _spread([0.3, 0.4, None]), "units_attributed": _spread([40, 42, 44])}
    return {**_cell_head(cond, m, d_star), "numbers": numbers,
            "edit_curves": {"success": [0.0, 0.2, 0.8, 0.9, 0.7], "collateral": [0.0, 0.0, 0.05, 0.2, 0.5],
                            "control_success": [0.0] * 5, "control_collateral": [0.0, 0.0, 0.0, 0.01, 0.05],
                            "control_changed": [0.0, 0.0, 0.05, 0.1, 0.3]},
            "edit_scales": list(EDIT_SCALES),
            "ablation_zero": {"drops": _matrix(0.8, 0.02), "random_drops": _matrix(0.05, -0.01),
                              "clean": [1.0, 0.98, 1.0]},
            "ablation_mean": {"drops": _matrix(0.7, 0.01), "random_drops": _matrix(0.04, 0.0)},
            "unit_counts": [[14, 13, 13], [15, 14, 13], None], "n_units": 4 * round(m * d_star)}


def _intervention_payload() -> dict:
    cells = [_intervention_cell(*c) for c in CELLS]
    head = next(c for c in cells if c["condition"] == "primary" and c["multiple"] == PRIMARY_MULTIPLE)
    return {"scale": "test", "edit_success": 0.8, "edit_collateral": 0.05, "control_edit_success": 0.007,
            "ablation_diagonal_fraction": 0.925, "random_units_diagonal_fraction": 0.35, "edit_scale": 1.0,
            "primary": {"condition": "primary", "multiple": PRIMARY_MULTIPLE, **head}, "cells": cells,
            "design": _design(), "attribution_rule": RULE, "notes": [], "n_runs": 30, "schema_version": 1,
            "sweep": {}, "wall_time_s": 1.0}


def _transfer_cell(cond: str, m: float, d_star: int) -> dict:
    numbers = {"zero_shot_accuracy": _spread([0.4 * m / 4, 0.3 * m / 4, 0.5 * m / 4]),
               "embeddings_only_accuracy": _spread([1.0, 0.99, 0.95]),
               "untrained_frozen_accuracy": _spread([0.6, 0.7, 0.5]),
               "embeddings_only_steps": _spread([100, 120, None], reached=2),
               "untrained_frozen_steps": _spread([None, None, None], reached=0),
               "from_scratch_steps": _spread([200, 220, 260], reached=3),
               "from_scratch_accuracy": _spread([1.0, 1.0, 1.0]), "chance": _spread([1 / N] * 3)}
    return {**_cell_head(cond, m, d_star), "numbers": numbers}


def _transfer_payload() -> dict:
    cells = [_transfer_cell(*c) for c in CELLS]
    head = next(c for c in cells if c["condition"] == "primary" and c["multiple"] == PRIMARY_MULTIPLE)
    return {"scale": "test", "zero_shot_accuracy": 0.2, "chance": 1 / N, "embeddings_only_accuracy": 0.98,
            "embeddings_only_steps": 110.0, "embeddings_only_reached": 2, "from_scratch_steps": 226.7,
            "untrained_frozen_accuracy": 0.6, "untrained_frozen_steps": None, "untrained_frozen_reached": 0,
            "step_budget": 300, "target_accuracy": 0.99,
            "best_zero_shot": {"condition": "primary", "multiple": 4.0, "d_model": 40, "mean": 0.4, "min": 0.3,
                               "max": 0.5},
            "primary": {"condition": "primary", "multiple": PRIMARY_MULTIPLE, **head}, "cells": cells,
            "design": _design(), "notes": [], "n_runs": 30, "schema_version": 1, "sweep": {}, "wall_time_s": 1.0}


PAYLOADS = {"superposition": _superposition_payload, "intervention": _intervention_payload,
            "transfer": _transfer_payload}
#: What each module writes: PNG stems and CSV names with their headers.
EXPECTED = {
    "superposition": ({"probe_vs_d", "projection"},
                      {"probe_vs_d.csv": list(superposition.SPREAD_COLUMNS),
                       "projection.csv": list(superposition.PROJECTION_COLUMNS)}),
    "intervention": ({"ablation_matrix", "edits", "intervention_vs_d"},
                     {"ablation_matrix.csv": list(intervention.ABLATION_COLUMNS),
                      "edits.csv": list(intervention.EDIT_COLUMNS),
                      "intervention_vs_d.csv": list(superposition.SPREAD_COLUMNS)}),
    "transfer": ({"transfer_vs_d"}, {"transfer_vs_d.csv": list(transfer.COLUMNS)}),
}


def _empty_payload(module: str) -> dict:
    """No primary cell, no cells, no projection: a threshold that was not bracketed."""
    p = PAYLOADS[module]()
    p.update(primary={}, cells=[], notes=[NOTE])
    if module == "superposition":
        p.update(projection=None, probe_accuracy=None, additive_r2=None)
    return p


# ---------------------------------------------------------------------------------------------------
# Torch-free


def test_importing_the_mechanism_plotting_modules_leaves_torch_and_pyplot_out():
    mods = ", ".join(f"georecall.plotting.{m}" for m in MODULES)
    code = f"import sys, {mods}; print('torch' in sys.modules, 'matplotlib.pyplot' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["False", "False"], out.stdout + out.stderr


@pytest.mark.parametrize("module", MODULES)
def test_the_modules_import_nothing_of_torch_or_the_experiments(module):
    for node in ast.walk(ast.parse((PLOTTING_DIR / f"{module}.py").read_text())):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        for name in names:
            assert not name.startswith(("torch", "georecall.experiments", "georecall.analysis", "georecall.training",
                                        "georecall.model", "matplotlib.pyplot")), name


# ---------------------------------------------------------------------------------------------------
# Rendering


@pytest.mark.parametrize("module", MODULES)
def test_synthetic_payload_uses_the_result_fields(module):
    fields = _result_fields(module, RESULT_CLASSES[module])
    assert set(PAYLOADS[module]()) <= fields, sorted(set(PAYLOADS[module]()) - fields)


_RENDERED: dict[str, tuple[Path, list[Path]]] = {}


@pytest.fixture
def rendered(tmp_path_factory):
    """``rendered(module)``: (folder, files) of the module's synthetic payload, drawn once per session."""
    def get(module: str) -> tuple[Path, list[Path]]:
        if module not in _RENDERED:
            folder = tmp_path_factory.mktemp(module)
            _RENDERED[module] = folder, MODULES[module].plot(PAYLOADS[module](), folder)
        return _RENDERED[module]

    return get


@pytest.mark.parametrize("module", MODULES)
def test_each_module_writes_its_pngs_and_csvs(module, rendered):
    tmp_path, files = rendered(module)
    pngs, csvs = EXPECTED[module]
    assert {f.stem for f in files if f.suffix == ".png"} == pngs
    assert {f.name for f in files if f.suffix == ".csv"} == set(csvs)
    assert all(f.parent == tmp_path for f in files)
    for f in files:
        if f.suffix == ".png":
            _assert_png_drawn(f)
    for name, header in csvs.items():
        assert _header(tmp_path / name) == header, name
    assert not list(tmp_path.glob("*.tmp*"))  # saved atomically


def test_superposition_csv_rows(rendered):
    tmp_path = rendered("superposition")[0]
    rows = _rows(tmp_path / "probe_vs_d.csv")
    assert len(rows) == len(CELLS) * 5
    row = next(r for r in rows if (r["condition"], r["multiple"], r["metric"]) == ("primary", "2.0", "probe_accuracy"))
    assert float(row["mean"]) == pytest.approx(0.575) and row["n_seeds"] == "2" and row["n_missing"] == "1"
    assert row["label"] == LABELS["primary"]
    proj = _rows(tmp_path / "projection.csv")
    assert len(proj) == (K + 1) * N
    assert {r["panel"] for r in proj} == {*(f"relation {r}" for r in range(K)), "control: random bijection"}


def test_intervention_csv_rows(rendered):
    tmp_path = rendered("intervention")[0]
    ab = _rows(tmp_path / "ablation_matrix.csv")
    assert len(ab) == 2 * 2 * K * K  # (zero, mean) x (attributed, random) x K x K
    cell = next(r for r in ab if (r["mode"], r["units"], r["ablated_relation"], r["queried_relation"])
                == ("zero", "attributed", "1", "1"))
    assert float(cell["drop"]) == 0.8 and float(cell["mean_units_of_ablated_relation"]) == 13.5
    edits = _rows(tmp_path / "edits.csv")
    assert [float(r["edit_scale"]) for r in edits] == EDIT_SCALES
    assert float(edits[2]["success"]) == 0.8 and float(edits[4]["control_changed"]) == 0.3
    assert len(_rows(tmp_path / "intervention_vs_d.csv")) == len(CELLS) * 5


def test_transfer_csv_says_how_many_seeds_reached_the_target(rendered):
    tmp_path = rendered("transfer")[0]
    rows = _rows(tmp_path / "transfer_vs_d.csv")
    assert len(rows) == len(CELLS) * 6
    by = {(r["condition"], r["multiple"], r["metric"]): r for r in rows}
    emb = by[("primary", "2.0", "embeddings_only_steps")]
    assert (emb["reached"], emb["seeds"], float(emb["mean"])) == ("2", "3", 110.0)
    untr = by[("primary", "2.0", "untrained_frozen_steps")]
    assert (untr["reached"], untr["mean"]) == ("0", "")  # never reached: an empty mean, 0 reached
    assert by[("primary", "2.0", "zero_shot_accuracy")]["reached"] == ""


@pytest.mark.parametrize("module", MODULES)
def test_no_primary_cell_and_no_cells_draws_empty_panels(module, tmp_path):
    files = MODULES[module].plot(_empty_payload(module), tmp_path)
    pngs, csvs = EXPECTED[module]
    assert {f.stem for f in files if f.suffix == ".png"} == pngs
    for f in files:
        if f.suffix == ".png":
            assert f.stat().st_size > 5000
        else:
            assert _rows(f) == [] and _header(f) == csvs[f.name]


def test_superposition_survives_none_values_and_half_empty_cells(tmp_path):
    sp = _superposition_payload()
    for c in sp["cells"]:
        c["unembedding"]["probe_accuracy"] = _spread([None, None, None])
    sp["cells"].append({"condition": "no_layernorm", "multiple": 2.0, "d_star": 9, "d_model": 18, "seeds": [0]})
    sp["projection"] = {"panels": [{"relation": 0, "x": [], "y": [], "colour": []}], "control": None}
    files = superposition.plot(sp, tmp_path)
    assert [f.name for f in files] == ["probe_vs_d.png", "probe_vs_d.csv", "projection.png", "projection.csv"]
    assert _rows(tmp_path / "projection.csv") == []


def test_intervention_survives_missing_matrices_and_curves(tmp_path):
    iv = _intervention_payload()
    iv["primary"].update(ablation_zero={"drops": None, "random_drops": None, "clean": None}, unit_counts=[None] * 3,
                         edit_curves={"success": None, "collateral": None, "control_success": [0.0] * 5,
                                      "control_changed": None})
    iv["cells"][0]["numbers"] = {}
    files = intervention.plot(iv, tmp_path)
    assert len(_rows(tmp_path / "ablation_matrix.csv")) == 2 * K * K  # the mean-ablation matrices are left
    assert all(f.stat().st_size > 0 for f in files)
    assert [r["control_success"] for r in _rows(tmp_path / "edits.csv")] == ["0.0"] * 5


def test_transfer_survives_no_seed_reaching_the_target_and_no_budget(tmp_path):
    tr = _transfer_payload()
    for c in tr["cells"]:
        for name in ("embeddings_only_steps", "from_scratch_steps"):
            c["numbers"][name] = _spread([None, None, None], reached=0)
    tr["step_budget"] = None
    _assert_png_drawn(transfer.plot(tr, tmp_path)[0])


@pytest.mark.parametrize("module", MODULES)
def test_the_smoke_payloads_render(module, tmp_path):
    folder = SMOKE_DIR / module / "smoke"
    if not (folder / "result.json").is_file():
        pytest.skip(f"no smoke result in {folder}")
    from georecall.results.envelope import read_payload

    files = MODULES[module].plot(read_payload(folder), tmp_path)
    assert {f.stem for f in files if f.suffix == ".png"} == EXPECTED[module][0]
    for f in files:
        if f.suffix == ".png":
            _assert_png_drawn(f)


# ---------------------------------------------------------------------------------------------------
# Helpers


def test_condition_labels_come_from_the_design():
    p = {"design": _design()}
    assert superposition.condition_label(p, "frozen_readout") == "frozen_readout: frozen random readout (fact-free W_U)"
    assert superposition.condition_label(p, "primary", width=30).endswith("…")
    assert superposition.condition_label({}, "weight_decay") == "weight_decay"


def test_only_conditions_with_a_cell_are_named():
    design = _design()
    design["conditions"]["tied_readout"] = {"label": "as primary, readout tied to the embeddings"}
    cells = [{"condition": "frozen_readout", "multiple": 2.0}, {"condition": "primary", "multiple": 2.0},
             {"condition": "other", "multiple": 2.0}]
    assert superposition.conditions_of({"design": design}, cells) == ["primary", "frozen_readout", "other"]


def test_spreads_fall_back_to_the_summary_fields():
    assert superposition.entry_spread({"per_seed": [0.5, None, 1.0]}) == (0.75, 0.5, 1.0)
    assert superposition.entry_spread({"mean": 0.4, "min": 0.3, "max": 0.5}) == (0.4, 0.3, 0.5)
    assert superposition.entry_spread({"per_seed": [None], "mean": None}) is None
    assert superposition.entry_spread(None) is None


def test_attribution_threshold_and_unit_counts():
    assert intervention.threshold_text({"attribution_rule": RULE}).endswith("comes from relation r's queries")
    assert "50%" in intervention.threshold_text({"design": {"attribution_threshold": 0.5}})
    assert intervention.threshold_text({}) == "attribution rule not recorded"
    assert intervention.mean_unit_counts({"unit_counts": [[2, 4], None, [4, 6]]}) == [3.0, 5.0]
    assert intervention.mean_unit_counts({"unit_counts": [None]}) is None
