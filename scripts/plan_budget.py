"""What a pipeline would cost on this machine, before running it: every job's step cap and its
time per step, measured here on randomly initialised models of the job's own shapes.

    python scripts/plan_budget.py experiment=baselines budget=paper [--device cuda] [--threads 2]
        [--train-steps N] [--align-steps N]

The pipeline's real planner lists the jobs (as `mas pipeline <overrides>` would, on an empty
root). Then, for each distinct job shape, a few optimiser steps are timed:
  * training: Adam on the next-token loss of the job's task, arch and batch size;
  * alignment: `Aligner.train_step` of the job's method over the job's models (a step costs the
    same whatever the weights and whatever the data size, so tiny data stands in for the real).
Validation is added as the share of forward passes it costs: `val_size` items every `val_every`
steps, at a third of a training step's cost per item (forward only, no backward).

Prints a markdown table per stage (jobs, step cap, ms per step, hours at the cap, and hours at
`--train-steps` / `--align-steps` when given: a step count you expect a fit to stop at) and the
counterfactual data each alignment job holds at the budget's sizes (grown linearly from the
measured data). Times are for one job at a time on `--threads` threads.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import defaultdict
from dataclasses import fields
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from mas_cli.alignment.fit import Aligner
from mas_cli.alignment.job import describe, make_directions
from mas_cli.alignment.plan import check_models, plan_alignment
from mas_cli.composition import compose_config
from mas_cli.errors import ConfigError
from mas_cli.models import build_model
from mas_cli.pipeline.plan import plan_pipeline
from mas_cli.tasks import task_from_config
from mas_cli.zoo import FrozenModel

sys.path.insert(0, str(Path(__file__).parent))  # the other benchmark scripts
from bench_gpu import adam_step, timed  # noqa: E402

CALIBRATION_ITEMS = 256  # counterfactuals per direction while timing (the budget's sizes are scaled to)


def validation_share(budget, batch_size: int) -> float:
    """Validation's cost as a fraction of training: forward passes over val_size items every
    val_every steps, each item a third of a trained item's forward + backward."""
    return budget.val_size / (3 * batch_size * budget.val_every)


def train_seconds(cfg, device: torch.device, steps: int) -> float:
    task = task_from_config(cfg.task)
    torch.manual_seed(0)
    model = build_model(cfg.arch.name, len(task.vocab), cfg.arch).to(device)
    rng = np.random.default_rng(0)
    batches = [torch.from_numpy(task.sample(cfg.budget.batch_size, rng).tokens).to(device) for _ in range(4)]
    return timed(adam_step(model, batches, cfg.budget.lr), device, steps)


def random_models(specs, train_configs, device) -> list[FrozenModel]:
    models = []
    for spec in specs:
        cfg = train_configs[spec]
        task = task_from_config(cfg.task)
        torch.manual_seed(spec.seed)
        model = build_model(cfg.arch.name, len(task.vocab), cfg.arch).to(device).eval().requires_grad_(False)
        models.append(FrozenModel(spec, None, model, task, {}))
    return models


def data_bytes(directions) -> int:
    total = 0
    for d in directions:
        for data in (d.train, d.val):
            for f in fields(data.items):
                value = getattr(data.items, f.name)
                total += value.numel() * value.element_size() if isinstance(value, torch.Tensor) else 0
    return total


def align_cost(job, train_configs, device, steps: int) -> tuple[float, float]:
    """(seconds per step, bytes of counterfactual data at the budget's sizes) of one align job."""
    cfg = OmegaConf.merge(job.config, {"budget": {"align": {"train_size": CALIBRATION_ITEMS}}})
    cfg.budget.align.val_size = CALIBRATION_ITEMS
    plan = plan_alignment(cfg)
    models = random_models(plan.specs, train_configs, device)
    # as `mas align` does: k becomes a number (k=full: the smallest site) in the run's own config
    plan = plan.with_k(check_models(plan.cfg, [describe(m, cfg.site, cfg.causal_model) for m in models]))
    directions = make_directions(plan, models, device)
    aligner = Aligner(plan.cfg, models, directions, device)
    align = job.config.budget.align
    scale = (align.train_size + align.val_size) / (2 * CALIBRATION_ITEMS)
    return timed(aligner.train_step, device, steps), data_bytes(directions) * scale


def shape_of(job) -> tuple:
    """Jobs that cost the same per step: same method, models' archs and k."""
    archs = tuple(spec.arch for spec in job.specs)
    return (job.config.get("method", "similarity"), archs, job.config.get("k"))


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("overrides", nargs="*", help="mas pipeline overrides, e.g. experiment=baselines budget=paper")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per job shape")
    parser.add_argument("--train-steps", type=int, help="steps you expect training to stop at")
    parser.add_argument("--align-steps", type=int, help="steps you expect an alignment to stop at")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    try:
        with tempfile.TemporaryDirectory() as root:
            plan = plan_pipeline(compose_config("pipeline", [*args.overrides, f"paths.root={root}"]))
    except ConfigError as exc:  # a bad override: one line, as `mas pipeline` says it
        print(f"plan_budget: {exc}", file=sys.stderr)
        sys.exit(2)
    train_configs = {spec: job.config for spec, job in zip(plan.models, plan.train, strict=True)}
    print(f"`{' '.join(args.overrides)}` on {args.device}, {args.threads} threads, one job at a time\n")

    print("| train | jobs | step cap | ms/step | validation | h at cap | h at expected |")
    print("|---|---|---|---|---|---|---|")
    totals = defaultdict(float)
    by_arch = defaultdict(list)
    for job in plan.train:
        by_arch[(job.config.task.name, job.config.arch.name)].append(job)
    for (task, arch), jobs in by_arch.items():
        budget = jobs[0].config.budget
        per_step = train_seconds(jobs[0].config, device, args.steps) * (1 + validation_share(budget, budget.batch_size))
        at_cap = len(jobs) * budget.max_steps * per_step
        expected = len(jobs) * args.train_steps * per_step if args.train_steps else None
        totals["cap"] += at_cap
        totals["expected"] += expected or 0
        share = validation_share(budget, budget.batch_size)
        print(
            f"| {task}/{arch} | {len(jobs)} | {budget.max_steps:,} | {per_step * 1e3:.1f} | +{share:.0%} "
            f"| {hours(at_cap)} | {hours(expected) if expected else '–'} |"
        )

    print("\n| align | jobs | step cap | ms/step | data per job | h at cap | h at expected |")
    print("|---|---|---|---|---|---|---|")
    by_shape = defaultdict(list)
    for job in plan.align:
        if job.stage == "align":
            by_shape[shape_of(job)].append(job)
    for (method, archs, k), jobs in by_shape.items():
        align = jobs[0].config.budget.align
        seconds, data = align_cost(jobs[0], train_configs, device, args.steps)
        per_step = seconds * (1 + validation_share(align, align.batch_size))
        at_cap = len(jobs) * align.max_steps * per_step
        expected = len(jobs) * args.align_steps * per_step if args.align_steps else None
        totals["cap"] += at_cap
        totals["expected"] += expected or 0
        print(
            f"| {method} {'+'.join(archs)} k {k} | {len(jobs)} | {align.max_steps:,} | {per_step * 1e3:.1f} "
            f"| {data / 2**20:,.0f} MiB | {hours(at_cap)} | {hours(expected) if expected else '–'} |"
        )
    similarity = sum(job.stage == "similarity" for job in plan.align)
    print(f"\n{similarity} similarity jobs (RSA/CKA: seconds each) are not counted.")
    both = args.train_steps and args.align_steps
    expected = f"; at the expected steps: {hours(totals['expected'])} h" if both else ""
    print(f"total at the step caps: {hours(totals['cap'])} h{expected}")


if __name__ == "__main__":
    main()
