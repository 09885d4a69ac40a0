"""Every random stream a run draws, derived from its seed in this one place.

A stream is numpy's generator over the entropy [seed, *ids, salt]: the ids say whose stream it
is (a model, a direction, an epoch) and the salt which kind, so no two streams of a run repeat
each other. The layouts are fixed: stored results were drawn with them, and changing one
changes every number it feeds. Model and alignment initialisation use torch's generator seeded
with the seed itself (`torch_generator`, `seed_torch`).

    stream                        entropy                          drawn by
    training batches              [seed, 0]                        training.py
    training validation set       [seed, 1]                        training.py
    held-out counts set           [seed, 2]                        training.py
    similarity stimuli and rows   [seed, 6]                        correlative/run.py
    counterfactual items          [seed, s, t, split(, block)]     alignment/directions.py
    latent bank of target t       [seed, t, 77]                    alignment/directions.py
    a fitted map's fresh items    [seed, s, t, 5]                  alignment/fitted.py
    batch order, epoch e          [seed, direction, e, 7]          alignment/fit.py
    normalisation of model i      [seed, i, 99]                    alignment/scoring.py
"""

from __future__ import annotations

import numpy as np


def _stream(*entropy: int) -> np.random.Generator:
    return np.random.default_rng([int(x) for x in entropy])


def training_batches(seed: int) -> np.random.Generator:
    return _stream(seed, 0)


def training_validation(seed: int) -> np.random.Generator:
    return _stream(seed, 1)


def training_heldout(seed: int) -> np.random.Generator:
    return _stream(seed, 2)


def similarity(seed: int) -> np.random.Generator:
    return _stream(seed, 6)


def counterfactual_items(seed: int, source: int, target: int, split: int, block: int) -> np.random.Generator:
    """split 0 = training items, 1 = validation items; block j of a multi-variable swap (the
    first block keeps the one-variable layout, so adding a block leaves the first one's items)."""
    return _stream(seed, source, target, split, *([block] if block else []))


def latent_bank(seed: int, target: int) -> np.random.Generator:
    return _stream(seed, target, 77)


def fitted_items(seed: int, source: int, target: int) -> np.random.Generator:
    return _stream(seed, source, target, 5)


def batch_order(seed: int, direction: int, epoch: int) -> np.random.Generator:
    return _stream(seed, direction, epoch, 7)


def normalisation(seed: int, model: int) -> np.random.Generator:
    return _stream(seed, model, 99)


def torch_generator(seed: int):
    """The alignment functions' initial rotations, drawn in model order from one torch.Generator."""
    import torch  # here, so that planning and the config checks never import torch

    return torch.Generator().manual_seed(int(seed))


def seed_torch(seed: int) -> None:
    """A fresh model's initial weights (torch's global generator, as nn layers draw from it)."""
    import torch

    torch.manual_seed(int(seed))
