"""Files written so that a reader never sees a torn one, and read so that no stored file runs code.

Every write goes to a temporary file in the same folder, is flushed to disk (fsync), takes the
permissions the user's umask gives new files (colleagues sharing a store can read it), and then
replaces the target in one step (`os.replace`).

Fault injection: with MAS_CRASH_AT=N the process kills itself (SIGKILL) at the N-th write point
(before and after each replace, around each publish step); MAS_CRASH_LOG=<file> records every
point passed. tests/test_crashes.py uses these to kill a command at every point.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path

from mas_cli.errors import StoreError, UnsafeFileError

_points = 0


def crash_point(label: str) -> None:
    """A store write point: counted, logged, and the place to die when asked (tests only)."""
    global _points
    at, log = os.environ.get("MAS_CRASH_AT"), os.environ.get("MAS_CRASH_LOG")
    if at is None and log is None:
        return
    _points += 1
    if log:
        with open(log, "a") as handle:
            handle.write(f"{_points} {label}\n")
    if at is not None and _points == int(at):
        os.kill(os.getpid(), signal.SIGKILL)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def fsync_dir(folder: Path) -> None:
    """Make a folder's entries (new names, renames) durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic(path: Path, write: Callable[[str], None]) -> None:
    """Write `path` through `write(temporary path)`: flushed, umask permissions, one replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600: a shared store must be readable
        crash_point(f"before replace {path.name}")
        os.replace(tmp, path)
        crash_point(f"after replace {path.name}")
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    atomic(path, lambda tmp: Path(tmp).write_text(text))


def write_bytes(path: Path, data: bytes) -> None:
    atomic(path, lambda tmp: Path(tmp).write_bytes(data))


def write_json(path: Path, data: dict) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def save_torch(path: Path, obj) -> None:
    import torch

    atomic(path, lambda tmp: torch.save(obj, tmp))


def read_json(path: Path, fix: str) -> dict:
    """A JSON object from a stored file; anything else is one line ending with `fix`."""
    try:
        found = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise StoreError(f"{path} is unreadable; {fix}") from None
    if not isinstance(found, dict):
        raise StoreError(f"{path} does not hold a JSON object; {fix}")
    return found


def load_torch(path: Path, kind: str, fix: str):
    """A torch file's contents, read without running any code: torch's restricted unpickler
    (weights_only=True) accepts only tensors and plain containers, so a crafted file in a shared
    store is refused instead of executed. A missing, truncated or foreign file raises StoreError
    ending with `fix`."""
    import pickle

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise StoreError(f"{path} does not exist; {fix}") from None
    except pickle.UnpicklingError as exc:
        # Objects outside torch's allow-list, or a bare pickle stream: mas writes neither.
        if "Unsupported global" in str(exc) or path.read_bytes()[:1] == b"\x80":
            raise UnsafeFileError(
                f"{path} holds objects that would run code when loaded (refused: nothing ran); mas never "
                "writes such files, so someone with write access to this store put it there: remove it"
            ) from None
        raise StoreError(f"{path} is not a readable {kind} file (UnpicklingError); {fix}") from None
    except Exception as exc:  # a truncated, crafted or foreign file: torch raises many kinds
        raise StoreError(f"{path} is not a readable {kind} file ({type(exc).__name__}); {fix}") from None


def load_checked(path: Path, expected_format: str, kind: str, fix: str, keys: dict[str, type]) -> dict:
    """A torch file written by mas: a dict whose `format` is expected_format and whose `keys`
    hold values of the given types; anything else is one line ending with `fix`."""
    payload = load_torch(path, kind, fix)
    if not isinstance(payload, dict) or payload.get("format") != expected_format:
        raise StoreError(f"{path} is not a mas {kind} file (expected format {expected_format}); {fix}")
    for key, kind_of in keys.items():
        if not isinstance(payload.get(key), kind_of):
            raise StoreError(f"{path} lacks a valid `{key}`; {fix}")
    return payload
