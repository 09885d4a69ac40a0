"""An independent oracle for every number `mas align` and `mas train` report (IIA, its chance
level, token accuracy, task accuracy), on real trained models (tests/trained.py).

The oracle is written from first principles, item by item: counterfactuals from the causal
model, the intervened state from the alignment formula written out with full matrices,
A_t⁻¹((1 − M) ⊙ A_t(h_t) + M ⊙ A_s(h_s)), the target's plain forward pass from position 0 with
its site read and replaced by a hook written here (no packing, no suffix-only path, no merged
directions, nothing of the engine's own paths: it works for any architecture that names its
sites), and every trial scored by the one plain all-or-nothing function `tasks.trial_correct`,
as task accuracy is. The engine must agree exactly: the same items are right or wrong.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import mas_cli as mas
from mas_cli.evaluation import EvalSet, task_accuracy
from mas_cli.tasks import targets_of, trial_correct
from tests.oracle import engine_row, oracle, oracle_blocks

CASES = [
    ("mas", 0, 0, 0),
    ("mas", 0, 1, 0),
    ("mas", 1, 0, 0),
    ("mas", 1, 1, 0),
    ("das_transformer", 0, 0, 0),
    ("stitch", 0, 1, 0),
    ("stitch_k4", 0, 1, 0),
    ("blocks", 0, 1, 0),
    ("blocks", 1, 0, 1),
    ("blocks", 1, 1, 2),
    ("embed", 0, 1, 0),
    ("embed", 1, 0, 0),
]


@pytest.mark.parametrize(
    ("name", "source", "target", "block"), CASES, ids=[f"{c[0]}-{c[1]}{c[2]}-b{c[3]}" for c in CASES]
)
def test_the_engine_iia_equals_the_oracle(fits, name, source, target, block):
    fit = fits[name]
    variable = ["count", "phase", "null_block"][block] if name == "blocks" else None
    row = engine_row(fit, source, target, variable)
    found = oracle(fit, source, target, block)
    assert (row.iia, row.tok_acc, row.n) == (found["iia"], found["tok_acc"], found["n"])
    assert row.iia > 0.0  # a trained fit: the comparison is not between two zeros
    unswapped = oracle(fit, source, target, block, intervene=False)
    assert row.iia_none == unswapped["iia"]


def test_the_engine_blocks_equal_the_oracle(fits):
    """Which coordinates each variable (and the null block) owns: whether a stray coordinate
    changes any verdict depends on the trained models, so the layout is checked on its own."""
    from mas_cli.alignment.swaps import variable_blocks

    al = mas.load_alignment(fits["blocks"].run_dir)
    smallest = min(m.at(al.cfg.site).width() for m in al.models)
    found = [(b.variable, b.first, b.stop) for b in variable_blocks(al.cfg, smallest)]
    assert found == oracle_blocks(al.cfg, al.models)


def test_trained_fits_reach_iia_far_above_the_chance_level(fits):
    """The trained check: inside each model, swapping the count moves behaviour as the causal
    model says; doing nothing at all mostly does not."""
    val = fits["mas"].iia[fits["mas"].iia.split == "val"]
    within = val[val.src == val.trg]
    assert (within.iia >= within.iia_none + 0.5).all(), within[["src", "iia", "iia_none"]]


@pytest.mark.parametrize("arch", ["gru", "lstm", "transformer"])
def test_task_accuracy_equals_the_oracle(trained_root, arch):
    """On counts beyond the trained range (up to 12) the models are right on some trials only."""
    loaded = mas.load_model(arch, root=trained_root)
    model, task = loaded.model, loaded.task
    wider = dataclasses.replace(task, max_count=12)
    data = EvalSet.draw(wider, 300, np.random.default_rng(5), "all", "cpu")
    found_task, found_tokens = task_accuracy(model, data)
    tokens = data.tokens
    with torch.no_grad():
        predictions = model(tokens).argmax(-1).numpy()
    mask = wider.response_mask(tokens.numpy())
    right = trial_correct(predictions, tokens.numpy(), mask)
    assert 0 < right.mean() < 1
    assert found_task == right.mean()
    assert found_tokens == (predictions == targets_of(tokens.numpy()))[mask].mean()
