"""Training speed, side by side with a straightforward baseline, in one run.

    python scripts/bench_train.py [--threads 2] [--steps 20] [--skip-criterion]

Prints (markdown, for docs/BENCHMARKS.md):
  * the machine's fp32 matmul throughput on the same threads (2048² · 2048 matmul);
  * per-step time and achieved GFLOP/s of GRU / LSTM / transformer training at width 128,
    batch 128 (Multi-Object; the transformer with void tokens, as it trains), FLOPs counted by
    torch's FlopCounterMode over one forward + backward;
  * the same GRU trained by a per-timestep nn.GRUCell loop with the readout on every position
    (the straightforward implementation);
  * time to generate 10,000 sequences;
  * one validation pass (1,000 sequences) with the readout on scored positions only, beside the
    readout on every position;
  * wall time of `mas train task=count arch=gru` (quick budget) to the criterion, data generation
    and validation included.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from mas_cli.models import build_model
from mas_cli.tasks import CountingTask
from mas_cli.tasks.vocab import PAD
from mas_cli.training import next_token_loss

WIDTH, BATCH = 128, 128


def matmul_gflops(repeats: int = 10) -> float:
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * 2048**3 * repeats / (time.perf_counter() - start) / 1e9


def gru_cell_loss(model, cell: nn.GRUCell, tokens: torch.Tensor) -> torch.Tensor:
    """The straightforward way: one GRUCell call per time step, readout on every position."""
    x = model.embedding(tokens)
    h = x.new_zeros(len(tokens), WIDTH)
    states = []
    for t in range(tokens.shape[1]):
        h = cell(x[:, t], h)
        states.append(h)
    targets = torch.roll(tokens, -1, 1)
    targets[:, -1] = PAD
    logits = model.readout(torch.stack(states, 1))
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=PAD)


def time_steps(loss_fn, params, batches, steps: int) -> tuple[float, float]:
    """(median seconds per optimiser step, FLOPs of one step)."""
    optimizer = torch.optim.Adam(params, lr=1e-3)
    counter = FlopCounterMode(display=False)
    with counter:
        loss_fn(batches[0]).backward()
    times = []
    for i in range(steps + 3):
        start = time.perf_counter()
        loss = loss_fn(batches[i % len(batches)])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if i >= 3:  # warm-up steps excluded
            times.append(time.perf_counter() - start)
    return statistics.median(times), counter.get_total_flops()


def bench_steps(steps: int, peak: float) -> list[str]:
    rows = []
    for arch in ("gru", "lstm", "transformer"):
        task = CountingTask(void_p=0.2 if arch == "transformer" else 0.0)
        batches = [torch.from_numpy(task.sample(BATCH, np.random.default_rng(i)).tokens) for i in range(8)]
        torch.manual_seed(0)
        model = build_model(arch, len(task.vocab), {"width": WIDTH})
        seconds, flops = time_steps(lambda b, m=model: next_token_loss(m, b), model.parameters(), batches, steps)
        if arch == "lstm":  # the CPU LSTM kernel (oneDNN) is invisible to FlopCounterMode: add it
            flops += 3 * 2 * sum(b.numel() for b in batches[:1]) * 4 * (WIDTH // 2) * (WIDTH + WIDTH // 2)
        rows.append(_row(f"{arch} (mas)", seconds, flops, peak))
        if arch == "gru":
            cell = nn.GRUCell(WIDTH, WIDTH)
            params = [*model.embedding.parameters(), *cell.parameters(), *model.readout.parameters()]
            seconds, flops = time_steps(lambda b, m=model, c=cell: gru_cell_loss(m, c, b), params, batches, steps)
            rows.append(_row("gru, per-step GRUCell loop (baseline)", seconds, flops, peak))
    return rows


def _row(name: str, seconds: float, flops: float, peak: float) -> str:
    achieved = flops / seconds / 1e9
    return f"| {name} | {seconds * 1e3:.1f} | {flops / 1e9:.2f} | {achieved:.1f} | {100 * achieved / peak:.0f} % |"


@torch.no_grad()
def full_readout_accuracy(model, data) -> float:
    """Baseline validation: readout on every position, then mask (what `task_accuracy` avoids)."""
    predictions = model(data.tokens).argmax(-1)
    right = (predictions == data.targets) | ~data.scored
    return float(right.all(dim=1).float().mean())


def bench_validation(repeats: int = 5) -> str:
    from mas_cli.evaluation import EvalSet, task_accuracy

    task = CountingTask()
    torch.manual_seed(0)
    model = build_model("gru", len(task.vocab), {"width": WIDTH}).eval()
    data = EvalSet.draw(task, 1000, np.random.default_rng(0), "train", "cpu")
    assert task_accuracy(model, data)[0] == full_readout_accuracy(model, data)  # same verdicts
    timings = {}
    for name, fn in (
        ("scored positions only (mas)", task_accuracy),
        ("every position (baseline)", full_readout_accuracy),
    ):
        fn(model, data)
        start = time.perf_counter()
        for _ in range(repeats):
            fn(model, data)
        timings[name] = 1e3 * (time.perf_counter() - start) / repeats
    return "validation of 1,000 sequences, GRU width 128, readout on " + "; ".join(
        f"{name}: {ms:.0f} ms" for name, ms in timings.items()
    )


def bench_generation() -> str:
    task = CountingTask(void_p=0.2)
    start = time.perf_counter()
    task.sample(10_000, np.random.default_rng(0))
    return f"10,000 Multi-Object sequences (void_p 0.2): {1e3 * (time.perf_counter() - start):.0f} ms"


def bench_to_criterion() -> str:
    from hydra import compose, initialize_config_module

    from mas_cli.training import train_model

    with tempfile.TemporaryDirectory() as root, initialize_config_module("mas_cli.conf", version_base="1.3"):
        cfg = compose("train", [f"paths.root={root}", "task=count", "arch=gru"])
        start = time.perf_counter()
        metrics = train_model(cfg).metrics
        wall = time.perf_counter() - start
    return (
        f"GRU width 128 to criterion (quick budget): {wall:.1f} s wall, {metrics['steps']} steps, "
        f"val task acc {metrics['val_task_acc']:.4f}, trained_to_criterion {metrics['trained_to_criterion']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--skip-criterion", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    peak = matmul_gflops()
    print(f"threads {args.threads}; fp32 matmul throughput: {peak:.0f} GFLOP/s\n")
    print("| training step (width 128, batch 128) | ms/step | GFLOP/step | GFLOP/s | of matmul peak |")
    print("|---|---|---|---|---|")
    for row in bench_steps(args.steps, peak):
        print(row)
    print()
    print(bench_generation())
    print(bench_validation())
    if not args.skip_criterion:
        print(bench_to_criterion())


if __name__ == "__main__":
    main()
