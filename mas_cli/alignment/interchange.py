"""The interchange intervention (docs/METHODS.md § MAS), in the two forms the methods use.

    h_t' = A_t⁻¹( (1 − M_k) ⊙ A_t(h_t) + M_k ⊙ A_s(h_s) )

With A(h) = Q(h − μ)/s (maps.py) and M_k the first k coordinates this is
h_t + s_t·Q_t[:k]ᵀ(A_s(h_s)[:k] − A_t(h_t)[:k]): only the k aligned rows of each Q are needed,
which is what `swap` computes. Stitching's zero mask discards the target's own aligned vector:
h_t' = A_t⁻¹(M_k ⊙ A_s(h_s)) = μ_t + s_t·Q_t[:k]ᵀ A_s(h_s)[:k] (`stitch`).

Which one a method uses is its `zero_mask` (methods.py); `interchange_of` picks it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from mas_cli.alignment.maps import AlignedRows

Interchange = Callable[[torch.Tensor, torch.Tensor, AlignedRows, AlignedRows], torch.Tensor]


def swap(h_target: torch.Tensor, h_source: torch.Tensor, target: AlignedRows, source: AlignedRows) -> torch.Tensor:
    """h_t' for [..., d_t] and [..., d_s] vectors: the target keeps everything but its aligned
    coordinates, which take the source's."""
    return h_target + target.write(source.coordinates(h_source) - target.coordinates(h_target))


def stitch(h_target: torch.Tensor, h_source: torch.Tensor, target: AlignedRows, source: AlignedRows) -> torch.Tensor:
    """h_t' with the zero mask: only the source's aligned coordinates, written into the target's
    space around its centre (h_target is not read: the target's own vector is discarded)."""
    return target.center + target.write(source.coordinates(h_source))


def interchange_of(zero_mask: bool) -> Interchange:
    return stitch if zero_mask else swap
