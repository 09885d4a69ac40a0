"""`mas align`: fit MAS (or DAS, one model) alignment functions and print the m × m IIA table."""

from __future__ import annotations

import hydra
import pandas as pd
from hydra.errors import HydraException
from omegaconf import DictConfig
from rich.table import Table

from mas_cli.align.run import AlignResult, align
from mas_cli.align.specs import ModelSpec
from mas_cli.align.swaps import variables_of
from mas_cli.commands.common import compose_config, configure_runtime, inherit_runtime, reports_bad_input
from mas_cli.config import ConfigError, validate_align, validate_train
from mas_cli.console import console
from mas_cli.training import train_model
from tasks import task_from_config


@hydra.main(version_base="1.3", config_path="pkg://mas_cli.conf", config_name="align")
@reports_bad_input
def main(cfg: DictConfig) -> dict:
    validate_align(cfg)
    configure_runtime(cfg)
    models = ModelsOnDemand(cfg)
    result = align(cfg, train=models.train, precheck=models.describe)
    return print_summary(result)


class ModelsOnDemand:
    """Training configs for models the store lacks: the `train` config for the spec's task, arch
    and seed, with this run's budget, paths and device (and any `train_overrides`)."""

    def __init__(self, cfg: DictConfig, train_overrides=None):
        self.cfg = cfg
        self.train_overrides = list(cfg.train_overrides if train_overrides is None else train_overrides)
        self._train_configs: dict[ModelSpec, DictConfig] = {}  # Hydra composition is slow: once per model

    def train_config(self, spec: ModelSpec) -> DictConfig:
        if spec not in self._train_configs:
            overrides = [f"task={spec.task}", f"arch={spec.arch}", f"seed={spec.seed}", *self.train_overrides]
            try:
                train_cfg = compose_config("train", overrides)
            except HydraException as exc:
                first_line = str(exc).splitlines()[0]
                raise ConfigError(f"cannot compose the training config of {spec.label} ({first_line})") from None
            inherit_runtime(self.cfg, train_cfg)
            validate_train(train_cfg)
            self._train_configs[spec] = train_cfg
        return self._train_configs[spec]

    def describe(self, spec: ModelSpec, causal_model: str | None = None) -> tuple[str, int, tuple[str, ...]]:
        """What check_models needs about a model before it exists: label, site width, and the
        variables of `causal_model` (default: this run's; None: the task's own)."""
        causal_model = causal_model or self.cfg.get("causal_model")
        train_cfg = self.train_config(spec)
        variables = variables_of(task_from_config(train_cfg.task), causal_model, spec.label)
        return spec.label, train_cfg.arch.width, variables

    def train(self, spec: ModelSpec) -> None:
        result = train_model(self.train_config(spec))
        if not result.metrics["trained_to_criterion"]:
            console.print(f"[yellow]warning:[/] {spec.label} did not reach the training criterion")


def iia_matrix(result: AlignResult) -> list[list[float | None]]:
    """Validation IIA, rows = source, columns = target (None where a direction was not trained)."""
    return matrix_of(result.rows, [s.label for s in result.specs])


def matrix_of(rows: pd.DataFrame, labels: list[str]) -> list[list[float | None]]:
    """The m × m validation IIA of the given models; a direction fitted in several runs (pairwise
    fits share within-model directions) shows the mean."""
    val = rows[rows.split == "val"]
    found = val.groupby(["src", "trg"]).iia.mean().to_dict()
    return [[found.get((s, t)) for t in labels] for s in labels]


def print_iia_table(rows: pd.DataFrame, labels: list[str]) -> dict:
    """The m × m table, then the mean within- and cross-model IIA."""
    matrix = matrix_of(rows, labels)
    first = rows.iloc[0]
    title = f"{first.method.upper()} validation IIA (swap {first.variable}, site {first.site}, k {first.k})"
    table = Table(title=title)
    table.add_column("source \\ target")
    for label in labels:
        table.add_column(label, justify="right")
    for label, row in zip(labels, matrix):
        table.add_row(label, *("—" if v is None else f"{v:.3f}" for v in row))
    console.print(table)
    m = len(labels)
    within = [matrix[i][i] for i in range(m) if matrix[i][i] is not None]
    cross = [matrix[i][j] for i in range(m) for j in range(m) if i != j and matrix[i][j] is not None]
    summary = {
        "within_iia": sum(within) / len(within) if within else None,
        "cross_iia": sum(cross) / len(cross) if cross else None,
    }
    for key, value in summary.items():
        console.print(f"mean {key.replace('_iia', '')}-model IIA: " + ("n/a" if value is None else f"{value:.3f}"))
    return summary


def print_summary(result: AlignResult) -> dict:
    """One table per swapped variable (and the null block); the summary of the first."""
    labels = [s.label for s in result.specs]
    variables = list(dict.fromkeys(result.rows.variable))
    summary = print_iia_table(result.rows[result.rows.variable == variables[0]], labels)
    for variable in variables[1:]:
        print_iia_table(result.rows[result.rows.variable == variable], labels)
    first = result.rows.iloc[0]
    reused = " (earlier run, reused)" if result.reused else ""
    console.print(f"steps {first.steps}, stopped: {first.stop}{reused}\nresults: {result.run_dir}")
    return summary


if __name__ == "__main__":
    main()
