"""Reading result rows (the rows of iia.csv) the same way everywhere: the m × m IIA matrix, and
the cautions a reader must see before any number (the console and the report both say them)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

DEFAULT_BUDGET = "quick"  # the default of conf/align.yaml and conf/pipeline.yaml


def matrix_of(rows: pd.DataFrame, labels: list[str], column: str = "iia") -> list[list[float | None]]:
    """The m × m validation values of the given models, rows = source, columns = target (None
    where a direction was not trained); a direction fitted in several runs shows the mean."""
    val = rows[rows.split == "val"]
    found = val.groupby(["src", "trg"])[column].mean().to_dict()
    return [[found.get((s, t)) for t in labels] for s in labels]


@dataclass(frozen=True)
class Caution:
    serious: bool
    short: str  # one console line (under 80 characters with its prefix)
    long: str  # the report's sentence
    items: tuple[str, ...] = ()  # what it names (models), one console line each


def cautions(val: pd.DataFrame) -> list[Caution]:
    """Every reason to doubt these validation rows: a budget other than the default, directions
    stopped at the step cap, models below their training criterion."""
    found = []
    runs = val.run if "run" in val else pd.Series(["this run"] * len(val), index=val.index)
    for budget in sorted(set(val.budget)):
        count = runs[val.budget == budget].nunique()
        if budget == "smoke":
            found.append(
                Caution(
                    True,
                    f"budget smoke ({count} run(s)): numbers that test the software only",
                    f"{count} run(s) use budget smoke: models and fits trained for seconds. These numbers "
                    "test the software, not the models; do not read them as results.",
                )
            )
        elif budget != DEFAULT_BUDGET:
            sentence = f"{count} run(s) use budget {budget} (the default is {DEFAULT_BUDGET})."
            found.append(Caution(False, sentence, sentence))
    capped = int((val.stop == "step cap").sum())
    if capped:
        found.append(
            Caution(
                True,
                f"{capped} of {len(val)} directions stopped at the step cap: IIA may still be rising",
                f"{capped} of {len(val)} directions stopped at the step cap (budget.align.max_steps), "
                "not by a convergence rule: their IIA may still be rising.",
            )
        )
    everyone = pd.Series(True, index=val.index)
    trained = {side: val.get(f"{side}_trained", everyone).astype(bool) for side in ("src", "trg")}
    untrained = sorted(set(val.src[~trained["src"]]) | set(val.trg[~trained["trg"]]))
    if untrained:
        found.append(
            Caution(
                True,
                f"{len(untrained)} model(s) below their training criterion (allow_undertrained=true):",
                f"{len(untrained)} model(s) did not reach their training criterion and were aligned anyway "
                f"(allow_undertrained=true): {', '.join(untrained)}.",
                tuple(untrained),
            )
        )
    return found
