"""Task-model training (docs/METHODS.md § Models and training): next-token cross-entropy until
validation task accuracy reaches the criterion, with a step cap, checkpoints to resume from, and an
atomic model store entry."""

from __future__ import annotations

import io
import math
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf

from mas_cli import seeds, store
from mas_cli.config import refuse_other_settings
from mas_cli.console import StepProgress, console, path_line
from mas_cli.errors import ConfigError, StoreError, UnsafeFileError
from mas_cli.evaluation import EvalSet, task_accuracy
from mas_cli.memory import release_if_grown
from mas_cli.models import SequenceModel, build_model, model_spec
from mas_cli.records import write_records
from mas_cli.tasks import Task, task_from_config
from mas_cli.tasks.vocab import PAD
from mas_cli.tracking import tracker


@dataclass
class TrainResult:
    entry: Path
    metrics: dict
    reused: bool


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up, then cosine decay to 10 % of the peak at the step cap."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min((step - warmup) / max(total - warmup, 1), 1.0)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


def curriculum_cap(curriculum, step: int, most: int) -> int | None:
    """The largest quantity (op count, count) training draws at `step`: `curriculum.start`
    at first, rising linearly to `most` by `curriculum.steps`; None (everything) without a
    curriculum or after it. Long arithmetic sequences stall on a plateau where the model never
    learns when to stop (it predicts EOS at its base rate, whatever k is); short ones do not."""
    if not curriculum or step >= curriculum.steps:
        return None
    return curriculum.start + (most - curriculum.start) * step // curriculum.steps


def next_token_loss(model: SequenceModel, tokens: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over every non-pad target. The readout runs only where a target exists:
    about half of a padded batch is PAD, and the readout MLP is a third of the work."""
    targets = torch.roll(tokens, -1, 1)
    targets[:, -1] = PAD
    has_target = targets != PAD
    return F.cross_entropy(model.readout(model.features(tokens)[has_target]), targets[has_target])


def train_model(cfg: DictConfig) -> TrainResult:
    """Reuse the complete store entry for this config, or train (resuming a checkpoint). A
    complete entry is reused without taking its lock (a store the user cannot write is read
    all the same); making one holds the lock, so a second job asking for it waits, then reuses."""
    entry = store.model_entry(cfg.paths.root, cfg.task.name, cfg.arch.name, cfg.seed)
    wanted = store.fingerprint(cfg)
    if not cfg.force and (found := _reusable(entry, wanted)) is not None:
        return found
    with entry.exclusive(lambda: path_line("waiting: another job is training", entry.path)):
        entry.adopt_finished()
        if not cfg.force and (found := _reusable(entry, wanted)) is not None:
            return found
        return Trainer(cfg, entry, wanted).run()


def _reusable(entry: store.Entry, wanted: dict) -> TrainResult | None:
    folder = entry.current()
    if folder is None:
        return None
    metrics = store.read_metrics(folder)
    refuse_other_settings(entry.path, metrics["fingerprint"], wanted, "a model trained", "retrain")
    store.load_model_file(folder / "model.pt")  # reused as complete only if its weights load
    path_line("reusing (complete; force=true retrains):", entry.path)
    return TrainResult(entry.path, metrics, reused=True)


class Trainer:
    def __init__(self, cfg: DictConfig, entry: store.Entry, fingerprint: dict):
        """Trains into the entry's work folder (force=true: from scratch), then publishes it."""
        self.cfg, self.entry, self.fingerprint = cfg, entry, fingerprint
        self.work = entry.start(fresh=cfg.force)
        self.budget = cfg.budget
        self.device = resolve_device(cfg.device)
        self.task: Task = task_from_config(cfg.task)
        self.curriculum, self.most = cfg.task.get("curriculum"), int(self.task.counts("train").max())
        seeds.seed_torch(cfg.seed)
        self.model = build_model(cfg.arch.name, len(self.task.vocab), cfg.arch).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.budget.lr)
        self.data_rng = seeds.training_batches(cfg.seed)
        # Validation and held-out sets are fixed by the seed, apart from the training stream.
        self.val = EvalSet.draw(
            self.task, self.budget.val_size, seeds.training_validation(cfg.seed), "train", self.device
        )
        self.heldout = EvalSet.draw(
            self.task, self.budget.heldout_size, seeds.training_heldout(cfg.seed), "heldout", self.device
        )
        self.step, self.wall_before, self.curve = 0, 0.0, []
        self.checkpoint = self.work / "checkpoint.pt"

    def run(self) -> TrainResult:
        self._resume()
        started = time.perf_counter()
        reached = False  # checkpoints are only written before the criterion is reached
        title = f"train {self.task.name}/{self.cfg.arch.name}/{self.cfg.seed}"
        tracking = tracker(self.cfg, "train", self.entry.path)
        with StepProgress(title, self.budget.max_steps, self.step) as progress, closing(tracking):
            while not reached and self.step < self.budget.max_steps:
                loss = self._train_step()
                release_if_grown()
                progress.advance(self.step)
                if self.step % self.budget.val_every == 0 or self.step == self.budget.max_steps:
                    row = self._validate(loss, time.perf_counter() - started)
                    if not math.isfinite(row["loss"]):  # nothing useful can follow; nothing is published
                        raise ConfigError(
                            f"training diverged by step {self.step} (loss {row['loss']}); lower budget.lr "
                            f"(now {self.budget.lr})"
                        )
                    tracking.scalars(self.step, {k: v for k, v in row.items() if k not in ("step", "wall_s")})
                    reached = row["val_task_acc"] >= self.budget.criterion
                    accuracy = row["val_task_acc"]
                    full = f"loss {row['loss']:.4f} val task acc {accuracy:.4f}"
                    progress.report(self.step, f"acc {accuracy:.3f}", full)
                if self.step % self.budget.checkpoint_every == 0 and not reached:
                    self._save_checkpoint(time.perf_counter() - started)
        return self._finish(reached, self.wall_before + time.perf_counter() - started)

    def _train_step(self) -> torch.Tensor:
        for group in self.optimizer.param_groups:
            group["lr"] = self.budget.lr * lr_factor(self.step, self.budget.warmup_steps, self.budget.max_steps)
        cap = curriculum_cap(self.curriculum, self.step, self.most)
        batch = self.task.sample(self.budget.batch_size, self.data_rng, "train", up_to=cap).tokens
        loss = next_token_loss(self.model, torch.from_numpy(batch).to(self.device))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip = self.cfg.arch.get("grad_clip", 0.0)  # an architecture without the setting: no clipping
        if clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        self.optimizer.step()
        self.step += 1
        return loss.detach()

    def _validate(self, loss: torch.Tensor, elapsed: float) -> dict:
        task_acc, tok_acc = task_accuracy(self.model, self.val)
        row = {
            "step": self.step,
            "loss": loss.item(),
            "val_task_acc": task_acc,
            "val_tok_acc": tok_acc,
            "lr": self.optimizer.param_groups[0]["lr"],
            "wall_s": round(self.wall_before + elapsed, 3),
        }
        self.curve.append(row)
        return row

    def _resume(self) -> None:
        """Continue from the work folder's checkpoint when it is this config's; an unreadable or
        foreign one is set aside and training starts over (the result is the same)."""
        if not self.checkpoint.exists():
            return
        try:
            state = store.load_torch(self.checkpoint, "checkpoint", "")
            if state.get("fingerprint") != self.fingerprint:
                console.print("ignoring a checkpoint made with other settings: training from the start")
                return
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.data_rng.bit_generator.state = state["data_rng"]
            torch.set_rng_state(state["torch_rng"])
            self.step, self.wall_before, self.curve = state["step"], state["wall_s"], state["curve"]
        except UnsafeFileError:
            raise
        except (StoreError, KeyError, TypeError, ValueError, RuntimeError, AttributeError):
            console.print("ignoring an unreadable checkpoint: training from the start")
            self.checkpoint.unlink()
            self.__init__(self.cfg, self.entry, self.fingerprint)  # undo whatever was half loaded
            return
        console.print(f"resuming from step {self.step}")

    def _save_checkpoint(self, elapsed: float) -> None:
        store.save_torch(
            self.checkpoint,
            {
                "fingerprint": self.fingerprint,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "data_rng": self.data_rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
                "step": self.step,
                "wall_s": self.wall_before + elapsed,
                "curve": self.curve,
            },
        )

    def _finish(self, reached: bool, wall_s: float) -> TrainResult:
        last = self.curve[-1]
        heldout_acc = task_accuracy(self.model, self.heldout)[0] if self.heldout else None
        metrics = {
            "val_task_acc": last["val_task_acc"],
            "val_tok_acc": last["val_tok_acc"],
            "heldout_task_acc": heldout_acc,
            "trained_to_criterion": reached,
            "criterion": self.budget.criterion,
            "val_size": self.budget.val_size,
            "steps": self.step,
            "wall_s": round(wall_s, 2),
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "device": str(self.device),
            "threads": torch.get_num_threads(),  # as trained: another count changes the weights by ~1e-7
            "fingerprint": self.fingerprint,
        }
        payload = {
            "format": store.MODEL_FORMAT,
            **model_spec(self.model),
            "task": OmegaConf.to_container(self.cfg.task, resolve=True),
            "vocab": list(self.task.vocab.names),
            "metrics": {k: v for k, v in metrics.items() if k != "fingerprint"},
        }
        store.save_model(self.work, payload, self.model)
        store.write_text(self.work / "config.yaml", OmegaConf.to_yaml(self.cfg, resolve=True))
        buffer = io.StringIO()
        pd.DataFrame(self.curve).to_csv(buffer, index=False)
        store.write_text(self.work / "curve.csv", buffer.getvalue())
        store.write_json(self.work / "metrics.json", metrics)
        self.checkpoint.unlink(missing_ok=True)
        records = write_records(self.work, self.cfg, "train")
        # The whole entry appears at once; until then an older complete entry stays in use.
        self.entry.publish([*store.model_files(self.model), *records])
        return TrainResult(self.entry.path, metrics, reused=False)
