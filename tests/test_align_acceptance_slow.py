"""The issue's acceptance run: `mas align a=gru b=lstm` on the quick budget, models trained on
demand (minutes: marked slow)."""

from __future__ import annotations

import pytest

from mas_cli.alignment.job import align
from mas_cli.alignment.settings import validate_align
from mas_cli.results import matrix_of
from tests.conftest import compose_config


@pytest.mark.slow
def test_quick_budget_gru_lstm_alignment_recovers_the_count_within_each_model(tmp_path):
    cfg = compose_config("align", ["a=gru", "b=lstm", f"paths.root={tmp_path}"])
    validate_align(cfg)
    result = align(cfg)
    matrix = matrix_of(result.rows, [s.label for s in result.specs])
    assert matrix[0][0] >= 0.9 and matrix[1][1] >= 0.9, matrix  # within-model (DAS) directions
    assert min(matrix[0][1], matrix[1][0]) >= 0.5, matrix  # cross-model: well above chance


@pytest.mark.slow
def test_after_training_a_null_block_swap_leaves_behaviour_unchanged(tmp_path):
    cfg = compose_config("align", ["a=gru", "swap=[count,phase]", "null_block=true", f"paths.root={tmp_path}"])
    validate_align(cfg)
    result = align(cfg)
    val = result.rows[result.rows.split == "val"].set_index("variable").iia
    assert val["null_block"] >= 0.95, val  # the remainder of the space holds neither variable
    assert val["count"] >= 0.9, val
