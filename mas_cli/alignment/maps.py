"""Alignment functions (docs/METHODS.md § MAS): one invertible map A_i per model, from its site space into the
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

from dataclasses import dataclass, replace

import torch
from torch import nn
from torch.nn.utils import parametrizations


def random_rotation(width: int, generator: torch.Generator | None) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(width, width, generator=generator))
    return q * torch.sign(torch.diagonal(r))  # sign fix: Haar-uniform


class AlignmentFunction(nn.Module):
    """What every alignment function shares: the fixed normalisation μ, s of its model's site."""

    def __init__(self, width: int):
        super().__init__()
        self.width = width
        self.register_buffer("center", torch.zeros(width))
        self.register_buffer("scale", torch.ones(()))

    @torch.no_grad()
    def fit_normalization(self, activations: torch.Tensor, normalize: str) -> None:
        """Set μ and s from natural site activations [N, d] (`normalize`: rms | none)."""
        if normalize == "rms":
            self.center.copy_(activations.mean(0))
            centred = activations - self.center
            self.scale.copy_(centred.pow(2).sum(-1).mean().sqrt().clamp(min=1e-6))

    def aligned(self, k: int) -> AlignedRows:
        raise NotImplementedError

    def matrix(self) -> torch.Tensor:
        """The full map [d, d] (functions that hold only k directions have none)."""
        raise NotImplementedError(f"{type(self).__name__} holds only its aligned directions")

    def inverse_matrix(self) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} holds only its aligned directions")

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """A(h) = M (h − μ)/s, [..., d] -> [..., d]."""
        return ((h - self.center) / self.scale) @ self.matrix().T

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """A⁻¹(z) = s·M⁻¹z + μ."""
        return self.scale * (z @ self.inverse_matrix().T) + self.center


class OrthogonalAlignment(AlignmentFunction):
    def __init__(self, width: int, orthogonal_map: str, generator: torch.Generator | None = None):
        super().__init__(width)
        linear = nn.Linear(width, width, bias=False)
        with torch.no_grad():  # a seeded random rotation as the starting point
            linear.weight.copy_(random_rotation(width, generator))
        # Trivialisation (PyTorch's default): Q = B·map(X) with B the starting rotation (a buffer)
        # and X a skew matrix that starts at zero; both are in the state_dict.
        self.map = parametrizations.orthogonal(linear, orthogonal_map=orthogonal_map)
        self.orthogonal_map = orthogonal_map

    def matrix(self) -> torch.Tensor:
        """Q [d, d]; row i is alignment coordinate i expressed in the (normalised) site space."""
        return self.map.weight

    def inverse_matrix(self) -> torch.Tensor:
        return self.matrix().T  # orthogonal

    def aligned(self, k: int) -> AlignedRows:
        """What an interchange needs: the first k rows of Q and μ, s."""
        rows = self._cayley_rows(k) if self.orthogonal_map == "cayley" else self.matrix()[:k]
        return AlignedRows(rows, self.center, self.scale)

    def _cayley_rows(self, k: int) -> torch.Tensor:
        """Q[:k] without forming Q. PyTorch's Cayley map is Q = B (I − A/2)⁻¹ (I + A/2), with B the
        starting rotation and A = X − Xᵀ from X's lower triangle. The two factors commute, so
        R = Q[:k] solves R (I − A/2) = B[:k] (I + A/2): one solve with k right-hand sides
        instead of d, and no d × d product with B: 1.3× less time per step at d 128, 2× at 256, 5×
        at 2048 (docs/BENCHMARKS.md); tests/test_alignment_functions.py checks it against Q[:k]."""
        parametrization = self.map.parametrizations.weight
        lower = parametrization.original.tril()
        skew = lower - lower.T
        base = parametrization[0].base[:k]
        eye = torch.eye(self.width, dtype=skew.dtype, device=skew.device)
        return torch.linalg.solve(torch.add(eye, skew, alpha=-0.5), base + 0.5 * (base @ skew), left=False)


def gram_schmidt(vectors: torch.Tensor) -> torch.Tensor:
    """Orthonormal rows spanning the rows of `vectors` [k, d], in order: row i is vector i minus
    its projections on rows 0..i-1, normalised. Computed as a QR factorisation with the signs
    fixed so that diag(R) > 0, which is exactly that Gram–Schmidt result (and stable)."""
    q, r = torch.linalg.qr(vectors.T)  # q [d, k]
    return (q * torch.sign(torch.diagonal(r))).T


class GramSchmidtAlignment(AlignmentFunction):
    """Only the k aligned directions: a free [k, d] basis re-orthonormalised by Gram–Schmidt at
    every forward pass, h_t' = h_t + Qᵀ(Q_s h_s − Q_t h_t). O(k·d) parameters and work instead of
    a d × d matrix and its O(d³) parametrisation: the cheap choice for wide models."""

    def __init__(self, width: int, k: int, generator: torch.Generator | None = None):
        super().__init__(width)
        self.basis = nn.Parameter(random_rotation(width, generator)[:k].clone())

    def aligned(self, k: int) -> AlignedRows:
        if k != self.basis.shape[0]:
            raise ValueError(f"this Gram–Schmidt function holds {self.basis.shape[0]} directions, not {k}")
        return AlignedRows(gram_schmidt(self.basis), self.center, self.scale)


class LinearAlignment(AlignmentFunction):
    """A general invertible map A(h) = W (h − μ)/s. The swap reads the first k rows of W and
    writes through the first k columns of W⁻¹: h_t' = h_t + s_t W_t⁻¹[:, :k] (A_s(h_s) − A_t(h_t))[:k]."""

    def __init__(self, width: int, generator: torch.Generator | None = None):
        super().__init__(width)
        self.weight = nn.Parameter(random_rotation(width, generator))  # starts orthogonal

    def matrix(self) -> torch.Tensor:
        return self.weight

    def inverse_matrix(self) -> torch.Tensor:
        return torch.linalg.inv(self.weight)

    def aligned(self, k: int) -> AlignedRows:
        return AlignedRows(self.weight[:k], self.center, self.scale, self.inverse_matrix()[:, :k].T)


# align_fn (alignment/settings.py lists the same names) -> a fresh function for width, k, orthogonal_map
ALIGNMENT_FUNCTIONS = {
    "orthogonal": lambda width, k, orthogonal_map, generator: OrthogonalAlignment(width, orthogonal_map, generator),
    "gram_schmidt": lambda width, k, orthogonal_map, generator: GramSchmidtAlignment(width, k, generator),
    "linear": lambda width, k, orthogonal_map, generator: LinearAlignment(width, generator),
}


def make_alignment(align_fn: str, width: int, k: int, orthogonal_map: str, generator) -> AlignmentFunction:
    return ALIGNMENT_FUNCTIONS[align_fn](width, k, orthogonal_map, generator)


@dataclass
class AlignedRows:
    """The aligned part of one alignment function: A(h)[:k] = rows · (h − center) / scale, and
    the site-space directions a change of those k coordinates is written along (`write_rows`;
    the rows themselves for orthonormal rows)."""

    rows: torch.Tensor  # [k, d]
    center: torch.Tensor  # [d]
    scale: torch.Tensor  # []
    write_rows: torch.Tensor | None = None  # [k, d]; None: the rows

    def block(self, first: int, stop: int) -> AlignedRows:
        """Coordinates first..stop-1 only (one variable's block)."""
        write = None if self.write_rows is None else self.write_rows[first:stop]
        return replace(self, rows=self.rows[first:stop], write_rows=write)  # every other field as it is

    def normalized(self, h: torch.Tensor) -> torch.Tensor:
        """(h − center) / scale: the site before the rotation."""
        return (h - self.center) / self.scale

    def coordinates(self, h: torch.Tensor) -> torch.Tensor:
        return self.normalized(h) @ self.rows.T  # [..., k]

    def write(self, delta: torch.Tensor) -> torch.Tensor:
        """The site-space change that moves the aligned coordinates by delta [..., k]."""
        return self.scale * (delta @ (self.rows if self.write_rows is None else self.write_rows))
