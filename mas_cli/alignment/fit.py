"""The MAS optimisation loop (docs/METHODS.md § MAS): m frozen models, one alignment function each, every chosen
ordered direction trained jointly with equal weight; only the alignment functions learn.

A step draws one batch per direction, computes each model's aligned rows once, and runs each
target model once for all directions into it, on only what the intervention changes
(scoring.py, targets.py). Validation every `val_every` steps; early stop when every
direction reaches `target_iia` on train and validation, or when the mean validation loss has not
improved by `min_delta` for `patience` validations at the last learning rate: each earlier such
plateau lowers the rate by `lr_factor` (torch's ReduceLROnPlateau), `lr_drops` times in all.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from mas_cli import seeds, store
from mas_cli.alignment.directions import Direction
from mas_cli.alignment.maps import AlignedRows
from mas_cli.alignment.plan import latent_weight
from mas_cli.alignment.scoring import Interventions, build_functions
from mas_cli.alignment.targets import per_part_loss
from mas_cli.console import StepProgress, console
from mas_cli.errors import ConfigError, StoreError, UnsafeFileError
from mas_cli.memory import release_free_heap, release_if_grown
from mas_cli.tracking import Tracker
from mas_cli.zoo import FrozenModel


class Aligner(Interventions):
    def __init__(self, cfg: DictConfig, models: list[FrozenModel], directions: list[Direction], device):
        """`cfg` is the run's resolved config (alignment/plan.py: method as run, k a number)."""
        span = max(d.block.stop for d in directions)  # up to the end of the last variable block
        super().__init__(cfg, models, build_functions(models, cfg, device, span), span)
        self.directions = directions
        self.settings = cfg.budget.align
        self.latent_weight = latent_weight(cfg) if any(d.latent for d in directions) else 0.0
        self.optimizer = torch.optim.Adam(self.functions.parameters(), lr=self.settings.lr)
        self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer,
            factor=self.settings.lr_factor,
            patience=self.settings.patience - 1,  # torch lowers the rate after patience + 1 flat validations
            threshold=self.settings.min_delta,
            threshold_mode="abs",
        )
        self.step, self.wall_before, self.curve, self.stop_reason = 0, 0.0, [], "step cap"
        self._epoch: dict[int, tuple[int, list[np.ndarray]]] = {}  # direction -> (epoch, its batches)

    # ---- one step -------------------------------------------------------------------------
    def _train_batch(self, i: int, d: Direction):
        """Batch for this step: epoch e of direction i is a fixed function of (seed, i, e), so a
        resumed run draws exactly the batches the uninterrupted one would have."""
        per_epoch = -(-len(d.train) // self.settings.batch_size)
        epoch, index = divmod(self.step, per_epoch)
        if self._epoch.get(i, (None,))[0] != epoch:
            rng = seeds.batch_order(self.cfg.seed, i, epoch)
            self._epoch[i] = (epoch, d.train.epoch_batches(self.settings.batch_size, rng))
        return d.train.take(self._epoch[i][1][index])

    def train_step(self) -> float:
        """Every direction weighs the same: the mean over directions of each one's mean loss
        (behaviour cross-entropy, or the latent weight × the latent loss for latent directions).

        Each target's share of the loss runs backward on its own, to detached copies of the
        aligned rows, so only one target's saved activations are alive at a time (the joint
        backward held all of them: ~100 MB per target at width 128); the parametrisation then
        runs backward once, from the rows' summed gradients. Same gradient, a quarter of the
        memory with four targets."""
        rows = self.aligned_rows()
        leaves = [_detached(r) for r in rows]
        by_target: dict[int, list] = {}
        shares = []
        for i, d in enumerate(self.directions):
            if d.latent:
                shares.append(
                    lambda d=d, i=i: self.latent_weight * self.latent_loss(d, self._train_batch(i, d), leaves)
                )
            else:
                by_target.setdefault((d.target, d.block), []).append((d, self._train_batch(i, d)))
        for (target, _), batches in by_target.items():
            shares.append(lambda t=target, b=batches: per_part_loss(self.target_step(t, b, leaves), len(b)).sum())
        self.optimizer.zero_grad(set_to_none=True)
        loss = 0.0
        for share in shares:
            part = share() / len(self.directions)
            part.backward()
            loss += part.item()
        pairs = [
            (tensor, leaf.grad)
            for full, detached in zip(rows, leaves)
            for tensor, leaf in zip(_tensors(full), _tensors(detached))
            if leaf is not None and leaf.grad is not None
        ]
        if pairs:  # through the parametrisation, once
            torch.autograd.backward(*zip(*pairs))
        self.optimizer.step()
        self.step += 1
        return loss

    # ---- validation and the stopping rules ------------------------------------------------
    def validate(self, train_loss: float, elapsed: float) -> bool:
        """Append curve rows; True when training should stop."""
        if not np.isfinite(train_loss):  # nothing useful can follow; nothing is published
            raise ConfigError(
                f"the alignment diverged by step {self.step} (loss {train_loss}); lower budget.align.lr "
                f"(now {self.settings.lr})"
            )
        with torch.no_grad():
            rows = self.aligned_rows()
        val = [self.evaluate(d, d.val, rows=rows) for d in self.directions]
        train = [self.evaluate(d, d.train, limit=self.settings.val_size, rows=rows) for d in self.directions]
        wall = round(self.wall_before + elapsed, 3)
        for d, v, t in zip(self.directions, val, train):
            for split, scores in (("train", t), ("val", v)):
                row = self.scores_row(d, split, scores)
                lr = self.optimizer.param_groups[0]["lr"]  # the rate of the steps just taken
                self.curve.append({"step": self.step, **row, "train_step_loss": train_loss, "lr": lr, "wall_s": wall})
        # The stopping rules see only what training may use: the latent loss, not the behaviour,
        # of latent directions.
        objective = [v.cl_loss if d.latent else v.loss for d, v in zip(self.directions, val)]
        self.plateau.step(float(np.mean(objective)))
        target = self.settings.target_iia
        seen = [(v, t) for d, v, t in zip(self.directions, val, train) if not d.latent]
        if seen and all(v.iia >= target and t.iia >= target for v, t in seen):
            self.stop_reason = f"every direction reached IIA {target}"
            return True
        lowest = self.settings.lr * self.settings.lr_factor**self.settings.lr_drops
        if self.optimizer.param_groups[0]["lr"] < lowest * (1 - 1e-6):  # one plateau more than lr_drops
            drops = f" (learning rate lowered {self.settings.lr_drops}×)" if self.settings.lr_drops else ""
            self.stop_reason = f"validation loss flat for {self.settings.patience} validations{drops}"
            return True
        return False

    def last_scalars(self) -> dict[str, float]:
        """The last validation as TensorBoard tags: IIA and loss per split and direction."""
        last = self.curve[-len(self.directions) * 2 :]
        found = {"train_step_loss": last[0]["train_step_loss"], "mean_val_iia": self.mean_val_iia()}
        for row in last:
            direction = f"{row['src']}->{row['trg']}/{row['variable']}"
            found[f"iia/{row['split']}/{direction}"] = row["iia"]
            found[f"loss/{row['split']}/{direction}"] = row["loss"]
        return found

    def mean_val_iia(self) -> float:
        last = self.curve[-len(self.directions) * 2 :]
        return float(np.mean([r["iia"] for r in last if r["split"] == "val"]))

    # ---- the loop, with checkpoints -------------------------------------------------------
    def run(self, checkpoint: Path, fingerprint: dict, title: str, tracking: Tracker | None = None) -> float:
        """Train until an early stop or the step cap; returns the wall time in seconds. Every
        validation's scalars go to `tracking` (tracking.py)."""
        self._resume(checkpoint, fingerprint)
        started, done = time.perf_counter(), False
        every = self.settings.val_every
        tracking = tracking or Tracker()
        with StepProgress(title, self.settings.max_steps, self.step) as progress, closing(tracking):
            while not done and self.step < self.settings.max_steps:
                loss = self.train_step()
                release_if_grown()
                progress.advance(self.step)
                if self.step % every == 0 or self.step == self.settings.max_steps:
                    done = self.validate(loss, time.perf_counter() - started)
                    release_free_heap()  # what evaluation's batches left
                    tracking.scalars(self.step, self.last_scalars())
                    iia = self.mean_val_iia()
                    progress.report(self.step, f"IIA {iia:.3f}", f"loss {loss:.4f} mean val IIA {iia:.4f}")
                    if not done:
                        self._save_checkpoint(checkpoint, fingerprint, time.perf_counter() - started)
        return self.wall_before + time.perf_counter() - started

    def _resume(self, checkpoint: Path, fingerprint: dict) -> None:
        """Continue from a checkpoint of this fit; an unreadable or foreign one is set aside and
        the fit starts over (the result is the same)."""
        if not checkpoint.exists():
            return
        start = copy.deepcopy({k: getattr(self, k).state_dict() for k in ("functions", "optimizer", "plateau")})
        try:
            state = store.load_torch(checkpoint, "checkpoint", "")
            if state.get("fingerprint") != fingerprint:
                console.print("ignoring a checkpoint made with other settings: fitting from the start")
                return
            self.functions.load_state_dict(state["functions"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.plateau.load_state_dict(state["plateau"])
            for key in ("step", "wall_before", "curve"):
                setattr(self, key, state[key])
        except UnsafeFileError:
            raise
        except (StoreError, KeyError, TypeError, ValueError, RuntimeError, AttributeError):
            console.print("ignoring an unreadable checkpoint: fitting from the start")
            checkpoint.unlink()
            for key, value in start.items():  # undo whatever was half loaded
                getattr(self, key).load_state_dict(value)
            self.step, self.wall_before, self.curve = 0, 0.0, []
            return
        console.print(f"resuming from step {self.step}")

    def _save_checkpoint(self, checkpoint: Path, fingerprint: dict, elapsed: float) -> None:
        state = {
            "fingerprint": fingerprint,
            "functions": self.functions.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "plateau": self.plateau.state_dict(),
            "step": self.step,
            "wall_before": self.wall_before + elapsed,
            "curve": self.curve,
        }
        store.save_torch(checkpoint, state)


def _tensors(rows: AlignedRows) -> list[torch.Tensor | None]:
    """Every field of `rows` (all of them, whatever the dataclass holds), each where it carries a
    gradient back to the alignment functions, None otherwise."""
    values = (getattr(rows, f.name) for f in dataclasses.fields(rows))
    return [v if isinstance(v, torch.Tensor) and v.requires_grad else None for v in values]


def _detached(rows: AlignedRows) -> AlignedRows:
    """A copy of `rows` whose gradient-carrying fields are fresh leaves (their gradients collect
    over every target's backward); every other field as it is."""
    carried = dict(zip((f.name for f in dataclasses.fields(rows)), _tensors(rows)))
    return dataclasses.replace(rows, **{k: v.detach().requires_grad_() for k, v in carried.items() if v is not None})
