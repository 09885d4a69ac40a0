"""One `mas align` job: plan from the config, make sure the models exist, fit, write the results.

A run directory `<paths.root>/alignments/<settings>/<models>/` holds
    alignment.pt   the fitted alignment functions, the full config and the fingerprint
    curve.csv      validation metrics by step (tidy: step × direction × split)
    config.yaml    the resolved config
    iia.csv        one row per direction × variable × split; written last, marks the run complete
A complete run with the same fingerprint is reused; an interrupted one resumes from checkpoint.pt.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from mas_cli import store
from mas_cli.alignment.directions import build_directions
from mas_cli.alignment.engine import Aligner
from mas_cli.alignment.interventions import unintervened
from mas_cli.alignment.plan import ALIGNMENT_FORMAT, Plan, check_models, fingerprint_of, plan_alignment
from mas_cli.alignment.settings import ALIGN, swap_map
from mas_cli.alignment.swaps import variable_blocks
from mas_cli.config import refuse_other_settings
from mas_cli.console import console
from mas_cli.errors import ConfigError
from mas_cli.specs import ModelSpec
from mas_cli.stats import wilson
from mas_cli.training import resolve_device
from mas_cli.zoo import Described, FrozenModel, ModelsOnDemand, load_frozen, variables_of


@dataclass
class AlignResult:
    run_dir: Path
    rows: pd.DataFrame  # the iia.csv rows
    specs: list[ModelSpec]
    reused: bool

    @property
    def iia(self) -> pd.DataFrame:
        """The iia.csv rows (one per direction × variable × split)."""
        return self.rows


def align(cfg: DictConfig) -> AlignResult:
    """Reuse the complete run for this config, or fit it (resuming a checkpoint). Bad settings
    are refused before anything is trained or written; missing models are trained first."""
    plan = plan_alignment(cfg)
    on_demand = ModelsOnDemand(cfg)
    missing = [s for s in plan.specs if not store.is_complete(store.model_dir(cfg.paths.root, s.task, s.arch, s.seed))]
    if missing:
        check_models(plan.cfg, [on_demand.describe(s, cfg.causal_model) for s in missing])
    entries = on_demand.ensure(plan.specs)
    device = resolve_device(cfg.device)
    models = [load_frozen(s, e, device, cfg.allow_undertrained) for s, e in zip(plan.specs, entries)]
    plan = plan.with_k(check_models(plan.cfg, [describe(m, cfg.site, cfg.causal_model) for m in models]))
    wanted = fingerprint_of(plan, [m.metrics.get("fingerprint") for m in models])
    with store.exclusive(plan.run_dir, lambda: console.print(f"waiting: another job is fitting {plan.run_dir}")):
        if (plan.run_dir / "iia.csv").is_file() and not cfg.force:
            found = read_alignment(plan.run_dir / "alignment.pt")["fingerprint"]
            refuse_other_settings(plan.run_dir, found, wanted, "an alignment fitted", "refit")
            console.print(f"reusing {plan.run_dir} (complete; force=true refits)")
            return AlignResult(plan.run_dir, pd.read_csv(plan.run_dir / "iia.csv"), plan.specs, reused=True)
        return fit(plan, models, wanted, device)


def describe(model: FrozenModel, site: str, causal_model: str | None) -> Described:
    return Described(
        model.spec.label, model.model.site_width(site), variables_of(model.task, causal_model, model.spec.label)
    )


def fit(plan: Plan, models: list[FrozenModel], fingerprint: dict, device) -> AlignResult:
    cfg = plan.cfg
    checkpoint = plan.run_dir / "checkpoint.pt"
    if cfg.force:
        checkpoint.unlink(missing_ok=True)
    mapped = "".join(f", {task} models swap {variable}" for task, variable in sorted(swap_map(cfg).items()))
    console.print(f"counterfactual data: {len(plan.pairs)} direction(s), swap={cfg.swap}{mapped}, site={cfg.site}")
    try:
        directions = make_directions(plan, models, device)
    except ValueError as exc:  # the counterfactual generator found nothing it can express
        raise ConfigError(f"{exc}; map variables whose values both tasks can hold") from None
    for d in directions:
        unmatched, items = d.unmatched(), len(d.train) + len(d.val)
        if unmatched == items:
            raise ConfigError(
                f"no natural latent of {models[d.target].spec.label} matches any counterfactual of direction "
                f"{d.source}-{d.target}; drop it from cl.directions"
            )
        if unmatched:
            console.print(f"direction {d.source}-{d.target}: {unmatched} of {items} items have no matching latent")
    aligner = Aligner(cfg, models, directions, device)
    title = f"align {cfg.method} {' '.join(m.spec.label for m in models)}"
    wall = aligner.run(checkpoint, fingerprint, title)
    rows = result_rows(plan, aligner)
    console.print(f"fitted in {wall:.1f} s")
    write_run(plan, aligner, fingerprint, rows)
    checkpoint.unlink(missing_ok=True)
    return AlignResult(plan.run_dir, rows, plan.specs, reused=False)


def make_directions(plan: Plan, models: list[FrozenModel], device):
    """Every direction's data: a block per swapped variable (and the null block)."""
    cfg = plan.cfg
    blocks = variable_blocks(cfg, min(m.model.site_width(cfg.site) for m in models))
    return build_directions(
        models,
        plan.pairs,
        cfg.site,
        blocks,
        cfg.budget.align,
        cfg.seed,
        device,
        plan.latent_pairs,
        cfg.cl.bank_size,
        causal_model=cfg.causal_model,
        by_task=swap_map(cfg),
    )


def result_rows(plan: Plan, aligner: Aligner) -> pd.DataFrame:
    """One row per direction × variable × split: the run's settings (registry), the models of
    the fit, then the scores: IIA with its 95 % Wilson interval over the items, and `iia_none`,
    the IIA of the same items without any intervention (the level a swap that does nothing
    reaches), and whether source and target reached their training criterion."""
    settings = ALIGN.columns(plan.cfg) | {"models": "+".join(s.label for s in plan.specs)}
    trained = [bool(m.metrics.get("trained_to_criterion")) for m in aligner.models]  # reached its criterion
    rows = []
    with torch.no_grad():
        weights = aligner.aligned_rows()
    for d in aligner.directions:
        for split, data in (("train", d.train), ("val", d.val)):
            found = aligner.evaluate(d, data, rows=weights)
            scores = aligner.scores_row(d, split, found)
            lo, hi = wilson(round(found.iia * found.n), found.n)
            none = aligner.evaluate(d, data, rows=weights, interchange=unintervened)
            scores |= {"iia_lo": lo, "iia_hi": hi, "iia_none": none.iia}
            scores |= {f"{side}_trained": trained[m] for side, m in (("src", d.source), ("trg", d.target))}
            if d.latent:
                scores["cl_unmatched"] = int((~data.items.has_latent).sum())
            rows.append({**settings, **scores, "steps": aligner.step, "stop": aligner.stop_reason})
    return pd.DataFrame(rows)


def _csv(frame: pd.DataFrame) -> str:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue()


def write_run(plan: Plan, aligner: Aligner, fingerprint: dict, rows: pd.DataFrame) -> None:
    """iia.csv goes last: until then an older complete run in this directory stays complete."""
    (plan.run_dir / "iia.csv").unlink(missing_ok=True)
    payload = {
        "format": ALIGNMENT_FORMAT,
        "fingerprint": fingerprint,
        "config": OmegaConf.to_container(plan.cfg, resolve=True),
        "models": [m.spec.label for m in aligner.models],
        "functions": {k: v.detach().cpu() for k, v in aligner.functions.state_dict().items()},
    }
    store.save_torch(plan.run_dir / "alignment.pt", payload)
    store.write_text(plan.run_dir / "config.yaml", OmegaConf.to_yaml(plan.cfg, resolve=True))
    store.write_text(plan.run_dir / "curve.csv", _csv(pd.DataFrame(aligner.curve)))
    store.write_text(plan.run_dir / "iia.csv", _csv(rows))


def read_alignment(path: Path) -> dict:
    """The contents of an alignment.pt, checked."""
    return store.load_checked(path, ALIGNMENT_FORMAT, "alignment", "refit with force=true")
