"""Helpers several test modules share (no test module imports another): tiny alignment runs,
random models read by the engine, a small alignment config, one direction's scored predictions in
item order, and a training run stopped and resumed."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from mas_cli import store
from mas_cli.alignment.interchange import swap
from mas_cli.alignment.job import align
from mas_cli.alignment.settings import validate_align
from mas_cli.alignment.targets import Part, site_path
from mas_cli.continuation import continuation_for
from mas_cli.models import build_model
from mas_cli.specs import ModelSpec
from mas_cli.tasks import CountingTask
from mas_cli.training import Trainer, train_model
from mas_cli.zoo import FrozenModel
from tests.conftest import complete, compose_config, publish_entry

TASK = CountingTask(name="count", variant="multi_object", void_p=0.2)

# `mas align` on models of width 16 trained for a few steps: seconds, numbers meaningless.
TINY = ["budget=smoke", 'train_overrides=["arch.width=16"]', "allow_undertrained=true", "k=4"]


def run_align(root, *overrides):
    cfg = compose_config("align", [*TINY, f"paths.root={root}", *overrides])
    validate_align(cfg)
    return align(cfg)


def random_model(
    arch: str, width: int = 16, seed: int = 0, task=TASK, layers: int = 2, fast: bool = True
) -> FrozenModel:
    """A random model of `arch`; `fast=False` reads and continues it by the generic hook path only."""
    torch.manual_seed(seed)
    model = build_model(arch, len(task.vocab), {"width": width, "layers": layers, "hidden_layer": 1})
    model.eval().requires_grad_(False)
    found = FrozenModel(ModelSpec(task.name, arch, seed), None, model, task, {})
    if not fast:
        found._continuations.update({site: continuation_for(model, site, fast=False) for site in ("hidden", "embed")})
    return found


def align_cfg(k: int, site: str = "hidden", seed: int = 0, normalize: str = "rms", **settings):
    defaults = dict(train_size=64, val_size=64, max_steps=10, batch_size=32, lr=1e-3, val_every=5)
    defaults.update(patience=10, min_delta=0.001, lr_factor=0.5, lr_drops=0, target_iia=0.995)
    defaults.update(settings)
    top = {"k": k, "site": site, "seed": seed, "orthogonal_map": "matrix_exp", "normalize": normalize}
    top |= {"method": "mas", "align_fn": "orthogonal", "swap_by_task": {}}
    return OmegaConf.create({**top, "budget": {"align": defaults}})


def predictions(target: FrozenModel, rows_t, parts, site):
    """The engine's scored predictions of a target at `site` after the plain swap."""
    return site_path(site)(target.at(site), rows_t, parts, swap)


def scored_in_order(target: FrozenModel, source: FrozenModel, batch, rows_t, rows_s, site):
    """(logits, labels) of one direction's scored predictions, item by item, in position order."""
    found = predictions(target, rows_t, [Part(batch, source.at(site), rows_s)], site)
    order = torch.argsort(found.item * 10_000 + found.column)
    return found.logits[order], found.labels[order]


class Interrupted(Exception):
    pass


def interrupted_and_resumed(small_train_cfg, tmp_path, monkeypatch, *settings: str) -> tuple[dict, dict]:
    """(weights of an uninterrupted run, weights of the same run stopped at step 12 and resumed)."""
    settings = ("budget.checkpoint_every=5", "budget.val_every=5", "budget.criterion=1.0", *settings)
    uninterrupted = train_model(small_train_cfg(*settings, f"paths.root={tmp_path / 'a'}"))

    original_step = Trainer._train_step

    def stop_at_12(self):
        if self.step == 12:
            raise Interrupted
        return original_step(self)

    cfg = small_train_cfg(*settings, f"paths.root={tmp_path / 'b'}")
    monkeypatch.setattr(Trainer, "_train_step", stop_at_12)
    with pytest.raises(Interrupted):
        train_model(cfg)
    entry = store.model_dir(tmp_path / "b", "count", "gru", 0)
    assert (entry.parent / ".seed0.work" / "checkpoint.pt").exists() and not complete(entry)
    monkeypatch.setattr(Trainer, "_train_step", original_step)

    resumed = train_model(cfg)
    assert resumed.metrics["steps"] == 20
    return tuple(torch.load(r.entry / "model.pt", weights_only=True)["state_dict"] for r in (uninterrupted, resumed))


def fake_run(root, name: str, iia: dict[tuple[str, str], float], items: bool = False, values=None, **settings) -> None:
    """An iia.csv as `mas align` writes it, with the given validation IIA per (src, trg); with
    `items`, its items.csv (10 items per direction, the first round(10 · IIA) right; item i holds
    `values[i]` = (before, after), else (1 + i % 5, 1 + i)) and curve.csv (that IIA at steps 50
    and 100) too."""
    values = values or [(1 + i % 5, 1 + i) for i in range(10)]
    setting = {"method": "mas", "site": "hidden", "swap": "count", "k": 16, "seed": 0, "budget": "quick"}
    setting |= {"normalize": "rms", "orthogonal_map": "cayley", "align_fn": "orthogonal"} | settings
    models = "+".join(sorted({m for pair in iia for m in pair}))
    rows = []
    for (src, trg), value in iia.items():
        for split in ("train", "val"):
            rows.append(
                setting
                | {"models": models, "src": src, "trg": trg, "variable": "count", "split": split, "iia": value}
                | {"iia_none": 0.1, "tok_acc": 1.0, "loss": 0.1, "n": 500, "steps": 100, "stop": "every direction"}
                | {"src_trained": True, "trg_trained": True}
            )
    files = {"iia.csv": pd.DataFrame(rows).to_csv(index=False)}
    if items:
        per_item = [
            {
                "src": s,
                "trg": t,
                "variable": "count",
                "item": i,
                "read": "count",
                "before": values[i][0],
                "after": values[i][1],
            }
            | {"correct": i < round(10 * v), "correct_none": False}
            for (s, t), v in iia.items()
            for i in range(10)
        ]
        curve = [
            {"step": step, "src": s, "trg": t, "variable": "count", "split": split, "iia": v}
            for (s, t), v in iia.items()
            for step in (50, 100)
            for split in ("train", "val")
        ]
        files |= {"items.csv": pd.DataFrame(per_item).to_csv(index=False)}
        files |= {"curve.csv": pd.DataFrame(curve).to_csv(index=False)}
    publish_entry(root / name, files)
