"""The alignment fit's loop: a step's gradient (each target backpropagated on its own) equals
the joint loss's; the stopping rules, driven by a scripted validation loss: each plateau of
`patience` validations without a `min_delta` improvement lowers the learning rate by `lr_factor`,
`lr_drops` times; the next plateau stops the fit; a resumed fit carries on where it stopped."""

from __future__ import annotations

import pytest
import torch

from mas_cli.alignment.directions import build_directions
from mas_cli.alignment.fit import Aligner
from mas_cli.alignment.scoring import Scores
from mas_cli.alignment.swaps import Block
from mas_cli.alignment.targets import per_part_loss
from tests.helpers import align_cfg, random_model

pytestmark = pytest.mark.fast  # pure computation: the tier a developer runs while working


@pytest.mark.parametrize("align_fn", ["orthogonal", "linear"])
def test_a_step_has_the_gradient_of_the_joint_loss(align_fn):
    """The joint loss written out: every direction's mean loss, averaged, one backward."""
    cfg = align_cfg(k=4)
    cfg.align_fn = align_fn
    models = [random_model("gru", seed=1), random_model("lstm", seed=2)]
    pairs = [(0, 0), (0, 1), (1, 0), (1, 1)]
    directions = build_directions(models, pairs, "hidden", [Block("count", 0, 4)], cfg.budget.align, 0, "cpu")
    aligner = Aligner(cfg, models, directions, "cpu")
    rows = aligner.aligned_rows()
    joint = sum(
        per_part_loss(aligner.target_step(d.target, [(d, aligner._train_batch(i, d))], rows), 1).sum()
        for i, d in enumerate(directions)
    )
    (joint / len(directions)).backward()
    expected = [p.grad.clone() for p in aligner.functions.parameters()]

    aligner.optimizer.step = lambda: None  # keep the parameters: compare the gradients only
    loss = aligner.train_step()
    assert loss == pytest.approx(joint.item() / len(directions), rel=1e-6)
    for want, p in zip(expected, aligner.functions.parameters()):
        torch.testing.assert_close(p.grad, want, rtol=1e-5, atol=1e-7)


# Validation losses: better, better, flat, flat (plateau 1), better, flat, flat (plateau 2), ...
LOSSES = [1.0, 0.8, 0.8, 0.7995, 0.5, 0.5, 0.5, 0.3, 0.3, 0.3, 0.3]


def scripted(lr_drops: int, patience: int = 2, losses=LOSSES) -> Aligner:
    """An aligner whose evaluation returns the next loss of `losses` (IIA far from the target)."""
    cfg = align_cfg(k=4, patience=patience, min_delta=0.001, lr=0.01, lr_factor=0.5, lr_drops=lr_drops)
    model = random_model("gru")
    directions = build_directions([model], [(0, 0)], "hidden", [Block("count", 0, 4)], cfg.budget.align, 0, "cpu")
    aligner = Aligner(cfg, [model], directions, "cpu")
    script = iter(losses)
    calls = iter(range(10**6))

    def evaluate(d, data, limit=None, rows=None, interchange=None):
        # validate() scores validation first, then training items: one loss per validation
        return Scores(0.5, 0.5, next(script) if next(calls) % 2 == 0 else 0.0, len(data))

    aligner.evaluate = evaluate
    return aligner


def run_validations(aligner: Aligner) -> tuple[list[float], int]:
    """(learning rate after each validation, the validation that stopped the fit: 1-based)."""
    rates = []
    for n in range(1, len(LOSSES) + 1):
        aligner.step = n
        stop = aligner.validate(train_loss=0.0, elapsed=0.0)
        rates.append(aligner.optimizer.param_groups[0]["lr"])
        if stop:
            return rates, n
    return rates, 0


def test_without_drops_the_first_plateau_stops_the_fit():
    aligner = scripted(lr_drops=0)
    rates, stopped = run_validations(aligner)
    # 0.7995 is not a min_delta (0.001) improvement on 0.8: validations 3 and 4 are the plateau
    assert stopped == 4 and rates[:3] == [0.01, 0.01, 0.01]
    assert aligner.stop_reason == "validation loss flat for 2 validations"


def test_each_plateau_lowers_the_rate_until_the_last_stops_the_fit():
    aligner = scripted(lr_drops=2)
    rates, stopped = run_validations(aligner)
    assert rates[:10] == [0.01, 0.01, 0.01, 0.005, 0.005, 0.005, 0.0025, 0.0025, 0.0025, 0.00125]
    assert stopped == 10
    assert aligner.stop_reason == "validation loss flat for 2 validations (learning rate lowered 2×)"
    assert [row["lr"] for row in aligner.curve if row["split"] == "val"][:5] == [0.01, 0.01, 0.01, 0.01, 0.005]


def test_a_resumed_fit_keeps_its_rate_and_plateau_count(tmp_path):
    fingerprint = {"test": 1}
    first = scripted(lr_drops=2)
    for n in range(1, 6):  # one plateau behind, the rate halved, one flat validation since
        first.step = n
        assert not first.validate(train_loss=0.0, elapsed=0.0)
    first._save_checkpoint(tmp_path / "checkpoint.pt", fingerprint, 0.0)

    resumed = scripted(lr_drops=2, losses=LOSSES[5:])
    resumed._resume(tmp_path / "checkpoint.pt", fingerprint)
    assert resumed.step == 5 and resumed.optimizer.param_groups[0]["lr"] == pytest.approx(0.005)
    stopped = None
    for n in range(6, len(LOSSES) + 1):
        resumed.step = n
        if resumed.validate(train_loss=0.0, elapsed=0.0):
            stopped = n
            break
    assert stopped == 10  # as in the uninterrupted fit
