"""What every command does around its work: runtime set-up and the bad-input contract."""

from __future__ import annotations

import functools

import torch
from omegaconf import DictConfig

from mas_cli.config import ConfigError
from mas_cli.console import fail
from mas_cli.store import StoreError


def configure_runtime(cfg: DictConfig) -> None:
    # Deliberate thread count: torch's default oversubscribes small CPUs and slows every step.
    torch.set_num_threads(cfg.threads)


def reports_bad_input(task_function):
    """Turn ConfigError/StoreError into the one-line error and exit status 2."""

    @functools.wraps(task_function)
    def wrapper(cfg: DictConfig):
        try:
            return task_function(cfg)
        except (ConfigError, StoreError) as exc:
            fail(str(exc))

    return wrapper
