"""High-level causal models (docs/METHODS.md § Causal models and counterfactuals): tiny programs that
read one token at a time, update named variables, and say which token comes next.

A state is a plain dict of variable values (plus bookkeeping the program needs, such as the
exogenous `n`). Three methods make a causal model:

    start(quantity) -> state       the state after reading BOS
    read(state, token) -> state    a new state after reading `token` (never mutates the old one)
    emit(state) -> int | Free      the next token, or `Free` where the task leaves it to chance

`variables` lists what an interchange intervention may overwrite; `full` means all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .vocab import EOS

# The block of alignment coordinates beyond the variables' blocks: swapping it must change nothing.
NULL_BLOCK = "null_block"

DEMO, RESPONSE = 0, 1  # values of the `phase` variable


def _round_to_3(n: int) -> int:
    return 3 * round(n / 3)  # n / 3 never ends in .5, so banker's rounding never applies


# The transform applied to the count when the trigger is read (docs/METHODS.md § Tasks).
TRANSFORMS: dict[str, Callable[[int], int]] = {
    "identity": lambda n: n,
    "mod": lambda n: n % 4,
    "round": _round_to_3,
    "square": lambda n: n * n,
}


@dataclass(frozen=True)
class Free:
    """A token the causal model does not determine: one of `choices`, drawn with `probs`."""

    choices: tuple[int, ...]
    probs: tuple[float, ...]

    def sample(self, rng: np.random.Generator) -> int:
        return int(self.choices[rng.choice(len(self.choices), p=self.probs)])


def uniform(choices: Sequence[int]) -> Free:
    return Free(tuple(choices), tuple([1.0 / len(choices)] * len(choices)))


class CausalModel:
    """Shared machinery: run a program over a token sequence and record its states."""

    variables: tuple[str, ...] = ()

    def start(self, quantity: int) -> dict: ...

    def read(self, state: dict, token: int) -> dict: ...

    def emit(self, state: dict) -> int | Free: ...

    def trace(self, tokens: Sequence[int], quantity: int) -> list[dict]:
        """States after reading each token of one sequence, BOS at index 0, up to its EOS."""
        states = [self.start(quantity)]
        for token in tokens[1:]:
            if token == EOS:
                break
            states.append(self.read(states[-1], int(token)))
        return states

    def swap_keys(self, variable: str) -> tuple[str, ...]:
        """The variables an intervention on `variable` overwrites ('full' = all of them,
        NULL_BLOCK = nothing: the base continuation, what a null-block swap must leave unchanged)."""
        if variable == "full":
            return self.variables
        if variable == NULL_BLOCK:
            return ()
        if variable not in self.variables:
            raise ValueError(
                f"variable '{variable}' is not in causal model {type(self).__name__}; "
                f"choose one of {', '.join(self.variables + ('full',))}"
            )
        return (variable,)


@dataclass
class CountingTokens:
    """The token ids a counting causal model needs to know about."""

    demo: tuple[int, ...]
    void: int
    trigger: int
    response: int
    void_p: float

    def free_demo_step(self) -> Free:
        # A demo step emits a void token with probability void_p, else a uniform demo token.
        p_each = (1.0 - self.void_p) / len(self.demo)
        if self.void_p == 0:
            return Free(self.demo, (p_each,) * len(self.demo))
        return Free(self.demo + (self.void,), (p_each,) * len(self.demo) + (self.void_p,))


class UpDown(CausalModel):
    """count goes up in the demo phase, is transformed at T, goes down once per response token;
    EOS at zero."""

    variables = ("count", "phase")

    def __init__(self, tokens: CountingTokens, transform: str = "identity"):
        self.tok = tokens
        self.transform = TRANSFORMS[transform]

    def start(self, quantity: int) -> dict:
        return {"count": 0, "phase": DEMO, "n": quantity}

    def read(self, state: dict, token: int) -> dict:
        state = dict(state)
        if state["phase"] == DEMO:
            if token == self.tok.trigger:
                state["phase"] = RESPONSE
                state["count"] = self.transform(state["count"])
            elif token in self.tok.demo:
                state["count"] += 1
        elif token == self.tok.response:
            state["count"] -= 1
        return state

    def emit(self, state: dict) -> int | Free:
        if state["phase"] == DEMO:
            return self.tok.trigger if state["count"] >= state["n"] else self.tok.free_demo_step()
        return self.tok.response if state["count"] > 0 else EOS


class UpUp(CausalModel):
    """Two counters that both go up; EOS once the response count reaches the (transformed) demo
    count. (`>=` rather than `==`, so a swapped-in response count past the target still ends.)"""

    variables = ("demo_count", "resp_count", "phase")

    def __init__(self, tokens: CountingTokens, transform: str = "identity"):
        self.tok = tokens
        self.transform = TRANSFORMS[transform]

    def start(self, quantity: int) -> dict:
        return {"demo_count": 0, "resp_count": 0, "phase": DEMO, "n": quantity}

    def read(self, state: dict, token: int) -> dict:
        state = dict(state)
        if state["phase"] == DEMO:
            if token == self.tok.trigger:
                state["phase"] = RESPONSE
            elif token in self.tok.demo:
                state["demo_count"] += 1
        elif token == self.tok.response:
            state["resp_count"] += 1
        return state

    def emit(self, state: dict) -> int | Free:
        if state["phase"] == DEMO:
            if state["demo_count"] >= state["n"]:
                return self.tok.trigger
            return self.tok.free_demo_step()
        done = state["resp_count"] >= self.transform(state["demo_count"])
        return EOS if done else self.tok.response


class ContextDistributed(CausalModel):
    """No stored count: every step recounts the demo tokens and response tokens seen so far.
    Nothing is swappable, so a `full` swap between same-phase steps predicts unchanged
    behaviour, which is the hypothesis under test (docs/METHODS.md § Causal models and counterfactuals)."""

    variables = ()

    def __init__(self, tokens: CountingTokens, transform: str = "identity"):
        self.updown = UpDown(tokens, transform)

    def start(self, quantity: int) -> dict:
        return {"history": (), "n": quantity}

    def read(self, state: dict, token: int) -> dict:
        return {"history": state["history"] + (token,), "n": state["n"]}

    def _recount(self, state: dict) -> dict:
        counted = self.updown.start(state["n"])
        for token in state["history"]:
            counted = self.updown.read(counted, token)
        return counted

    def phase(self, state: dict) -> int:
        return self._recount(state)["phase"]

    def emit(self, state: dict) -> int | Free:
        return self.updown.emit(self._recount(state))


class OutOfRange(ValueError):
    """An intervention drove a value outside what the task's vocabulary can say."""


@dataclass
class ArithmeticTokens:
    number: tuple[int, ...]  # ids of the values 0..max_value, in order
    plus: int
    minus: int
    equals: int
    comma: int
    min_ops: int
    max_ops: int


class Arithmetic(CausalModel):
    """Keeps a running value. `stage` (what was just read) is grammar bookkeeping, not a
    variable: it is fixed by the last token, so swapping it would not be an intervention."""

    variables = ("cumu_val", "remaining_ops", "op", "operand")

    def __init__(self, tokens: ArithmeticTokens):
        self.tok = tokens
        self.value_of = {token: v for v, token in enumerate(tokens.number)}
        self.max_value = len(tokens.number) - 1

    def start(self, quantity: int) -> dict:
        return {"cumu_val": 0, "remaining_ops": 0, "op": None, "operand": 0, "stage": "bos"}

    def read(self, state: dict, token: int) -> dict:
        state = dict(state)
        stage = state["stage"]
        if token in (self.tok.plus, self.tok.minus):
            state["op"], state["stage"] = token, "op"
        elif token == self.tok.equals:
            sign = 1 if state["op"] == self.tok.plus else -1
            state["cumu_val"] += sign * state["operand"]
            state["remaining_ops"] -= 1
            state["stage"] = "equals"
        elif token == self.tok.comma:
            state["stage"] = "comma"
        elif stage == "bos":
            state["remaining_ops"], state["stage"] = self.value_of[token], "k"
        elif stage == "k":
            state["cumu_val"], state["stage"] = self.value_of[token], "v0"
        elif stage == "op":
            state["operand"], state["stage"] = self.value_of[token], "operand"
        elif stage == "equals":
            state["stage"] = "result"
        return state

    def emit(self, state: dict) -> int | Free:
        stage = state["stage"]
        if stage == "bos":
            return uniform(self.tok.number[self.tok.min_ops : self.tok.max_ops + 1])
        if stage == "k":
            return uniform(self.tok.number)
        if stage in ("v0", "comma"):
            return uniform((self.tok.plus, self.tok.minus))
        if stage == "op":
            # The operand keeps the result inside 0..max_value (docs/METHODS.md § Tasks).
            value = state["cumu_val"]
            top = self.max_value - value if state["op"] == self.tok.plus else value
            return uniform(self.tok.number[: max(top, 0) + 1])
        if stage == "operand":
            return self.tok.equals
        if stage == "equals":
            if not 0 <= state["cumu_val"] <= self.max_value:
                raise OutOfRange(f"running value {state['cumu_val']} left 0..{self.max_value}")
            return self.tok.number[state["cumu_val"]]
        return self.tok.comma if state["remaining_ops"] > 0 else EOS
