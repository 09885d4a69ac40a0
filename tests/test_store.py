"""A store a lab can share: files colleagues can read (the umask decides), reading commands that
work on a store they cannot write, checkpoints that cannot hurt a rerun."""

from __future__ import annotations

import os
import pickle
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import mas_cli as mas
from mas_cli.errors import UnsafeFileError
from mas_cli.store import Entry, write_text
from tests.conftest import complete

SMOKE = dict(budget="smoke", allow_undertrained=True, train_overrides=["arch.width=16"])


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_files_follow_the_umask(tmp_path, umask):
    before = os.umask(umask)
    try:
        write_text(tmp_path / "result.csv", "a,b\n")
    finally:
        os.umask(before)
    assert stat.S_IMODE((tmp_path / "result.csv").stat().st_mode) == 0o666 & ~umask


def _as_someone_else(command: list[str]) -> list[str]:
    """Run as an unprivileged user when the tests run as root (root may write anywhere)."""
    if os.geteuid() != 0:
        return command
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: a read-only store cannot be tested")
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *command]


def test_reading_commands_work_on_a_store_nobody_may_write(tmp_path):
    shared = Path(tempfile.mkdtemp(prefix="mas-shared-"))
    try:
        os.chmod(shared, 0o755)
        root = shared / "store"
        mas.align(["gru", "lstm"], root=root, k=4, **SMOKE)
        for path in [root, *root.rglob("*")]:  # read-only for everyone
            if not path.is_symlink():
                os.chmod(path, 0o555 if path.is_dir() else 0o444)
        out = shared / "report"
        out.mkdir(mode=0o777)
        os.chmod(out, 0o777)
        mas_cli = [sys.executable, "-m", "mas_cli.cli"]
        align = ["align", "a=gru", "b=lstm", "k=4", "budget=smoke", "allow_undertrained=true"]
        align += ['train_overrides=["arch.width=16"]', f"paths.root={root}"]
        reused = subprocess.run(_as_someone_else([*mas_cli, *align]), capture_output=True, text=True, cwd=shared)
        assert reused.returncode == 0, reused.stderr
        assert "reusing" in reused.stdout
        report = ["report", f"paths.root={root}", f"out={out}"]
        done = subprocess.run(_as_someone_else([*mas_cli, *report]), capture_output=True, text=True, cwd=shared)
        assert done.returncode == 0, done.stderr
        assert (out / "summary.md").is_file()
    finally:
        for path in [shared, *shared.rglob("*")]:
            if not path.is_symlink():
                os.chmod(path, 0o755)
        shutil.rmtree(shared)


def test_an_unreadable_checkpoint_is_set_aside_and_a_planted_one_refused(tmp_path):
    trained = mas.train(arch="gru", root=tmp_path / "whole", budget="smoke", overrides=["arch.width=16"])
    entry = Entry(tmp_path / "cut" / "models" / "count" / "gru" / "seed0")
    entry.work.mkdir(parents=True)
    (entry.work / "checkpoint.pt").write_bytes(b"PK\x03\x04 truncated")
    redone = mas.train(arch="gru", root=tmp_path / "cut", budget="smoke", overrides=["arch.width=16"])
    assert complete(entry.path) and redone.metrics["steps"] == trained.metrics["steps"]
    other = Entry(tmp_path / "planted" / "models" / "count" / "gru" / "seed0")
    other.work.mkdir(parents=True)
    marker = tmp_path / "marker"
    (other.work / "checkpoint.pt").write_bytes(pickle.dumps(Planted(marker)))
    with pytest.raises(UnsafeFileError, match="would run code"):
        mas.train(arch="gru", root=tmp_path / "planted", budget="smoke", overrides=["arch.width=16"])
    assert not marker.exists() and not complete(other.path)


class Planted:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_force_keeps_the_old_version_until_the_new_one_is_linked(tmp_path):
    first = mas.train(arch="gru", root=tmp_path, budget="smoke", overrides=["arch.width=16"])
    old = Entry(first.entry).current()
    again = mas.train(arch="gru", root=tmp_path, budget="smoke", overrides=["arch.width=16"], force=True)
    new = Entry(again.entry).current()
    assert new != old and new.name.endswith(".v2") and old.is_dir()  # the old one kept for its readers
    third = mas.train(arch="gru", root=tmp_path, budget="smoke", overrides=["arch.width=16"], force=True)
    assert Entry(third.entry).current().name.endswith(".v3") and not old.exists() and new.is_dir()


def _shared_store(make) -> tuple[Path, Path]:
    """A store made by `make(root)` in a folder everyone may enter, and that folder."""
    shared = Path(tempfile.mkdtemp(prefix="mas-shared-"))
    os.chmod(shared, 0o755)
    root = shared / "store"
    make(root)
    return shared, root


def _release(shared: Path) -> None:
    for path in [shared, *shared.rglob("*")]:
        if not path.is_symlink():
            os.chmod(path, 0o755)
    shutil.rmtree(shared)


def _mas(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    command = _as_someone_else([sys.executable, "-m", "mas_cli.cli", *argv])
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd)


ALIGN_SMOKE = ["a=gru", "b=lstm", "k=4", "budget=smoke", "allow_undertrained=true", 'train_overrides=["arch.width=16"]']
PIPELINE = ["pipeline", "budget=smoke", "pipeline.archs=[gru]", "pipeline.seeds=[0,1]"]
PIPELINE += ['pipeline.train_overrides=["arch.width=16"]', "pipeline.allow_undertrained=true", "pipeline.ks=[4]"]


def test_a_pipeline_on_a_finished_store_nobody_may_write_is_one_line_or_reuses(tmp_path):
    def make(root: Path) -> None:
        from tests.cli import run

        assert run([*PIPELINE, f"paths.root={root}"], tmp_path)[0] == 0

    shared, root = _shared_store(make)
    try:
        for path in [root, *root.rglob("*")]:  # read-only for everyone
            if not path.is_symlink():
                os.chmod(path, 0o555 if path.is_dir() else 0o444)
        refused = _mas([*PIPELINE, f"paths.root={root}"], shared)
        assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
        assert "report is not writable; add pipeline.report=false" in refused.stderr
        reused = _mas([*PIPELINE, f"paths.root={root}", "pipeline.report=false"], shared)
        assert reused.returncode == 0, reused.stderr
        assert "Traceback" not in reused.stderr
    finally:
        _release(shared)


def test_a_store_made_under_another_users_umask_is_one_line(tmp_path):
    def make(root: Path) -> None:
        before = os.umask(0o077)  # its owner's umask: nobody else may read or enter
        try:
            mas.align(["gru", "lstm"], root=root, k=4, **SMOKE)
        finally:
            os.umask(before)

    shared, root = _shared_store(make)
    try:
        os.chmod(root, 0o755)  # the root is open, what is inside is not
        out = shared / "report"
        out.mkdir(mode=0o777)
        os.chmod(out, 0o777)
        commands = [["align", *ALIGN_SMOKE], ["train", "budget=smoke", "arch.width=16"], ["report", f"out={out}"]]
        for argv in commands:
            done = _mas([*argv, f"paths.root={root}"], shared)
            assert done.returncode == 2, (argv, done.stderr)
            assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
            assert "Permission denied" in done.stderr or "permissions" in done.stderr, done.stderr
    finally:
        _release(shared)
