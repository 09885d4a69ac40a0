"""docs/API.md's example runs as written, in a fresh interpreter (the way a notebook would)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "API.md"


def test_the_documented_example_runs(tmp_path):
    (example,) = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    script = tmp_path / "example.py"
    script.write_text(example)
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "IIA" in done.stdout and "iia_none" in done.stdout
    assert (tmp_path / "api-example" / "report" / "summary.md").is_file()
