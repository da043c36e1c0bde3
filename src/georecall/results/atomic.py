"""Crash-safe file writes (torch-free): a file is written under a temporary name beside it and renamed into
place, so a reader, or a run resumed after a kill, sees the old file or the new one, never half of one."""

from __future__ import annotations

import os
from pathlib import Path


def temp_name(path: Path) -> Path:
    """The temporary sibling ``path`` is written through: ``.<name>.<pid>.tmp`` (the pid tells a later writer
    whether its writer still runs; see :func:`georecall.results.run.write_run_files`)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_atomic(path: str | os.PathLike[str], data: bytes | str, *, fsync: bool = False) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` through a temporary file renamed into place; ``fsync``: flush it
    to the disk first (the file then survives a power cut, not only a killed process). Returns the path."""
    path = Path(path)
    tmp = temp_name(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
