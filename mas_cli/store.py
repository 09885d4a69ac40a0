"""Where things live on disk, and how they get there safely.

Every file is written atomically (temporary file in the same folder, then `os.replace`), so a
reader sees either the old complete file or the new complete file, never a torn one. A model
store entry is complete once its `metrics.json` exists, which is written last.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout
from omegaconf import DictConfig, OmegaConf

from mas_cli.errors import StoreError

MODEL_FORMAT = "mas-model/1"
ENTRY_FILES = ("model.pt", "config.yaml", "curve.csv", "metrics.json")  # metrics.json last


def model_dir(root: str | Path, task: str, arch: str, seed: int) -> Path:
    return Path(root) / "models" / task / arch / f"seed{seed}"


def _atomic(path: Path, write: Callable[[str], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def exclusive(place: Path, waiting: Callable[[], None]):
    """Hold `<place>.lock` while a result is checked and (re)written: two jobs that need the same
    model (or alignment) never both make it; the second waits, then finds it complete and reuses
    it. `waiting` is called once if another job holds the lock."""
    place.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(f"{place}.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        waiting()
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def write_text(path: Path, text: str) -> None:
    def write(tmp: str) -> None:
        Path(tmp).write_text(text)

    _atomic(path, write)


def write_bytes(path: Path, data: bytes) -> None:
    def write(tmp: str) -> None:
        Path(tmp).write_bytes(data)

    _atomic(path, write)


def write_json(path: Path, data: dict) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def save_torch(path: Path, obj) -> None:
    import torch

    _atomic(path, lambda tmp: torch.save(obj, tmp))


def is_complete(entry: Path) -> bool:
    return all((entry / name).is_file() for name in ENTRY_FILES)


def fingerprint(cfg: DictConfig) -> dict:
    """The settings that define a trained model; a store entry is reused only if they match.
    (`budget.align` configures `mas align`, not the model, so it is left out.)"""
    groups = {k: OmegaConf.to_container(cfg[k], resolve=True) for k in ("task", "arch", "budget")}
    groups["budget"].pop("align", None)
    return {**groups, "seed": cfg.seed}


def read_json(path: Path, fix: str) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        raise StoreError(f"{path} is unreadable; {fix}") from None


def read_metrics(entry: Path) -> dict:
    return read_json(entry / "metrics.json", "retrain the entry with `mas train ... force=true`")


def read_fingerprint(entry: Path) -> dict:
    return read_metrics(entry)["fingerprint"]


def load_torch(path: Path, kind: str, fix: str):
    """A torch file's contents, read without running any code: torch's restricted unpickler
    (weights_only=True) accepts only tensors and plain containers, so a crafted file in a shared
    store is refused instead of executed. A missing, truncated or foreign file raises StoreError
    ending with `fix`."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise StoreError(f"{path} does not exist; {fix}") from None
    except Exception as exc:  # a truncated, crafted or foreign file: torch raises many kinds
        raise StoreError(f"{path} is not a readable {kind} file ({type(exc).__name__}); {fix}") from None


def load_checked(path: Path, expected_format: str, kind: str, fix: str) -> dict:
    """A torch file written by mas (a dict whose `format` is expected_format), checked."""
    payload = load_torch(path, kind, fix)
    if not isinstance(payload, dict) or payload.get("format") != expected_format:
        raise StoreError(f"{path} is not a mas {kind} file (expected format {expected_format}); {fix}")
    return payload


def load_model_file(path: Path) -> dict:
    """The contents of a model.pt, checked."""
    return load_checked(path, MODEL_FORMAT, "model", "train it with `mas train ... force=true`")
