"""A language model's head at scored positions only, against the head over every position.

The generic path runs a wrapped HuggingFace model to its decoder's last hidden state and applies
the LM head only where a prediction is scored (continuation/generic.py). This times one hidden-site
continuation (forward and backward to the swapped state) of a tiny GPT-2 with GPT-2's real
vocabulary (50,257 tokens), batch 128 × 40 tokens, one scored label per item (data=continuation's
items), both ways, in one run:

    .venv/bin/python scripts/bench_head.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import time
from types import SimpleNamespace

import torch

from mas_cli.continuation import continuation_for
from mas_cli.wrapped import WrappedModule


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(2)
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(n_embd=64, n_layer=2, n_head=2, n_positions=64)).eval().requires_grad_(False)
    wrapped = WrappedModule(model, {"hidden": "transformer.h.0"})
    n, length = 128, 40
    tokens = torch.randint(0, 50257, (n, length))
    tau = torch.randint(5, length - 1, (n,))
    labels = torch.full((n, length), -1)
    labels[:, 0] = tokens[torch.arange(n), tau + 1]  # column 0: the prediction at τ
    batch = SimpleNamespace(tokens=tokens, tau=tau, labels=labels)
    split = continuation_for(wrapped, "hidden", fast=False)
    whole = continuation_for(wrapped, "hidden", fast=False)
    whole.head_split, whole.run = False, wrapped  # the head over every position, then picked
    state = split.collect_at(tokens, tau)
    for name, path in (("head at scored positions", split), ("head everywhere", whole)):
        times = []
        for _ in range(args.repeats + 1):
            h = state.clone().requires_grad_(True)
            start = time.perf_counter()
            logits, target, _, _ = path.hidden(h, batch)
            torch.nn.functional.cross_entropy(logits, target).backward()
            times.append(time.perf_counter() - start)
        best = sorted(times[1:])[len(times[1:]) // 2]
        print(f"{name:26s} median {best * 1000:7.1f} ms over {args.repeats} (logits {tuple(logits.shape)})")
    print(f"logits the whole head makes: {n * length * 50257 * 4 / 2**20:.0f} MiB; at scored positions: "
          f"{n * 50257 * 4 / 2**20:.0f} MiB")  # fmt: skip


if __name__ == "__main__":
    main()
