"""Every setting of `mas align` that changes a result (the registry: mas_cli/registry.py).

Adding a setting is one entry here plus its key, with its default and a comment, in
conf/align.yaml: validation, the run directory's name, the fingerprint, the iia.csv columns and
the report's grouping all follow from the entry. The table's order is the order of the
run name's suffixes (`mas-hidden-count-k16-s0-null-budget_paper-normalize_none`).
"""

from __future__ import annotations

import re
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf

from mas_cli.alignment.methods import METHODS
from mas_cli.config import (
    DTYPES,
    boolean,
    choice,
    is_int,
    number_in,
    positive_int,
    require,
    seed_value,
    validate_models_on_demand,
)
from mas_cli.data import DATA_SOURCES, check_causal_setting, check_data_file, file_value
from mas_cli.registry import Registry, Setting
from mas_cli.tasks.causal import NULL_BLOCK

SITES = ("embed", "hidden")  # every model's named sites; layer:<i> and module paths resolve per model
SITE = re.compile(r"^(layer:\d+|[A-Za-z_][\w]*(\.[\w]+)*)$")
ALIGN_FNS = ("orthogonal", "gram_schmidt", "linear")  # alignment/maps.py implements each
ORTHOGONAL_MAPS = ("matrix_exp", "cayley")
NORMALIZATIONS = ("rms", "none")
CL_LOSSES = ("both", "mse", "cos")


def swapped(cfg: DictConfig) -> list[str]:
    """The swapped variables, one k-block each, in order (`swap=count` or `swap=[count,phase]`;
    unset: the method's default, or `full` with data=continuation)."""
    if cfg.swap is None:  # a language model's items name no variable: the whole site's content moves
        return ["full" if data_source(cfg) == "continuation" else METHODS[cfg.method].default_swap]
    return list(cfg.swap) if isinstance(cfg.swap, ListConfig) else [cfg.swap]


def swap_map(cfg: DictConfig) -> dict[str, str]:
    """Tasks whose models swap another variable than `swap` (cross-task alignment)."""
    return {task: v for task, v in cfg.swap_by_task.items() if v is not None}


def data_source(cfg: DictConfig) -> str:
    """Where the run's counterfactual items come from (conf/data/: task, items, continuation)."""
    return OmegaConf.select(cfg, "data.source", default="task")


def _from(source: str):
    return lambda cfg: data_source(cfg) == source


def _stem(recorded: str) -> str:
    """A data file's name, as file_value records it, in a form a folder name can hold."""
    return re.sub(r"\W", "_", Path(recorded.split("@")[0]).stem)


def _file_setting(key: str, source: str, tag: str) -> Setting:
    """A data file: checked (rows and all) before anything runs; results record its name and
    SHA-256, so a changed file is refused until force=true; the run directory says its name."""
    return Setting(
        key,
        lambda v, cfg: check_data_file(v, key, source) if data_source(cfg) == source else None,
        used=_from(source),
        value=lambda cfg: file_value(OmegaConf.select(cfg, key, default=None)),
        name=lambda v: f"-{tag}_{_stem(v)}",
    )


def _latent(cfg: DictConfig) -> bool:
    return METHODS[cfg.method].latent is not None


def _check_swap(value, cfg: DictConfig) -> None:
    if value is None:  # the method's default
        return
    value = [value] if isinstance(value, str) else value
    require(
        isinstance(value, list) and len(value) > 0 and all(isinstance(v, str) and v for v in value),
        f"swap must name a causal variable, full, or a list such as [count,phase]; got {cfg.swap!r}",
    )
    require(len(set(value)) == len(value), f"swap={cfg.swap} names a variable twice: its blocks would overlap")
    require(
        len(value) == 1 or not {"full", NULL_BLOCK} & set(value),
        f"swap={cfg.swap}: full already holds every variable; list single variables, e.g. [count,phase]",
    )


def _check_site(value, cfg: DictConfig) -> None:
    """A site name or a module path (whether the models have it is checked against each model)."""
    require(
        isinstance(value, str) and SITE.match(value) is not None,
        f"site must be embed, hidden, layer:<i> or a module path such as model.layers.1, got {value!r}",
    )


def _check_k(value, cfg: DictConfig) -> None:
    require(
        value is None or value == "full" or (is_int(value) and value > 0),
        f"k must be a positive integer (or full), got {value!r}",
    )


def _check_map(value, cfg: DictConfig) -> None:
    require(
        isinstance(cfg.swap_by_task, DictConfig)
        and all(v is None or (isinstance(v, str) and v) for v in cfg.swap_by_task.values()),
        f"swap_by_task maps task names to a variable, e.g. swap_by_task.arithmetic=cumu_val; got {cfg.swap_by_task!r}",
    )


def _check_directions(value, cfg: DictConfig) -> None:
    require(
        isinstance(cfg.directions, (str, ListConfig)),
        f"directions must be all, within, cross or a list such as [0-1,1-0], got {cfg.directions!r}",
    )


def _check_causal_model(value, cfg: DictConfig) -> None:
    require(
        value is None or isinstance(value, str),
        f"causal_model must name a causal model (up_down, up_up, context) or be null, got {value!r}",
    )


def _check_cl_directions(value, cfg: DictConfig) -> None:
    require(
        value == "into_last" or isinstance(cfg.cl.directions, ListConfig),
        f"cl.directions must be into_last or a list such as [0-1,1-1], got {value!r}",
    )


def _joined(value) -> str:
    return value if isinstance(value, str) else ".".join(str(v) for v in value)


def _directions_name(value) -> str:
    return "" if value == "all" else f"-{_joined(value)}"


def _map_text(value: dict) -> str:
    return ".".join(f"{task}_{v}" for task, v in sorted(value.items())) or "none"


def _budget_setting(key: str, check) -> Setting:
    """budget.align.<key>: the fit's data sizes, schedule and stopping rules."""
    full = f"budget.align.{key}"
    return Setting(full, lambda v, cfg: check(v, full), tag=f"align.{key}", column=f"align_{key}")


def _number(low: float, high: float, bounds: str):
    return lambda value, key: number_in(value, key, low, high, bounds)


def _count(value, key: str) -> None:
    require(is_int(value) and value >= 0, f"{key} must be a whole number (0, 1, 2, ...), got {value!r}")


ALIGN = Registry(
    "align",
    [
        Setting("method", choice("method", tuple(METHODS))),
        Setting("site", _check_site, text=lambda v: v.replace(":", "")),
        Setting("swap", _check_swap, value=swapped, text="+".join),
        Setting("k", _check_k),
        Setting(
            "seed", lambda v, cfg: seed_value(v, "seed"), group=False
        ),  # alignment seeds are replicates of one setting
        Setting("null_block", boolean("null_block"), name=lambda v: "-null" if v else ""),
        Setting(
            "swap_by_task",
            _check_map,
            value=swap_map,
            text=_map_text,
            name=lambda v: f"-map_{_map_text(v)}" if v else "",
        ),
        Setting("directions", _check_directions, text=_joined, name=_directions_name),
        Setting("data.source", choice("data.source", DATA_SOURCES), name=lambda v: ""),  # its file says it below
        _file_setting("data.path", "items", "items"),
        _file_setting("data.texts", "continuation", "texts"),
        Setting(
            "data.name",
            lambda v, cfg: check_causal_setting(v, cfg) if data_source(cfg) == "causal" else None,
            used=_from("causal"),
            value=lambda cfg: f"{cfg.data.name}@{str(cfg.data.behaviour)[:16]}" if "name" in cfg.data else None,
            name=lambda v: f"-causal_{_stem(v)}",
        ),
        Setting(
            "data.new_tokens",
            lambda v, cfg: positive_int(v, "data.new_tokens") if data_source(cfg) == "continuation" else None,
            tag="new",
            used=_from("continuation"),
        ),
        Setting("budget", value=lambda cfg: cfg.budget.name, tag="budget"),
        Setting(
            "orthogonal_map",
            choice("orthogonal_map", ORTHOGONAL_MAPS),
            tag="orthogonal_map",
            used=lambda cfg: cfg.align_fn == "orthogonal",  # the other functions have no parametrisation
        ),
        Setting("normalize", choice("normalize", NORMALIZATIONS), tag="normalize"),
        Setting("dtype", choice("dtype", DTYPES), tag="dtype"),  # the models' (runtime/default.yaml); maps stay fp32
        Setting("align_fn", choice("align_fn", ALIGN_FNS), tag="align_fn"),
        Setting("causal_model", _check_causal_model, tag="cm", text=lambda v: v or "task default"),
        Setting(
            "cl.eps",
            lambda v, cfg: number_in(v, "cl.eps", 0, float("inf"), "[0, inf)"),
            tag="eps",
            used=lambda cfg: _latent(cfg) and METHODS[cfg.method].latent_weight is None,
        ),
        Setting("cl.loss", choice("cl.loss", CL_LOSSES), tag="cl_loss", used=_latent, column="cl_terms"),
        Setting(
            "cl.directions",
            _check_cl_directions,
            tag="cl",
            used=lambda cfg: _latent(cfg) and METHODS[cfg.method].latent == "chosen",
            text=_joined,
        ),
        Setting("cl.bank_size", lambda v, cfg: positive_int(v, "cl.bank_size"), tag="bank", used=_latent),
        _budget_setting("train_size", positive_int),
        _budget_setting("val_size", positive_int),
        _budget_setting("max_steps", positive_int),
        _budget_setting("batch_size", positive_int),
        _budget_setting("lr", _number(0, float("inf"), "(0, inf)")),
        _budget_setting("val_every", positive_int),
        _budget_setting("patience", positive_int),
        _budget_setting("min_delta", _number(0, float("inf"), "[0, inf)")),
        _budget_setting("lr_factor", _number(0, 1, "(0, 1)")),
        _budget_setting("lr_drops", _count),
        _budget_setting("target_iia", _number(0, 1, "(0, 1]")),
    ],
    base="{method}-{site}-{swap}-k{k}-s{seed}",
)


def validate_align(cfg: DictConfig) -> None:
    """Each setting's own check and the models-on-demand keys (rules across settings and models
    live in alignment/plan.py)."""
    require(isinstance(cfg.models, ListConfig), f"models must be a list such as [gru:0,lstm:0], got {cfg.models!r}")
    require(isinstance(cfg.get("cl"), DictConfig), f"cl must hold cl.eps, cl.loss, ..., got {cfg.get('cl')!r}")
    validate_models_on_demand(cfg)
    ALIGN.validate(cfg)
