"""Alignment functions (SPEC §5): one invertible map A_i per model, from its site space into the
alignment space, where coordinates 0..k-1 hold the swapped variable.

The orthogonal map uses PyTorch's parametrisation, so the matrix stays exactly orthogonal under
any optimiser step; A(h) = Q h and A⁻¹(z) = Qᵀ z.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrizations

ORTHOGONAL_MAPS = ("matrix_exp", "cayley")


class OrthogonalAlignment(nn.Module):
    """A(h) = Q h with Q a d × d orthogonal matrix (`orthogonal_map`: matrix_exp | cayley)."""

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

    def matrix(self) -> torch.Tensor:
        """Q [d, d]; row i is alignment coordinate i expressed in the site space."""
        return self.map.weight

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h @ self.matrix().T  # [..., d] -> alignment coordinates [..., d]

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.matrix()
