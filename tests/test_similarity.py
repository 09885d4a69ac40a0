"""RSA and CKA (docs/METHODS.md § Correlative measures), repsim style: invariances that must hold, a slow
direct formula to agree with, and the `mas similarity` command end to end."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from mas_cli.correlative.measures import RDMS, cka, compare, rsa, stimuli
from mas_cli.tasks.counting import CountingTask
from tests.cli import run_printing

CORRELATIONS = ("spearman", "pearson")


def random_pair(n=60, d=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = x @ torch.randn(d, d + 3, generator=g, dtype=torch.float64) + 0.5 * torch.randn(n, d + 3, generator=g).double()
    return x, y


def rotation(d, seed=1):
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return q


def slow_cka(x, y, zscore):
    """tr(KHLH)/(n-1)² with explicit n × n matrices."""
    x, y = x.numpy(), y.numpy()
    if zscore:
        x, y = (x - x.mean(0)) / x.std(0, ddof=1), (y - y.mean(0)) / y.std(0, ddof=1)
    n = len(x)
    h = np.eye(n) - np.ones((n, n)) / n

    def hsic(k, l_):
        return np.trace(k @ h @ l_ @ h) / (n - 1) ** 2

    k, l_ = x @ x.T, y @ y.T
    return hsic(k, l_) / np.sqrt(hsic(k, k) * hsic(l_, l_))


def slow_rsa(x, y, metric, correlation):
    """Double loops for the RDMs; ranks by argsort (random data has no ties)."""

    def dissimilarity(a):
        a = a.numpy()
        n = len(a)
        out = []
        for i in range(n):
            for j in range(i):
                if metric == "cosine":
                    out.append(1 - a[i] @ a[j] / (np.linalg.norm(a[i]) * np.linalg.norm(a[j])))
                else:
                    out.append(np.linalg.norm(a[i] - a[j]))
        return np.array(out)

    u, v = dissimilarity(x), dissimilarity(y)
    if correlation == "spearman":
        u, v = u.argsort().argsort().astype(float), v.argsort().argsort().astype(float)
    return np.corrcoef(u, v)[0, 1]


@pytest.mark.fast
@pytest.mark.parametrize("zscore", [True, False])
def test_cka_matches_the_slow_formula_and_is_one_on_itself(zscore):
    x, y = random_pair()
    assert cka(x, y, zscore) == pytest.approx(slow_cka(x, y, zscore), abs=1e-10)
    assert cka(x, x, zscore) == pytest.approx(1.0, abs=1e-12)
    assert cka(x, y, zscore) < 0.99


@pytest.mark.fast
def test_cka_invariances():
    x, y = random_pair()
    base = cka(x, y, zscore=False)
    assert cka(x, y @ rotation(y.shape[1]), zscore=False) == pytest.approx(base, abs=1e-10)
    for zscore in (True, False):
        assert cka(x, 3.7 * y, zscore) == pytest.approx(cka(x, y, zscore), abs=1e-10)
        assert cka(x + 5.0, y, zscore) == pytest.approx(cka(x, y, zscore), abs=1e-10)
    # z-scored units: rescaling any single unit changes nothing
    units = torch.linspace(0.1, 10, y.shape[1], dtype=torch.float64)
    assert cka(x, y * units, zscore=True) == pytest.approx(cka(x, y, zscore=True), abs=1e-10)


@pytest.mark.fast
@pytest.mark.parametrize("metric", RDMS)
@pytest.mark.parametrize("correlation", CORRELATIONS)
def test_rsa_matches_the_slow_formula_and_is_invariant(metric, correlation):
    x, y = random_pair(n=40)
    value = rsa(x, y, metric, correlation)
    assert value == pytest.approx(slow_rsa(x, y, metric, correlation), abs=1e-10)
    assert rsa(x, y @ rotation(y.shape[1]), metric, correlation) == pytest.approx(value, abs=1e-10)
    assert rsa(x, 0.3 * y, metric, correlation) == pytest.approx(value, abs=1e-10)
    assert rsa(x, x, metric, correlation) == pytest.approx(1.0, abs=1e-12)
    assert value < 0.99


@pytest.mark.fast
def test_stimuli_hold_fifteen_sequences_of_each_count():
    tokens = stimuli(15, np.random.default_rng(0))
    task = CountingTask()
    responses = (tokens == task.response).sum(1)
    assert tokens.shape[0] == 300
    assert sorted(pd.Series(responses).value_counts().to_dict().items()) == [(c, 15) for c in range(1, 21)]
    assert (tokens[:, 0] == 1).all()  # BOS


@pytest.mark.fast
def test_compare_uses_the_same_rows_for_both_models():
    x, _ = random_pair(n=200)
    rows = compare(x, x.clone(), subsets=4, rows=50, rng=np.random.default_rng(0))
    assert {r["measure"] for r in rows} == {f"rsa_{m}_{c}" for m in RDMS for c in CORRELATIONS} | {"cka"}
    for r in rows:
        assert r["value"] == pytest.approx(1.0) and r["sd"] == pytest.approx(0.0, abs=1e-12)
        assert (r["n"], r["subset_rows"]) == (4, 50)


SMOKE = ["budget=smoke", "budget.val_size=50", "budget.heldout_size=50", 'train_overrides=["arch.width=16"]']


def test_cli_writes_reuses_and_refuses(tmp_path):
    args = (
        "similarity",
        "a=gru",
        "b=lstm",
        "allow_undertrained=true",
        "subsets=3",
        "rows=200",
        *SMOKE,
        "paths.root=out",
    )
    code, _, err = run_printing(list(args), tmp_path)  # in this process: seconds, not a start-up each
    assert code == 0, err
    found = pd.read_csv(
        tmp_path / "out/similarity/hidden-s0-subsets_3-rows_200/count.gru.0+count.lstm.0/similarity.csv"
    )
    assert set(found.measure) == {"cka", *(f"rsa_{m}_{c}" for m in RDMS for c in CORRELATIONS)}
    assert (found.src == "count/gru/0").all() and (found.n == 3).all() and found.value.between(-1, 1).all()
    assert "reusing" in run_printing(list(args), tmp_path)[1]
    code, _, _ = run_printing([*args[:-1], "subsets=4", "paths.root=out"], tmp_path)  # its own result, beside
    assert code == 0 and (tmp_path / "out/similarity/hidden-s0-subsets_4-rows_200").is_dir()
    retrain = ["train", "arch=lstm", "arch.width=16", "budget=smoke", "budget.lr=0.01", "force=true", "paths.root=out"]
    assert run_printing(retrain, tmp_path)[0] == 0
    code, _, err = run_printing(list(args), tmp_path)  # computed from the old lstm: never reused silently
    assert code == 2 and "force=true" in err
    assert "computed from other weights of count/lstm/0" in err

    # bad input (site=middle, a model without the Multi-Object stimuli): tests/test_bad_input.py
