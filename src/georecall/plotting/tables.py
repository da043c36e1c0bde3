"""The CSV tables written beside every figure (torch-free)."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from georecall.results.atomic import write_atomic


def write_csv(path: str | os.PathLike[str], header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    """Write the table behind a figure (None as an empty cell), through a temporary file renamed into place (a
    reader never sees half a table); returns the path."""
    text = io.StringIO(newline="")
    w = csv.writer(text)
    w.writerow(header)
    for r in rows:
        w.writerow(["" if v is None else v for v in r])
    return write_atomic(path, text.getvalue())
