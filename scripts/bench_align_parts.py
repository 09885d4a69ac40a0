"""Where an alignment step's time goes: each part of `scripts/bench_align.py`'s fast step timed on
its own, beside the whole step, in alternating rounds.

    python scripts/bench_align_parts.py [--threads 2] [--steps 20] [--rounds 3]

Same setting as bench_align.py (GRU ↔ LSTM, width 128, batch 128 per direction, k 32, four
directions, random weights). For each target, on one step's real batches: the interchange, the
suffix plan (numpy), the frozen-RNN suffix kernel, the readout MLP and the loss, each forward and
backward (to the part's own inputs) with nothing else around it; then the aligned rows (Cayley),
their backward and Adam. The sum of the parts is what the step would cost with no glue between
them (gathers, concatenations, autograd bookkeeping, Python).

Then the matmuls alone: each packed step's recurrent matmul forward and backward (as torch.mm
from a Python loop, ~5 µs a call more than the kernel's own), and the readout's four matmuls, at
the step's shapes, with their GFLOP/s beside the 2048³ matmul peak of the same run; last, the
step time that bench_align.py's "60 % of peak" asks for (its FLOP count includes the token input
projections, which the kernel looks up from a table instead).
"""

from __future__ import annotations

import statistics

import torch
from bench_align import fit_step, matmul_gflops, per_token_flops, step_arguments, the_setting, time_it

from mas_cli.alignment import targets
from mas_cli.alignment.fit import Aligner, _detached
from mas_cli.alignment.targets import _concat, per_part_loss
from mas_cli.continuation.recurrent import SuffixPlan, suffix_kernel

WHOLE = "the whole step (Aligner.train_step)"


def backward_of(make):
    """A step function: build the part's output afresh and run backward from a fixed gradient."""

    def step():
        out = make()
        out.backward(torch.ones_like(out) / out.numel())

    return step


def target_parts(aligner: Aligner, target: int, batches, rows) -> tuple[dict, dict, int]:
    """The timed parts of one target's share; the matmuls of its suffix kernel and of its readout
    alone (a step function and its FLOPs each); and the model FLOPs bench_align.py counts for it."""
    model = aligner.models[target].model
    block = batches[0][0].block
    leaves = [r.block(block.first, block.stop) for r in rows]

    def interchange():
        return torch.cat(
            [aligner.interchange(b.target_state, b.source_state, leaves[target], leaves[d.source]) for d, b in batches]
        )

    batch = _concat([b for _, b in batches])
    state = interchange().detach().requires_grad_()
    plan = SuffixPlan.of(batch)
    kernel = suffix_kernel(model)
    with torch.no_grad():
        packed = kernel.run(state, plan.tokens, plan.batch_sizes, plan.order, plan.scored)
    first = (batch.labels[:, 0] >= 0).nonzero()[:, 0]  # rows whose state's own prediction is scored
    features = torch.cat([model.state_features(state).index_select(0, first), packed]).detach().requires_grad_()
    logits = model.readout(features).detach().requires_grad_()
    labels = torch.cat([batch.labels[:, 0].index_select(0, first), plan.labels])
    found = targets.Predictions(logits, labels, torch.zeros_like(labels), labels, labels)
    parts = {
        "interchange": backward_of(interchange),
        "suffix plan (numpy)": lambda: SuffixPlan.of(batch),
        "suffix kernel": backward_of(lambda: kernel.run(state, plan.tokens, plan.batch_sizes, plan.order, plan.scored)),
        "readout MLP": backward_of(lambda: model.readout(features)),
        "loss": backward_of(lambda: per_part_loss(found, 1).sum()),
    }

    first_layer, last_layer = model.readout.net[0], model.readout.net[3]
    hidden = torch.empty(len(features), first_layer.out_features)
    grad_logits = torch.empty(len(features), last_layer.out_features)

    def readout_matmuls():
        torch.addmm(first_layer.bias, features.detach(), first_layer.weight.T, out=hidden)
        torch.addmm(last_layer.bias, hidden, last_layer.weight.T)
        (grad_logits @ last_layer.weight) @ first_layer.weight

    sizes = plan.batch_sizes
    gates, h = torch.empty(sizes[0], kernel.w_hh_t.shape[1]), torch.empty(sizes[0], kernel.w_hh.shape[1])

    def suffix_matmuls():
        for size in sizes:
            torch.mm(h[:size], kernel.w_hh_t, out=gates[:size])
        for size in reversed(sizes):
            torch.mm(gates[:size], kernel.w_hh, out=h[:size])

    step, readout = per_token_flops(model)
    matmuls = {  # forward + the input-gradient backward
        "suffix kernel": (suffix_matmuls, 2 * 2 * kernel.w_hh.numel() * sum(sizes)),
        "readout MLP": (readout_matmuls, 2 * readout * len(features)),
    }
    return parts, matmuls, 2 * (step * sum(sizes) + readout * len(features))


def main() -> None:
    args = step_arguments(__doc__.splitlines()[0]).parse_args()
    torch.set_num_threads(args.threads)
    _, models, aligner = the_setting(args.k)
    rows = [_detached(r) for r in aligner.aligned_rows()]  # leaves: each timed backward stops at them
    by_target: dict[int, list] = {}
    for i, d in enumerate(aligner.directions):
        by_target.setdefault(d.target, []).append((d, aligner._train_batch(i, d)))

    parts, matmuls, counted = {}, {}, 0
    for target, batches in by_target.items():
        arch = models[target].spec.arch
        found, matmul, work = target_parts(aligner, target, batches, rows)
        parts |= {f"{arch} target: {name}": step for name, step in found.items()}
        matmuls |= {f"{arch} target: {name}'s matmuls": pair for name, pair in matmul.items()}
        counted += work

    def rows_and_adam():
        fresh = aligner.aligned_rows()
        loss = sum((r.rows.sum() + r.center.sum()) * 1e-6 for r in fresh)
        aligner.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        aligner.optimizer.step()

    parts["aligned rows (Cayley), their backward, Adam"] = rows_and_adam
    timed = {**parts, **{name: step for name, (step, _) in matmuls.items()}, WHOLE: lambda: fit_step(aligner)}
    times: dict[str, list[float]] = {name: [] for name in timed}
    peaks = []
    for _ in range(args.rounds):
        for name, step in timed.items():
            times[name].append(time_it(step, args.steps))
        peaks.append(matmul_gflops())
    ms = {name: statistics.median(t) * 1e3 for name, t in times.items()}
    peak = statistics.median(peaks)
    alone = sum(ms[name] for name in parts)

    print(f"fp32 matmul (2048²·2048) on {args.threads} threads: {peak:.0f} GFLOP/s (median of {args.rounds} rounds)")
    print()
    print("| part of the step, alone (forward + backward) | ms |")
    print("|---|---|")
    print("\n".join(f"| {name} | {ms[name]:.2f} |" for name in parts))
    print(f"| **the parts together** | **{alone:.1f}** |")
    print(f"| the whole step | {ms[WHOLE]:.1f} |")
    print()
    print("| matmuls alone, at the step's shapes | ms | GFLOP | GFLOP/s | of the peak |")
    print("|---|---|---|---|---|")
    for name, (_, flops) in matmuls.items():
        rate = flops / ms[name] / 1e6
        print(f"| {name} | {ms[name]:.2f} | {flops / 1e9:.2f} | {rate:.0f} | {100 * rate / peak:.0f} % |")
    total_ms, total = sum(ms[name] for name in matmuls), sum(f for _, f in matmuls.values())
    rate = total / total_ms / 1e6
    print(f"| **all of them** | **{total_ms:.1f}** | {total / 1e9:.2f} | {rate:.0f} | {100 * rate / peak:.0f} % |")
    print()
    print(f"glue (the whole step − its parts together): {ms[WHOLE] - alone:.1f} ms")
    print(
        f"60 % of the peak as bench_align.py counts the step ({counted / 1e9:.2f} GFLOP): "
        f"≤ {counted / (0.6 * peak * 1e9) * 1e3:.1f} ms a step"
    )


if __name__ == "__main__":
    main()
