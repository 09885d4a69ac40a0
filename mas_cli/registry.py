"""Settings that change a result, each declared once.

A `Registry` is the table of one command's result-changing settings (`mas align`: ALIGN in
alignment/settings.py; `mas similarity`: SIMILARITY in correlative/run.py). Each `Setting` says how
its value is checked, whether it is in effect for a config, and how it is written; every place
that needs the settings reads the table:

    validation        Registry.validate(cfg)        each setting's check, one line on failure
    run directories   Registry.run_name(cfg)         a base pattern, then `-<tag>_<value>` for
                                                     each setting off its default
    fingerprints      Registry.fingerprint(cfg)      every setting in effect
    result rows       Registry.columns(cfg)          one column per setting ("n/a" where unused)
    the report        Registry.grouping()            the columns that keep results apart

Defaults are not repeated here: they are the values in conf/ (the command's YAML, and the
budget's YAML for `budget.*` keys), read by `defaults`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mas_cli.composition import plain

# Config groups whose keys are settings, each with the key that names its chosen option (the
# option's file is conf/<group>/<that value>.yaml): a key's default is its value in that option.
SETTING_GROUPS = {"data": "source"}
NOT_USED = "unused"  # a row's value for a setting not in effect (pandas would read "n/a" back as missing)


def _always(cfg: DictConfig) -> bool:
    return True


def _no_check(value, cfg: DictConfig) -> None:
    return None


@dataclass(frozen=True)
class Setting:
    key: str  # dotted config key, e.g. "cl.eps"
    check: Callable[[Any, DictConfig], None] = _no_check  # (value as written, cfg); raises ConfigError
    tag: str | None = None  # in run names as -<tag>_<text> when off its default; None: not so
    used: Callable[[DictConfig], bool] = _always  # in effect for this config
    value: Callable[[DictConfig], Any] | None = None  # how the value is read (default: the key)
    text: Callable[[Any], str] = str  # how a value is written in run names and rows
    name: Callable[[Any], str] | None = None  # its own run-name fragment, instead of the tag rule
    column: str | None = None  # its result column (default: the key, dots as underscores)
    group: bool = True  # the report keeps results that differ in it apart
    choices: tuple = field(default=())  # the options, where a setting has a fixed set

    def read(self, cfg: DictConfig):
        if self.value is not None:
            return self.value(cfg)
        return plain(OmegaConf.select(cfg, self.key, default=None))

    @property
    def column_name(self) -> str:
        return self.column or self.key.replace(".", "_")


class Registry:
    def __init__(self, config_name: str, settings: Iterable[Setting], base: str):
        """`base` is the run name's fixed part, a format string over setting keys (dots as
        underscores), e.g. "{method}-{site}-{swap}-k{k}-s{seed}"."""
        self.config_name = config_name
        self.settings = list(settings)
        self.base = base

    def __iter__(self):
        return iter(self.settings)

    def add(self, setting: Setting) -> None:
        """A new setting (tests add a dummy one to prove the plumbing)."""
        self.settings.append(setting)

    def validate(self, cfg: DictConfig) -> None:
        """Each setting's check, in table order, on the value as written in the config."""
        for s in self.settings:
            s.check(plain(OmegaConf.select(cfg, s.key, default=None)), cfg)

    def in_effect(self, cfg: DictConfig) -> list[Setting]:
        return [s for s in self.settings if s.used(cfg)]

    def run_name(self, cfg: DictConfig) -> str:
        """The base pattern, then each setting in effect that is off its default, in table order."""
        found = {s.key.replace(".", "_"): s.text(s.read(cfg)) for s in self.settings}
        name = self.base.format(**found)
        usual = defaults(self.config_name, _budget_name(cfg), _options(cfg))
        for s in self.in_effect(cfg):
            if "{" + s.key.replace(".", "_") + "}" in self.base:
                continue
            value = s.read(cfg)
            if s.name is not None:
                name += s.name(value)
            elif s.tag is not None and value != s.read(usual):
                name += f"-{s.tag}_{s.text(value)}"
        return name

    def fingerprint(self, cfg: DictConfig) -> dict:
        """Every setting in effect, as plain values."""
        return {s.key: s.read(cfg) for s in self.in_effect(cfg)}

    def columns(self, cfg: DictConfig) -> dict:
        """The result columns: each setting's value (numbers and booleans as they are, anything
        else as its text), NOT_USED where the setting is not in effect."""
        out = {}
        for s in self.settings:
            value = s.read(cfg) if s.used(cfg) else NOT_USED
            scalar = isinstance(value, (int, float, bool)) or value == NOT_USED
            out[s.column_name] = value if scalar else s.text(value)
        return out

    def default_column(self, column: str, budget: str | None) -> str | None:
        """A result column's default value as `columns` writes it, as text (None: no such column)."""
        for s in self.settings:
            if s.column_name == column:
                value = s.read(defaults(self.config_name, budget))
                return str(value if isinstance(value, (int, float, bool)) else s.text(value))
        return None

    def grouping(self) -> list[str]:
        """The result columns the report groups by."""
        return [s.column_name for s in self.settings if s.group]


def _budget_name(cfg: DictConfig) -> str | None:
    return OmegaConf.select(cfg, "budget.name", default=None)


def _options(cfg: DictConfig) -> tuple:
    """The chosen option of each settings group, e.g. (("data", "items"),)."""
    chosen = ((group, OmegaConf.select(cfg, f"{group}.{key}", default=None)) for group, key in SETTING_GROUPS.items())
    return tuple((group, option) for group, option in chosen if isinstance(option, str))


@cache
def defaults(config_name: str, budget: str | None, options: tuple = ()) -> DictConfig:
    """Where every setting's default lives: the command's own YAML (conf/<config_name>.yaml),
    with `budget` the chosen budget's YAML (so each budget's values are its own defaults) except
    `budget.name`, which stays the default budget's name (the default of the `budget` setting),
    the runtime's shared keys, and for each group of SETTING_GROUPS the chosen option's keys
    (`options`, as _options gives them; the group's default option otherwise), its own key kept
    at the default option's value."""
    conf = resources.files("mas_cli.conf")
    own = OmegaConf.load(conf / f"{config_name}.yaml")
    chosen = {}
    for entry in own.pop("defaults", []):
        if isinstance(entry, DictConfig):
            chosen.update(entry)
    if "budget" in chosen:
        own.budget = OmegaConf.load(conf / "budget" / f"{budget or chosen['budget']}.yaml")
        own.budget.name = chosen["budget"]
    if "runtime" in chosen:  # what every command shares (device, dtype, ...): a global package
        shared = OmegaConf.load(conf / "runtime" / f"{chosen['runtime']}.yaml")
        own = OmegaConf.merge({k: v for k, v in shared.items() if k not in ("defaults", "hydra")}, own)
    picked = dict(options)
    for group in SETTING_GROUPS.keys() & set(chosen):
        own[group] = OmegaConf.load(conf / group / f"{picked.get(group, chosen[group])}.yaml")
        own[group][SETTING_GROUPS[group]] = OmegaConf.load(conf / group / f"{chosen[group]}.yaml")[
            SETTING_GROUPS[group]
        ]
    return own
