"""The frozen models an alignment reads: found in the model store, trained on demand when
missing, checked (format, criterion) and loaded with every parameter frozen."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from mas_cli import store
from mas_cli.align.specs import ModelSpec
from mas_cli.config import ConfigError
from mas_cli.console import console
from mas_cli.models import SequenceModel, build_model
from tasks import Task, task_from_config


@dataclass
class FrozenModel:
    spec: ModelSpec
    entry: Path
    model: SequenceModel  # eval mode, requires_grad False
    task: Task  # the task the model was trained on (its own vocabulary and causal model)
    metrics: dict  # the store entry's metrics.json, including the training fingerprint


def train_command(spec: ModelSpec) -> str:
    return f"mas train task={spec.task} arch={spec.arch} seed={spec.seed}"


def ensure_trained(
    specs: list[ModelSpec], root: str | Path, auto_train: bool, train: Callable[[ModelSpec], None]
) -> list[Path]:
    """The store entry of every spec, training the missing ones with `train` (in order)."""
    entries = [store.model_dir(root, s.task, s.arch, s.seed) for s in specs]
    missing = [s for s, e in zip(specs, entries) if not store.is_complete(e)]
    if missing and not auto_train:
        raise ConfigError(
            f"{missing[0].label} is not in the model store under {root}; run `{train_command(missing[0])}` "
            "first, or drop auto_train=false"
        )
    for spec in missing:  # specs are unique (plan_alignment refuses repeats)
        console.print(f"[bold]{spec.label}[/] is not in the model store: training it ({train_command(spec)})")
        train(spec)
    return entries


def load_frozen(spec: ModelSpec, entry: Path, device: torch.device, allow_undertrained: bool) -> FrozenModel:
    payload = store.load_model_file(entry / "model.pt")
    metrics = store.read_metrics(entry)
    if not metrics.get("trained_to_criterion") and not allow_undertrained:
        raise ConfigError(
            f"{spec.label} did not reach its training criterion (val task acc {metrics.get('val_task_acc')}); "
            f"retrain it with a larger budget (`{train_command(spec)} budget=paper force=true`) "
            "or add allow_undertrained=true"
        )
    try:
        if payload["arch"] != spec.arch:
            raise ValueError(f"holds a {payload['arch']}")
        model = build_model(payload["arch"], len(payload["vocab"]), payload["config"])
        model.load_state_dict(payload["state_dict"])
        task = task_from_config(payload["task"])
    except (KeyError, TypeError, RuntimeError, ValueError) as exc:
        raise store.StoreError(
            f"{entry / 'model.pt'} does not hold a usable {spec.arch} model ({type(exc).__name__}); "
            f"retrain it with `{train_command(spec)} force=true`"
        ) from None
    model.eval().requires_grad_(False).to(device)
    return FrozenModel(spec, entry, model, task, metrics)
