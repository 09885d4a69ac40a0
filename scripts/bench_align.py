"""Alignment speed: one MAS optimisation step, side by side with a straightforward baseline.

    python scripts/bench_align.py [--threads 2] [--steps 20] [--k 32] [--widths 128 256 ... 4096]

Setting (issue 3): GRU ↔ LSTM, width 128, batch 128 per direction, k 32, four directions
(gru→gru, gru→lstm, lstm→gru, lstm→lstm), hidden site, swap count, Multi-Object counterfactuals.
Weights are random: a step's cost does not depend on them.

  * mas: `Aligner.train_step`, then the fit loop's memory rule (as `Aligner.run` takes a step) —
    frozen activations precomputed once, only the suffix after τ
    re-run through the frozen-RNN suffix kernel, packed by length, directions into one target
    in one call, readout on scored predictions only (uniform random batches).
  * baseline: per direction, both models re-run from position 0 with a per-step cell loop, the
    swap made inside the loop at τ, the readout on every position, loss on the scored ones.

Prints a markdown table (for docs/BENCHMARKS.md): ms per step (median of `--rounds` alternating
rounds of `--steps` steps each), the speed-up, the model
FLOPs a step does (forward + input-gradient backward, counted from the shapes it ran) and the
achieved GFLOP/s beside the machine's fp32 matmul throughput measured in the same run; the same
fast step with align_fn=gram_schmidt and linear, and without the frozen-RNN suffix kernel
(continuation/recurrent.py: the models' own packed nn.GRU / nn.LSTM instead); then a width sweep
(128 → 4096) of the alignment functions alone: the full orthogonal map (O(d³) per step) against Gram–Schmidt (O(k·d));
last, one line `align step: <ms> ms, <GFLOP/s> GFLOP/s, <pct> % of peak <GFLOP/s> GFLOP/s`.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import statistics
import time
from unittest import mock

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from mas_cli.alignment.directions import build_directions
from mas_cli.alignment.fit import Aligner
from mas_cli.alignment.interchange import swap
from mas_cli.alignment.maps import make_alignment
from mas_cli.alignment.swaps import Block
from mas_cli.continuation import continuation_for
from mas_cli.continuation import recurrent as recurrent_path
from mas_cli.continuation.hooks import patched
from mas_cli.memory import release_if_grown
from mas_cli.models import build_model
from mas_cli.pipeline.estimate import seconds_per_call
from mas_cli.specs import ModelSpec
from mas_cli.tasks import CountingTask, make_counterfactuals
from mas_cli.zoo import FrozenModel

WIDTH, BATCH = 128, 128


def matmul_gflops(size: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def random_model(arch: str, task: CountingTask, seed: int) -> FrozenModel:
    torch.manual_seed(seed)
    model = build_model(arch, len(task.vocab), {"width": WIDTH}).eval().requires_grad_(False)
    return FrozenModel(ModelSpec(task.name, arch, seed), None, model, task, {})


def per_token_flops(model) -> tuple[int, int]:
    """(recurrent step, readout) forward FLOPs per token."""
    rnn = model.rnn
    gates = 3 if isinstance(rnn, torch.nn.GRU) else 4
    step = 2 * gates * rnn.hidden_size * (rnn.input_size + rnn.hidden_size)
    first, last = model.readout.net[0], model.readout.net[3]
    return step, 2 * (first.in_features * first.out_features + last.in_features * last.out_features)


def time_it(step, steps: int) -> float:
    """Median seconds per call after three warm-up calls (the library's timer, as plan=true uses it)."""
    return seconds_per_call(step, steps, warmup=3)


def fit_step(aligner: Aligner) -> None:
    """One step as `Aligner.run` takes it: the optimiser step, then the loop's memory rule (whose
    first call sets the process's heap policy, mas_cli/memory.py)."""
    aligner.train_step()
    release_if_grown()


def align_cfg(k: int, align_fn: str = "orthogonal"):
    settings = {"train_size": 2048, "val_size": 128, "max_steps": 10**6, "batch_size": BATCH, "lr": 1e-3}
    settings.update(val_every=10**6, patience=10, min_delta=0.001, lr_factor=0.5, lr_drops=0, target_iia=0.995)
    top = {"k": k, "site": "hidden", "seed": 0, "orthogonal_map": "cayley", "normalize": "rms", "align_fn": align_fn}
    top |= {"method": "mas", "swap_by_task": {}}
    return OmegaConf.create({**top, "budget": {"align": settings}})


def generic_logits(target, source, tokens, tau, source_tokens, sigma, rows_t, rows_s):
    """Logits [B, L, V] of the target on `tokens` with its hidden site at τ swapped, everything by
    the generic hook path from position 0 (the baseline: no precomputation, no fast path)."""
    read_t, read_s = (continuation_for(m, "hidden", fast=False) for m in (target, source))
    state = swap(read_t.collect_at(tokens, tau), read_s.collect_at(source_tokens, sigma), rows_t, rows_s)
    return patched(target, read_t.module, "output", tokens, torch.arange(len(tokens)), tau, state)


PAIRS = [(0, 0), (0, 1), (1, 0), (1, 1)]  # gru→gru, gru→lstm, lstm→gru, lstm→lstm


def the_setting(k: int) -> tuple[CountingTask, list[FrozenModel], Aligner]:
    """The benchmark's fit: GRU and LSTM of random weights, the four directions, k aligned dims."""
    task = CountingTask()
    models = [random_model("gru", task, 0), random_model("lstm", task, 1)]
    cfg = align_cfg(k)
    directions = build_directions(models, PAIRS, "hidden", [Block("count", 0, k)], cfg.budget.align, 0, "cpu")
    return task, models, Aligner(cfg, models, directions, "cpu")


def step_arguments(description: str) -> argparse.ArgumentParser:
    """The options that say how a step is timed (this script and bench_align_parts.py)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    return parser


def bench(steps: int, k: int, rounds: int) -> tuple[list[str], str]:
    task, models, aligner = the_setting(k)
    directions, pairs = aligner.directions, PAIRS

    # The work one fast step does, from the batches it draws: packed suffix tokens, scored predictions.
    flops = []
    for step in range(20):
        aligner.step = step
        total = 0
        for i, d in enumerate(directions):
            batch = aligner._train_batch(i, d)
            recurrent, readout = per_token_flops(models[d.target].model)
            suffix_tokens = int((batch.extent - 1).clamp(min=1).sum())
            total += recurrent * suffix_tokens + readout * int((batch.labels >= 0).sum())
        flops.append(2 * total)  # forward + the input-gradient backward (weights are frozen)
    aligner.step = 0

    # Baseline: random batches of the same kind of items, everything from position 0.
    rng = np.random.default_rng(1)
    raw = {pair: make_counterfactuals(task, 1024, "count", np.random.default_rng([2, *pair])) for pair in pairs}
    functions = aligner.functions
    optimizer = torch.optim.Adam(functions.parameters(), lr=1e-3)

    baseline_flops = []  # forward over every position of both models, backward through the target
    for s, t in pairs:
        lengths = (raw[(s, t)].tokens != 0).sum(1).max(), (raw[(s, t)].source != 0).sum(1).max()
        rec_t, out_t = per_token_flops(models[t].model)
        rec_s, _ = per_token_flops(models[s].model)
        baseline_flops.append(BATCH * (2 * (rec_t + out_t) * int(lengths[0]) + rec_s * int(lengths[1])))

    def baseline_step():
        rows = [f.aligned(k) for f in functions]
        loss = 0
        for s, t in pairs:
            cf = raw[(s, t)]
            pick = rng.choice(len(cf), BATCH, replace=False)
            tokens = cf.tokens[pick][:, : int((cf.tokens[pick] != 0).sum(1).max())]
            sources = cf.source[pick][:, : int((cf.source[pick] != 0).sum(1).max())]
            tensors = [torch.from_numpy(a) for a in (tokens, cf.tau[pick], sources, cf.sigma[pick])]
            logits = generic_logits(models[t].model, models[s].model, *tensors, rows[t], rows[s])
            scored = torch.from_numpy(cf.label_mask[pick][:, : tokens.shape[1]])
            targets = torch.roll(tensors[0], -1, 1)
            loss = loss + F.cross_entropy(logits[scored], targets[scored])
        optimizer.zero_grad()
        (loss / len(pairs)).backward()
        optimizer.step()

    slow = time_it(baseline_step, max(3, steps // 4))
    work = statistics.mean(flops)
    # The fast step, and beside it the same step with the other alignment functions, and with
    # the models' own packed nn.GRU / nn.LSTM instead of the suffix kernel: in alternating rounds,
    # each the median of `steps` steps, with the matmul peak measured in every round (the
    # machine's speed drifts between minutes; each figure is the median over the rounds).
    variants = {"mas (`Aligner.train_step`, align_fn=orthogonal)": (aligner, contextlib.nullcontext)}
    for align_fn in ("gram_schmidt", "linear"):
        variants[f"mas, align_fn={align_fn}"] = (
            Aligner(align_cfg(k, align_fn), models, directions, "cpu"),
            contextlib.nullcontext,
        )
    variants["mas, without the suffix kernel (packed nn.GRU / nn.LSTM)"] = (
        aligner,
        lambda: mock.patch.object(recurrent_path, "suffix_kernel_runs", lambda model, state: False),
    )
    times: dict[str, list[float]] = {name: [] for name in variants}
    peaks = []
    for _ in range(rounds):
        for name, (fitted, context) in variants.items():
            with context():
                times[name].append(time_it(functools.partial(fit_step, fitted), steps))
        peaks.append(matmul_gflops())
    medians = {name: statistics.median(t) for name, t in times.items()}
    peak = statistics.median(peaks)
    fast = next(iter(medians.values()))
    rate = work / fast / 1e9
    summary = (
        f"align step: {fast * 1e3:.1f} ms, {rate:.1f} GFLOP/s, {100 * rate / peak:.0f} % of peak {peak:.0f} GFLOP/s"
    )
    return [
        f"fp32 matmul (2048²·2048) on {torch.get_num_threads()} threads: {peak:.0f} GFLOP/s "
        f"(median of {rounds} rounds: {', '.join(f'{p:.0f}' for p in peaks)})",
        "",
        f"| step (GRU↔LSTM, 4 directions, batch 128, k {k}) | ms / step | speed-up "
        "| model GFLOP / step | GFLOP/s | of matmul peak |",
        "|---|---|---|---|---|---|",
        f"| baseline: per-step loop from position 0, readout everywhere | {slow * 1e3:.1f} | 1.0× "
        f"| ≈ {sum(baseline_flops) / 1e9:.1f} | {sum(baseline_flops) / slow / 1e9:.1f} | "
        f"{100 * sum(baseline_flops) / slow / 1e9 / peak:.0f} % |",
        *(
            f"| {name} | {t * 1e3:.1f} | {slow / t:.1f}× | {work / 1e9:.2f} "
            f"| {work / t / 1e9:.1f} | {100 * work / t / 1e9 / peak:.0f} % |"
            for name, t in medians.items()
        ),
    ], summary


def function_step(functions, optimizer, h, readout, labels, k: int) -> None:
    """One step of two alignment functions on fixed states: swap both ways, read out, backward."""
    rows = [f.aligned(k) for f in functions]
    loss = sum(F.cross_entropy(swap(h[t], h[s], rows[t], rows[s]) @ readout, labels) for s, t in ((0, 1), (1, 0)))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def width_sweep(widths: list[int], k: int, steps: int) -> list[str]:
    """Step time of the alignment functions alone as the site widens: two models of width d, a
    synthetic frozen model (a fixed random linear readout of the intervened state), one
    direction each way, batch 128; forward, backward and the Adam step of the functions."""
    lines = [
        f"| width d | orthogonal (cayley), ms / step | gram_schmidt (k {k}), ms / step | ratio |",
        "|---|---|---|---|",
    ]
    generator = torch.Generator().manual_seed(0)
    for d in widths:
        readout = torch.randn(d, 16, generator=generator) / d**0.5
        h = [torch.randn(BATCH, d, generator=generator) for _ in range(2)]
        labels = torch.randint(16, (BATCH,), generator=generator)
        times = []
        for align_fn in ("orthogonal", "gram_schmidt"):
            functions = torch.nn.ModuleList(make_alignment(align_fn, d, k, "cayley", generator) for _ in range(2))
            optimizer = torch.optim.Adam(functions.parameters(), lr=1e-3)

            step = functools.partial(function_step, functions, optimizer, h, readout, labels, k)
            times.append(time_it(step, steps if d <= 1024 else 3))
        lines.append(f"| {d} | {times[0] * 1e3:.1f} | {times[1] * 1e3:.2f} | {times[0] / times[1]:.0f}× |")
    return lines


def main() -> None:
    parser = step_arguments(__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="*", default=[128, 256, 512, 1024, 2048, 4096])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    table, summary = bench(args.steps, args.k, args.rounds)
    print("\n".join(table))
    print()
    print("\n".join(width_sweep(args.widths, args.k, args.steps)))
    print()
    print(summary)  # the fast step, last so scripts can read it


if __name__ == "__main__":
    main()
