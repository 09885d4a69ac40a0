"""The report's figures over steps and over counts: training curves of every model, alignment
curves of every fit (IIA per direction, train and validation), DAS per model, and IIA by the
swapped count and by the distance between the original and the swapped count (graded symbols:
the companion paper's Fig. 4)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mas_cli.reporting.figures import colormap, figure, figure_groups, file_name, save
from mas_cli.stats import wilson

MOST_FITS = 24  # alignment-curve figures at most (the rest are listed, not drawn)


def training_curves(curves: pd.DataFrame, out: Path) -> list[str]:
    """Loss and validation task accuracy against step, one line per model."""
    if curves.empty:
        return []
    fig = figure(figsize=(11, 4))
    loss, accuracy = fig.subplots(1, 2)
    colours = colormap("tab10").colors
    arches = sorted(curves.model.str.split("/").str[1].unique())
    for model, line in curves.groupby("model", sort=True):
        arch, seed = model.split("/")[1], int(model.split("/")[2])
        style = dict(color=colours[arches.index(arch) % 10], linestyle=["-", "--", ":", "-."][seed % 4])
        loss.plot(line.step, line.loss, label=model, **style)
        accuracy.plot(line.step, line.val_task_acc, label=model, **style)
    loss.set_yscale("log")
    loss.set_xlabel("training step")
    loss.set_ylabel("training loss (at each validation)")
    accuracy.set_xlabel("training step")
    accuracy.set_ylabel("validation task accuracy")
    accuracy.set_ylim(0, 1.02)
    accuracy.legend(fontsize=7, loc="lower right", ncol=2)
    fig.suptitle("Training curves")
    names = [save(fig, out / "training-curves.png")]
    return names


def alignment_curves(curves: pd.DataFrame, out: Path) -> list[str]:
    """IIA per direction against step, one figure per fit (run): validation solid, training
    dashed. A direction is one line of one run, never a mean over runs."""
    if curves.empty:
        return []
    names = []
    for name, part in list(curves.groupby("run", sort=True))[:MOST_FITS]:
        fig = figure(figsize=(6.5, 4))
        ax = fig.subplots()
        colours = colormap("tab20").colors
        variables = part.variable if "variable" in part else pd.Series("", index=part.index)
        directions = list(dict.fromkeys(zip(part.src, part.trg, variables)))
        for i, (src, trg, variable) in enumerate(directions):
            mine = part[(part.src == src) & (part.trg == trg) & (variables == variable)]
            label = f"{src} → {trg}" + (f" ({variable})" if len({d[2] for d in directions}) > 1 else "")
            for split, style in (("val", "-"), ("train", "--")):
                line = mine[mine.split == split].groupby("step").iia.mean()
                ax.plot(line.index, line.values, style, color=colours[i % 20], label=label if split == "val" else None)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("alignment step")
        ax.set_ylabel("IIA (validation solid, training dashed)")
        ax.set_title(name.removeprefix("alignments/"), fontsize=8)
        if len(directions) <= 12:
            ax.legend(fontsize=6, loc="lower right")
        names.append(save(fig, out / file_name("curves", {"run": name.removeprefix("alignments/")})))
    return names


def das_bars(val: pd.DataFrame, out: Path) -> list[str]:
    """DAS: each model aligned with itself, one bar per model and k (the m × m grid of DAS fits
    would be all diagonal), beside the same items without intervention (black marks)."""
    das = val[val.method == "das"]
    if das.empty:
        return []
    names = []
    for setting, part in figure_groups(das, exclude=("k", "fit")):  # bars: one per model and k
        per_model = part.groupby(["src", "k"]).agg(iia=("iia", "mean"), none=("iia_none", "mean")).reset_index()
        models, ks = sorted(per_model.src.unique()), sorted(per_model.k.unique())
        width = 0.8 / len(ks)
        fig = figure(figsize=(2 + 0.35 * len(models) * len(ks), 3.8))
        ax = fig.subplots()
        colours = colormap("viridis")(np.linspace(0.15, 0.85, len(ks)))
        for j, k in enumerate(ks):
            mine = per_model[per_model.k == k].set_index("src").reindex(models)
            x = np.arange(len(models)) + (j - (len(ks) - 1) / 2) * width
            ax.bar(x, mine.iia, width, color=colours[j], label=f"k {k}")
            ax.scatter(x, mine.none, color="black", marker="_", s=120, zorder=3)
        ax.set_xticks(np.arange(len(models)), models, rotation=45, ha="right")
        ax.set_ylim(0, 1.02)
        ax.set_ylabel("validation IIA (black: without intervention)")
        shown = {k: v for k, v in setting.items() if k != "method"}
        ax.set_title("DAS: " + ", ".join(f"{k} {v}" for k, v in shown.items()), fontsize=9)
        ax.legend(fontsize=7, loc="lower right", ncol=min(len(ks), 6))
        names.append(save(fig, out / file_name("das", shown)))
    return names


def _rate(part: pd.DataFrame) -> pd.DataFrame:
    """IIA with a 95 % Wilson interval per group of items."""
    right, n = int(part.correct.sum()), len(part)
    low, high = wilson(right, n)
    return pd.Series({"iia": right / n, "low": low, "high": high, "none": part.correct_none.mean(), "n": n})


def iia_by_count(items: pd.DataFrame, out: Path) -> list[str]:
    """IIA against the swapped value (left) and against |original − swapped| (right), within
    and across models, per setting (method, site, swapped variable, k)."""
    if items.empty:
        return []
    items = items.dropna(subset=["after"])  # a causal model with no variables has no values to plot
    if items.empty:
        return []
    names = []
    items = items.assign(distance=(items.before - items.after).abs(), within=items.src == items.trg)
    for setting, part in figure_groups(items):
        fig = figure(figsize=(11, 4))
        panels = fig.subplots(1, 2, sharey=True)
        for ax, column, label in zip(panels, ("after", "distance"), ("swapped-in value", "|original − swapped|")):
            for within, style in ((True, "-"), (False, "--")):
                mine = part[part.within == within]
                if mine.empty:
                    continue
                found = mine.groupby(column).apply(_rate, include_groups=False).reset_index()
                colour = "tab:blue" if within else "tab:orange"
                scope = "within" if within else "cross"
                ax.plot(found[column], found.iia, style, marker="o", color=colour, label=f"{scope}-model IIA")
                ax.fill_between(found[column], found.low, found.high, color=colour, alpha=0.15)
                ax.plot(found[column], found.none, ":", color=colour, label=f"{scope}, no intervention")
            ax.set_xlabel(f"{label} ({part['read'].iloc[0]})")
            ax.set_ylim(0, 1.02)
        panels[0].set_ylabel("validation IIA (95 % interval over items)")
        panels[1].legend(fontsize=7, loc="lower left")
        fig.suptitle("IIA by value: " + ", ".join(f"{k} {v}" for k, v in setting.items()))
        names.append(save(fig, out / file_name("iia-by-count", setting)))
    return names
