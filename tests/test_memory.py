"""A loop hands the heap back to the system once the process has grown by GROWTH over its
working size (mas_cli/memory.py); docs/BENCHMARKS.md has the resident memory this keeps flat."""

from __future__ import annotations

import platform

import pytest

from mas_cli import memory

MB = 1 << 20


def test_free_heap_is_released_once_grown_past_the_working_level(monkeypatch):
    calls, sizes = [], iter([])
    monkeypatch.setattr(memory, "_glibc", lambda function: calls.append if function == "malloc_trim" else None)
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


def test_the_first_loop_step_makes_malloc_keep_freed_memory(monkeypatch):
    settings = []
    functions = {"malloc_trim": lambda pad: None, "mallopt": lambda param, value: settings.append((param, value))}
    monkeypatch.setattr(memory, "_glibc", functions.get)
    monkeypatch.setattr(memory, "resident_bytes", lambda: 500 * MB)
    memory._hold_freed_memory.cache_clear()
    try:
        for _ in range(3):
            memory.release_if_grown()
    finally:
        memory._hold_freed_memory.cache_clear()  # the real glibc's turn in later loops
    assert settings == [(memory.M_MMAP_THRESHOLD, 64 * MB), (memory.M_TRIM_THRESHOLD, 1024 * MB)]  # once


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim and mallopt are glibc's")
def test_glibc_functions_are_found_accept_the_thresholds_and_the_resident_size_is_read():
    assert memory._glibc("malloc_trim") is not None
    mallopt = memory._glibc("mallopt")
    assert mallopt(memory.M_MMAP_THRESHOLD, memory.HELD_MMAP_THRESHOLD) == 1  # 0: glibc refused the value
    assert mallopt(memory.M_TRIM_THRESHOLD, memory.HELD_TRIM_THRESHOLD) == 1
    assert memory.resident_bytes() > 10 * MB  # a Python process with torch imported
