"""Reading result rows (the rows of iia.csv) the same way everywhere: the m × m IIA matrix, and
the cautions a reader must see before any number (the console and the report both say them)."""

from __future__ import annotations

import pandas as pd

DEFAULT_BUDGET = "quick"  # the default of conf/align.yaml and conf/pipeline.yaml


def matrix_of(rows: pd.DataFrame, labels: list[str], column: str = "iia") -> list[list[float | None]]:
    """The m × m validation values of the given models, rows = source, columns = target (None
    where a direction was not trained); a direction fitted in several runs shows the mean."""
    val = rows[rows.split == "val"]
    found = val.groupby(["src", "trg"])[column].mean().to_dict()
    return [[found.get((s, t)) for t in labels] for s in labels]


def cautions(val: pd.DataFrame) -> list[tuple[bool, str]]:
    """(serious, sentence) for each reason to doubt these validation rows: a budget other than
    the default, directions stopped at the step cap, models below their training criterion."""
    found = []
    runs = val.run if "run" in val else pd.Series(["this run"] * len(val), index=val.index)
    for budget in sorted(set(val.budget)):
        count = runs[val.budget == budget].nunique()
        if budget == "smoke":
            found.append(
                (
                    True,
                    f"{count} run(s) use budget smoke: models and fits trained for seconds. These numbers "
                    "test the software, not the models; do not read them as results.",
                )
            )
        elif budget != DEFAULT_BUDGET:
            found.append((False, f"{count} run(s) use budget {budget} (the default is {DEFAULT_BUDGET})."))
    capped = int((val.stop == "step cap").sum())
    if capped:
        found.append(
            (
                True,
                f"{capped} of {len(val)} directions stopped at the step cap (budget.align.max_steps), "
                "not by a convergence rule: their IIA may still be rising.",
            )
        )
    everyone = pd.Series(True, index=val.index)
    trained = {
        side: val[f"{side}_trained"].astype(bool) if f"{side}_trained" in val else everyone for side in ("src", "trg")
    }
    untrained = sorted(set(val.src[~trained["src"]]) | set(val.trg[~trained["trg"]]))
    if untrained:
        found.append(
            (
                True,
                f"{len(untrained)} model(s) did not reach their training criterion and were aligned anyway "
                f"(allow_undertrained=true): {', '.join(untrained)}.",
            )
        )
    return found
