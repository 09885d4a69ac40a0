"""Correlative baselines (docs/METHODS.md § Correlative measures): RSA and linear CKA between two
models' activations at one site on the same stimuli. They say how alike two representations look,
not whether either one is used the same way; MAS's cross-model IIA beside them in the report shows the difference.

Stimuli: `per_count` Multi-Object sequences for each count 1..20 (with BOS), the same for every
model; rows are the site's activations at every non-pad position. Each measure is averaged over
`subsets` random subsets of `rows` rows, the same rows for both models.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import torch

from mas_cli.tasks.counting import CountingTask
from mas_cli.tasks.vocab import PAD

RDMS = ("cosine", "euclidean")
CORRELATIONS = ("spearman", "pearson")


def stimuli(per_count: int, rng: np.random.Generator, counts=range(1, 21)) -> np.ndarray:
    """Token ids [N, L]: `per_count` Multi-Object sequences of each count, right-padded."""
    task = CountingTask()
    parts = [dataclasses.replace(task, min_count=c, max_count=c).sample(per_count, rng, "all").tokens for c in counts]
    width = max(p.shape[1] for p in parts)
    return np.concatenate([np.pad(p, ((0, 0), (0, width - p.shape[1])), constant_values=PAD) for p in parts])


@torch.no_grad()
def site_rows(model, tokens: torch.Tensor, site: str) -> torch.Tensor:
    """[P, d] activations of `site` (hidden | embed) at every non-pad position."""
    from mas_cli.continuation import continuation_for

    return continuation_for(model, site).collect_all(tokens)[tokens != PAD].double()


def rdm(x: torch.Tensor, metric: str) -> torch.Tensor:
    """Representational dissimilarity matrix [n, n]: 1 − cosine similarity, or Euclidean distance."""
    if metric == "cosine":
        unit = x / x.norm(dim=1, keepdim=True).clamp(min=1e-12)
        return 1 - unit @ unit.T
    return torch.cdist(x, x)


def _lower(m: torch.Tensor) -> np.ndarray:
    rows, cols = np.tril_indices(m.shape[0], -1)
    return m.cpu().numpy()[rows, cols]


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def correlate(a: np.ndarray, b: np.ndarray, correlation: str) -> float:
    """Pearson, or Spearman = Pearson of the ranks (ties share their mean rank)."""
    if correlation == "spearman":
        a, b = pd.Series(a).rank().to_numpy(), pd.Series(b).rank().to_numpy()
    return _pearson(a, b)


def rsa(x: torch.Tensor, y: torch.Tensor, metric: str, correlation: str) -> float:
    """Correlation of the two RDMs' lower triangles (x and y: the same stimuli, row for row)."""
    return correlate(_lower(rdm(x, metric)), _lower(rdm(y, metric)), correlation)


def cka(x: torch.Tensor, y: torch.Tensor, zscore: bool = True) -> float:
    """Linear CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)) with K = XXᵀ, L = YYᵀ. On centred
    features tr(KHLH) = ‖YᵀX‖²_F, so no n × n matrix is formed. `zscore` standardises each unit
    first (docs/METHODS.md § Correlative measures); then CKA is unchanged by rescaling any unit,
    and, unstandardised, by any rotation of either representation."""
    x, y = x - x.mean(0), y - y.mean(0)
    if zscore:  # constant units stay zero instead of dividing by zero
        x, y = x / x.std(0).clamp(min=1e-12), y / y.std(0).clamp(min=1e-12)
    cross = (y.T @ x).pow(2).sum()
    return float(cross / ((x.T @ x).pow(2).sum().sqrt() * (y.T @ y).pow(2).sum().sqrt()))


def measures(x: torch.Tensor, y: torch.Tensor, zscore: bool) -> dict[str, float]:
    found = {f"rsa_{m}_{c}": rsa(x, y, m, c) for m in RDMS for c in CORRELATIONS}
    found["cka"] = cka(x, y, zscore)
    return found


def compare(x: torch.Tensor, y: torch.Tensor, subsets: int, rows: int, rng: np.random.Generator, zscore=True):
    """Every measure on `subsets` random row subsets (the same rows of x and y): mean, sd, n."""
    if len(x) != len(y):
        raise ValueError(f"activations of the same stimuli must match row for row ({len(x)} vs {len(y)})")
    size = min(rows, len(x))
    values = [
        measures(x[idx], y[idx], zscore) for idx in (rng.choice(len(x), size, replace=False) for _ in range(subsets))
    ]
    frame = pd.DataFrame(values)
    return [
        {"measure": name, "value": frame[name].mean(), "sd": frame[name].std(ddof=1) if subsets > 1 else 0.0}
        | {"n": subsets, "subset_rows": size}
        for name in frame.columns
    ]
