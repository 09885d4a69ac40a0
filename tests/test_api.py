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


def test_the_documented_example_runs_and_leaves_the_process_as_it_found_it(tmp_path):
    (example,) = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    script = tmp_path / "example.py"
    script.write_text(BEFORE + example + AFTER)
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "IIA" in done.stdout and "iia_none" in done.stdout
    assert (tmp_path / "api-example" / "report" / "summary.md").is_file()
    assert any((tmp_path / "api-example" / "report").glob("*.png")), "the report drew its figures"
    assert done.stdout.splitlines()[-1] == "LEFT svg 1 []"  # backend, torch threads, no mallopt
