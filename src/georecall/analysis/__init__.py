"""Analyses of trained (or hand-built) models: probes, the additive fit, edits, ablations, patching, transfer.

Pure functions over one model (``E = 1``; an ensemble member is ``model.member(e)``), its world and
numpy arrays. Imports model, tasks and config only — never training or experiments (STYLE §3).
The constructions are the ground truth: every analysis is exact on them (tests/fast/test_analysis_*.py).
Probes need scikit-learn (the ``probes`` extra); everything else needs numpy and torch only.

Import from the modules: ``georecall.analysis.probes``, ``.additive``, ``.edits``, ``.ablation``,
``.patching``, ``.transfer``, ``.vectors``.
"""
