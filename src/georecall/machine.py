"""What this machine has, for refusing a size before allocating it: its physical memory, and one error that
names the estimate (torch-free; used by training and the constructions alike)."""

from __future__ import annotations

import os


def available_bytes() -> int | None:
    """Physical memory of this machine (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def human(n: float) -> str:
    """``1.5 GB``-style bytes."""
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1024 or unit == "PB":
            if unit == "PB" and n >= 1e6:
                return f"{n:.2g} PB"
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} PB"


def check_fits(estimate: int, what: str, *, limit: int | None = None) -> None:
    """Raise ValueError, with the estimate, when ``estimate`` bytes exceed ``limit`` (default: the machine's
    physical memory)."""
    cap = available_bytes() if limit is None else limit
    if cap is not None and estimate > cap:
        raise ValueError(f"{what} needs about {human(estimate)} of memory, more than this machine has "
                         f"({human(cap)}); choose a smaller size")
