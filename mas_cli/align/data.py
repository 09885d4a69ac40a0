"""The data of one direction s→t: counterfactual items plus everything about them that does not
depend on the alignment functions, computed once before training (the models are frozen).

Per item, for the hidden site:
    source_state [N, d_s]   source hidden site at σ
    target_state [N, d_t]   target hidden site at τ (the counterfactual prefix equals the base's)
    labels in continuation coordinates: column j is the prediction made at τ + j
    RNN target:   inputs = the tokens after τ, so a step runs only the suffix through the kernel
    transformer:  residuals = layer-1 residual stream of the counterfactual input [N, L, d_t];
                  a step runs the layer above the site for the positions from τ on only
For the embed site: inputs = counterfactual tokens, source_tokens (σ = τ), labels per position.

labels hold the next-token target where a prediction is scored (response phase, from τ on) and -1
elsewhere. `extent` is the number of label columns an item needs: a batch is cut to its longest
item, and RNN suffixes are packed by it (intervention.py), so no step is spent on padding.
Training batches are uniformly random: batches of similar lengths would be cheaper still, but
they are biased samples and measurably slowed convergence (docs/BENCHMARKS.md).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import torch

from mas_cli.models.base import RecurrentModel
from tasks import make_counterfactuals, targets_of
from tasks.vocab import PAD

UNSCORED = -1


@dataclass
class Batch:
    tau: torch.Tensor  # [B]
    extent: torch.Tensor  # [B] label columns each item needs
    labels: torch.Tensor  # [B, C] target token or UNSCORED
    inputs: torch.Tensor | None = None  # [B, C - 1] suffix tokens (RNN hidden) or [B, C] tokens
    source_state: torch.Tensor | None = None  # [B, d_s]
    target_state: torch.Tensor | None = None  # [B, d_t]
    residuals: torch.Tensor | None = None  # [B, C, d_t] (transformer hidden)
    source_tokens: torch.Tensor | None = None  # [B, C] (embed)
    latent: torch.Tensor | None = None  # [B, d_t] matched natural latent (CLMAS directions)
    has_latent: torch.Tensor | None = None  # [B] bool: a latent was matched


@dataclass
class DirectionData:
    items: Batch  # every item, padded to the longest
    extent: np.ndarray  # [N] label columns each item needs
    suffix_coords: bool  # label column 0 is position τ (hidden site) rather than position 0 (embed)

    def __len__(self) -> int:
        return len(self.extent)

    def take(self, index: np.ndarray) -> Batch:
        """Items `index`, cut to the columns the longest of them needs."""
        columns = int(self.extent[index].max())
        if self.suffix_coords:  # outputs = the state's prediction + one per suffix token (≥ 1)
            columns = max(columns, 2)
        rows = torch.as_tensor(index, device=self.items.tau.device)
        widths = {"labels": columns, "source_tokens": columns, "inputs": columns - self.suffix_coords}
        if self.items.residuals is not None:  # positions up to the last label column of any item
            widths["residuals"] = int((self.items.tau[rows] + self.items.extent[rows]).max())
        cut = {}
        for f in fields(Batch):
            value = getattr(self.items, f.name)
            if value is None or f.name not in widths:  # per item
                cut[f.name] = None if value is None else value[rows]
            else:
                cut[f.name] = value[rows, : widths[f.name]]
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
def _site_at(
    model, tokens: torch.Tensor, at: torch.Tensor, keep_residuals: bool, chunk: int = 2000
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Hidden site at position at[b] of each row [N, d]; for a transformer target also the whole
    residual stream [N, L, d] (its continuation needs it). RNNs run each prefix only up to at[b]."""
    states, full = [], []
    for start in range(0, len(tokens), chunk):
        part, where = tokens[start : start + chunk], at[start : start + chunk]
        if isinstance(model, RecurrentModel):
            states.append(model.state_after(part, where))
            continue
        residuals = model.hidden_states(part)
        states.append(residuals[torch.arange(len(part), device=part.device), where])
        if keep_residuals:
            full.append(residuals)
    return torch.cat(states), torch.cat(full) if full else None


@torch.no_grad()
def natural_activations(model, site: str, n: int, rng: np.random.Generator, device) -> torch.Tensor:
    """The site's activations [P, d] at every non-pad position of n natural sequences of the
    model's own task (what an alignment function's normalisation is fitted to)."""
    tokens = torch.from_numpy(model.task.sample(n, rng, "all").tokens).to(device)
    site_values = model.model.embed(tokens) if site == "embed" else model.model.hidden_states(tokens)
    return site_values[tokens != PAD]


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
) -> DirectionData:
    """n counterfactual items for source → target (FrozenModels), with frozen activations; with
    a LatentBank of the target (hidden site), each item's matching natural latent."""
    # Under the context-distributed hypothesis σ and τ share a phase: nothing is stored to swap,
    # so the counterfactual is the base continuation (behaviour should not change).
    cf = make_counterfactuals(
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
    tokens, tau, sigma = (torch.from_numpy(a).to(device) for a in (cf.tokens, cf.tau, cf.sigma))
    labels = np.where(cf.label_mask, targets_of(cf.tokens), UNSCORED)
    last_scored = labels.shape[1] - 1 - np.argmax(labels[:, ::-1] != UNSCORED, axis=1)
    if site == "embed":
        width = tokens.shape[1]
        source_tokens = np.full_like(cf.tokens, PAD)
        source_tokens[:, : min(width, cf.source.shape[1])] = cf.source[:, :width]
        extent = last_scored + 1
        items = Batch(
            tau=tau,
            extent=torch.from_numpy(extent).to(device),
            labels=torch.from_numpy(labels).to(device),
            inputs=tokens,
            source_tokens=torch.from_numpy(source_tokens).to(device),
        )
        return DirectionData(items, extent, suffix_coords=False)
    source_state, _ = _site_at(source.model, torch.from_numpy(cf.source).to(device), sigma, keep_residuals=False)
    target_state, residuals = _site_at(target.model, tokens, tau, keep_residuals=True)
    # Column j of the continuation is the prediction made at τ + j (j = 0: from the intervened site).
    columns = cf.tau[:, None] + np.arange(tokens.shape[1])[None, :]
    clipped = np.minimum(columns, tokens.shape[1] - 1)
    suffix_labels = np.where(columns < tokens.shape[1], np.take_along_axis(labels, clipped, 1), UNSCORED)
    extent = last_scored - cf.tau + 1
    items = Batch(
        tau=tau,
        extent=torch.from_numpy(extent).to(device),
        labels=torch.from_numpy(suffix_labels).to(device),
        source_state=source_state,
        target_state=target_state,
        residuals=residuals,  # transformer targets: the layer-1 residual stream, [N, L, d]
    )
    if isinstance(target.model, RecurrentModel):  # the tokens after τ
        items.inputs = torch.from_numpy(np.take_along_axis(cf.tokens, np.minimum(clipped + 1, tokens.shape[1] - 1), 1))
        items.inputs = items.inputs.to(device)
    if bank is not None:
        items.latent, found = bank.match(cf.values, rng)
        items.has_latent = torch.as_tensor(found, device=device)
    return DirectionData(items, extent, suffix_coords=True)
