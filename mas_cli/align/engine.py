"""The MAS optimisation loop (SPEC §5): m frozen models, one alignment function each, every chosen
ordered direction trained jointly with equal weight; only the alignment functions learn.

A step draws one batch per direction, computes each model's Q once, and runs each target model
once for all directions into it, on only what the intervention changes (data.py, intervention.py). Validation every
`val_every` steps; early stop when every direction reaches `target_iia` on train and validation,
or when the mean validation loss has not improved by `min_delta` for `patience` validations.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import nn

from mas_cli import store
from mas_cli.align.data import DirectionData, build_direction, natural_activations
from mas_cli.align.functions import AlignedRows, make_alignment
from mas_cli.align.intervention import Part, per_part_loss, predictions, swap
from mas_cli.align.latents import build_bank, latent_loss
from mas_cli.align.methods import ZERO_MASK
from mas_cli.align.zoo import FrozenModel
from mas_cli.console import StepProgress, console

EVAL_BATCH = 512


@dataclass
class Direction:
    source: int  # model indices
    target: int
    train: DirectionData
    val: DirectionData
    latent: bool = False  # trained with the latent loss instead of the target's behaviour
    variable: str = ""  # the swapped variable ("null_block": the null block)
    block: tuple[int, int] | None = None  # its alignment coordinates; None: the first k

    def unmatched(self) -> int | None:
        """Items (train + val) with no matching natural latent; None for behaviour directions."""
        if not self.latent:
            return None
        return sum(int((~data.items.has_latent).sum()) for data in (self.train, self.val))


@dataclass
class Scores:
    iia: float  # fraction of items whose every scored prediction is right
    tok_acc: float
    loss: float
    n: int
    cl_loss: float | None = None  # latent loss over matched items (latent directions)


def build_functions(models: list[FrozenModel], cfg: DictConfig, device, span: int | None = None) -> nn.ModuleList:
    """One alignment function per model: a seeded random rotation, normalised (functions.py) on
    1,000 natural sequences of the model's own task; `span` aligned coordinates (default k)."""
    generator = torch.Generator().manual_seed(cfg.seed)
    functions = nn.ModuleList()
    for i, m in enumerate(models):
        width = m.model.site_width(cfg.site)
        align_fn = cfg.get("align_fn", "orthogonal")
        function = make_alignment(align_fn, width, span or cfg.k, cfg.orthogonal_map, generator)
        function = function.to(device)
        natural = natural_activations(m, cfg.site, 1000, np.random.default_rng([cfg.seed, i, 99]), device)
        function.fit_normalization(natural, cfg.get("normalize", "rms"))
        functions.append(function)
    return functions


def build_directions(
    models, pairs, site, variable, settings, seed, device, latent_pairs=(), bank_size=0, causal_model=None, by_task=None
):
    """Counterfactual data per direction; seeded by (seed, source, target, split) so that the
    same run always sees the same items. Directions in `latent_pairs` also get matched natural
    latents from a bank of `bank_size` natural sequences of their target. `variable` is one
    variable (its block: the first k coordinates) or a list of (variable, first, stop) blocks,
    one direction per pair and block ("none": the null block). `by_task` maps a task name to the
    variable its models swap instead (cross-task alignment: the target's variable takes the
    source's value)."""
    by_task = by_task or {}
    blocks = [(variable, None, None)] if isinstance(variable, str) else list(variable)
    banks = {t: build_bank(models[t], bank_size, np.random.default_rng([seed, t, 77]), device) for _, t in latent_pairs}
    out = []
    for s, t in pairs:
        bank = banks[t] if (s, t) in latent_pairs else None
        for j, (name, first, stop) in enumerate(blocks):
            made = [
                build_direction(
                    models[s],
                    models[t],
                    site,
                    by_task.get(models[t].task.name, name),
                    size,
                    np.random.default_rng([seed, s, t, split] + ([j] if j else [])),
                    device,
                    bank,
                    causal_model,
                    by_task.get(models[s].task.name, name),
                )
                for split, size in enumerate((settings.train_size, settings.val_size))
            ]
            block = None if first is None else (first, stop)
            variable_name = "null_block" if name == "none" else name  # ("null" would read back as NaN)
            out.append(Direction(s, t, *made, latent=bank is not None, variable=variable_name, block=block))
    return out


class Aligner:
    def __init__(self, cfg: DictConfig, models: list[FrozenModel], directions: list[Direction], device):
        self.cfg, self.models, self.directions = cfg, models, directions
        self.settings = cfg.budget.align
        self.k, self.site = cfg.k, cfg.site
        self.keep_target = cfg.get("method", "mas") not in ZERO_MASK  # stitching discards the target's own vector
        # Aligned coordinates every step needs: k, or up to the end of the last variable block.
        self.span = max([cfg.k] + [d.block[1] for d in directions if d.block is not None])
        self.functions = build_functions(models, cfg, device, self.span)
        self.optimizer = torch.optim.Adam(self.functions.parameters(), lr=self.settings.lr)
        self.step, self.wall_before, self.curve = 0, 0.0, []
        self.best_loss, self.since_best, self.stop_reason = float("inf"), 0, "step cap"
        self._epoch: dict[int, tuple[int, list[np.ndarray]]] = {}  # direction -> (epoch, its batches)

    # ---- one step -------------------------------------------------------------------------
    def aligned_rows(self) -> list[AlignedRows]:
        """Q_i[:span] (and μ_i, s_i) for every model: the parametrisation runs once per model per step."""
        return [f.aligned(self.span) for f in self.functions]

    def rows_of(self, rows: list[AlignedRows], model: int, d: Direction) -> AlignedRows:
        """A model's aligned rows for direction d's block."""
        if d.block is None:
            return rows[model] if self.span == self.k else rows[model].block(0, self.k)
        return rows[model].block(*d.block)

    def target_step(self, target: int, batches: list[tuple[Direction, object]], rows):
        """Scored predictions of one target for the batches of several directions into it (all
        swapping the same block)."""
        parts = [Part(batch, self.models[d.source].model, self.rows_of(rows, d.source, d)) for d, batch in batches]
        target_rows = self.rows_of(rows, target, batches[0][0])
        return predictions(self.models[target].model, target_rows, parts, self.site, self.keep_target)

    def _train_batch(self, i: int, d: Direction):
        """Batch for this step: epoch e of direction i is a fixed function of (seed, i, e), so a
        resumed run draws exactly the batches the uninterrupted one would have."""
        per_epoch = -(-len(d.train) // self.settings.batch_size)
        epoch, index = divmod(self.step, per_epoch)
        if self._epoch.get(i, (None,))[0] != epoch:
            rng = np.random.default_rng([self.cfg.seed, i, epoch, 7])
            self._epoch[i] = (epoch, d.train.epoch_batches(self.settings.batch_size, rng))
        return d.train.take(self._epoch[i][1][index])

    def latent_loss(self, d: Direction, batch, rows) -> torch.Tensor:
        """L_CL of one direction's batch over the items with a matched latent, on the site as the
        target's alignment function sees it, (h − μ)/s: raw, an LSTM cell state's squared error
        (units of one) would swamp the cross-entropy of every other direction. With
        normalize=none this is the formula on raw vectors."""
        keep, target = batch.has_latent, self.rows_of(rows, d.target, d)
        source = self.rows_of(rows, d.source, d)
        h = swap(batch.target_state[keep], batch.source_state[keep], target, source, self.keep_target)
        return latent_loss(target.normalized(h), target.normalized(batch.latent[keep]), self.cfg.cl.loss)

    def train_step(self) -> float:
        """Every direction weighs the same: the mean over directions of each one's mean loss
        (behaviour cross-entropy, or cl.eps × the latent loss for latent directions)."""
        rows = self.aligned_rows()
        by_target: dict[int, list] = {}
        loss = 0.0
        for i, d in enumerate(self.directions):
            if d.latent:
                loss = loss + self.cfg.cl.eps * self.latent_loss(d, self._train_batch(i, d), rows)
            else:
                by_target.setdefault((d.target, d.block), []).append((d, self._train_batch(i, d)))
        for (target, _), batches in by_target.items():
            loss = loss + per_part_loss(self.target_step(target, batches, rows), len(batches)).sum()
        loss = loss / len(self.directions)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step += 1
        return loss.item()

    # ---- evaluation -----------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, d: Direction, data: DirectionData, limit: int | None = None, rows=None) -> Scores:
        rows = self.aligned_rows() if rows is None else rows
        right_items = right_tokens = scored_tokens = items = 0
        loss_sum = 0.0
        for index in data.eval_batches(EVAL_BATCH, limit):
            found = self.target_step(d.target, [(d, data.take(index))], rows)
            right = found.logits.argmax(-1) == found.labels
            wrong = torch.zeros(len(index), device=right.device).index_add_(0, found.item, (~right).float())
            right_items += int((wrong == 0).sum())
            right_tokens += int(right.sum())
            scored_tokens += len(found.labels)
            loss_sum += F.cross_entropy(found.logits, found.labels, reduction="sum").item()
            items += len(index)
        scores = Scores(right_items / items, right_tokens / scored_tokens, loss_sum / scored_tokens, items)
        if d.latent:
            batch = data.take(data.eval_batches(len(data), limit)[0])
            scores.cl_loss = float(self.latent_loss(d, batch, rows))
        return scores

    def scores_row(self, d: Direction, split: str, scores: Scores) -> dict:
        """One direction's scores as a tidy row (curve.csv, iia.csv)."""
        src, trg = self.models[d.source].spec.label, self.models[d.target].spec.label
        measured = {key: value for key, value in asdict(scores).items() if value is not None}
        which = {"variable": d.variable} if d.block is not None else {}  # several blocks: say which
        return {"src": src, "trg": trg, **which, "split": split, **measured}

    def validate(self, train_loss: float, elapsed: float) -> bool:
        """Append curve rows; True when training should stop."""
        with torch.no_grad():
            rows = self.aligned_rows()
        val = [self.evaluate(d, d.val, rows=rows) for d in self.directions]
        train = [self.evaluate(d, d.train, limit=self.settings.val_size, rows=rows) for d in self.directions]
        wall = round(self.wall_before + elapsed, 3)
        for d, v, t in zip(self.directions, val, train):
            for split, scores in (("train", t), ("val", v)):
                row = self.scores_row(d, split, scores)
                self.curve.append({"step": self.step, **row, "train_step_loss": train_loss, "wall_s": wall})
        # The stopping rules see only what training may use: the latent loss, not the behaviour,
        # of latent directions.
        objective = [v.cl_loss if d.latent else v.loss for d, v in zip(self.directions, val)]
        mean_val_loss = float(np.mean(objective))
        if mean_val_loss < self.best_loss - self.settings.min_delta:
            self.best_loss, self.since_best = mean_val_loss, 0
        else:
            self.since_best += 1
        target = self.settings.target_iia
        seen = [(v, t) for d, v, t in zip(self.directions, val, train) if not d.latent]
        if seen and all(v.iia >= target and t.iia >= target for v, t in seen):
            self.stop_reason = f"every direction reached IIA {target}"
            return True
        if self.since_best >= self.settings.patience:
            self.stop_reason = f"validation loss flat for {self.settings.patience} validations"
            return True
        return False

    def mean_val_iia(self) -> float:
        last = self.curve[-len(self.directions) * 2 :]
        return float(np.mean([r["iia"] for r in last if r["split"] == "val"]))

    # ---- the loop, with checkpoints -------------------------------------------------------
    def run(self, checkpoint: Path, fingerprint: dict, title: str) -> float:
        """Train until an early stop or the step cap; returns the wall time in seconds."""
        self._resume(checkpoint, fingerprint)
        started, done = time.perf_counter(), False
        every = self.settings.val_every
        with StepProgress(title, self.settings.max_steps, self.step) as progress:
            while not done and self.step < self.settings.max_steps:
                loss = self.train_step()
                progress.advance(self.step)
                if self.step % every == 0 or self.step == self.settings.max_steps:
                    done = self.validate(loss, time.perf_counter() - started)
                    progress.report(self.step, f"loss {loss:.4f} mean val IIA {self.mean_val_iia():.4f}")
                    if not done:
                        self._save_checkpoint(checkpoint, fingerprint, time.perf_counter() - started)
        return self.wall_before + time.perf_counter() - started

    def _resume(self, checkpoint: Path, fingerprint: dict) -> None:
        if not checkpoint.exists():
            return
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        if state.get("fingerprint") != fingerprint:
            console.print(f"ignoring {checkpoint}: it was made with other settings")
            return
        self.functions.load_state_dict(state["functions"])
        self.optimizer.load_state_dict(state["optimizer"])
        for key in ("step", "wall_before", "curve", "best_loss", "since_best"):
            setattr(self, key, state[key])
        console.print(f"resuming {checkpoint.parent} from step {self.step}")

    def _save_checkpoint(self, checkpoint: Path, fingerprint: dict, elapsed: float) -> None:
        state = {
            "fingerprint": fingerprint,
            "functions": self.functions.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "wall_before": self.wall_before + elapsed,
            "curve": self.curve,
            "best_loss": self.best_loss,
            "since_best": self.since_best,
        }
        store.save_torch(checkpoint, state)
