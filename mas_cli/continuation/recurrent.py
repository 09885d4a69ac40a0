"""The zoo RNNs' fast path (GRU, LSTM at their `hidden` and `embed` sites), equal to the generic
hook path (tests/test_continuation.py) and several times faster:

hidden  the target continues from the intervened state over the tokens after τ only, packed by
        length (longest first) so no step is spent on padding, and the readout runs only where
        a prediction is scored. On the CPU the frozen-RNN suffix kernel steps the suffixes
        (suffix_kernel.py: token tables, one matmul per step, backward to the state only); on a
        GPU the model's own packed cuDNN kernel does.
embed   the target runs from position 0 on the given embeddings, packed by each item's last
        label; the site is read with the embedding table itself.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from mas_cli.continuation.generic import Continuation, Scored, in_chunks
from mas_cli.continuation.suffix_kernel import SuffixKernel


class RecurrentContinuation(Continuation):
    fast = True

    def width(self) -> int:
        return self.model.site_width() if self.site == "hidden" else self.model.embedding.embedding_dim

    @torch.no_grad()
    def collect_at(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        if self.site == "embed":
            return self.model.embed(tokens[torch.arange(len(tokens), device=tokens.device), positions])
        return in_chunks(self.model.state_after, tokens, positions)

    @torch.no_grad()
    def collect_all(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.model.embed(tokens) if self.site == "embed" else self.model.hidden_states(tokens)

    def prepare(self, tokens: torch.Tensor, tau: torch.Tensor) -> dict[str, torch.Tensor]:
        """The site at τ and the tokens after τ: column j of `inputs` is the token at τ + j + 1
        (the last token repeated past the end: never scored)."""
        columns = tau[:, None] + 1 + torch.arange(tokens.shape[1], device=tokens.device)[None, :]
        inputs = tokens.gather(1, columns.clamp(max=tokens.shape[1] - 1))
        return {"target_state": self.collect_at(tokens, tau), "inputs": inputs}

    def hidden(self, state: torch.Tensor, batch) -> Scored:
        """Column 0 is predicted from the intervened state itself; columns 1.. after each token of
        the suffix, packed by length (≥ 1 token, for packing)."""
        model = self.model
        if not suffix_kernel_runs(model, state):
            lengths = (batch.extent - 1).clamp(min=1)
            after = _packed(model.run_packed, model.embed(batch.inputs), lengths, batch.labels[:, 1:], state, 1)
        else:
            plan = SuffixPlan.of(batch)
            scored = suffix_kernel(model).run(state, plan.tokens, plan.batch_sizes, plan.order, plan.scored)
            after = scored, plan.labels, plan.items, plan.columns
        first = (batch.labels[:, 0] >= 0).nonzero()[:, 0]  # rows whose state's own prediction is scored
        features = torch.cat([model.state_features(state).index_select(0, first), after[0]])
        item = torch.cat([first, after[2]])
        column = torch.cat([torch.zeros_like(first), after[3]])
        labels = torch.cat([batch.labels[:, 0].index_select(0, first), after[1]])
        return model.readout(features), labels, item, column

    def embed(self, embeddings: torch.Tensor, batch) -> Scored:
        """From position 0 up to each item's last label."""
        features, labels, item, column = _packed(self.model.run_packed, embeddings, batch.extent, batch.labels)
        return self.model.readout(features), labels, item, column


def suffix_kernel_runs(model, state: torch.Tensor) -> bool:
    """Whether the suffix kernel steps this target: a single-layer nn.GRU / nn.LSTM on the CPU
    (on a GPU the model's own packed cuDNN kernel is the faster one)."""
    return not state.is_cuda and isinstance(model.rnn, (nn.GRU, nn.LSTM)) and model.rnn.num_layers == 1


_KERNELS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> its SuffixKernel


def suffix_kernel(model) -> SuffixKernel:
    """The model's suffix kernel, made once (its weights never change during alignment)."""
    if model not in _KERNELS:
        _KERNELS[model] = SuffixKernel(model)
    return _KERNELS[model]


@dataclass
class SuffixPlan:
    """How a batch's suffixes are packed (time-major, longest first): worked out once on the CPU
    in numpy, as index arrays, so a step spends no autograd or tensor ops on it."""

    order: torch.Tensor  # [N] rows sorted by suffix length, longest first
    batch_sizes: list[int]  # rows still running at each step
    tokens: torch.Tensor  # [P] the suffix tokens in packed order
    scored: torch.Tensor  # indices of the packed outputs whose prediction is scored
    labels: torch.Tensor  # [Q] their labels
    items: torch.Tensor  # [Q] their rows in the batch
    columns: torch.Tensor  # [Q] their label columns (1..)

    @classmethod
    def of(cls, batch) -> SuffixPlan:
        lengths = np.maximum(batch.extent.numpy() - 1, 1)
        order = np.argsort(-lengths, kind="stable")
        steps = int(lengths[order[0]])
        running = np.arange(steps)[:, None] < lengths[order][None, :]  # [T, N], time-major
        batch_sizes = running.sum(1).tolist()
        tokens = batch.inputs.numpy()[order, :steps].T[running]
        labels = batch.labels.numpy()[order, 1 : steps + 1].T[running]
        scored = np.flatnonzero(labels >= 0)
        items = np.broadcast_to(order, running.shape)[running][scored]
        columns = np.broadcast_to(np.arange(1, steps + 1)[:, None], running.shape)[running][scored]
        return cls(
            torch.from_numpy(order),
            batch_sizes,
            torch.from_numpy(np.ascontiguousarray(tokens)),
            torch.from_numpy(scored),
            torch.from_numpy(np.ascontiguousarray(labels[scored])),
            torch.from_numpy(np.ascontiguousarray(items)),
            torch.from_numpy(np.ascontiguousarray(columns)),
        )


def _packed(run, inputs: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor, state=None, first_column=0):
    """Run an RNN over inputs [N, T, E] packed by `lengths` (longest first, so the kernel never
    steps over padding) and return the scored (features, labels, item, column); the labels
    [N, T] and item numbers are packed the same way, so they line up with the packed outputs."""
    order = torch.argsort(lengths, descending=True, stable=True)
    sorted_lengths = lengths[order].cpu()

    def packed(x: torch.Tensor) -> torch.Tensor:
        return pack_padded_sequence(x[order], sorted_lengths, batch_first=True, enforce_sorted=True).data

    outputs = run(
        pack_padded_sequence(inputs[order], sorted_lengths, batch_first=True, enforce_sorted=True),
        None if state is None else state[order],
    )
    columns = torch.arange(first_column, first_column + labels.shape[1], device=labels.device).expand(len(order), -1)
    items = torch.arange(len(order), device=labels.device)[:, None].expand_as(columns)
    packed_labels = packed(labels)
    scored = packed_labels >= 0
    return outputs[scored], packed_labels[scored], packed(items)[scored], packed(columns)[scored]
