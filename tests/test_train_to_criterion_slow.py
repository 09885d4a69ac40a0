"""Every architecture reaches the criterion on the quick budget, and so does the Arithmetic GRU
(minutes each: marked slow)."""

from __future__ import annotations

import pytest

from mas_cli.training import train_model
from tests.conftest import compose_config


@pytest.mark.slow
@pytest.mark.parametrize(
    ("task", "arch"),
    [("count", "gru"), ("count", "lstm"), ("count", "transformer"), ("arithmetic", "gru")],
)
def test_quick_budget_reaches_the_criterion(tmp_path, task, arch):
    """Arithmetic only gets there with its op-count curriculum (docs/BENCHMARKS.md)."""
    cfg = compose_config("train", [f"arch={arch}", f"task={task}", f"paths.root={tmp_path}"])
    metrics = train_model(cfg).metrics
    assert metrics["trained_to_criterion"], metrics
    assert metrics["val_task_acc"] >= 0.999 and metrics["val_size"] >= 1000
