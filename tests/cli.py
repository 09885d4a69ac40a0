"""Running `mas` as the command line does, in this process, and what a mistake must look like."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import sys
from pathlib import Path


def run(argv: list[str], cwd: Path) -> tuple[int, str]:
    """(exit status, stderr) of `mas <argv>` run in this process from `cwd`."""
    code, _, err = run_printing(argv, cwd)
    return code, err


def run_printing(argv: list[str], cwd: Path) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `mas <argv>` run in this process from `cwd`. What a
    command sets for its whole process (the console recorded for the results' logs, torch's
    threads) is put back afterwards, as a process of its own would leave the next one."""
    import torch

    from mas_cli.console import console

    err, out, argv_before, here = io.StringIO(), io.StringIO(), sys.argv[:], os.getcwd()
    recording, threads = console.record, torch.get_num_threads()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try:
                from mas_cli import cli

                cli.main(argv)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv, _ = argv_before, os.chdir(here)
        console.record, _ = recording, torch.set_num_threads(threads)
    return code, out.getvalue(), err.getvalue()


def snapshot(root: Path) -> dict[str, str]:
    """Every path under root (links as their target, not followed) with its content's hash."""
    found = {}
    for here, folders, files in os.walk(root, followlinks=False):
        for name in sorted(folders + files):
            path = Path(here) / name
            key = str(path.relative_to(root))
            if path.is_symlink():
                found[key] = "-> " + os.readlink(path)
            elif path.is_file():
                found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                found[key] = "folder"
    return dict(sorted(found.items()))


def assert_one_line(code: int, err: str, fragment: str, status: int = 2) -> None:
    lines = err.strip().splitlines()
    assert code == status, (code, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    assert fragment in lines[0], lines[0]
