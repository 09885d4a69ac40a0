"""The interchange intervention (SPEC §5) and what the target computes after it.

    h_t' = A_t⁻¹( (1 − M_k) ⊙ A_t(h_t) + M_k ⊙ A_s(h_s) )

With A(h) = Q(h − μ)/s (functions.py) and M_k the first k coordinates this is
h_t + s_t·Q_t[:k]ᵀ(A_s(h_s)[:k] − A_t(h_t)[:k]): only the k aligned rows of each Q are needed,
which is what `swap` computes.

`predictions` runs one target for the batches of every direction into it at once (its "parts"),
and returns only the scored predictions: for an RNN at the hidden site the suffixes after τ are
packed by length and run through the fused kernel, and the readout sees the packed outputs; a
transformer runs the layer above the site for positions from τ on, the MLP only where scored.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence

from mas_cli.align.data import Batch
from mas_cli.align.functions import AlignedRows
from mas_cli.models import SequenceModel
from mas_cli.models.base import RecurrentModel


def swap(
    h_target: torch.Tensor, h_source: torch.Tensor, target: AlignedRows, source: AlignedRows, keep_target: bool = True
) -> torch.Tensor:
    """h_t' for [..., d_t] and [..., d_s] vectors, given the aligned rows of each function.
    keep_target=False is model stitching's zero mask: the target's own aligned coordinates are
    all discarded, h_t' = A_t⁻¹(M_k ⊙ A_s(h_s)) = μ_t + s_t·Q_t[:k]ᵀ A_s(h_s)[:k]."""
    if not keep_target:
        return target.center + target.write(source.coordinates(h_source))
    return h_target + target.write(source.coordinates(h_source) - target.coordinates(h_target))


def interchange(h_target, h_source, a_target, a_source, k: int, keep_target: bool = True):
    """The formula as written, through the full alignment space (slow; for tests and clarity)."""
    z_target, z_source = a_target(h_target), a_source(h_source)
    mask = torch.zeros(z_target.shape[-1], dtype=z_target.dtype, device=z_target.device)
    mask[:k] = 1
    z_source = F.pad(z_source, (0, max(z_target.shape[-1] - z_source.shape[-1], 0)))
    kept = (1 - mask) * z_target if keep_target else torch.zeros_like(z_target)
    return a_target.inverse(kept + mask * z_source[..., : z_target.shape[-1]])


@dataclass
class Part:
    """The batch of one direction into the target, with its source model and aligned rows."""

    batch: Batch
    source: SequenceModel
    source_aligned: AlignedRows


@dataclass
class Predictions:
    """Every scored prediction of a target step (P of them)."""

    logits: torch.Tensor  # [P, V]
    labels: torch.Tensor  # [P]
    part: torch.Tensor  # [P] which Part (direction) it belongs to
    item: torch.Tensor  # [P] the item within that part's batch
    column: torch.Tensor  # [P] its label column (increases with position within an item)


def predictions(
    target: SequenceModel, aligned: AlignedRows, parts: list[Part], site: str, keep_target: bool = True
) -> Predictions:
    batch = _concat([p.batch for p in parts])
    if site == "hidden":
        state = torch.cat(
            [swap(p.batch.target_state, p.batch.source_state, aligned, p.source_aligned, keep_target) for p in parts]
        )
        if isinstance(target, RecurrentModel):
            return _rnn_suffixes(target, state, batch, parts)
        scored = batch.labels >= 0
        features = target.scored_features_above_site(state, batch.residuals, batch.tau, scored)
    else:  # embed: every position 0..τ of the target takes the swap (source at the same positions)
        embedded = []
        for p in parts:
            e_target, e_source = target.embed(p.batch.inputs), p.source.embed(p.batch.source_tokens)
            positions = torch.arange(e_target.shape[1], device=e_target.device)
            up_to_tau = (positions[None, :] <= p.batch.tau[:, None])[..., None]
            swapped = swap(e_target, e_source, aligned, p.source_aligned, keep_target)
            embedded.append(torch.where(up_to_tau, swapped, e_target))
        embeddings = _pad_cat(embedded, 0.0)
        if isinstance(target, RecurrentModel):  # from position 0 up to each item's last label
            features, labels, item, column = _packed(target.run_packed, embeddings, batch.extent, batch.labels)
            part, item = _split_items(item, parts)
            return Predictions(target.readout(features), labels, part, item, column)
        scored = batch.labels >= 0
        features = target.features_from_embeddings(embeddings)[scored]
    item, column = scored.nonzero(as_tuple=True)
    part, item = _split_items(item, parts)
    return Predictions(target.readout(features), batch.labels[scored], part, item, column)


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


def _rnn_suffixes(target: RecurrentModel, state: torch.Tensor, batch: Batch, parts: list[Part]) -> Predictions:
    """Column 0 is predicted from the intervened state itself; columns 1.. after each token of
    the suffix, packed by length (≥ 1 token, for packing)."""
    lengths = (batch.extent - 1).clamp(min=1)
    after = _packed(target.run_packed, target.embed(batch.inputs), lengths, batch.labels[:, 1:], state, 1)
    first = batch.labels[:, 0] >= 0
    features = torch.cat([target.state_features(state)[first], after[0]])
    item = torch.cat([first.nonzero()[:, 0], after[2]])
    column = torch.cat([torch.zeros_like(item[: int(first.sum())]), after[3]])
    part, item = _split_items(item, parts)
    labels = torch.cat([batch.labels[first, 0], after[1]])
    return Predictions(target.readout(features), labels, part, item, column)


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


def _concat(batches: list[Batch]) -> Batch:
    """One batch of the target's side of several parts (the source side was used per part:
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
    return Batch(**merged)


def per_part_loss(found: Predictions, n_parts: int) -> torch.Tensor:
    """Mean cross-entropy over each part's scored predictions: [n_parts]."""
    losses = F.cross_entropy(found.logits, found.labels, reduction="none")
    total = torch.zeros(n_parts, device=losses.device).index_add(0, found.part, losses)
    count = torch.zeros(n_parts, device=losses.device).index_add(0, found.part, torch.ones_like(losses))
    return total / count.clamp(min=1)
