"""Freed memory goes back to the system (mas_cli/memory.py): large tensors by their own mappings,
the heap's free pages every TRIM_EVERY steps of a loop; docs/BENCHMARKS.md has the resident
memory this keeps flat."""

from __future__ import annotations

import platform
import subprocess
import sys

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


HELD_AFTER_FREE = """
import sys
import torch
from mas_cli.memory import limit_heap

def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20

if sys.argv[1] == "limit":
    limit_heap()
torch.empty(20 << 18).fill_(1)  # a freed 20 MB block raises glibc's own threshold to 20 MB
base = rss_mb()
blocks = [torch.ones(10 << 18) for _ in range(30)]  # 30 × 10 MB
pin = torch.ones(16)  # a small block above them keeps the heap from shrinking from the top
del blocks
print(round(rss_mb() - base))
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt's threshold is glibc's")
def test_limit_heap_returns_freed_tensors_to_the_system():
    held = {}
    for mode in ("limit", "default"):
        done = subprocess.run([sys.executable, "-c", HELD_AFTER_FREE, mode], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        held[mode] = int(done.stdout.split()[-1])
    assert held["default"] >= 250 and held["limit"] <= 20, held  # MB still resident after freeing 300 MB
