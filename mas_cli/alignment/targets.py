"""What a target computes after an interchange: the scored predictions of one target for the
batches of every direction into it at once (its "parts"), through the target's continuation
(mas_cli/continuation/: the zoo's fast path, or the generic hook path).

embed       every input embedding up to τ is intervened (the source's at the same positions) and
            the target runs from position 0
any other   the intervened state replaces the site at τ and the target continues from it

Only scored predictions come back (`Predictions`), with the part and item each belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from mas_cli.alignment.interchange import Interchange
from mas_cli.alignment.items import EmbedItems, HiddenItems, Items
from mas_cli.alignment.maps import AlignedRows
from mas_cli.continuation import Continuation


@dataclass
class Part:
    """The batch of one direction into the target, with its source's continuation and aligned rows."""

    batch: Items
    source: Continuation  # the source at the run's site (the embed site reads the source's embeddings with it)
    source_rows: AlignedRows


@dataclass
class Predictions:
    """Every scored prediction of a target step (P of them)."""

    logits: torch.Tensor  # [P, V]
    labels: torch.Tensor  # [P]
    part: torch.Tensor  # [P] which Part (direction) it belongs to
    item: torch.Tensor  # [P] the item within that part's batch
    column: torch.Tensor  # [P] its label column (increases with position within an item)


def hidden_site(target: Continuation, target_rows: AlignedRows, parts: list[Part], interchange: Interchange):
    batch: HiddenItems = _concat([p.batch for p in parts])
    state = torch.cat(
        [interchange(p.batch.target_state, p.batch.source_state, target_rows, p.source_rows) for p in parts]
    )
    return _predictions(target.hidden(state, batch), parts)


def embed_site(target: Continuation, target_rows: AlignedRows, parts: list[Part], interchange: Interchange):
    batch: EmbedItems = _concat([p.batch for p in parts])
    embedded = []
    for p in parts:
        e_target, e_source = target.collect_all(p.batch.inputs), p.source.collect_all(p.batch.source_tokens)
        positions = torch.arange(e_target.shape[1], device=e_target.device)
        up_to_tau = (positions[None, :] <= p.batch.tau[:, None])[..., None]
        swapped = interchange(e_target, e_source, target_rows, p.source_rows)
        embedded.append(torch.where(up_to_tau, swapped, e_target))
    return _predictions(target.embed(_pad_cat(embedded, 0.0), batch), parts)


def site_path(site: str):
    """How a target is intervened on at `site`: every embedding up to τ, or the site at τ alone."""
    return embed_site if site == "embed" else hidden_site


def _predictions(scored, parts: list[Part]) -> Predictions:
    """A continuation's scored (logits, labels, item, column), global items split into (part, item)."""
    logits, labels, item, column = scored
    part, item = _split_items(item, parts)
    return Predictions(logits, labels, part, item, column)


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
