"""Counting tasks: Multi-Object, Single-Object, Same-Object (docs/METHODS.md § Tasks).

Encoding, exactly. A sequence for target quantity n (drawn uniformly from the allowed counts) is

    BOS  s_1 ... s_L  T  r_1 ... r_m  EOS  PAD ...

* Demo phase s_1..s_L: each step is a void token V with probability `void_p`, else a demo token
  drawn uniformly from the task's demo tokens. It ends with the n-th demo token, so exactly n
  steps are demo tokens, L - n are voids, and s_L is never void. With void_p = 0, L = n.
* T is the trigger. Then m = transform(n) response tokens (identity: m = n; mod: n mod 4;
  round: n rounded to the nearest multiple of 3; square: n²), then EOS.
* Token ids: PAD 0, BOS 1, EOS 2, T 3, then the task's tokens:

      Multi-Object  (count):          R 4, D0 5, D1 6, D2 7, V 8   n=2: BOS D2 D0 T R R EOS
      Single-Object (single_object):  R 4, D 5, V 6                n=2: BOS D D T R R EOS
      Same-Object   (same_object):    C 4, V 5 (C is demo and response token)
                                                                   n=2: BOS C C T C C EOS

  V is in every vocabulary, used or not, so the vocabulary does not depend on `void_p`.
* Scored predictions (a trial's verdict): the one made at T and at every response token, i.e.
  those whose targets are r_1..r_m and EOS. Demo tokens are random and where T falls depends on
  n, which the model never sees, so neither is scored.
* Held-out counts are never drawn for split='train'; split='heldout' draws only them, and
  split='all' draws from every count (alignment data).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .base import Sequences, Split, capped, quantities
from .causal import TRANSFORMS, ContextDistributed, CountingTokens, UpDown, UpUp
from .vocab import BOS, EOS, PAD, Vocab

VARIANTS = {
    "multi_object": (("D0", "D1", "D2"), "R"),
    "single_object": (("D",), "R"),
    "same_object": ((), "C"),  # the response token doubles as the only demo token
}
CAUSAL_MODELS = {"up_down": UpDown, "up_up": UpUp, "context": ContextDistributed}


@dataclass
class CountingTask:
    name: str = "count"
    variant: str = "multi_object"
    void_p: float = 0.0
    transform: str = "identity"
    min_count: int = 1
    max_count: int = 20
    held_out: tuple[int, ...] = ()
    default_causal_model: str = "up_down"
    vocab: Vocab = field(init=False)

    def __post_init__(self):
        demo_names, response_name = VARIANTS[self.variant]
        self.vocab = Vocab.with_tokens("T", response_name, *demo_names, "V")
        self.trigger = self.vocab.id("T")
        self.response = self.vocab.id(response_name)
        self.void = self.vocab.id("V")
        names = demo_names or (response_name,)
        self.demo = np.array([self.vocab.id(name) for name in names])
        self.held_out = tuple(sorted(set(self.held_out)))
        self._transform = np.vectorize(TRANSFORMS[self.transform], otypes=[np.int64])

    @property
    def max_length(self) -> int:
        # BOS + n demo + T + transform(n) responses + EOS, at the longest n (voids aside)
        counts = range(self.min_count, self.max_count + 1)
        return max(n + int(self._transform(n)) for n in counts) + 3

    def counts(self, split: Split) -> np.ndarray:
        return quantities(split, self.min_count, self.max_count, self.held_out)

    def sample(self, n: int, rng: np.random.Generator, split: Split = "train", up_to: int | None = None) -> Sequences:
        """n sequences in one vectorised pass (no per-sequence Python loop).
        up_to: draw only counts up to it (a training curriculum's cap; None = all)."""
        quantity = rng.choice(capped(self.counts(split), up_to), size=n)
        # Voids before the n-th demo token: failures before the n-th success of a
        # Bernoulli(1 - void_p) process. Given their number, their places among the first
        # L - 1 steps are uniform, which is what per-step Bernoulli draws would give.
        voids = rng.negative_binomial(quantity, 1.0 - self.void_p) if self.void_p else 0 * quantity
        demo_len = quantity + voids
        width = int(demo_len.max())
        keys = rng.random((n, width))
        keys[np.arange(width)[None, :] >= (demo_len - 1)[:, None]] = np.inf
        rank = keys.argsort(axis=1).argsort(axis=1)
        is_void = rank < voids[:, None]
        demo = np.where(is_void, self.void, self.demo[rng.integers(len(self.demo), size=(n, width))])

        responses = self._transform(quantity)
        lengths = demo_len + responses + 3
        pos = np.arange(int(lengths.max()))[None, :]
        d, m = demo_len[:, None], responses[:, None]
        tokens = np.full((n, pos.shape[1]), PAD, dtype=np.int64)
        tokens[:, 0] = BOS
        demo_cols = np.minimum(pos - 1, width - 1).repeat(n, axis=0)
        tokens = np.where((pos >= 1) & (pos <= d), np.take_along_axis(demo, demo_cols, 1), tokens)
        tokens = np.where(pos == d + 1, self.trigger, tokens)
        tokens = np.where((pos > d + 1) & (pos <= d + 1 + m), self.response, tokens)
        tokens = np.where(pos == d + m + 2, EOS, tokens)
        return Sequences(tokens=tokens, lengths=lengths.astype(np.int64), quantity=quantity)

    def _response_start(self, tokens: np.ndarray) -> np.ndarray:
        """int [N]: where the response phase begins, the *last* T (0 when there is none).

        A natural sequence has one T. A counterfactual can have two (a phase swap back into
        the demo phase emits demo tokens and a second T after the base's T) or none (a swap into
        the response phase before the base reached T): from τ on, its response phase starts at
        the last T, or at τ itself when there is no T at all."""
        is_trigger = tokens == self.trigger
        last = tokens.shape[1] - 1 - is_trigger[:, ::-1].argmax(axis=1)
        return np.where(is_trigger.any(axis=1), last, 0)

    def response_mask(self, tokens: np.ndarray) -> np.ndarray:
        pos = np.arange(tokens.shape[1])[None, :]
        has_target = np.zeros_like(tokens, dtype=bool)
        has_target[:, :-1] = tokens[:, 1:] != PAD
        return (pos >= self._response_start(tokens)[:, None]) & has_target

    def eligible_positions(self, tokens: np.ndarray, variable: str | None = None) -> np.ndarray:
        """Inputs that are demo, void or response tokens (not PAD, BOS, EOS or T), whatever the
        variable: each of them sets the count (or, for void tokens, keeps it)."""
        return ~np.isin(tokens, (PAD, BOS, EOS, self.trigger))

    def causal_tokens(self) -> CountingTokens:
        return CountingTokens(
            demo=tuple(int(t) for t in self.demo),
            void=self.void,
            trigger=self.trigger,
            response=self.response,
            void_p=self.void_p,
        )

    def causal_model(self, name: str | None = None):
        name = name or self.default_causal_model
        if name not in CAUSAL_MODELS:
            raise ValueError(f"unknown causal model '{name}'; choose one of {', '.join(CAUSAL_MODELS)}")
        return CAUSAL_MODELS[name](self.causal_tokens(), self.transform)

    def phase_of(self, tokens: np.ndarray) -> np.ndarray:
        """int [N, L]: the Up-Down `phase` after reading each position (1 from T on)."""
        pos = np.arange(tokens.shape[1])[None, :]
        return (pos >= self._response_start(tokens)[:, None]).astype(np.int64)
