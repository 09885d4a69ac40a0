"""The data of one direction s→t: counterfactual items plus everything about them that does not
depend on the alignment functions, computed once before training (the models are frozen).

Two kinds of items, one per site, each with its own meaning of a label column:

    HiddenItems (every site but embed)  column j is the prediction made at τ + j (column 0:
                               from the intervened state itself)
        source_state [N, d_s]  source site at σ
        target_state [N, d_t]  target site at τ (the counterfactual prefix equals the base's)
        and what the target's continuation keeps (continuation/: `prepare`):
        tokens       [N, L]    the counterfactual input (the generic path runs it whole)
        inputs       [N, C-1]  zoo RNN targets: the tokens after τ, so a step runs only the suffix
        residuals    [N, L, d] zoo transformer targets: the residual stream at the site; a step
                               runs only the layers above it
    EmbedItems (site=embed)    column j is the prediction made at position j
        inputs, source_tokens [N, C]   counterfactual and source tokens (σ = τ)

`labels` hold the next-token target where a prediction is scored (response phase, from τ on) and
UNSCORED elsewhere. `extent` is the number of label columns an item needs: a batch is cut to its
longest item, and RNN sequences are packed by it (continuation/recurrent.py), so no step is spent on padding.
Training batches are uniformly random: batches of similar lengths would be cheaper still, but
they are biased samples and measurably slowed convergence (docs/BENCHMARKS.md).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import torch

from mas_cli.tasks import Counterfactuals, make_counterfactuals, targets_of
from mas_cli.tasks.vocab import PAD

UNSCORED = -1


@dataclass
class HiddenItems:
    tau: torch.Tensor  # [N]
    extent: torch.Tensor  # [N] label columns each item needs
    labels: torch.Tensor  # [N, C] target token or UNSCORED; column j = position τ + j
    source_state: torch.Tensor  # [N, d_s]
    target_state: torch.Tensor  # [N, d_t]
    tokens: torch.Tensor | None = None  # [N, L] the counterfactual input (generic targets)
    inputs: torch.Tensor | None = None  # [N, C - 1] suffix tokens (zoo RNN targets)
    residuals: torch.Tensor | None = None  # [N, L, d_t] (zoo transformer targets)
    latent: torch.Tensor | None = None  # [N, d_t] matched natural latent (latent directions)
    has_latent: torch.Tensor | None = None  # [N] bool: a latent was matched

    def widths(self, rows: torch.Tensor, columns: int) -> dict[str, int]:
        """How far each per-position field is cut for a batch whose longest item needs `columns`
        label columns (at least 2: the state's own prediction and one suffix step, for packing)."""
        columns = max(columns, 2)
        found = {"labels": columns, "inputs": columns - 1}
        last = int((self.tau[rows] + self.extent[rows]).max())  # positions up to any item's last label
        found |= {"residuals": last, "tokens": last}
        return found


@dataclass
class EmbedItems:
    tau: torch.Tensor  # [N]
    extent: torch.Tensor  # [N]
    labels: torch.Tensor  # [N, C] target token or UNSCORED; column j = position j
    inputs: torch.Tensor  # [N, C] counterfactual tokens
    source_tokens: torch.Tensor  # [N, C] source tokens at the same positions

    def widths(self, rows: torch.Tensor, columns: int) -> dict[str, int]:
        return {"labels": columns, "inputs": columns, "source_tokens": columns}


Items = HiddenItems | EmbedItems


@dataclass
class DirectionData:
    items: Items  # every item, padded to the longest
    extent: np.ndarray  # [N] label columns each item needs
    before: dict[str, np.ndarray] | None = None  # the target's causal variables at τ before the swap, [N] each
    after: dict[str, np.ndarray] | None = None  # and after it (what the counterfactual continues from)

    def __len__(self) -> int:
        return len(self.extent)

    def take(self, index: np.ndarray) -> Items:
        """Items `index`, cut to the columns the longest of them needs."""
        rows = torch.as_tensor(index, device=self.items.tau.device)
        widths = self.items.widths(rows, int(self.extent[index].max()))
        cut = {}
        for f in fields(self.items):
            value = getattr(self.items, f.name)
            if value is None:
                cut[f.name] = None
            elif f.name in widths:  # index_select: ~4× faster than advanced indexing at these sizes
                cut[f.name] = value[:, : widths[f.name]].index_select(0, rows)
            else:  # one value per item
                cut[f.name] = value.index_select(0, rows)
        return replace(self.items, **cut)

    def epoch_batches(self, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
        """One epoch: every item once, in uniformly random batches."""
        order = rng.permutation(len(self))
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]

    def eval_batches(self, batch_size: int, limit: int | None = None) -> list[np.ndarray]:
        """The first `limit` items (all by default) in extent order (least padding), for evaluation."""
        index = np.arange(len(self) if limit is None else min(limit, len(self)))
        order = index[np.argsort(self.extent[index], kind="stable")]
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


@torch.no_grad()
def natural_activations(model, site: str, n: int, rng: np.random.Generator, device) -> torch.Tensor:
    """The site's activations [P, d] at every real position of n natural sequences of the
    model's own task (what an alignment function's normalisation is fitted to)."""
    natural = model.task.sample(n, rng, "all")
    tokens = torch.from_numpy(natural.tokens).to(device)
    real = torch.arange(tokens.shape[1], device=device)[None, :] < torch.from_numpy(natural.lengths).to(device)[:, None]
    return model.at(site).collect_all(tokens)[real]


def counterfactuals_for(
    source, target, site: str, variable: str, n: int, rng, causal_model=None, source_variable=None
) -> Counterfactuals:
    """n counterfactual items for source → target (FrozenModels): bases from the target's task,
    sources from the source's, each read by its own causal model."""
    # Under the context-distributed hypothesis σ and τ share a phase: nothing is stored to swap,
    # so the counterfactual is the base continuation (behaviour should not change).
    return make_counterfactuals(
        target.task,
        n,
        variable,
        rng,
        causal_model=causal_model,
        same_position=site == "embed",
        same_phase=causal_model == "context",
        source_task=source.task,
        source_variable=source_variable,
    )


def build_direction(
    source,
    target,
    site: str,
    variable: str,
    n: int,
    rng: np.random.Generator,
    device,
    bank=None,
    causal_model=None,
    source_variable=None,
    draw=None,
    split: str = "train",
) -> DirectionData:
    """n counterfactual items for source → target (FrozenModels), with frozen activations; with
    a LatentBank of the target (hidden site), each item's matching natural latent. `draw`: the
    run's own source of counterfactuals (mas_cli/data/; None: the task's causal model)."""
    if draw is None:
        cf = counterfactuals_for(source, target, site, variable, n, rng, causal_model, source_variable)
    else:
        cf = draw(source, target, variable, n, rng, split)
    return direction_data(cf, source, target, site, device, bank, rng)


def direction_data(cf: Counterfactuals, source, target, site: str, device, bank=None, rng=None) -> DirectionData:
    """The items of counterfactuals `cf` with everything about them the alignment does not change."""
    labels = np.where(cf.label_mask, targets_of(cf.tokens), UNSCORED)
    last_scored = labels.shape[1] - 1 - np.argmax(labels[:, ::-1] != UNSCORED, axis=1)

    def tensor(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(device)

    if site == "embed":
        width = cf.tokens.shape[1]
        source_tokens = np.full_like(cf.tokens, PAD)
        source_tokens[:, : min(width, cf.source.shape[1])] = cf.source[:, :width]
        extent = last_scored + 1
        items = EmbedItems(tensor(cf.tau), tensor(extent), tensor(labels), tensor(cf.tokens), tensor(source_tokens))
        return DirectionData(items, extent, cf.before, cf.values)
    tokens = tensor(cf.tokens)
    # Column j of the continuation is the prediction made at τ + j (j = 0: from the intervened site).
    columns = cf.tau[:, None] + np.arange(cf.tokens.shape[1])[None, :]
    clipped = np.minimum(columns, cf.tokens.shape[1] - 1)
    suffix_labels = np.where(columns < cf.tokens.shape[1], np.take_along_axis(labels, clipped, 1), UNSCORED)
    extent = last_scored - cf.tau + 1
    items = HiddenItems(
        tau=tensor(cf.tau),
        extent=tensor(extent),
        labels=tensor(suffix_labels),
        source_state=source.at(site).collect_at(tensor(cf.source), tensor(cf.sigma)),
        **target.at(site).prepare(tokens, tensor(cf.tau)),
    )
    if bank is not None:
        items.latent, found = bank.match(cf.values, rng)
        items.has_latent = torch.as_tensor(found, device=device)
    return DirectionData(items, extent, cf.before, cf.values)
