"""`mas report`: every run's `iia.csv` (and `similarity.csv`) under a root, gathered into the tables
and plots a reader wants, with how far to trust them on the first screen.

Reads only the run directories (never re-runs a model) and writes only into `<out>/`:
    iia.csv          every row of every run, tidy, with the run directory it came from
    summary.md       how far to trust the numbers, then validation IIA within models (by
                     architecture), across models (by architecture pair) and by setting, and
                     MAS beside RSA and CKA for the same pairs; one row per cell (cells.py)
    summary.csv      every cell of every summary.md table, each grouping setting a column
    similarity.csv   every RSA/CKA row (`mas similarity`)
    index.html       all of it on one self-contained page, each table also as LaTeX and Markdown
    heatmap-<setting>.png      m × m validation IIA (rows source, columns target) per setting
    das-<setting>.png          DAS: one bar per model
    iia-vs-k-<site>-<variable>.png   where k was swept (mean ± sd over model pairs)
    iia-by-count-<setting>.png       IIA by swapped value and by |original − swapped|
    training-curves.png, curves-<run>.png   loss and accuracy of every model, IIA of every fit
Results of different settings (every registry setting, the fit's design) are never pooled.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from mas_cli import store
from mas_cli.console import console
from mas_cli.errors import ConfigError
from mas_cli.reporting.cells import summary_rows, tables
from mas_cli.reporting.claims import claims_markdown, claims_table
from mas_cli.reporting.collect import StoreWalk, collect, collect_curves, collect_items, collect_similarity
from mas_cli.reporting.curves import alignment_curves, das_bars, iia_by_count, training_curves
from mas_cli.reporting.figures import heatmaps, k_curves
from mas_cli.reporting.html import index_html
from mas_cli.reporting.markdown import rendered_tables, summary_markdown, varying

__all__ = ["collect", "collect_similarity", "write_report"]


def _write_csv(path: Path, frame: pd.DataFrame) -> None:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    store.write_text(path, buffer.getvalue())


def write_report(source: Path, out: Path) -> pd.DataFrame:
    """Returns the IIA rows (possibly empty when the root holds only similarity results)."""
    walk = StoreWalk.of(source, exclude=out)  # one walk, each entry verified once, for every table
    rows, sim = collect(source, walk=walk), collect_similarity(source, walk=walk)
    if rows.empty and sim.empty:
        raise ConfigError(
            f"no iia.csv or similarity.csv under {source}; run `mas align` first "
            "or point paths.root at a results folder"
        )
    skipped = walk.skipped
    if skipped:
        console.print(
            f"not read: {len(skipped)} folder(s) or link(s) under {source} holding results that are not store "
            f"entries (copies of a run, links out of the root), e.g. {skipped[0]}"
        )
    val = rows[rows.split == "val"] if not rows.empty else rows
    found = tables(val, sim)
    # everything is read (and checked) before anything is written: a bad stored file leaves no half report
    training, fits = collect_curves(source, walk=walk)
    items = collect_items(source, walk=walk) if not val.empty else pd.DataFrame()
    figures = {
        "Heatmaps": [],
        "DAS per model": [],
        "IIA against k": [],
        "IIA by value": [],
        "Training curves": training_curves(training, out),
        "Alignment curves": [],
    }
    if not val.empty:
        figures["Heatmaps"] = heatmaps(val[val.method != "das"], out)
        figures["DAS per model"] = das_bars(val, out)
        figures["IIA against k"] = k_curves(val, varying(val), out)
        figures["IIA by value"] = iia_by_count(items, out)
        figures["Alignment curves"] = alignment_curves(fits, out)
        _write_csv(out / "iia.csv", rows)
    if not sim.empty:
        _write_csv(out / "similarity.csv", sim)
    _write_csv(out / "summary.csv", summary_rows(found))
    shown = rendered_tables(val, found)
    claims = claims_table(val, sim, items)
    claims = claims if claims.seen.any() else None  # a root that holds nothing any claim needs: no claims files
    if claims is not None:
        _write_csv(out / "claims.csv", claims.drop(columns="seen"))
        store.write_text(out / "claims.md", claims_markdown(claims))
    every = [name for names in figures.values() for name in names]
    store.write_text(out / "summary.md", summary_markdown(val, found, source, every))
    store.write_text(out / "index.html", index_html(out, source, val, shown, figures, claims))
    return rows
