"""Task accuracy of a model on fixed sequence sets (docs/METHODS.md § Tasks): a trial is correct when every
scored prediction (each response token and the EOS) is right."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mas_cli.models import SequenceModel
from mas_cli.tasks import Task, targets_of


@dataclass
class EvalSet:
    """Sequences with their next-token targets and scored positions, as tensors on a device."""

    tokens: torch.Tensor  # int64 [N, L]
    targets: torch.Tensor  # int64 [N, L]
    scored: torch.Tensor  # bool  [N, L]

    @classmethod
    def draw(cls, task: Task, n: int, rng: np.random.Generator, split, device) -> EvalSet | None:
        if len(task.counts(split)) == 0:
            return None  # e.g. no held-out counts configured
        tokens = task.sample(n, rng, split).tokens
        return cls(
            tokens=torch.from_numpy(tokens).to(device),
            targets=torch.from_numpy(targets_of(tokens)).to(device),
            scored=torch.from_numpy(task.response_mask(tokens)).to(device),
        )


def trial_verdicts(right: torch.Tensor, trial: torch.Tensor, n: int) -> torch.Tensor:
    """bool [n]: trial i is right when every scored prediction p with trial[p] == i is right
    (right: bool [P]). A trial is all-or-nothing (docs/METHODS.md § Tasks); task accuracy and IIA both use this."""
    wrong = torch.zeros(n, device=right.device).index_add_(0, trial, (~right).float())
    return wrong == 0


@torch.no_grad()
def task_accuracy(model: SequenceModel, data: EvalSet, chunk: int = 2000) -> tuple[float, float]:
    """(task accuracy, token accuracy over scored predictions).

    The readout runs only on scored positions (the response phase, ~40 % of a padded batch):
    that is all a verdict needs, and the readout MLP is a third of a forward pass."""
    was_training = model.training
    model.eval()
    trials, tokens_right, tokens_scored = 0, 0, 0
    for start in range(0, len(data.tokens), chunk):
        part = slice(start, start + chunk)
        scored = data.scored[part]
        predictions = model.readout(model.features(data.tokens[part])[scored]).argmax(-1)
        right = predictions == data.targets[part][scored]
        rows = scored.nonzero()[:, 0]  # the trial each scored prediction belongs to
        trials += int(trial_verdicts(right, rows, len(scored)).sum())
        tokens_right += int(right.sum())
        tokens_scored += int(scored.sum())
    model.train(was_training)
    return trials / len(data.tokens), tokens_right / max(tokens_scored, 1)
