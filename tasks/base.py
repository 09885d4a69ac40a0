"""What every task provides: seeded sequence batches, the positions that score a trial, the
positions where an intervention may happen, and its causal models."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from .vocab import PAD, Vocab

# Which target quantities a batch draws from: the training counts (held-out ones removed),
# only the held-out counts (generalisation), or every count (alignment data, docs/METHODS.md § Tasks).
Split = Literal["train", "heldout", "all"]


@dataclass
class Sequences:
    """A batch of token sequences, right-padded with PAD.

    tokens:   int64 [N, L], L = the longest sequence in the batch
    lengths:  int64 [N], number of non-PAD tokens (BOS..EOS inclusive)
    quantity: int64 [N], the exogenous quantity drawn for each sequence (n, or the op count k)
    """

    tokens: np.ndarray
    lengths: np.ndarray
    quantity: np.ndarray

    def __len__(self) -> int:
        return len(self.tokens)


class Task(Protocol):
    name: str
    vocab: Vocab
    max_length: int  # longest natural sequence the task can produce (void tokens aside)

    def counts(self, split: Split) -> np.ndarray: ...

    def sample(self, n: int, rng: np.random.Generator, split: Split = "train", up_to: int | None = None) -> Sequences:
        """n sequences; `up_to` caps the quantity (count n, op count k) for a curriculum."""
        ...

    def response_mask(self, tokens: np.ndarray) -> np.ndarray:
        """bool [N, L]: True where the prediction made at position p (of token p+1) is part of
        the trial verdict (docs/METHODS.md § Tasks: each response token and the EOS)."""
        ...

    def eligible_positions(self, tokens: np.ndarray, variable: str | None = None) -> np.ndarray:
        """bool [N, L]: positions an interchange intervention on `variable` may target
        (docs/METHODS.md § Causal models and counterfactuals)."""
        ...

    def causal_model(self, name: str | None = None): ...


def quantities(split: Split, low: int, high: int, held_out: tuple[int, ...]) -> np.ndarray:
    """The quantities a split draws from: low..high without, only, or regardless of held_out."""
    everything = np.arange(low, high + 1)
    held = np.isin(everything, held_out)
    return {"train": everything[~held], "heldout": everything[held], "all": everything}[split]


def capped(quantities: np.ndarray, up_to: int | None) -> np.ndarray:
    """The quantities up to `up_to` (all of them for None; at least the smallest, so a cap below
    the range still draws something)."""
    if up_to is None:
        return quantities
    return quantities[quantities <= max(up_to, int(quantities.min()))]


def right_padded(rows) -> np.ndarray:
    """Token rows of different lengths as int64 [N, longest], PAD after each row's end."""
    out = np.full((len(rows), max(len(r) for r in rows)), PAD, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def targets_of(tokens: np.ndarray) -> np.ndarray:
    """Next-token targets: targets[:, p] = tokens[:, p+1], PAD past the end."""
    targets = np.full_like(tokens, PAD)
    targets[:, :-1] = tokens[:, 1:]
    return targets


def trial_correct(predictions: np.ndarray, tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """bool [N]: every scored prediction equals its target (a trial is all-or-nothing)."""
    wrong = (predictions != targets_of(tokens)) & mask
    return ~wrong.any(axis=1)
