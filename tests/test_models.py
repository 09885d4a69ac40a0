"""Model zoo: shapes, both alignment sites, and the continue-from-state contract (of the plain
reference path the engine's fast paths are tested against)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mas_cli.alignment.reference import continue_from, logits_from_embeddings
from mas_cli.composition import config_names
from mas_cli.models import ARCHITECTURES, build_model, model_spec
from mas_cli.tasks import CountingTask

TASK = CountingTask(void_p=0.2)
WIDTH = 32


@pytest.fixture(params=sorted(ARCHITECTURES))
def model(request):
    torch.manual_seed(0)
    return build_model(request.param, len(TASK.vocab), {"width": WIDTH, "dropout": 0.5}).eval()


@pytest.fixture
def tokens():
    return torch.from_numpy(TASK.sample(16, np.random.default_rng(0)).tokens)


def test_every_arch_option_in_conf_is_an_architecture():
    assert config_names("arch") == sorted(ARCHITECTURES)


def test_shapes_and_sites(model, tokens):
    batch, length = tokens.shape
    assert model(tokens).shape == (batch, length, len(TASK.vocab))
    assert model.embed(tokens).shape == (batch, length, model.site_width("embed"))
    assert model.hidden_states(tokens).shape == (batch, length, model.site_width("hidden"))
    assert model.site_width("hidden") == WIDTH


def test_continue_from_own_state_reproduces_the_forward_pass(model, tokens):
    tau = torch.from_numpy(np.random.default_rng(1).integers(0, 20, len(tokens)))
    state = model.hidden_states(tokens)[torch.arange(len(tokens)), tau]
    after = torch.arange(tokens.shape[1])[None, :] >= tau[:, None]
    continued = continue_from(model, state, tokens, tau)
    torch.testing.assert_close(continued[after], model(tokens)[after], atol=1e-5, rtol=1e-5)


def test_continue_from_uses_the_given_state(model, tokens):
    tau = torch.full((len(tokens),), 3)
    state = model.hidden_states(tokens)[:, 3]
    moved = continue_from(model, state + 1.0, tokens, tau)
    assert not torch.allclose(moved[:, 3:], model(tokens)[:, 3:])


def test_embed_site_round_trip(model, tokens):
    torch.testing.assert_close(logits_from_embeddings(model, model.embed(tokens)), model(tokens))


def test_model_is_causal(model, tokens):
    """Changing a later token never changes an earlier prediction."""
    changed = tokens.clone()
    changed[:, 10] = TASK.void
    torch.testing.assert_close(model(changed)[:, :10], model(tokens)[:, :10])


def test_lstm_cell_states_match_a_step_by_step_loop(tokens):
    torch.manual_seed(0)
    model = build_model("lstm", len(TASK.vocab), {"width": WIDTH}).eval()
    cell = nn.LSTMCell(WIDTH, WIDTH // 2)
    cell.load_state_dict({k.removesuffix("_l0"): v for k, v in model.rnn.state_dict().items()})
    h = c = torch.zeros(len(tokens), WIDTH // 2)
    expected = []
    for t in range(tokens.shape[1]):
        h, c = cell(model.embedding(tokens[:, t]), (h, c))
        expected.append(torch.cat([h, c], -1))
    torch.testing.assert_close(model.hidden_states(tokens), torch.stack(expected, 1), atol=1e-5, rtol=1e-5)


def test_model_spec_rebuilds_an_identical_model(model, tokens):
    spec = model_spec(model)
    rebuilt = build_model(spec["arch"], len(TASK.vocab), spec["config"]).eval()
    rebuilt.load_state_dict(model.state_dict())
    torch.testing.assert_close(rebuilt(tokens), model(tokens))


@pytest.mark.parametrize("arch", ["gru", "lstm"])
def test_state_after_a_prefix_is_the_hidden_site_there(arch, tokens):
    model = build_model(arch, len(TASK.vocab), {"width": 16}).eval()
    at = torch.from_numpy(np.random.default_rng(1).integers(0, tokens.shape[1], len(tokens)))
    expected = model.hidden_states(tokens)[torch.arange(len(tokens)), at]
    torch.testing.assert_close(model.state_after(tokens, at), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_readout_dropout_keeps_each_unit_with_probability_one_minus_p(p):
    """The readout's dropout (a uniform draw, not bernoulli_): every unit is either dropped (0) or
    kept and scaled by exactly 1 / (1 − p), kept at rate 1 − p (here within 5 standard errors of
    a binomial over 10⁶ units), its gradient the same mask; off in eval mode."""
    from mas_cli.models.base import Dropout

    torch.manual_seed(0)
    dropout = Dropout(p)
    x = (torch.rand(1000, 1000) + 0.5).requires_grad_()  # no zeros: a zero output means dropped
    y = dropout(x)
    kept = y != 0
    torch.testing.assert_close(y[kept], x[kept] / (1 - p))  # float32 rounding of the scale aside
    standard_error = (p * (1 - p) / kept.numel()) ** 0.5
    assert abs(kept.float().mean().item() - (1 - p)) < 5 * standard_error
    y.sum().backward()
    torch.testing.assert_close(x.grad, kept.float() / (1 - p))
    assert torch.equal(dropout.eval()(x), x)
