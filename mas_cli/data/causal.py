"""Your own causal model, in Python: `mas.align(models, data=my_model)` samples counterfactuals
from it as the built-in tasks do from theirs (docs/DATA.md § A causal model of your own).

A causal model is any object with these members (no base class needed):

    name: str                           results name its models <name>/<model>/0
    vocab: list[str]                    token names; a token's id is its index
    variables: tuple[str, ...]          what an interchange may set
    sample(rng) -> dict                 exogenous inputs, drawn from the numpy Generator given
    run(inputs, intervention) -> dict   every variable's value; `intervention` ({variable: value},
                                        or None) is held fixed and everything downstream follows
    render(inputs, values) -> (tokens, scored)
                                        the token ids the model reads for these values, and the
                                        positions p whose prediction (of tokens[p + 1]) is scored
    position(variable, inputs) -> int   τ: the position in the rendered sequence by which the
                                        variable is computed

An item swapping variable v: base and source inputs drawn; the source's value of v is forced into
the base's run (`run(base, {v: run(source)[v]})`) and rendered; τ = position(v, base), σ =
position(v, source); the scored positions from τ on are the labels. The counterfactual must equal
the base sequence up to τ (what the model has read before the swap), or the item is refused in one
line. With `site=embed` (σ = τ) items whose two positions differ are drawn again.

A model to align with it is wrapped with it as its task, `mas.wrap(module, site=..., task=my_model)`,
so its natural sequences (the alignment's normalisation) and its task accuracy come from it too.
"""

from __future__ import annotations

import hashlib

import numpy as np

from mas_cli.errors import ConfigError
from mas_cli.tasks import Counterfactuals
from mas_cli.tasks.base import Sequences, right_padded

MEMBERS = ("name", "vocab", "variables", "sample", "run", "render", "position")
FINGERPRINT_ITEMS = 32  # items per variable drawn (seed 0) to fingerprint the model's behaviour
TRIES = 50  # draws per item before an embed-site item whose positions never agree is refused


def check_causal(model) -> None:
    missing = [m for m in MEMBERS if not hasattr(model, m)]
    if missing:
        raise ConfigError(
            f"a causal model needs {', '.join(MEMBERS)}; {type(model).__name__} lacks {', '.join(missing)} "
            "(docs/DATA.md § A causal model of your own)"
        )


class CausalVocab(list):
    """Token names as the built-in vocabularies offer them (len, decode)."""

    def decode(self, ids) -> str:
        return " ".join(self[int(i)] for i in ids)


class CausalTask:
    """A causal model of your own in the place of a built-in task (a wrapped model's task)."""

    def __init__(self, causal):
        check_causal(causal)
        self.causal, self.name = causal, str(causal.name)
        self.vocab = CausalVocab(causal.vocab)
        self.max_length = 0
        self._scored: dict[bytes, list[int]] = {}  # rendered rows -> their scored positions (response_mask)

    def counts(self, split) -> np.ndarray:
        return np.arange(1)  # no held-out quantities: every split draws from the model's `sample`

    def sample(self, n: int, rng: np.random.Generator, split="all", up_to=None) -> Sequences:
        rows = []
        for _ in range(n):
            inputs = self.causal.sample(rng)
            rows.append(_rendered(self.causal, inputs, self.causal.run(inputs, None)))
        tokens = right_padded([r[0] for r in rows])
        for row, (_, scored) in zip(tokens, rows):
            self._scored[row.tobytes()] = scored
        lengths = np.array([len(r[0]) for r in rows], dtype=np.int64)
        return Sequences(tokens, lengths, np.zeros(n, dtype=np.int64))

    def response_mask(self, tokens: np.ndarray) -> np.ndarray:
        """The scored positions of sequences this task rendered (task accuracy)."""
        mask = np.zeros(tokens.shape, dtype=bool)
        for i, row in enumerate(tokens):
            mask[i, self._scored[row.tobytes()]] = True
        return mask

    def causal_model(self, name=None):
        if name is not None:
            raise ValueError(f"a causal model of your own is its own hypothesis; drop causal_model={name}")
        return self.causal


def _rendered(causal, inputs, values) -> tuple[list[int], list[int]]:
    tokens, scored = causal.render(inputs, values)
    tokens, scored = [int(t) for t in tokens], sorted(int(p) for p in scored)
    if not tokens or not all(0 <= t < len(causal.vocab) for t in tokens):
        raise ConfigError(f"{causal.name}.render gave tokens outside its vocabulary (0 to {len(causal.vocab) - 1})")
    if not all(0 <= p < len(tokens) - 1 for p in scored):
        raise ConfigError(f"{causal.name}.render scored a position with no next token to predict")
    return tokens, scored


def counterfactuals(causal, variable: str, n: int, rng: np.random.Generator, same_position: bool) -> Counterfactuals:
    """n items swapping `variable` from a source's run into a base's (see the module's docstring)."""
    if variable not in causal.variables:
        have = ", ".join(causal.variables)
        raise ConfigError(f"swap={variable} is not a variable of {causal.name}; choose one of {have}")
    rows = [_item(causal, variable, rng, same_position) for _ in range(n)]
    tokens = right_padded([r["tokens"] for r in rows])
    mask = np.zeros(tokens.shape, dtype=bool)
    for i, r in enumerate(rows):
        mask[i, [p for p in r["scored"] if p >= r["tau"]]] = True
    names = list(causal.variables)
    return Counterfactuals(
        tokens=tokens,
        label_mask=mask,
        base=right_padded([r["base"] for r in rows]),
        source=right_padded([r["source"] for r in rows]),
        tau=np.array([r["tau"] for r in rows], dtype=np.int64),
        sigma=np.array([r["sigma"] for r in rows], dtype=np.int64),
        variable=variable,
        values={v: np.array([_number(r["after"][v]) for r in rows], dtype=np.int64) for v in names},
        before={v: np.array([_number(r["before"][v]) for r in rows], dtype=np.int64) for v in names},
    )


def _item(causal, variable: str, rng, same_position: bool) -> dict:
    for _ in range(TRIES):
        base, source = causal.sample(rng), causal.sample(rng)
        tau, sigma = int(causal.position(variable, base)), int(causal.position(variable, source))
        if same_position and tau != sigma:
            continue
        before, swapped_in = causal.run(base, None), causal.run(source, None)
        after = causal.run(base, {variable: swapped_in[variable]})
        base_tokens, _ = _rendered(causal, base, before)
        tokens, scored = _rendered(causal, base, after)
        if tokens[: tau + 1] != base_tokens[: tau + 1]:
            raise ConfigError(
                f"{causal.name}: the counterfactual differs from the base before position({variable}) = {tau}; "
                "render must not let a variable change tokens the model reads before it is computed"
            )
        source_tokens, _ = _rendered(causal, source, swapped_in)
        found = {"tokens": tokens, "scored": scored, "base": base_tokens, "source": source_tokens}
        return found | {"tau": tau, "sigma": sigma, "before": before, "after": after}
    raise ConfigError(
        f"{causal.name}: site=embed needs base and source with position({variable}) equal; none in {TRIES} draws"
    )


def _number(value) -> int:
    return int(value) if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else -1


def behaviour(causal) -> str:
    """A fingerprint of what the model does: the SHA-256 of items drawn with seed 0 for each
    variable. A result records it, so a changed model refuses the old fit."""
    digest = hashlib.sha256(f"{causal.name}|{list(causal.vocab)}|{list(causal.variables)}".encode())
    for variable in causal.variables:
        cf = counterfactuals(causal, variable, FINGERPRINT_ITEMS, np.random.default_rng(0), False)
        for array in (cf.tokens, cf.label_mask, cf.tau, cf.sigma):
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def causal_source(causal, site: str):
    """The `draw` of a causal model of your own."""

    def draw(source, target, variable: str, n: int, rng, split: str) -> Counterfactuals:
        return counterfactuals(causal, variable, n, rng, same_position=site == "embed")

    return draw
