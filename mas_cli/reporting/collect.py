"""Gathering the results under a root: every run's `iia.csv` and every `similarity.csv`, with the
columns the report groups by.

A row's *fit* is what the fit was made of, as a design: its models' tasks and architectures and
how many of each (`count/gru×2 + count/lstm×2`). Fits of the same design over other seeds are
replicates of one experiment; a 4-model and a 6-model joint fit are different experiments and
are never pooled.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mas_cli.alignment.settings import ALIGN
from mas_cli.correlative.run import SIMILARITY
from mas_cli.errors import ConfigError
from mas_cli.registry import NOT_USED
from mas_cli.store import Entry

ALWAYS = ["method", "site", "variable", "k"]  # what every result has, first in each grouping and figure title
RESULTS = {"iia.csv", "similarity.csv", "curve.csv", "items.csv"}  # what the report reads


def grouping() -> list[str]:
    """Every column that keeps IIA results apart: each registry setting, the swapped variable,
    the fit's design."""
    return list(dict.fromkeys([*ALWAYS, *ALIGN.grouping(), "fit"]))


def similarity_grouping() -> list[str]:
    return SIMILARITY.grouping()


def in_effect(column: pd.Series) -> pd.Series:
    """The values of a setting column on the rows where the setting is in effect."""
    return column[column.astype(str) != NOT_USED]


def differing(table: pd.DataFrame, columns: list[str]) -> list[str]:
    """The columns whose values differ between rows where the setting is in effect (a setting
    that only some methods use, with one value wherever it applies, does not tell rows apart)."""
    return [c for c in columns if c in table and in_effect(table[c]).nunique(dropna=False) > 1]


def at_default(column: str, value, budget: str | None) -> bool:
    """Whether a result column holds its setting's default (for the budget the rows ran with)."""
    default = next((d for r in (ALIGN, SIMILARITY) if (d := r.default_column(column, budget)) is not None), None)
    return default is not None and str(value) == default


def fit_design(models: str) -> str:
    """`count/gru/0+count/gru/1+count/lstm/0` -> `count/gru×2 + count/lstm`."""
    counts = Counter(label.rsplit("/", 1)[0] for label in models.split("+"))
    return " + ".join(f"{kind}×{n}" if n > 1 else kind for kind, n in sorted(counts.items()))


MAX_DEPTH = 5  # store entries lie at most this deep below a root (models/<task>/<arch>/seed<s>)


def store_entries(source: Path, exclude: Path | None) -> tuple[list[Path], list[Path]]:
    """(every store entry under `source`, by its public path; folders holding results that are not
    store entries). The walk follows no link but an entry's own (to its version folder beside
    it), so it never leaves the root or loops; copies of a run (a backup folder) and links that
    are not entries are not read: they would count a run twice or read outside the root."""
    entries, skipped = [], []
    source = Path(source)
    if Entry(source).linked_or_none() is not None:
        return [source], []
    outside = exclude.resolve() if exclude is not None else None
    for folder, subfolders, files in os.walk(source, followlinks=False, onerror=_unreadable):
        here = Path(folder)
        depth = len(here.relative_to(source).parts)
        if outside is not None and here.resolve().is_relative_to(outside):
            subfolders[:] = []
            continue
        if (here / "summary.md").is_file():  # an earlier report (e.g. <root>/report when out= points elsewhere)
            subfolders[:] = []
            continue
        if depth > 0 and RESULTS & set(files):
            skipped.append(here)
        for name in sorted(subfolders):
            if (here / name).is_symlink():
                (entries if Entry(here / name).linked_or_none() is not None else skipped).append(here / name)
        subfolders[:] = sorted(
            d for d in subfolders if not d.startswith(".") and not (here / d).is_symlink() and depth < MAX_DEPTH
        )
    return entries, skipped


def _unreadable(error: OSError) -> None:
    """A folder the walk may not read is an error, never silently a smaller report (one that
    vanished while walked is simply gone)."""
    if isinstance(error, PermissionError):
        raise error


@dataclass
class StoreWalk:
    """One walk of a root (store_entries), each entry's checksums verified once: what every
    table and figure of a report is read from."""

    versions: dict[Path, Path]  # an entry's public path -> its verified version folder
    skipped: list[Path]  # folders and links holding results that are not store entries

    @classmethod
    def of(cls, source: Path, exclude: Path | None = None) -> StoreWalk:
        entries, skipped = store_entries(source, exclude)
        versions = {entry: Entry(entry).current() for entry in entries}  # a corrupt one: one line
        return cls({e: v for e, v in versions.items() if v is not None}, skipped)

    def files(self, name: str) -> list[Path]:
        """Every `name` file of an entry, by its public path."""
        return [entry / name for entry, version in self.versions.items() if (version / name).is_file()]


def result_files(source: Path, name: str, exclude: Path | None = None) -> list[Path]:
    """Every `name` file of a store entry under `source`, by its public path (store_entries),
    each entry's checksums verified on the way (a corrupt one is refused in one line)."""
    return StoreWalk.of(source, exclude).files(name)


LABEL = r"[^/]+/[^/]+/\d+"  # a model's label: task/arch/seed
REFIT, RECOMPUTE = "refit that run with `mas align ... force=true`", "recompute it with `mas similarity ... force=true`"
# What each stored table must hold for the report to read it (store files are untrusted input)
COLUMNS = {
    "iia.csv": {"src", "trg", "split", "iia", "variable", "method", "site", "k"},
    "similarity.csv": {"src", "trg", "measure", "value", "site"},
    "items.csv": {"src", "trg", "variable", "read", "before", "after", "correct", "correct_none"},
    "model curve.csv": {"step", "loss", "val_task_acc"},
    "alignment curve.csv": {"step", "src", "trg", "split", "iia"},
}
NUMBERS = {"iia", "value", "step", "loss", "val_task_acc", "iia_none", "iia_lo", "iia_hi"}


def read_table(path: Path, kind: str, fix: str) -> pd.DataFrame:
    """A stored CSV table, checked: readable, the columns of its kind, numbers where numbers
    belong, model labels `task/arch/seed`; anything else is one line ending with `fix`."""
    try:
        frame = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError):
        raise ConfigError(f"{path} is unreadable; {fix}") from None
    missing = COLUMNS[kind] - set(frame.columns)
    if missing:
        raise ConfigError(f"{path} lacks the column(s) {', '.join(sorted(missing))} of a {kind}; {fix}")
    for column in NUMBERS & set(frame.columns):
        if not pd.api.types.is_numeric_dtype(frame[column]):
            raise ConfigError(f"{path}: column {column} holds something other than numbers; {fix}")
    for side in ("src", "trg"):
        if side in frame and not frame[side].astype(str).str.fullmatch(LABEL).all():
            raise ConfigError(f"{path}: column {side} holds something other than task/arch/seed labels; {fix}")
    return frame


def _read_all(source: Path, name: str, walk: StoreWalk, fix: str) -> list[pd.DataFrame]:
    """Every `name` file under `source`, each with a `run` column: its directory relative to
    `source`."""
    return [read_table(path, name, fix).assign(run=str(path.parent.relative_to(source))) for path in walk.files(name)]


def _fill(rows: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Columns a run lacks (stored before the setting existed): not in effect."""
    for column in columns:
        rows[column] = rows[column].astype(object).where(rows[column].notna(), NOT_USED) if column in rows else NOT_USED
    return rows


def collect(source: Path, exclude: Path | None = None, walk: StoreWalk | None = None) -> pd.DataFrame:
    """All rows of every `iia.csv` under `source` (empty when there is none)."""
    frames = _read_all(source, "iia.csv", walk or StoreWalk.of(source, exclude), REFIT)
    if not frames:
        return pd.DataFrame()
    rows = pd.concat(frames, ignore_index=True)
    if "models" not in rows:
        rows["models"] = rows.run.map(lambda run: run.rsplit("/", 1)[-1].replace(".", "/"))
    rows["fit"] = rows.models.map(fit_design)
    rows = _fill(rows, [c for c in grouping() if c != "fit"])
    for column in ("iia_none", "iia_lo", "iia_hi"):
        if column not in rows:
            rows[column] = float("nan")
    for side in ("src", "trg"):  # task/arch/seed -> columns a table can group by
        parts = rows[side].str.split("/", expand=True)
        rows[f"{side}_task"], rows[f"{side}_arch"], rows[f"{side}_seed"] = parts[0], parts[1], parts[2].astype(int)
        trained = f"{side}_trained"
        rows[trained] = rows[trained].astype(bool) if trained in rows else True
    rows["within"] = rows.src == rows.trg
    # directions trained by the latent loss (into a model whose behaviour may not be used): the
    # only rows with a count of unmatched items
    rows["latent"] = rows.cl_unmatched.notna() if "cl_unmatched" in rows else False
    return rows


def collect_similarity(source: Path, exclude: Path | None = None, walk: StoreWalk | None = None) -> pd.DataFrame:
    """All rows of every `similarity.csv` (RSA, CKA) under `source` (empty when there is none)."""
    frames = _read_all(source, "similarity.csv", walk or StoreWalk.of(source, exclude), RECOMPUTE)
    if not frames:
        return pd.DataFrame()
    return _fill(pd.concat(frames, ignore_index=True), similarity_grouping())


def collect_items(source: Path, exclude: Path | None = None, walk: StoreWalk | None = None) -> pd.DataFrame:
    """Every run's items.csv (one row per validation item: before, after, correct), with the
    run's settings joined from its iia.csv."""
    frames = []
    for path in (walk or StoreWalk.of(source, exclude)).files("items.csv"):
        items = read_table(path, "items.csv", REFIT)
        settings = settings_of(read_table(path.parent / "iia.csv", "iia.csv", REFIT), path.parent.relative_to(source))
        frames.append(items.assign(run=str(path.parent.relative_to(source)), **settings))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def settings_of(iia: pd.DataFrame, run: Path) -> dict:
    """A run's grouping settings (every column that keeps results apart, the fit's design
    included; not the variable, which its items and curves carry per row), read from its
    iia.csv: what its items and curves are kept apart by."""
    run_wide = [c for c in grouping() if c not in ("fit", "variable")]
    first = _fill(iia.head(1).copy(), run_wide).iloc[0]
    models = first["models"] if "models" in first else run.name.replace(".", "/")
    return {**{c: first[c] for c in run_wide}, "fit": fit_design(models)}


def collect_curves(
    source: Path, exclude: Path | None = None, walk: StoreWalk | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training curves of every model: loss and validation accuracy by step, alignment curves
    of every run: IIA per direction and split by step)."""
    training, fits = [], []
    for path in (walk or StoreWalk.of(source, exclude)).files("curve.csv"):
        run = path.parent.relative_to(source)
        if (path.parent / "iia.csv").is_file():  # an alignment run's curve
            frame = read_table(path, "alignment curve.csv", REFIT).assign(run=str(run))
            fits.append(frame.assign(**settings_of(read_table(path.parent / "iia.csv", "iia.csv", REFIT), run)))
        else:  # a model's training curve: the entry is models/<task>/<arch>/seed<s>
            frame = read_table(path, "model curve.csv", "retrain that model with `mas train ... force=true`")
            task, arch, seed = (["?"] * 3 + list(run.parts))[-3:]
            training.append(frame.assign(run=str(run), model=f"{task}/{arch}/{seed.removeprefix('seed')}"))
    return (
        pd.concat(training, ignore_index=True) if training else pd.DataFrame(),
        pd.concat(fits, ignore_index=True) if fits else pd.DataFrame(),
    )
