"""The heap is handed back to the system every TRIM_EVERY steps of a training or alignment loop
(mas_cli/memory.py); docs/BENCHMARKS.md has the resident memory this keeps flat."""

from __future__ import annotations

import platform

import pytest

from mas_cli import memory


def test_free_heap_is_released_every_trim_every_steps(monkeypatch):
    calls = []
    monkeypatch.setattr(memory, "_malloc_trim", lambda: calls.append)
    for step in range(1, 3 * memory.TRIM_EVERY + 1):
        memory.release_free_heap(step)
    assert calls == [0, 0, 0]


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_glibc_malloc_trim_is_found():
    assert memory._malloc_trim() is not None
