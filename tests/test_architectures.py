"""Adding an architecture is one class and one registry line: a dummy defined here (and registered
by a fixture, nothing else edited) trains, aligns, and is scored by the oracle like the zoo; every
registered architecture's named sites have the widths its config states and its fits meet the
oracle; without the HuggingFace extra, an HF architecture is one line naming it."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

import mas_cli as mas
from mas_cli import architectures
from mas_cli.config import positive_int
from mas_cli.continuation import continuation_for
from mas_cli.models import build_model
from tests.cli import assert_one_line, run
from tests.oracle import engine_row, oracle


class Dummy(nn.Module):
    """A tanh RNN whose step is its own module, the whole architecture in one class: the state
    after token t is tanh(W [state; embedding(token_t)]), read out linearly."""

    @dataclass
    class Config:
        vocab_size: int
        width: int = 12

        @staticmethod
        def check(settings) -> None:
            positive_int(settings.width, "arch.width")

    def __init__(self, config: Config):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.width)
        self.step = nn.Sequential(nn.Linear(2 * config.width, config.width), nn.Tanh())
        self.readout = nn.Linear(config.width, config.vocab_size)

    def site_paths(self) -> dict[str, str]:
        return {"hidden": "step", "embed": "embedding"}

    def features(self, tokens: torch.Tensor) -> torch.Tensor:
        inputs = self.embedding(tokens)
        state, states = inputs.new_zeros(len(tokens), self.config.width), []
        for t in range(tokens.shape[1]):
            state = self.step(torch.cat([state, inputs[:, t]], -1))
            states.append(state)
        return torch.stack(states, 1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.readout(self.features(tokens))


@pytest.fixture
def dummy():
    architectures.register("dummy", Dummy)
    yield "dummy"
    architectures.unregister("dummy")


def test_a_dummy_architecture_trains_aligns_and_meets_the_oracle(dummy, tmp_path):
    smoke = ["budget=smoke", f"paths.root={tmp_path}"]
    assert run(["train", f"arch={dummy}", *smoke], tmp_path) == (0, "")
    assert run(["train", f"arch={dummy}", "arch.width=0", *smoke], tmp_path)[1].startswith("error: arch.width must")
    fit = mas.align([f"{dummy}:0", "gru:0"], root=tmp_path, k=4, budget="smoke", allow_undertrained=True)
    assert set(fit.iia.trg) == {f"count/{dummy}/0", "count/gru/0"}
    for source, target in ((0, 0), (0, 1), (1, 0)):
        row, found = engine_row(fit, source, target), oracle(fit, source, target)
        assert (row.iia, row.tok_acc, row.n) == (found["iia"], found["tok_acc"], found["n"])
        assert 0 < row.tok_acc < 1  # scored predictions that differ: the comparison can fail


@pytest.mark.parametrize("arch", architectures.names())
def test_every_architecture_states_its_site_widths_and_has_them(arch):
    """The named sites' widths, read off the model by a probe, are what its config says."""
    model = build_model(arch, 18, {})
    declared = model.hf.config.hidden_size if hasattr(model, "hf") else model.config.width
    for site in ("hidden", "embed"):
        assert continuation_for(model, site, fast=False).width() == declared


def test_without_transformers_an_hf_architecture_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # `import transformers` now fails, as uninstalled
    code, err = run(["train", "arch=hf_llama", "budget=smoke", f"paths.root={tmp_path / 'out'}"], tmp_path)
    assert_one_line(code, err, 'arch=hf_llama needs the HuggingFace extra: pip install -e ".[hf]"')
    assert not (tmp_path / "out").exists()


def test_hf_weights_are_stored_as_safetensors_and_load_back(tmp_path):
    result = mas.train(arch="hf_gpt2", root=tmp_path, budget="smoke")
    folder = result.entry.resolve()
    assert (folder / "model.safetensors").is_file()
    loaded = mas.load_model("hf_gpt2", root=tmp_path, allow_undertrained=True)
    tokens = torch.from_numpy(loaded.task.sample(4, np.random.default_rng(0)).tokens)
    rebuilt = build_model("hf_gpt2", len(loaded.task.vocab), {})
    from safetensors.torch import load_model

    load_model(rebuilt, folder / "model.safetensors")
    torch.testing.assert_close(loaded.model(tokens), rebuilt.eval()(tokens))


@pytest.fixture(scope="module")
def smoke_root(tmp_path_factory):
    return tmp_path_factory.mktemp("every-arch")


@pytest.mark.parametrize("arch", architectures.names())
def test_every_architecture_meets_the_oracle_item_by_item(smoke_root, arch):
    """A fit into and out of each registered architecture (beside a GRU; a GRU beside an LSTM) is
    scored by the oracle's own hooks exactly as the engine scores it."""
    partner = "lstm:0" if arch == "gru" else "gru:0"
    fit = mas.align([f"{arch}:0", partner], root=smoke_root, k=4, budget="smoke", allow_undertrained=True)
    for source, target in ((0, 0), (0, 1), (1, 0)):
        row, found = engine_row(fit, source, target), oracle(fit, source, target)
        assert (row.iia, row.tok_acc, row.n) == (found["iia"], found["tok_acc"], found["n"])
        assert row.n > 0 and row.tok_acc > 0  # scored predictions, some right: the comparison can fail
