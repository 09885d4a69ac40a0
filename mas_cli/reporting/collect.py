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
from pathlib import Path

import pandas as pd

from mas_cli.alignment.settings import ALIGN
from mas_cli.correlative.run import SIMILARITY
from mas_cli.errors import ConfigError
from mas_cli.registry import NOT_USED
from mas_cli.store import Entry

ALWAYS = ["method", "site", "variable", "k"]  # the setting columns every table shows


def grouping() -> list[str]:
    """Every column that keeps IIA results apart: each registry setting, the swapped variable,
    the fit's design."""
    return list(dict.fromkeys([*ALWAYS, *ALIGN.grouping(), "fit"]))


def similarity_grouping() -> list[str]:
    return SIMILARITY.grouping()


def fit_design(models: str) -> str:
    """`count/gru/0+count/gru/1+count/lstm/0` -> `count/gru×2 + count/lstm`."""
    counts = Counter(label.rsplit("/", 1)[0] for label in models.split("+"))
    return " + ".join(f"{kind}×{n}" if n > 1 else kind for kind, n in sorted(counts.items()))


def result_files(source: Path, name: str, exclude: Path | None) -> list[Path]:
    """Every `name` file under `source` as its public path (store entries are links to hidden
    version folders, which are skipped), but none under `exclude` (a report's own folder) and
    none of an earlier report; each entry's checksums are verified on the way."""
    found = []
    for folder, subfolders, files in os.walk(source, followlinks=True):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        here = Path(folder)
        if name not in files or (exclude is not None and here.resolve().is_relative_to(exclude.resolve())):
            continue
        if (here / "summary.md").is_file():
            continue  # an earlier report (e.g. <root>/report when out= points elsewhere), not a run
        if here.is_symlink():
            Entry(here, root=source).current()  # refuses a corrupt entry in one line
        found.append(here / name)
    return found


def _read_all(source: Path, name: str, exclude: Path | None, fix: str) -> list[pd.DataFrame]:
    """Every `name` file under `source`, each with a `run` column: its directory relative to
    `source`."""
    frames = []
    for path in result_files(source, name, exclude):
        try:
            frame = pd.read_csv(path)
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
            raise ConfigError(f"{path} is unreadable; {fix}") from None
        if not {"src", "trg"} <= set(frame.columns):
            raise ConfigError(f"{path} lacks the src and trg columns of a result; {fix}")
        frames.append(frame.assign(run=str(path.parent.relative_to(source))))
    return frames


def _fill(rows: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Columns a run lacks (stored before the setting existed): not in effect."""
    for column in columns:
        rows[column] = rows[column].astype(object).where(rows[column].notna(), NOT_USED) if column in rows else NOT_USED
    return rows


def collect(source: Path, exclude: Path | None = None) -> pd.DataFrame:
    """All rows of every `iia.csv` under `source` (empty when there is none)."""
    frames = _read_all(source, "iia.csv", exclude, "refit that run with `mas align ... force=true`")
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
    return rows


def collect_similarity(source: Path, exclude: Path | None = None) -> pd.DataFrame:
    """All rows of every `similarity.csv` (RSA, CKA) under `source` (empty when there is none)."""
    frames = _read_all(source, "similarity.csv", exclude, "recompute it with `mas similarity ... force=true`")
    if not frames:
        return pd.DataFrame()
    return _fill(pd.concat(frames, ignore_index=True), similarity_grouping())


def collect_items(source: Path, exclude: Path | None = None) -> pd.DataFrame:
    """Every run's items.csv (one row per validation item: before, after, correct), with the
    run's settings joined from its iia.csv."""
    frames = []
    for path in result_files(source, "items.csv", exclude):
        items = pd.read_csv(path)
        settings = pd.read_csv(path.parent / "iia.csv", nrows=1)
        keep = [c for c in ("method", "site", "k", "budget", "causal_model", "normalize") if c in settings]
        frames.append(items.assign(run=str(path.parent.relative_to(source)), **settings.iloc[0][keep].to_dict()))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def collect_curves(source: Path, exclude: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training curves of every model: loss and validation accuracy by step, alignment curves
    of every run: IIA per direction and split by step)."""
    training, fits = [], []
    for path in result_files(source, "curve.csv", exclude):
        frame = pd.read_csv(path).assign(run=str(path.parent.relative_to(source)))
        if "val_task_acc" in frame:
            task, arch, seed = path.parent.relative_to(source).parts[-3:]
            training.append(frame.assign(model=f"{task}/{arch}/{seed.removeprefix('seed')}"))
        elif "iia" in frame:
            fits.append(frame)
    return (
        pd.concat(training, ignore_index=True) if training else pd.DataFrame(),
        pd.concat(fits, ignore_index=True) if fits else pd.DataFrame(),
    )
