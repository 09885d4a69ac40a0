"""An independent oracle for every number `mas align` and `mas train` report (IIA, its chance
level, token accuracy, task accuracy), on real trained models (tests/trained.py).

The oracle is written from first principles, item by item: counterfactuals from the causal
model, the intervened state from the alignment formula written out with full matrices,
A_t⁻¹((1 − M) ⊙ A_t(h_t) + M ⊙ A_s(h_s)), the target run from position 0 one step at a time
(no packing, no suffix-only path, no merged directions), and every trial scored by the one plain
all-or-nothing function `tasks.trial_correct`, as task accuracy is. The engine must agree
exactly: the same items are right or wrong.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

import mas_cli as mas
from mas_cli.evaluation import EvalSet, task_accuracy
from mas_cli.tasks import make_counterfactuals, targets_of, trial_correct


# ---- the target run from position 0, one step at a time ----------------------------------------
def recurrent_logits(model, embeddings: torch.Tensor, at=None, state=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits [N, L, V], site [N, L, D]) of a GRU/LSTM stepped over input embeddings [N, L, E];
    where at[i] == t, the site (h, or [h; c] for the LSTM) becomes state[i] after step t."""
    rnn = model.rnn
    lstm = isinstance(rnn, nn.LSTM)
    cell = (nn.LSTMCell if lstm else nn.GRUCell)(rnn.input_size, rnn.hidden_size)
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        getattr(cell, name).data.copy_(getattr(rnn, f"{name}_l0"))
    n, length, _ = embeddings.shape
    h = c = torch.zeros(n, rnn.hidden_size)
    outputs, sites = [], []
    for t in range(length):
        if lstm:
            h, c = cell(embeddings[:, t], (h, c))
        else:
            h = cell(embeddings[:, t], h)
        if at is not None:
            here = (at == t)[:, None]
            h = torch.where(here, state[:, : rnn.hidden_size], h)
            if lstm:
                c = torch.where(here, state[:, rnn.hidden_size :], c)
        outputs.append(h)
        sites.append(torch.cat([h, c], -1) if lstm else h)
    return model.readout(torch.stack(outputs, 1)), torch.stack(sites, 1)


def transformer_logits(model, embeddings: torch.Tensor, at=None, state=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, site: the residual after layer 1) of the transformer; where given, the residual
    at position at[i] becomes state[i] before the layer above it runs."""
    lower, upper = model.blocks[:1], model.blocks[1:]
    x = embeddings
    for block in lower:
        x = block(x)
    site = x
    if at is not None:
        x = x.clone()
        x[torch.arange(len(x)), at] = state
    for block in upper:
        x = block(x)
    return model.readout(model.ln_final(x)), site


def run(model, embeddings, at=None, state=None):
    step = recurrent_logits if hasattr(model, "rnn") else transformer_logits
    return step(model, embeddings, at, state)


# ---- the alignment formula, written out ----------------------------------------------------------
def to_aligned(function, h):
    return ((h - function.center) / function.scale) @ function.matrix().T


def from_aligned(function, z):
    return function.scale * (z @ torch.linalg.inv(function.matrix()).T) + function.center


def intervened(f_target, f_source, h_target, h_source, first: int, stop: int, zero_mask: bool):
    z_target, z_source = to_aligned(f_target, h_target), to_aligned(f_source, h_source)
    mixed = torch.zeros_like(z_target) if zero_mask else z_target.clone()
    mixed[..., first:stop] = z_source[..., first:stop]
    return from_aligned(f_target, mixed)


# ---- the oracle ----------------------------------------------------------------------------------
@torch.no_grad()
def oracle_blocks(cfg, models) -> list[tuple[str, int, int]]:
    """(variable, first, stop) of each aligned block: variable j holds coordinates [j·k, (j+1)·k),
    the null block the rest of the smallest site."""
    variables = list(cfg.swap) if not isinstance(cfg.swap, str) else [cfg.swap]
    blocks = [(v, j * cfg.k, (j + 1) * cfg.k) for j, v in enumerate(variables)]
    if cfg.null_block:
        blocks.append(("null_block", blocks[-1][2], min(m.model.site_width(cfg.site) for m in models)))
    return blocks


def oracle(fit, source: int, target: int, block: int = 0, intervene: bool = True) -> dict:
    """IIA and token accuracy of one direction on its validation items, item by item."""
    al = mas.load_alignment(fit.run_dir)
    cfg = al.cfg
    models = al.models
    f = al.interventions.functions
    site = cfg.site
    variable, first, stop = oracle_blocks(cfg, models)[block]
    rng = np.random.default_rng([cfg.seed, source, target, 1] + ([block] if block else []))
    s_model, t_model = models[source], models[target]
    cf = make_counterfactuals(
        t_model.task, cfg.budget.align.val_size, variable, rng, same_position=site == "embed", source_task=s_model.task
    )
    tokens, source_tokens = torch.from_numpy(cf.tokens), torch.from_numpy(cf.source)
    tau, sigma = torch.from_numpy(cf.tau), torch.from_numpy(cf.sigma)
    zero_mask = cfg.method == "stitch"
    if site == "hidden":
        _, source_sites = run(s_model.model, s_model.model.embed(source_tokens))
        _, target_sites = run(t_model.model, t_model.model.embed(tokens))
        rows = torch.arange(len(tokens))
        h_source, h_target = source_sites[rows, sigma], target_sites[rows, tau]
        state = intervened(f[target], f[source], h_target, h_source, first, stop, zero_mask) if intervene else h_target
        logits, _ = run(t_model.model, t_model.model.embed(tokens), tau, state)
    else:  # every input embedding up to τ, the source's at the same positions
        width = tokens.shape[1]
        padded = torch.zeros_like(tokens)
        padded[:, : min(width, source_tokens.shape[1])] = source_tokens[:, :width]
        e_target, e_source = t_model.model.embed(tokens), s_model.model.embed(padded)
        swapped = intervened(f[target], f[source], e_target, e_source, first, stop, zero_mask)
        up_to_tau = (torch.arange(width)[None, :] <= tau[:, None])[..., None]
        logits, _ = run(t_model.model, torch.where(up_to_tau & intervene, swapped, e_target))
    predictions = logits.argmax(-1).numpy()
    right = trial_correct(predictions, cf.tokens, cf.label_mask)
    tokens_right = (predictions == targets_of(cf.tokens))[cf.label_mask]
    return {"iia": right.mean(), "tok_acc": tokens_right.mean(), "n": len(right), "right": right}


def engine_row(fit, source: int, target: int, variable: str | None = None):
    rows = fit.iia[fit.iia.split == "val"]
    labels = [s.label for s in fit.specs]
    mine = rows[(rows.src == labels[source]) & (rows.trg == labels[target])]
    if variable is not None:
        mine = mine[mine.variable == variable]
    (row,) = mine.itertuples()
    return row


CASES = [
    ("mas", 0, 0, 0),
    ("mas", 0, 1, 0),
    ("mas", 1, 0, 0),
    ("mas", 1, 1, 0),
    ("das_transformer", 0, 0, 0),
    ("stitch", 0, 1, 0),
    ("stitch_k4", 0, 1, 0),
    ("blocks", 0, 1, 0),
    ("blocks", 1, 0, 1),
    ("blocks", 1, 1, 2),
    ("embed", 0, 1, 0),
    ("embed", 1, 0, 0),
]


@pytest.mark.parametrize(
    ("name", "source", "target", "block"), CASES, ids=[f"{c[0]}-{c[1]}{c[2]}-b{c[3]}" for c in CASES]
)
def test_the_engine_iia_equals_the_oracle(fits, name, source, target, block):
    fit = fits[name]
    variable = ["count", "phase", "null_block"][block] if name == "blocks" else None
    row = engine_row(fit, source, target, variable)
    found = oracle(fit, source, target, block)
    assert (row.iia, row.tok_acc, row.n) == (found["iia"], found["tok_acc"], found["n"])
    assert row.iia > 0.0  # a trained fit: the comparison is not between two zeros
    unswapped = oracle(fit, source, target, block, intervene=False)
    assert row.iia_none == unswapped["iia"]


def test_the_engine_blocks_equal_the_oracle(fits):
    """Which coordinates each variable (and the null block) owns: whether a stray coordinate
    changes any verdict depends on the trained models, so the layout is checked on its own."""
    from mas_cli.alignment.swaps import variable_blocks

    al = mas.load_alignment(fits["blocks"].run_dir)
    smallest = min(m.model.site_width(al.cfg.site) for m in al.models)
    found = [(b.variable, b.first, b.stop) for b in variable_blocks(al.cfg, smallest)]
    assert found == oracle_blocks(al.cfg, al.models)


def test_trained_fits_reach_iia_far_above_the_chance_level(fits):
    """The trained check: inside each model, swapping the count moves behaviour as the causal
    model says; doing nothing at all mostly does not."""
    val = fits["mas"].iia[fits["mas"].iia.split == "val"]
    within = val[val.src == val.trg]
    assert (within.iia >= within.iia_none + 0.5).all(), within[["src", "iia", "iia_none"]]


@pytest.mark.parametrize("arch", ["gru", "lstm", "transformer"])
def test_task_accuracy_equals_the_oracle(trained_root, arch):
    """On counts beyond the trained range (up to 12) the models are right on some trials only."""
    loaded = mas.load_model(arch, root=trained_root)
    model, task = loaded.model, loaded.task
    wider = dataclasses.replace(task, max_count=12)
    data = EvalSet.draw(wider, 300, np.random.default_rng(5), "all", "cpu")
    found_task, found_tokens = task_accuracy(model, data)
    tokens = data.tokens
    with torch.no_grad():
        predictions = run(model, model.embed(tokens))[0].argmax(-1).numpy()
    mask = wider.response_mask(tokens.numpy())
    right = trial_correct(predictions, tokens.numpy(), mask)
    assert 0 < right.mean() < 1
    assert found_task == right.mean()
    assert found_tokens == (predictions == targets_of(tokens.numpy()))[mask].mean()
