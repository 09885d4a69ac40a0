"""Counterfactual items from a file of your own: `mas align ... data=items data.path=<file>`.

A JSON Lines file (`.jsonl`, one object per line) or a Parquet table (`.parquet`, one row per
item, needs pyarrow). Each item is one interchange: the target reads `base`, the source reads
`source`, the source's site at `sigma` goes into the target's at `tau`, and the label says what
the target must then predict. Token ids are the models' own (checked against each model's
vocabulary before anything is fitted).

    field      type               meaning
    base       [int]              the target's (base) sequence
    source     [int]              the source's sequence
    tau        int                the intervened position in base (site=embed: every position up to it)
    sigma      int, optional      the position read in source (default: tau; site=embed needs sigma = tau)
    and exactly one label:
    label      int                the token the target must predict at tau (one token)
    label      [int]              the tokens it must produce after tau, teacher-forced: the input is
                                  base[:tau+1] + label, and the prediction at tau + j is scored
                                  against label[j]
    tokens +   [int]              the whole counterfactual input (equal to base up to tau) and
    scored     [int]              the positions p >= tau whose prediction (of tokens[p+1]) is scored
    split      "train" | "val"    optional; without it a seeded fifth of the file validates
    variable   str                optional; with `swap=v`, only the items of variable v are used
    before, after  {str: int}     optional: the swapped variables' values at tau before and after
                                  the swap (items.csv, IIA by value)

Every bad row is reported on a line of its own naming the row (its line number) and the field;
nothing is fitted until the file is clean. `write_items` writes this format (the built-in
counting counterfactuals exported, e.g., are a template).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from mas_cli.errors import ConfigError
from mas_cli.tasks import Counterfactuals
from mas_cli.tasks.base import right_padded
from mas_cli.tasks.vocab import PAD

SPLITS = ("train", "val")
SHOWN = 10  # bad rows listed before "... and N more"


@dataclass(frozen=True)
class Item:
    row: int  # its line (JSON Lines) or row (Parquet) number, for messages
    tokens: tuple[int, ...]  # the counterfactual input
    scored: tuple[int, ...]  # positions whose next-token prediction is scored
    base: tuple[int, ...]
    source: tuple[int, ...]
    tau: int
    sigma: int
    split: str | None
    variable: str | None
    before: tuple[tuple[str, int], ...]
    after: tuple[tuple[str, int], ...]


def digest(path: Path) -> str:
    """SHA-256 of the file's bytes: a result records it and is refused once the file changed."""
    return _digest(str(path), *_stamp(path))


def _stamp(path: Path) -> tuple:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


@cache
def _digest(path: str, mtime: int, size: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_items(path: Path) -> list[Item]:
    """Every row of the file, checked; bad rows refused together, one line each."""
    return list(_read(str(path), *_stamp(path)))


@cache
def _read(path: str, mtime: int, size: int) -> tuple[Item, ...]:
    items, bad = [], []
    for number, row in _rows(Path(path)):
        try:
            items.append(_item(number, row))
        except ValueError as exc:
            bad.append(f"{path} row {number}: {exc}")
    if bad:
        more = [f"... and {len(bad) - SHOWN} more bad rows"] if len(bad) > SHOWN else []
        raise ConfigError("\n".join(bad[:SHOWN] + more))
    if not items:
        raise ConfigError(f"{path} holds no items; write one JSON object per line (docs/DATA.md)")
    return tuple(items)


def _rows(path: Path):
    """(line or row number, the row as a dict, or the reason it is not one)."""
    if path.suffix == ".parquet":
        try:
            import pandas as pd

            frame = pd.read_parquet(path)
        except ImportError:
            raise ConfigError(f"{path}: reading Parquet needs pyarrow: pip install pyarrow") from None
        except Exception as exc:  # pyarrow's own errors: a file that is not Parquet
            raise ConfigError(
                f"{path} is not a Parquet table ({type(exc).__name__}); write .jsonl or .parquet"
            ) from None
        for number, row in enumerate(frame.to_dict("records"), start=1):
            yield number, {k: _plain(v) for k, v in row.items() if not _missing(v)}
        return
    if path.suffix != ".jsonl":
        raise ConfigError(f"data.path={path}: write the items as .jsonl (one JSON object per line) or .parquet")
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                try:
                    yield number, json.loads(line)
                except json.JSONDecodeError as exc:
                    yield number, f"not JSON ({exc.msg})"


def _plain(value):
    """Parquet's arrays and numpy scalars as JSON's lists and ints."""
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if not _missing(v)}
    return value


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _ids(row: dict, field: str) -> tuple[int, ...]:
    value = row.get(field)
    if not isinstance(value, list) or not value or not all(_is_id(v) for v in value):
        raise ValueError(f"{field} must be a non-empty list of token ids (whole numbers >= 0), got {value!r}")
    return tuple(value)


def _is_id(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _position(row: dict, field: str, length: int, default=None) -> int:
    value = row.get(field, default)
    if not (isinstance(value, int) and not isinstance(value, bool)) or not 0 <= value < length:
        raise ValueError(f"{field} must be a position in its sequence (0 to {length - 1}), got {value!r}")
    return value


def _values(row: dict, field: str) -> tuple[tuple[str, int], ...]:
    value = row.get(field, {})
    if not isinstance(value, dict) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value.values()):
        raise ValueError(f'{field} must map variable names to whole numbers, e.g. {{"count": 3}}, got {value!r}')
    return tuple(sorted(value.items()))


def _item(number: int, row) -> Item:
    if isinstance(row, str):
        raise ValueError(row)
    if not isinstance(row, dict):
        raise ValueError(f"an item is a JSON object with base, source, tau and a label, got {type(row).__name__}")
    base, source = _ids(row, "base"), _ids(row, "source")
    tau = _position(row, "tau", len(base))
    sigma = _position(row, "sigma", len(source), default=tau)
    tokens, scored = _labelled(row, base, tau)
    split = row.get("split")
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be train or val, got {split!r}")
    variable = row.get("variable")
    if variable is not None and not (isinstance(variable, str) and variable):
        raise ValueError(f"variable must name the swapped variable, got {variable!r}")
    return Item(
        number, tokens, scored, base, source, tau, sigma, split, variable, _values(row, "before"), _values(row, "after")
    )


def _labelled(row: dict, base: tuple[int, ...], tau: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The counterfactual input and its scored positions, from whichever label the row gives."""
    given = [f for f in ("label", "tokens") if f in row]
    if len(given) != 1:
        raise ValueError("give exactly one of label (a token or a list of tokens) or tokens with scored")
    if "label" in row:
        label = row["label"]
        label = [label] if _is_id(label) else label
        if not isinstance(label, list) or not label or not all(_is_id(v) for v in label):
            raise ValueError(f"label must be a token id or a non-empty list of token ids, got {row['label']!r}")
        return (*base[: tau + 1], *label), tuple(range(tau, tau + len(label)))
    tokens = _ids(row, "tokens")
    if tokens[: tau + 1] != base[: tau + 1]:
        raise ValueError("tokens must equal base up to and including tau (the intervention changes what follows)")
    scored = row.get("scored")
    if not isinstance(scored, list) or not scored or not all(isinstance(p, int) for p in scored):
        raise ValueError(f"scored must be a non-empty list of positions, got {scored!r}")
    if not all(tau <= p < len(tokens) - 1 for p in scored):
        raise ValueError(f"scored positions must lie from tau ({tau}) to {len(tokens) - 2} (a next token to predict)")
    return tokens, tuple(sorted(set(scored)))


def check_vocabulary(items: list[Item], size: int, label: str, path: Path) -> None:
    """Every token id below the model's vocabulary size, or one line naming the first bad row."""
    for item in items:
        for field in ("base", "source", "tokens"):
            high = max(getattr(item, field))
            if high >= size:
                raise ConfigError(
                    f"{path} row {item.row}: {field} holds token id {high}, outside {label}'s vocabulary "
                    f"(0 to {size - 1})"
                )


def split_items(items: list[Item], split: str, variable: str, seed: int) -> list[Item]:
    """The items of one split (train or val) swapping `variable`: by each row's `split`, or, in a
    file without one, a seeded fifth of the rows validates."""
    chosen = [i for i in items if i.variable in (None, variable)]
    if any(i.split is not None for i in items):
        return [i for i in chosen if i.split == split]
    held = np.random.default_rng(seed).permutation(len(chosen)) < max(1, len(chosen) // 5)
    return [i for i, val in zip(chosen, held) if val == (split == "val")]


def counterfactuals(items: list[Item], variable: str) -> Counterfactuals:
    """The items as the alignment's counterfactuals (tasks.Counterfactuals)."""
    tokens = right_padded([i.tokens for i in items])
    mask = np.zeros(tokens.shape, dtype=bool)
    for row, item in enumerate(items):
        mask[row, list(item.scored)] = True
    names = sorted({name for i in items for name, _ in (*i.before, *i.after)})

    def column(field: str, name: str) -> np.ndarray:
        return np.array([dict(getattr(i, field)).get(name, -1) for i in items], dtype=np.int64)

    return Counterfactuals(
        tokens=tokens,
        label_mask=mask,
        base=right_padded([i.base for i in items]),
        source=right_padded([i.source for i in items]),
        tau=np.array([i.tau for i in items], dtype=np.int64),
        sigma=np.array([i.sigma for i in items], dtype=np.int64),
        variable=variable,
        values={name: column("after", name) for name in names},
        before={name: column("before", name) for name in names},
    )


def item_rows(cf: Counterfactuals, split: str) -> list[dict]:
    """Counterfactuals as rows of the file format (tokens + scored: exact for any source)."""
    rows = []
    for i in range(len(cf)):
        length = int((cf.tokens[i] != PAD).sum())
        rows.append(
            {
                "base": _unpadded(cf.base[i]),
                "source": _unpadded(cf.source[i]),
                "tau": int(cf.tau[i]),
                "sigma": int(cf.sigma[i]),
                "tokens": cf.tokens[i, :length].tolist(),
                "scored": np.flatnonzero(cf.label_mask[i]).tolist(),
                "split": split,
                "variable": cf.variable,
                "before": {name: int(v[i]) for name, v in cf.before.items()},
                "after": {name: int(v[i]) for name, v in cf.values.items()},
            }
        )
    return rows


def _unpadded(row: np.ndarray) -> list[int]:
    return row[row != PAD].tolist()


def write_items(path: Path, rows: list[dict]) -> None:
    """Rows (item_rows) as a JSON Lines file, written atomically."""
    from mas_cli.store.files import write_text

    write_text(Path(path), "".join(json.dumps(row) + "\n" for row in rows))


def file_source(path: Path, models, site: str, seed: int):
    """The `draw` of data=items: every direction reads the same rows of the file, its split's
    (models: the fit's FrozenModels, whose vocabularies every token id must lie in)."""
    items = read_items(path)
    for model in models:
        check_vocabulary(items, len(model.task.vocab), model.spec.label, path)
    if site == "embed":
        moved = next((i.row for i in items if i.sigma != i.tau), None)
        if moved is not None:
            raise ConfigError(f"{path} row {moved}: site=embed swaps every position up to tau, so sigma must equal tau")

    def draw(source, target, variable: str, n: int, rng, split: str) -> Counterfactuals:
        chosen = split_items(items, split, variable, seed)[:n]
        if not chosen:
            which = f"with variable {variable} " if any(i.variable for i in items) else ""
            raise ConfigError(f"{path} holds no {split} items {which}to fit; add rows with split={split}")
        return counterfactuals(chosen, variable)

    return draw
