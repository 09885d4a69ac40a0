"""Crash safety: each command killed (SIGKILL) at store write points, before and after every
atomic replace and around every publish. After each kill nothing incomplete looks complete (with
force=true the old version stays complete), the rerun completes, and its results equal those of
an uninterrupted run: weights bit for bit, iia.csv and similarity.csv byte for byte, no
temporary file left.

The default suite kills `mas train` and `mas align force=true` at two points that stand for the
rest (a result file written but not published; a version published but not yet linked);
`pytest -m slow` kills every command at every point.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import mas_cli as mas
from mas_cli.commands.common import INTERRUPTED
from mas_cli.store import Entry

SMOKE = ["budget=smoke", 'train_overrides=["arch.width=16"]', "allow_undertrained=true"]
TRAIN = ["train", "budget=smoke", "arch.width=16"]
ALIGN = ["align", *SMOKE, "a=gru", "b=lstm", "k=4"]
SIMILARITY = ["similarity", *SMOKE, "a=gru", "b=lstm"]
PIPELINE = ["pipeline", "budget=smoke", 'pipeline.train_overrides=["arch.width=16"]', "pipeline.seeds=[0]"]
PIPELINE += ["pipeline.allow_undertrained=true", "pipeline.report=false"]
# The points that stand for the rest in the default suite (first match of each): a result file
# written but unpublished, and a version published but not yet linked.
SAMPLE = ("after replace model.pt", "after replace alignment.pt", "after publishing")


def mas_run(argv: list[str], root: Path, crash_at: int | None = None, log: Path | None = None):
    env = {key: v for key, v in os.environ.items() if not key.startswith("MAS_CRASH")}
    if crash_at is not None:
        env["MAS_CRASH_AT"] = str(crash_at)
    if log is not None:
        env["MAS_CRASH_LOG"] = str(log)
    command = [sys.executable, "-m", "mas_cli.cli", *argv, f"paths.root={root}"]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)


def entries(root: Path) -> list[Path]:
    """Every public entry path under a root (models, alignment runs, similarity results)."""
    found = []
    for pattern in ("models/*/*/*", "alignments/*/*", "similarity/*/*"):
        found += [p for p in root.glob(pattern) if not p.name.startswith(".") and not p.name.endswith(".lock")]
    return sorted(found)


def results(root: Path) -> dict[str, object]:
    """What a rerun must reproduce: every model's weights, every iia.csv and similarity.csv."""
    found = {}
    for entry in entries(root):
        folder = Entry(entry).current()
        assert folder is not None, entry
        for name in ("iia.csv", "similarity.csv"):
            if (folder / name).is_file():
                found[f"{entry.relative_to(root)}/{name}"] = (folder / name).read_bytes()
        if (folder / "model.pt").is_file():
            state = torch.load(folder / "model.pt", weights_only=True)["state_dict"]
            found[f"{entry.relative_to(root)}/weights"] = {k: v.numpy().tobytes() for k, v in state.items()}
    return found


@pytest.fixture(scope="module")
def bases(tmp_path_factory) -> dict[str, Path]:
    """The store each scenario starts from."""
    made = tmp_path_factory.mktemp("bases")
    empty = made / "empty"
    empty.mkdir()
    models = made / "models"
    smoke = dict(budget="smoke", allow_undertrained=True, train_overrides=["arch.width=16"])
    for arch in ("gru", "lstm"):
        mas.train(arch=arch, root=models, budget="smoke", overrides=["arch.width=16"])
    fitted = made / "fitted"
    shutil.copytree(models, fitted, symlinks=True)
    mas.align(["gru", "lstm"], root=fitted, k=4, **smoke)
    return {"empty": empty, "models": models, "fitted": fitted}


SCENARIOS = {
    "train": ("empty", TRAIN),
    "align": ("models", ALIGN),
    "align-force": ("fitted", [*ALIGN, "force=true"]),
    "similarity": ("models", SIMILARITY),
    "pipeline": ("empty", PIPELINE),
}


def kill_everywhere(bases, tmp_path, scenario: str, every_point: bool) -> int:
    base_name, argv = SCENARIOS[scenario]
    base = bases[base_name]
    reference = tmp_path / "reference"
    shutil.copytree(base, reference, symlinks=True)
    log = tmp_path / "points.log"
    done = mas_run(argv, reference, log=log)
    assert done.returncode == 0, done.stderr
    expected = results(reference)
    points = [line.split(" ", 1) for line in log.read_text().splitlines()]
    if not every_point:
        chosen = [next((n for n, label in points if label.startswith(s)), None) for s in SAMPLE]
        points = [(n, label) for n, label in points if n in chosen]
    force = "force=true" in argv
    for number, label in points:
        root = tmp_path / f"killed-{number}"
        shutil.copytree(base, root, symlinks=True)
        killed = mas_run(argv, root, crash_at=int(number))
        assert killed.returncode == -9, (label, killed.returncode, killed.stderr[-500:])
        for entry in entries(root):  # nothing incomplete looks complete; corrupt nothing
            Entry(entry).current()
        if force:  # a complete version, old or new, at every moment
            assert all(Entry(e).complete() for e in entries(base)), label
        again = mas_run(argv, root)
        assert again.returncode == 0, (label, again.stderr[-2000:])
        assert results(root) == expected, label
        assert not [p for p in root.rglob("*.tmp")], label
        shutil.rmtree(root)
    return len(points)


@pytest.mark.parametrize("scenario", ["train", "align-force"])
def test_killed_at_sample_points_the_store_stays_consistent(bases, tmp_path, scenario):
    assert kill_everywhere(bases, tmp_path, scenario, every_point=False) == 2


@pytest.mark.slow
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_killed_at_every_write_point_the_store_stays_consistent(bases, tmp_path, scenario):
    points = kill_everywhere(bases, tmp_path, scenario, every_point=True)
    print(f"{scenario}: killed at {points} write points, every rerun reproduced the uninterrupted results")


@pytest.mark.parametrize("jobs", [1, pytest.param(2, marks=pytest.mark.slow)])  # 2: parallel workers, 35 s
def test_ctrl_c_during_a_pipeline_is_one_line_and_the_rerun_completes(bases, tmp_path, jobs):
    """Ctrl-C reaches every process of the terminal's group: the pipeline and its workers."""
    import signal
    import time

    argv = [*PIPELINE, f"pipeline.jobs={jobs}", "threads=2"]
    reference = tmp_path / "reference"
    assert mas_run(argv, reference).returncode == 0
    root, log = tmp_path / "interrupted", tmp_path / "points.log"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MAS_CRASH")}, "MAS_CRASH_LOG": str(log)}
    command = [sys.executable, "-m", "mas_cli.cli", *argv, f"paths.root={root}"]
    running = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while not (log.exists() and "after replace model.pt" in log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.01)  # interrupted once the first model file is written, mid-pipeline
    os.killpg(running.pid, signal.SIGINT)
    _, err = running.communicate(timeout=120)
    assert running.returncode == 130, err
    assert err.strip().splitlines() == [f"error: {INTERRUPTED}"]
    for entry in entries(root):  # nothing incomplete looks complete
        Entry(entry).current()
    again = mas_run(argv, root)
    assert again.returncode == 0, again.stderr[-2000:]
    assert results(root) == results(reference)
