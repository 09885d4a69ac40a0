"""Where results live on disk and how they get there safely (files.py: atomic, flushed writes
and loads that run no code; entries.py: results that are complete or absent, checksummed).

    <root>/models/<task>/<arch>/seed<s>          a trained model (training.py)
    <root>/alignments/<settings>/<models>        an alignment run (alignment/run.py)
    <root>/similarity/<settings>/<models>        RSA and CKA of a pair (correlative/run.py)
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from mas_cli.errors import StoreError
from mas_cli.store.entries import Entry, exclusive
from mas_cli.store.files import (
    crash_point,
    load_checked,
    load_torch,
    read_json,
    save_torch,
    write_bytes,
    write_json,
    write_text,
)

__all__ = [
    "Entry",
    "crash_point",
    "exclusive",
    "fingerprint",
    "load_checked",
    "load_model_file",
    "load_torch",
    "model_dir",
    "model_entry",
    "read_json",
    "read_metrics",
    "weights_digest",
    "save_torch",
    "write_bytes",
    "write_json",
    "write_text",
]

MODEL_FORMAT = "mas-model/1"
MODEL_FILES = ["model.pt", "config.yaml", "curve.csv", "metrics.json"]
RETRAIN = "retrain it with `mas train ... force=true`"
# What metrics.json must hold for an entry to be used (and of which type).
METRICS = {"trained_to_criterion": bool, "val_task_acc": float, "steps": int, "fingerprint": dict}


def model_dir(root: str | Path, task: str, arch: str, seed: int) -> Path:
    return Path(root) / "models" / task / arch / f"seed{seed}"


def model_entry(root: str | Path, task: str, arch: str, seed: int) -> Entry:
    return Entry(model_dir(root, task, arch, seed), redo="retrain with `mas train ... force=true`", root=root)


def fingerprint(cfg: DictConfig) -> dict:
    """The settings that define a trained model; a store entry is reused only if they match.
    (`budget.align` configures `mas align`, not the model, so it is left out.)"""
    groups = {k: OmegaConf.to_container(cfg[k], resolve=True) for k in ("task", "arch", "budget")}
    groups["budget"].pop("align", None)
    return {**groups, "seed": cfg.seed}


def weights_digest(state_dict: dict) -> str:
    """SHA-256 of a model's weights (names, dtypes, shapes and bytes, in name order): what a
    result was computed from. Results record it, so a model retrained or replaced since (even by
    ~1e-7, as another thread count gives) is noticed; a retraining that gives the very same
    weights keeps them valid."""
    import hashlib

    import torch

    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}:{tensor.dtype}:{tuple(state_dict[name].shape)};".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes())  # any dtype, bfloat16 included
    return digest.hexdigest()


def read_metrics(folder: Path) -> dict:
    """A model's metrics.json, checked: the keys the commands use, of the right types."""
    metrics = read_json(folder / "metrics.json", RETRAIN)
    for key, kind in METRICS.items():
        value = metrics.get(key)
        if not isinstance(value, kind) and not (kind is float and isinstance(value, int)):
            raise StoreError(f"{folder / 'metrics.json'} lacks a valid `{key}`; {RETRAIN}")
    return metrics


def load_model_file(path: Path) -> dict:
    """The contents of a model.pt, checked."""
    keys = {"arch": str, "config": dict, "state_dict": dict, "task": dict, "vocab": list}
    return load_checked(path, MODEL_FORMAT, "model", RETRAIN, keys)
