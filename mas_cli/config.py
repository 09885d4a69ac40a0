"""Validation of composed configs. Every bad-input message lives here: one line that says what
to change. Commands call these before writing anything."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from omegaconf import DictConfig

from mas_cli.models import ARCHITECTURES
from tasks.causal import TRANSFORMS
from tasks.counting import CAUSAL_MODELS, VARIANTS


class ConfigError(ValueError):
    """Bad user input; the message is shown as-is and the command exits with status 2."""


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _positive_int(value, key: str) -> None:
    _require(isinstance(value, int) and value > 0, f"{key} must be a positive integer, got {value!r}")


def validate_task(task: DictConfig) -> None:
    if task.kind == "arithmetic":
        _positive_int(task.max_value, "task.max_value")
        low, high = task.min_ops, task.max_ops
        names = "task.min_ops/task.max_ops"
        _positive_int(low, "task.min_ops")
        _require(
            high <= task.max_value,
            f"task.max_ops ({high}) must not exceed task.max_value ({task.max_value}): k is written as a number token",
        )
    else:
        _require(task.kind == "counting", f"task.kind must be counting or arithmetic, got {task.kind!r}")
        _require(task.variant in VARIANTS, f"task.variant must be one of {', '.join(VARIANTS)}")
        _require(task.transform in TRANSFORMS, f"task.transform must be one of {', '.join(TRANSFORMS)}")
        _require(task.causal_model in CAUSAL_MODELS, f"task.causal_model must be one of {', '.join(CAUSAL_MODELS)}")
        void_p = task.void_p
        _require(
            isinstance(void_p, (int, float)) and 0 <= void_p < 1,
            f"task.void_p must be in [0, 1), got {void_p!r}",
        )
        low, high = task.min_count, task.max_count
        names = "task.min_count/task.max_count"
        _positive_int(low, "task.min_count")
    _require(
        isinstance(high, int) and high >= low,
        f"{names}: the maximum ({high}) must be at least the minimum ({low})",
    )
    held = set(task.held_out)
    _require(held <= set(range(low, high + 1)), f"task.held_out {sorted(held)} must lie within {low}..{high}")
    _require(
        len(held) < high - low + 1,
        f"task.held_out covers every count in {low}..{high}; leave at least one for training",
    )


def validate_arch(arch: DictConfig) -> None:
    _require(arch.name in ARCHITECTURES, f"arch must be one of {', '.join(ARCHITECTURES)}, got {arch.name!r}")
    _positive_int(arch.width, "arch.width")
    if arch.name == "lstm":
        _require(arch.width % 2 == 0, f"arch.width must be even for lstm (h and c are width/2), got {arch.width}")
    if arch.name == "transformer":
        _require(arch.width % 2 == 0, f"arch.width must be even for rotary embeddings, got {arch.width}")
        _require(
            0 < arch.hidden_layer < arch.layers,
            f"arch.hidden_layer must be between 1 and arch.layers - 1 ({arch.layers - 1})",
        )
    _require(0 <= arch.dropout < 1, f"arch.dropout must be in [0, 1), got {arch.dropout}")
    _require(arch.grad_clip >= 0, f"arch.grad_clip must be >= 0 (0 = off), got {arch.grad_clip}")


def validate_budget(budget: DictConfig) -> None:
    for key in ("max_steps", "batch_size", "val_every", "val_size", "heldout_size", "checkpoint_every"):
        _positive_int(budget[key], f"budget.{key}")
    _require(budget.lr > 0, f"budget.lr must be positive, got {budget.lr}")
    _require(0 < budget.criterion <= 1, f"budget.criterion must be in (0, 1], got {budget.criterion}")


def validate_runtime(cfg: DictConfig) -> None:
    _require(cfg.device in ("auto", "cpu", "cuda"), f"device must be auto, cpu or cuda, got {cfg.device!r}")
    if cfg.device == "cuda":
        _require(torch.cuda.is_available(), "device=cuda but no CUDA device is visible; use device=auto or cpu")
    _positive_int(cfg.threads, "threads")
    _require(isinstance(cfg.seed, int) and cfg.seed >= 0, f"seed must be a non-negative integer, got {cfg.seed!r}")
    check_writable(Path(cfg.paths.root))


def check_writable(root: Path) -> None:
    """paths.root must be creatable and writable; checked without leaving anything behind."""
    existing = root
    while not existing.exists():
        existing = existing.parent
    _require(existing.is_dir(), f"paths.root={root}: {existing} is a file, not a folder; choose another paths.root")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError:
        raise ConfigError(f"paths.root={root} is not writable ({existing}); choose a folder you can write to") from None


def validate_train(cfg: DictConfig) -> None:
    validate_task(cfg.task)
    validate_arch(cfg.arch)
    validate_budget(cfg.budget)
    validate_runtime(cfg)
