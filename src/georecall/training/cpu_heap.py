"""Keep freed memory in the process while an ensemble trains on the CPU (glibc malloc settings).

glibc serves every allocation above its mmap threshold (at most 32 MB) with a fresh ``mmap`` and
returns it with ``munmap`` when freed. A large ensemble's activations are such blocks, so every
training step page-faults through all of them again: on 2 cores the ReLU of E = 32 members
(33 MB) took 20 ms, most of it in the kernel. :func:`retained_heap` turns mmap off and raises the
trim threshold for the duration of a ``with`` block, so freed blocks are reused; on exit it puts
glibc's defaults back and trims. Measured in ``benchmarks/train_throughput.py`` (see
``benchmarks/RESULTS.md``); a no-op where the C library is not glibc.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import platform
import threading
from collections.abc import Iterator

# mallopt parameters (malloc.h) and glibc's defaults
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
DEFAULT_TRIM_THRESHOLD, DEFAULT_MMAP_MAX = 128 * 1024, 65536
RETAINED_TRIM_THRESHOLD = 2**31 - 1  # mallopt takes an int

_lock = threading.Lock()
_depth = 0


def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


@contextlib.contextmanager
def retained_heap(enabled: bool = True) -> Iterator[bool]:
    """Inside the block freed memory stays with the process (yields whether the setting took effect).

    Nested and concurrent blocks are counted: the defaults come back when the outermost one ends.
    """
    global _depth
    libc = _glibc() if enabled else None
    if libc is None:
        yield False
        return
    with _lock:
        if _depth == 0:
            libc.mallopt(M_MMAP_MAX, 0)
            libc.mallopt(M_TRIM_THRESHOLD, RETAINED_TRIM_THRESHOLD)
        _depth += 1
    try:
        yield True
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                libc.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
                libc.mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD)
                libc.malloc_trim(0)
