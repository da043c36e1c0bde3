"""Figures of the ``real_lm`` experiment, drawn from its payload alone (torch-free).

* ``probe_by_layer.png`` / ``.csv``: one panel per relation, held-out probe accuracy (subjects held out,
  nearest attribute vector) against the layer, at the subject's last token (solid) and averaged over its
  tokens (dash-dot), each with its shuffled-label control (dashed / dotted, hollow markers), chance 1/A
  and 3× chance (C13's floor; a relation is readable where its probe also beats its control by 0.2).
* ``additive_by_layer.png`` / ``.csv``: held-out R² of the additive fit ``h_s ≈ b + Σ_r M_r a_r(f_r(s))``
  against the layer, for both poolings, with the random-label control.
* ``split_by_tokens.png`` / ``.csv``: probe accuracy (mean over relations, last token) against the layer
  for one-token against multi-token subject names, and for facts the LM recalls against those it does not.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from georecall.plotting.style import empty_panel, figure_style, new_figure, save
from georecall.plotting.tables import write_csv

PROBE_FIGURE = "probe_by_layer"
ADDITIVE_FIGURE = "additive_by_layer"
SPLIT_FIGURE = "split_by_tokens"
#: The claim's numbers, repeated for the figure's guide lines (georecall.experiments.claims.real_lm).
TIMES_CHANCE = 3.0
POOL_STYLE = {"last": ("C0", "-", "--", "subject's last token"), "mean": ("C1", "-.", ":", "mean over its tokens")}
GROUP_STYLE = {"one_token": ("C2", "one-token subjects"), "multi_token": ("C3", "multi-token subjects"),
               "recalled": ("C4", "facts the LM recalls"), "not_recalled": ("C5", "facts it does not recall")}


def _pools(payload: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Pooling -> its per-layer fields (``last``: the payload's top level; ``mean``: ``pooled["mean"]``)."""
    out: dict[str, Mapping[str, Any]] = {"last": payload}
    mean = (payload.get("pooled") or {}).get("mean")
    if isinstance(mean, Mapping):
        out["mean"] = mean
    return out


def _points(layers: Sequence[Any], values: Sequence[Any] | None) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for x, y in zip(layers, values or [], strict=False):
        if y is not None and isinstance(y, (int, float)) and math.isfinite(y):
            xs.append(float(x))
            ys.append(float(y))
    return xs, ys


def _at(values: Sequence[Any] | None, i: int) -> Any:
    return values[i] if isinstance(values, Sequence) and i < len(values) else None


def _why(payload: Mapping[str, Any], what: str) -> str:
    notes = [n for n in payload.get("notes") or [] if isinstance(n, str)]
    parts = [what] + ([f"({textwrap.shorten(notes[0], 110, placeholder='…')})"] if notes else [])
    return "\n".join(textwrap.fill(t, 55) for t in parts)


def _title(payload: Mapping[str, Any]) -> str:
    info = payload.get("model_info") or {}
    return (f"{info.get('name') or payload.get('model', 'n/a')} ({payload.get('scale', 'n/a')}): "
            f"{payload.get('n_subjects', 'n/a')} subjects, {payload.get('n_facts', 'n/a')} facts, recall "
            f"{_fmt(payload.get('recall_rate'))}; hidden states of a prompt naming no relation, subjects held out "
            f"(cross-validated over subjects); layer 0 = input embeddings")


def _fmt(x: Any) -> str:
    return "n/a" if not isinstance(x, (int, float)) else f"{x:.2f}"


def _grid(n: int) -> tuple[int, int]:
    cols = min(max(n, 1), 2)
    return math.ceil(max(n, 1) / cols), cols


# ---------------------------------------------------------------------------------------------------
# probe_by_layer


def plot_probe(payload: Mapping[str, Any], folder: Path) -> list[Path]:
    """Probe accuracy by layer per relation, both poolings, shuffled controls, chance and 3× chance."""
    layers = list(payload.get("layers") or [])
    relations = list(payload.get("relations") or [])
    chance = payload.get("chance_by_relation") or {}
    pools = _pools(payload)
    rows = []
    for pool, p in pools.items():
        probe, ctrl = p.get("probe_by_relation") or {}, p.get("probe_control_by_relation") or {}
        for r in relations:
            for i, layer in enumerate(layers):
                rows.append([pool, r, layer, _at(probe.get(r), i), _at(ctrl.get(r), i), chance.get(r)])
    csv_path = write_csv(folder / f"{PROBE_FIGURE}.csv",
                         ("pooling", "relation", "layer", "probe_accuracy", "probe_accuracy_control", "chance"), rows)
    nrows, ncols = _grid(len(relations))
    with figure_style():
        fig, axes = new_figure(nrows, ncols, width=5.2 * ncols, height=0.9 + 3.0 * nrows)
        flat = [ax for row in axes for ax in row]
        if not relations or not layers:
            empty_panel(flat[0], _why(payload, "no layer or relation in the payload"))
        for ax, r in zip(flat, relations, strict=False):
            drawn = False
            for pool, p in pools.items():
                colour, ls, cls, text = POOL_STYLE[pool]
                xs, ys = _points(layers, (p.get("probe_by_relation") or {}).get(r))
                if xs:
                    ax.plot(xs, ys, color=colour, ls=ls, marker="o", ms=3, label=f"probe, {text}")
                    drawn = True
                xs, ys = _points(layers, (p.get("probe_control_by_relation") or {}).get(r))
                if xs:
                    ax.plot(xs, ys, color=colour, ls=cls, marker="o", ms=3, mfc="none",
                            label=f"control: shuffled labels, {text}")
            ch = chance.get(r)
            if isinstance(ch, (int, float)):
                ax.axhline(float(ch), color="0.4", lw=0.9, label=f"chance 1/A = {ch:.3g}")
                if TIMES_CHANCE * ch < 1:
                    ax.axhline(TIMES_CHANCE * float(ch), color="0.4", lw=0.9, ls=":",
                               label=f"{TIMES_CHANCE:.0f}× chance (C13's floor)")
            if drawn:
                ax.legend(fontsize=6, loc="best")
            else:
                empty_panel(ax, _why(payload, f"no probe accuracy for {r}"))
            ax.set_ylim(-0.02, 1.02)
            ax.set_title(f"{r}: held-out probe accuracy (nearest attribute vector)")
            ax.set_xlabel("layer (0 = input embeddings)")
            ax.set_ylabel("held-out accuracy")
        for ax in flat[max(len(relations), 1):]:
            ax.set_axis_off()
        fig.suptitle(textwrap.fill(_title(payload) + ". C13: readable where the probe beats its control by 0.2 "
                                   "and reaches 3× chance.", 130))
        png = save(fig, folder / f"{PROBE_FIGURE}.png")
    return [png, csv_path]


# ---------------------------------------------------------------------------------------------------
# additive_by_layer


def plot_additive(payload: Mapping[str, Any], folder: Path) -> list[Path]:
    """Held-out R² of the additive fit by layer, both poolings, with the random-label control."""
    layers = list(payload.get("layers") or [])
    pools = _pools(payload)
    rows = []
    for pool, p in pools.items():
        r2, r2c = list(p.get("additive_r2") or []), list(p.get("additive_r2_control") or [])
        for i, layer in enumerate(layers):
            rows.append([pool, layer, _at(r2, i), _at(r2c, i)])
    csv_path = write_csv(folder / f"{ADDITIVE_FIGURE}.csv",
                         ("pooling", "layer", "additive_r2", "additive_r2_control"), rows)
    with figure_style():
        fig, axes = new_figure(1, 1, width=7.0, height=4.4)
        ax = axes[0][0]
        drawn = False
        for pool, p in pools.items():
            colour, ls, cls, text = POOL_STYLE[pool]
            xs, ys = _points(layers, p.get("additive_r2"))
            if xs:
                ax.plot(xs, ys, color=colour, ls=ls, marker="o", ms=3, label=f"additive fit, {text}")
                drawn = True
            xs, ys = _points(layers, p.get("additive_r2_control"))
            if xs:
                ax.plot(xs, ys, color=colour, ls=cls, marker="o", ms=3, mfc="none",
                        label=f"control: random labels, {text}")
        if drawn:
            ax.axhline(0.0, color="0.4", lw=0.9, label="R² = 0 (no better than the mean)")
            ax.legend(fontsize=6, loc="best")
            lo = ax.get_ylim()[0]
            ax.set_ylim(max(min(-0.05, lo), -1.0), 1.02)
        else:
            empty_panel(ax, _why(payload, "no additive fit in the payload"))
        design = payload.get("design") or {}
        ax.set_xlabel("layer (0 = input embeddings)")
        ax.set_ylabel("held-out R² of h_s ≈ b + Σ_r M_r a_r(f_r(s))")
        ax.set_title(textwrap.fill(
            f"Additive fit: the hidden state as a sum of its attributes' vectors (subjects held out; hidden states "
            f"standardised, top {design.get('pca_dims', 'n/a')} PCs of the training subjects). C13: R² > 0 and "
            f"≥ control + 0.1", 95))
        fig.suptitle(textwrap.fill(_title(payload), 95))
        png = save(fig, folder / f"{ADDITIVE_FIGURE}.png")
    return [png, csv_path]


# ---------------------------------------------------------------------------------------------------
# split_by_tokens


def _n_text(group: Mapping[str, Any]) -> str:
    n = group.get("n_by_relation") or {}
    vals = sorted({int(v) for v in n.values() if isinstance(v, (int, float))})
    if not vals:
        return "n = n/a"
    return f"n = {vals[0]}" if len(vals) == 1 else f"n = {vals[0]}–{vals[-1]} per relation"


def plot_split(payload: Mapping[str, Any], folder: Path) -> list[Path]:
    """Probe accuracy by layer: one-token against multi-token subjects, recalled against not recalled facts."""
    layers = list(payload.get("layers") or [])
    splits = payload.get("splits") or {}
    rows = []
    for pool, groups in splits.items():
        if not isinstance(groups, Mapping):
            continue
        for name, g in groups.items():
            if not isinstance(g, Mapping):
                continue
            n = g.get("n_by_relation") or {}
            for i, layer in enumerate(layers):
                rows.append([pool, name, layer, _at(g.get("probe_accuracy"), i),
                             _at(g.get("probe_accuracy_control"), i), ";".join(f"{r}={v}" for r, v in n.items())])
    csv_path = write_csv(folder / f"{SPLIT_FIGURE}.csv",
                         ("pooling", "group", "layer", "probe_accuracy", "probe_accuracy_control", "n_by_relation"),
                         rows)
    panels = ((("one_token", "multi_token"), "one-token against multi-token subject names"),
              (("recalled", "not_recalled"), "facts recalled (greedy completion) or not"))
    with figure_style():
        fig, axes = new_figure(1, 2, width=11.0, height=4.6)
        for ax, (names, title) in zip(axes[0], panels, strict=True):
            drawn = False
            for pool in ("last", "mean"):
                groups = splits.get(pool) if isinstance(splits.get(pool), Mapping) else {}
                _, ls, cls, text = POOL_STYLE[pool]
                for name in names:
                    g = groups.get(name)
                    if not isinstance(g, Mapping):
                        continue
                    colour, label = GROUP_STYLE[name]
                    xs, ys = _points(layers, g.get("probe_accuracy"))
                    if xs:
                        ax.plot(xs, ys, color=colour, ls=ls, marker="o", ms=3,
                                label=f"{label} ({_n_text(g)}), {text}")
                        drawn = True
                    xs, ys = _points(layers, g.get("probe_accuracy_control"))
                    if xs and pool == "last":
                        ax.plot(xs, ys, color=colour, ls=cls, marker="o", ms=3, mfc="none",
                                label=f"control: shuffled labels, {label}, {text}")
            if drawn:
                ax.legend(fontsize=6, loc="best")
            else:
                empty_panel(ax, _why(payload, "no subject in these groups (or no splits in the payload)"))
            ax.set_ylim(-0.02, 1.02)
            ax.set_title(f"Probe accuracy (mean over relations): {title}")
            ax.set_xlabel("layer (0 = input embeddings)")
            ax.set_ylabel("held-out accuracy of the group's subjects")
        fig.suptitle(textwrap.fill(_title(payload) + ". Each subject's held-out correctness, grouped after the "
                                   "probes ran on every subject.", 130))
        png = save(fig, folder / f"{SPLIT_FIGURE}.png")
    return [png, csv_path]


def plot(payload: Mapping[str, Any], folder: Path) -> list[Path]:
    """The three figures of ``real_lm``, each with its CSV."""
    folder = Path(folder)
    return [*plot_probe(payload, folder), *plot_additive(payload, folder), *plot_split(payload, folder)]
