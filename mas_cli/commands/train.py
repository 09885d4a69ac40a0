"""`mas train`: train one task model (or a sweep of them with -m) into the model store."""

from __future__ import annotations

from omegaconf import DictConfig

from mas_cli.commands.common import command, configure_runtime
from mas_cli.config import validate_train


@command("train", check=validate_train)
def main(cfg: DictConfig) -> dict:
    from mas_cli.console.tables import print_training
    from mas_cli.training import train_model

    configure_runtime(cfg)
    result = train_model(cfg)
    title = f"{cfg.task.name}/{cfg.arch.name}/{cfg.seed}"
    print_training(title, result.metrics, result.entry, result.reused)
    return result.metrics


if __name__ == "__main__":
    main()
