"""docs/API.md's example runs as written, in a fresh interpreter (the way a notebook would), and
leaves that process's global settings as it found them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "API.md"


# Around the example, what a notebook had set before it, and a spy on glibc's process-wide
# allocator settings (memory.py): the library must leave all of it as it found it.
BEFORE = """
import matplotlib
import torch

matplotlib.use("svg")
torch.set_num_threads(1)
from mas_cli import memory

_real, allocator_settings = memory._glibc, []
memory._glibc = lambda name: (lambda *a: allocator_settings.append(a)) if name == "mallopt" else _real(name)
"""
AFTER = """
print("LEFT", matplotlib.get_backend(), torch.get_num_threads(), allocator_settings)
"""


def examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)


def test_the_documented_example_runs_and_leaves_the_process_as_it_found_it(tmp_path):
    example = examples()[0]
    script = tmp_path / "example.py"
    script.write_text(BEFORE + example + AFTER)
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "IIA" in done.stdout and "iia_none" in done.stdout
    assert (tmp_path / "api-example" / "report" / "summary.md").is_file()
    assert any((tmp_path / "api-example" / "report").glob("*.png")), "the report drew its figures"
    assert done.stdout.splitlines()[-1] == "LEFT svg 1 []"  # backend, torch threads, no mallopt


def test_the_wrap_example_finds_the_count_of_a_module_defined_in_it(tmp_path):
    """docs/API.md's `mas.wrap` example: a module it defines, counting in one coordinate, is found
    at k = 1 in every direction (IIA at least 0.99, as the fit's own stop rule asks)."""
    script = tmp_path / "wrap_example.py"
    script.write_text(examples()[1] + '\nprint("LOWEST", val.iia.min(), len(val))\n')
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    _, lowest, directions = done.stdout.splitlines()[-1].split()
    assert float(lowest) >= 0.99 and directions == "4"
