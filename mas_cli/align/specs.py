"""Model specs as users write them: `[task/]arch[:seed]`, e.g. `gru`, `lstm:2`, `count_mod/gru:1`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mas_cli.config import ConfigError
from mas_cli.models import ARCHITECTURES

_SPEC = re.compile(r"^(?:(?P<task>[A-Za-z0-9_]+)/)?(?P<arch>[A-Za-z0-9_]+)(?::(?P<seed>\d+))?$")


@dataclass(frozen=True)
class ModelSpec:
    task: str
    arch: str
    seed: int

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
    if arch not in ARCHITECTURES:
        raise ConfigError(f"model spec {text!r}: arch must be one of {', '.join(ARCHITECTURES)}")
    return ModelSpec(task=match["task"] or default_task, arch=arch, seed=int(match["seed"] or 0))


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
