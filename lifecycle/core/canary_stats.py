"""The statistics behind the canary judge, in plain Python (the `math` module only).

The judge runs inside the Function App on every rollout tick. numpy and scipy are not in the Function
App's requirements and `import scipy.stats` alone costs over a second, so the few tests the judge needs
are written out here. Each one follows scipy's definition (the tests check them against scipy):

- `mann_whitney_greater`    scipy.stats.mannwhitneyu(x, y, alternative="greater"), method "auto"
- `fisher_greater`          scipy.stats.fisher_exact(table, alternative="greater")
- `binom_greater`           scipy.stats.binomtest(k, n, p, alternative="greater").pvalue
- `chi2_homogeneity`        scipy.stats.chi2_contingency(2×K table) (Yates' correction when K = 2)
- `js_distance`             scipy.spatial.distance.jensenshannon(p, q, base=2)
- `ks_2samp`                scipy.stats.ks_2samp(x, y)'s statistic; its p-value is the limiting Kolmogorov
                            distribution's (scipy.stats.kstwobign), which ks_2samp's "asymp" method refines
                            for finite samples: never below it (conservative), within 0.05 from 50 values a
                            side and 0.02 from 400
- `wasserstein`             scipy.stats.wasserstein_distance(x, y)
- `welch_greater`           a one-sided Welch test of means, normal approximation (for n ≥ 30 a side)
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

# Mann-Whitney U: scipy's "auto" uses the exact null distribution when a sample has at most 8 values
# and there are no ties. We also cap the size of the table it builds (pure Python).
_EXACT_MWU_MAX_SMALL = 8
_EXACT_MWU_MAX_CELLS = 20_000


class TestResult(NamedTuple):
    test: str                     # the test's name, for people
    statistic: float | None       # z, U or chi² (None where the test has no single statistic)
    p_value: float


# ---------------------------------------------------------------------------------------------- basics

def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """The q-quantile of already sorted values, interpolated linearly (numpy's default method)."""
    n = len(sorted_values)
    if n == 0:
        raise ValueError("quantile of no values")
    h = (n - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, n - 1)
    return sorted_values[lo] + (h - lo) * (sorted_values[hi] - sorted_values[lo])


def chi2_sf(x: float, dof: int) -> float:
    """P(X > x) for X ~ chi²(dof): the regularised upper incomplete gamma function Q(dof/2, x/2)."""
    if dof <= 0:
        return 1.0
    return _gammaincc(dof / 2.0, x / 2.0)


def _gammaincc(a: float, x: float) -> float:
    if x <= 0.0:
        return 1.0
    log_prefix = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1.0:                       # series for P(a, x); Q = 1 - P is not small here
        term = total = 1.0 / a
        ap = a
        for _ in range(100_000):
            ap += 1.0
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-16:
                break
        return max(0.0, 1.0 - total * math.exp(log_prefix))
    # continued fraction for Q(a, x) (modified Lentz)
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 100_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-16:
            break
    return min(1.0, math.exp(log_prefix) * h)


# ----------------------------------------------------------------------------------- count data tests

def fisher_greater(bad1: int, n1: int, bad2: int, n2: int) -> float:
    """One-sided Fisher's exact test that group 1's rate is greater than group 2's: P(X ≥ bad1) for X
    hypergeometric (bad1 + bad2 bad ones among n1 + n2, n1 drawn). Exact integer arithmetic."""
    total, bad = n1 + n2, bad1 + bad2
    good = total - bad
    lo, hi = max(bad1, n1 - good), min(bad, n1)
    if lo > hi:
        return 0.0
    tail = sum(math.comb(bad, x) * math.comb(good, n1 - x) for x in range(lo, hi + 1))
    return min(1.0, tail / math.comb(total, n1))


def binom_greater(k: int, n: int, p: float) -> float:
    """Exact one-sided binomial test: P(X ≥ k) for X ~ Binomial(n, p)."""
    if k <= 0:
        return 1.0
    if k > n or p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    ratio = p / (1.0 - p)
    mode = (n + 1) * p
    # Sum the tail that does not contain the mode, starting from its largest term (so nothing underflows
    # that matters): the upper tail from k, or the lower tail from k - 1 downwards for 1 - P(X ≤ k - 1).
    x = k if k >= mode else k - 1
    term = math.exp(math.lgamma(n + 1) - math.lgamma(x + 1) - math.lgamma(n - x + 1)
                    + x * math.log(p) + (n - x) * math.log1p(-p))
    total = term
    if k >= mode:
        for x in range(k, n):             # pmf(x + 1) = pmf(x) · (n - x)/(x + 1) · p/(1 - p)
            term *= (n - x) / (x + 1) * ratio
            total += term
            if term < total * 1e-17:
                break
        return min(1.0, total)
    for x in range(k - 1, 0, -1):         # pmf(x - 1) = pmf(x) · x/(n - x + 1) · (1 - p)/p
        term *= x / (n - x + 1) / ratio
        total += term
        if term < total * 1e-17:
            break
    return min(1.0, max(0.0, 1.0 - total))


def two_proportion_greater(bad1: int, n1: int, bad2: int, n2: int) -> TestResult:
    """Is group 1's rate (bad1/n1) greater than group 2's? The pooled two-proportion z-test where its
    normal approximation holds (every expected cell count ≥ 5), Fisher's exact test otherwise (small
    counts, no errors at all, ...)."""
    if n1 <= 0 or n2 <= 0:
        raise ValueError("two_proportion_greater needs at least one observation in each group")
    pooled = (bad1 + bad2) / (n1 + n2)
    expected = (n1 * pooled, n1 * (1 - pooled), n2 * pooled, n2 * (1 - pooled))
    if min(expected) >= 5.0:
        se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        z = (bad1 / n1 - bad2 / n2) / se
        return TestResult("two-proportion z-test", z, normal_sf(z))
    return TestResult("Fisher's exact test", None, fisher_greater(bad1, n1, bad2, n2))


def chi2_homogeneity(counts1: Mapping[str, int], counts2: Mapping[str, int]) -> TestResult:
    """Pearson's chi-squared test that two samples of labels come from one distribution (2×K table over
    the labels either side has; Yates' correction for a 2×2 table, as scipy does)."""
    labels = sorted(set(counts1) | set(counts2))
    n1, n2 = sum(counts1.values()), sum(counts2.values())
    dof = len(labels) - 1
    if dof <= 0 or n1 == 0 or n2 == 0:
        return TestResult("chi-squared test of homogeneity", 0.0, 1.0)
    total = n1 + n2
    statistic = 0.0
    for label in labels:
        column = counts1.get(label, 0) + counts2.get(label, 0)
        for observed, row in ((counts1.get(label, 0), n1), (counts2.get(label, 0), n2)):
            expected = row * column / total
            diff = abs(observed - expected)
            if dof == 1:
                diff -= min(0.5, diff)
            statistic += diff * diff / expected
    return TestResult("chi-squared test of homogeneity", statistic, chi2_sf(statistic, dof))


# ---------------------------------------------------------------------------------------- Mann-Whitney

def mann_whitney_greater(x: Sequence[float], y: Sequence[float]) -> tuple[TestResult, str]:
    """One-sided Mann-Whitney U test that x tends to be larger than y. Returns the result (statistic U
    of x) and the method: "exact" (no ties, a small sample) or "asymptotic" (normal approximation with
    tie and continuity corrections)."""
    n1, n2 = len(x), len(y)
    if n1 == 0 or n2 == 0:
        raise ValueError("mann_whitney_greater needs at least one value on each side")
    values = [*x, *y]
    n = n1 + n2
    order = sorted(range(n), key=values.__getitem__)
    rank_sum = 0.0
    tie_term = 0
    i = 0
    while i < n:
        j = i
        value = values[order[i]]
        while j + 1 < n and values[order[j + 1]] == value:
            j += 1
        from_x = sum(1 for k in range(i, j + 1) if order[k] < n1)
        rank_sum += from_x * (i + j + 2) / 2.0          # ranks i+1 … j+1 share their average
        t = j - i + 1
        tie_term += t * t * t - t
        i = j + 1
    u = rank_sum - n1 * (n1 + 1) / 2.0
    name = "Mann-Whitney U"
    if tie_term == 0 and min(n1, n2) <= _EXACT_MWU_MAX_SMALL and n1 * n2 <= _EXACT_MWU_MAX_CELLS:
        return TestResult(name, u, _mwu_exact_sf(round(u), n1, n2)), "exact"
    variance = n1 * n2 / 12.0 * ((n + 1) - tie_term / (n * (n - 1)))
    if variance <= 0.0:                                  # every value is the same
        return TestResult(name, u, 1.0), "asymptotic"
    z = (u - n1 * n2 / 2.0 - 0.5) / math.sqrt(variance)
    return TestResult(name, u, min(1.0, max(0.0, normal_sf(z)))), "asymptotic"


def _mwu_exact_sf(u: int, n1: int, n2: int) -> float:
    """P(U ≥ u) under the null, from the counts of U = 0 … n1·n2: the coefficients of the Gaussian
    binomial [n1+n2 choose m]_q = Π_{i=1..m} (1 - q^(k+i)) / (1 - q^i) with m = min, k = max."""
    m, k = min(n1, n2), max(n1, n2)
    counts = [1]
    for i in range(1, m + 1):
        step = k + i
        grown = counts + [0] * step
        for j in range(len(grown) - 1, step - 1, -1):    # × (1 - q^step)
            grown[j] -= grown[j - step]
        for j in range(i, len(grown)):                   # ÷ (1 - q^i), exact
            grown[j] += grown[j - i]
        counts = grown[: i * k + 1]
    total = math.comb(n1 + n2, m)
    if u <= 0:
        return 1.0
    return min(1.0, sum(counts[u:]) / total)


# ---------------------------------------------------------------------------------------------- labels

def label_key(value: Any) -> str:
    """A label as a string for counting: numbers that are whole become "1" whether they came as 1, 1.0
    or numpy's int64; strings stay as they are; anything unhashable (lists, dicts, arrays) becomes JSON."""
    if isinstance(value, str):
        return str(value)                 # numpy's str_ as a plain str
    value = _plain(value)
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as Python values, without importing numpy."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        try:
            return value.tolist()
        except Exception:
            return value
    return value


def numeric_values(values: Iterable[Any]) -> list[float] | None:
    """The values as floats if every one is a finite real number (not a bool), else None."""
    out = []
    for value in values:
        value = _plain(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return None
        out.append(float(value))
    return out


def is_continuous(*samples: Sequence[Any]) -> bool:
    """Numeric predictions with fractional values (a regressor's outputs) are not labels to count."""
    numbers = [numeric_values(s) for s in samples]
    if any(v is None for v in numbers):
        return False
    return any(not x.is_integer() for v in numbers if v is not None for x in v)


def js_distance(counts1: Mapping[str, int], counts2: Mapping[str, int]) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between two label distributions given as counts."""
    n1, n2 = sum(counts1.values()), sum(counts2.values())
    if n1 == 0 or n2 == 0:
        raise ValueError("js_distance needs at least one label on each side")
    divergence = 0.0
    for label in set(counts1) | set(counts2):
        p, q = counts1.get(label, 0) / n1, counts2.get(label, 0) / n2
        m = (p + q) / 2.0
        if p > 0:
            divergence += p * math.log2(p / m) / 2.0
        if q > 0:
            divergence += q * math.log2(q / m) / 2.0
    return math.sqrt(min(1.0, max(0.0, divergence)))


# ------------------------------------------------------------------------------------- continuous values

def ks_2samp(x: Sequence[float], y: Sequence[float]) -> TestResult:
    """Two-sided two-sample Kolmogorov-Smirnov test: D, the largest gap between the two empirical CDFs (as
    scipy.stats.ks_2samp), and its asymptotic p-value P(K > sqrt(n·m/(n+m))·D) for Kolmogorov's K."""
    a, b = sorted(x), sorted(y)
    n, m = len(a), len(b)
    if n == 0 or m == 0:
        raise ValueError("ks_2samp needs at least one value on each side")
    i = j = 0
    d = 0.0
    while i < n and j < m:                # the CDFs only move at the values: step past each one on both sides
        value = min(a[i], b[j])
        while i < n and a[i] == value:
            i += 1
        while j < m and b[j] == value:
            j += 1
        d = max(d, abs(i / n - j / m))
    return TestResult("Kolmogorov-Smirnov test", d, kolmogorov_sf(math.sqrt(n * m / (n + m)) * d))


def kolmogorov_sf(x: float) -> float:
    """P(K > x) for Kolmogorov's distribution (scipy.stats.kstwobign.sf): the alternating series
    2 Σ (-1)^(k-1) exp(-2k²x²) for x ≥ 1, and 1 - the theta-function form of the CDF below, where that
    series converges slowly."""
    if x <= 0.0:
        return 1.0
    total = 0.0
    if x < 1.0:
        scale = math.pi * math.pi / (8.0 * x * x)
        for k in range(1, 100):
            term = math.exp(-(2 * k - 1) ** 2 * scale)
            total += term
            if term < 1e-17:
                break
        return min(1.0, max(0.0, 1.0 - math.sqrt(2.0 * math.pi) / x * total))
    for k in range(1, 100):
        term = math.exp(-2.0 * k * k * x * x)
        total += term if k % 2 else -term
        if term < 1e-17 * max(total, 1e-300):
            break
    return min(1.0, max(0.0, 2.0 * total))


def wasserstein(x: Sequence[float], y: Sequence[float]) -> float:
    """First Wasserstein distance between two samples: the area between their empirical CDFs."""
    a, b = sorted(x), sorted(y)
    n, m = len(a), len(b)
    if n == 0 or m == 0:
        raise ValueError("wasserstein needs at least one value on each side")
    grid = sorted((*a, *b))
    i = j = 0
    total = 0.0
    for k in range(len(grid) - 1):
        value = grid[k]
        while i < n and a[i] <= value:
            i += 1
        while j < m and b[j] <= value:
            j += 1
        total += abs(i / n - j / m) * (grid[k + 1] - value)
    return total


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value)."""
    n = len(values)
    if n == 0:
        raise ValueError("mean_std of no values")
    mean = math.fsum(values) / n
    variance = math.fsum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    return mean, math.sqrt(variance)


def welch_greater(x: Sequence[float], y: Sequence[float]) -> TestResult:
    """Is the mean of x greater than the mean of y? Welch's statistic (x̄ - ȳ) / sqrt(s²x/n + s²y/m) against
    the normal distribution: the judge compares errors over at least `min_labelled` (30) rows a side, where
    the t distribution's extra width no longer matters at its significance levels."""
    (mx, sx), (my, sy) = mean_std(x), mean_std(y)
    se = math.sqrt(sx * sx / len(x) + sy * sy / len(y))
    name = "Welch's z-test"
    if se == 0.0:                         # both sides constant
        return TestResult(name, None, 0.0 if mx > my else 1.0)
    z = (mx - my) / se
    return TestResult(name, z, normal_sf(z))
