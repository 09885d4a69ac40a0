"""The report's figures: m × m IIA heatmaps and IIA against k, one per setting, written as PNG with
file names safe for every viewer (letters, digits, `.`, `_`, `-` only)."""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from mas_cli import store
from mas_cli.registry import NOT_USED
from mas_cli.reporting.cells import cells
from mas_cli.reporting.collect import ALWAYS, differing, grouping


def safe(value) -> str:
    """A value as part of a file name: anything but letters, digits, `.` and `-` becomes `_`."""
    return re.sub(r"[^A-Za-z0-9.\-]+", "_", str(value)).strip("_") or "none"


def figure(**kwargs):
    """A figure drawn without pyplot: no global backend is switched and no figure is left open in
    pyplot's registry, so a report leaves a notebook's matplotlib as it found it (savefig picks
    the file-only Agg canvas by itself; CI has no display)."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def colormap(name: str):
    from matplotlib import colormaps

    return colormaps[name]


def save(fig, path: Path) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    store.write_bytes(path, buffer.getvalue())
    return path.name


def figure_groups(frame: pd.DataFrame, exclude: tuple[str, ...] = ()):
    """(setting, rows) per figure: the rows are split by every column that keeps results apart
    (collect.grouping(): each registry setting, the variable, the fit's design), as the tables
    are, so no figure pools different fits; `setting` names only what tells the figures apart
    (and method, site, variable and k), never a setting that is not in effect, so titles and
    names stay short."""
    keys = [c for c in grouping() if c in frame and c not in exclude]
    shown = [c for c in keys if c in ALWAYS or c in differing(frame, [c])]
    for values, part in frame.groupby(keys, sort=False, dropna=False):
        setting = dict(zip(keys, values if isinstance(values, tuple) else (values,)))
        yield {c: setting[c] for c in shown if str(setting[c]) != NOT_USED}, part


LONGEST_NAME = 80  # characters of a figure's file name: readable in a listing, safe on every system


def file_name(prefix: str, setting: dict) -> str:
    """A figure's file name from its setting: `<prefix>-<value>-...`, k as `k<k>`. A name longer
    than LONGEST_NAME keeps its start and ends in a short digest of the whole, so it stays unique."""
    name = "-".join([prefix, *(f"k{v}" if k == "k" else safe(v) for k, v in setting.items())])
    if len(name) + len(".png") > LONGEST_NAME:
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        name = name[: LONGEST_NAME - len(".png") - len(digest) - 1].rstrip("-_") + "-" + digest
    return name + ".png"


def _described(setting: dict) -> str:
    return ", ".join(f"{key} {value}" for key, value in setting.items() if key not in ("method", "fit"))


def heatmaps(val: pd.DataFrame, out: Path) -> list[str]:
    """One m × m validation-IIA heatmap (rows source, columns target) per setting and fit design
    (figure_groups); a direction fitted in several runs of it (other alignment seeds) shows its
    mean. Fits that cover only some directions (pairwise fits) leave the others empty, not zero."""
    names = []
    for setting, part in figure_groups(val):
        grid = part.pivot_table(index="src", columns="trg", values="iia", aggfunc="mean")
        labels = sorted(set(grid.index) | set(grid.columns))
        grid = grid.reindex(index=labels, columns=labels).to_numpy(dtype=float)
        size = 1.2 + 0.9 * len(labels)
        fig = figure(figsize=(size + 1.5, size))
        ax = fig.subplots()
        image = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis")
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
        ax.set_yticks(range(len(labels)), labels)
        for (i, j), value in np.ndenumerate(grid):
            if not np.isnan(value):
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", color="white" if value < 0.6 else "black")
        ax.set_xlabel("target")
        ax.set_ylabel("source")
        fit = part.fit.iloc[0]
        ax.set_title(f"{setting['method'].upper()} validation IIA, fit {fit}\n({_described(setting)})")
        fig.colorbar(image, ax=ax, fraction=0.046)
        names.append(save(fig, out / file_name("heatmap", setting)))
    return names


def k_curves(val: pd.DataFrame, keys: list[str], out: Path) -> list[str]:
    """Validation IIA against k where k was swept with every other setting the same: one line per
    setting and within/across models, the mean over model pairs with its ± sd band."""
    names = []
    others = [k for k in keys if k not in ("k", "site", "variable")]
    for (site, variable), part in val.groupby(["site", "variable"], sort=False):
        lines = [
            (setting, line) for setting, line in part.groupby([*others, "within"], sort=False) if line.k.nunique() >= 2
        ]
        if not lines:
            continue
        fig = figure(figsize=(6.5, 4.5))
        ax = fig.subplots()
        colours = colormap("tab20").colors
        for i, (setting, line) in enumerate(lines):
            curve = cells(line, ["k"]).sort_values("k")
            label = ", ".join(str(v) for v in setting[:-1] if str(v) != NOT_USED) + (
                " within" if setting[-1] else " cross"
            )
            colour = colours[i % len(colours)]
            ax.plot(curve.k, curve["mean"], "-" if setting[-1] else "--", marker="o", color=colour, label=label)
            band = curve["sd"].fillna(0)
            ax.fill_between(curve.k, curve["mean"] - band, curve["mean"] + band, color=colour, alpha=0.15)
        ticks = sorted(part.k.unique())
        ax.set_xscale("log", base=2)
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("k (aligned dimensions)")
        ax.set_ylabel("validation IIA (mean ± sd over model pairs)")
        ax.set_title(f"IIA vs k ({site}, {variable})")
        ax.legend(fontsize=7, loc="lower right")
        names.append(save(fig, out / f"iia-vs-k-{safe(site)}-{safe(variable)}.png"))
    return names
