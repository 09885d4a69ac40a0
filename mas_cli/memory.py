"""Keeping a long CPU loop's resident memory flat.

Each alignment step allocates tensors of a different size (suffix lengths vary from batch to
batch). glibc's malloc serves them from its heap and keeps the freed pages, fragmented, for
reuse, so the process grows step after step although no tensor outlives its step: a 1,000-step
16-direction fit reached 3.4 GB, with ~280 MB in use. Handing the free pages back
(`malloc_trim`, 10–25 ms) whenever the process has grown by GROWTH over its working size keeps
it within GROWTH of that: a trim every dozen steps where a step allocates much, rarely where it
allocates little (docs/BENCHMARKS.md). A low fixed mmap threshold would too, but made every
step ~1.3× slower.

Between those releases nothing else should hand pages back: glibc by itself returns the top of
its heap once 128 KB+ are free there and maps some large blocks afresh, and every such page is
page-faulted again when the next step reuses it (~1,200–1,400 faults a step in the
alignment benchmark). So the first loop step of a `mas` command process (or pipeline worker)
raises both thresholds (`mallopt`), and the growth rule alone decides when memory goes back.
Thresholds are process-wide and glibc cannot say what they were, so a library caller's process
(a notebook) is never tuned: `tune_this_process()` is for processes `mas` owns.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os

GROWTH = 448 << 20  # bytes of resident growth since the last trim that call for the next
# glibc's mallopt parameters: blocks up to the mmap threshold come from the heap; free space over
# the trim threshold at the heap's top is returned by free() itself
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
HELD_TRIM_THRESHOLD, HELD_MMAP_THRESHOLD = 1 << 30, 64 << 20  # above anything a step frees or allocates


@functools.cache
def _glibc(function: str):
    """A glibc malloc function (malloc_trim, mallopt), or None where the C library has none
    (macOS, musl)."""
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), function, None) if name else None
    except OSError:
        return None


_tuned = False  # whether this process is one of mas's own (tune_this_process)


def tune_this_process() -> None:
    """This process is a `mas` command or worker: its loops may hold freed memory (mallopt)."""
    global _tuned
    _tuned = True


@functools.cache
def _hold_freed_memory() -> None:
    """Once per process: glibc keeps what a step frees for the next (see the module docstring)."""
    mallopt = _glibc("mallopt")
    if mallopt is not None:
        mallopt(M_MMAP_THRESHOLD, HELD_MMAP_THRESHOLD)
        mallopt(M_TRIM_THRESHOLD, HELD_TRIM_THRESHOLD)


def resident_bytes() -> int:
    """This process's resident set (Linux: /proc/self/statm), 0 where it cannot be read."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


_working_level: int | None = None  # resident bytes at the first loop step after the last trim


def release_free_heap() -> None:
    """Return the heap's free pages to the operating system now."""
    global _working_level
    trim = _glibc("malloc_trim")
    if trim is not None:
        trim(0)
        _working_level = None


def release_if_grown() -> None:
    """In a loop, each step: release the free heap once the process has grown by GROWTH over its
    working level, its size one step after the last release. (Not over its size right after a
    release: the next step touches its working memory again at once, and a release on every
    step would make every step page-fault all of it afresh.)"""
    global _working_level
    if _glibc("malloc_trim") is None:
        return
    if _tuned:
        _hold_freed_memory()
    now = resident_bytes()
    if _working_level is None:
        _working_level = now
    elif now - _working_level > GROWTH:
        release_free_heap()
