"""The tables commands print at the end of a run: a trained model's summary, an alignment's m × m
IIA table, RSA/CKA of a pair, a pipeline's plan."""

from __future__ import annotations

import pandas as pd
from rich.table import Table

from mas_cli.console import console


def print_training(title: str, metrics: dict, entry, reused: bool) -> None:
    table = Table(title=title, show_header=False)
    heldout = metrics["heldout_task_acc"]
    rows = [
        ("trained_to_criterion", f"{metrics['trained_to_criterion']} (criterion {metrics['criterion']})"),
        ("val_task_acc", f"{metrics['val_task_acc']:.4f} over {metrics['val_size']} sequences"),
        ("heldout_task_acc", "n/a (no held-out counts)" if heldout is None else f"{heldout:.4f}"),
        ("steps", str(metrics["steps"])),
        ("wall_s", f"{metrics['wall_s']:.1f}" + (" (earlier run, reused)" if reused else "")),
        ("model store entry", str(entry)),
    ]
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)


def matrix_of(rows: pd.DataFrame, labels: list[str]) -> list[list[float | None]]:
    """The m × m validation IIA of the given models, rows = source, columns = target (None where
    a direction was not trained); a direction fitted in several runs (pairwise fits share
    within-model directions) shows the mean."""
    val = rows[rows.split == "val"]
    found = val.groupby(["src", "trg"]).iia.mean().to_dict()
    return [[found.get((s, t)) for t in labels] for s in labels]


def print_iia_table(rows: pd.DataFrame, labels: list[str]) -> dict:
    """The m × m table, then the mean within- and cross-model IIA."""
    matrix = matrix_of(rows, labels)
    first = rows.iloc[0]
    title = f"{first.method.upper()} validation IIA (swap {first.variable}, site {first.site}, k {first.k})"
    table = Table(title=title)
    table.add_column("source \\ target")
    for label in labels:
        table.add_column(label, justify="right")
    for label, row in zip(labels, matrix):
        table.add_row(label, *("—" if v is None else f"{v:.3f}" for v in row))
    console.print(table)
    m = len(labels)
    within = [matrix[i][i] for i in range(m) if matrix[i][i] is not None]
    cross = [matrix[i][j] for i in range(m) for j in range(m) if i != j and matrix[i][j] is not None]
    summary = {
        "within_iia": sum(within) / len(within) if within else None,
        "cross_iia": sum(cross) / len(cross) if cross else None,
    }
    for key, value in summary.items():
        console.print(f"mean {key.replace('_iia', '')}-model IIA: " + ("n/a" if value is None else f"{value:.3f}"))
    return summary


def print_alignment(rows: pd.DataFrame, labels: list[str], run_dir, reused: bool) -> dict:
    """One table per swapped variable (and the null block); returns the summary of the first."""
    variables = list(dict.fromkeys(rows.variable))
    summary = print_iia_table(rows[rows.variable == variables[0]], labels)
    for variable in variables[1:]:
        print_iia_table(rows[rows.variable == variable], labels)
    first = rows.iloc[0]
    console.print(f"steps {first.steps}, stopped: {first.stop}{' (earlier run, reused)' if reused else ''}")
    console.print(f"results: {run_dir}")
    return summary


def print_similarity(rows: pd.DataFrame) -> dict:
    first = rows.iloc[0]
    table = Table(title=f"{first.src} vs {first.trg}, site {first.site} (mean ± sd over {first.n} subsets)")
    for column in ("measure", "value"):
        table.add_column(column)
    for r in rows.itertuples():
        table.add_row(r.measure, f"{r.value:.3f} ± {r.sd:.3f}")
    console.print(table)
    return dict(zip(rows.measure, rows.value))


def print_plan(stages: dict[str, list]) -> None:
    """A pipeline's jobs per stage: how many, how many are done already, how many will run."""
    table = Table(title="mas pipeline")
    for column in ("stage", "jobs", "done already (reused)", "to run"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for stage, jobs in stages.items():
        done = sum(job.done for job in jobs)
        table.add_row(stage, str(len(jobs)), str(done), str(len(jobs) - done))
    console.print(table)
