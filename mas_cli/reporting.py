"""`mas report`: every run's `iia.csv` under a root, gathered into tables and plots a reader wants.

Reads only the run directories (never re-runs a model) and writes only into `<out>/`:
    iia.csv      every row of every run, tidy, with the run directory it came from
    summary.md   validation IIA within and across models by architecture (pair) and method,
                 mean ± sd and n over seeds and runs; MAS beside DAS for the same pairs
    heatmap-<method>-<site>-<variable>-k<k>[-...].png   m × m validation IIA (rows source,
                 columns target), one per setting (other settings are appended where they vary)
    iia-vs-k-<site>-<variable>.png                 when k was swept
    similarity.csv   every RSA/CKA row (`mas similarity`), joined in summary.md with the IIA of
                 the same model pairs
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from mas_cli import store
from mas_cli.alignment.settings import ALIGN
from mas_cli.errors import ConfigError
from mas_cli.registry import NOT_USED

SETTING = ["method", "site", "variable", "k"]  # always shown


def more_settings() -> list[str]:
    """Every other column that keeps results apart: the registry's settings and the models of
    the fit (shown where they vary across the runs)."""
    return [c for c in [*ALIGN.grouping(), "models"] if c not in SETTING]


def _read_all(source: Path, name: str, exclude: Path | None, fix: str) -> list[pd.DataFrame]:
    """Every `name` file under `source` (but not under `exclude`, a report's own folder), each
    with a `run` column: its directory relative to `source`."""
    frames = []
    for path in sorted(source.rglob(name)):
        if exclude is not None and path.resolve().is_relative_to(exclude.resolve()):
            continue
        if (path.parent / "summary.md").is_file():
            continue  # an earlier report (e.g. <root>/report when out= points elsewhere), not a run
        try:
            frame = pd.read_csv(path)
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError):
            raise ConfigError(f"{path} is unreadable; {fix}") from None
        frames.append(frame.assign(run=str(path.parent.relative_to(source))))
    return frames


def collect(source: Path, exclude: Path | None = None) -> pd.DataFrame:
    """All rows of every `iia.csv` under `source` (empty when there is none)."""
    frames = _read_all(source, "iia.csv", exclude, "refit that run with `mas align ... force=true`")
    if not frames:
        return pd.DataFrame()
    rows = pd.concat(frames, ignore_index=True)
    for column in more_settings():  # runs stored before a setting existed: not in effect
        rows[column] = rows[column].astype(object).where(rows[column].notna(), NOT_USED) if column in rows else NOT_USED
    for side in ("src", "trg"):  # task/arch/seed -> columns a table can group by
        parts = rows[side].str.split("/", expand=True)
        rows[f"{side}_task"], rows[f"{side}_arch"], rows[f"{side}_seed"] = parts[0], parts[1], parts[2].astype(int)
    rows["within"] = rows.src == rows.trg
    return rows


def collect_similarity(source: Path, exclude: Path | None = None) -> pd.DataFrame:
    """All rows of every `similarity.csv` (RSA, CKA) under `source` (empty when there is none)."""
    frames = _read_all(source, "similarity.csv", exclude, "recompute it with `mas similarity ... force=true`")
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _pair(src: pd.Series, trg: pd.Series) -> list[str]:
    return [" ~ ".join(sorted(p)) for p in zip(src, trg)]


def similarity_beside_iia(val: pd.DataFrame, sim: pd.DataFrame) -> pd.DataFrame:
    """One row per model pair and site with RSA/CKA: the pair's cross-model validation IIA (mean
    of both directions) per method and k beside each correlative measure."""
    measures = sim.assign(pair=_pair(sim.src, sim.trg)).pivot_table(
        index=["pair", "site"], columns="measure", values="value", aggfunc="mean"
    )
    if not val.empty:
        cross = val[~val.within]
        cross = cross.assign(pair=_pair(cross.src, cross.trg), setting=cross.method + " IIA k" + cross.k.astype(str))
        iia = cross.pivot_table(index=["pair", "site"], columns="setting", values="iia", aggfunc="mean")
        measures = iia.join(measures, how="right")
    return measures.round(3).reset_index()


def settings_of(rows: pd.DataFrame) -> list[str]:
    """The setting columns that tell runs apart here: the basic ones and any other that varies."""
    return SETTING + [c for c in more_settings() if rows[c].nunique() > 1]


def _mean_sd_n(values: pd.Series) -> str:
    n = len(values)
    sd = values.std(ddof=1) if n > 1 else float("nan")
    return f"{values.mean():.3f} ± {sd:.3f} (n={n})" if n > 1 else f"{values.mean():.3f} (n=1)"


def pair_table(val: pd.DataFrame, within: bool) -> pd.DataFrame:
    """Validation IIA by architecture (pair) and method: rows arch or `src → trg`, columns method."""
    part = val[val.within == within]
    if part.empty:
        return pd.DataFrame()
    # Name tasks too once models of several tasks are in the report, so count/gru → count/gru and
    # arithmetic/gru → arithmetic/gru stay apart.
    several_tasks = len(set(val.src_task) | set(val.trg_task)) > 1
    src = part.src_task + "/" + part.src_arch if several_tasks else part.src_arch
    trg = part.trg_task + "/" + part.trg_arch if several_tasks else part.trg_arch
    key = src if within else src + " → " + trg
    keys = [c for c in settings_of(val) if c != "method"]
    grouped = part.assign(pair=key).groupby([*keys, "pair", "method"]).iia.agg(_mean_sd_n)
    return grouped.unstack("method").reset_index()


def _markdown(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = [
        "| " + " | ".join("" if pd.isna(v) else str(v) for v in row) + " |" for row in frame.itertuples(index=False)
    ]
    return "\n".join([header, rule, *body])


def summary_markdown(rows: pd.DataFrame, sim: pd.DataFrame, source: Path, figures: list[str]) -> str:
    val = rows[rows.split == "val"] if not rows.empty else rows
    runs = rows.run.nunique() if not rows.empty else 0
    lines = [
        "# MAS report",
        "",
        f"{runs} alignment run(s) under `{source}`, {len(val)} validation rows. IIA = fraction of",
        "validation counterfactuals whose every response prediction the intervened target gets right.",
        "Each cell: mean ± sd over the directions of every seed and run it covers, and their number n.",
    ]
    if not val.empty:
        for title, within in (("Within-model IIA (DAS directions)", True), ("Cross-model IIA", False)):
            table = pair_table(val, within)
            lines += ["", f"## {title}", "", _markdown(table) if not table.empty else "(none)"]
        overall = val.groupby([*settings_of(val), "within"]).iia.agg(_mean_sd_n).unstack("within")
        overall = overall.rename(columns={True: "within-model", False: "cross-model"}).reset_index()
        lines += ["", "## By setting", "", _markdown(overall)]
    if not sim.empty:
        lines += [
            "",
            "## MAS beside RSA and CKA (same model pairs)",
            "",
            "Cross-model IIA (mean of both directions) per method and k, beside RSA (RDM: cosine or",
            "euclidean; correlation: spearman or pearson) and linear CKA on the same Multi-Object stimuli.",
            "",
            _markdown(similarity_beside_iia(val, sim)),
        ]
    if figures:
        lines += ["", "## Figures", "", *[f"![{name}]({name})" for name in figures]]
    return "\n".join(lines) + "\n"


def _pyplot():
    """pyplot on the file-only backend (a report never opens a window; CI has no display)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    return pyplot


def heatmaps(rows: pd.DataFrame, out: Path) -> list[str]:
    """One m × m validation-IIA heatmap per method, site, variable and k (mean over runs)."""
    plt = _pyplot()
    names = []
    keys = settings_of(rows)
    for values, part in rows[rows.split == "val"].groupby(keys):
        setting = dict(zip(keys, values))
        grid = part.pivot_table(index="src", columns="trg", values="iia", aggfunc="mean")
        labels = sorted(set(grid.index) | set(grid.columns))
        grid = grid.reindex(index=labels, columns=labels)
        size = 1.2 + 0.9 * len(labels)
        fig, ax = plt.subplots(figsize=(size + 1.5, size))
        image = ax.imshow(grid.to_numpy(dtype=float), vmin=0, vmax=1, cmap="viridis")
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
        ax.set_yticks(range(len(labels)), labels)
        for (i, j), value in np.ndenumerate(grid.to_numpy(dtype=float)):
            if not np.isnan(value):
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", color="white" if value < 0.6 else "black")
        ax.set_xlabel("target")
        ax.set_ylabel("source")
        described = ", ".join(f"{key} {value}" for key, value in setting.items() if key != "method")
        ax.set_title(f"{setting['method'].upper()} validation IIA\n({described})")
        fig.colorbar(image, ax=ax, fraction=0.046)
        name = "-".join(f"{'k' if key == 'k' else ''}{value}" for key, value in setting.items())
        names.append(_save(fig, out / f"heatmap-{name}.png"))
        plt.close(fig)
    return names


def k_curves(rows: pd.DataFrame, out: Path) -> list[str]:
    """Mean validation IIA against k (within- and cross-model, one line per method), where k varies."""
    plt = _pyplot()
    names = []
    val = rows[rows.split == "val"]
    for (site, variable), part in val.groupby(["site", "variable"]):
        if part.k.nunique() < 2:
            continue
        fig, ax = plt.subplots(figsize=(5.5, 4))
        for (method, within), line in part.groupby(["method", "within"]):
            curve = line.groupby("k").iia.mean()
            style = "-" if within else "--"
            ax.plot(curve.index, curve.values, style, marker="o", label=f"{method} {'within' if within else 'cross'}")
        ax.set_xscale("log", base=2)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("k (aligned dimensions)")
        ax.set_ylabel("validation IIA")
        ax.set_title(f"IIA vs k ({site}, {variable})")
        ax.legend()
        names.append(_save(fig, out / f"iia-vs-k-{site}-{variable}.png"))
        plt.close(fig)
    return names


def _save(fig, path: Path) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    store.write_bytes(path, buffer.getvalue())
    return path.name


def _write_csv(path: Path, frame: pd.DataFrame) -> None:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    store.write_text(path, buffer.getvalue())


def write_report(source: Path, out: Path) -> pd.DataFrame:
    """Returns the IIA rows (possibly empty when the root holds only similarity results)."""
    rows, sim = collect(source, exclude=out), collect_similarity(source, exclude=out)
    if rows.empty and sim.empty:
        raise ConfigError(
            f"no iia.csv or similarity.csv under {source}; run `mas align` first "
            "or point paths.root at a results folder"
        )
    figures = heatmaps(rows, out) + k_curves(rows, out) if not rows.empty else []
    if not rows.empty:
        _write_csv(out / "iia.csv", rows)
    if not sim.empty:
        _write_csv(out / "similarity.csv", sim)
    store.write_text(out / "summary.md", summary_markdown(rows, sim, source, figures))
    return rows
