"""The report's tables as cells: validation IIA aggregated over independent units.

A cell holds the validation rows of one setting (every grouping column: collect.grouping()) and
one row key (an architecture, an architecture pair, within or across models). Its unit is a
pair of models, unordered (one model for within-model rows): both directions between two models,
and a pair that appears in several runs of the same setting (other alignment seeds, say), are
averaged first and count once. Over the pairs the cell reports

    mean, sd          mean and standard deviation of the pairs' IIA
    ci_lo, ci_hi      95 % interval of that mean (Student's t over the pairs; none for one pair)
    n_seeds           distinct model pairs (the independent units)
    n_rows            validation rows behind them
    iia_none          mean IIA of the same items without any intervention (the chance level)
    step_cap          rows whose fit stopped at the step cap rather than by a convergence rule
    undertrained      rows with a model that did not reach its training criterion
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mas_cli.reporting.collect import grouping, similarity_grouping
from mas_cli.stats import t_interval

STATS = ["mean", "sd", "ci_lo", "ci_hi", "n_seeds", "n_rows", "iia_none", "step_cap", "undertrained"]
KEYS = {"within": "arch", "cross": "pair", "by_setting": "scope", "similarity": "models_pair"}


def cells(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per distinct value of `keys`, with STATS over its model pairs."""
    if rows.empty:
        return pd.DataFrame(columns=[*keys, *STATS])
    flagged = rows.assign(
        capped=(rows.stop == "step cap").astype(int),
        untrained=(~(rows.src_trained & rows.trg_trained)).astype(int),
        unit=unordered_pair(rows.src, rows.trg),  # a → b and b → a: one pair of models, one unit
    )
    pairs = flagged.groupby([*keys, "unit"], dropna=False, sort=False).agg(
        iia=("iia", "mean"),
        iia_none=("iia_none", "mean"),
        n_rows=("iia", "size"),
        step_cap=("capped", "sum"),
        undertrained=("untrained", "sum"),
    )
    out = []
    for key, group in pairs.groupby(level=list(range(len(keys))), dropna=False, sort=False):
        low, high = t_interval(group.iia)
        key = key if isinstance(key, tuple) else (key,)
        out.append(
            dict(zip(keys, key))
            | {
                "mean": group.iia.mean(),
                "sd": group.iia.std(ddof=1) if len(group) > 1 else float("nan"),
                "ci_lo": low,
                "ci_hi": high,
                "n_seeds": len(group),
                "n_rows": int(group.n_rows.sum()),
                "iia_none": group.iia_none.mean(),
                "step_cap": int(group.step_cap.sum()),
                "undertrained": int(group.undertrained.sum()),
            }
        )
    return pd.DataFrame(out)


def _kind(rows: pd.DataFrame, side: str) -> pd.Series:
    """A model's architecture, with its task once models of several tasks are in the report."""
    several_tasks = len(set(rows.src_task) | set(rows.trg_task)) > 1
    return rows[f"{side}_task"] + "/" + rows[f"{side}_arch"] if several_tasks else rows[f"{side}_arch"]


def _latent(rows: pd.DataFrame) -> pd.Series:
    """A suffix for directions into a model whose behaviour may not be used (CLMAS, its ablation,
    latent stitching): their own rows, never averaged with the behaviour-trained directions."""
    latent = rows["latent"] if "latent" in rows else pd.Series(False, index=rows.index)
    return pd.Series(np.where(latent, ", into the inaccessible model", ""), index=rows.index)


def unordered_pair(src: pd.Series, trg: pd.Series) -> list[str]:
    return [" ~ ".join(sorted(p)) for p in zip(src, trg)]


def tables(val: pd.DataFrame, sim: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Every table of the report: within-model IIA by architecture, cross-model IIA by
    architecture pair, within and across models by setting, and cross-model IIA beside RSA and
    CKA per model pair."""
    found = {}
    settings = grouping()
    if not val.empty:
        within, cross = val[val.within], val[~val.within]
        found["within"] = cells(within.assign(arch=_kind(within, "src") + _latent(within)), [*settings, "arch"])
        pair = _kind(cross, "src") + " → " + _kind(cross, "trg") + _latent(cross)
        found["cross"] = cells(cross.assign(pair=pair), [*settings, "pair"])
        directions = np.where(val.within, "within-model", "cross-model") + _latent(val)
        found["by_setting"] = cells(val.assign(scope=directions), [*settings, "scope"])
    if not sim.empty:
        found["similarity"] = similarity_beside_iia(val, sim)
    return found


def similarity_beside_iia(val: pd.DataFrame, sim: pd.DataFrame) -> pd.DataFrame:
    """One row per model pair, site, similarity setting and alignment setting: the pair's
    cross-model IIA (both directions) beside each correlative measure of the same pair."""
    sim_keys = [c for c in similarity_grouping() if c != "site"]
    measures = (
        sim.assign(models_pair=unordered_pair(sim.src, sim.trg))
        .pivot_table(index=["models_pair", "site", *sim_keys], columns="measure", values="value", aggfunc="mean")
        .reset_index()
    )
    measures.columns.name = None
    cross = val[~val.within] if not val.empty else val
    if cross.empty:
        return measures
    cross = cross.assign(models_pair=unordered_pair(cross.src, cross.trg))
    cross = cross[cross.models_pair.isin(set(measures.models_pair))]  # only pairs with RSA/CKA
    if cross.empty:
        return measures
    iia = cells(cross, [*grouping(), "models_pair"])
    return iia.merge(measures, on=["models_pair", "site"], how="outer")


def summary_rows(found: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Every cell of every table, one row each, for summary.csv."""
    frames = [table.assign(table=name) for name, table in found.items() if not table.empty]
    if not frames:
        return pd.DataFrame()
    merged = pd.concat(frames, ignore_index=True)
    return merged[["table", *[c for c in merged.columns if c != "table"]]]
