"""Every architecture reaches the criterion on the quick budget (minutes each: marked slow)."""

from __future__ import annotations

import pytest

from mas_cli.training import train_model
from tests.conftest import compose_config


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["gru", "lstm", "transformer"])
def test_quick_budget_reaches_the_criterion(tmp_path, arch):
    cfg = compose_config("train", [f"arch={arch}", "task=count", f"paths.root={tmp_path}"])
    metrics = train_model(cfg).metrics
    assert metrics["trained_to_criterion"], metrics
    assert metrics["val_task_acc"] >= 0.999 and metrics["val_size"] >= 1000
