"""A causal model of your own (mas_cli/data/causal.py): its counterfactuals are what the protocol
says (checked by plain loops), a hand-built module that holds one of its variables in one known
direction is found at k = 1 through `mas.wrap(task=...)` and `mas.align(data=...)`, and a changed
causal model refuses the old fit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import mas_cli as mas
from mas_cli.data.causal import counterfactuals

VOCAB = ["PAD", "BOS", "0", "1", "2", "3", "4", "=", "EOS"]
BOS, EQUALS, EOS, DIGIT = 1, 7, 8, 2  # a digit d is token DIGIT + d


class SumMod5:
    """s = (a + b) mod 5, read as `BOS a b = s EOS`: a is computed at position 1, b at 2."""

    name = "summod"
    vocab = VOCAB
    variables = ("a", "b", "s")
    modulus = 5

    def sample(self, rng):
        return {"a": int(rng.integers(5)), "b": int(rng.integers(5))}

    def run(self, inputs, intervention=None):
        fixed = intervention or {}
        a, b = fixed.get("a", inputs["a"]), fixed.get("b", inputs["b"])
        return {"a": a, "b": b, "s": fixed.get("s", (a + b) % self.modulus)}

    def render(self, inputs, values):
        return [BOS, DIGIT + inputs["a"], DIGIT + inputs["b"], EQUALS, DIGIT + values["s"], EOS], [3, 4]

    def position(self, variable, inputs):
        return {"a": 1, "b": 2, "s": 3}[variable]


class Planted(nn.Module):
    """z = [a, b, tokens read] after each token, stored rotated (h = R z) by a cell called once
    per position; the readout sums the two digits mod 5 from smooth beliefs about each, so an
    alignment can learn where a lives."""

    def __init__(self):
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(3)
            rotation, _ = torch.linalg.qr(torch.randn(3, 3))
        self.register_buffer("rotation", rotation)
        self.cell = Cell(rotation)

    def forward(self, tokens):
        state, states = tokens.new_zeros(len(tokens), 3, dtype=torch.float32), []
        for t in range(tokens.shape[1]):
            state = self.cell(tokens[:, t], state)
            states.append(state)
        return self.readout(torch.stack(states, 1) @ self.rotation)  # z = R^T h, row-wise

    def readout(self, z):
        digits = torch.arange(5, dtype=z.dtype)
        belief_a = torch.softmax(-4 * (z[..., :1] - digits) ** 2, -1)  # [B, L, 5]
        belief_b = torch.softmax(-4 * (z[..., 1:2] - digits) ** 2, -1)
        s = torch.stack([(belief_a * belief_b[..., (j - torch.arange(5)) % 5]).sum(-1) for j in range(5)], -1)
        logits = torch.full((*z.shape[:-1], len(VOCAB)), -30.0)
        answer = (z[..., 2] - 4).abs() < 0.5  # after `=`: say s; after s: EOS
        logits[..., DIGIT : DIGIT + 5] = torch.where(answer[..., None], s.clamp_min(1e-9).log(), -30.0)
        logits[..., EOS] = torch.where(answer, -30.0, 0.0)
        return logits


class Cell(nn.Module):
    def __init__(self, rotation):
        super().__init__()
        self.register_buffer("rotation", rotation)

    def forward(self, token, h):
        z = h @ self.rotation
        digit = (token - DIGIT).clamp(0, 4).to(z.dtype)
        read = z[:, 2].round()  # tokens read so far (a whole number up to rounding in the rotation)
        step = torch.stack([digit * (read == 1), digit * (read == 2), torch.ones_like(read)], 1)
        return (z + step) @ self.rotation.T


def test_counterfactuals_follow_the_protocol():
    model, rng = SumMod5(), np.random.default_rng(0)
    cf = counterfactuals(model, "a", 200, rng, same_position=False)
    replay = np.random.default_rng(0)
    for i in range(len(cf)):
        base, source = model.sample(replay), model.sample(replay)
        a = source["a"]
        assert cf.tokens[i].tolist() == [
            BOS,
            DIGIT + base["a"],
            DIGIT + base["b"],
            EQUALS,
            DIGIT + (a + base["b"]) % 5,
            EOS,
        ]
        assert cf.base[i].tolist()[4] == DIGIT + (base["a"] + base["b"]) % 5
        assert (cf.tau[i], cf.sigma[i]) == (1, 1) and np.flatnonzero(cf.label_mask[i]).tolist() == [3, 4]
        assert (cf.before["a"][i], cf.values["a"][i], cf.values["s"][i]) == (base["a"], a, (a + base["b"]) % 5)


def test_a_planted_variable_is_found_and_a_changed_model_refuses_the_old_fit(tmp_path):
    causal = SumMod5()
    planted = mas.wrap(Planted(), site="cell", task=causal, name="planted")
    assert planted.spec.label == "summod/planted/0" and planted.metrics["val_task_acc"] == 1.0
    settings = dict(method="das", k=1, swap="a", orthogonal_map="matrix_exp", budget="quick", root=tmp_path)
    fit = mas.align([planted], data=causal, overrides=["budget.align.batch_size=64"], **settings)
    (val,) = fit.iia[fit.iia.split == "val"].itertuples()
    assert val.iia >= 0.99 and val.iia_none < 0.5  # a is found in one direction; unswapped, s is rarely the same
    assert "-causal_summod" in fit.run_dir.parent.name
    changed = SumMod5()
    changed.modulus = 4  # other behaviour, same name
    with pytest.raises(mas.ConfigError, match="force=true"):
        mas.align([planted], data=changed, overrides=["budget.align.batch_size=64"], **settings)


def test_bad_causal_models_and_unwrapped_models_are_refused_in_one_line(tmp_path):
    with pytest.raises(mas.ConfigError, match="a causal model needs .* lacks render, position"):
        mas.align(
            ["gru:0"], data=type("Half", (), {"name": "h", "vocab": [], "variables": (), "sample": 0, "run": 0})()
        )
    with pytest.raises(mas.ConfigError, match="was not wrapped with the causal model summod"):
        mas.align(["gru:0"], root=tmp_path, data=SumMod5(), budget="smoke", allow_undertrained=True, swap="a")
