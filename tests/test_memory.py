"""A loop hands the heap back to the system once the process has grown by GROWTH over its
working size (mas_cli/memory.py); docs/BENCHMARKS.md has the resident memory this keeps flat."""

from __future__ import annotations

import platform

import pytest

from mas_cli import memory

MB = 1 << 20


def test_free_heap_is_released_once_grown_past_the_working_level(monkeypatch):
    calls, sizes = [], iter([])
    monkeypatch.setattr(memory, "_malloc_trim", lambda: calls.append)
    monkeypatch.setattr(memory, "resident_bytes", lambda: next(sizes))
    memory.release_free_heap()  # a fresh start: no working level yet
    assert calls == [0]
    growth = memory.GROWTH
    # the first step after a release sets the working level; growth up to GROWTH over it is kept
    sizes = iter([500 * MB, 500 * MB + growth, 500 * MB + growth + 1, 700 * MB, 700 * MB + growth])
    for _ in range(3):
        memory.release_if_grown()
    assert calls == [0, 0]  # released at the third step only
    memory.release_if_grown()  # the next step sets the new working level (700 MB): no release
    memory.release_if_grown()
    assert calls == [0, 0]


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_glibc_malloc_trim_is_found_and_the_resident_size_read():
    assert memory._malloc_trim() is not None
    assert memory.resident_bytes() > 10 * MB  # a Python process with torch imported
