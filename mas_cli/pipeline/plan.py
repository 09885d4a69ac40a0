"""What a pipeline config asks for, as jobs: one `mas train` config per model, one `mas align`
config per fit. Everything is composed and checked here, before anything runs, so bad input in a
preset is refused in one line with nothing trained or written."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from omegaconf import DictConfig, ListConfig, OmegaConf

from mas_cli import store
from mas_cli.alignment.methods import METHODS as ALIGN_METHODS
from mas_cli.alignment.plan import Plan, check_models, plan_alignment
from mas_cli.alignment.settings import swapped, validate_align
from mas_cli.architectures import names as architecture_names
from mas_cli.composition import compose_config, config_names, inherit_runtime
from mas_cli.config import seed_value, validate_runtime
from mas_cli.correlative.run import check_vocabulary, plan_similarity, validate_similarity
from mas_cli.errors import ConfigError
from mas_cli.specs import ModelSpec, parse_spec
from mas_cli.zoo import ModelsOnDemand

METHODS = (*ALIGN_METHODS, "similarity")  # every alignment method, and RSA/CKA of every pair
FITS = ("joint", "pairs", "reference")
# Keys the pipeline sets on each job itself: an override of one would be silently replaced.
SET_PER_JOB = {
    "align": {
        "a": "pipeline.archs and pipeline.seeds",
        "b": "pipeline.archs and pipeline.seeds",
        "models": "pipeline.archs and pipeline.seeds",
        "method": "pipeline.methods",
        "site": "pipeline.sites",
        "swap": "pipeline.swaps",
        "k": "pipeline.ks",
        "causal_model": "pipeline.hypotheses",
        "allow_undertrained": "pipeline.allow_undertrained",
        "train_overrides": "pipeline.train_overrides",
    },
    "train": {"task": "pipeline.tasks", "arch": "pipeline.archs", "seed": "pipeline.seeds"},
}
SHARED = {"budget", "paths", "device", "threads", "dtype", "seed"}  # the pipeline's own, passed to every job


@dataclass(eq=False)
class Job:
    stage: str  # train | align | similarity
    label: str  # what the overview prints
    config: DictConfig  # the full `mas train` / `mas align` config
    done: bool  # a complete result already exists (it is reused, not re-run)
    specs: list[ModelSpec] = field(default_factory=list)  # the models an align/similarity job needs
    plan: Plan | None = None  # an align job's resolved plan (directions, latent directions, run dir)


@dataclass
class PipelinePlan:
    models: list[ModelSpec]
    train: list[Job]
    align: list[Job]


def _names(cfg: DictConfig, key: str, known: list[str] | tuple[str, ...] | None = None) -> list:
    value = cfg.pipeline[key]
    if not isinstance(value, ListConfig):
        raise ConfigError(f"pipeline.{key} must be a list, e.g. pipeline.{key}=[{known[0] if known else 0}]")
    if len(value) == 0:
        raise ConfigError(f"pipeline.{key} is empty: the sweep has nothing to run; name at least one")
    for item in value:
        if known is not None and item not in known:
            raise ConfigError(f"pipeline.{key} names unknown {key[:-1]} {item!r}; choose from {', '.join(known)}")
    return list(dict.fromkeys(value))


def model_specs(cfg: DictConfig) -> tuple[list[ModelSpec], list[ModelSpec]]:
    """The swept models (task × arch × seed) and the reference set."""
    tasks = _names(cfg, "tasks", config_names("task"))
    archs = _names(cfg, "archs", architecture_names())
    seeds = _names(cfg, "seeds")
    for seed in seeds:
        seed_value(seed, "pipeline.seeds: each seed")
    swept = [ModelSpec(t, a, s) for t, a, s in itertools.product(tasks, archs, seeds)]
    reference = [parse_spec(text, tasks[0]) for text in cfg.pipeline.reference]
    for spec in reference:
        if spec.task not in config_names("task"):
            raise ConfigError(f"pipeline.reference names unknown task {spec.task!r} in {spec.label}")
    return swept, reference


def fit_groups(cfg: DictConfig, swept: list[ModelSpec], reference: list[ModelSpec]) -> list[list[ModelSpec]]:
    fits = cfg.pipeline.fits
    if fits not in FITS:
        raise ConfigError(f"pipeline.fits must be one of {', '.join(FITS)}, got {fits!r}")
    if fits == "reference":
        if not reference:
            raise ConfigError("pipeline.fits=reference needs pipeline.reference, e.g. [count/gru:0,count/gru:1]")
        return [[s, *reference] for s in swept if s not in reference]
    everyone = list(dict.fromkeys(swept + reference))
    if fits == "pairs":
        if len(everyone) < 2:
            raise ConfigError("pipeline.fits=pairs needs two models or more; add seeds or archs")
        return [list(pair) for pair in itertools.combinations(everyone, 2)]
    return [everyone]


def train_jobs(cfg: DictConfig, specs: list[ModelSpec], on_demand: ModelsOnDemand) -> list[Job]:
    jobs = []
    for spec in specs:
        train_cfg = on_demand.train_config(spec)
        entry = store.model_entry(cfg.paths.root, spec.task, spec.arch, spec.seed)
        jobs.append(Job("train", spec.label, train_cfg, done=entry.complete()))
    return jobs


def check_overrides(cfg: DictConfig, command: str) -> None:
    """pipeline.<command>_overrides may not set what the pipeline sets on each job or shares
    with all of them: say which pipeline key to use instead."""
    key = f"pipeline.{command}_overrides"
    given = cfg.pipeline[f"{command}_overrides"]
    if not isinstance(given, ListConfig) or not all(isinstance(o, str) and "=" in o for o in given):
        example = '["normalize=none"]' if command == "align" else '["arch.width=64"]'
        raise ConfigError(f"{key} must be a list of `mas {command}` overrides such as {example}, got {given}")
    for override in given:
        name = override.split("=")[0].lstrip("+~")
        if name in SET_PER_JOB[command]:
            raise ConfigError(f"{key}: {override} is set by the pipeline per job; use {SET_PER_JOB[command][name]}")
        if name.split(".")[0] in SHARED:
            raise ConfigError(f"{key}: {override} is the pipeline's own setting; give it as mas pipeline {override}")


def _composed(cfg: DictConfig, name: str, overrides: list[str], settings: dict, bases: dict) -> DictConfig:
    """A `mas <name>` config run by the pipeline: its overrides, then the pipeline's runtime, then
    the job's settings. The base is composed once per command (Hydra composition is slow) and
    merged per job (`bases` holds them: (command, overrides) -> config)."""
    key = (name, tuple(overrides))
    if key not in bases:
        try:
            child = compose_config(name, overrides)
        except ConfigError as exc:
            raise ConfigError(f"pipeline.{name}_overrides: {exc}") from None
        inherit_runtime(cfg, child)
        child.train_overrides = list(cfg.pipeline.train_overrides)
        child.allow_undertrained = cfg.pipeline.allow_undertrained
        child.seed = cfg.seed
        bases[key] = child
    return OmegaConf.merge(bases[key], settings)


def _spec_text(spec: ModelSpec) -> str:
    return f"{spec.task}/{spec.arch}:{spec.seed}"


def fits_of(method: str, groups: list[list[ModelSpec]], everyone: list[ModelSpec]) -> list[list[ModelSpec]]:
    """The model lists one method fits (its `fits` in the methods table): MAS each group; DAS
    each model; the two-model methods (stitching, uniMAS, CLMAS, latent stitching) every ordered
    pair within a group (a = source or accessible model, b = target or inaccessible one);
    similarity every unordered pair."""
    if method == "similarity":
        return list(dict.fromkeys(tuple(p) for g in groups for p in itertools.combinations(g, 2)))
    fits = ALIGN_METHODS[method].fits
    if fits == "each":
        return [[s] for s in everyone]
    if fits == "groups":
        return groups
    return list(dict.fromkeys(tuple(p) for g in groups for p in itertools.permutations(g, 2)))


def method_jobs(
    cfg: DictConfig,
    method: str,
    group: list[ModelSpec],
    site: str,
    hypothesis: dict,
    on_demand: ModelsOnDemand,
    bases: dict,
) -> Job:
    """One job, checked against what its models will be (`on_demand` knows each model's task,
    width and variables before it is trained); `hypothesis` holds swap, k and causal_model."""
    if method == "similarity":
        sim_cfg = _composed(cfg, "similarity", [], {"a": _spec_text(group[0]), "b": _spec_text(group[1])}, bases)
        sim_cfg.site = site
        validate_similarity(sim_cfg)
        for spec in group:
            check_vocabulary(spec, on_demand.task(spec))
        done = store.Entry(plan_similarity(sim_cfg)[1]).complete() and not sim_cfg.force
        return Job("similarity", f"rsa/cka {site}: {group[0].label} ~ {group[1].label}", sim_cfg, done, list(group))
    settings = {"models": [_spec_text(s) for s in group], "method": method, "site": site, **hypothesis}
    align_cfg = _composed(cfg, "align", list(cfg.pipeline.align_overrides), settings, bases)
    validate_align(align_cfg)
    plan = plan_alignment(align_cfg)
    check_models(plan.cfg, [on_demand.describe(s, align_cfg.site, align_cfg.causal_model) for s in group])
    swap, k, causal_model = "+".join(swapped(align_cfg)), plan.cfg.k, align_cfg.causal_model
    label = f"{method} {site} {swap} k{k}{'' if causal_model is None else ' ' + causal_model}: "
    label += " + ".join(s.label for s in group)
    done = store.Entry(plan.run_dir).complete() and not align_cfg.force
    return Job("align", label, align_cfg, done, list(group), plan)


def _ks_of(cfg: DictConfig, method: str, ks: list) -> list:
    """pipeline.ks, unless pipeline.ks_by_method names this method (e.g. stitch: [full, 2, 4, 16])."""
    if method == "similarity":
        return [None]
    chosen = cfg.pipeline.ks_by_method.get(method)
    return ks if chosen is None else list(chosen)


def _check_ks_by_method(cfg: DictConfig) -> None:
    by_method = cfg.pipeline.ks_by_method
    if not isinstance(by_method, DictConfig) or any(m not in METHODS for m in by_method):
        raise ConfigError(
            f"pipeline.ks_by_method must map methods to k lists, e.g. {{stitch: [full,2]}}; got {by_method}"
        )
    for method, chosen in by_method.items():
        if chosen is not None and (not isinstance(chosen, ListConfig) or len(chosen) == 0):
            raise ConfigError(f"pipeline.ks_by_method.{method} must be a non-empty list of k (or null), got {chosen}")


def align_jobs(
    cfg: DictConfig, groups: list[list[ModelSpec]], everyone: list[ModelSpec], on_demand: ModelsOnDemand
) -> list[Job]:
    """Alignment and similarity jobs: every method × site × swap × k (similarity: × site only)."""
    methods = _names(cfg, "methods", METHODS)
    sites = _names(cfg, "sites")
    jobs, bases = [], {}
    for method in methods:
        for site, hypothesis in itertools.product(sites, hypotheses_of(cfg, method)):
            for group in fits_of(method, groups, everyone):
                if method == "mas" and len(group) < 2:
                    raise ConfigError("a MAS fit needs two models or more; add seeds or archs, or use methods=[das]")
                jobs.append(method_jobs(cfg, method, list(group), site, hypothesis, on_demand, bases))
    return jobs


def hypotheses_of(cfg: DictConfig, method: str) -> list[dict]:
    """What each fit swaps: pipeline.hypotheses when given (each a causal_model with its swap and
    k), else every swap × k under the task's own causal model. Similarity swaps nothing."""
    if method == "similarity":
        return [{}]
    given = cfg.pipeline.hypotheses
    if not isinstance(given, ListConfig):
        raise ConfigError("pipeline.hypotheses must be a list of {causal_model, swap, k}")
    if len(given) == 0:
        swaps, ks = _names(cfg, "swaps"), _ks_of(cfg, method, _names(cfg, "ks"))
        return [{"swap": swap, "k": k, "causal_model": None} for swap, k in itertools.product(swaps, ks)]
    found = []
    for h in given:
        if not isinstance(h, DictConfig) or set(h) != {"causal_model", "swap", "k"}:
            raise ConfigError(f"each of pipeline.hypotheses needs exactly causal_model, swap and k; got {h}")
        found.append(OmegaConf.to_container(h))
    return found


def plan_pipeline(cfg: DictConfig) -> PipelinePlan:
    """Every job of the pipeline; with `pipeline.parts`, of each part (the pipeline's keys with
    the part's own on top), each model trained once and each fit run once however many parts
    name it."""
    parts = cfg.pipeline.get("parts")
    if not parts:
        return _plan_one(cfg)
    if not isinstance(parts, ListConfig) or not all(isinstance(p, DictConfig) for p in parts):
        raise ConfigError("pipeline.parts must be a list of pipeline settings, e.g. [{archs: [gru], seeds: [0, 1]}]")
    plans = []
    for i, part in enumerate(parts):
        unknown = set(part) - set(cfg.pipeline)
        if unknown:
            raise ConfigError(f"pipeline.parts[{i}] names unknown pipeline key(s) {', '.join(sorted(unknown))}")
        try:
            plans.append(_plan_one(OmegaConf.merge(cfg, {"pipeline": {**part, "parts": []}})))
        except ConfigError as exc:  # say which part: the same key may be right in the others
            raise ConfigError(f"pipeline.parts[{i}]: {exc}") from None
    models = list(dict.fromkeys(m for p in plans for m in p.models))
    train = {job.label: job for p in plans for job in p.train}
    fits = {OmegaConf.to_yaml(job.config): job for p in plans for job in p.align}
    return PipelinePlan(models, [train[m.label] for m in models], list(fits.values()))


def _plan_one(cfg: DictConfig) -> PipelinePlan:
    validate_runtime(cfg)
    jobs = cfg.pipeline.jobs
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ConfigError(f"pipeline.jobs must be a positive integer, got {jobs!r}")
    for key in ("allow_undertrained", "report"):
        if not isinstance(cfg.pipeline[key], bool):
            raise ConfigError(f"pipeline.{key} must be true or false, got {cfg.pipeline[key]!r}")
    _check_ks_by_method(cfg)
    check_overrides(cfg, "train")
    check_overrides(cfg, "align")
    swept, reference = model_specs(cfg)
    everyone = list(dict.fromkeys(swept + reference))
    groups = fit_groups(cfg, swept, reference)
    on_demand = ModelsOnDemand(cfg, cfg.pipeline.train_overrides)  # each model's train config, composed once
    return PipelinePlan(everyone, train_jobs(cfg, everyone, on_demand), align_jobs(cfg, groups, everyone, on_demand))
