"""Composing our configs with Hydra's compose API (the pipeline's jobs, models trained on demand,
the Python API, the command line's pre-flight check), with Hydra's errors as one line that says
what to change.

The config tree is conf/, installed as the package mas_cli.conf.
"""

from __future__ import annotations

import difflib
import re
from functools import cache
from importlib import resources
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from mas_cli.errors import ConfigError

CONF_MODULE = "mas_cli.conf"


@cache
def config_names(group: str) -> list[str]:
    """The options of one config group, e.g. the tasks in conf/task."""
    folder = resources.files(CONF_MODULE) / group
    return sorted(Path(p.name).stem for p in folder.iterdir() if p.name.endswith(".yaml"))


def compose_config(config_name: str, overrides: list[str], hydra_node: bool = False) -> DictConfig:
    """Compose one of our primary configs (e.g. `train` from inside `mas align`), inside a running
    Hydra app or on its own; a Hydra error becomes a one-line ConfigError."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    try:
        if GlobalHydra.instance().is_initialized():
            return compose(config_name=config_name, overrides=overrides, return_hydra_config=hydra_node)
        with initialize_config_module(config_module=CONF_MODULE, version_base="1.3"):
            return compose(config_name=config_name, overrides=overrides, return_hydra_config=hydra_node)
    except Exception as exc:  # Hydra raises its own errors and OmegaConf's
        raise ConfigError(explain(exc, config_name, overrides)) from None


def plain(value):
    """A config value as plain Python containers, interpolations resolved (other values as they are)."""
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def override_key(override: str) -> str:
    """The key an override sets: `+arch.width=3` and `~seed` name arch.width and seed."""
    return override.lstrip("+~").split("=")[0]


RUNTIME_KEYS = (
    "budget",
    "paths",
    "device",
    "threads",
    "dtype",
    "logger",
)  # what a config made inside a command inherits


def inherit_runtime(parent: DictConfig, child: DictConfig) -> None:
    """A config composed inside another command (a model trained for `mas align`, each job of
    `mas pipeline`) runs with the parent's budget, output root, device and threads."""
    for key in RUNTIME_KEYS:
        child[key] = plain(parent[key])


@cache
def config_groups() -> tuple[str, ...]:
    """The config groups of conf/ (task, arch, budget, ...): what `group=option` may name."""
    root = resources.files(CONF_MODULE)
    return tuple(sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("_")))


def leaves(value, prefix: str):
    """(dotted key, value) of every leaf of a plain container (lists by index)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from leaves(inner, f"{prefix}.{key}")
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from leaves(inner, f"{prefix}.{i}")
    else:
        yield prefix, value


def suggest(word: str, options) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"did you mean {close[0]}? " if close else ""


def flat_keys(cfg, prefix: str = "") -> list[str]:
    """Every dotted key of a config (what an override may name)."""
    found = []
    for key, value in cfg.items():
        found.append(prefix + str(key))
        if isinstance(value, DictConfig):
            found += flat_keys(value, f"{prefix}{key}.")
    return found


def override_of(overrides: list[str], key: str) -> str:
    return next((o for o in overrides if override_key(o) == key), key)


def explain(exc: Exception, config_name: str, overrides: list[str]) -> str:
    """Hydra's error about composing `config_name` with `overrides`, as one line that says what to
    change: the valid options, a 'did you mean' for near misses, how to write what was meant."""
    text = str(exc)
    command = f"mas {config_name}"
    name = type(exc).__name__
    if name == "MissingConfigException" and getattr(exc, "options", None):
        found = re.search(r"Could not find '([^']+)'", text)
        group, _, option = (found[1] if found else "").rpartition("/")
        return (
            f"{override_of(overrides, group)}: there is no {group} '{option}'; {suggest(option, exc.options)}"
            f"choose one of {', '.join(sorted(exc.options))}"
        )
    if name == "OverrideParseException":
        given = getattr(exc, "override", "") or ""
        if "missing EQUAL" in text:
            hint = {
                "align": "name models as mas align a=<spec> b=<spec> (or models=[<spec>,...])",
                "similarity": "name models as mas similarity a=<spec> b=<spec>",
            }.get(config_name, f"settings are key=value, e.g. {command} seed=1")
            return f"'{given}' is not a key=value override; {hint}"
        odd = [c for c in given if ord(c) > 127]
        if odd:
            return f"{given}: '{odd[0]}' is not allowed in an override; write it in plain ASCII"
        reason = getattr(exc, "message", text).splitlines()[0]
        return f"cannot read the override '{given}' ({reason}); see {command} --help"
    overridden = re.search(r"Could not override '([^']+)'", text)
    if overridden:
        key = overridden[1]
        groups = config_groups()
        chosen = [o for o in overrides if "=" in o and override_key(o) in groups]
        try:
            known = [k for k in flat_keys(compose_config(config_name, chosen)) if k != key]
        except ConfigError:  # a group option that is wrong too: Hydra names one error at a time
            known = flat_keys(compose_config(config_name, []))
        group = key.split(".")[0]
        option = next((o.split("=", 1)[1] for o in chosen if override_key(o) == group), None)
        scope = f" for {group}={option}" if option else ""
        return (
            f"{override_of(overrides, key)}: {command} has no setting {key}{scope}; {suggest(key, known)}"
            f"`{command} --help` lists them"
        )
    ambiguous = re.search(r"Ambiguous value for argument '([^']+)'", text)
    if ambiguous:
        key, _, value = ambiguous[1].partition("=")
        sweep = f"{command} -m {ambiguous[1]}"
        return f"{ambiguous[1]}: a list is written {key}=[{value}]; to run one job per value add -m ({sweep})"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f"cannot compose the {command} config: {lines[0] if lines else name}"
