"""What aligning m models costs: one joint MAS fit against pairwise model stitching (claim C10).

    python scripts/bench_cost.py [--threads 2] [--steps 20] [--models 2 3 4 5 6]

MAS fits one alignment function per model (m maps) and trains every ordered direction among the
m models, within-model ones included (m² directions), in one fit. Pairwise stitching fits one
model a → b per ordered pair of different models: m(m−1) fits, each with the two functions of its
pair (the source's map and the target's inverse, alignment/methods.py). For m = 2 … 6 GRUs of
width 128 (random weights: a step's cost does not depend on them; hidden site, Multi-Object
counterfactuals, batch 128 per direction, MAS at k 16, stitching at full width) this prints, as
a markdown table for docs/BENCHMARKS.md: the maps and their parameters each approach trains, the
milliseconds of one MAS step, of one stitching step, and of one step of every stitching fit
(m(m−1) times the one measured: the fits have the same shapes), each the median of `--steps`
steps after warm-up, MAS and stitching timed in alternating rounds. Steps to convergence differ
between the two and are not part of this table (docs/BENCHMARKS.md has measured fits).
"""

from __future__ import annotations

import argparse
import functools
import statistics

import torch
from bench_align import align_cfg, fit_step, random_model, time_it

from mas_cli.alignment.directions import build_directions
from mas_cli.alignment.fit import Aligner
from mas_cli.alignment.swaps import Block
from mas_cli.tasks import CountingTask

K, WIDTH = 16, 128


def aligner(models, pairs, method: str, k: int) -> Aligner:
    cfg = align_cfg(k)
    cfg.method = method
    directions = build_directions(models, pairs, "hidden", [Block("count", 0, k)], cfg.budget.align, 0, "cpu")
    return Aligner(cfg, models, directions, "cpu")


def parameters(fitted: Aligner) -> int:
    return sum(p.numel() for p in fitted.functions.parameters() if p.requires_grad)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models", type=int, nargs="+", default=[2, 3, 4, 5, 6])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = CountingTask()
    every = [random_model("gru", task, seed) for seed in range(max(args.models))]
    stitch = aligner(every[:2], [(0, 1)], "stitch", WIDTH)  # every stitching fit has this shape
    columns = ["m", "MAS maps (parameters)", "stitching fits × maps (parameters)", "MAS step, ms"]
    columns += ["one stitching step, ms", "every stitching fit, one step each, ms", "ratio"]
    print("| " + " | ".join(columns) + " |")
    print("|---|---|---|---|---|---|---|")
    for m in args.models:
        models = every[:m]
        joint = aligner(models, [(s, t) for s in range(m) for t in range(m)], "mas", K)
        times: dict[str, list[float]] = {"mas": [], "stitch": []}
        for _ in range(args.rounds):
            times["mas"].append(time_it(functools.partial(fit_step, joint), args.steps))
            times["stitch"].append(time_it(functools.partial(fit_step, stitch), args.steps))
        mas_ms, stitch_ms = (1000 * statistics.median(times[name]) for name in ("mas", "stitch"))
        fits = m * (m - 1)
        print(
            f"| {m} | {m} ({parameters(joint):,}) | {fits} × 2 ({fits * parameters(stitch):,}) | {mas_ms:.1f} "
            f"| {stitch_ms:.1f} | {fits * stitch_ms:.1f} | {fits * stitch_ms / mas_ms:.2f} |"
        )


if __name__ == "__main__":
    main()
