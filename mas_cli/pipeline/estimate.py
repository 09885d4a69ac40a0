"""`mas pipeline plan=true`: the jobs a pipeline would run and what they would cost on this
machine, before running any of them (nothing is trained, fitted or written).

Costs are measured here, on randomly initialised models of each job's own shapes (a step costs
the same whatever the weights):
  * training: an Adam step on the next-token loss at the job's batch size, per task and arch;
  * alignment: one direction's `Aligner.train_step`, per (source, target, site, how it learns):
    a fit's step runs each direction once, so its cost is the sum over its directions. Directions
    that learn from the latent loss alone skip the target's continuation and cost far less;
    those that learn nothing (the accessible-only ablation) cost nothing.
Validation adds `val_size` items every `val_every` steps, each a third of a trained item's forward
and backward. Every job is counted at its step cap: an upper bound, as training stops at its
criterion and fits by their convergence rules, usually well before. Jobs whose results the root
already holds are reused, so they cost nothing.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from mas_cli.alignment.fit import Aligner
from mas_cli.alignment.job import describe, make_directions
from mas_cli.alignment.methods import METHODS
from mas_cli.alignment.plan import Plan, check_models
from mas_cli.alignment.settings import swapped
from mas_cli.console import console
from mas_cli.models import build_model
from mas_cli.pipeline.plan import Job, PipelinePlan
from mas_cli.tasks import task_from_config
from mas_cli.training import next_token_loss, resolve_device
from mas_cli.zoo import FrozenModel

CALIBRATION_ITEMS = 64  # counterfactuals per direction while timing (a step's cost does not depend on it)
TIMED_STEPS = 3  # after one warm-up step; the median is taken


def seconds_per_call(step, steps: int = TIMED_STEPS, warmup: int = 1) -> float:
    """Median seconds of `steps` calls after `warmup` calls (first-call allocations, lazy setup)."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def validation_share(budget) -> float:
    """Validation's cost as a fraction of training: val_size items every val_every steps, each a
    third of a trained item's forward + backward."""
    return budget.val_size / (3 * budget.batch_size * budget.val_every)


def _fresh_model(cfg: DictConfig, device):
    task = task_from_config(cfg.task)
    torch.manual_seed(0)  # any weights do: a step's cost does not depend on them
    return task, build_model(cfg.arch.name, len(task.vocab), cfg.arch).to(device)


def train_step_seconds(cfg: DictConfig, device) -> float:
    task, model = _fresh_model(cfg, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.budget.lr)
    tokens = torch.from_numpy(task.sample(cfg.budget.batch_size, np.random.default_rng(0)).tokens).to(device)

    def step() -> None:
        optimizer.zero_grad()
        next_token_loss(model, tokens).backward()
        optimizer.step()

    return seconds_per_call(step)


class DirectionCosts:
    """Seconds per step of one direction, measured once per kind and reused for every fit."""

    def __init__(self, train_configs: dict, device):
        self.train_configs, self.device, self.known = train_configs, device, {}

    def _model(self, spec) -> FrozenModel:
        task, model = _fresh_model(self.train_configs[spec], self.device)
        return FrozenModel(spec, None, model.eval().requires_grad_(False), task, {})

    def of(self, job_cfg: DictConfig, source, target, latent: bool) -> float:
        arch_key = [OmegaConf.to_yaml(self.train_configs[s].arch) + s.task for s in (source, target)]
        key = (*arch_key, job_cfg.site, latent, "+".join(swapped(job_cfg)))
        if key not in self.known:
            self.known[key] = self._measure(job_cfg, source, target, latent)
        return self.known[key]

    def _measure(self, job_cfg: DictConfig, source, target, latent: bool) -> float:
        # fewer items and a smaller latent bank than the job's: only the step is timed, and it
        # costs the same whatever the data sizes
        cfg = OmegaConf.merge(job_cfg, {"budget": {"align": {"train_size": CALIBRATION_ITEMS}}})
        cfg.budget.align.val_size = CALIBRATION_ITEMS
        if "cl" in cfg:
            cfg.cl.bank_size = CALIBRATION_ITEMS
        cfg.normalize = "none"  # a fixed shift and scale: the same cost as fitting them first
        models = [self._model(source), self._model(target)]
        plan = Plan(cfg, [source, target], [(0, 1)], [(0, 1)] if latent else [], run_dir=None)
        plan = plan.with_k(check_models(cfg, [describe(m, cfg.site, cfg.causal_model) for m in models]))
        aligner = Aligner(plan.cfg, models, make_directions(plan, models, self.device), self.device)
        return seconds_per_call(aligner.train_step)


def align_step_seconds(job: Job, costs: DirectionCosts) -> float:
    """One step of a fit: the sum of its directions' costs (the plan the pipeline planner made)."""
    plan = job.plan
    method = METHODS[plan.cfg.method]
    total = 0.0
    for pair in plan.pairs:
        latent = pair in plan.latent_pairs
        if latent and method.latent_weight == 0:
            continue  # the accessible-only ablation: these directions are not trained at all
        total += costs.of(plan.cfg, plan.specs[pair[0]], plan.specs[pair[1]], latent)
    return total


def clock(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{max(minutes, 1)} min"


def print_estimate(plan: PipelinePlan, device_name: str) -> float:
    """Print each stage's jobs and their cost at the step caps; returns the total in seconds."""
    device = resolve_device(device_name)
    train_configs = {spec: job.config for spec, job in zip(plan.models, plan.train, strict=True)}
    total = 0.0
    rows = Counter()
    measured = {}  # models of one task, arch and budget (other seeds) cost the same per step
    for job in plan.train:
        if job.done:
            continue
        cfg = job.config
        shape = OmegaConf.to_yaml(OmegaConf.masked_copy(cfg, ["task", "arch", "budget"]))
        if shape not in measured:
            measured[shape] = train_step_seconds(cfg, device) * (1 + validation_share(cfg.budget))
        per_step = measured[shape]
        rows[("train", f"{cfg.task.name}/{cfg.arch.name}", cfg.budget.max_steps, round(per_step * 1e3, 1))] += 1
        total += per_step * cfg.budget.max_steps
    costs = DirectionCosts(train_configs, device)
    for job in plan.align:
        if job.done or job.stage != "align":
            continue
        align = job.config.budget.align
        per_step = align_step_seconds(job, costs) * (1 + validation_share(align))
        what = f"{job.config.method} {'+'.join(s.arch for s in job.specs)}"
        rows[("align", what, align.max_steps, round(per_step * 1e3, 1))] += 1
        total += per_step * align.max_steps
    done = sum(job.done for job in [*plan.train, *plan.align])
    similarity = sum(job.stage == "similarity" and not job.done for job in plan.align)
    console.print("| stage | jobs | what | step cap | ms/step | at the caps |")
    console.print("|---|---|---|---|---|---|")
    for (stage, what, cap, ms), n in rows.items():
        console.print(f"| {stage} | {n} | {what} | {cap:,} | {ms} | {clock(n * cap * ms / 1e3)} |")
    console.print(f"{done} job(s) already in the root (reused)")
    console.print(f"{similarity} similarity job(s) not counted (seconds each)")
    console.print(f"at most {clock(total)}, one job at a time on {torch.get_num_threads()} thread(s), every job")
    console.print("at its step cap (training and fits usually stop well before); nothing was run")
    return total
