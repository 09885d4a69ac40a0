"""The intervals beside every IIA, against independent formulations."""

from __future__ import annotations

import numpy as np
import pytest

from mas_cli.stats import t_interval, wilson

pytestmark = pytest.mark.fast  # pure computation: the tier a developer runs while working

Z = 1.959963984540054  # the standard normal's 97.5 % quantile


def score_test_bounds(successes: int, n: int) -> tuple[float, float]:
    """The Wilson interval as what it is: the proportions p that a score test at 5 % does not
    reject, i.e. the roots of (p̂ − p)² = z² p (1 − p) / n, a quadratic in p."""
    p_hat = successes / n
    a, b, c = 1 + Z * Z / n, -(2 * p_hat + Z * Z / n), p_hat * p_hat
    roots = sorted(np.roots([a, b, c]).real)
    return max(0.0, roots[0]), min(1.0, roots[1])


@pytest.mark.parametrize(("successes", "n"), [(0, 10), (10, 10), (5, 10), (97, 100), (1, 200), (123, 500)])
def test_wilson_is_the_score_test_interval(successes, n):
    assert wilson(successes, n) == pytest.approx(score_test_bounds(successes, n), abs=1e-9)


def test_wilson_textbook_values():
    # Brown, Cai & DasGupta (2001): 0 of 10 -> [0, 0.2775], 10 of 10 -> [0.7225, 1]
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)


def test_t_interval_across_seeds():
    # two values 0.6 and 0.7: mean 0.65, sd 0.0707, t(0.975, 1) = 12.706
    low, high = t_interval([0.6, 0.7])
    assert (low, high) == pytest.approx((0.65 - 12.7062 * 0.05, 0.65 + 12.7062 * 0.05), abs=1e-3)
    assert np.isnan(t_interval([0.5])[0])
