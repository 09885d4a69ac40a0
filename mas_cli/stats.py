"""Interval estimates for the numbers mas reports (docs/METHODS.md says how each is used).

wilson      a proportion's 95 % interval from its items (an IIA over n counterfactuals)
t_interval  a mean's 95 % interval from independent units (IIA over seeds / model pairs)
"""

from __future__ import annotations

import math

Z95 = 1.959963984540054  # the standard normal's 97.5 % quantile


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion successes/n: unlike p ± z·sqrt(p(1−p)/n) it stays
    within [0, 1] and is not empty at p = 0 or 1, where IIA often sits."""
    if n <= 0:
        return float("nan"), float("nan")
    p = successes / n
    denominator = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, center - half), min(1.0, center + half)


def t_interval(values) -> tuple[float, float]:
    """95 % interval of the mean of independent values (Student's t, n − 1 degrees of freedom);
    NaN for fewer than two values, where no spread can be estimated."""
    values = [float(v) for v in values]
    n = len(values)
    if n < 2:
        return float("nan"), float("nan")
    from scipy import stats  # only here: importing it takes a second

    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    return mean - half, mean + half
