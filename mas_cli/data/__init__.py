"""Where a fit's counterfactual items come from (`data=`, conf/data/; docs/DATA.md):

    task          the task's causal model draws them (tasks/counterfactual.py), the default
    items         a file of your own, one (base, source, τ, label) item per row (items_file.py)
    continuation  texts: each model's greedy continuation, the label the source's (continuation.py)
    causal        a causal model of your own, given from Python: mas.align(..., data=model) (causal.py)

Each source is a `draw(source, target, variable, n, rng, split)` that returns the counterfactuals
(tasks.Counterfactuals) of one direction's split; alignment/items.py turns them into items. This
module imports no torch: its checks run in the pre-flight, before anything is written.
"""

from __future__ import annotations

from pathlib import Path

from mas_cli.errors import ConfigError

DATA_SOURCES = ("task", "items", "continuation", "causal")
SUFFIXES = {"items": (".jsonl", ".parquet"), "continuation": (".txt",)}
WHAT = {"items": "an items file (.jsonl or .parquet)", "continuation": "a text file of prompts (.txt)"}


def check_data_file(value, key: str, source: str) -> None:
    """`key` names a readable file of the source's kind; an items file's rows are checked too."""
    if not isinstance(value, str) or not value:
        raise ConfigError(f"data={source} needs {key}=<file>: {WHAT[source]}")
    path = Path(value).expanduser()
    if not path.is_file():
        raise ConfigError(f"{key}={value}: no such file; give {WHAT[source]}")
    if path.suffix not in SUFFIXES[source]:
        raise ConfigError(f"{key}={value}: give {WHAT[source]}")
    if source == "items":
        from mas_cli.data.items_file import read_items

        read_items(path)
    else:
        from mas_cli.data.texts import read_texts

        read_texts(path)


def check_causal_setting(value, cfg) -> None:
    """data=causal names a model only mas.align can give (with its behaviour's fingerprint)."""
    if not isinstance(value, str) or not isinstance(cfg.data.get("behaviour"), str):
        raise ConfigError("data=causal takes a causal model from Python: mas.align(models, data=my_model)")


def file_value(value) -> str | None:
    """How results record a data file: its name and the start of its SHA-256."""
    if not isinstance(value, str) or not Path(value).expanduser().is_file():
        return value
    from mas_cli.data.items_file import digest

    path = Path(value).expanduser()
    return f"{path.name}@{digest(path)[:16]}"


def counterfactual_source(cfg, models: list, causal=None) -> tuple[list, object]:
    """The fit's models as the data reads them, and its `draw` (None: the task's causal model,
    alignment/items.py's own). Everything a data file holds is checked against the models here,
    before anything is written. `causal`: the causal model of data=causal (a Python object)."""
    source = cfg.data.source
    if source == "task":
        return models, None
    if source == "causal":
        from mas_cli.data.causal import causal_source

        if causal is None:
            raise ConfigError("data=causal takes a causal model from Python: mas.align(models, data=my_model)")
        for m in models:
            if m.task.name != causal.name:
                raise ConfigError(
                    f"{m.spec.label} was not wrapped with the causal model {causal.name}; "
                    f"wrap it with mas.wrap(module, site=..., task=my_model)"
                )
        return models, causal_source(causal, cfg.site)
    if source == "items":
        from mas_cli.data.items_file import file_source

        return models, file_source(Path(cfg.data.path).expanduser(), models, cfg.site, cfg.seed)
    from mas_cli.data.continuation import continuation_source, with_texts

    models = with_texts(cfg, models)
    return models, continuation_source(cfg, models)
