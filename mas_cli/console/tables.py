"""The tables commands print at the end of a run: a trained model's summary, an alignment's m × m
IIA table, RSA/CKA of a pair, a pipeline's plan."""

from __future__ import annotations

import pandas as pd
from rich.table import Table

from mas_cli.console import WIDTH, console, path_line
from mas_cli.results import cautions, matrix_of


def _width(columns: list[int]) -> int:
    """A rich table's width with columns of these content widths (borders and padding)."""
    return 1 + sum(w + 3 for w in columns)


def short_labels(labels: list[str], first: str = "source \\ target") -> tuple[list[str], list[str]]:
    """Column labels for an m × m table that fits WIDTH: the labels themselves; without the task
    every model shares (`gru/0`); else M1, M2, ... with a legend (lines `M1 = count/gru/0`)."""
    candidates = [labels]
    if len({label.split("/")[0] for label in labels}) == 1:
        candidates.append([label.split("/", 1)[1] for label in labels])
    for names in candidates:
        rows = max([len(first), *map(len, names)])
        if _width([rows, *(max(len(n), 5) for n in names)]) <= WIDTH:
            return names, []
    names = [f"M{i + 1}" for i in range(len(labels))]
    return names, [f"{name} = {label}" for name, label in zip(names, labels)]


def print_training(title: str, metrics: dict, entry, reused: bool) -> None:
    console.print(title)
    table = Table(show_header=False)
    heldout = metrics["heldout_task_acc"]
    rows = [
        ("trained_to_criterion", f"{metrics['trained_to_criterion']} (criterion {metrics['criterion']})"),
        ("val_task_acc", f"{metrics['val_task_acc']:.4f} over {metrics['val_size']} sequences"),
        ("heldout_task_acc", "n/a (no held-out counts)" if heldout is None else f"{heldout:.4f}"),
        ("steps", str(metrics["steps"])),
        ("wall_s", f"{metrics['wall_s']:.1f}" + (" (earlier run, reused)" if reused else "")),
    ]
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)
    path_line("model store entry:", entry)


def print_iia_table(rows: pd.DataFrame, labels: list[str]) -> dict:
    """The m × m validation IIA table, the chance level (the same items without intervention)
    and the width of the items' 95 % intervals, then the mean within- and cross-model IIA."""
    matrix, none = matrix_of(rows, labels), matrix_of(rows, labels, "iia_none")
    val = rows[rows.split == "val"]
    first = val.iloc[0]
    console.print(f"{first.method.upper()} validation IIA (swap {first.variable}, site {first.site}, k {first.k})")
    names, legend = short_labels(labels)
    table = Table()
    table.add_column("source \\ target")
    for name in names:
        table.add_column(name, justify="right")
    for name, row in zip(names, matrix):
        table.add_row(name, *("—" if v is None else f"{v:.3f}" for v in row))
    console.print(table)
    for line in legend:
        console.print(line)
    half = ((val.iia_hi - val.iia_lo) / 2).dropna()
    if len(half):
        items = f"{int(val.n.min())}" if val.n.min() == val.n.max() else f"{int(val.n.min())}–{int(val.n.max())}"
        console.print(f"95 % intervals ({items} items a direction): ±{half.min():.3f} to ±{half.max():.3f}")
    m = len(labels)
    summary = {}
    for scope, cells in (
        ("within", [(i, i) for i in range(m)]),
        ("cross", [(i, j) for i in range(m) for j in range(m) if i != j]),
    ):
        values = [matrix[i][j] for i, j in cells if matrix[i][j] is not None]
        chance = [none[i][j] for i, j in cells if none[i][j] is not None and not pd.isna(none[i][j])]
        summary[f"{scope}_iia"] = sum(values) / len(values) if values else None
        summary[f"{scope}_iia_none"] = sum(chance) / len(chance) if chance else None
        if values:
            without = f" (without intervention: {summary[f'{scope}_iia_none']:.3f})" if chance else ""
            console.print(f"mean {scope}-model IIA: {summary[f'{scope}_iia']:.3f}{without}")
        else:
            console.print(f"mean {scope}-model IIA: n/a")
    return summary


def print_convergence(val: pd.DataFrame) -> None:
    """How many directions stopped by a convergence rule rather than at the step cap."""
    converged = int((val.stop != "step cap").sum())
    console.print(f"{converged} of {len(val)} directions stopped by a convergence rule")


def print_cautions(val: pd.DataFrame) -> None:
    """Every reason to doubt these rows, in words a reader cannot miss."""
    for caution in cautions(val):
        console.print(f"[bold yellow]warning:[/] {caution.short}" if caution.serious else f"note: {caution.short}")
        for item in caution.items:
            console.print(f"  {item}")


def print_alignment(rows: pd.DataFrame, labels: list[str], run_dir, reused: bool) -> dict:
    """One table per swapped variable (and the null block); returns the summary of the first."""
    variables = list(dict.fromkeys(rows.variable))
    summary = print_iia_table(rows[rows.variable == variables[0]], labels)
    for variable in variables[1:]:
        print_iia_table(rows[rows.variable == variable], labels)
    first = rows.iloc[0]
    console.print(f"steps {first.steps}, stopped: {first.stop}{' (earlier run, reused)' if reused else ''}")
    print_cautions(rows[rows.split == "val"])
    path_line("results:", run_dir)
    return summary


def print_similarity(rows: pd.DataFrame) -> dict:
    first = rows.iloc[0]
    console.print(f"{first.src} vs {first.trg}, site {first.site}")
    console.print(f"(mean ± sd over {first.n} subsets of {first.subset_rows} positions)")
    table = Table()
    for column in ("measure", "value"):
        table.add_column(column)
    for r in rows.itertuples():
        table.add_row(r.measure, f"{r.value:.3f} ± {r.sd:.3f}")
    console.print(table)
    return dict(zip(rows.measure, rows.value))


def print_plan(stages: dict[str, list]) -> None:
    """A pipeline's jobs per stage: how many, how many are done already, how many will run."""
    console.print("mas pipeline")
    table = Table()
    for column in ("stage", "jobs", "done already (reused)", "to run"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for stage, jobs in stages.items():
        done = sum(job.done for job in jobs)
        table.add_row(stage, str(len(jobs)), str(done), str(len(jobs) - done))
    console.print(table)
