"""Arithmetic task (docs/METHODS.md § Tasks).

Encoding, exactly. With k operations (drawn uniformly from the allowed op counts) and a start
value v0 in 0..max_value:

    BOS  k  v0  op_1 x_1 = y_1 ,  op_2 x_2 = y_2 ,  ...  op_k x_k = y_k EOS

* k, v0, x_i and y_i are number tokens; op_i is + or - (uniform); y_i = y_{i-1} op_i x_i with
  y_0 = v0. The operand x_i is uniform over the values that keep y_i inside 0..max_value.
* The final ',' is replaced by EOS, so a sequence has 3 + 5k tokens.
* Token ids: PAD 0, BOS 1, EOS 2, + 3, - 4, = 5, ',' 6, then the numbers 0..max_value from 7.
  Example, k=2: BOS 2 5 + 3 = 8 , - 6 = 2 EOS.
* Scored predictions: each result y_i (predicted at '=') and the final EOS (predicted at y_k).
* Held-out op counts are never drawn for split='train' (empty by default).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .base import Sequences, Split, capped, quantities
from .causal import Arithmetic, ArithmeticTokens
from .vocab import BOS, EOS, PAD, Vocab


@dataclass
class ArithmeticTask:
    name: str = "arithmetic"
    min_ops: int = 1
    max_ops: int = 20
    max_value: int = 20
    held_out: tuple[int, ...] = ()
    default_causal_model: str = "arithmetic"
    vocab: Vocab = field(init=False)

    def __post_init__(self):
        numbers = [str(v) for v in range(self.max_value + 1)]
        self.vocab = Vocab.with_tokens("+", "-", "=", ",", *numbers)
        self.plus, self.minus = self.vocab.id("+"), self.vocab.id("-")
        self.equals, self.comma = self.vocab.id("="), self.vocab.id(",")
        self.number = np.array([self.vocab.id(v) for v in numbers])
        self.held_out = tuple(sorted(set(self.held_out)))

    @property
    def max_length(self) -> int:
        return 3 + 5 * self.max_ops

    def counts(self, split: Split) -> np.ndarray:
        return quantities(split, self.min_ops, self.max_ops, self.held_out)

    def sample(self, n: int, rng: np.random.Generator, split: Split = "train", up_to: int | None = None) -> Sequences:
        """Vectorised over sequences; one loop iteration per operation slot (≤ max_ops).
        up_to: draw only op counts up to it (a training curriculum's cap; None = all)."""
        ops = rng.choice(capped(self.counts(split), up_to), size=n)
        value = rng.integers(0, self.max_value + 1, size=n)
        width = int(3 + 5 * ops.max())
        tokens = np.full((n, width), PAD, dtype=np.int64)
        tokens[:, 0], tokens[:, 1], tokens[:, 2] = BOS, self.number[ops], self.number[value]
        for i in range(int(ops.max())):
            active = i < ops
            is_plus = rng.random(n) < 0.5
            top = np.where(is_plus, self.max_value - value, value)
            operand = (rng.random(n) * (top + 1)).astype(np.int64)
            result = np.where(is_plus, value + operand, value - operand)
            at = 3 + 5 * i
            tokens[active, at] = np.where(is_plus, self.plus, self.minus)[active]
            tokens[active, at + 1] = self.number[operand[active]]
            tokens[active, at + 2] = self.equals
            tokens[active, at + 3] = self.number[result[active]]
            tokens[active, at + 4] = np.where(i < ops - 1, self.comma, EOS)[active]
            value = np.where(active, result, value)
        return Sequences(tokens=tokens, lengths=3 + 5 * ops, quantity=ops)

    def response_mask(self, tokens: np.ndarray) -> np.ndarray:
        mask = tokens == self.equals
        mask[:, :-1] |= tokens[:, 1:] == EOS
        return mask

    def eligible_positions(self, tokens: np.ndarray, variable: str | None = None) -> np.ndarray:
        """The steps whose input sets `variable`, as demo and response tokens set the count:
        cumu_val after v0 and after each result (the running value was just read), remaining_ops
        after k and after each result, op after each operator, operand after each operand. Every
        input from v0 on (not PAD or EOS) for `full`, `none` or no variable.

        Why: between those steps a network is mid-operation. After reading `+ x` a GRU holds the
        coming result, not the causal model's pre-operation cumu_val, so a cumu_val swap there
        asks for a variable the network does not have: quick DAS on an Arithmetic GRU reached
        IIA 0.268 over every position and 0.982 over value positions (docs/BENCHMARKS.md)."""
        pos = np.arange(tokens.shape[1])[None, :]
        previous = np.full_like(tokens, PAD)
        previous[:, 1:] = tokens[:, :-1]
        is_op = np.isin(tokens, (self.plus, self.minus))
        result = previous == self.equals
        steps = {
            "cumu_val": (pos == 2) | result,
            "remaining_ops": (pos == 1) | result,
            "op": is_op,
            "operand": np.isin(previous, (self.plus, self.minus)),
        }
        chosen = steps.get(variable, pos >= 2)
        return chosen & ~np.isin(tokens, (PAD, EOS))

    def causal_model(self, name: str | None = None):
        name = name or self.default_causal_model
        if name != "arithmetic":
            raise ValueError(f"unknown causal model '{name}' for arithmetic; choose arithmetic")
        return Arithmetic(
            ArithmeticTokens(
                number=tuple(int(t) for t in self.number),
                plus=self.plus,
                minus=self.minus,
                equals=self.equals,
                comma=self.comma,
                min_ops=self.min_ops,
                max_ops=self.max_ops,
            )
        )
