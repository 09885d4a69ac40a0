"""`mas similarity`: RSA and CKA between two frozen models (SPEC §6), one tidy similarity.csv."""

from __future__ import annotations

import io
from pathlib import Path

import hydra
import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig
from rich.table import Table

from mas_cli import store
from mas_cli.align.specs import parse_spec
from mas_cli.align.zoo import ensure_trained, load_frozen
from mas_cli.commands.align import ModelsOnDemand
from mas_cli.commands.common import configure_runtime, reports_bad_input
from mas_cli.config import ConfigError, validate_similarity
from mas_cli.console import console
from mas_cli.similarity import compare, site_rows, stimuli
from mas_cli.training import resolve_device
from tasks import task_from_config
from tasks.counting import CountingTask


@hydra.main(version_base="1.3", config_path="pkg://mas_cli.conf", config_name="similarity")
@reports_bad_input
def main(cfg: DictConfig) -> dict:
    validate_similarity(cfg)
    configure_runtime(cfg)
    rows = similarity(cfg)
    table = Table(title=f"{rows.src[0]} vs {rows.trg[0]}, site {cfg.site} (mean ± sd over {cfg.subsets} subsets)")
    for column in ("measure", "value"):
        table.add_column(column)
    for r in rows.itertuples():
        table.add_row(r.measure, f"{r.value:.3f} ± {r.sd:.3f}")
    console.print(table)
    return dict(zip(rows.measure, rows.value))


def plan_similarity(cfg: DictConfig) -> tuple[list, Path]:
    """The two model specs and the run directory, from the config alone."""
    if cfg.a is None or cfg.b is None:
        raise ConfigError("name two models: mas similarity a=gru b=lstm")
    specs = [parse_spec(cfg.a, cfg.task.name), parse_spec(cfg.b, cfg.task.name)]
    if specs[0] == specs[1]:
        raise ConfigError(f"a and b are the same model ({specs[0].label}); compare two different models")
    return specs, Path(cfg.paths.root) / "similarity" / f"{cfg.site}-s{cfg.seed}" / "+".join(s.slug for s in specs)


def similarity(cfg: DictConfig) -> pd.DataFrame:
    """Compute (or reuse) the similarity rows of one model pair; similarity.csv is written last."""
    specs, run_dir = plan_similarity(cfg)
    settings = {k: cfg[k] for k in ("site", "per_count", "subsets", "rows", "zscore", "seed")}
    done = run_dir / "similarity.csv"
    if done.is_file() and not cfg.force:
        found = store.read_json(run_dir / "settings.json", "recompute it with force=true")
        if found != settings:
            raise ConfigError(f"{run_dir} holds a result with other settings; add force=true to recompute it")
        console.print(f"reusing {run_dir} (complete; force=true recomputes)")
        return pd.read_csv(done)
    on_demand = ModelsOnDemand(cfg)
    for spec in specs:  # before anything is trained
        check_vocabulary(spec, task_from_config(on_demand.train_config(spec).task))
    entries = ensure_trained(specs, cfg.paths.root, cfg.auto_train, on_demand.train)
    device = resolve_device(cfg.device)
    models = [load_frozen(s, e, device, cfg.allow_undertrained) for s, e in zip(specs, entries)]
    for m in models:
        check_vocabulary(m.spec, m.task)
    rng = np.random.default_rng([cfg.seed, 6])
    tokens = torch.from_numpy(stimuli(cfg.per_count, rng)).to(device)
    x, y = (site_rows(m.model, tokens, cfg.site) for m in models)
    found = compare(x, y, cfg.subsets, cfg.rows, rng, cfg.zscore)
    rows = pd.DataFrame([{"src": specs[0].label, "trg": specs[1].label, "site": cfg.site} | r for r in found])
    rows["seed"] = cfg.seed
    done.unlink(missing_ok=True)
    store.write_json(run_dir / "settings.json", settings)
    buffer = io.StringIO()
    rows.to_csv(buffer, index=False)
    store.write_text(done, buffer.getvalue())
    return rows


def check_vocabulary(spec, task) -> None:
    if task.vocab != CountingTask().vocab:
        raise ConfigError(
            f"{spec.label}'s vocabulary ({task.name}) lacks the Multi-Object stimuli RSA/CKA use; "
            "compare models trained on count or its variants (count_mod, count_round, ...)"
        )


if __name__ == "__main__":
    main()
