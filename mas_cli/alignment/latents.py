"""Counterfactual latents for CLMAS and latent stitching (docs/METHODS.md § MAS).

For a direction into a model whose behaviour may not be used, the intervened vector h_t' is
pulled towards a *recorded* natural latent h_cl of that model: its hidden site at a position of
one of its own natural sequences where its causal model holds the same variable values as the
intervened state (e.g. count 7 in the response phase). Items with no such position are left out
of the latent loss and counted.

    L_CL = ½·(1 − cos(h_t', h_cl)) + ½·mean((h_t' − h_cl)²)      (cl.loss = both | cos | mse)

computed on the site as the target's alignment function sees it, (h − μ)/s (fit.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from mas_cli.tasks.counterfactual import natural_values

CL_LOSSES = ("both", "mse", "cos")


@dataclass
class LatentBank:
    """Natural site vectors of one model, indexed by their causal-variable values."""

    states: torch.Tensor  # [P, d]
    rows_by_values: dict[tuple, np.ndarray]  # variable values -> rows of `states`
    variables: tuple[str, ...]

    def match(self, values: dict[str, np.ndarray], rng: np.random.Generator) -> tuple[torch.Tensor, np.ndarray]:
        """For items with the given intervened values ([N] per variable): a matching recorded
        latent each [N, d] (zeros where none) and whether one was found [N]."""
        n = len(values[self.variables[0]]) if self.variables else 0
        picked = np.full(n, -1)
        for i in range(n):
            rows = self.rows_by_values.get(tuple(int(values[v][i]) for v in self.variables))
            if rows is not None:
                picked[i] = rows[rng.integers(len(rows))]
        found = picked >= 0
        latents = torch.zeros(n, self.states.shape[1], dtype=self.states.dtype, device=self.states.device)
        index = torch.as_tensor(picked[found], device=self.states.device)
        latents[torch.as_tensor(found, device=self.states.device)] = self.states[index]
        return latents, found


@torch.no_grad()
def build_bank(model, n: int, rng: np.random.Generator, device) -> LatentBank:
    """Hidden site of a FrozenModel at every position of n natural sequences of its own task."""
    causal = model.task.causal_model()
    sequences = model.task.sample(n, rng, "all")
    values = natural_values(causal, sequences)
    states = model.at("hidden").collect_all(torch.from_numpy(sequences.tokens).to(device))  # [N, L, d]
    has_state = np.ones(sequences.tokens.shape, dtype=bool)
    for name in causal.variables:
        has_state &= values[name] != -1
    keys = np.stack([values[name][has_state] for name in causal.variables], axis=1) if causal.variables else None
    flat = states[torch.as_tensor(has_state, device=states.device)]
    rows_by_values: dict[tuple, list[int]] = {}
    for row, key in enumerate(map(tuple, keys.tolist()) if keys is not None else []):
        rows_by_values.setdefault(key, []).append(row)
    return LatentBank(flat, {k: np.array(v) for k, v in rows_by_values.items()}, causal.variables)


def latent_loss(h: torch.Tensor, latent: torch.Tensor, kind: str) -> torch.Tensor:
    """Mean L_CL over items [B, d] (the caller keeps only items with a matched latent)."""
    cos = 0.5 * (1 - F.cosine_similarity(h, latent, dim=-1))
    mse = 0.5 * (h - latent).pow(2).mean(-1)
    per_item = {"both": cos + mse, "cos": cos, "mse": mse}[kind]
    return per_item.mean() if len(per_item) else h.sum() * 0.0
