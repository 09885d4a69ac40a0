"""Results that are complete or absent, never half-written: a model store entry, an alignment run,
a similarity result.

An entry's public path (e.g. `models/count/gru/seed0`) is a symbolic link to its complete
version, a hidden sibling folder `.seed0.v<N>/` holding the files and a `manifest.json` with the
SHA-256 and size of each, written last. Work in progress (checkpoints, files being written)
lives in `.seed0.work/`. Publishing a new version writes its manifest, flushes everything to
disk, renames the work folder to the next version and swaps the link in one atomic step: a
reader, or a process killed at any moment, sees the old complete version or the new one, never
a mixture, and `force=true` never leaves a moment without a complete version. Reading verifies
every checksum, so a truncated or altered file is refused, never reused as complete.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from mas_cli.errors import StoreError
from mas_cli.store.files import crash_point, fsync_dir, read_json, write_json
from mas_cli.store.links import PLANTED, no_links_inside, real_file, real_folder, real_folders_below

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "mas-manifest/1"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Entry:
    def __init__(self, path: str | Path, redo: str = "add force=true", root: str | Path | None = None):
        """`redo` is what a message tells the user to do with a corrupt entry; `root` is the
        store it lies in (the folders between the two must be real folders, links.py)."""
        self.path = Path(path)
        self.redo = redo
        self.root = root

    def __repr__(self) -> str:
        return f"Entry({self.path})"

    @property
    def work(self) -> Path:
        return self.path.parent / f".{self.path.name}.work"

    def versions(self) -> list[tuple[int, Path]]:
        """(number, folder) of every published version, oldest first; each a real folder."""
        pattern = re.compile(rf"^\.{re.escape(self.path.name)}\.v(\d+)$")
        real_folders_below(self.root, self.path.parent)
        if not self.path.parent.is_dir():
            return []
        found = [(int(m[1]), p) for p in self.path.parent.iterdir() if (m := pattern.match(p.name))]
        for _, folder in found:
            real_folder(folder, "version of an entry")
        return sorted(found)

    def linked(self) -> Path | None:
        """The version folder the public path names; None when it is not a link. A link to
        anything but a version folder beside it is refused: mas never makes one."""
        real_folders_below(self.root, self.path.parent)
        if not self.path.is_symlink():
            return None
        target = os.readlink(self.path)
        if not re.fullmatch(rf"\.{re.escape(self.path.name)}\.v\d+", target):
            raise StoreError(f"{self.path} is a symbolic link to {target}, not to a version of its own; {PLANTED}")
        version = self.path.parent / target
        real_folder(version, "version of an entry")
        return version

    def linked_or_none(self) -> Path | None:
        """`linked()`, with None where the path is not an entry link at all (a reader that walks
        a tree skips such links instead of refusing them)."""
        try:
            return self.linked()
        except StoreError:
            return None

    def current(self) -> Path | None:
        """The complete version's folder, every checksum verified; None when there is none."""
        target = self.linked()
        if target is not None:
            self.verify(target)
            return target
        if self.path.exists():
            raise StoreError(
                f"{self.path} was stored by an older mas, without checksums; {self.redo} to make it again "
                "(or move it away)"
            )
        return None

    def complete(self) -> bool:
        return self.current() is not None

    def verify(self, folder: Path) -> None:
        """Every file of the manifest is there, with its size and checksum."""
        manifest = read_json(folder / MANIFEST, f"{self.redo} to make {self.path} again")
        files = manifest.get("files")
        if manifest.get("format") != MANIFEST_FORMAT or not isinstance(files, dict):
            raise StoreError(f"{folder / MANIFEST} is not a mas manifest; {self.redo} to make {self.path} again")
        for name, expected in files.items():
            path = folder / name
            if not isinstance(expected, dict) or Path(name).is_absolute() or ".." in Path(name).parts:
                raise StoreError(f"{folder / MANIFEST} names a file outside its folder; {PLANTED}")
            real_file(path)
            if not path.is_file():
                raise StoreError(f"{self.path / name} is missing; {self.redo} to make it again")
            if path.stat().st_size != expected.get("size") or sha256(path) != expected.get("sha256"):
                raise StoreError(
                    f"{self.path / name} is corrupt (it does not match the checksum recorded when it was "
                    f"written); {self.redo} to make it again"
                )

    def check_paths(self) -> None:
        """Every path this entry writes is where mas put it: no planted link or file (links.py)."""
        self.linked()
        self.versions()
        real_folder(self.work, "work folder")
        if self.work.is_dir():
            no_links_inside(self.work)
        staged = self.path.parent / f".{self.path.name}.link.tmp"
        if staged.exists() and not staged.is_symlink():
            raise StoreError(f"{staged} is not a link mas made; move it away")

    @contextmanager
    def exclusive(self, waiting: Callable[[], None]):
        """`exclusive` on this entry, its paths checked before the lock file is made."""
        self.check_paths()
        real_file(Path(f"{self.path}.lock"))
        with exclusive(self.path, waiting):
            yield

    def made_once(self, build: Callable[[Path], list[str]], waiting: Callable[[], None]) -> Path:
        """The complete version's folder; without one, `build(work folder)` writes a version (and
        returns its file names) under the lock, unless another job published one meanwhile."""
        folder = self.current()
        if folder is not None:
            return folder
        with self.exclusive(waiting):
            self.adopt_finished()
            folder = self.current()
            if folder is None:
                folder = self.publish(build(self.start(fresh=True)))
        return folder

    def start(self, fresh: bool = False) -> Path:
        """The work folder for a new version: kept from an interrupted run (its checkpoint
        resumes), emptied when `fresh`; stray temporary files of a killed write are removed.
        A planted link or file anywhere on the way is refused before anything is touched."""
        self.check_paths()
        if fresh and self.work.exists():
            shutil.rmtree(self.work)
        self.work.mkdir(parents=True, exist_ok=True)
        for here, _, files in os.walk(self.work):
            for name in files:
                if name.startswith(".") and name.endswith(".tmp"):
                    (Path(here) / name).unlink()
        return self.work

    def adopt_finished(self) -> bool:
        """A version published but not yet linked (a run killed between the two steps): link it."""
        versions = self.versions()
        if not versions:
            return False
        number, newest = versions[-1]
        linked = self.linked()
        if linked is not None and linked.name == newest.name:
            return False
        try:
            self.verify(newest)
        except StoreError:
            return False
        self._link(newest)
        return True

    def publish(self, files: list[str]) -> Path:
        """Make the work folder, holding `files`, the entry's complete version."""
        write_json(self.work / MANIFEST, {"format": MANIFEST_FORMAT, "files": {n: self._describe(n) for n in files}})
        fsync_dir(self.work)
        number = self.versions()[-1][0] + 1 if self.versions() else 1
        version = self.path.parent / f".{self.path.name}.v{number}"
        os.replace(self.work, version)
        fsync_dir(self.path.parent)
        crash_point(f"after publishing {version.name}")
        self._link(version)
        self._prune(keep=version)
        return version

    def _describe(self, name: str) -> dict:
        path = self.work / name
        return {"sha256": sha256(path), "size": path.stat().st_size}

    def _link(self, version: Path) -> None:
        """Point the public path at `version` in one step (a new link replaces the old one)."""
        if self.path.exists() and not self.path.is_symlink():  # an older mas's folder: kept aside
            self.path.rename(self.path.parent / f".{self.path.name}.legacy")
        link = self.path.parent / f".{self.path.name}.link.tmp"
        link.unlink(missing_ok=True)
        os.symlink(version.name, link)
        os.replace(link, self.path)
        fsync_dir(self.path.parent)
        crash_point(f"after linking {self.path.name}")

    def _prune(self, keep: Path) -> None:
        """Remove versions older than the one before `keep` (a reader may still be in that one)."""
        older = [p for _, p in self.versions() if p != keep]
        for folder in older[:-1]:
            shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def exclusive(place: Path, waiting: Callable[[], None]):
    """Hold `<place>.lock` while a result is checked and made: two jobs that need the same model
    (or alignment) never both make it; the second waits, then finds it complete and reuses it.
    `waiting` is called once if another job holds the lock."""
    try:
        place.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(f"{place}.lock")
        try:
            lock.acquire(timeout=0)
        except Timeout:
            waiting()
            lock.acquire()
    except (IsADirectoryError, PermissionError, NotADirectoryError, OSError) as exc:
        raise StoreError(
            f"cannot take the lock {place}.lock ({type(exc).__name__}: {exc.strerror or exc}); "
            "make sure the store is writable and that path is not a folder"
        ) from None
    try:
        yield
    finally:
        lock.release()
