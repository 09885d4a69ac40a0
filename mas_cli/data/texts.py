"""Texts as a language model's "task" (`data=continuation`): prompts in a file, one per line,
read with the models' tokenizer.

A `TextTask` stands where the built-in tasks stand for the zoo's models: it names the model's
vocabulary (the tokenizer's) and samples natural sequences (the prompts, tokenised), which is
all an alignment asks of a task besides its counterfactuals (data/continuation.py draws those).
It has no causal model: the label of an item is another model's behaviour, not a variable's.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from mas_cli.errors import ConfigError
from mas_cli.tasks.base import Sequences, right_padded

NAME = "text"  # how results name these models' task: text/local_<folder>/0
VALIDATION_EVERY = 5  # every fifth prompt (lines 5, 10, ...) validates; the rest train
FEWEST = VALIDATION_EVERY  # prompts a file needs for one validation prompt


def read_texts(path: Path) -> list[str]:
    """The file's prompts: its non-empty lines, checked."""
    stat = Path(path).stat()
    return list(_read(str(path), stat.st_mtime_ns, stat.st_size))


@cache
def _read(path: str, mtime: int, size: int) -> tuple[str, ...]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ConfigError(f"data.texts={path} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    texts = tuple(line.strip() for line in lines if line.strip())
    if len(texts) < FEWEST:
        raise ConfigError(
            f"data.texts={path} holds {len(texts)} prompt(s); give at least {FEWEST}, one per line "
            f"(every {VALIDATION_EVERY}th validates)"
        )
    return texts


def is_validation(index: int) -> bool:
    return index % VALIDATION_EVERY == VALIDATION_EVERY - 1


@dataclass(frozen=True)
class TokenizerVocab:
    """A tokenizer seen as a vocabulary: its size and how ids read."""

    tokenizer: object

    def __len__(self) -> int:
        return len(self.tokenizer)

    def decode(self, ids) -> str:
        return self.tokenizer.decode([int(i) for i in ids])


class TextTask:
    """A language model's task: its tokenizer, and once a fit gives them (`reading`), prompts."""

    name = NAME

    def __init__(self, tokenizer, texts: tuple[str, ...] = ()):
        self.tokenizer = tokenizer
        self.vocab = TokenizerVocab(tokenizer)
        self.texts = tuple(texts)
        self.encoded = [self.encode(t) for t in self.texts]
        self.max_length = max((len(e) for e in self.encoded), default=0)

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def reading(self, texts: list[str]) -> TextTask:
        """The same tokenizer over these prompts."""
        return TextTask(self.tokenizer, tuple(texts))

    def sample(self, n: int, rng: np.random.Generator, split="all", up_to=None) -> Sequences:
        """n prompts drawn with replacement, tokenised and right-padded (natural sequences)."""
        if not self.encoded:
            raise ConfigError("a language model reads the prompts of data.texts; align it with data=continuation")
        chosen = [self.encoded[i] for i in rng.integers(len(self.encoded), size=n)]
        lengths = np.array([len(c) for c in chosen], dtype=np.int64)
        return Sequences(right_padded(chosen), lengths, np.zeros(n, dtype=np.int64))

    def causal_model(self, name=None):
        raise ValueError("texts have no causal model; their items come from data=continuation")
