"""Alignment functions (SPEC §5): one invertible map A_i per model, from its site space into the
alignment space, where coordinates 0..k-1 hold the swapped variable.

    A(h) = Q (h − μ) / s        A⁻¹(z) = s Qᵀ z + μ

Q is a d × d orthogonal matrix under PyTorch's parametrisation (it stays exactly orthogonal under
any optimiser step). μ and s are fixed before training from the model's own natural activations
(`normalize=rms`: μ the mean site vector, s the RMS norm of the centred site; `normalize=none`:
μ = 0, s = 1, the paper's plain orthogonal map). A within-model swap is the same with or without
them (they cancel); across models they let networks whose activations differ in scale exchange
values — an LSTM's cell state counts in units of 1 while a GRU's state is bounded by 1, and no
rotation can bridge that (docs/BENCHMARKS.md has the measurement).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import parametrizations

ORTHOGONAL_MAPS = ("matrix_exp", "cayley")
NORMALIZATIONS = ("rms", "none")


class OrthogonalAlignment(nn.Module):
    def __init__(self, width: int, orthogonal_map: str = "matrix_exp", generator: torch.Generator | None = None):
        super().__init__()
        self.width = width
        linear = nn.Linear(width, width, bias=False)
        with torch.no_grad():  # a seeded random rotation as the starting point
            q, r = torch.linalg.qr(torch.randn(width, width, generator=generator))
            linear.weight.copy_(q * torch.sign(torch.diagonal(r)))  # sign fix: Haar-uniform
        # Trivialisation (PyTorch's default): Q = B·map(X) with B the starting rotation (a buffer)
        # and X a skew matrix that starts at zero; both are in the state_dict.
        self.map = parametrizations.orthogonal(linear, orthogonal_map=orthogonal_map)
        self.register_buffer("center", torch.zeros(width))
        self.register_buffer("scale", torch.ones(()))

    @torch.no_grad()
    def fit_normalization(self, activations: torch.Tensor, normalize: str) -> None:
        """Set μ and s from natural site activations [N, d] (`normalize`: rms | none)."""
        if normalize == "rms":
            self.center.copy_(activations.mean(0))
            centred = activations - self.center
            self.scale.copy_(centred.pow(2).sum(-1).mean().sqrt().clamp(min=1e-6))

    def matrix(self) -> torch.Tensor:
        """Q [d, d]; row i is alignment coordinate i expressed in the (normalised) site space."""
        return self.map.weight

    def aligned(self, k: int) -> AlignedRows:
        """What an interchange needs: the first k rows of Q (one parametrisation call) and μ, s."""
        return AlignedRows(self.matrix()[:k], self.center, self.scale)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return ((h - self.center) / self.scale) @ self.matrix().T  # [..., d] -> [..., d]

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        return self.scale * (z @ self.matrix()) + self.center


@dataclass
class AlignedRows:
    """The aligned part of one alignment function: A(h)[:k] = rows · (h − center) / scale."""

    rows: torch.Tensor  # [k, d]
    center: torch.Tensor  # [d]
    scale: torch.Tensor  # []

    def normalized(self, h: torch.Tensor) -> torch.Tensor:
        """(h − center) / scale: the site before the rotation."""
        return (h - self.center) / self.scale

    def coordinates(self, h: torch.Tensor) -> torch.Tensor:
        return self.normalized(h) @ self.rows.T  # [..., k]

    def write(self, delta: torch.Tensor) -> torch.Tensor:
        """The site-space change that moves the aligned coordinates by delta [..., k]."""
        return self.scale * (delta @ self.rows)
