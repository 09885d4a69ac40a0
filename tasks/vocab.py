"""Token vocabularies shared by every task.

Ids 0, 1, 2 are always PAD, BOS, EOS (docs/METHODS.md § Tasks); each task appends its own tokens after them,
so a vocabulary is just an ordered tuple of names and the id of a token is its index.
"""

from __future__ import annotations

from dataclasses import dataclass

PAD, BOS, EOS = 0, 1, 2
SPECIAL_TOKENS = ("PAD", "BOS", "EOS")


@dataclass(frozen=True)
class Vocab:
    """An ordered set of token names: PAD, BOS, EOS, then the task's own tokens."""

    names: tuple[str, ...]

    @classmethod
    def with_tokens(cls, *task_tokens: str) -> Vocab:
        return cls(SPECIAL_TOKENS + tuple(task_tokens))

    def __len__(self) -> int:
        return len(self.names)

    def id(self, name: str) -> int:
        return self.names.index(name)

    def decode(self, ids) -> str:
        """Readable form of one sequence, PAD dropped: 'BOS D2 D0 T R R EOS'."""
        return " ".join(self.names[int(i)] for i in ids if int(i) != PAD)

    def encode(self, text: str) -> list[int]:
        return [self.id(name) for name in text.split()]
