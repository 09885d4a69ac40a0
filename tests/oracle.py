"""An independent oracle for every number `mas align` reports (IIA, its chance level, token
accuracy), written from first principles, item by item: counterfactuals from the causal model, the
intervened state from the alignment formula written out with full matrices,
A_t⁻¹((1 − M) ⊙ A_t(h_t) + M ⊙ A_s(h_s)), the target's plain forward pass from position 0 with its
site read and replaced by a hook written here (no packing, no suffix-only path, no merged
directions, nothing of the engine's own paths: it works for any architecture that names its
sites), and every trial scored by the one plain all-or-nothing function `tasks.trial_correct`.
tests/test_oracle.py and tests/test_architectures.py hold the engine to it.
"""

from __future__ import annotations

import numpy as np
import torch

import mas_cli as mas
from mas_cli.alignment.settings import swapped
from mas_cli.tasks import make_counterfactuals, targets_of, trial_correct


# ---- the target run from position 0, its site read and replaced by a hook written here ------------
def hooked_run(model, tokens: torch.Tensor, site: str, edit=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits [N, L, V], the site at every position [N, L, D]) of the plain forward pass
    model(tokens), the site's module named by the model itself. A site module that runs once per
    position gives [N, D] per call (call t: position t), one that runs once gives [N, L, D]; where
    `edit(value, t)` is given (t None for a single call), what it returns replaces the value."""
    root = model.site_root() if hasattr(model, "site_root") else model
    module = root.get_submodule(model.site_paths()[site])
    seen = []

    def hook(_module, _args, output):
        value = output[0] if isinstance(output, tuple) else output
        if edit is not None:
            value = edit(value, len(seen) if value.dim() == 2 else None)
        seen.append(value)
        return (value, *output[1:]) if isinstance(output, tuple) else value

    handle = module.register_forward_hook(hook)
    try:
        logits = model(tokens)
    finally:
        handle.remove()
    return logits, torch.stack(seen, 1) if seen[0].dim() == 2 else seen[0]


def replaced_at(at: torch.Tensor, state: torch.Tensor):
    """An edit that writes state[i] at position at[i] of row i."""

    def edit(value, t):
        if t is not None:  # one call per position
            return torch.where((at == t)[:, None], state, value)
        value = value.clone()
        value[torch.arange(len(value)), at] = state
        return value

    return edit


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
    variables = swapped(cfg)  # which variables a config swaps (unset: the method's own default)
    blocks = [(v, j * cfg.k, (j + 1) * cfg.k) for j, v in enumerate(variables)]
    if cfg.null_block:
        blocks.append(("null_block", blocks[-1][2], min(m.at(cfg.site).width() for m in models)))
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
        _, source_sites = hooked_run(s_model.model, source_tokens, site)
        _, target_sites = hooked_run(t_model.model, tokens, site)
        rows = torch.arange(len(tokens))
        h_source, h_target = source_sites[rows, sigma], target_sites[rows, tau]
        state = intervened(f[target], f[source], h_target, h_source, first, stop, zero_mask) if intervene else h_target
        logits, _ = hooked_run(t_model.model, tokens, site, replaced_at(tau, state))
    else:  # every input embedding up to τ, the source's at the same positions
        width = tokens.shape[1]
        padded = torch.zeros_like(tokens)
        padded[:, : min(width, source_tokens.shape[1])] = source_tokens[:, :width]
        e_target, e_source = hooked_run(t_model.model, tokens, site)[1], hooked_run(s_model.model, padded, site)[1]
        swapped = intervened(f[target], f[source], e_target, e_source, first, stop, zero_mask)
        up_to_tau = (torch.arange(width)[None, :] <= tau[:, None])[..., None]
        written = torch.where(up_to_tau & intervene, swapped, e_target)
        logits, _ = hooked_run(t_model.model, tokens, site, lambda value, t: written)
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
