"""One `mas similarity` job: RSA and CKA between two frozen models (docs/METHODS.md § Correlative measures), one tidy
similarity.csv, reused when the settings and both models' training fingerprints match.

    <paths.root>/similarity/<site>-s<seed>[-<setting>_<value>...]/<model>+<model>/
        fingerprint.json   the settings and models it was computed from
        similarity.csv     one row per measure
(a store entry: complete or absent, checksummed; store/entries.py).
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig

from mas_cli import seeds, store
from mas_cli.config import (
    at_least,
    boolean,
    choice,
    positive_int,
    refuse_other_settings,
    seed_value,
    validate_models_on_demand,
)
from mas_cli.console import path_line
from mas_cli.errors import ConfigError, StoreError
from mas_cli.records import write_records
from mas_cli.registry import Registry, Setting
from mas_cli.specs import ModelSpec, parse_spec
from mas_cli.tasks import Task
from mas_cli.tasks.counting import CountingTask
from mas_cli.zoo import ModelsOnDemand, load_frozen, refuse_changed_models

SIMILARITY_FORMAT = "mas-similarity/2"  # 2: the models' weight digests in the fingerprint

SIMILARITY = Registry(
    "similarity",
    [
        Setting("site", choice("site", ("embed", "hidden"))),
        Setting("seed", lambda v, cfg: seed_value(v, "seed"), group=False),  # stimuli draws: replicates
        Setting("per_count", lambda v, cfg: positive_int(v, "per_count"), tag="per_count"),
        Setting("subsets", lambda v, cfg: positive_int(v, "subsets"), tag="subsets"),
        Setting(
            "rows", lambda v, cfg: at_least(v, "rows", 3, "RSA correlates the distances of 3 rows or more"), tag="rows"
        ),
        Setting("zscore", boolean("zscore"), tag="zscore"),
    ],
    base="{site}-s{seed}",
)


def validate_similarity(cfg: DictConfig) -> None:
    SIMILARITY.validate(cfg)
    validate_models_on_demand(cfg)


def plan_similarity(cfg: DictConfig) -> tuple[list[ModelSpec], Path]:
    """The two model specs and the run directory, from the config alone."""
    if cfg.a is None or cfg.b is None:
        raise ConfigError("name two models: mas similarity a=gru b=lstm")
    specs = [parse_spec(cfg.a, cfg.task.name), parse_spec(cfg.b, cfg.task.name)]
    if specs[0] == specs[1]:
        raise ConfigError(f"a and b are the same model ({specs[0].label}); compare two different models")
    run_dir = Path(cfg.paths.root) / "similarity" / SIMILARITY.run_name(cfg) / "+".join(s.slug for s in specs)
    return specs, run_dir


def check_vocabulary(spec: ModelSpec, task: Task) -> None:
    if task.vocab != CountingTask().vocab:
        raise ConfigError(
            f"{spec.label}'s vocabulary ({task.name}) lacks the Multi-Object stimuli RSA/CKA use; "
            "compare models trained on count or its variants (count_mod, count_round, ...)"
        )


def similarity(cfg: DictConfig) -> pd.DataFrame:
    """Compute (or reuse) the similarity rows of one model pair; similarity.csv is written last."""
    import torch

    from mas_cli.correlative.measures import compare, site_rows, stimuli
    from mas_cli.training import resolve_device

    specs, run_dir = plan_similarity(cfg)
    on_demand = ModelsOnDemand(cfg)
    for spec in specs:  # before anything is trained
        check_vocabulary(spec, on_demand.task(spec))
    entries = on_demand.ensure(specs)
    device = resolve_device(cfg.device)
    models = [load_frozen(s, e, device, cfg.allow_undertrained) for s, e in zip(specs, entries)]
    wanted = {
        "format": SIMILARITY_FORMAT,
        **SIMILARITY.fingerprint(cfg),
        "models": [m.identity() for m in models],
    }
    entry = store.Entry(run_dir, redo="recompute with force=true", root=cfg.paths.root)
    if not cfg.force and (found := _reusable(entry, run_dir, wanted, models)) is not None:
        return found
    with entry.exclusive(lambda: path_line("waiting: another job is computing", run_dir)):
        entry.adopt_finished()
        if not cfg.force and (found := _reusable(entry, run_dir, wanted, models)) is not None:
            return found
        for m in models:
            check_vocabulary(m.spec, m.task)
        rng = seeds.similarity(cfg.seed)
        tokens = torch.from_numpy(stimuli(cfg.per_count, rng)).to(device)
        x, y = (site_rows(m.model, tokens, cfg.site) for m in models)
        found = compare(x, y, cfg.subsets, cfg.rows, rng, cfg.zscore)
        settings = SIMILARITY.columns(cfg)
        trained = {
            f"{side}_trained": bool(m.metrics.get("trained_to_criterion")) for side, m in zip(("src", "trg"), models)
        }
        rows = pd.DataFrame([{"src": specs[0].label, "trg": specs[1].label, **settings, **r, **trained} for r in found])
        work = entry.start(fresh=True)
        store.write_json(work / "fingerprint.json", wanted)
        buffer = io.StringIO()
        rows.to_csv(buffer, index=False)
        store.write_text(work / "similarity.csv", buffer.getvalue())
        records = write_records(work, cfg, "similarity")
        entry.publish(["fingerprint.json", "similarity.csv", *records])
        return rows


def _reusable(entry: store.Entry, run_dir: Path, wanted: dict, models: list) -> pd.DataFrame | None:
    folder = entry.current()
    if folder is None:
        return None
    found = store.read_json(folder / "fingerprint.json", "recompute it with force=true")
    refuse_changed_models(run_dir, found, models, "recompute")
    refuse_other_settings(run_dir, found, wanted, "a similarity computed", "recompute")
    try:
        rows = pd.read_csv(folder / "similarity.csv")
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        raise StoreError(f"{run_dir / 'similarity.csv'} is unreadable; recompute it with force=true") from None
    if not {"src", "trg", "measure", "value"} <= set(rows.columns):
        raise StoreError(f"{run_dir / 'similarity.csv'} lacks the columns of a similarity.csv; add force=true")
    path_line("reusing (complete; force=true recomputes):", run_dir)
    return rows
