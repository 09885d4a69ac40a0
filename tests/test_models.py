"""Model zoo: shapes, both named sites, the plain forward equal to the fused features, and the
continue-from-state contract of the generic hook path (which the fast paths are tested against)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mas_cli.architectures import names
from mas_cli.composition import config_names
from mas_cli.continuation import continuation_for
from mas_cli.continuation.hooks import patched
from mas_cli.models import build_model, model_spec
from mas_cli.tasks import CountingTask

pytestmark = pytest.mark.fast  # pure computation: the tier a developer runs while working

TASK = CountingTask(void_p=0.2)
WIDTH = 32  # the zoo's (HuggingFace models keep their YAML's sizes)


@pytest.fixture(params=names())
def model(request):
    torch.manual_seed(0)
    return build_model(request.param, len(TASK.vocab), {"width": WIDTH, "dropout": 0.5}).eval()


def declared_width(model) -> int:
    """The width the model's own config states for both its named sites."""
    return model.hf.config.hidden_size if hasattr(model, "hf") else model.config.width


@pytest.fixture
def tokens():
    return torch.from_numpy(TASK.sample(16, np.random.default_rng(0)).tokens)


def test_every_arch_option_in_conf_is_an_architecture():
    assert config_names("arch") == names()


def test_shapes_and_sites(model, tokens):
    batch, length = tokens.shape
    assert model(tokens).shape == (batch, length, len(TASK.vocab))
    for site in ("hidden", "embed"):
        generic = continuation_for(model, site, fast=False)
        width = declared_width(model)
        assert generic.collect_all(tokens).shape == (batch, length, width) and generic.width() == width


def test_the_plain_forward_equals_the_fused_features(model, tokens):
    """`forward` is the definition hooks follow (an RNN steps through its cell); training reads the
    fused kernels' features: the two are the same function."""
    torch.testing.assert_close(model(tokens), model.readout(model.features(tokens)), atol=1e-5, rtol=1e-5)


def continued(model, tokens, tau, state):
    """Logits when the hidden site at tau[b] becomes state[b] (the generic hook path)."""
    generic = continuation_for(model, "hidden", fast=False)
    return patched(model, generic.module, "output", tokens, torch.arange(len(tokens)), tau, state)


def test_continuing_from_its_own_state_reproduces_the_forward_pass(model, tokens):
    tau = torch.from_numpy(np.random.default_rng(1).integers(0, 20, len(tokens)))
    state = continuation_for(model, "hidden", fast=False).collect_at(tokens, tau)
    torch.testing.assert_close(continued(model, tokens, tau, state), model(tokens), atol=1e-5, rtol=1e-5)


def test_continuing_from_another_state_changes_only_what_follows(model, tokens):
    tau = torch.full((len(tokens),), 3)
    state = continuation_for(model, "hidden", fast=False).collect_at(tokens, tau)
    moved = continued(model, tokens, tau, state + 1.0)
    torch.testing.assert_close(moved[:, :3], model(tokens)[:, :3])
    assert not torch.allclose(moved[:, 3:], model(tokens)[:, 3:])


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
