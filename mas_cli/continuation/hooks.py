"""The generic path: any nn.Module, its site a named module reached with forward hooks.

Alignment needs two things of a model: the site's activations at given positions (`collect`),
and the model run with the site replaced at given positions (`patched`). Both work on any module
whose forward maps tokens [B, L] to logits [B, L, V], with the site named by a module path and a
port: the module's output (a forward hook; a tuple output's first element, as HuggingFace decoder
layers return) or its input (a forward pre-hook: the first positional argument, or the
`hidden_states` keyword).

A site's value comes in one of two shapes, and a position means what each shape says:

    [B, L, D]   the module runs once over the whole sequence (an embedding, a transformer
                layer): position t is [:, t]
    [B, D]      the module runs once per position, in order (a recurrent cell): position t
                is the t-th call

Collecting stops the forward pass as soon as every asked position has been seen, so reading an
early site costs only the layers below it. Patching is out of place (`index_put`, `where`), so
gradients flow from the logits back into the values written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class SiteRef:
    """Where a site is: a module path inside the model's site root, and which side of it."""

    path: str  # e.g. "cell", "blocks.0", "model.layers.1"
    port: str = "output"  # output | input

    def __str__(self) -> str:
        return self.path if self.port == "output" else f"{self.path}.input"


class _Seen(Exception):
    """Raised inside a hook once collecting has what it needs: the rest of the forward is skipped."""


def _first(value):
    return value[0] if isinstance(value, tuple) else value


def _replace_first(value, new):
    return (new, *value[1:]) if isinstance(value, tuple) else new


@contextmanager
def _hook(module: nn.Module, port: str, on_value: Callable[[torch.Tensor, int], torch.Tensor | None]) -> Iterator:
    """Call on_value(site value, call index) at every call of `module`; a tensor it returns
    replaces the value."""
    calls = [0]

    def after(_module, _args, output):
        new = on_value(_first(output), calls[0])
        calls[0] += 1
        return None if new is None else _replace_first(output, new)

    def before(_module, args, kwargs):
        if args:
            new = on_value(args[0], calls[0])
            calls[0] += 1
            return None if new is None else ((new, *args[1:]), kwargs)
        new = on_value(kwargs["hidden_states"], calls[0])
        calls[0] += 1
        return None if new is None else (args, {**kwargs, "hidden_states": new})

    if port == "output":
        handle = module.register_forward_hook(after)
    else:
        handle = module.register_forward_pre_hook(before, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


def collect(
    run: Callable[[torch.Tensor], object], module: nn.Module, port: str, tokens: torch.Tensor, positions=None
) -> torch.Tensor:
    """The site's value at positions[b] of each row b, [B, D] (positions None: at every
    position, [B, L, D]); `run(tokens)` is the model's forward."""
    whole: list[torch.Tensor] = []  # the one value over the sequence
    steps: list[torch.Tensor] = []  # one value per position
    last = tokens.shape[1] - 1 if positions is None else int(positions.max())

    def on_value(value: torch.Tensor, call: int):
        if value.dim() >= 3:
            whole.append(value)
            raise _Seen
        steps.append(value)
        if call >= last:
            raise _Seen

    with _hook(module, port, on_value), suppress(_Seen):
        run(tokens)
    if not whole and not steps:
        raise ValueError("the site's module never ran in the model's forward pass")
    values = whole[0] if whole else torch.stack(steps, 1)  # [B, L, D]
    if positions is None:
        return values
    return values[torch.arange(len(values), device=values.device), positions]


def patched(
    run: Callable[[torch.Tensor], torch.Tensor],
    module: nn.Module,
    port: str,
    tokens: torch.Tensor,
    rows: torch.Tensor,
    positions: torch.Tensor,
    values: torch.Tensor,
) -> torch.Tensor:
    """`run(tokens)` (the logits) with the site's value at (rows[i], positions[i]) replaced by
    values[i] ([P] pairs, values [P, D])."""

    at_call: dict[int, torch.Tensor] = {}  # a per-position site: call -> indices written there, found once

    def on_value(value: torch.Tensor, call: int):
        if value.dim() >= 3:
            return value.index_put((rows, positions), values.to(value.dtype))
        if not at_call:  # one pass over the positions, not a comparison (and a sync) at every call
            order = torch.argsort(positions, stable=True)
            found, counts = torch.unique_consecutive(positions[order], return_counts=True)
            at_call.update(zip(found.tolist(), order.split(counts.tolist())))
        here = at_call.get(call)
        if here is None:
            return None
        return value.index_put((rows[here],), values[here].to(value.dtype))

    with _hook(module, port, on_value):
        return run(tokens)
