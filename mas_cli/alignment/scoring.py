"""The alignment functions of m frozen models and what they do (docs/METHODS.md § MAS): the scored predictions of
a target after an interchange from a source, and the scores of a direction (IIA, token accuracy,
loss). The optimisation loop (fit.py) trains these; a loaded alignment (mas_cli.api) uses them
as they are.

IIA = the fraction of items whose every scored prediction is right: a trial is all-or-nothing
(evaluation.trial_verdicts, shared with task accuracy). With teacher forcing on the
counterfactual inputs this is the verdict of free generation (docs/METHODS.md § MAS).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import nn

from mas_cli import seeds
from mas_cli.alignment.directions import Direction
from mas_cli.alignment.interchange import Interchange, interchange_of
from mas_cli.alignment.items import DirectionData, natural_activations
from mas_cli.alignment.latents import latent_loss
from mas_cli.alignment.maps import AlignedRows, make_alignment
from mas_cli.alignment.methods import METHODS
from mas_cli.alignment.swaps import Block, row_variable
from mas_cli.alignment.targets import Part, Predictions, site_path
from mas_cli.evaluation import trial_verdicts
from mas_cli.zoo import FrozenModel

# Items scored per forward pass: memory only, no score depends on it.
EVAL_BATCH = 512
# Natural sequences each model's normalisation μ, s is fitted on: a fixed part of the method
# (docs/METHODS.md § MAS), drawn from the run's seed (seeds.normalisation).
NATURAL_SEQUENCES = 1000


@dataclass
class Scores:
    iia: float  # fraction of items whose every scored prediction is right
    tok_acc: float
    loss: float
    n: int
    cl_loss: float | None = None  # latent loss over matched items (latent directions)


def build_functions(models: list[FrozenModel], cfg: DictConfig, device, span: int, fit: bool = True) -> nn.ModuleList:
    """One alignment function per model: a seeded random rotation, normalised (maps.py) on
    natural sequences of the model's own task (`fit=False`: left for a saved state to fill);
    `span` aligned coordinates."""
    generator = seeds.torch_generator(cfg.seed)
    functions = nn.ModuleList()
    for i, m in enumerate(models):
        width = m.at(cfg.site).width()
        function = make_alignment(cfg.align_fn, width, span, cfg.orthogonal_map, generator).to(device)
        if fit and cfg.normalize != "none":  # none: μ = 0 and s = 1 as built, no activations needed
            natural = natural_activations(m, cfg.site, NATURAL_SEQUENCES, seeds.normalisation(cfg.seed, i), device)
            function.fit_normalization(natural, cfg.normalize)
        functions.append(function)
    return functions


def for_block(rows: AlignedRows, block: Block) -> AlignedRows:
    return rows.block(block.first, block.stop)


def unintervened(h_target: torch.Tensor, h_source: torch.Tensor, target: AlignedRows, source: AlignedRows):
    """No interchange at all: the target keeps its own site (the chance level, `iia_none`)."""
    return h_target


class Interventions:
    def __init__(self, cfg: DictConfig, models: list[FrozenModel], functions: nn.ModuleList, span: int):
        """`cfg` is the run's resolved config (alignment/plan.py: method as run, k a number); `span`
        the aligned coordinates every step needs (up to the end of the last variable block)."""
        self.cfg, self.models, self.functions, self.span = cfg, models, functions, span
        self.site_path = site_path(cfg.site)
        self.interchange = interchange_of(METHODS[cfg.method].zero_mask)

    def aligned_rows(self) -> list[AlignedRows]:
        """Q_i[:span] (and μ_i, s_i) for every model: the parametrisation runs once per model per step."""
        return [f.aligned(self.span) for f in self.functions]

    def target_step(
        self, target: int, batches: list[tuple[Direction, object]], rows: list[AlignedRows], interchange=None
    ) -> Predictions:
        """Scored predictions of one target for the batches of several directions into it (all
        swapping the same block)."""
        block = batches[0][0].block
        parts = [
            Part(batch, self.models[d.source].at(self.cfg.site), for_block(rows[d.source], block))
            for d, batch in batches
        ]
        interchange: Interchange = interchange or self.interchange
        return self.site_path(self.models[target].at(self.cfg.site), for_block(rows[target], block), parts, interchange)

    def latent_loss(self, d: Direction, batch, rows: list[AlignedRows]) -> torch.Tensor:
        """L_CL of one direction's batch over the items with a matched latent, on the site as the
        target's alignment function sees it, (h − μ)/s: raw, an LSTM cell state's squared error
        (units of one) would swamp the cross-entropy of every other direction. With
        normalize=none this is the formula on raw vectors."""
        keep, target, source = batch.has_latent, for_block(rows[d.target], d.block), for_block(rows[d.source], d.block)
        h = self.interchange(batch.target_state[keep], batch.source_state[keep], target, source)
        return latent_loss(target.normalized(h), target.normalized(batch.latent[keep]), self.cfg.cl.loss)

    @torch.no_grad()
    def batches(self, d: Direction, data: DirectionData, limit=None, rows=None, interchange=None):
        """(item indices, their scored predictions) for the first `limit` items, in evaluation batches."""
        rows = self.aligned_rows() if rows is None else rows
        for index in data.eval_batches(EVAL_BATCH, limit):
            yield index, self.target_step(d.target, [(d, data.take(index))], rows, interchange)

    @torch.no_grad()
    def evaluate(
        self, d: Direction, data: DirectionData, limit: int | None = None, rows=None, interchange=None
    ) -> Scores:
        """IIA, token accuracy and loss of direction d on its first `limit` items (all by default);
        `interchange=unintervened` scores the same items without any intervention."""
        right_items = right_tokens = scored_tokens = items = 0
        loss_sum = 0.0
        for index, found in self.batches(d, data, limit, rows, interchange):
            right = found.logits.argmax(-1) == found.labels
            right_items += int(trial_verdicts(right, found.item, len(index)).sum())
            right_tokens += int(right.sum())
            scored_tokens += len(found.labels)
            loss_sum += F.cross_entropy(found.logits, found.labels, reduction="sum").item()
            items += len(index)
        scores = Scores(right_items / items, right_tokens / scored_tokens, loss_sum / scored_tokens, items)
        if d.latent and interchange is None:
            batch = data.take(data.eval_batches(len(data), limit)[0])
            scores.cl_loss = float(self.latent_loss(d, batch, rows if rows is not None else self.aligned_rows()))
        return scores

    @torch.no_grad()
    def item_verdicts(
        self, d: Direction, data: DirectionData, interchange=None, rows=None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per item, in data order: whether it is right (bool [N]) and the predicted token of
        every label column (int [N, C], -1 where nothing is scored)."""
        right_items = np.zeros(len(data), dtype=bool)
        predicted = np.full(tuple(data.items.labels.shape), -1, dtype=np.int64)
        for index, found in self.batches(d, data, rows=rows, interchange=interchange):
            tokens = found.logits.argmax(-1)
            right_items[index] = trial_verdicts(tokens == found.labels, found.item, len(index)).cpu().numpy()
            predicted[index[found.item.cpu().numpy()], found.column.cpu().numpy()] = tokens.cpu().numpy()
        return right_items, predicted

    def scores_row(self, d: Direction, split: str, scores: Scores) -> dict:
        """One direction's scores as a tidy row (curve.csv, iia.csv)."""
        src, trg = self.models[d.source].spec.label, self.models[d.target].spec.label
        measured = {key: value for key, value in asdict(scores).items() if value is not None}
        return {"src": src, "trg": trg, "variable": row_variable(self.cfg, d.block), "split": split, **measured}
