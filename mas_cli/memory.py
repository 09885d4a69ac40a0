"""Keeping a long CPU loop's resident memory flat.

Each alignment step allocates tensors of a different size (suffix lengths vary from batch to
batch). glibc's malloc serves them from its heap and keeps the freed pages, fragmented, for
reuse, so the process grows step after step although no tensor outlives its step: a 1,000-step
16-direction fit reached 3.4 GB. Handing the free pages back every `TRIM_EVERY` steps
(`malloc_trim`, ~10 ms) keeps it flat at the size of the data (docs/BENCHMARKS.md); a fixed
mmap threshold would too, but made every step ~1.6× slower.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

TRIM_EVERY = 25  # steps


@functools.cache
def _malloc_trim():
    """glibc's malloc_trim, or None where the C library has none (macOS, musl)."""
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except OSError:
        return None


def release_free_heap(step: int | None = None) -> None:
    """Return the heap's free pages to the operating system: now (no step), or every TRIM_EVERY
    steps of a loop."""
    trim = _malloc_trim()
    if trim is not None and (step is None or step % TRIM_EVERY == 0):
        trim(0)
