"""The claims table: planted results that meet a rule hold, ones that break it do not, overlapping
intervals, too few model pairs and smoke-budget numbers are inconclusive; the statistic equals a
plain recomputation from the planted numbers; the report writes claims.md/csv and puts them first."""

from __future__ import annotations

import itertools
import math

import pandas as pd
import pytest
from scipy import stats

from mas_cli.reporting import collect, write_report
from mas_cli.reporting.claims import COLUMNS, claims_table
from mas_cli.reporting.collect import collect_items
from tests.helpers import fake_run

GRUS = [f"count/gru/{s}" for s in range(3)]


def gru_seed_root(root, cross: dict[tuple[str, str], float], **settings) -> pd.DataFrame:
    """One MAS fit over three GRU seeds: within-model IIA 0.97, cross-model IIA as given
    (chance level 0.1 everywhere); returns the report's validation rows."""
    iia = {(m, m): 0.97 for m in GRUS} | cross
    fake_run(root, "alignments/mas-hidden-count-k16-s0/grus", iia, **settings)
    rows = collect(root)
    return rows[rows.split == "val"]


def claim(table: pd.DataFrame, claim_id: str) -> pd.Series:
    (row,) = [r for _, r in table.iterrows() if r.claim.startswith(f"{claim_id}:")]
    return row


def cross_all(values: list[float]) -> dict[tuple[str, str], float]:
    """Both directions of each GRU pair: pair i gets values[i] one way and values[i] − 0.02 back."""
    pairs = list(itertools.combinations(GRUS, 2))
    return {p: v for p, v in zip(pairs, values)} | {(t, s): v - 0.02 for (s, t), v in zip(pairs, values)}


def test_the_statistic_is_the_mean_over_unordered_model_pairs_with_a_t_interval(tmp_path):
    values = [0.95, 0.90, 0.97]
    found = claim(claims_table(gru_seed_root(tmp_path, cross_all(values)), pd.DataFrame()), "C1")
    per_pair = [v - 0.01 for v in values]  # both directions averaged: v and v − 0.02
    mean = sum(per_pair) / 3
    sd = math.sqrt(sum((v - mean) ** 2 for v in per_pair) / 2)
    half = stats.t.ppf(0.975, 2) * sd / math.sqrt(3)
    assert found.n_seeds == 3  # three unordered pairs, not six directions
    assert found["mean"] == pytest.approx(mean, abs=1e-12)
    assert (found.ci_lo, found.ci_hi) == pytest.approx((mean - half, mean + half), abs=1e-12)
    assert found.iia_none == pytest.approx(0.1)
    assert found.verdict == "holds" and list(claims_table(pd.DataFrame(), pd.DataFrame()).columns) == [*COLUMNS, "seen"]


@pytest.mark.parametrize(
    ("values", "verdict", "note"),
    [
        ([0.30, 0.35, 0.32], "does not hold", ""),  # the interval lies below 0.8
        ([0.60, 0.95, 0.99], "inconclusive", "straddles"),  # the interval crosses 0.8
    ],
    ids=["violated", "overlapping"],
)
def test_a_rule_violated_does_not_hold_and_an_overlap_is_inconclusive(tmp_path, values, verdict, note):
    found = claim(claims_table(gru_seed_root(tmp_path, cross_all(values)), pd.DataFrame()), "C1")
    assert found.verdict == verdict and note in found.note


def test_too_few_pairs_and_smoke_numbers_never_give_a_verdict(tmp_path):
    two = {(GRUS[0], GRUS[1]): 0.96, (GRUS[1], GRUS[0]): 0.96}  # one model pair only
    found = claim(claims_table(gru_seed_root(tmp_path / "a", two), pd.DataFrame()), "C1")
    assert found.verdict == "inconclusive" and "1 model pair(s)" in found.note
    smoke = gru_seed_root(tmp_path / "b", cross_all([0.95, 0.96, 0.97]), budget="smoke")
    found = claim(claims_table(smoke, pd.DataFrame()), "C1")
    assert found.verdict == "inconclusive" and "smoke" in found.note


def test_an_undertrained_model_gives_numbers_but_no_verdict(tmp_path):
    rows = gru_seed_root(tmp_path, cross_all([0.95, 0.96, 0.97])).copy()
    rows.loc[rows.trg == GRUS[2], "trg_trained"] = False
    found = claim(claims_table(rows, pd.DataFrame()), "C1")
    assert found.verdict == "inconclusive" and "training criterion" in found.note and found.n_seeds == 3


def test_an_arch_without_a_task_means_the_counting_task(tmp_path):
    other = {("same_object/gru/0", GRUS[0]): 0.2, (GRUS[0], "same_object/gru/0"): 0.2}
    rows = gru_seed_root(tmp_path, cross_all([0.95, 0.96, 0.97]) | other)
    assert claim(claims_table(rows, pd.DataFrame()), "C1").n_seeds == 3  # the Same-Object pair is not gru~gru


def test_rows_of_two_settings_are_never_pooled_into_one_verdict(tmp_path):
    gru_seed_root(tmp_path, cross_all([0.95, 0.96, 0.97]))
    rows = gru_seed_root(tmp_path / "other", cross_all([0.95, 0.96, 0.97]), normalize="none")
    both = pd.concat([collect(tmp_path)[lambda r: r.split == "val"], rows])
    found = claim(claims_table(both, pd.DataFrame()), "C1")
    assert found.verdict == "inconclusive" and "normalize" in found.note


def test_a_difference_is_paired_by_model(tmp_path):
    for causal_model, swap, iia in (("up_down", "count", [0.98, 0.96, 0.97]), ("up_up", "resp_count", [0.5, 0.6, 0.4])):
        for model, value in zip(GRUS, iia):
            rows = {(model, model): value}
            name = f"alignments/das-{causal_model}/{model.replace('/', '.')}"
            fake_run(tmp_path, name, rows, method="das", causal_model=causal_model, swap=swap)
    rows = collect(tmp_path)
    rows.loc[rows.causal_model == "up_up", "variable"] = "resp_count"  # the swapped variable of Up-Up
    found = claim(claims_table(rows[rows.split == "val"], pd.DataFrame()), "C8a")
    differences = [0.98 - 0.5, 0.96 - 0.6, 0.97 - 0.4]
    assert found["mean"] == pytest.approx(sum(differences) / 3) and found.n_seeds == 3
    assert found.verdict == "holds"


# Item i of each planted DAS run: (original count, swapped-in count); the first round(10 · IIA) are right.
GRADED = [(0, 1), (0, 2), (0, 3), (0, 4), (0, 5), (9, 5), (9, 6), (9, 7), (9, 8), (9, 9)]


def plain_gradient(value_of, iia: float) -> float:
    """IIA above the median of the distinct values minus IIA at or below it, written out."""
    values = sorted({value_of(b, a) for b, a in GRADED})
    middle = len(values) // 2
    median = values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2
    upper, lower = [], []
    for i, (b, a) in enumerate(GRADED):
        (upper if value_of(b, a) > median else lower).append(1.0 if i < round(10 * iia) else 0.0)
    return sum(upper) / len(upper) - sum(lower) / len(lower)


def test_graded_symbols_compare_iia_above_and_below_the_median_value(tmp_path):
    dases = [0.7, 0.7, 0.8]
    for model, value in zip(GRUS, dases):
        name = f"alignments/das-up_down/{model.replace('/', '.')}"
        fake_run(
            tmp_path, name, {(model, model): value}, items=True, values=GRADED, method="das", causal_model="up_down"
        )
    rows = collect(tmp_path)
    table = claims_table(rows[rows.split == "val"], pd.DataFrame(), collect_items(tmp_path))
    for claim_id, value_of in (("C9a", lambda b, a: a), ("C9b", lambda b, a: abs(b - a))):
        per_model = [plain_gradient(value_of, v) for v in dases]
        found = claim(table, claim_id)
        assert found["mean"] == pytest.approx(sum(per_model) / 3, abs=1e-12) and found.n_seeds == 3
    assert claim(table, "C9a")["mean"] == pytest.approx(-2 / 3)  # (1/4 − 1), (1/4 − 1), (2/4 − 1), by hand
    assert claim(table, "C9a").verdict == "holds"  # every model's IIA falls for larger counts


def test_the_report_writes_the_claims_first(tmp_path):
    gru_seed_root(tmp_path, cross_all([0.95, 0.96, 0.97]))
    write_report(tmp_path, tmp_path / "report")
    table = pd.read_csv(tmp_path / "report" / "claims.csv", keep_default_na=False)
    assert list(table.columns) == COLUMNS and len(table) >= 10
    assert table.set_index(table.claim.str.split(":").str[0]).loc["C1", "verdict"] == "holds"
    assert (table.verdict != "holds").sum() == len(table) - 1  # nothing else is in this root
    page = (tmp_path / "report" / "index.html").read_text()
    assert page.index("The papers&#x27; claims") < page.index("Within-model IIA")
    assert "| C1: GRU seeds share the count variable" in (tmp_path / "report" / "claims.md").read_text()


@pytest.mark.slow
def test_the_paper_experiment_on_the_smoke_budget_gives_no_verdict(tmp_path):
    """Every model and fit of experiment=paper, at seconds each: every claim has its rows and
    every verdict is inconclusive (smoke numbers test the software only)."""
    from tests.cli import run_printing

    argv = ["pipeline", "experiment=paper", "budget=smoke", "pipeline.allow_undertrained=true", "paths.root=out"]
    code, _, err = run_printing(argv, tmp_path)  # the models' own width: the claims name k = 128
    assert code == 0, err
    table = pd.read_csv(tmp_path / "out" / "report" / "claims.csv", keep_default_na=False)
    assert len(table) >= 10 and set(table.verdict) == {"inconclusive"}
    undertrained = "a model below its training criterion: numbers, but no verdict"  # RSA and CKA: no budget
    assert set(table.note) <= {"smoke budget: numbers that test the software only", undertrained}, table.note
