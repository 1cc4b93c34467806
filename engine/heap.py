"""Process set-up for large evaluations: keep freed heap memory for reuse (glibc only).

A frame of 20k-100k scenarios makes arrays of hundreds of kB each, a few hundred MB in all. glibc hands freed
heap back to the OS at once, so every new array is faulted in afresh, a page fault per 4 kB: ~30% of the CPU
time of such an evaluation on one thread (42,000 faults per 100k-row explicit-plan evaluation). With the
heap's top pad raised, freed memory stays mapped for the next array.

This changes the whole process, so the engine never does it by itself: the `whatif` command calls it at
start, and so do the benchmarks that measure what that command does.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys

HEAP_PAD_BYTES = 256 * 2**20
_M_TOP_PAD = -2  # mallopt's parameter number (malloc.h)


@functools.cache
def keep_freed_heap() -> None:
    """Once per process, where the C library is glibc: mallopt(M_TOP_PAD, HEAP_PAD_BYTES), so that the heap
    grows and trims in steps of that many bytes (the process keeps up to that much freed memory). Left alone
    where the environment tunes malloc itself (MALLOC_TOP_PAD_ or GLIBC_TUNABLES)."""
    if sys.platform != "linux" or "MALLOC_TOP_PAD_" in os.environ or "GLIBC_TUNABLES" in os.environ:
        return
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return
        ctypes.CDLL(None).mallopt(_M_TOP_PAD, HEAP_PAD_BYTES)
    except (AttributeError, OSError, ValueError):  # no glibc, or no mallopt in it
        return
