"""Every spoiled or planted store file is one line: a catalogue of what a lab sharing one store, or
someone with write access to it, can leave in it. Each case starts from a copy of a small trained
store, spoils or plants one thing, runs one command, and sees one line, exit status 2, no
traceback, no stored file run as code, and the root (and any folder a planted link names)
exactly as it was, byte for byte.
"""

from __future__ import annotations

import io
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

import mas_cli as mas
from tests.cli import assert_one_line, run, snapshot
from tests.conftest import forge

SMOKE = ["budget=smoke", 'train_overrides=["arch.width=16"]', "allow_undertrained=true"]
pytestmark = pytest.mark.filterwarnings("ignore:Detected pickle protocol")


# ---- a small trained store, one file spoiled per case ------------------------------------------
@pytest.fixture(scope="session")
def smoke_store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("store") / "out"
    smoke = dict(budget="smoke", allow_undertrained=True, train_overrides=["arch.width=16"])
    mas.align(["gru", "lstm"], root=root, k=4, **smoke)
    mas.similarity("gru", "lstm", root=root, **smoke)
    return root


class Planted:
    """Unpickling this runs code: it writes a marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _entry_under(folder: Path) -> Path:
    """The one result entry under <root>/<kind>/<settings>/ (its public path, not a version)."""
    return next(p for p in folder.glob("*/*") if not p.name.startswith("."))


def _run_dir(root: Path) -> Path:
    return _entry_under(root / "alignments")


def _sim_dir(root: Path) -> Path:
    return _entry_under(root / "similarity")


GRU = "models/count/gru/seed0"
ALIGN = ["align", *SMOKE, "a=gru", "b=lstm", "k=4"]
SIM = ["similarity", *SMOKE, "a=gru", "b=lstm"]
TRAIN = ["train", "budget=smoke", "arch.width=16"]


def spoil_file(where, name: str, data: bytes | None = None, consistent: bool = True):
    """Replace one file of an entry; `consistent` also rewrites its recorded checksum."""

    def spoil(root: Path, marker: Path) -> None:
        entry = where(root) if callable(where) else root / where
        content = data if data is not None else pickle.dumps(Planted(marker))
        if consistent:
            forge(entry, name, content)
        else:
            (entry.resolve() / name).write_bytes(content)

    return spoil


def planted_torch(where, name: str):
    """A torch file (the zip format) whose pickle would run code."""

    def spoil(root: Path, marker: Path) -> None:
        import torch

        buffer = io.BytesIO()
        torch.save({"format": "mas-model/1", "state_dict": Planted(marker)}, buffer)
        forge(where(root) if callable(where) else root / where, name, buffer.getvalue())

    return spoil


def lock_folder(root: Path, marker: Path) -> None:
    shutil.rmtree(root / "models" / "count" / "gru")
    (root / "models" / "count" / "gru" / "seed0.lock").mkdir(parents=True)


def legacy(root: Path, marker: Path) -> None:
    entry = root / GRU
    target = entry.resolve()
    entry.unlink()
    shutil.copytree(target, entry)


SPOILED = [
    ("model-pickle", spoil_file(GRU, "model.pt"), TRAIN, "would run code when loaded"),
    ("model-torch-pickle", planted_torch(GRU, "model.pt"), ALIGN, "would run code when loaded"),
    ("alignment-pickle", spoil_file(_run_dir, "alignment.pt"), ALIGN, "would run code when loaded"),
    ("alignment-torch-pickle", planted_torch(_run_dir, "alignment.pt"), ALIGN, "would run code when loaded"),
    ("model-truncated", spoil_file(GRU, "model.pt", b"PK\x03\x04", consistent=False), TRAIN, "is corrupt"),
    ("model-truncated-forged", spoil_file(GRU, "model.pt", b"PK\x03\x04"), ALIGN, "not a readable model file"),
    ("model-empty", spoil_file(GRU, "model.pt", b"", consistent=False), ALIGN, "is corrupt"),
    ("metrics-empty-object", spoil_file(GRU, "metrics.json", b"{}"), TRAIN, "lacks a valid"),
    ("metrics-list", spoil_file(GRU, "metrics.json", b"[]"), TRAIN, "does not hold a JSON object"),
    ("metrics-garbage", spoil_file(GRU, "metrics.json", b"\xff\xfe"), ALIGN, "is unreadable"),
    ("metrics-edited", spoil_file(GRU, "metrics.json", b"{}", consistent=False), ALIGN, "is corrupt"),
    ("iia-garbage", spoil_file(_run_dir, "iia.csv", b"\x00\x01garbage"), ALIGN, "iia.csv"),
    ("iia-empty", spoil_file(_run_dir, "iia.csv", b""), ALIGN, "is unreadable"),
    ("iia-edited", spoil_file(_run_dir, "iia.csv", b"src\n", consistent=False), ALIGN, "is corrupt"),
    ("alignment-truncated", spoil_file(_run_dir, "alignment.pt", b"PK"), ALIGN, "not a readable alignment file"),
    ("similarity-garbage", spoil_file(_sim_dir, "similarity.csv", b"x"), SIM, "similarity.csv"),
    ("similarity-edited", spoil_file(_sim_dir, "similarity.csv", b"", consistent=False), SIM, "is corrupt"),
    ("manifest-garbage", spoil_file(GRU, "manifest.json", b"nonsense", consistent=False), TRAIN, "is unreadable"),
    ("lock-is-a-folder", lock_folder, TRAIN, "seed0.lock is not a file"),
    ("legacy-entry", legacy, TRAIN, "stored by an older mas"),
    ("report-corrupt-run", spoil_file(_run_dir, "iia.csv", b"x", consistent=False), ["report"], "is corrupt"),
    # the tables `mas report` reads, forged with consistent checksums: each checked before use
    ("report-items-garbage", spoil_file(_run_dir, "items.csv", b"\x00\x01garbage"), ["report"], "items.csv"),
    ("report-items-columns", spoil_file(_run_dir, "items.csv", b"a,b\n1,2\n"), ["report"], "lacks the column"),
    ("report-items-empty", spoil_file(_run_dir, "items.csv", b""), ["report"], "items.csv is unreadable"),
    ("report-curve-garbage", spoil_file(_run_dir, "curve.csv", b"\xff\xfe"), ["report"], "curve.csv is unreadable"),
    ("report-curve-columns", spoil_file(_run_dir, "curve.csv", b"step\n1\n"), ["report"], "lacks the column"),
    ("report-model-curve", spoil_file(GRU, "curve.csv", b"a\n1\n"), ["report"], "lacks the column"),
    (
        "report-model-curve-text",
        spoil_file(GRU, "curve.csv", b"step,loss,val_task_acc\n1,x,y\n"),
        ["report"],
        "numbers",
    ),
    ("report-iia-label", lambda r, m: edit_iia(r, src="not-a-label"), ["report"], "task/arch/seed labels"),
    ("report-iia-label-slashes", lambda r, m: edit_iia(r, trg="a/b/c/d"), ["report"], "task/arch/seed labels"),
    ("report-iia-text", lambda r, m: edit_iia(r, iia="high"), ["report"], "column iia holds something other"),
    ("report-iia-columns", spoil_file(_run_dir, "iia.csv", b"src,trg\ncount/gru/0,count/gru/0\n"), ["report"], "lacks"),
    ("report-similarity-text", spoil_file(_sim_dir, "similarity.csv", b"x,y\n1,2\n"), ["report"], "lacks"),
]


def edit_iia(root: Path, **columns) -> None:
    """The run's iia.csv with some columns set to another value (checksums forged to match)."""
    import pandas as pd

    path = _run_dir(root) / "iia.csv"
    forge(_run_dir(root), "iia.csv", pd.read_csv(path).assign(**columns).to_csv(index=False).encode())


@pytest.mark.parametrize(("spoil", "argv", "fragment"), [s[1:] for s in SPOILED], ids=[s[0] for s in SPOILED])
def test_spoiled_store_files_are_one_line_and_run_no_code(smoke_store, tmp_path, spoil, argv, fragment):
    root = tmp_path / "out"
    shutil.copytree(smoke_store, root, symlinks=True)
    marker = tmp_path / "marker"
    spoil(root, marker)
    before = snapshot(root)
    code, err = run([*argv, f"paths.root={root}"], tmp_path)
    assert_one_line(code, err, fragment)
    assert not marker.exists()  # no stored file ever runs code
    assert snapshot(root) == before


# ---- planted links and wrong file types: nothing outside the store is written or deleted ---------
def victim_folder(place: Path) -> Path:
    """A colleague's folder a planted link names: files a killed write would leave (.*.tmp) and a
    model file, which a store write through the link would delete or replace."""
    place.mkdir()
    (place / "precious.txt").write_text("results of a year")
    (place / ".model.pt.123.tmp").write_text("not mas's")
    (place / "model.pt").write_text("not mas's either")
    return place


def link(where: str, to_victim: str = "") -> Callable[[Path, Path], None]:
    """Make root/<where> a symbolic link to the victim folder (or a path inside it)."""

    def plant(root: Path, victim: Path) -> None:
        path = root / where
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(victim / to_victim)

    return plant


def make(where: str, kind: str) -> Callable[[Path, Path], None]:
    """Put a file (or a folder) where mas keeps the other kind."""

    def plant(root: Path, victim: Path) -> None:
        path = root / where
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir() if kind == "folder" else path.write_text("x")

    return plant


def in_run(name: str, kind: str = "link") -> Callable[[Path, Path], None]:
    """A link (or a file) at `.<models>.<name>` beside the alignment run."""

    def plant(root: Path, victim: Path) -> None:
        run_dir = _run_dir(root)
        path = run_dir.parent / f".{run_dir.name}.{name}"
        path.symlink_to(victim) if kind == "link" else path.write_text("x")

    return plant


def entry_to_victim(root: Path, victim: Path) -> None:
    """The public path of a model links to a folder outside its entry (holding a valid copy)."""
    entry = root / GRU
    shutil.copytree(entry.resolve(), victim / "copy")
    entry.unlink()
    entry.symlink_to(victim / "copy")


def manifest_outside(root: Path, victim: Path) -> None:
    """A manifest that names a file outside its version folder."""
    import json

    folder = (root / GRU).resolve()
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["../../../../../victim/precious.txt"] = {"sha256": "0", "size": 1}
    (folder / "manifest.json").write_text(json.dumps(manifest))


def inside_work(root: Path, victim: Path) -> None:
    """A kept work folder (an interrupted run) with a link inside it."""
    work = root / "models/count/gru/.seed1.work"
    work.mkdir()
    (work / ".hydra").symlink_to(victim)


SEED1 = [*TRAIN, "seed=1"]
FORCE = ["force=true"]
PLANTED = [
    ("work-link", link("models/count/gru/.seed1.work"), SEED1, ".seed1.work is a symbolic link"),
    ("work-link-force", link("models/count/gru/.seed0.work"), [*TRAIN, *FORCE], ".seed0.work is a symbolic link"),
    ("work-file", make("models/count/gru/.seed1.work", "file"), SEED1, ".seed1.work is not a folder"),
    ("work-file-force", make("models/count/gru/.seed0.work", "file"), [*TRAIN, *FORCE], "is not a folder"),
    ("work-inside-link", inside_work, SEED1, ".hydra is a symbolic link"),
    ("version-link", link("models/count/gru/.seed0.v9"), [*TRAIN, *FORCE], ".seed0.v9 is a symbolic link"),
    ("version-file", make("models/count/gru/.seed0.v9", "file"), [*TRAIN, *FORCE], ".seed0.v9 is not a folder"),
    ("staged-link-folder", make("models/count/gru/.seed0.link.tmp", "folder"), [*TRAIN, *FORCE], "link.tmp"),
    ("entry-outside", entry_to_victim, ALIGN, "not to a version of its own"),
    ("entry-outside-train", entry_to_victim, TRAIN, "not to a version of its own"),
    ("arch-folder-link", link("models/count/transformer"), [*TRAIN, "arch=transformer"], "is a symbolic link"),
    ("task-folder-link", link("models/count"), TRAIN, "models/count is a symbolic link"),
    ("models-link", link("models"), SEED1, "models is a symbolic link"),
    ("lock-link", link("models/count/gru/seed1.lock", "precious.txt"), SEED1, "seed1.lock is a symbolic link"),
    ("manifest-outside", manifest_outside, ALIGN, "names a file outside its folder"),
    ("run-work-link", in_run("work"), [*ALIGN, *FORCE], ".work is a symbolic link"),
    ("run-work-file", in_run("work", "file"), [*ALIGN, *FORCE], ".work is not a folder"),
    ("run-version-link", in_run("v5"), [*ALIGN, *FORCE], ".v5 is a symbolic link"),
    ("run-settings-link", link("alignments"), [*ALIGN, "k=2"], "alignments is a symbolic link"),
    ("similarity-work-link", lambda r, v: _sim_link(r, v), [*SIM, *FORCE], ".work is a symbolic link"),
    ("report-link", link("report"), ["report"], "report is a symbolic link"),
    ("report-file", make("report", "file"), ["report"], "is a file, not a folder"),
    ("pipeline-logs-link", link("pipeline"), ["pipeline", "budget=smoke"], "pipeline is a symbolic link"),
    ("sweeps-link", link("sweeps"), ["train", "-m", "budget=smoke", "seed=0,1"], "sweeps is a symbolic link"),
    ("tensorboard-link", link("tensorboard"), [*SEED1, "logger=tensorboard"], "tensorboard is a symbolic link"),
]


def _sim_link(root: Path, victim: Path) -> None:
    sim = _sim_dir(root)
    (sim.parent / f".{sim.name}.work").symlink_to(victim)


@pytest.mark.parametrize(("plant", "argv", "fragment"), [p[1:] for p in PLANTED], ids=[p[0] for p in PLANTED])
def test_planted_links_are_refused_and_nothing_outside_changes(smoke_store, tmp_path, plant, argv, fragment):
    root, victim = tmp_path / "out", victim_folder(tmp_path / "victim")
    shutil.copytree(smoke_store, root, symlinks=True)
    plant(root, victim)
    before, outside = snapshot(root), snapshot(victim)
    code, err = run([*argv, f"paths.root={root}"], tmp_path)
    assert_one_line(code, err, fragment)
    assert snapshot(victim) == outside  # nothing written into, or deleted from, the linked folder
    assert snapshot(root) == before


# ---- what `mas report` walks: never out of the root, never in a loop, never a copy twice -------
def test_the_report_walks_no_link_but_an_entrys_own(smoke_store, tmp_path, capsys):
    from mas_cli.reporting import write_report

    root = tmp_path / "out"
    shutil.copytree(smoke_store, root, symlinks=True)
    run_dir = _run_dir(root)
    (root / "alignments" / "loop").symlink_to("..")  # a loop: followed, the walk never ends
    (root / "alignments" / "elsewhere").symlink_to(tmp_path / "victim")  # out of the root
    victim_folder(tmp_path / "victim")
    shutil.copytree(run_dir.resolve(), run_dir.parent / "backup")  # a copied run: not a second run
    rows = write_report(root, root / "report")
    assert rows.run.nunique() == 1 and rows.run.iloc[0] == str(run_dir.relative_to(root))
    said = capsys.readouterr().out
    assert "not read: 3 folder(s) or link(s)" in said


def test_a_report_over_proc_ends_in_one_line(tmp_path):
    """/proc: a huge tree full of links (/proc/self, every process's cwd and root)."""
    code, err = run(["report", "paths.root=/proc", f"out={tmp_path / 'report'}"], tmp_path)
    assert_one_line(code, err, "/proc")  # a folder it may not read, or no result: either way one line
