"""The orthogonal function's aligned rows, computed without forming Q, against PyTorch's own Q."""

from __future__ import annotations

import pytest
import torch

from mas_cli.alignment.maps import OrthogonalAlignment
from mas_cli.alignment.settings import ORTHOGONAL_MAPS

pytestmark = pytest.mark.fast  # pure computation: the tier a developer runs while working


@pytest.mark.parametrize("orthogonal_map", ORTHOGONAL_MAPS)
@pytest.mark.parametrize("width,k", [(12, 3), (9, 9), (16, 1)])
def test_aligned_rows_and_their_gradient_are_the_first_rows_of_q(orthogonal_map, width, k):
    a = OrthogonalAlignment(width, orthogonal_map, torch.Generator().manual_seed(0))
    with torch.no_grad():  # away from the start, where the skew part is zero
        a.map.parametrizations.weight.original.normal_(0, 0.3, generator=torch.Generator().manual_seed(1))
    weights = torch.randn(k, width, generator=torch.Generator().manual_seed(2))
    grads = []
    for rows in (lambda: a.aligned(k).rows, lambda: a.matrix()[:k]):  # the function's, PyTorch's Q
        a.zero_grad()
        (rows() * weights).sum().backward()
        grads.append(a.map.parametrizations.weight.original.grad.clone())
    torch.testing.assert_close(a.aligned(k).rows, a.matrix()[:k], atol=1e-6, rtol=0)
    torch.testing.assert_close(grads[0], grads[1], atol=1e-5, rtol=0)
    rows = a.aligned(k).rows.detach()
    torch.testing.assert_close(rows @ rows.T, torch.eye(k), atol=1e-5, rtol=0)  # orthonormal rows
