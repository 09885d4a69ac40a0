"""What a target computes after an interchange, at each alignment site: the scored predictions
of one target for the batches of every direction into it at once (its "parts").

hidden  the intervened state at τ, then the target continues from it: an RNN runs only the
        tokens after τ, packed by length so the fused kernel never steps over padding, and the
        readout sees the packed outputs where a prediction is scored; a transformer re-runs only
        the layer above the site, for positions from τ on, the MLP only where scored.
embed   every input embedding up to τ is intervened (the source's at the same positions) and
        the target runs from position 0: an RNN packed by each item's last label, a
        transformer in one pass.

Only scored predictions come back (`Predictions`), with the part and item each belongs to.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from mas_cli.alignment.data import EmbedItems, HiddenItems, Items
from mas_cli.alignment.functions import AlignedRows
from mas_cli.alignment.intervention import Interchange
from mas_cli.alignment.recurrent import Frozen
from mas_cli.models.base import RecurrentModel


@dataclass
class Part:
    """The batch of one direction into the target, with its source model and aligned rows."""

    batch: Items
    source: torch.nn.Module  # the source model (the embed site embeds the source tokens with it)
    source_rows: AlignedRows


@dataclass
class Predictions:
    """Every scored prediction of a target step (P of them)."""

    logits: torch.Tensor  # [P, V]
    labels: torch.Tensor  # [P]
    part: torch.Tensor  # [P] which Part (direction) it belongs to
    item: torch.Tensor  # [P] the item within that part's batch
    column: torch.Tensor  # [P] its label column (increases with position within an item)


def hidden_site(target, target_rows: AlignedRows, parts: list[Part], interchange: Interchange) -> Predictions:
    batch: HiddenItems = _concat([p.batch for p in parts])
    state = torch.cat(
        [interchange(p.batch.target_state, p.batch.source_state, target_rows, p.source_rows) for p in parts]
    )
    if isinstance(target, RecurrentModel):
        return _rnn_suffixes(target, state, batch, parts)
    scored = batch.labels >= 0
    features = target.scored_features_above_site(state, batch.residuals, batch.tau, scored)
    item, column = scored.nonzero(as_tuple=True)
    return _predictions(target, features, batch.labels[scored], item, column, parts)


def embed_site(target, target_rows: AlignedRows, parts: list[Part], interchange: Interchange) -> Predictions:
    batch: EmbedItems = _concat([p.batch for p in parts])
    embedded = []
    for p in parts:
        e_target, e_source = target.embed(p.batch.inputs), p.source.embed(p.batch.source_tokens)
        positions = torch.arange(e_target.shape[1], device=e_target.device)
        up_to_tau = (positions[None, :] <= p.batch.tau[:, None])[..., None]
        swapped = interchange(e_target, e_source, target_rows, p.source_rows)
        embedded.append(torch.where(up_to_tau, swapped, e_target))
    embeddings = _pad_cat(embedded, 0.0)
    if isinstance(target, RecurrentModel):  # from position 0 up to each item's last label
        features, labels, item, column = _packed(target.run_packed, embeddings, batch.extent, batch.labels)
        return _predictions(target, features, labels, item, column, parts)
    scored = batch.labels >= 0
    features = target.features_from_embeddings(embeddings)[scored]
    item, column = scored.nonzero(as_tuple=True)
    return _predictions(target, features, batch.labels[scored], item, column, parts)


SITE_PATHS = {"hidden": hidden_site, "embed": embed_site}


def _predictions(target, features, labels, item, column, parts: list[Part]) -> Predictions:
    """The readout on the scored features, with global item numbers split into (part, item)."""
    part, item = _split_items(item, parts)
    return Predictions(target.readout(features), labels, part, item, column)


def _rnn_suffixes(target: RecurrentModel, state: torch.Tensor, batch: HiddenItems, parts: list[Part]) -> Predictions:
    """Column 0 is predicted from the intervened state itself; columns 1.. after each token of
    the suffix, packed by length (≥ 1 token, for packing). On the CPU the frozen-RNN kernel runs
    the suffixes (recurrent.py); on a GPU (or for another recurrent model) the model's own
    fused kernel does."""
    if not suffix_kernel_for(target, state):
        lengths = (batch.extent - 1).clamp(min=1)
        after = _packed(target.run_packed, target.embed(batch.inputs), lengths, batch.labels[:, 1:], state, 1)
    else:
        plan = SuffixPlan.of(batch)
        scored = frozen(target).run(state, plan.tokens, plan.batch_sizes, plan.order, plan.scored)
        after = scored, plan.labels, plan.items, plan.columns
    first = (batch.labels[:, 0] >= 0).nonzero()[:, 0]  # rows whose state's own prediction is scored
    features = torch.cat([target.state_features(state).index_select(0, first), after[0]])
    item = torch.cat([first, after[2]])
    column = torch.cat([torch.zeros_like(first), after[3]])
    labels = torch.cat([batch.labels[:, 0].index_select(0, first), after[1]])
    return _predictions(target, features, labels, item, column, parts)


def suffix_kernel_for(target, state: torch.Tensor) -> bool:
    """Whether recurrent.py runs this target's suffixes: a GRU or LSTM on the CPU."""
    return not state.is_cuda and isinstance(getattr(target, "rnn", None), (nn.GRU, nn.LSTM))


_FROZEN: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def frozen(model: RecurrentModel) -> Frozen:
    """The model's suffix kernel, made once (its weights never change during alignment)."""
    if model not in _FROZEN:
        _FROZEN[model] = Frozen(model)
    return _FROZEN[model]


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
    def of(cls, batch: HiddenItems) -> SuffixPlan:
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


def _split_items(item: torch.Tensor, parts: list[Part]) -> tuple[torch.Tensor, torch.Tensor]:
    """Global item numbers of a concatenated batch -> (part, item within the part)."""
    sizes = torch.tensor([len(p.batch.tau) for p in parts], device=item.device)
    starts = torch.cumsum(sizes, 0) - sizes
    part = torch.bucketize(item, torch.cumsum(sizes, 0), right=True)
    return part, item - starts[part]


def _pad_cat(tensors: list[torch.Tensor], value) -> torch.Tensor:
    """Concatenate [B_i, C_i, ...] tensors along the batch, padding dim 1 to the widest."""
    width = max(t.shape[1] for t in tensors)
    padded = []
    for t in tensors:
        pad = [0, 0] * (t.dim() - 2) + [0, width - t.shape[1]]
        padded.append(F.pad(t, pad, value=value))
    return torch.cat(padded)


def _concat(batches: list[Items]) -> Items:
    """One batch of the target's side of several parts (the source side is used per part:
    sources may differ in width)."""
    if len(batches) == 1:
        return batches[0]
    merged = {}
    for name, value in vars(batches[0]).items():
        if value is None or name.startswith("source_"):
            merged[name] = None
        elif value.dim() == 1 or name.endswith("_state"):
            merged[name] = torch.cat([getattr(b, name) for b in batches])
        else:
            merged[name] = _pad_cat([getattr(b, name) for b in batches], -1 if name == "labels" else 0)
    return replace(batches[0], **merged)


def per_part_loss(found: Predictions, n_parts: int) -> torch.Tensor:
    """Mean cross-entropy over each part's scored predictions: [n_parts]."""
    losses = F.cross_entropy(found.logits, found.labels, reduction="none")
    total = torch.zeros(n_parts, device=losses.device).index_add(0, found.part, losses)
    count = torch.zeros(n_parts, device=losses.device).index_add(0, found.part, torch.ones_like(losses))
    return total / count.clamp(min=1)
