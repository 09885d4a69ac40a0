"""Store paths are never followed through a planted link.

A store may be shared: anyone who can write one of its folders can put a symbolic link (or a
file) where mas expects a folder of its own. Followed, such a link makes a colleague's mas
write into, or delete from, whatever folder the link names. So below `paths.root` (which may
itself be a link: that is the user's own choice) every folder mas writes into must be a real
folder, and the only links are the ones mas makes itself: an entry's public path, naming a
version folder beside it (entries.py). Everything else is refused in one line naming the path,
before anything is written.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from mas_cli.errors import StoreError

PLANTED = "mas never makes one there, so someone with write access to the store put it there: remove it"


def _kind(path: Path) -> int | None:
    """The file type of `path` itself (a link is not followed), None when nothing is there."""
    try:
        return stat.S_IFMT(os.lstat(path).st_mode)
    except FileNotFoundError:
        return None
    except NotADirectoryError:  # a component above is a file: refused where that component is checked
        return None
    except OSError as exc:
        raise StoreError(f"cannot read {path} ({exc.strerror}); check the store's permissions") from None


def real_folder(path: Path, what: str = "folder") -> None:
    """`path` is a real folder or absent; a link or a file there is refused."""
    kind = _kind(path)
    if kind == stat.S_IFLNK:
        raise StoreError(f"{path} is a symbolic link (to {os.readlink(path)}) where mas keeps a {what}; {PLANTED}")
    if kind is not None and kind != stat.S_IFDIR:
        raise StoreError(f"{path} is not a folder but mas keeps a {what} there; move it away")


def real_folders_below(root: Path | str | None, path: Path) -> None:
    """Every folder from below `root` down to `path` (inclusive) is a real folder or absent.
    Outside `root` (or without one) only `path` itself is checked."""
    path = Path(path)
    if root is None:
        return real_folder(path)
    try:
        relative = path.relative_to(Path(root))
    except ValueError:
        return real_folder(path)
    current = Path(root)
    for part in relative.parts:
        current = current / part
        real_folder(current)


def real_file(path: Path) -> None:
    """`path` is a regular file or absent (written by replacing it, never through a link)."""
    kind = _kind(path)
    if kind == stat.S_IFLNK:
        raise StoreError(f"{path} is a symbolic link (to {os.readlink(path)}); {PLANTED}")
    if kind is not None and kind != stat.S_IFREG:
        raise StoreError(f"{path} is not a file but mas writes a file there; move it away")


def no_links_inside(folder: Path) -> None:
    """Nothing inside `folder` (a work folder mas made) is a link or a special file."""
    for here, folders, files in os.walk(folder, followlinks=False):
        for name in folders + files:
            path = Path(here) / name
            kind = _kind(path)
            if kind == stat.S_IFLNK:
                raise StoreError(f"{path} is a symbolic link (to {os.readlink(path)}); {PLANTED}")
            if kind not in (stat.S_IFDIR, stat.S_IFREG):
                raise StoreError(f"{path} is not a plain file; {PLANTED}")
