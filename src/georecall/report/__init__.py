"""The reproduction report: every experiment's saved results turned into ``report.md`` and ``report.html``.

Torch-free: it reads ``result.json`` envelopes and PNG figures only, and re-decides every claim of the
paper from the payloads (:func:`build_report`). What in the theory is our own derivation rather than
the paper's is listed in :data:`DEVIATIONS`.
"""

from __future__ import annotations

from georecall.report.build import VERDICT_COLOURS, ReportPaths, build_report, flatten_numbers, format_value
from georecall.report.deviations import DEVIATIONS

__all__ = ["DEVIATIONS", "VERDICT_COLOURS", "ReportPaths", "build_report", "flatten_numbers", "format_value"]
