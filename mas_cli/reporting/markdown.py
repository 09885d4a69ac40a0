"""summary.md: how far to trust the numbers (first screen), then every table of cells.py with the
settings that vary as columns, then the figures."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mas_cli.alignment.methods import METHODS
from mas_cli.registry import NOT_USED
from mas_cli.reporting.cells import KEYS
from mas_cli.reporting.collect import ALWAYS, at_default, differing, grouping, in_effect, similarity_grouping
from mas_cli.results import DEFAULT_BUDGET, cautions

TITLES = {
    "within": "Within-model IIA (DAS directions), by architecture",
    "cross": "Cross-model IIA, by architecture pair",
    "by_setting": "Within and across models, by setting",
    "similarity": "MAS beside RSA and CKA (same model pairs)",
}


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub/CommonMark table ("|" inside a cell escaped)."""

    def cell(value) -> str:
        return "" if pd.isna(value) else str(value).replace("|", "\\|")

    header = "| " + " | ".join(cell(c) for c in frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def varying(val: pd.DataFrame) -> list[str]:
    """The setting columns that tell the report's rows apart (k curves draw one line per value)."""
    return differing(val, grouping())


def same_for_all(table: pd.DataFrame, columns: list[str]) -> str:
    """What every row of a table shares, said once above it: what any result has (method, site,
    variable, k, the fit's design) and every other setting off its default, e.g. `site hidden,
    k 16, cl_eps 10.0 where it applies`; settings no row uses are left out."""
    budgets = table["budget"].unique() if "budget" in table else []
    budget = str(budgets[0]) if len(budgets) == 1 else None
    said = []
    for c in columns:
        if c not in table or c in differing(table, [c]):
            continue
        values = in_effect(table[c])
        if values.empty or (c not in (*ALWAYS, "fit") and at_default(c, values.iloc[0], budget)):
            continue
        where = "" if len(values) == len(table) else " where it applies"
        said.append(f"{c} {values.iloc[0]}{where}")
    return ", ".join(said)


def trust(val: pd.DataFrame) -> list[str]:
    """What a reader must know before reading any number, in words that cannot be missed."""
    if val.empty:
        return []
    found = cautions(val)
    lines = [f"- **{c.long}**" if c.serious else f"- {c.long}" for c in found]
    if not found:
        lines = [
            f"- Every direction stopped by a convergence rule, every model reached its training "
            f"criterion, budget `{DEFAULT_BUDGET}`."
        ]
    return ["## How far to trust these numbers", "", *lines]


HIGH_CHANCE = 0.3  # IIA none from here on (the embedding site: 0.5 and more) turns a value into a margin


def _number(value: float) -> str:
    return "—" if pd.isna(value) else f"{value:.3f}"


def _notes(row) -> str:
    notes = []
    if row.step_cap:
        notes.append(f"step cap ({row.step_cap}/{row.n_rows})")
    if row.undertrained:
        notes.append("undertrained")
    if getattr(row, "budget", DEFAULT_BUDGET) not in (DEFAULT_BUDGET, "paper"):
        notes.append(f"budget {row.budget}")
    if getattr(row, "iia_none", 0.0) >= HIGH_CHANCE:
        notes.append("high chance level: read the margin")
    return ", ".join(notes)


def _interval(low: float, high: float) -> str:
    return "—" if pd.isna(low) else f"{max(low, 0.0):.3f}–{min(high, 1.0):.3f}"


def shown(
    table: pd.DataFrame, leading: list[str], trailing: tuple[str, ...] = (), compact: bool = False
) -> pd.DataFrame:
    """The table as summary.md shows it: the `leading` columns (settings and row key; a setting
    not in effect on a row is left blank), the numbers of each cell, then `trailing` columns
    (their names with spaces, so a header can wrap). `compact` keeps IIA and its chance level
    only: the table beside RSA and CKA repeats cells whose interval and notes the cross-model
    table already shows."""
    order = {name: i for i, name in enumerate(METHODS)}
    leading = [c for c in leading if c in table]
    table = table.sort_values(leading, key=lambda s: s.map(order) if s.name == "method" else s)
    out = table[leading].astype(object).where(table[leading].astype(str) != NOT_USED, "")
    if "mean" in table:
        out["IIA"] = [_number(m) + ("" if pd.isna(s) else f" ± {s:.3f}") for m, s in zip(table["mean"], table["sd"])]
        if not compact:
            out["95 % CI"] = [_interval(low, high) for low, high in zip(table.ci_lo, table.ci_hi)]
            out["seeds"] = table.n_seeds.map(lambda n: "" if pd.isna(n) else str(int(n)))
        out["IIA none"] = table.iia_none.map(_number)
        if not compact:
            out["notes"] = [_notes(row) if not pd.isna(row.n_rows) else "" for row in table.itertuples()]
    for column in trailing:
        out[column.replace("_", " ")] = table[column].round(3)
    return out


EXPLAINED = (
    "IIA: the fraction of validation counterfactuals whose every scored prediction the intervened "
    "target gets right. Each cell aggregates over model pairs (a pair fitted in several runs of one "
    "setting counts once): mean ± sd, a 95 % interval of the mean (Student's t; — for one pair), "
    "`seeds` = distinct model pairs, `IIA none` = the same items with no intervention at all (the "
    "level a swap that does nothing reaches). Every cell is also a row of summary.csv."
)


@dataclass
class Shown:
    """A table as the report shows it, and what all its rows share (said once above it)."""

    table: pd.DataFrame
    same: str


def rendered_tables(val: pd.DataFrame, found: dict[str, pd.DataFrame]) -> dict[str, Shown]:
    """Every table as the report shows it, by title: the settings that differ between its rows,
    the row key, the numbers of each cell (and, beside MAS, the correlative measures)."""
    out = {}
    for name, title in TITLES.items():
        table = found.get(name)
        if table is None or table.empty:
            continue
        key = KEYS[name]
        settings = grouping()
        if name == "similarity":
            settings = list(dict.fromkeys([*settings, *(c for c in similarity_grouping() if c != "seed")]))
        leading = [*(c for c in differing(table, settings) if not (c == "swap" and _swap_is_the_variable(table))), key]
        trailing = tuple(measure_columns(table)) if name == "similarity" else ()
        compact = name == "similarity"
        out[title] = Shown(shown(table, leading, trailing, compact), same_for_all(table, settings))
    pivot = hypotheses(found.get("within"))
    if pivot is not None:
        out["Which program: DAS IIA by architecture and hypothesis"] = Shown(pivot, "method das")
    return out


def _swap_is_the_variable(table: pd.DataFrame) -> bool:
    """Every row's `swap` setting is its own `variable` (one variable a fit): the variable column
    already says it, so the swap column is left out."""
    return "variable" in table and (table["swap"].astype(str) == table["variable"].astype(str)).all()


def hypotheses(within: pd.DataFrame | None) -> pd.DataFrame | None:
    """The which-program pivot: DAS within-model IIA, architectures down, causal-model
    hypotheses (with the variable each swaps) across; None unless several hypotheses were fitted."""
    if within is None or within.empty:
        return None
    das = within[within.method == "das"]
    if das.causal_model.nunique() < 2:
        return None
    label = das.causal_model.astype(str) + " (" + das.variable.astype(str) + ")"
    cell = [  # the chance level beside each value: the context test's IIA none is 1.0 by construction
        _number(m) + ("" if pd.isna(s) else f" ± {s:.3f}") + f" (none {_number(n)})"
        for m, s, n in zip(das["mean"], das["sd"], das["iia_none"])
    ]
    pivot = das.assign(hypothesis=label, cell=cell).pivot_table(
        index="arch", columns="hypothesis", values="cell", aggfunc="first"
    )
    pivot.columns.name = None
    return pivot.reset_index()


def summary_markdown(val: pd.DataFrame, found: dict[str, pd.DataFrame], source: Path, figures: list[str]) -> str:
    """The report as Markdown: how far to trust it, every table, links to every figure."""
    runs = val.run.nunique() if not val.empty else 0
    lines = [
        "# MAS report",
        "",
        f"{runs} alignment run(s) under `{source}`, {len(val)} validation rows.",
        "",
        *trust(val),
        "",
        EXPLAINED,
    ]
    for title, found_table in rendered_tables(val, found).items():
        same = [f"Every row: {found_table.same}.", ""] if found_table.same else []
        lines += ["", f"## {title}", "", *same, markdown_table(found_table.table)]
    if figures:
        lines += ["", "## Figures", "", *[f"![{name}]({name})" for name in figures]]
    lines += ["", "The same report as one page: [index.html](index.html)."]
    return "\n".join(lines) + "\n"


def measure_columns(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if c.startswith(("rsa_", "cka"))]
