"""Validation of composed configs: one line that says what to change (`ConfigError`, exit 2).
Commands call these before writing anything. No torch here: a refusal is immediate.

The settings of `mas align` and `mas similarity` are checked by their registries
(alignment/settings.py, correlative/run.py) with the helpers below; this module checks what every
command shares (task, arch, budget, runtime) and the models-on-demand keys.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from omegaconf import DictConfig, ListConfig

from mas_cli.composition import RUNTIME_KEYS, override_key
from mas_cli.errors import ConfigError
from mas_cli.tasks.causal import TRANSFORMS
from mas_cli.tasks.counting import CAUSAL_MODELS, VARIANTS

MAX_SEED = 2**32 - 1  # numpy and torch both take seeds up to here
NAME_MAX = 255  # bytes in one file or folder name on every common file system
SET_BY_SPEC = {"task": "count_mod/gru", "arch": "lstm", "seed": "gru:1"}  # what a model spec `[task/]arch[:seed]` sets
MAX_THREADS = max(64, 4 * (os.cpu_count() or 1))  # beyond it torch spends minutes starting threads
# What mas writes under paths.root (store/__init__.py; Hydra's sweep records; pipeline logs)
STORE_FOLDERS = ("models", "alignments", "similarity", "report", "pipeline/logs", "sweeps", "tensorboard")


def require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def positive_int(value, key: str) -> None:
    require(is_int(value) and value > 0, f"{key} must be a positive integer, got {value!r}")


def at_least(value, key: str, low: int, why: str) -> None:
    require(is_int(value) and value >= low, f"{key} must be an integer ≥ {low} ({why}), got {value!r}")


def seed_value(value, key: str) -> None:
    require(is_int(value) and 0 <= value <= MAX_SEED, f"{key} must be an integer in 0..{MAX_SEED}, got {value!r}")


def number_in(value, key: str, low: float, high: float, bounds: str) -> None:
    """value within `bounds`, written as an interval such as "[0, 1)"; a non-number is refused too."""
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    inside = (
        is_number
        and (value > low if bounds.startswith("(") else value >= low)
        and (value <= high if bounds.endswith("]") else value < high)
    )
    require(inside, f"{key} must be in {bounds}, got {value!r}")


def choice(key: str, options: tuple[str, ...]):
    """A registry check: the value is one of `options`."""

    def check(value, cfg=None) -> None:
        require(value in options, f"{key} must be one of {', '.join(options)}, got {value!r}")

    return check


def boolean(key: str):
    """A registry check: the value is true or false."""

    def check(value, cfg=None) -> None:
        require(isinstance(value, bool), f"{key} must be true or false, got {value!r}")

    return check


def _count_range(task: DictConfig, low_key: str, high_key: str) -> tuple[int, int]:
    low, high = task[low_key], task[high_key]
    positive_int(low, f"task.{low_key}")
    positive_int(high, f"task.{high_key}")
    require(high >= low, f"task.{low_key}/task.{high_key}: the maximum ({high}) must be at least the minimum ({low})")
    return low, high


def validate_task(task: DictConfig) -> None:
    if task.kind == "arithmetic":
        positive_int(task.max_value, "task.max_value")
        low, high = _count_range(task, "min_ops", "max_ops")
        require(
            high <= task.max_value,
            f"task.max_ops ({high}) must not exceed task.max_value ({task.max_value}): k is written as a number token",
        )
    else:
        require(task.kind == "counting", f"task.kind must be counting or arithmetic, got {task.kind!r}")
        choice("task.variant", VARIANTS)(task.variant)
        choice("task.transform", TRANSFORMS)(task.transform)
        choice("task.causal_model", CAUSAL_MODELS)(task.causal_model)
        number_in(task.void_p, "task.void_p", 0, 1, "[0, 1)")
        low, high = _count_range(task, "min_count", "max_count")
    held_out = task.held_out
    require(
        isinstance(held_out, ListConfig) and all(is_int(n) for n in held_out),
        f"task.held_out must be a list of integers such as [4,9], got {held_out!r}",
    )
    held = set(held_out)
    require(held <= set(range(low, high + 1)), f"task.held_out {sorted(held)} must lie within {low}..{high}")
    require(
        len(held) < high - low + 1,
        f"task.held_out covers every count in {low}..{high}; leave at least one for training",
    )
    curriculum = task.get("curriculum")
    if curriculum is not None:
        require(
            isinstance(curriculum, DictConfig) and set(curriculum) == {"start", "steps"},
            f"task.curriculum must be null or {{start: <first cap>, steps: <steps to all>}}, got {curriculum!r}",
        )
        positive_int(curriculum.start, "task.curriculum.start")
        require(is_int(curriculum.steps) and curriculum.steps >= 0, "task.curriculum.steps must be an integer ≥ 0")


def validate_arch(arch: DictConfig) -> None:
    """The architecture is registered, and its own Config accepts the settings (importing the model
    class: each architecture states what it cannot build)."""
    from mas_cli.architectures import model_class, names

    choice("arch", tuple(names()))(arch.name)
    model_class(arch.name).Config.check(arch)


def validate_budget(budget: DictConfig) -> None:
    for key in ("max_steps", "batch_size", "val_every", "val_size", "heldout_size", "checkpoint_every"):
        positive_int(budget[key], f"budget.{key}")
    require(is_int(budget.warmup_steps) and budget.warmup_steps >= 0, "budget.warmup_steps must be an integer >= 0")
    require(isinstance(budget.lr, (int, float)) and budget.lr > 0, f"budget.lr must be positive, got {budget.lr!r}")
    number_in(budget.criterion, "budget.criterion", 0, 1, "(0, 1]")


DTYPES = ("float32", "bfloat16")  # what language models loaded from hf:<dir> may be held in


def validate_runtime(cfg: DictConfig, writes_root: bool = True) -> None:
    """Device, threads, seed and paths.root: a folder, or one that can be made. An existing root
    may be read-only (a shared store whose results are reused; making a missing one is then
    refused at its lock); `mas report` only reads it."""
    choice("device", ("auto", "cpu", "cuda"))(cfg.device)
    if cfg.device == "cuda":
        import torch  # only here: every other refusal stays immediate

        require(torch.cuda.is_available(), "device=cuda but no CUDA device is visible; use device=auto or cpu")
    positive_int(cfg.threads, "threads")
    choice("dtype", DTYPES)(cfg.get("dtype", "float32"))
    require(
        cfg.threads <= MAX_THREADS, f"threads={cfg.threads} is more than this machine can use; at most {MAX_THREADS}"
    )
    seed_value(cfg.seed, "seed")
    if cfg.get("logger") is not None:
        choice("logger", ("tensorboard",))(cfg.logger)
    root = cfg.paths.root
    require(isinstance(root, str) and root.strip() != "", f"paths.root must name a folder, got {root!r}")
    check_name_lengths(Path(root), "paths.root")
    if writes_root:
        check_writable(Path(root), existing_ok=True)
        store_folders_are_real(Path(root))


def store_folders_are_real(root: Path) -> None:
    """The folders mas writes under paths.root are real folders, not planted links (store/links.py)."""
    from mas_cli.store.links import real_folders_below

    for folder in STORE_FOLDERS:
        real_folders_below(root, root / folder)


def check_name_lengths(path: Path, key: str) -> None:
    """No name in `path` is longer than file systems allow (the system's own error is a traceback
    in whatever first touches the path)."""
    longest = max((len(part.encode()) for part in path.parts), default=0)
    require(
        longest <= NAME_MAX,
        f"{key}: a name in it is {longest} bytes, longer than the file system allows ({NAME_MAX}); shorten it",
    )


def check_writable(root: Path, existing_ok: bool = False, key: str = "paths.root") -> None:
    """The folder `key` names must be creatable and writable (or, with `existing_ok`, an existing
    folder); checked without leaving anything behind."""
    check_name_lengths(root, key)
    if existing_ok and root.is_dir():
        return
    existing = root
    while not existing.exists():
        existing = existing.parent
    require(existing.is_dir(), f"{key}={root}: {existing} is a file, not a folder; choose another {key}")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError:
        raise ConfigError(f"{key}={root} is not writable ({existing}); choose a folder you can write to") from None


def check_report_folder(out: Path, key: str, fix: str) -> None:
    """The folder a report is written into can be written, and is not a planted link (the
    report would land wherever it points); `fix` is what a refusal suggests."""
    from mas_cli.store.links import real_folder

    try:
        check_writable(out, key=key)
    except ConfigError:
        if not fix:
            raise
        raise ConfigError(f"{out} is not writable; {fix}") from None
    real_folder(out, "report")


def validate_train(cfg: DictConfig) -> None:
    validate_task(cfg.task)
    validate_arch(cfg.arch)
    validate_budget(cfg.budget)
    validate_runtime(cfg)


def validate_models_on_demand(cfg: DictConfig) -> None:
    """The keys of commands that read models from the store and train missing ones."""
    for key in ("auto_train", "allow_undertrained", "force"):
        boolean(key)(cfg[key])
    require(
        isinstance(cfg.train_overrides, ListConfig) and all(isinstance(o, str) for o in cfg.train_overrides),
        f"train_overrides must be a list of `mas train` overrides such as '[\"arch.width=64\"]', "
        f"got {cfg.train_overrides!r}",
    )
    for override in cfg.train_overrides:
        key = override_key(override)
        require(
            key not in SET_BY_SPEC,
            f"train_overrides {override}: the model spec sets {key} (a={SET_BY_SPEC.get(key)}); drop it there",
        )
        require(
            key.split(".")[0] not in RUNTIME_KEYS,
            f"train_overrides {override}: models trained on demand take {key.split('.')[0]} from this run; "
            f"set it on the command line ({key}=...)",
        )
    validate_budget(cfg.budget)
    validate_runtime(cfg)


def describe_difference(old, new, prefix: str = "") -> str:
    """First differing setting, as 'budget.name: quick -> paper' (lists by index: models.0.trained...)."""
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        old, new = dict(enumerate(old)), dict(enumerate(new))
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            found = describe_difference(old.get(key), new.get(key), f"{prefix}{key}.")
            if found:
                return found
        return ""
    return f"{prefix.rstrip('.')}: {old} -> {new}" if old != new else ""


def refuse_other_settings(place: Path, found: dict, wanted: dict, made: str, redo: str) -> None:
    """A finished result made with other settings is never overwritten silently."""
    if found != wanted:
        change = describe_difference(found, wanted)
        raise ConfigError(
            f"{place} holds {made} with other settings ({change}); add force=true to {redo} it, "
            "or choose another paths.root"
        )
