"""Where results live on disk and how they get there safely (files.py: atomic, flushed writes
and loads that run no code; entries.py: results that are complete or absent, checksummed).

    <root>/models/<task>/<arch>/seed<s>          a trained model (training.py)
    <root>/alignments/<settings>/<models>        an alignment run (alignment/job.py)
    <root>/similarity/<settings>/<models>        RSA and CKA of a pair (correlative/run.py)
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from mas_cli.errors import StoreError
from mas_cli.store import files
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
    "load_weights",
    "model_files",
    "save_model",
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
SAFETENSORS = "model.safetensors"
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
    """The contents of a model.pt, checked: its weights inside it (`state_dict`) or beside it in
    model.safetensors (`weights`, for models whose weights_format says so)."""
    keys = {"arch": str, "config": dict, "task": dict, "vocab": list}
    payload = load_checked(path, MODEL_FORMAT, "model", RETRAIN, keys)
    if not isinstance(payload.get("state_dict"), dict) and payload.get("weights") != SAFETENSORS:
        raise StoreError(f"{path} lacks a valid `state_dict`; {RETRAIN}")
    return payload


def model_files(model) -> list[str]:
    """What a model's store entry holds: MODEL_FILES, and model.safetensors for a model whose
    weights are stored that way (HuggingFace models: the ecosystem's format, nothing to unpickle)."""
    return [*MODEL_FILES, SAFETENSORS] if getattr(model, "weights_format", "pt") == "safetensors" else MODEL_FILES


def save_model(folder: Path, payload: dict, model) -> None:
    """model.pt (format, arch, config, task, vocabulary, metrics; the weights too unless they go
    to model.safetensors beside it), each file written atomically."""
    if SAFETENSORS in model_files(model):
        from safetensors.torch import save_model as save_safetensors  # tied weights stored once

        files.atomic(folder / SAFETENSORS, lambda tmp: save_safetensors(model, tmp))
        save_torch(folder / "model.pt", {**payload, "weights": SAFETENSORS})
        return
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    save_torch(folder / "model.pt", {**payload, "state_dict": state})


def load_weights(folder: Path, payload: dict, model) -> None:
    """Load a stored model's weights into `model` (built from its payload): from model.pt or,
    without running any code either, from model.safetensors."""
    if payload.get("weights") == SAFETENSORS:
        from safetensors.torch import load_model as load_safetensors

        path = folder / SAFETENSORS
        try:
            load_safetensors(model, path, strict=True, device="cpu")
        except Exception as exc:  # a truncated or foreign file: safetensors raises several kinds
            raise StoreError(f"{path} is not a readable model file ({type(exc).__name__}); {RETRAIN}") from None
        return
    model.load_state_dict(payload["state_dict"])
