"""The statistics behind the numbers a run prints and gates on, exact where the counts are small: Wilson score
intervals, Fisher's exact test on two pass/fail counts, the sign test, and a t interval for a mean change."""

from __future__ import annotations

import math
from math import comb

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile: two-sided 95% intervals
DECIDE_LIMIT = 1000  # attempts per side beyond which a difference is called undecidable in practice


def wilson(passed: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a pass rate `passed`/`n` (95% by default); (0, 1) when nothing was measured."""
    if n <= 0:
        return 0.0, 1.0
    p = passed / n
    scale = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / scale
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / scale
    # Clamped: at 0/n and n/n the bounds are 0 and 1 exactly, not a rounding error away.
    return (0.0 if passed == 0 else max(0.0, centre - half)), (1.0 if passed == n else min(1.0, centre + half))


def fisher_exact(a: int, b: int, c: int, d: int) -> float:
    """Two-sided p of Fisher's exact test on the table [[a, b], [c, d]] (rows: before/now; columns: pass/fail):
    the chance, with both margins fixed, of a table at most as likely as the one seen."""
    row, col, total = a + b, a + c, a + b + c + d
    low, high = max(0, col - (total - row)), min(row, col)

    def weight(x: int) -> int:  # exact integers: ties between tables are compared without rounding
        return comb(row, x) * comb(total - row, col - x)

    seen = weight(a)
    return min(1.0, sum(w for w in map(weight, range(low, high + 1)) if w <= seen) / comb(total, col))


def sign_test(better: int, worse: int) -> float:
    """Two-sided p of the sign test (McNemar's exact test for pass/fail pairs): `better` against `worse` under a
    fair coin; ties are left out by the caller."""
    n = better + worse
    if n == 0:
        return 1.0
    tail = sum(comb(n, k) for k in range(min(better, worse) + 1))
    outcomes: int = 2**n  # an int: true division of big ints stays exact enough where a float 2**n overflows
    return min(1.0, 2 * tail / outcomes)


def _t_two_sided(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with a whole number of degrees of freedom (Abramowitz & Stegun 26.7.3-4)."""
    theta = math.atan(t / math.sqrt(df))
    c2 = math.cos(theta) ** 2
    if df % 2:
        term, total = math.cos(theta), 0.0
        for k in range(1, (df - 1) // 2 + 1):  # cos θ (1 + 2/3 cos²θ + 2·4/(3·5) cos⁴θ + …)
            total += term
            term *= c2 * (2 * k) / (2 * k + 1)
        return (2 / math.pi) * (theta + (math.sin(theta) * total if df > 1 else 0.0))
    term, total = 1.0, 0.0
    for k in range(1, df // 2 + 1):  # sin θ (1 + 1/2 cos²θ + 1·3/(2·4) cos⁴θ + …)
        total += term
        term *= c2 * (2 * k - 1) / (2 * k)
    return math.sin(theta) * total


def t_quantile(df: int, confidence: float = 0.95) -> float:
    """The t value with P(|T| <= t) = `confidence` for `df` degrees of freedom (bisection on the exact CDF)."""
    low, high = 0.0, 1e4
    for _ in range(200):
        mid = (low + high) / 2
        low, high = (mid, high) if _t_two_sided(mid, df) < confidence else (low, mid)
    return (low + high) / 2


def mean_interval(values: list[float]) -> tuple[float, float, float] | None:
    """The mean of `values` and its 95% t interval; None for fewer than two values."""
    m = len(values)
    if m < 2:
        return None
    mean = sum(values) / m
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (m - 1))
    half = t_quantile(m - 1) * sd / math.sqrt(m)
    return mean, mean - half, mean + half


def attempts_to_decide(before: float, after: float, alpha: float) -> int | None:
    """The fewest attempts on each side at which pass rates `before` and `after`, if they held, would differ
    significantly (Fisher's exact test at `alpha`); None for equal rates or beyond `DECIDE_LIMIT`."""
    if before == after:
        return None

    def decided(n: int) -> bool:
        a, c = round(before * n), round(after * n)
        return a != c and fisher_exact(a, n - a, c, n - c) < alpha

    high = 2
    while not decided(high):  # doubling, then bisection: the p-value falls with n, near enough to monotone
        if high >= DECIDE_LIMIT:
            return None
        high = min(2 * high, DECIDE_LIMIT)
    low = high // 2
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if decided(mid) else (mid, high)
    return high
