"""Keeping a long CPU job's resident memory at the size of its data.

Each alignment step allocates tensors of a different size (suffix lengths vary from batch to
batch). glibc's malloc serves tensors below its mmap threshold (which grows to 32 MB as large
blocks are freed) from its heap and keeps the freed pages, fragmented, for reuse, so the process
grew step after step although no tensor outlives its step: a 1,000-step 16-direction fit
reached 3.4 GB. Two measures (docs/BENCHMARKS.md):

* `limit_heap`: tensors of 2 MB and more get their own mapping, returned to the system when
  freed (a fixed mmap threshold; measured step times unchanged, training and alignment);
* `release_free_heap`: every `TRIM_EVERY` steps, hand the heap's free pages back
  (`malloc_trim`, ~10 ms).

Both are no-ops where the C library is not glibc (macOS, musl).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

TRIM_EVERY = 25  # steps
MMAP_THRESHOLD = 2 << 20  # bytes
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)


@functools.cache
def _libc():
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


@functools.cache
def _malloc_trim():
    """glibc's malloc_trim, or None where the C library has none."""
    return getattr(_libc(), "malloc_trim", None)


def limit_heap() -> None:
    """Serve every allocation of MMAP_THRESHOLD bytes or more by its own mapping (a job calls
    this once, before its work; it applies to the whole process)."""
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is not None and _malloc_trim() is not None:  # glibc's meaning of the parameter
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)


def release_free_heap(step: int) -> None:
    """Every TRIM_EVERY steps, return the heap's free pages to the operating system."""
    trim = _malloc_trim()
    if trim is not None and step % TRIM_EVERY == 0:
        trim(0)
