"""What an alignment swaps: the variables (one k-block each, and the null block), cross-task
variable maps, and the variables a causal-model hypothesis offers."""

from __future__ import annotations

from omegaconf import DictConfig

from mas_cli.config import ConfigError


def swap_map(cfg: DictConfig) -> dict[str, str]:
    """Tasks whose models swap another variable than `swap` (cross-task alignment)."""
    return {task: v for task, v in cfg.swap_by_task.items() if v is not None}


def swapped(cfg: DictConfig) -> list[str]:
    """The swapped variables, one k-block each, in order (`swap=count` or `swap=[count,phase]`)."""
    return [cfg.swap] if isinstance(cfg.swap, str) else list(cfg.swap)


def variable_blocks(cfg: DictConfig, smallest: int) -> list[tuple[str, int, int]]:
    """(variable, first, last + 1) alignment coordinates of each block: variable j holds
    [j·k, (j+1)·k); the null block ("none": label = the unchanged base) the rest up to `smallest`."""
    blocks = [(v, j * cfg.k, (j + 1) * cfg.k) for j, v in enumerate(swapped(cfg))]
    if cfg.null_block:
        blocks.append(("none", blocks[-1][2], smallest))
    return blocks


def variables_of(task, causal_model: str | None, label: str) -> tuple[str, ...]:
    """The swappable variables of the hypothesis `causal_model` (None: the task's own) for a task."""
    try:
        return task.causal_model(causal_model).variables
    except ValueError as exc:
        raise ConfigError(f"causal_model={causal_model} does not fit {label}: {exc}") from None
