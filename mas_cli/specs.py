"""Model specs as users write them: `[task/]arch[:seed]`, e.g. `gru`, `lstm:2`, `count_mod/gru:1`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mas_cli.architectures import names
from mas_cli.config import MAX_SEED
from mas_cli.errors import ConfigError

_SPEC = re.compile(r"^(?:(?P<task>[A-Za-z0-9_]+)/)?(?P<arch>[A-Za-z0-9_]+)(?::(?P<seed>\d+))?$")


@dataclass(frozen=True)
class ModelSpec:
    task: str
    arch: str
    seed: int

    @classmethod
    def from_label(cls, label: str) -> ModelSpec:
        """The spec a result row names (`task/arch/seed`)."""
        task, arch, seed = label.split("/")
        return cls(task, arch, int(seed))

    @property
    def label(self) -> str:
        """How results name the model: `task/arch/seed` (the iia.csv `src`/`trg` columns)."""
        return f"{self.task}/{self.arch}/{self.seed}"

    @property
    def slug(self) -> str:
        """The label as one path component."""
        return f"{self.task}.{self.arch}.{self.seed}"


def parse_spec(text, default_task: str) -> ModelSpec:
    match = _SPEC.match(str(text))
    if not match:
        raise ConfigError(f"model spec {text!r} is not [task/]arch[:seed], e.g. gru, lstm:2 or count_mod/gru:1")
    arch = match["arch"]
    if arch not in names():
        raise ConfigError(f"model spec {text!r}: arch must be one of {', '.join(names())}")
    seed = int(match["seed"] or 0)
    if seed > MAX_SEED:
        raise ConfigError(f"model spec {text!r}: the seed must be at most {MAX_SEED}")
    return ModelSpec(task=match["task"] or default_task, arch=arch, seed=seed)
