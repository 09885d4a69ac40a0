"""One door for every model: the generic hook path reads and continues any registered
architecture, and every fast path equals it, in values and in gradients; site names resolve to
modules, and a wrong one is told with the nearest real ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mas_cli.alignment.items import direction_data
from mas_cli.architectures import names
from mas_cli.continuation import continuation_for
from mas_cli.continuation.hooks import SiteRef, collect, patched
from mas_cli.continuation.sites import describe_sites, layer_stack, resolve_site
from mas_cli.errors import ConfigError
from mas_cli.models import build_model
from mas_cli.specs import ModelSpec
from mas_cli.tasks import CountingTask, make_counterfactuals
from mas_cli.zoo import FrozenModel
from tests.cli import run_printing

pytestmark = pytest.mark.fast  # pure computation: the tier a developer runs while working

TASK = CountingTask(name="count", variant="multi_object", void_p=0.2)
# every registered architecture, and the transformer with two layers above its site (the fast
# path's full re-run branch)
CASES = [(arch, 2) for arch in names()] + [("transformer", 3)]


def random_model(arch: str, layers: int, site: str, fast: bool, seed: int = 0) -> FrozenModel:
    torch.manual_seed(seed)
    model = build_model(arch, len(TASK.vocab), {"width": 16, "layers": layers, "hidden_layer": 1})
    model.eval().requires_grad_(False)
    found = FrozenModel(ModelSpec(TASK.name, arch, seed), None, model, TASK, {})
    found._continuations[site] = continuation_for(model, site, fast=fast)
    return found


def in_order(scored) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(logits, labels, (item, column) keys) sorted by item, then column."""
    logits, labels, item, column = scored
    key = item * 10_000 + column
    order = torch.argsort(key)
    return logits[order], labels[order], key[order]


@pytest.mark.parametrize("site", ["hidden", "embed"])
@pytest.mark.parametrize(("arch", "layers"), CASES, ids=[f"{a}-{n}layers" for a, n in CASES])
def test_every_fast_path_equals_the_generic_hook_path(arch, layers, site):
    fast, generic = (random_model(arch, layers, site, fast=f) for f in (True, False))
    cf = make_counterfactuals(TASK, 24, "count", np.random.default_rng(1), same_position=site == "embed")
    tokens, tau = torch.from_numpy(cf.tokens), torch.from_numpy(cf.tau)
    a, b = fast.at(site), generic.at(site)
    width = a.width()
    assert b.width() == width
    torch.testing.assert_close(a.collect_all(tokens), b.collect_all(tokens), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a.collect_at(tokens, tau), b.collect_at(tokens, tau), atol=1e-5, rtol=1e-5)
    batches = [direction_data(cf, m, m, site, "cpu").take(np.arange(24)) for m in (fast, generic)]
    generator = torch.Generator().manual_seed(2)
    if site == "embed":
        given = torch.randn(24, batches[0].labels.shape[1], width, generator=generator, requires_grad=True)
        found = [in_order(c.embed(given, batch)) for c, batch in zip((a, b), batches)]
    else:
        torch.testing.assert_close(batches[0].target_state, batches[1].target_state, atol=1e-5, rtol=1e-5)
        given = (batches[0].target_state + torch.randn(24, width, generator=generator)).requires_grad_()
        found = [in_order(c.hidden(given, batch)) for c, batch in zip((a, b), batches)]
    (fast_logits, fast_labels, fast_keys), (slow_logits, slow_labels, slow_keys) = found
    assert torch.equal(fast_keys, slow_keys) and torch.equal(fast_labels, slow_labels)
    assert len(fast_keys) > 24  # every item has scored predictions
    torch.testing.assert_close(fast_logits, slow_logits, atol=1e-4, rtol=1e-4)
    weights = torch.randn(*fast_logits.shape, generator=generator)
    (fast_grad,) = torch.autograd.grad((fast_logits * weights).sum(), given)
    (slow_grad,) = torch.autograd.grad((slow_logits * weights).sum(), given)
    assert slow_grad.abs().max() > 1e-3  # the logits do depend on what was written
    torch.testing.assert_close(fast_grad, slow_grad, atol=1e-4, rtol=1e-3)


# ---- the generic path itself, on modules written here ---------------------------------------
class Stepper(nn.Module):
    """A model whose site runs once per position: the state after token t is
    step([state_{t-1}; embedding(token_t)]), step = tanh ∘ linear."""

    def __init__(self):
        super().__init__()
        self.embedding, self.out = nn.Embedding(7, 4), nn.Linear(4, 7)
        self.step = nn.Sequential(nn.Linear(8, 4), nn.Tanh())

    def forward(self, tokens):
        state, outs = torch.zeros(len(tokens), 4), []
        for t in range(tokens.shape[1]):
            state = self.step(torch.cat([state, self.embedding(tokens[:, t])], -1))
            outs.append(state)
        return self.out(torch.stack(outs, 1))


class Layered(nn.Module):
    """Layers that return tuples, as HuggingFace decoder layers may."""

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.mix = nn.Linear(4, 4)

        def forward(self, hidden_states):
            return (hidden_states + self.mix(hidden_states).cumsum(1), "attention weights")

    def __init__(self):
        super().__init__()
        self.embedding, self.layers, self.out = nn.Embedding(7, 4), nn.ModuleList(), nn.Linear(4, 7)
        self.layers.extend([self.Layer(), self.Layer(), self.Layer()])
        self.other = nn.ModuleList([nn.Identity()])

    def forward(self, tokens):
        x = self.embedding(tokens)
        for layer in self.layers:
            x = layer(x)[0]
        return self.out(x)


def test_collect_reads_a_site_that_runs_once_per_position_or_once_per_sequence():
    torch.manual_seed(0)
    tokens = torch.randint(0, 7, (3, 5))
    stepper = Stepper()
    every = collect(stepper, stepper.step, "output", tokens)
    state = torch.zeros(3, 4)
    for t in range(5):  # written out: the state after token t
        state = torch.tanh(stepper.step[0](torch.cat([state, stepper.embedding(tokens[:, t])], -1)))
        torch.testing.assert_close(every[:, t], state)
    at = torch.tensor([0, 4, 2])
    torch.testing.assert_close(collect(stepper, stepper.step, "output", tokens, at), every[torch.arange(3), at])
    layered = Layered()
    second = collect(layered, layered.layers[1], "output", tokens)  # the tuple's first element
    x = layered.embedding(tokens)
    expected = layered.layers[1](layered.layers[0](x)[0])[0]
    torch.testing.assert_close(second, expected)
    torch.testing.assert_close(collect(layered, layered.layers[1], "input", tokens), layered.layers[0](x)[0])


def test_patched_replaces_exactly_the_given_positions_and_passes_gradients():
    torch.manual_seed(0)
    tokens = torch.randint(0, 7, (2, 6))
    layered = Layered()
    values = torch.randn(2, 4, requires_grad=True)
    rows, positions = torch.tensor([0, 1]), torch.tensor([2, 4])
    logits = patched(layered, layered.layers[0], "output", tokens, rows, positions, values)
    x = layered.layers[0](layered.embedding(tokens))[0].clone()
    x[rows, positions] = values
    expected = layered.out(layered.layers[2](layered.layers[1](x)[0])[0])
    torch.testing.assert_close(logits, expected)
    (grad,) = torch.autograd.grad(logits.sum(), values)
    assert grad.abs().sum() > 0
    stepper = Stepper()
    moved = patched(stepper, stepper.step, "output", tokens, rows, positions, values)
    plain = stepper(tokens)
    torch.testing.assert_close(moved[0, :2], plain[0, :2])  # before the patched position: unchanged
    assert not torch.allclose(moved[0, 2:], plain[0, 2:])


def test_site_names_resolve_to_modules_and_a_wrong_one_says_what_is_there():
    layered = Layered()
    assert layer_stack(layered) == "layers"  # the longest stack of one class
    assert resolve_site(layered, "layer:2") == SiteRef("layers.2")
    assert resolve_site(layered, "layers.1") == SiteRef("layers.1")
    assert resolve_site(layered, "layers.1.input") == SiteRef("layers.1", "input")
    assert resolve_site(layered, "layers.0.mix.output") == SiteRef("layers.0.mix")
    with pytest.raises(ConfigError, match=r"site=layerz.1: the model has no module layerz.1; did you mean layers.1"):
        resolve_site(layered, "layerz.1")
    with pytest.raises(ConfigError, match=r"layers 0..2"):
        resolve_site(layered, "layer:3")
    gru = build_model("gru", 9, {"width": 16})
    assert resolve_site(gru, "hidden") == SiteRef("cell") and resolve_site(gru, "embed") == SiteRef("embedding")
    listed = {path: shape for path, _, shape in describe_sites(gru)}
    assert listed["cell"] == (1, 16) and listed["embedding"] == (1, 2, 16)


def test_mas_sites_lists_every_module_with_its_shape_and_the_named_sites(tmp_path):
    code, out, err = run_printing(["sites", "arch=hf_llama"], tmp_path)
    assert code == 0, err
    lines = out.splitlines()
    assert "  hidden     model.layers.0" in out and "[1, 2, 64]" in out
    assert any(line.split()[:2] == ["model.layers.1.self_attn.q_proj", "Linear"] for line in lines)
    assert all(len(line) <= 80 for line in lines)
    code, out, _ = run_printing(["sites", "arch=lstm", "arch.width=8"], tmp_path)
    assert code == 0 and "  hidden     cell" in out and "[1, 8]" in out  # one call per position: [B, D]
    assert not list(tmp_path.iterdir())  # nothing written
