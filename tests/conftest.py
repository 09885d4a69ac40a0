"""Shared fixtures: compose the real config tree with Hydra's compose API, then shrink it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module

torch.set_num_threads(2)

pytest_plugins = ["tests.trained"]  # tiny models trained to criterion once per session, and fits on them

SMALL = ["budget=smoke", "arch.width=16", "budget.val_size=50", "budget.heldout_size=50"]


def compose_config(config_name: str, overrides: list[str]):
    with initialize_config_module(config_module="mas_cli.conf", version_base="1.3"):
        return compose(config_name=config_name, overrides=overrides)


@pytest.fixture
def small_train_cfg(tmp_path):
    """The real `train` config, shrunk to seconds and pointed at a temporary paths.root."""

    def make(*overrides: str):
        return compose_config("train", [*SMALL, f"paths.root={tmp_path / 'out'}", *overrides])

    return make


def run_cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the installed `mas` entry point as a user would (module form: same interpreter), with
    `env` added to the environment."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "mas_cli.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def complete(entry) -> bool:
    """A store entry (model, alignment run, similarity result) is there, every checksum right."""
    from mas_cli.store import Entry

    return Entry(entry).complete()


def forge(entry, name: str, data: bytes) -> None:
    """Replace one file of a store entry and record its checksum as if mas had written it (what
    someone with write access to a shared store can do): the content checks must still hold."""
    import hashlib
    import json

    folder = Path(entry).resolve()
    (folder / name).write_bytes(data)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    (folder / "manifest.json").write_text(json.dumps(manifest))


def publish_entry(entry: Path, files: dict[str, str]) -> None:
    """A store entry holding `files` (name -> text), published as mas publishes its results (a
    checksummed version folder behind a link): what `mas report` reads."""
    from mas_cli.store import Entry, write_text

    published = Entry(entry)
    work = published.start(fresh=True)
    for name, text in files.items():
        write_text(work / name, text)
    published.publish(list(files))


def result_files(root, name: str = "iia.csv") -> list[Path]:
    """Every complete result file under a root, by its public path (as `mas report` finds them)."""
    from mas_cli.reporting.collect import result_files as found

    return found(Path(root), name, None)
