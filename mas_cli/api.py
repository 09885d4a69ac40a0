"""The Python API: the same library functions the commands call, on configs composed from conf/
exactly as the command line would compose them (so every default lives in one place).

    import mas_cli as mas
    model = mas.load_model("count/gru:0", root="outputs")
    fit = mas.align(["gru:0", "lstm:0"], root="outputs", budget="quick")
    fit.iia                                  # the rows of iia.csv (pandas)
    al = mas.load_alignment(fit.run_dir)
    z = al.to_aligned(0, h)                  # model 0's site activations -> aligned space
    h1 = al.from_aligned(1, z)               # aligned space -> model 1's site
    out = al.intervene(source=0, target=1, items=100)   # the target's behaviour after a swap

Settings are keyword arguments (`k=8`, `method="stitch"`) or Hydra overrides (`overrides=
["budget.align.max_steps=200"]`); bad input raises mas_cli.ConfigError with the command's
one-line message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig

from mas_cli.composition import compose_config
from mas_cli.errors import ConfigError


def _text(value) -> str:
    """A Python value as a Hydra override value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_text(v)}" for k, v in value.items()) + "}"
    text = str(value)
    if isinstance(value, str) and re.search(r"[^\w./:+\-]", text):  # Hydra's grammar needs quotes
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return text


def config(command: str, root: str | Path, overrides: Iterable[str] = (), **settings) -> DictConfig:
    """The config `mas <command>` composes for these settings (validated by the command itself)."""
    given = [f"paths.root={Path(root)}", *(f"{key}={_text(v)}" for key, v in settings.items()), *overrides]
    return compose_config(command, given)


def train(
    task: str = "count",
    arch: str = "gru",
    seed: int = 0,
    root="outputs",
    budget: str = "quick",
    overrides=(),
    **settings,
):
    """Like `mas train`: the model store entry for task, arch and seed (trained, or reused).
    Returns a TrainResult (`entry`, `metrics`, `reused`)."""
    from mas_cli.config import validate_train
    from mas_cli.training import train_model

    cfg = config("train", root, overrides, task=task, arch=arch, seed=seed, budget=budget, **settings)
    validate_train(cfg)
    return train_model(cfg)


def load_model(spec: str, root="outputs", device: str = "cpu", allow_undertrained: bool = False):
    """A trained model from the store, frozen: `spec` is `[task/]arch[:seed]`. Returns a
    FrozenModel (`model`, the torch module; `task`; `metrics`; `spec`)."""
    from mas_cli.specs import parse_spec
    from mas_cli.store import model_dir
    from mas_cli.zoo import load_frozen

    parsed = parse_spec(spec, "count")
    return load_frozen(parsed, model_dir(root, parsed.task, parsed.arch, parsed.seed), device, allow_undertrained)


def align(models: list, root="outputs", budget: str = "quick", overrides=(), **settings):
    """Like `mas align models=[...]`: fit (or reuse) one alignment. `models` holds specs
    ("gru:0") and models from `wrap`; `data=` a source's name ("items", ...) or a causal model of
    your own (docs/DATA.md). Returns an AlignResult (`run_dir`, `iia`: the iia.csv rows, `specs`,
    `reused`)."""
    from mas_cli.alignment.job import align as fit
    from mas_cli.alignment.plan import plan_alignment
    from mas_cli.alignment.settings import validate_align
    from mas_cli.zoo import FrozenModel

    wrapped = [m for m in models if isinstance(m, FrozenModel)]
    names = [m.spec.label if isinstance(m, FrozenModel) else m for m in models]
    causal = settings.pop("data") if not isinstance(settings.get("data", ""), str) else None
    if causal is not None:  # a causal model of your own: named, and fingerprinted by what it draws
        from mas_cli.data.causal import behaviour, check_causal

        check_causal(causal)
        settings |= {"data": "causal", "data.name": str(causal.name), "data.behaviour": behaviour(causal)}
    cfg = config("align", root, overrides, models=names, budget=budget, **settings)
    validate_align(cfg)
    plan_alignment(cfg, {m.spec.label: m.spec for m in wrapped})
    return fit(cfg, wrapped, causal)


def wrap(module, site: str, task: str = "count", name: str = "wrapped", embed: str | None = None, tokenizer=None):
    """Any torch module mapping token ids [B, L] of `task`'s vocabulary to logits [B, L, V], as
    a model `align` accepts beside the zoo's: `site` (a module path) is its hidden site, `embed`
    its embed site. With a HuggingFace `tokenizer` it is a language model over the tokenizer's
    vocabulary, for `data="continuation"` (docs/DATA.md). Holds a frozen copy (mas_cli/wrapped.py)."""
    from mas_cli.wrapped import wrap as wrapped

    return wrapped(module, site, task, name, embed, tokenizer=tokenizer)


def export_items(path: str | Path, root="outputs", budget: str = "quick", overrides=(), **settings) -> Path:
    """The counterfactual items the task's causal model draws for a one-model fit with these
    settings (`mas align models=[<one>] ...`: direction 0 → 0, its train and val items), written
    as an items file (docs/DATA.md § Items): a template for your own, and what `data=items
    data.path=<path>` fits exactly as the built-in source does."""
    from types import SimpleNamespace

    from mas_cli import seeds
    from mas_cli.alignment.items import counterfactuals_for
    from mas_cli.alignment.settings import swapped, validate_align
    from mas_cli.data.items_file import item_rows, write_items
    from mas_cli.tasks import task_from_config

    if Path(path).exists():  # a file of the user's is never replaced
        raise ConfigError(f"{path} exists; give export_items another path or delete it")
    cfg = config("align", root, overrides, budget=budget, **settings)
    validate_align(cfg)
    if len(swapped(cfg)) != 1 or cfg.null_block:
        raise ConfigError("export_items writes the items of one swapped variable; give one swap= and no null_block")
    model = SimpleNamespace(task=task_from_config(cfg.task))  # all counterfactuals_for reads of a model
    rows = []
    for index, (split, size) in enumerate((("train", cfg.budget.align.train_size), ("val", cfg.budget.align.val_size))):
        rng = seeds.counterfactual_items(cfg.seed, 0, 0, index, 0)
        variable = swapped(cfg)[0]
        cf = counterfactuals_for(model, model, cfg.site, variable, size, rng, cfg.causal_model, variable)
        rows += item_rows(cf, split)
    write_items(Path(path), rows)
    return Path(path)


def load_alignment(run_dir: str | Path, device: str = "cpu"):
    """A fitted alignment from its run directory (any `alignments/<settings>/<models>/`), with
    its frozen models loaded from the same root. Returns an Alignment."""
    from mas_cli.alignment.fitted import load_alignment as load

    return load(Path(run_dir), device)


def similarity(a: str, b: str, root="outputs", budget: str = "quick", overrides=(), **settings) -> pd.DataFrame:
    """Like `mas similarity a=... b=...`: RSA and CKA of two models (the similarity.csv rows)."""
    from mas_cli.correlative.run import plan_similarity, validate_similarity
    from mas_cli.correlative.run import similarity as compute

    cfg = config("similarity", root, overrides, a=a, b=b, budget=budget, **settings)
    validate_similarity(cfg)
    plan_similarity(cfg)
    return compute(cfg)


def report(root="outputs", out: str | Path | None = None) -> pd.DataFrame:
    """Like `mas report`: the report of every run under `root`, written to `out` (default
    `<root>/report`). Returns the gathered IIA rows."""
    from mas_cli.config import check_writable
    from mas_cli.reporting import write_report

    out = Path(root) / "report" if out is None else Path(out)
    if not Path(root).is_dir():
        raise ConfigError(f"{root} is not a folder; point root at a results root")
    check_writable(out)
    return write_report(Path(root), out)
