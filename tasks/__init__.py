"""Numeric tasks, their causal models and counterfactuals (docs/METHODS.md § Tasks–§3). No torch in here."""

from __future__ import annotations

from collections.abc import Mapping

from .arithmetic import ArithmeticTask
from .base import Sequences, Split, Task, targets_of, trial_correct
from .counterfactual import Counterfactuals, make_counterfactuals
from .counting import CountingTask

__all__ = [
    "ArithmeticTask",
    "CountingTask",
    "Counterfactuals",
    "Sequences",
    "Split",
    "Task",
    "make_counterfactuals",
    "targets_of",
    "task_from_config",
    "trial_correct",
]


def task_from_config(cfg: Mapping) -> Task:
    """Build a task from a composed `task` config group (see conf/task/*.yaml)."""
    if cfg["kind"] == "arithmetic":
        return ArithmeticTask(
            name=cfg["name"],
            min_ops=cfg["min_ops"],
            max_ops=cfg["max_ops"],
            max_value=cfg["max_value"],
            held_out=tuple(cfg["held_out"]),
        )
    return CountingTask(
        name=cfg["name"],
        variant=cfg["variant"],
        void_p=cfg["void_p"],
        transform=cfg["transform"],
        min_count=cfg["min_count"],
        max_count=cfg["max_count"],
        held_out=tuple(cfg["held_out"]),
        default_causal_model=cfg["causal_model"],
    )
