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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from mas_cli import store
from mas_cli.align.engine import Aligner, build_directions
from mas_cli.align.methods import FIXED_DIRECTIONS, FULL_WIDTH_BY_DEFAULT, LATENT_METHODS
from mas_cli.align.specs import ModelSpec, parse_directions, parse_spec
from mas_cli.align.swaps import swap_map, swapped, variable_blocks, variables_of
from mas_cli.align.zoo import FrozenModel, ensure_trained, load_frozen
from mas_cli.config import ConfigError, refuse_other_settings
from mas_cli.console import console
from mas_cli.training import resolve_device
from tasks import ArithmeticTask

ALIGNMENT_FORMAT = "mas-alignment/1"


def with_method_defaults(cfg: DictConfig) -> DictConfig:
    """k left unset (null) is 16, or the full width for stitching (SPEC §5)."""
    if cfg.k is not None:
        return cfg
    return OmegaConf.merge(cfg, {"k": "full" if cfg.method in FULL_WIDTH_BY_DEFAULT else 16})


@dataclass
class Plan:
    specs: list[ModelSpec]
    pairs: list[tuple[int, int]]
    method: str  # das when one model is aligned with itself; accessible_only for clmas with cl.eps = 0
    run_dir: Path
    latent_pairs: list[tuple[int, int]]  # directions trained with the latent loss (CLMAS, latent stitching)


@dataclass
class AlignResult:
    run_dir: Path
    rows: pd.DataFrame  # the iia.csv rows
    specs: list[ModelSpec]
    reused: bool


def plan_alignment(cfg: DictConfig) -> Plan:
    """Everything that follows from the config alone (no model loaded yet)."""
    cfg = with_method_defaults(cfg)
    given = [cfg[key] for key in ("a", "b") if cfg[key] is not None]
    if given and cfg.models:
        raise ConfigError("give either a=/b= or models=[...], not both")
    raw = list(cfg.models) if cfg.models else given
    if not raw:
        raise ConfigError("name the models to align: a=gru b=lstm, or models=[gru:0,gru:1,lstm:0]")
    specs = [parse_spec(text, cfg.task.name) for text in raw]
    if len(set(specs)) < len(specs):
        raise ConfigError(f"models {list(raw)} name the same model twice; each model appears once")
    if cfg.method == "das" and len(specs) != 1:
        raise ConfigError(f"method=das aligns one model with itself; got {len(specs)} models (use method=mas)")
    if cfg.method in FIXED_DIRECTIONS:
        if len(specs) != 2:
            raise ConfigError(
                f"method={cfg.method} takes two models, a=<source> b=<target>; got {len(specs)} (use method=mas)"
            )
        if cfg.directions != "all":
            raise ConfigError(f"method={cfg.method} fixes its directions (source a, target b); drop directions=")
    if swap_map(cfg) and (len(swapped(cfg)) > 1 or cfg.null_block or "full" in swapped(cfg)):
        raise ConfigError(
            "swap_by_task maps one variable onto another; use it with one swap variable and no null_block"
        )
    if (len(swapped(cfg)) > 1 or cfg.null_block) and cfg.method in ("stitch", "clmas", "latent_stitch"):
        raise ConfigError(f"method={cfg.method} swaps one variable; drop the extra swap variables and null_block")
    pairs = FIXED_DIRECTIONS.get(cfg.method) or parse_directions(cfg.directions, len(specs))
    method = "das" if len(specs) == 1 else cfg.method
    latent_pairs = latent_directions(cfg, pairs, len(specs))
    if method == "clmas" and cfg.cl.eps == 0:
        method = "accessible_only"
    run_dir = Path(cfg.paths.root) / "alignments" / run_settings(cfg, method, pairs) / "+".join(s.slug for s in specs)
    return Plan(specs, pairs, method, run_dir, latent_pairs)


def latent_directions(cfg: DictConfig, pairs: list[tuple[int, int]], m: int) -> list[tuple[int, int]]:
    """The directions trained with the latent loss: all of latent stitching's; for CLMAS
    `cl.directions` (default `into_last`: every direction into the last model)."""
    if cfg.method not in LATENT_METHODS:
        return []
    if cfg.site != "hidden":
        raise ConfigError(f"method={cfg.method} matches natural hidden states; use site=hidden")
    if cfg.causal_model is not None:
        raise ConfigError(f"method={cfg.method} matches latents by the task's own causal model; drop causal_model=")
    if cfg.method == "latent_stitch":
        return list(pairs)
    if m < 2:
        raise ConfigError("method=clmas needs two models or more: a=<accessible> b=<inaccessible>")
    wanted = cfg.cl.directions
    chosen = [p for p in pairs if p[1] == m - 1] if wanted == "into_last" else parse_directions(wanted, m)
    outside = [p for p in chosen if p not in pairs]
    if outside:
        raise ConfigError(f"cl.directions {outside} are not among the trained directions; choose from {pairs}")
    if len(chosen) == len(pairs) and cfg.cl.eps == 0:
        raise ConfigError("cl.eps=0 with every direction latent leaves nothing to train; keep a behaviour direction")
    return chosen


def run_settings(cfg: DictConfig, method: str, pairs: list[tuple[int, int]]) -> str:
    """The settings part of a run directory's name, e.g. `mas-hidden-count-k16-s0`; settings off
    their defaults are appended (`-budget_paper`), so a sweep over them never collides."""
    name = f"{method}-{cfg.site}-{'+'.join(swapped(cfg))}-k{cfg.k}-s{cfg.seed}"
    if cfg.null_block:
        name += "-null"
    if swap_map(cfg):
        name += "-map_" + ".".join(f"{task}_{v}" for task, v in sorted(swap_map(cfg).items()))
    if cfg.directions != "all":
        name += (
            f"-{cfg.directions}" if isinstance(cfg.directions, str) else "-" + ".".join(f"{s}-{t}" for s, t in pairs)
        )
    chosen = {"budget": cfg.budget.name, "orthogonal_map": cfg.orthogonal_map, "normalize": cfg.normalize}
    usual = {"budget": "quick", "orthogonal_map": "cayley", "normalize": "rms"}
    if cfg.align_fn != "orthogonal":  # the orthogonal map's parametrisation then means nothing
        del chosen["orthogonal_map"]
        chosen["align_fn"], usual["align_fn"] = cfg.align_fn, "orthogonal"
    if cfg.causal_model is not None:
        chosen["cm"], usual["cm"] = cfg.causal_model, None
    if cfg.method in LATENT_METHODS:
        chosen |= {"eps": cfg.cl.eps, "cl_loss": cfg.cl.loss, "cl": cfg.cl.directions}
        usual |= {"eps": 1.0, "cl_loss": "both", "cl": "into_last"}
        if not isinstance(cfg.cl.directions, str):
            chosen["cl"] = ".".join(str(p) for p in cfg.cl.directions)
    return name + "".join(f"-{key}_{value}" for key, value in chosen.items() if value != usual[key])


def check_models(cfg: DictConfig, described: list[tuple[str, int, tuple[str, ...]]]) -> int:
    """k and the swapped variable against each model's (label, site width, causal variables);
    returns k as a number (`k=full` is the smallest width)."""
    smallest = min(width for _, width, _ in described)
    k = smallest if cfg.k == "full" else cfg.k
    if cfg.k == "full" and len({w for _, w, _ in described}) > 1:
        console.print(f"[yellow]warning:[/] k=full is capped at the smallest site width, {smallest}")
    if k > smallest:
        raise ConfigError(f"k={k} is larger than the smallest site width ({smallest}); choose k <= {smallest}")
    for label, _, variables in described:
        mapped = swap_map(cfg).get(label.split("/")[0])
        for variable in [mapped] if mapped else swapped(cfg):
            if variable != "full" and variable not in variables:
                have = ", ".join((*variables, "full"))
                raise ConfigError(f"swap={variable} is not a variable of {label}'s causal model; choose one of {have}")
    blocks = len(swapped(cfg)) * k + (1 if cfg.null_block else 0)
    if blocks > smallest:
        raise ConfigError(
            f"{len(swapped(cfg))} variable block(s) of k={k}{' and a null block' if cfg.null_block else ''} "
            f"need {blocks} dims, more than the smallest site width ({smallest}); lower k"
        )
    return k


def describe(model: FrozenModel, site: str, causal_model: str | None) -> tuple[str, int, tuple[str, ...]]:
    return model.spec.label, model.model.site_width(site), variables_of(model.task, causal_model, model.spec.label)


def fingerprint_of(cfg: DictConfig, plan: Plan, models: list[FrozenModel], k: int) -> dict:
    found = {
        "method": plan.method,
        "site": cfg.site,
        "swap": cfg.swap if isinstance(cfg.swap, str) else list(cfg.swap),
        "k": k,
        "orthogonal_map": cfg.orthogonal_map,
        "normalize": cfg.normalize,
        "directions": [list(p) for p in plan.pairs],
        "seed": cfg.seed,
        "settings": OmegaConf.to_container(cfg.budget.align, resolve=True),
        "models": [{"model": m.spec.label, "trained": m.metrics.get("fingerprint")} for m in models],
    }
    # Settings added after results were first stored join the fingerprint only when they are in
    # use, so earlier runs of the default settings stay reusable.
    if cfg.align_fn != "orthogonal":
        found["align_fn"] = cfg.align_fn
    if cfg.causal_model is not None:
        found["causal_model"] = cfg.causal_model
    if cfg.null_block:
        found["null_block"] = True
    if swap_map(cfg):
        found["swap_by_task"] = swap_map(cfg)
    if {"phase", "full"} & set(swapped(cfg)):
        # Phase swaps into the demo phase once scored its randomly drawn demo tokens; results
        # stored before the fix must not be reused as if they were comparable.
        found["labels"] = "response-phase-from-last-trigger"
    if any(isinstance(m.task, ArithmeticTask) for m in models):
        # Arithmetic interventions once drew every position; fits made so are not comparable.
        found["positions"] = "steps-that-set-the-variable"
    if plan.latent_pairs:
        found["latent"] = [list(p) for p in plan.latent_pairs]
        found["cl"] = OmegaConf.to_container(cfg.cl, resolve=True)
    return found


def align(cfg: DictConfig, train: Callable[[ModelSpec], None], precheck: Callable[[ModelSpec], tuple]) -> AlignResult:
    """`precheck(spec)` describes a model that is not trained yet (label, width, variables), so
    that bad settings are refused before anything is trained or written."""
    cfg = with_method_defaults(cfg)
    plan = plan_alignment(cfg)
    missing = [s for s in plan.specs if not store.is_complete(store.model_dir(cfg.paths.root, s.task, s.arch, s.seed))]
    if missing:
        check_models(cfg, [precheck(s) for s in missing])
    entries = ensure_trained(plan.specs, cfg.paths.root, cfg.auto_train, train)
    device = resolve_device(cfg.device)
    models = [load_frozen(s, e, device, cfg.allow_undertrained) for s, e in zip(plan.specs, entries)]
    k = check_models(cfg, [describe(m, cfg.site, cfg.causal_model) for m in models])
    cfg = OmegaConf.merge(cfg, {"k": k})
    wanted = fingerprint_of(cfg, plan, models, k)
    with store.exclusive(plan.run_dir, lambda: console.print(f"waiting: another job is fitting {plan.run_dir}")):
        if (plan.run_dir / "iia.csv").is_file() and not cfg.force:
            found = read_alignment(plan.run_dir / "alignment.pt")["fingerprint"]
            refuse_other_settings(plan.run_dir, found, wanted, "an alignment fitted", "refit")
            console.print(f"reusing {plan.run_dir} (complete; force=true refits)")
            return AlignResult(plan.run_dir, pd.read_csv(plan.run_dir / "iia.csv"), plan.specs, reused=True)
        return fit(cfg, plan, models, wanted, device)


def fit(cfg: DictConfig, plan: Plan, models: list[FrozenModel], fingerprint: dict, device) -> AlignResult:
    checkpoint = plan.run_dir / "checkpoint.pt"
    if cfg.force:
        checkpoint.unlink(missing_ok=True)
    mapped = "".join(f", {task} models swap {variable}" for task, variable in sorted(swap_map(cfg).items()))
    console.print(f"counterfactual data: {len(plan.pairs)} direction(s), swap={cfg.swap}{mapped}, site={cfg.site}")
    try:
        directions = make_directions(cfg, plan, models, device)
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
    title = f"align {plan.method} {' '.join(m.spec.label for m in models)}"
    wall = aligner.run(checkpoint, fingerprint, title)
    rows = result_rows(cfg, plan, aligner)
    console.print(f"fitted in {wall:.1f} s")
    write_run(cfg, plan, aligner, fingerprint, rows)
    checkpoint.unlink(missing_ok=True)
    return AlignResult(plan.run_dir, rows, plan.specs, reused=False)


def make_directions(cfg: DictConfig, plan: Plan, models: list[FrozenModel], device):
    """Every direction's data: one variable, or a block per variable (and the null block)."""
    blocks = variable_blocks(cfg, min(m.model.site_width(cfg.site) for m in models))
    return build_directions(
        models,
        plan.pairs,
        cfg.site,
        cfg.swap if isinstance(cfg.swap, str) and not cfg.null_block else blocks,
        cfg.budget.align,
        cfg.seed,
        device,
        plan.latent_pairs,
        cfg.cl.bank_size,
        causal_model=cfg.causal_model,
        by_task=swap_map(cfg),
    )


def result_rows(cfg: DictConfig, plan: Plan, aligner: Aligner) -> pd.DataFrame:
    rows = []
    with torch.no_grad():
        weights = aligner.aligned_rows()
    for d in aligner.directions:
        for split, data in (("train", d.train), ("val", d.val)):
            scores = aligner.scores_row(d, split, aligner.evaluate(d, data, rows=weights))
            variable = d.variable or cfg.swap
            if swap_map(cfg):  # one label for the run: the variable and what it maps onto
                variable = "~".join([cfg.swap, *sorted(set(swap_map(cfg).values()))])
            setting = {"method": plan.method, "site": cfg.site, "k": cfg.k, "variable": variable}
            setting |= {"normalize": cfg.normalize, "orthogonal_map": cfg.orthogonal_map, "budget": cfg.budget.name}
            setting |= {"align_fn": cfg.align_fn, "causal_model": cfg.causal_model or "task default"}
            if d.latent:
                scores["cl_unmatched"] = int((~data.items.has_latent).sum())
            rows.append({**setting, **scores, "steps": aligner.step, "stop": aligner.stop_reason, "seed": cfg.seed})
    return pd.DataFrame(rows)


def _csv(frame: pd.DataFrame) -> str:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue()


def write_run(cfg: DictConfig, plan: Plan, aligner: Aligner, fingerprint: dict, rows: pd.DataFrame) -> None:
    """iia.csv goes last: until then an older complete run in this directory stays complete."""
    (plan.run_dir / "iia.csv").unlink(missing_ok=True)
    payload = {
        "format": ALIGNMENT_FORMAT,
        "fingerprint": fingerprint,
        "config": OmegaConf.to_container(cfg, resolve=True),
        "models": [m.spec.label for m in aligner.models],
        "functions": {k: v.detach().cpu() for k, v in aligner.functions.state_dict().items()},
    }
    store.save_torch(plan.run_dir / "alignment.pt", payload)
    store.write_text(plan.run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    store.write_text(plan.run_dir / "curve.csv", _csv(pd.DataFrame(aligner.curve)))
    store.write_text(plan.run_dir / "iia.csv", _csv(rows))


def read_alignment(path: Path) -> dict:
    """The contents of an alignment.pt, checked."""
    return store.load_checked(path, ALIGNMENT_FORMAT, "alignment", "refit with force=true")
