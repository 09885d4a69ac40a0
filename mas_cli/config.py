"""Validation of composed configs. Every bad-input message lives here: one line that says what
to change. Commands call these before writing anything."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from omegaconf import DictConfig, ListConfig

from mas_cli.align.functions import ALIGN_FNS, NORMALIZATIONS, ORTHOGONAL_MAPS
from mas_cli.align.latents import CL_LOSSES
from mas_cli.align.methods import METHODS
from mas_cli.models import ARCHITECTURES, SITES
from mas_cli.store import describe_difference
from tasks.causal import TRANSFORMS
from tasks.counting import CAUSAL_MODELS, VARIANTS


class ConfigError(ValueError):
    """Bad user input; the message is shown as-is and the command exits with status 2."""


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_int(value, key: str) -> None:
    _require(_is_int(value) and value > 0, f"{key} must be a positive integer, got {value!r}")


def _number_in(value, key: str, low: float, high: float, bounds: str) -> None:
    """value within `bounds`, written as an interval such as "[0, 1)"; a non-number is refused too."""
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    inside = (
        is_number
        and (value > low if bounds.startswith("(") else value >= low)
        and (value <= high if bounds.endswith("]") else value < high)
    )
    _require(inside, f"{key} must be in {bounds}, got {value!r}")


def _count_range(task: DictConfig, low_key: str, high_key: str) -> tuple[int, int]:
    low, high = task[low_key], task[high_key]
    _positive_int(low, f"task.{low_key}")
    _positive_int(high, f"task.{high_key}")
    _require(high >= low, f"task.{low_key}/task.{high_key}: the maximum ({high}) must be at least the minimum ({low})")
    return low, high


def validate_task(task: DictConfig) -> None:
    if task.kind == "arithmetic":
        _positive_int(task.max_value, "task.max_value")
        low, high = _count_range(task, "min_ops", "max_ops")
        _require(
            high <= task.max_value,
            f"task.max_ops ({high}) must not exceed task.max_value ({task.max_value}): k is written as a number token",
        )
    else:
        _require(task.kind == "counting", f"task.kind must be counting or arithmetic, got {task.kind!r}")
        _require(task.variant in VARIANTS, f"task.variant must be one of {', '.join(VARIANTS)}")
        _require(task.transform in TRANSFORMS, f"task.transform must be one of {', '.join(TRANSFORMS)}")
        _require(task.causal_model in CAUSAL_MODELS, f"task.causal_model must be one of {', '.join(CAUSAL_MODELS)}")
        _number_in(task.void_p, "task.void_p", 0, 1, "[0, 1)")
        low, high = _count_range(task, "min_count", "max_count")
    held_out = task.held_out
    _require(
        isinstance(held_out, ListConfig) and all(_is_int(n) for n in held_out),
        f"task.held_out must be a list of integers such as [4,9], got {held_out!r}",
    )
    held = set(held_out)
    _require(held <= set(range(low, high + 1)), f"task.held_out {sorted(held)} must lie within {low}..{high}")
    _require(
        len(held) < high - low + 1,
        f"task.held_out covers every count in {low}..{high}; leave at least one for training",
    )
    curriculum = task.get("curriculum")
    if curriculum is not None:
        _require(
            isinstance(curriculum, DictConfig) and set(curriculum) == {"start", "steps"},
            f"task.curriculum must be null or {{start: <first cap>, steps: <steps to all>}}, got {curriculum!r}",
        )
        _positive_int(curriculum.start, "task.curriculum.start")
        _require(_is_int(curriculum.steps) and curriculum.steps >= 0, "task.curriculum.steps must be an integer ≥ 0")


def validate_arch(arch: DictConfig) -> None:
    _require(arch.name in ARCHITECTURES, f"arch must be one of {', '.join(ARCHITECTURES)}, got {arch.name!r}")
    _positive_int(arch.width, "arch.width")
    if arch.name == "lstm":
        _require(arch.width % 2 == 0, f"arch.width must be even for lstm (h and c are width/2), got {arch.width}")
    if arch.name == "transformer":
        _require(arch.width % 2 == 0, f"arch.width must be even for rotary embeddings, got {arch.width}")
        _positive_int(arch.layers, "arch.layers")
        _require(
            _is_int(arch.hidden_layer) and 0 < arch.hidden_layer < arch.layers,
            f"arch.hidden_layer must be between 1 and arch.layers - 1 ({arch.layers - 1})",
        )
    _number_in(arch.dropout, "arch.dropout", 0, 1, "[0, 1)")
    _number_in(arch.grad_clip, "arch.grad_clip", 0, float("inf"), "[0, inf); 0 turns clipping off")


def validate_budget(budget: DictConfig) -> None:
    for key in ("max_steps", "batch_size", "val_every", "val_size", "heldout_size", "checkpoint_every"):
        _positive_int(budget[key], f"budget.{key}")
    _require(_is_int(budget.warmup_steps) and budget.warmup_steps >= 0, "budget.warmup_steps must be an integer >= 0")
    _require(isinstance(budget.lr, (int, float)) and budget.lr > 0, f"budget.lr must be positive, got {budget.lr!r}")
    _number_in(budget.criterion, "budget.criterion", 0, 1, "(0, 1]")


def validate_runtime(cfg: DictConfig) -> None:
    _require(cfg.device in ("auto", "cpu", "cuda"), f"device must be auto, cpu or cuda, got {cfg.device!r}")
    if cfg.device == "cuda":
        _require(torch.cuda.is_available(), "device=cuda but no CUDA device is visible; use device=auto or cpu")
    _positive_int(cfg.threads, "threads")
    _require(_is_int(cfg.seed) and cfg.seed >= 0, f"seed must be a non-negative integer, got {cfg.seed!r}")
    check_writable(Path(cfg.paths.root))


def check_writable(root: Path) -> None:
    """paths.root must be creatable and writable; checked without leaving anything behind."""
    existing = root
    while not existing.exists():
        existing = existing.parent
    _require(existing.is_dir(), f"paths.root={root}: {existing} is a file, not a folder; choose another paths.root")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError:
        raise ConfigError(f"paths.root={root} is not writable ({existing}); choose a folder you can write to") from None


def validate_train(cfg: DictConfig) -> None:
    validate_task(cfg.task)
    validate_arch(cfg.arch)
    validate_budget(cfg.budget)
    validate_runtime(cfg)


def validate_align_budget(settings: DictConfig) -> None:
    for key in ("train_size", "val_size", "max_steps", "batch_size", "val_every", "patience"):
        _positive_int(settings[key], f"budget.align.{key}")
    _number_in(settings.lr, "budget.align.lr", 0, float("inf"), "(0, inf)")
    _number_in(settings.min_delta, "budget.align.min_delta", 0, float("inf"), "[0, inf)")
    _number_in(settings.target_iia, "budget.align.target_iia", 0, 1, "(0, 1]")


def _check_models_on_demand(cfg: DictConfig) -> None:
    """The keys of commands that read models from the store and train missing ones."""
    for key in ("auto_train", "allow_undertrained", "force"):
        _require(isinstance(cfg[key], bool), f"{key} must be true or false, got {cfg[key]!r}")
    _require(
        isinstance(cfg.train_overrides, ListConfig) and all(isinstance(o, str) for o in cfg.train_overrides),
        f"train_overrides must be a list of `mas train` overrides such as '[\"arch.width=64\"]', "
        f"got {cfg.train_overrides!r}",
    )


def validate_align(cfg: DictConfig) -> None:
    _require(cfg.method in METHODS, f"method must be one of {', '.join(METHODS)}, got {cfg.method!r}")
    _require(cfg.site in SITES, f"site must be one of {', '.join(SITES)}, got {cfg.site!r}")
    _require(
        cfg.k is None or cfg.k == "full" or (_is_int(cfg.k) and cfg.k > 0),
        f"k must be a positive integer (or full), got {cfg.k!r}",
    )
    _require(
        cfg.causal_model is None or isinstance(cfg.causal_model, str),
        f"causal_model must name a causal model (up_down, up_up, context) or be null, got {cfg.causal_model!r}",
    )
    swaps = list(cfg.swap) if isinstance(cfg.swap, ListConfig) else [cfg.swap]
    _require(
        len(swaps) > 0 and all(isinstance(v, str) and v for v in swaps),
        f"swap must name a causal variable, full, or a list such as [count,phase]; got {cfg.swap!r}",
    )
    _require(len(set(swaps)) == len(swaps), f"swap={cfg.swap} names a variable twice: its blocks would overlap")
    _require(
        len(swaps) == 1 or not {"full", "none"} & set(swaps),
        f"swap={cfg.swap}: full already holds every variable; list single variables, e.g. [count,phase]",
    )
    _require(isinstance(cfg.null_block, bool), f"null_block must be true or false, got {cfg.null_block!r}")
    _require(
        isinstance(cfg.swap_by_task, DictConfig)
        and all(v is None or (isinstance(v, str) and v) for v in cfg.swap_by_task.values()),
        f"swap_by_task maps task names to a variable, e.g. swap_by_task.arithmetic=cumu_val; got {cfg.swap_by_task!r}",
    )
    _require(cfg.align_fn in ALIGN_FNS, f"align_fn must be one of {', '.join(ALIGN_FNS)}, got {cfg.align_fn!r}")
    _require(
        cfg.orthogonal_map in ORTHOGONAL_MAPS,
        f"orthogonal_map must be one of {', '.join(ORTHOGONAL_MAPS)}, got {cfg.orthogonal_map!r}",
    )
    _require(
        cfg.normalize in NORMALIZATIONS, f"normalize must be one of {', '.join(NORMALIZATIONS)}, got {cfg.normalize!r}"
    )
    _require(isinstance(cfg.models, ListConfig), f"models must be a list such as [gru:0,lstm:0], got {cfg.models!r}")
    _require(
        isinstance(cfg.directions, (str, ListConfig)),
        f"directions must be all, within, cross or a list such as [0-1,1-0], got {cfg.directions!r}",
    )
    _check_models_on_demand(cfg)
    _number_in(cfg.cl.eps, "cl.eps", 0, float("inf"), "[0, inf)")
    _require(cfg.cl.loss in CL_LOSSES, f"cl.loss must be one of {', '.join(CL_LOSSES)}, got {cfg.cl.loss!r}")
    _require(
        cfg.cl.directions == "into_last" or isinstance(cfg.cl.directions, ListConfig),
        f"cl.directions must be into_last or a list such as [0-1,1-1], got {cfg.cl.directions!r}",
    )
    _positive_int(cfg.cl.bank_size, "cl.bank_size")
    validate_budget(cfg.budget)
    validate_align_budget(cfg.budget.align)
    validate_runtime(cfg)


def validate_similarity(cfg: DictConfig) -> None:
    _require(cfg.site in SITES, f"site must be one of {', '.join(SITES)}, got {cfg.site!r}")
    for key in ("per_count", "subsets", "rows"):
        _positive_int(cfg[key], key)
    _require(isinstance(cfg.zscore, bool), f"zscore must be true or false, got {cfg.zscore!r}")
    _check_models_on_demand(cfg)
    validate_budget(cfg.budget)
    validate_runtime(cfg)


def refuse_other_settings(place: Path, found: dict, wanted: dict, made: str, redo: str) -> None:
    """A finished result made with other settings is never overwritten silently."""
    if found != wanted:
        change = describe_difference(found, wanted)
        raise ConfigError(
            f"{place} holds {made} with other settings ({change}); add force=true to {redo} it, "
            "or choose another paths.root"
        )
