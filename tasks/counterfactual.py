"""Counterfactual sequences for interchange interventions (docs/METHODS.md § Causal models and counterfactuals).

For a base (target) sequence and a position τ, and a source sequence and a position σ: read the
source causal model's variables after it has read the token at σ, run the causal model over the
base prefix up to and including τ, overwrite the swapped variables with the source values and let
it run to EOS. The counterfactual sequence is the base prefix up to τ followed by that
continuation; the predictions it scores are the response-phase ones from τ on.

Tokens the causal model leaves to chance (demo tokens, operators, operands) are copied from the
base sequence at the same position when the program allows them there, and drawn fresh otherwise,
so a swap that changes nothing reproduces the base sequence exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Sequences, Task, right_padded
from .causal import CausalModel, Free, OutOfRange
from .vocab import EOS


@dataclass
class Counterfactuals:
    """N counterfactual items, arrays right-padded with PAD.

    tokens:     int64 [N, L]  base prefix up to τ, then the intervened continuation, then EOS
    label_mask: bool  [N, L]  predictions scored for IIA: response-phase ones at positions ≥ τ
    base, source:  int64 [N, Lb], [N, Ls]  the un-intervened sequences
    tau, sigma:    int64 [N]  intervention positions in base and source
    values:     the intervened causal state at τ (what a matching natural latent must hold)
    before:     the base's own causal state at τ, before the swap
    """

    tokens: np.ndarray
    label_mask: np.ndarray
    base: np.ndarray
    source: np.ndarray
    tau: np.ndarray
    sigma: np.ndarray
    variable: str
    values: dict[str, np.ndarray]  # the target causal model's variables at τ after the swap, [N] each
    before: dict[str, np.ndarray]  # the same variables at τ before the swap (the base's own)

    def __len__(self) -> int:
        return len(self.tokens)


def _pick(allowed: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One uniformly chosen True column per row (-1 where a row has none)."""
    keys = np.where(allowed, rng.random(allowed.shape), -1.0)
    picked = keys.argmax(axis=1)
    return np.where(allowed.any(axis=1), picked, -1)


def intervened_state(
    model: CausalModel,
    base: np.ndarray,
    base_quantity: int,
    tau: int,
    source: np.ndarray,
    source_quantity: int,
    sigma: int,
    variable: str,
    source_model: CausalModel | None = None,
    source_variable: str | None = None,
) -> dict:
    """The base's causal state after reading base[tau], with `variable` overwritten by the
    source's value after source[sigma] — of `source_variable` when given (a cross-task map such as
    count -> cumu_val), else of the same variable."""
    state = model.trace(base[: tau + 1], int(base_quantity))[tau]
    source_model = model if source_model is None else source_model
    source_state = source_model.trace(source[: sigma + 1], int(source_quantity))[sigma]
    if source_variable is not None and source_variable != variable:
        state[variable] = source_state[source_variable]
        return state
    state.update({key: source_state[key] for key in model.swap_keys(variable)})
    return state


def continue_from(
    model: CausalModel, state: dict, base: np.ndarray, tau: int, rng: np.random.Generator, max_length: int = 512
) -> list[int]:
    """base[:tau+1], then what `model` emits from `state` up to EOS."""
    out = [int(t) for t in base[: tau + 1]]
    while out[-1] != EOS:
        emitted = model.emit(state)
        if isinstance(emitted, Free):
            at = len(out)
            reuse = at < len(base) and int(base[at]) in emitted.choices
            emitted = int(base[at]) if reuse else emitted.sample(rng)
        out.append(emitted)
        if len(out) > max_length:
            raise OutOfRange(f"counterfactual ran past {max_length} tokens without EOS")
        if emitted != EOS:
            state = model.read(state, emitted)
    return out


def make_counterfactuals(
    task: Task,
    n: int,
    variable: str,
    rng: np.random.Generator,
    causal_model: str | None = None,
    same_position: bool = False,
    same_phase: bool = False,
    source_task: Task | None = None,
    source_variable: str | None = None,
) -> Counterfactuals:
    """n counterfactuals swapping `variable` ('full' = every variable) from source into base.

    Bases come from `task`, sources from `source_task` (default `task`; e.g. a Mod-task source
    aligned with a Multi-Object target), each read by its own causal model.
    same_position: σ = τ (the embed site intervenes on every position up to τ of both).
    same_phase: σ and τ in the same phase (the context-distributed hypothesis test).
    source_variable: the source's variable whose value `variable` takes (a cross-task map); items
    whose value the base task cannot express are redrawn, so only values both tasks hold remain.
    Raises ValueError when no item can be drawn at all.
    """
    source_task = task if source_task is None else source_task
    model = task.causal_model(causal_model)
    source_model = source_task.causal_model(causal_model)
    model.swap_keys(variable)  # fails early, with the choices, on an unknown variable
    source_model.swap_keys(variable if source_variable is None else source_variable)
    rows: list[tuple] = []
    max_length = 4 * max(task.max_length, source_task.max_length) + 64
    models, barren_rounds = (model, source_model), 0
    while len(rows) < n:
        need = n - len(rows)
        base, source = task.sample(need, rng, "all"), source_task.sample(need, rng, "all")
        tau, sigma = _positions(
            (task, source_task), (variable, source_variable or variable), base, source, rng, same_position, same_phase
        )
        drawn = list(_draw_items(models, (variable, source_variable), base, source, tau, sigma, rng, max_length))
        barren_rounds = 0 if drawn else barren_rounds + 1
        if barren_rounds >= 20:  # e.g. a cross-task map between variables with no shared values
            raise ValueError(
                f"no counterfactual swapping {source_variable or variable} into {variable} can be expressed"
            )
        rows.extend(drawn)
    return _stack(task, rows[:n], variable, model.variables)


def _positions(tasks, variables, base: Sequences, source: Sequences, rng, same_position, same_phase):
    """τ and σ: steps that set the swapped variable in base and source (each task's own notion)."""
    (task, source_task), (variable, source_variable) = tasks, variables
    base_ok = task.eligible_positions(base.tokens, variable)
    source_ok = source_task.eligible_positions(source.tokens, source_variable)
    if same_position:
        width = min(base_ok.shape[1], source_ok.shape[1])
        both = base_ok[:, :width] & source_ok[:, :width]
        if same_phase:
            both &= task.phase_of(base.tokens)[:, :width] == source_task.phase_of(source.tokens)[:, :width]
        tau = _pick(both, rng)
        return tau, tau
    tau = _pick(base_ok, rng)
    if same_phase:
        base_phase = np.take_along_axis(task.phase_of(base.tokens), tau[:, None], 1)
        source_ok &= source_task.phase_of(source.tokens) == base_phase
    return tau, _pick(source_ok, rng)


def _draw_items(models, variables, base, source, tau, sigma, rng, max_length):
    model, source_model = models
    variable, source_variable = variables
    for i in range(len(base)):
        if tau[i] < 0 or sigma[i] < 0:
            continue  # no admissible pair of positions; the caller draws a fresh pair
        b, s = base.tokens[i, : base.lengths[i]], source.tokens[i, : source.lengths[i]]
        before = model.trace(b[: tau[i] + 1], int(base.quantity[i]))[tau[i]]
        before = tuple(before[v] for v in model.variables)
        state = intervened_state(
            model, b, base.quantity[i], tau[i], s, source.quantity[i], sigma[i], variable, source_model, source_variable
        )
        try:
            tokens = continue_from(model, state, b, tau[i], rng, max_length)
        except OutOfRange:
            continue  # the swapped values cannot be expressed by this task; draw another
        yield tokens, b, s, tau[i], sigma[i], tuple(state[v] for v in model.variables), before


def _stack(task: Task, rows: list[tuple], variable: str, variables: tuple[str, ...]) -> Counterfactuals:
    tokens = right_padded([r[0] for r in rows])
    tau = np.array([r[3] for r in rows], dtype=np.int64)
    after_tau = np.arange(tokens.shape[1])[None, :] >= tau[:, None]
    return Counterfactuals(
        tokens=tokens,
        label_mask=task.response_mask(tokens) & after_tau,
        base=right_padded([r[1] for r in rows]),
        source=right_padded([r[2] for r in rows]),
        tau=tau,
        sigma=np.array([r[4] for r in rows], dtype=np.int64),
        variable=variable,
        values={name: np.array([_value(r[5][j]) for r in rows], dtype=np.int64) for j, name in enumerate(variables)},
        before={name: np.array([_value(r[6][j]) for r in rows], dtype=np.int64) for j, name in enumerate(variables)},
    )


UNSET = -2  # a variable with no value yet (e.g. arithmetic's op before the first operator)


def _value(v) -> int:
    return UNSET if v is None else int(v)


def natural_values(model: CausalModel, sequences: Sequences) -> dict[str, np.ndarray]:
    """The causal model's variables after each token of natural sequences: [N, L] per variable,
    -1 where there is no state (the EOS position and padding), UNSET where a variable has no value."""
    n, width = sequences.tokens.shape
    values = {name: np.full((n, width), -1, dtype=np.int64) for name in model.variables}
    for i in range(n):
        for at, state in enumerate(model.trace(sequences.tokens[i, : sequences.lengths[i]], sequences.quantity[i])):
            for name in model.variables:
                values[name][i, at] = _value(state[name])
    return values
