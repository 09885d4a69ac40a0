"""CLMAS and latent stitching (docs/METHODS.md § MAS): matched latents hold the intervened causal values, the
inaccessible model's behaviour never enters training, and the ablation and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from mas_cli.alignment import fit
from mas_cli.alignment.latents import LatentBank, build_bank, latent_loss
from mas_cli.alignment.plan import plan_alignment
from mas_cli.errors import ConfigError
from mas_cli.tasks import CountingTask, make_counterfactuals
from mas_cli.tasks.counterfactual import natural_values
from tests.conftest import compose_config, result_files
from tests.helpers import random_model, run_align


def test_natural_values_follow_the_causal_model():
    task = CountingTask()
    sequences = task.sample(30, np.random.default_rng(0))
    values = natural_values(task.causal_model(), sequences)
    for i in range(30):
        n, length = sequences.quantity[i], sequences.lengths[i]
        # BOS, n demo tokens (count 1..n), T (count stays n), n responses (n-1..0); EOS has no state
        assert values["count"][i, : length - 1].tolist() == [*range(n + 1), *range(n, -1, -1)]
        assert values["phase"][i, : length - 1].tolist() == [0] * (n + 1) + [1] * (n + 1)
        assert (values["count"][i, length - 1 :] == -1).all()


def test_counterfactuals_carry_the_intervened_values_at_tau():
    task = CountingTask()
    cf = make_counterfactuals(task, 40, "count", np.random.default_rng(1))
    model = task.causal_model()
    for i in range(40):
        # the continuation after τ is what the intervened state emits: it counts down from `count`
        after = cf.tokens[i, cf.tau[i] + 1 :]
        responses = int((after == task.response).sum())
        if cf.values["phase"][i] == 1:
            assert responses == cf.values["count"][i]
        base_state = model.trace(cf.base[i], 0)[cf.tau[i]]
        assert cf.values["phase"][i] == base_state["phase"]  # only the count was swapped


def test_bank_matches_latents_with_the_same_causal_values():
    gru = random_model("gru")
    bank = build_bank(gru, 50, np.random.default_rng(0), "cpu")
    rng = np.random.default_rng(2)
    wanted = {"count": np.array([3, 5, 99]), "phase": np.array([1, 0, 1])}
    latents, found = bank.match(wanted, rng)
    assert found.tolist() == [True, True, False]
    assert torch.equal(latents[2], torch.zeros(16))
    for i in range(2):  # the latent is one of the bank's states recorded with exactly these values
        rows = bank.rows_by_values[(int(wanted["count"][i]), int(wanted["phase"][i]))]
        assert any(torch.equal(latents[i], bank.states[r]) for r in rows)


def test_latent_loss_terms():
    h = torch.randn(5, 8)
    assert float(latent_loss(h, h.clone(), "both")) == pytest.approx(0.0, abs=1e-6)
    assert float(latent_loss(3 * h, h, "cos")) == pytest.approx(0.0, abs=1e-6)  # cosine ignores scale
    other = torch.randn(5, 8)
    both = latent_loss(h, other, "both")
    assert float(both) == pytest.approx(float(latent_loss(h, other, "cos") + latent_loss(h, other, "mse")))


def test_clmas_never_uses_the_inaccessible_behaviour_in_training(tmp_path, monkeypatch):
    targets_in_training = []
    original_step, original_target_step = fit.Aligner.train_step, fit.Aligner.target_step

    def target_step(self, target, batches, rows, interchange=None):
        if self._in_train_step:
            targets_in_training.append(target)
        return original_target_step(self, target, batches, rows, interchange)

    def train_step(self):
        self._in_train_step = True
        try:
            return original_step(self)
        finally:
            self._in_train_step = False

    monkeypatch.setattr(fit.Aligner, "_in_train_step", False, raising=False)
    monkeypatch.setattr(fit.Aligner, "target_step", target_step)
    monkeypatch.setattr(fit.Aligner, "train_step", train_step)
    result = run_align(tmp_path, "a=gru", "b=lstm", "method=clmas")
    assert set(targets_in_training) == {0}  # only the accessible gru's behaviour
    val = result.rows[result.rows.split == "val"].set_index(["src", "trg"])
    latent = [("count/gru/0", "count/lstm/0"), ("count/lstm/0", "count/lstm/0")]
    assert val.loc[latent, "cl_unmatched"].notna().all() and val.loc[latent, "cl_loss"].notna().all()
    assert val.drop(latent).cl_loss.isna().all()
    assert set(val.method) == {"clmas"} and (val.iia.between(0, 1)).all()  # IIA is still measured everywhere


def test_ablation_and_latent_stitching_rows(tmp_path):
    ablation = run_align(tmp_path, "a=gru", "b=lstm", "method=clmas", "cl.eps=0")
    assert set(ablation.rows.method) == {"accessible_only"}
    assert ablation.run_dir.parent.name == "accessible_only-hidden-full-k4-s0-budget_smoke"
    named = run_align(tmp_path, "a=gru", "b=lstm", "method=accessible_only")  # the same run, by its name
    assert named.reused and named.run_dir == ablation.run_dir
    stitched = run_align(tmp_path, "a=gru", "b=lstm", "method=latent_stitch", "k=full")
    val = stitched.rows[stitched.rows.split == "val"]
    assert list(zip(val.src, val.trg)) == [("count/gru/0", "count/lstm/0")] and set(val.k) == {16}
    assert set(val.method) == {"latent_stitch"} and val.cl_loss.notna().all()
    # the report keeps the directions into the inaccessible model apart from the trained ones
    from mas_cli.reporting import collect
    from mas_cli.reporting.cells import tables

    rows = collect(tmp_path).query("split == 'val'")
    scopes = tables(rows, pd.DataFrame())["by_setting"].set_index(["method", "scope"]).index
    assert ("accessible_only", "cross-model, into the inaccessible model") in scopes  # lstm is the last model
    assert ("accessible_only", "cross-model") in scopes  # lstm -> gru, trained by behaviour
    assert ("latent_stitch", "cross-model, into the inaccessible model") in scopes


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["a=gru", "b=lstm", "method=clmas", "site=embed"], "method=clmas matches natural hidden states"),
        (["a=gru", "method=clmas"], "method=clmas takes 2 models or more"),
        (["a=gru", "b=lstm", "method=clmas", "directions=within", "cl.directions=[0-1]"], "not among the trained"),
        (["a=gru", "b=lstm", "method=clmas", "cl.eps=0", "cl.directions=[0-0,0-1,1-0,1-1]"], "nothing to train"),
        (["a=gru", "b=lstm", "method=clmas", "cl.loss=l1"], "cl.loss must be one of"),
        (["a=gru", "b=lstm", "method=clmas", "cl.eps=-1"], "cl.eps must be in"),
    ],
)
def test_bad_cl_settings_are_refused_before_anything_is_written(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        run_align(tmp_path / "out", *overrides)
    assert not (tmp_path / "out").exists()


def test_a_direction_without_any_matching_latent_is_refused(tmp_path, monkeypatch):
    def nothing(self, values, rng):
        n = len(values[self.variables[0]])
        return torch.zeros(n, self.states.shape[1]), np.zeros(n, dtype=bool)

    monkeypatch.setattr(LatentBank, "match", nothing)
    with pytest.raises(ConfigError, match="no natural latent of count/lstm/0 matches any counterfactual"):
        run_align(tmp_path, "a=gru", "b=lstm", "method=clmas")
    assert not result_files(tmp_path)


def test_default_cl_directions_are_those_into_the_last_model():
    cfg = compose_config("align", ["models=[gru,lstm,lstm:1]", "method=clmas", "paths.root=out"])
    plan = plan_alignment(cfg)
    assert plan.latent_pairs == [(0, 2), (1, 2), (2, 2)]
    assert pd.Series([p[1] for p in plan.pairs]).value_counts().to_dict() == {0: 3, 1: 3, 2: 3}
