"""GPU speed, side by side with this machine's CPU in the same run (needs CUDA; ~1 min).

    python scripts/bench_gpu.py [--threads 2] [--steps 20]

Prints a markdown table (for docs/BENCHMARKS.md): median ms per step on the CPU and on the GPU,
and the ratio, for
  * the alignment step of scripts/bench_align.py (GRU ↔ LSTM, batch 128 per direction, k 32,
    4 directions) at widths 128 and 512: on the CPU the frozen-RNN suffix kernel runs, on the
    GPU the models' own cuDNN kernels (alignment/targets.py picks);
  * a training step (next-token loss, Adam) of a GRU, an LSTM and a transformer, width 128,
    batch 128 (the same batches on both devices).
GPU times are taken after `torch.cuda.synchronize()`, so they include the kernels' work.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))  # the other benchmark scripts
from bench_align import align_cfg, time_it  # noqa: E402

from mas_cli.alignment.directions import build_directions  # noqa: E402
from mas_cli.alignment.fit import Aligner  # noqa: E402
from mas_cli.alignment.swaps import Block  # noqa: E402
from mas_cli.models import build_model  # noqa: E402
from mas_cli.specs import ModelSpec  # noqa: E402
from mas_cli.tasks import CountingTask  # noqa: E402
from mas_cli.training import next_token_loss  # noqa: E402
from mas_cli.zoo import FrozenModel  # noqa: E402

BATCH, K = 128, 32


def timed(step, device: torch.device, steps: int) -> float:
    """Median seconds per call (bench_align's timing), waiting for the GPU after each call."""

    def synced() -> None:
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    return time_it(synced, steps)


def align_step(width: int, device: torch.device):
    task = CountingTask()
    models = []
    for seed, arch in enumerate(("gru", "lstm")):
        torch.manual_seed(seed)
        model = build_model(arch, len(task.vocab), {"width": width}).to(device).eval().requires_grad_(False)
        models.append(FrozenModel(ModelSpec(task.name, arch, seed), None, model, task, {}))
    pairs = [(0, 0), (0, 1), (1, 0), (1, 1)]
    cfg = align_cfg(K)
    directions = build_directions(models, pairs, "hidden", [Block("count", 0, K)], cfg.budget.align, 0, device)
    return Aligner(cfg, models, directions, device).train_step


def train_step(arch: str, device: torch.device):
    task = CountingTask(void_p=0.2 if arch == "transformer" else 0.0)
    batches = [torch.from_numpy(task.sample(BATCH, np.random.default_rng(i)).tokens).to(device) for i in range(8)]
    torch.manual_seed(0)
    return adam_step(build_model(arch, len(task.vocab), {"width": 128}).to(device), batches, 1e-3)


def adam_step(model, batches: list[torch.Tensor], lr: float):
    """One Adam step on the next-token loss, cycling through `batches`, per call."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    count = iter(range(10**9))

    def step() -> None:
        loss = next_token_loss(model, batches[next(count) % len(batches)])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("bench_gpu: no CUDA device is visible; run it on a GPU machine")
    torch.set_num_threads(args.threads)
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    cases = {f"align step, width {w}": (lambda d, w=w: align_step(w, d)) for w in (128, 512)}
    cases |= {f"train step, {arch}": (lambda d, a=arch: train_step(a, d)) for arch in ("gru", "lstm", "transformer")}
    print(f"CPU: {args.threads} threads; GPU: {torch.cuda.get_device_name()}\n")
    print("| step (batch 128) | CPU ms / step | GPU ms / step | GPU speed-up |")
    print("|---|---|---|---|")
    for name, make in cases.items():
        on_cpu, on_gpu = timed(make(cpu), cpu, args.steps), timed(make(gpu), gpu, args.steps)
        print(f"| {name} | {on_cpu * 1e3:.1f} | {on_gpu * 1e3:.1f} | {on_cpu / on_gpu:.1f}× |")


if __name__ == "__main__":
    main()
