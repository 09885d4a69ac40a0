"""What a `mas align` config asks for, worked out before any model is loaded (no torch): the
models, the method it really is, its directions, the run directory, and the checks that need
only each model's width and causal variables. `mas pipeline` plans every fit with these too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from mas_cli.alignment.methods import METHODS, Method, Pair, resolve_method
from mas_cli.alignment.settings import ALIGN, data_source, swap_map, swapped
from mas_cli.checkpoints import checkpoint_spec, is_checkpoint
from mas_cli.console import console
from mas_cli.data.texts import NAME as TEXT
from mas_cli.errors import ConfigError
from mas_cli.specs import ModelSpec, parse_spec
from mas_cli.zoo import Described

ALIGNMENT_FORMAT = "mas-alignment/3"  # 3: the models' weight digests in the fingerprint


@dataclass(frozen=True)
class Plan:
    cfg: DictConfig  # the run's config, resolved: method as run, k set (a number once models are known)
    specs: list[ModelSpec]
    pairs: list[Pair]  # (source, target) model indices of the directions
    latent_pairs: list[Pair]  # directions trained with the latent loss (CLMAS, latent stitching)
    run_dir: Path

    @property
    def method(self) -> Method:
        return METHODS[self.cfg.method]

    def with_k(self, k: int) -> Plan:
        return replace(self, cfg=OmegaConf.merge(self.cfg, {"k": k}))


def model_specs(cfg: DictConfig, wrapped: dict[str, ModelSpec] | None = None) -> list[ModelSpec]:
    """The models a config names; `wrapped` maps the labels of models wrapped in Python
    (mas.wrap, passed to mas.align) to their specs."""
    wrapped = wrapped or {}
    if cfg.models and (cfg.a is not None or cfg.b is not None):
        raise ConfigError("give either a=/b= or models=[...], not both")
    raw = model_texts(cfg)
    if not raw:
        raise ConfigError("name the models to align: a=gru b=lstm, or models=[gru:0,gru:1,lstm:0]")
    specs = [_spec(text, model_task(cfg), wrapped) for text in raw]
    if len(set(specs)) < len(specs):
        raise ConfigError(f"models {list(raw)} name the same model twice; each model appears once")
    return specs


def _spec(text, task: str, wrapped: dict[str, ModelSpec]) -> ModelSpec:
    if text in wrapped:
        return wrapped[text]
    if is_checkpoint(text):  # a local HuggingFace folder, loaded by the job (checkpoints.py)
        return checkpoint_spec(text, task)
    if task == TEXT:
        raise ConfigError(
            f"data=continuation aligns language models with a tokenizer; {text} is a zoo model: give hf:<dir> "
            "folders, or mas.wrap(module, site=..., tokenizer=...) from Python"
        )
    return parse_spec(text, task)


def model_task(cfg: DictConfig) -> str:
    """The task of the models a config names: the config's, or with data=continuation `text`
    (language models reading the prompts of data.texts)."""
    return TEXT if data_source(cfg) == "continuation" else cfg.task.name


def model_texts(cfg: DictConfig) -> list:
    """The models as the config names them (a=/b= or models=[...])."""
    return list(cfg.models) if cfg.models else [cfg[key] for key in ("a", "b") if cfg[key] is not None]


def plan_alignment(cfg: DictConfig, wrapped: dict[str, ModelSpec] | None = None) -> Plan:
    """Everything that follows from the config alone (no model loaded yet)."""
    specs = model_specs(cfg, wrapped)
    method = METHODS[resolve_method(cfg.method, len(specs), cfg.cl.eps)]
    low, high = method.models
    if not low <= len(specs) <= (high or len(specs)):
        alternative = " (use method=mas)" if cfg.method != "mas" else ""
        what = "aligns one model with itself" if method.name == "das" else f"takes {method.describe_models()}"
        raise ConfigError(f"method={cfg.method} {what}; got {len(specs)} model(s){alternative}")
    if method.fixed_pairs and cfg.directions != "all":
        raise ConfigError(f"method={cfg.method} fixes its directions (source a, target b); drop directions=")
    several = len(swapped(cfg)) > 1 or cfg.null_block
    if swap_map(cfg) and (several or "full" in swapped(cfg)):
        raise ConfigError(
            "swap_by_task maps one variable onto another; use it with one swap variable and no null_block"
        )
    if several and method.one_variable:
        raise ConfigError(f"method={cfg.method} swaps one variable; drop the extra swap variables and null_block")
    _check_data(cfg, method)
    cfg = OmegaConf.merge(cfg, {"method": method.name, "k": method.default_k if cfg.k is None else cfg.k})
    pairs = list(method.fixed_pairs) if method.fixed_pairs else parse_directions(cfg.directions, len(specs))
    latent_pairs = latent_directions(cfg, method, pairs, len(specs))
    run_dir = Path(cfg.paths.root) / "alignments" / ALIGN.run_name(cfg) / "+".join(s.slug for s in specs)
    return Plan(cfg, specs, pairs, latent_pairs, run_dir)


def _check_data(cfg: DictConfig, method: Method) -> None:
    """What only a built-in task's causal model gives (latents matched by value, other hypotheses,
    cross-task maps, the null block's unchanged base) is refused with other data."""
    source = data_source(cfg)
    if source == "task":
        return
    asks = [
        (method.latent is not None, f"method={cfg.method} (it matches latents by causal values)"),
        (cfg.causal_model is not None, "causal_model="),
        (bool(swap_map(cfg)), "swap_by_task"),
        (cfg.null_block, "null_block=true"),
    ]
    for asked, what in asks:
        if asked:
            raise ConfigError(f"data={source} cannot give {what}; drop it or use data=task")


def latent_directions(cfg: DictConfig, method: Method, pairs: list[Pair], m: int) -> list[Pair]:
    """The directions trained with the latent loss: all of latent stitching's; for CLMAS and its
    ablation `cl.directions` (default `into_last`: every direction into the last model)."""
    if method.latent is None:
        return []
    if cfg.site != "hidden":
        raise ConfigError(f"method={cfg.method} matches natural hidden states; use site=hidden")
    if cfg.causal_model is not None:
        raise ConfigError(f"method={cfg.method} matches latents by the task's own causal model; drop causal_model=")
    if method.latent == "all":
        return list(pairs)
    wanted = cfg.cl.directions
    chosen = [p for p in pairs if p[1] == m - 1] if wanted == "into_last" else parse_directions(wanted, m)
    outside = [p for p in chosen if p not in pairs]
    if outside:
        raise ConfigError(f"cl.directions {outside} are not among the trained directions; choose from {pairs}")
    if len(chosen) == len(pairs) and latent_weight(cfg) == 0:
        raise ConfigError("cl.eps=0 with every direction latent leaves nothing to train; keep a behaviour direction")
    return chosen


def latent_weight(cfg: DictConfig) -> float:
    """The weight of the latent loss: the method's own (the ablation: 0), else cl.eps."""
    fixed = METHODS[cfg.method].latent_weight
    return cfg.cl.eps if fixed is None else fixed


def check_models(cfg: DictConfig, described: list[Described]) -> int:
    """k and the swapped variables against each model's width and causal variables; returns k
    as a number (`k=full` is the smallest width)."""
    smallest = min(d.width for d in described)
    k = smallest if cfg.k == "full" else cfg.k
    if cfg.k == "full" and len({d.width for d in described}) > 1:
        console.print(f"[yellow]warning:[/] k=full is capped at the smallest site width, {smallest}")
    if k > smallest:
        raise ConfigError(f"k={k} is larger than the smallest site width ({smallest}); choose k <= {smallest}")
    for d in described if data_source(cfg) == "task" else ():  # other data name their own variables
        mapped = swap_map(cfg).get(d.label.split("/")[0])
        for variable in [mapped] if mapped else swapped(cfg):
            if variable != "full" and variable not in d.variables:
                have = ", ".join((*d.variables, "full"))
                raise ConfigError(
                    f"swap={variable} is not a variable of {d.label}'s causal model; choose one of {have}"
                )
    blocks = len(swapped(cfg)) * k + (1 if cfg.null_block else 0)
    if blocks > smallest:
        raise ConfigError(
            f"{len(swapped(cfg))} variable block(s) of k={k}{' and a null block' if cfg.null_block else ''} "
            f"need {blocks} dims, more than the smallest site width ({smallest}); lower k"
        )
    return k


def fingerprint_of(plan: Plan, models: list[dict]) -> dict:
    """What the result depends on: every alignment setting in effect (registry), the models (each
    its label, training fingerprint and weights digest: FrozenModel.identity), and the directions.
    A stored run is reused only on a match."""
    return {
        "format": ALIGNMENT_FORMAT,
        **ALIGN.fingerprint(plan.cfg),
        "models": models,
        "pairs": [list(p) for p in plan.pairs],
        "latent_pairs": [list(p) for p in plan.latent_pairs],
    }


def parse_directions(value, m: int) -> list[tuple[int, int]]:
    """Ordered (source, target) index pairs: all | within | cross | a list like [0-1,1-1]."""
    pairs = [(s, t) for s in range(m) for t in range(m)]
    if isinstance(value, str):
        if value not in ("all", "within", "cross"):
            raise ConfigError(
                f"directions={value}: use all, within, cross or a list of source-target indices, e.g. [0-1]"
            )
        chosen = [p for p in pairs if value == "all" or (p[0] == p[1]) == (value == "within")]
    else:
        chosen = []
        for item in value:
            found = re.fullmatch(r"(\d+)-(\d+)", str(item))
            if not found or int(found[1]) >= m or int(found[2]) >= m:
                raise ConfigError(
                    f"directions item {item!r} must be source-target model indices below {m}, e.g. [0-1,1-0]"
                )
            chosen.append((int(found[1]), int(found[2])))
    if not chosen:
        raise ConfigError(f"directions={value} selects no direction among {m} model(s); use all or within")
    return list(dict.fromkeys(chosen))
