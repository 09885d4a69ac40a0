"""What every command does around its work: runtime set-up and the bad-input contract."""

from __future__ import annotations

import functools

import torch
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

from mas_cli.config import ConfigError
from mas_cli.console import fail
from mas_cli.store import StoreError


def configure_runtime(cfg: DictConfig) -> None:
    # Deliberate thread count: torch's default oversubscribes small CPUs and slows every step.
    torch.set_num_threads(cfg.threads)


def inherit_runtime(parent: DictConfig, child: DictConfig) -> None:
    """A config composed inside another command (a model trained for `mas align`, each job of
    `mas pipeline`) runs with the parent's budget, output root, device and threads."""
    for key in ("budget", "paths", "device", "threads"):
        value = parent[key]
        child[key] = OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def compose_config(config_name: str, overrides: list[str]) -> DictConfig:
    """Compose one of our primary configs (e.g. `train` from inside `mas align`), inside a running
    Hydra app or on its own."""
    if GlobalHydra.instance().is_initialized():
        return compose(config_name=config_name, overrides=overrides)
    with initialize_config_module(config_module="mas_cli.conf", version_base="1.3"):
        return compose(config_name=config_name, overrides=overrides)


def reports_bad_input(task_function):
    """Turn ConfigError/StoreError into the one-line error and exit status 2."""

    @functools.wraps(task_function)
    def wrapper(cfg: DictConfig):
        try:
            return task_function(cfg)
        except (ConfigError, StoreError) as exc:
            fail(str(exc))

    return wrapper
