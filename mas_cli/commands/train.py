"""`mas train`: train one task model (or a sweep of them with -m) into the model store."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig
from rich.table import Table

from mas_cli.commands.common import configure_runtime, reports_bad_input
from mas_cli.config import validate_train
from mas_cli.console import console
from mas_cli.training import TrainResult, train_model


@hydra.main(version_base="1.3", config_path="pkg://mas_cli.conf", config_name="train")
@reports_bad_input
def main(cfg: DictConfig) -> dict:
    validate_train(cfg)
    configure_runtime(cfg)
    result = train_model(cfg)
    print_summary(cfg, result)
    return result.metrics


def print_summary(cfg: DictConfig, result: TrainResult) -> None:
    m = result.metrics
    table = Table(title=f"{cfg.task.name} / {cfg.arch.name} / seed {cfg.seed}", show_header=False)
    heldout = "n/a (no held-out counts)" if m["heldout_task_acc"] is None else f"{m['heldout_task_acc']:.4f}"
    rows = [
        ("trained_to_criterion", f"{m['trained_to_criterion']} (criterion {m['criterion']})"),
        ("val_task_acc", f"{m['val_task_acc']:.4f} over {m['val_size']} sequences"),
        ("heldout_task_acc", heldout),
        ("steps", str(m["steps"])),
        ("wall_s", f"{m['wall_s']:.1f}" + (" (earlier run, reused)" if result.reused else "")),
        ("model store entry", str(result.entry)),
    ]
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)


if __name__ == "__main__":
    main()
