"""A fitted alignment, loaded back from its run directory for use from Python: map site
activations into the aligned space and back, and run interchange interventions on new items.

    al = load_alignment(run_dir)
    z = al.to_aligned(0, h)            # A_0(h): model 0's site [..., d_0] -> aligned space
    h1 = al.from_aligned(1, z)         # A_1⁻¹(z): aligned space -> model 1's site
    out = al.intervene(0, 1, items=100)   # per item: what the target did after the swap
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from mas_cli import seeds, store
from mas_cli.alignment.directions import Direction
from mas_cli.alignment.items import UNSCORED, counterfactuals_for, direction_data
from mas_cli.alignment.job import read_alignment
from mas_cli.alignment.scoring import Interventions, build_functions, unintervened
from mas_cli.alignment.settings import data_source, swap_map
from mas_cli.alignment.swaps import variable_blocks
from mas_cli.errors import ConfigError, StoreError
from mas_cli.specs import ModelSpec
from mas_cli.zoo import FrozenModel, load_frozen, refuse_changed_models


@dataclass
class Alignment:
    run_dir: Path
    cfg: DictConfig  # the run's resolved config
    fingerprint: dict
    models: list[FrozenModel]
    interventions: Interventions

    @property
    def labels(self) -> list[str]:
        return [m.spec.label for m in self.models]

    def _function(self, model: int):
        if not 0 <= model < len(self.models):
            raise ConfigError(f"model index {model} is out of range: this alignment has {len(self.models)} models")
        return self.interventions.functions[model]

    @torch.no_grad()
    def to_aligned(self, model: int, h: torch.Tensor) -> torch.Tensor:
        """A_i(h) = Q_i (h − μ_i)/s_i for site activations h [..., d_i]: every aligned coordinate
        (Gram–Schmidt functions hold only their k aligned directions, so only those)."""
        function = self._function(model)
        try:
            return function(h)
        except NotImplementedError:
            return function.aligned(self.interventions.span).coordinates(h)

    @torch.no_grad()
    def from_aligned(self, model: int, z: torch.Tensor) -> torch.Tensor:
        """A_i⁻¹(z) = s_i Q_i⁻¹ z + μ_i: aligned coordinates [..., d_i] back to model i's site."""
        return self._function(model).inverse(z)

    def intervene(self, source: int, target: int, items: int = 100, seed: int = 0, variable: str | None = None):
        """Draw `items` new counterfactuals for source → target (this run's variable, site and
        causal model) and swap: one row per item with τ, σ, the base and source sequences, the
        counterfactual continuation the causal model expects, the target's predictions after
        the swap and without it, and whether each is right (the mean of `correct` is the IIA)."""
        for model in (source, target):
            self._function(model)  # a bad index gets its one line here
        if data_source(self.cfg) != "task":
            raise ConfigError(
                f"intervene draws counterfactuals from the task's causal model; this alignment was fitted with "
                f"data={data_source(self.cfg)} (its items.csv holds each item's verdict)"
            )
        cfg, blocks = self.cfg, variable_blocks(self.cfg, min(m.at(self.cfg.site).width() for m in self.models))
        block = next((b for b in blocks if variable in (None, b.variable)), None)
        if block is None:
            raise ConfigError(f"variable={variable}: this alignment swaps {', '.join(b.variable for b in blocks)}")
        by_task, models = swap_map(cfg), self.models
        rng = seeds.fitted_items(seed, source, target)
        cf = counterfactuals_for(
            models[source],
            models[target],
            cfg.site,
            by_task.get(models[target].task.name, block.variable),
            items,
            rng,
            cfg.causal_model,
            by_task.get(models[source].task.name, block.variable),
        )
        device = next(iter(self.interventions.functions.parameters())).device
        data = direction_data(cf, models[source], models[target], cfg.site, device)
        direction = Direction(source, target, data, data, block)
        correct, predicted = self.interventions.item_verdicts(direction, data)
        correct_none, predicted_none = self.interventions.item_verdicts(direction, data, unintervened)
        vocab = models[target].task.vocab
        labels = data.items.labels.cpu().numpy()

        def scored(tokens: np.ndarray) -> list[str]:
            return [vocab.decode(row[mask]) for row, mask in zip(tokens, labels != UNSCORED)]

        return pd.DataFrame(
            {
                "tau": cf.tau,
                "sigma": cf.sigma,
                "base": [vocab.decode(row) for row in cf.base],
                "source": [models[source].task.vocab.decode(row) for row in cf.source],
                "expected": scored(labels),
                "predicted": scored(predicted),
                "correct": correct,
                "predicted_none": scored(predicted_none),
                "correct_none": correct_none,
            }
        )


def load_alignment(run_dir: Path, device: str = "cpu") -> Alignment:
    """The alignment fitted in `run_dir` (<root>/alignments/<settings>/<models>/), with its
    models loaded from the same root's model store."""
    root = run_dir.parents[2]
    folder = store.Entry(run_dir, redo="refit with force=true", root=root).current()
    if folder is None:
        raise ConfigError(f"{run_dir} holds no complete alignment; fit it with mas align")
    payload = read_alignment(folder / "alignment.pt")
    cfg = OmegaConf.create(payload["config"])
    specs = [ModelSpec.from_label(label) for label in payload["models"]]
    models = []
    for spec in specs:
        entry = store.model_dir(root, spec.task, spec.arch, spec.seed)
        models.append(load_frozen(spec, entry, torch.device(device), allow_undertrained=True))
    refuse_changed_models(run_dir, payload["fingerprint"], models, "refit")  # never applied to other weights
    blocks = variable_blocks(cfg, min(m.at(cfg.site).width() for m in models))
    span = max(b.stop for b in blocks)
    functions = build_functions(models, cfg, device, span, fit=False)
    try:
        functions.load_state_dict(payload["functions"])
    except (RuntimeError, KeyError) as exc:
        raise StoreError(f"{run_dir / 'alignment.pt'} does not fit its models; refit with force=true") from exc
    functions.eval().requires_grad_(False)
    return Alignment(run_dir, cfg, payload["fingerprint"], models, Interventions(cfg, models, functions, span))
