"""retained_heap serves large tensors from the reusable heap instead of fresh mappings, and restores glibc."""

import ctypes
import platform

import pytest
import torch

from georecall.training import cpu_heap
from georecall.training.cpu_heap import retained_heap


class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]


def _mapped_bytes() -> int:
    """Bytes glibc holds in separate mmap'ed blocks (freed at once, faulted in afresh on every allocation)."""
    libc = cpu_heap._glibc()
    libc.mallinfo2.restype = _MallInfo2
    return libc.mallinfo2().hblkhd


needs_glibc = pytest.mark.skipif(cpu_heap._glibc() is None or not hasattr(cpu_heap._glibc(), "mallinfo2"),
                                 reason="glibc >= 2.33 malloc only")
MB64 = 64 * 2**18  # float32 elements in 64 MB


@needs_glibc
def test_large_tensors_come_from_the_heap_inside_and_from_fresh_mappings_outside():
    before = _mapped_bytes()
    t = torch.ones(MB64)
    assert _mapped_bytes() - before >= 64 * 2**20  # glibc's default: a block of its own
    del t
    with retained_heap() as on:
        assert on
        before = _mapped_bytes()
        t = torch.ones(MB64)
        assert _mapped_bytes() - before < 2**20  # carved from the heap, which keeps it when freed
        del t
    before = _mapped_bytes()
    t = torch.ones(MB64)
    assert _mapped_bytes() - before >= 64 * 2**20  # defaults are back
    del t


@needs_glibc
def test_nested_blocks_restore_only_at_the_outermost():
    with retained_heap():
        with retained_heap():
            pass
        before = _mapped_bytes()
        t = torch.ones(MB64)
        assert _mapped_bytes() - before < 2**20
        del t
    assert cpu_heap._depth == 0


def test_disabled_or_elsewhere_is_a_no_op():
    with retained_heap(enabled=False) as on:
        assert not on
    if platform.system() != "Linux":
        with retained_heap() as on:
            assert not on
