"""The frozen-RNN suffix kernel equals the model's own nn.GRU / nn.LSTM over the same packed
suffixes: outputs and the gradient with respect to the intervened state, and the outputs of
the evaluation path (a state that needs no gradient: no backward factors computed), at several
widths."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

from mas_cli.continuation.suffix_kernel import SuffixKernel
from mas_cli.models import build_model

pytestmark = pytest.mark.fast  # pure computation: the tier a developer runs while working


@pytest.mark.parametrize("arch", ["gru", "lstm"])
@pytest.mark.parametrize("width", [16, 20, 32])
def test_the_kernel_equals_the_models_own_rnn(arch, width):
    torch.manual_seed(0)
    model = build_model(arch, 9, {"width": width}).eval().requires_grad_(False)
    rng = np.random.default_rng(1)
    lengths = torch.from_numpy(np.sort(rng.integers(1, 12, size=20))[::-1].copy())
    tokens = torch.from_numpy(rng.integers(0, 9, size=(20, 12)))
    state = torch.randn(20, model.site_width(), requires_grad=True)
    weights = torch.randn(int(lengths.sum()), width // 2 if arch == "lstm" else width)

    packed = pack_padded_sequence(model.embed(tokens), lengths, batch_first=True)
    expected = model.run_packed(packed, state)
    (expected * weights).sum().backward()
    expected_grad, state.grad = state.grad.clone(), None

    token_rows = pack_padded_sequence(tokens, lengths, batch_first=True)
    kernel = SuffixKernel(model)
    found = kernel.run(state, token_rows.data, token_rows.batch_sizes.tolist())
    (found * weights).sum().backward()
    torch.testing.assert_close(found, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(state.grad, expected_grad, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        evaluated = kernel.run(state.detach(), token_rows.data, token_rows.batch_sizes.tolist())
    torch.testing.assert_close(evaluated, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("arch", ["gru", "lstm"])
def test_the_kernel_reorders_the_state_and_keeps_only_the_asked_rows(arch):
    """`order` and `keep` equal indexing the state before and the outputs after, values and
    gradients (the gradient of rows not kept is zero; every state row gets its own gradient)."""
    torch.manual_seed(2)
    model = build_model(arch, 9, {"width": 16}).eval().requires_grad_(False)
    rng = np.random.default_rng(3)
    lengths = torch.from_numpy(np.sort(rng.integers(1, 10, size=15))[::-1].copy())
    tokens = torch.from_numpy(rng.integers(0, 9, size=(15, 10)))
    order = torch.from_numpy(rng.permutation(15))
    keep = torch.from_numpy(np.sort(rng.choice(int(lengths.sum()), size=40, replace=False)))
    state = torch.randn(15, model.site_width(), requires_grad=True)
    weights = torch.randn(40, 8 if arch == "lstm" else 16)

    packed = pack_padded_sequence(model.embed(tokens), lengths, batch_first=True)
    expected = model.run_packed(packed, state[order])[keep]
    (expected * weights).sum().backward()
    expected_grad, state.grad = state.grad.clone(), None

    token_rows = pack_padded_sequence(tokens, lengths, batch_first=True)
    found = SuffixKernel(model).run(state, token_rows.data, token_rows.batch_sizes.tolist(), order, keep)
    (found * weights).sum().backward()
    torch.testing.assert_close(found, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(state.grad, expected_grad, atol=1e-5, rtol=1e-5)


def test_a_state_row_without_a_step_is_refused():
    """Step 0 must hold every state row: the state's gradient has one row per state row."""
    model = build_model("gru", 9, {"width": 16}).eval().requires_grad_(False)
    with pytest.raises(ValueError, match="at least one step"):
        SuffixKernel(model).run(torch.zeros(3, 16), torch.zeros(2, dtype=torch.long), [2])
