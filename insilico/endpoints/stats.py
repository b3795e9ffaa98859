"""Statistics for trial summaries: intervals, tests, power, replicate and uncertainty summaries.

Pure, vectorized numpy/scipy functions. Three sources of spread are kept apart:

* **patient variability** inside one trial: a per-patient outcome is a draw; a trial's rate is
  summarized with a Wilson interval (:func:`wilson_interval`) and a difference between arms with
  a Newcombe interval (:func:`newcombe_difference_interval`, parallel groups;
  :func:`paired_difference_interval`, the same patients in both arms);
* **trial replicates** (M trials of N patients): the fraction of replicates meeting a success
  criterion is the probability of success, i.e. power (:func:`probability_of_success`, compare
  with the analytic :func:`two_proportion_power` / :func:`mcnemar_power`); the spread of a
  replicate summary is :func:`replicate_interval`;
* **compound uncertainty** (an outer loop over draws of the predicted compound parameters):
  :func:`variance_decomposition` splits the variance of a replicate summary into the part
  between compound draws and the part within (patients + trial sampling);
  :func:`probability_of_success` on a (draws x replicates) array gives the assurance with an
  interval that accounts for the clustering by draw.

Conventions: ``alternative="greater"`` means "arm 1 (or A) has the higher success probability";
every interval is two-sided at ``level`` (default 95 %) unless stated; NaN marks a quantity that
is undefined (an empty arm); invalid input (negative counts, k > n, an unknown option) raises
ValueError naming the argument, the value and what is allowed.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Literal

import numpy as np
from scipy import special, stats

#: Two-sided 95 % normal quantile, ``Phi^-1(0.975)``.
Z95 = 1.959963984540054

Alternative = Literal["two-sided", "greater", "less"]
_ALTERNATIVES = ("two-sided", "greater", "less")

__all__ = [
    "Z95",
    "bootstrap_interval",
    "mcnemar_power",
    "mcnemar_test",
    "mean_interval",
    "newcombe_difference_interval",
    "paired_difference_interval",
    "paired_rate_difference",
    "probability_of_success",
    "proportion_interval",
    "rate_difference",
    "replicate_interval",
    "two_proportion_power",
    "two_proportion_sample_size",
    "two_proportion_test",
    "two_proportion_z",
    "variance_decomposition",
    "wilson_coverage",
    "wilson_interval",
    "z_for_level",
]


def _check_alternative(alternative: str) -> None:
    if alternative not in _ALTERNATIVES:
        raise ValueError(f"alternative: got {alternative!r}; allowed: {', '.join(_ALTERNATIVES)}")


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level: got {level!r}; allowed: a number strictly between 0 and 1")


def _check_counts(**counts: np.ndarray) -> None:
    for name, c in counts.items():
        if np.any(c < 0):
            raise ValueError(f"{name}: got a negative count; allowed: counts >= 0")


def z_for_level(level: float = 0.95) -> float:
    """Two-sided normal quantile ``Phi^-1((1 + level) / 2)`` (``Z95`` for ``level = 0.95``)."""
    _check_level(level)
    return float(special.ndtri(0.5 + level / 2.0))


# --------------------------------------------------------------------------------------------
# Proportions
# --------------------------------------------------------------------------------------------


def wilson_interval(k, n, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a binomial proportion ``k / n``, vectorized.

    ``(p + z²/2n ± z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)`` with ``p = k/n``. Same semantics as
    :func:`insilico.results.summary.wilson_interval` (NaN where ``n == 0``), except that the
    limits are exactly 0 for ``k = 0`` and exactly 1 for ``k = n`` (no rounding residue).

    Parameters
    ----------
    k, n : array_like
        Successes and trials (broadcast together), ``0 <= k <= n``.
    z : float
        Normal quantile; ``Z95`` for a two-sided 95 % interval.

    Returns
    -------
    lo, hi : ndarray
        Lower and upper limits in [0, 1].

    References
    ----------
    Wilson EB (1927) J Am Stat Assoc 22:209-212, doi:10.1080/01621459.1927.10502953.
    Newcombe RG (1998) Two-sided confidence intervals for the single proportion: comparison of
    seven methods. Stat Med 17:857-872 (method 3).
    """
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    _check_counts(k=k, n=n)
    if np.any(k > n):
        raise ValueError("k: got k > n; allowed: 0 <= k <= n")
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        denom = 1.0 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
        # exact limits at the boundaries (k = 0: lo = 0; k = n: hi = 1), free of rounding
        lo = np.where(k == 0, 0.0, np.clip(centre - half, 0.0, 1.0))
        hi = np.where(k == n, 1.0, np.clip(centre + half, 0.0, 1.0))
        lo = np.where(n > 0, lo, np.nan)
        hi = np.where(n > 0, hi, np.nan)
    return lo, hi


def wilson_coverage(p: float, n: int, z: float = Z95) -> float:
    """Exact coverage probability of the Wilson interval for a true rate ``p`` and ``n`` trials.

    ``sum_k Binom(k; n, p) 1[l(k) <= p <= u(k)]``. The coverage of any binomial interval
    oscillates with ``p`` and ``n`` (discreteness; Brown, Cai & DasGupta 2001, doi:10.1214/ss/
    1009213286): use this to choose or justify the (p, n) of a coverage check, e.g. Wilson at
    p = 0.1, n = 50 covers 97.0 %, at p = 0.3, n = 200 94.7 %.
    """
    k = np.arange(int(n) + 1)
    lo, hi = wilson_interval(k, int(n), z)
    return float(np.sum(stats.binom.pmf(k, int(n), p) * ((lo <= p) & (p <= hi))))


def proportion_interval(k, n, z: float = Z95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(k / n, Wilson lower, Wilson upper)``; all NaN where ``n == 0``."""
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    lo, hi = wilson_interval(k, n, z)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(n > 0, k / n, np.nan)
    return rate, lo, hi


def _limits(ok, lo, hi) -> tuple[np.ndarray, np.ndarray]:
    lo = np.where(ok, np.clip(lo, -1.0, 1.0), np.nan)
    return lo, np.where(ok, np.clip(hi, -1.0, 1.0), np.nan)


def newcombe_difference_interval(k1, n1, k2, n2, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Hybrid score interval for ``p1 - p2`` from two independent binomial samples.

    Newcombe's method 10: with Wilson limits ``(l_i, u_i)`` for each ``p_i = k_i / n_i``,
    ``lo = d - sqrt((p1 - l1)² + (u2 - p2)²)`` and ``hi = d + sqrt((u1 - p1)² + (p2 - l2)²)``,
    ``d = p1 - p2``. Vectorized over broadcast inputs; NaN where ``n1 == 0`` or ``n2 == 0``.
    Use it for parallel-group arms (different patients); for the same patients in both arms use
    :func:`paired_difference_interval`.

    Parameters
    ----------
    k1, n1, k2, n2 : array_like
        Successes and sizes of group 1 and group 2.
    z : float
        Normal quantile (``Z95``: two-sided 95 %).

    Returns
    -------
    lo, hi : ndarray
        Limits in [-1, 1].

    References
    ----------
    Newcombe RG (1998) Interval estimation for the difference between independent proportions:
    comparison of eleven methods. Stat Med 17:873-890,
    doi:10.1002/(SICI)1097-0258(19980430)17:8<873::AID-SIM779>3.0.CO;2-I (method 10; worked
    example 56/70 - 48/80: 0.0524 to 0.3339).
    """
    k1, n1, k2, n2 = (np.asarray(a, dtype=float) for a in (k1, n1, k2, n2))
    l1, u1 = wilson_interval(k1, n1, z)
    l2, u2 = wilson_interval(k2, n2, z)
    with np.errstate(divide="ignore", invalid="ignore"):
        p1 = k1 / n1
        p2 = k2 / n2
    d = p1 - p2
    lo = d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    hi = d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    ok = (n1 > 0) & (n2 > 0)
    return _limits(ok, lo, hi)


def paired_difference_interval(n11, n10, n01, n00, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Score-based interval for ``P(A) - P(B)`` from paired binary outcomes.

    Each patient is classified by (outcome under A, outcome under B): ``n11`` both successes,
    ``n10`` success on A only, ``n01`` success on B only, ``n00`` neither; the estimate is
    ``(n10 - n01) / n``. Newcombe's paired method 10: the Wilson limits of both marginal
    proportions are combined with a continuity-corrected phi coefficient ``phi*``
    (``A = n11 n00 - n10 n01``; ``phi* = (A - n/2)/sqrt(...)`` if ``A > n/2``, ``0`` if
    ``0 <= A <= n/2``, ``A/sqrt(...)`` if ``A < 0``; 0 when a margin is empty)::

        lo = d - sqrt(dl1² - 2 phi* dl1 du2 + du2²),  hi = d + sqrt(du1² - 2 phi* du1 dl2 + dl2²)

    with ``dl_i = p_i - l_i`` and ``du_i = u_i - p_i``. Vectorized; NaN where ``n == 0``.

    Parameters
    ----------
    n11, n10, n01, n00 : array_like
        Cell counts of the paired 2x2 table.
    z : float
        Normal quantile (``Z95``: two-sided 95 %).

    Returns
    -------
    lo, hi : ndarray
        Limits in [-1, 1].

    References
    ----------
    Newcombe RG (1998) Improved confidence intervals for the difference between binomial
    proportions based on paired data. Stat Med 17:2635-2650, PMID 9839354 (method 10; worked
    example n11, n10, n01, n00 = 36, 12, 2, 0: 0.0569 to 0.3404). Fagerland MW, Lydersen S,
    Laake P (2017) Statistical Analysis of Contingency Tables, ch. 8 (Newcombe square-and-add).
    """
    n11, n10, n01, n00 = (np.asarray(a, dtype=float) for a in (n11, n10, n01, n00))
    _check_counts(n11=n11, n10=n10, n01=n01, n00=n00)
    n = n11 + n10 + n01 + n00
    a_pos = n11 + n10  # successes on A
    b_pos = n11 + n01  # successes on B
    l1, u1 = wilson_interval(a_pos, n, z)
    l2, u2 = wilson_interval(b_pos, n, z)
    with np.errstate(divide="ignore", invalid="ignore"):
        p1 = a_pos / n
        p2 = b_pos / n
        cross = n11 * n00 - n10 * n01
        num = np.where(cross > n / 2, cross - n / 2, np.where(cross >= 0, 0.0, cross))
        den = np.sqrt(a_pos * (n01 + n00) * b_pos * (n10 + n00))
        phi = np.where(den > 0, num / den, 0.0)
    d = p1 - p2
    dl1, du1 = p1 - l1, u1 - p1
    dl2, du2 = p2 - l2, u2 - p2
    lo = d - np.sqrt(np.maximum(dl1**2 - 2 * phi * dl1 * du2 + du2**2, 0.0))
    hi = d + np.sqrt(np.maximum(du1**2 - 2 * phi * du1 * dl2 + dl2**2, 0.0))
    ok = n > 0
    return _limits(ok, lo, hi)


# --------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------


def _p_from_z(z: np.ndarray, alternative: str) -> np.ndarray:
    if alternative == "greater":
        return special.ndtr(-z)
    if alternative == "less":
        return special.ndtr(z)
    return np.minimum(1.0, 2.0 * special.ndtr(-np.abs(z)))


def two_proportion_z(k1, n1, k2, n2) -> np.ndarray:
    """Pooled two-proportion z statistic ``(p1 - p2) / sqrt(pbar (1 - pbar) (1/n1 + 1/n2))``.

    ``pbar = (k1 + k2) / (n1 + n2)``. 0 where both groups are all successes or all failures
    (no evidence of a difference); NaN where a group is empty.
    """
    k1, n1, k2, n2 = (np.asarray(a, dtype=float) for a in (k1, n1, k2, n2))
    with np.errstate(divide="ignore", invalid="ignore"):
        p1, p2 = k1 / n1, k2 / n2
        pbar = (k1 + k2) / (n1 + n2)
        se = np.sqrt(pbar * (1 - pbar) * (1 / n1 + 1 / n2))
        z = np.where(se > 0, (p1 - p2) / se, 0.0)
    return np.where((n1 > 0) & (n2 > 0), z, np.nan)


def two_proportion_test(k1, n1, k2, n2, alternative: Alternative = "two-sided") -> np.ndarray:
    """P-value of the pooled two-proportion z-test of ``H0: p1 = p2`` (independent groups).

    The two-sided test is Pearson's chi-squared test of the 2x2 table without continuity
    correction (``z² = X²``). ``"greater"``: ``H1: p1 > p2``; ``"less"``: ``H1: p1 < p2``.
    Vectorized; NaN where a group is empty; p = 1 (two-sided) or 0.5 (one-sided) when both groups
    are all successes or all failures. Reject at level ``alpha`` when ``p < alpha``.

    References
    ----------
    Fleiss JL, Levin B, Paik MC (2003) Statistical Methods for Rates and Proportions, 3rd ed.,
    Wiley, section 2.6 / 4.2, doi:10.1002/0471445428.
    """
    _check_alternative(alternative)
    return _p_from_z(two_proportion_z(k1, n1, k2, n2), alternative)


def mcnemar_test(
    n10,
    n01,
    alternative: Alternative = "two-sided",
    method: Literal["midp", "exact", "z"] = "midp",
) -> np.ndarray:
    """P-value of McNemar's test of ``H0: P(A) = P(B)`` for paired binary outcomes.

    Only the discordant pairs carry information: under H0, ``n10 ~ Binomial(n10 + n01, 1/2)``.

    * ``"exact"``: conditional binomial test; two-sided ``min(1, 2 min(P(X <= n10),
      P(X >= n10)))`` (conservative).
    * ``"midp"`` (default): the mid-p version, ``2 min(...) - P(X = n10)``; one-sided
      ``P(X > n10) + P(X = n10)/2``. Recommended by Fagerland et al. (2013): its size is close
      to nominal without the conservatism of the exact test.
    * ``"z"``: asymptotic ``z = (n10 - n01) / sqrt(n10 + n01)`` (McNemar 1947, no continuity
      correction); the test that :func:`mcnemar_power` describes.

    ``"greater"``: ``H1: P(A) > P(B)`` (more pairs succeed on A only). Vectorized. With no
    discordant pair, p = 1 (two-sided) and 1 (exact one-sided) or 0.5 (mid-p / z one-sided).

    References
    ----------
    McNemar Q (1947) Psychometrika 12:153-157, doi:10.1007/BF02295996.
    Fagerland MW, Lydersen S, Laake P (2013) The McNemar test for binary matched-pairs data:
    mid-p and asymptotic are better than exact conditional. BMC Med Res Methodol 13:91,
    doi:10.1186/1471-2288-13-91.
    """
    _check_alternative(alternative)
    x = np.asarray(n10, dtype=float)
    y = np.asarray(n01, dtype=float)
    _check_counts(n10=x, n01=y)
    m = x + y
    if method == "z":
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(m > 0, (x - y) / np.sqrt(m), 0.0)
        return _p_from_z(z, alternative)
    if method not in ("midp", "exact"):
        raise ValueError(f"method: got {method!r}; allowed: midp, exact, z")
    le = stats.binom.cdf(x, m, 0.5)  # P(X <= x)
    ge = stats.binom.sf(x - 1, m, 0.5)  # P(X >= x)
    half_pmf = 0.5 * stats.binom.pmf(x, m, 0.5) if method == "midp" else 0.0
    if alternative == "greater":
        p = ge - half_pmf
    elif alternative == "less":
        p = le - half_pmf
    else:
        p = 2.0 * (np.minimum(le, ge) - half_pmf)
    return np.clip(p, 0.0, 1.0)


# --------------------------------------------------------------------------------------------
# Power
# --------------------------------------------------------------------------------------------


def _normal_power(delta, se0, se1, z_crit) -> np.ndarray:
    """``P(Z-statistic beyond z_crit)`` when the estimate ~ N(delta, se1²) and the test divides
    by se0: ``Phi((delta - z_crit se0) / se1)``, with the se1 = 0 limit handled."""
    num = delta - z_crit * se0
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(se1 > 0, special.ndtr(num / se1), (num > 0).astype(float))
    return out


def two_proportion_power(
    p1,
    p2,
    n1,
    n2,
    alpha: float = 0.05,
    alternative: Alternative = "greater",
    method: Literal["normal", "exact"] = "normal",
) -> np.ndarray | float:
    """Power of the pooled two-proportion z-test (:func:`two_proportion_test`) at level alpha.

    ``method="normal"`` (vectorized): the estimate ``d = p1_hat - p2_hat`` is normal with the
    unpooled standard error ``se1 = sqrt(p1 q1/n1 + p2 q2/n2)`` under H1 while the test divides by
    the pooled ``se0 = sqrt(pbar qbar (1/n1 + 1/n2))``, ``pbar = (n1 p1 + n2 p2)/(n1 + n2)``::

        greater:   Phi(( delta - z_{1-alpha}   se0) / se1)
        less:      Phi((-delta - z_{1-alpha}   se0) / se1)
        two-sided: Phi(( delta - z_{1-alpha/2} se0) / se1) + Phi((-delta - z_{1-alpha/2} se0) / se1)

    (both tails, i.e. R's ``power.prop.test(strict=TRUE)``; for n1 = n2 it equals R's formula).

    ``method="exact"`` (scalar inputs, O(n1 n2)): the exact rejection probability of the same
    z-test, summed over all binomial outcomes; what a replicate simulation estimates.

    References
    ----------
    Fleiss JL, Levin B, Paik MC (2003) Statistical Methods for Rates and Proportions, 3rd ed.,
    Wiley, ch. 4, doi:10.1002/0471445428. Chow SC, Shao J, Wang H (2008) Sample Size
    Calculations in Clinical Research, 2nd ed., Chapman & Hall/CRC, section 4.2.
    """
    _check_alternative(alternative)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha: got {alpha!r}; allowed: a number strictly between 0 and 1")
    if method == "exact":
        return _two_proportion_power_exact(p1, p2, n1, n2, alpha, alternative)
    if method != "normal":
        raise ValueError(f"method: got {method!r}; allowed: normal, exact")
    p1, p2, n1, n2 = (np.asarray(a, dtype=float) for a in (p1, p2, n1, n2))
    delta = p1 - p2
    pbar = (n1 * p1 + n2 * p2) / (n1 + n2)
    se0 = np.sqrt(pbar * (1 - pbar) * (1 / n1 + 1 / n2))
    se1 = np.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    if alternative == "two-sided":
        zc = special.ndtri(1 - alpha / 2)
        out = _normal_power(delta, se0, se1, zc) + _normal_power(-delta, se0, se1, zc)
    else:
        zc = special.ndtri(1 - alpha)
        sign = 1.0 if alternative == "greater" else -1.0
        out = _normal_power(sign * delta, se0, se1, zc)
    return out[()] if out.ndim == 0 else out


def _two_proportion_power_exact(p1, p2, n1, n2, alpha, alternative) -> float:
    n1, n2 = int(n1), int(n2)
    k1 = np.arange(n1 + 1)[:, None]
    k2 = np.arange(n2 + 1)[None, :]
    reject = two_proportion_test(k1, n1, k2, n2, alternative) < alpha
    w1 = stats.binom.pmf(np.arange(n1 + 1), n1, float(p1))
    w2 = stats.binom.pmf(np.arange(n2 + 1), n2, float(p2))
    return float(w1 @ reject.astype(float) @ w2)


def two_proportion_sample_size(
    p1, p2, power: float = 0.8, alpha: float = 0.05, alternative: Alternative = "greater", ratio=1.0
) -> np.ndarray | float:
    """Patients in group 1 for the pooled z-test to reach ``power`` (group 2: ``ratio * n1``).

    Inverts the normal approximation of :func:`two_proportion_power` keeping only the tail in
    the direction of the effect (for two-sided tests the other tail is negligible; R's
    ``power.prop.test`` does the same)::

        n1 = (z_a sqrt(pbar qbar (1 + 1/r)) + z_b sqrt(p1 q1 + p2 q2 / r))² / delta²

    with ``z_a = z_{1-alpha}`` (one-sided) or ``z_{1-alpha/2}`` (two-sided), ``z_b =
    z_{power}``, ``pbar = (p1 + r p2)/(1 + r)``. Not rounded (take ``ceil``); ``inf`` when
    ``p1 == p2`` or the effect has the wrong sign for a one-sided alternative.

    References
    ----------
    Fleiss JL, Levin B, Paik MC (2003) Statistical Methods for Rates and Proportions, 3rd ed.,
    Wiley, section 4.2 (eq. 4.14 without continuity correction), doi:10.1002/0471445428.
    """
    _check_alternative(alternative)
    p1, p2, r = (np.asarray(a, dtype=float) for a in (p1, p2, ratio))
    delta = p1 - p2
    if alternative == "less":
        delta = -delta
    elif alternative == "two-sided":
        delta = np.abs(delta)
    z_a = special.ndtri(1 - alpha / 2) if alternative == "two-sided" else special.ndtri(1 - alpha)
    z_b = special.ndtri(power)
    pbar = (p1 + r * p2) / (1 + r)
    num = z_a * np.sqrt(pbar * (1 - pbar) * (1 + 1 / r)) + z_b * np.sqrt(
        p1 * (1 - p1) + p2 * (1 - p2) / r
    )
    with np.errstate(divide="ignore"):
        out = np.where(delta > 0, num**2 / np.where(delta > 0, delta, 1.0) ** 2, np.inf)
    return out[()] if out.ndim == 0 else out


def rate_difference(
    k1, n1, k2, n2, z: float = Z95, alternative: Alternative = "two-sided"
) -> dict[str, np.ndarray]:
    """Parallel-group comparison of two rates: the summary row for arm 1 versus arm 2.

    Returns ``difference = k1/n1 - k2/n2``, its Newcombe interval ``ci_low``/``ci_high``
    (:func:`newcombe_difference_interval`) and the pooled z-test ``p_value``
    (:func:`two_proportion_test`); arrays broadcast from the inputs, NaN for empty arms.
    """
    k1, n1, k2, n2 = (np.asarray(a, dtype=float) for a in (k1, n1, k2, n2))
    lo, hi = newcombe_difference_interval(k1, n1, k2, n2, z)
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = np.where((n1 > 0) & (n2 > 0), k1 / n1 - k2 / n2, np.nan)
    return {
        "difference": diff,
        "ci_low": lo,
        "ci_high": hi,
        "p_value": two_proportion_test(k1, n1, k2, n2, alternative),
    }


def paired_rate_difference(
    a_success,
    b_success,
    z: float = Z95,
    alternative: Alternative = "two-sided",
    method: Literal["midp", "exact", "z"] = "midp",
    axis: int = -1,
) -> dict[str, np.ndarray]:
    """Paired comparison of arm A and arm B given each patient's outcome on both arms.

    ``a_success``, ``b_success``: boolean arrays of the same shape, patients along ``axis``
    (NaN-free; a patient missing on either arm must be dropped by the caller). Returns the cell
    counts ``n11, n10, n01, n00``, ``n``, ``difference = P(A) - P(B)``, its Newcombe paired
    interval (:func:`paired_difference_interval`) and McNemar's ``p_value``
    (:func:`mcnemar_test`).
    """
    a = np.asarray(a_success, dtype=bool)
    b = np.asarray(b_success, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(
            f"b_success: got shape {b.shape}; allowed: the shape of a_success {a.shape}"
        )
    n11 = np.sum(a & b, axis=axis)
    n10 = np.sum(a & ~b, axis=axis)
    n01 = np.sum(~a & b, axis=axis)
    n00 = np.sum(~a & ~b, axis=axis)
    n = n11 + n10 + n01 + n00
    lo, hi = paired_difference_interval(n11, n10, n01, n00, z)
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = np.where(n > 0, (n10 - n01) / np.maximum(n, 1), np.nan)
    return {
        "n11": n11,
        "n10": n10,
        "n01": n01,
        "n00": n00,
        "n": n,
        "difference": diff,
        "ci_low": lo,
        "ci_high": hi,
        "p_value": mcnemar_test(n10, n01, alternative, method),
    }


def mcnemar_power(
    p10,
    p01,
    n,
    alpha: float = 0.05,
    alternative: Alternative = "greater",
    method: Literal["normal", "exact"] = "normal",
    test: Literal["z", "midp", "exact"] = "z",
) -> np.ndarray | float:
    """Power of McNemar's test for paired binary outcomes at level alpha.

    ``method="normal"`` (vectorized; the asymptotic test ``mcnemar_test(method="z")``): with
    discordant probabilities ``p10 = P(success on A only)``, ``p01 = P(success on B only)``,
    ``delta = p10 - p01`` (= P(A) - P(B)) and ``psi = p10 + p01``, Connor (1987)::

        greater: Phi((sqrt(n) delta - z_{1-alpha} sqrt(psi)) / sqrt(psi - delta²))

    (``less``: ``delta -> -delta``; two-sided: both tails at ``z_{1-alpha/2}``).
    ``method="exact"`` (scalar inputs, O(n²)): the exact rejection probability of
    ``mcnemar_test(method=test)``, summed over the trinomial distribution of (n10, n01).

    The paired analogue of :func:`two_proportion_power`: for the same marginal rates,
    positively correlated outcomes (few discordant pairs) give more power than a parallel
    design of the same size.

    References
    ----------
    Connor RJ (1987) Sample size for testing differences in proportions for the paired-sample
    design. Biometrics 43:207-211.
    """
    _check_alternative(alternative)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha: got {alpha!r}; allowed: a number strictly between 0 and 1")
    if method == "exact":
        n = int(n)
        a = np.arange(n + 1)
        x, y = np.meshgrid(a, a, indexing="ij")
        keep = x + y <= n
        x, y = x[keep], y[keep]
        cells = np.stack([x, y, n - x - y], axis=1)
        w = stats.multinomial.pmf(cells, n, [float(p10), float(p01), 1.0 - p10 - p01])
        reject = mcnemar_test(x, y, alternative, method=test) < alpha
        return float(np.sum(w * reject))
    if method != "normal":
        raise ValueError(f"method: got {method!r}; allowed: normal, exact")
    p10, p01, n = (np.asarray(a, dtype=float) for a in (p10, p01, n))
    delta = p10 - p01
    psi = p10 + p01
    se0 = np.sqrt(psi / n)
    se1 = np.sqrt(np.maximum(psi - delta**2, 0.0) / n)
    if alternative == "two-sided":
        zc = special.ndtri(1 - alpha / 2)
        out = _normal_power(delta, se0, se1, zc) + _normal_power(-delta, se0, se1, zc)
    else:
        zc = special.ndtri(1 - alpha)
        sign = 1.0 if alternative == "greater" else -1.0
        out = _normal_power(sign * delta, se0, se1, zc)
    return out[()] if out.ndim == 0 else out


# --------------------------------------------------------------------------------------------
# Continuous summaries, bootstrap and replicates
# --------------------------------------------------------------------------------------------


def mean_interval(
    values, level: float = 0.95, axis: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean with its Student t interval ``mean ± t_{n-1} s / sqrt(n)`` along ``axis``.

    NaNs are ignored (n counts the non-NaN values); the limits are NaN when fewer than two values
    remain. Use it for means of roughly symmetric quantities or of many replicates (CLT); for a
    mean of a few skewed values prefer :func:`bootstrap_interval`.

    Returns
    -------
    mean, lo, hi : ndarray (0-d for 1-D input)

    References
    ----------
    Student (1908) The probable error of a mean. Biometrika 6:1-25, doi:10.2307/2331554.
    """
    _check_level(level)
    v = np.asarray(values, dtype=float)
    n = np.sum(~np.isnan(v), axis=axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.nansum(v, axis=axis)
        mean = np.where(n > 0, s / np.maximum(n, 1), np.nan)
        dev = v - np.expand_dims(mean, axis)
        ss = np.nansum(dev**2, axis=axis)
        sd = np.sqrt(ss / (n - 1))
        t = stats.t.ppf(0.5 + level / 2, np.maximum(n - 1, 1))
        half = np.where(n >= 2, t * sd / np.sqrt(n), np.nan)
    return mean, mean - half, mean + half


#: Bootstrap resamples are drawn in chunks of about this many elements (memory bound).
_BOOT_CHUNK_ELEMENTS = 1 << 20


def _apply_statistic(statistic: Callable, samples: np.ndarray) -> np.ndarray:
    """``statistic`` along the last axis of a 2-D array; vectorized when it accepts ``axis``."""
    try:
        out = np.asarray(statistic(samples, axis=-1), dtype=float)
        if out.shape == samples.shape[:-1]:
            return out
    except TypeError:
        pass
    return np.apply_along_axis(lambda r: float(statistic(r)), -1, samples)


def bootstrap_interval(
    values,
    statistic: Callable = np.mean,
    seed: int = 0,
    n_boot: int = 2000,
    level: float = 0.95,
    method: Literal["bca", "percentile"] = "bca",
) -> tuple[float, float, float]:
    """Nonparametric bootstrap interval for ``statistic(values)``; deterministic given ``seed``.

    Resamples the n values with replacement ``n_boot`` times, in chunks of about 2**20 elements
    (no Python loop over resamples when ``statistic`` accepts ``axis=``, as numpy reductions do;
    otherwise it is applied row by row). NaNs are dropped first.

    * ``"bca"`` (default): bias-corrected and accelerated percentile interval; bias correction
      ``z0 = Phi^-1(mid-rank of the estimate among the replicates)``, acceleration from the
      jackknife, ``a = sum(d³) / (6 sum(d²)^1.5)``, ``d = mean(theta_(i)) - theta_(i)``.
      Second-order accurate: the honest choice for a mean of a skewed quantity (exposure, AUC).
    * ``"percentile"``: the ``(1 - level)/2`` and ``(1 + level)/2`` quantiles of the replicates.

    Parameters
    ----------
    values : array_like, shape (n,)
        The sample (e.g. per-patient values of one arm).
    statistic : callable
        ``statistic(x, axis=-1)`` -> reduction along the last axis (``np.mean``, ``np.median``,
        ...); a callable without ``axis`` works too, more slowly.
    seed : int
        Seed of :func:`numpy.random.default_rng`; same seed, same interval.
    n_boot : int
        Number of bootstrap resamples.
    level : float
        Two-sided confidence level.
    method : {"bca", "percentile"}

    Returns
    -------
    estimate, lo, hi : float
        ``statistic(values)`` and the limits; all NaN for an empty sample, ``lo = hi =
        estimate`` when every resample gives the same value.

    References
    ----------
    Efron B (1987) Better bootstrap confidence intervals. J Am Stat Assoc 82:171-185,
    doi:10.1080/01621459.1987.10478410. Efron B, Tibshirani RJ (1993) An Introduction to the
    Bootstrap, Chapman & Hall, ch. 13-14, doi:10.1201/9780429246593.
    """
    _check_level(level)
    if method not in ("bca", "percentile"):
        raise ValueError(f"method: got {method!r}; allowed: bca, percentile")
    if n_boot < 1:
        raise ValueError(f"n_boot: got {n_boot!r}; allowed: a positive integer")
    x = np.asarray(values, dtype=float).ravel()
    x = x[~np.isnan(x)]
    n = x.size
    if n == 0:
        return np.nan, np.nan, np.nan
    estimate = float(_apply_statistic(statistic, x[None, :])[0])
    rng = np.random.default_rng(seed)
    rows = max(1, _BOOT_CHUNK_ELEMENTS // n)
    boot = np.empty(n_boot)
    for start in range(0, n_boot, rows):
        stop = min(n_boot, start + rows)
        idx = rng.integers(0, n, size=(stop - start, n))
        boot[start:stop] = _apply_statistic(statistic, x[idx])
    if np.ptp(boot) == 0.0:
        return estimate, estimate, estimate
    alpha = (1.0 - level) / 2.0
    if method == "percentile":
        lo, hi = np.quantile(boot, [alpha, 1.0 - alpha])
        return estimate, float(lo), float(hi)
    # BCa
    rank = (np.sum(boot < estimate) + np.sum(boot <= estimate)) / (2.0 * n_boot)
    rank = np.clip(rank, 0.5 / n_boot, 1.0 - 0.5 / n_boot)
    z0 = special.ndtri(rank)
    jack = _jackknife(statistic, x)
    d = jack.mean() - jack
    den = 6.0 * np.sum(d**2) ** 1.5
    acc = np.sum(d**3) / den if den > 0 else 0.0
    zq = special.ndtri(np.array([alpha, 1.0 - alpha]))
    with np.errstate(divide="ignore", invalid="ignore"):
        adj = special.ndtr(z0 + (z0 + zq) / (1.0 - acc * (z0 + zq)))
    if not (np.all(np.isfinite(adj)) and adj[0] < adj[1]):
        adj = np.array([alpha, 1.0 - alpha])  # degenerate acceleration: percentile interval
    lo, hi = np.quantile(boot, adj)
    return estimate, float(lo), float(hi)


def _jackknife(statistic: Callable, x: np.ndarray) -> np.ndarray:
    """Leave-one-out values of ``statistic`` (rows of the (n, n-1) design built in chunks)."""
    n = x.size
    if n == 1:
        return np.array([_apply_statistic(statistic, x[None, :])[0]])
    out = np.empty(n)
    rows = max(1, _BOOT_CHUNK_ELEMENTS // n)
    cols = np.arange(n - 1)
    for start in range(0, n, rows):
        i = np.arange(start, min(n, start + rows))[:, None]
        idx = cols[None, :] + (cols[None, :] >= i)  # skip index i
        out[start : start + i.shape[0]] = _apply_statistic(statistic, x[idx])
    return out


def replicate_interval(
    values_per_replicate,
    level: float = 0.95,
    axis: int = 0,
    center: Literal["median", "mean"] = "median",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre and percentile interval of a summary across trial replicates.

    The ``(1 - level)/2`` and ``(1 + level)/2`` quantiles (linear interpolation) of the replicate
    values along ``axis``, NaNs ignored. This is the range in which a *single* replicate trial's
    summary falls (a prediction interval for the next trial, which is what M replicates honestly
    give), not a confidence interval for the mean over replicates (use :func:`mean_interval` for
    that; it shrinks like 1/sqrt(M)).

    Returns
    -------
    center, lo, hi : ndarray (0-d for 1-D input)

    References
    ----------
    Hyndman RJ, Fan Y (1996) Sample quantiles in statistical packages. Am Stat 50:361-365,
    doi:10.1080/00031305.1996.10473566 (definition 7, numpy's default).
    """
    _check_level(level)
    if center not in ("median", "mean"):
        raise ValueError(f"center: got {center!r}; allowed: median, mean")
    v = np.asarray(values_per_replicate, dtype=float)
    alpha = (1.0 - level) / 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices -> NaN
        lo, mid, hi = np.nanquantile(v, [alpha, 0.5, 1.0 - alpha], axis=axis)
        c = mid if center == "median" else np.nanmean(v, axis=axis)
    return c, lo, hi


def probability_of_success(
    successes, z: float = Z95
) -> tuple[np.ndarray | float, np.ndarray | float, np.ndarray | float]:
    """Probability that a replicate trial meets its success criterion, with a 95 % interval.

    * 1-D ``successes`` (one flag per independent replicate): the fraction with a Wilson
      interval; with replicates simulated from one fixed compound this is the power.
    * 2-D ``successes``, shape (n_draws, n_replicates): replicates nested in compound parameter
      draws. The rate is the overall fraction (the assurance: power averaged over compound
      uncertainty). Replicates of one draw share the compound, so they are not independent: the
      interval is a Wilson interval at the *effective* sample size ``n_eff = r (1 - r) / v``,
      ``v`` the variance of the mean of the per-draw rates (``var(draw rates, ddof=1) /
      n_draws``), capped at the number of flags (Kish design effect; Korn & Graubard 1998).

    Returns
    -------
    rate, lo, hi : float

    References
    ----------
    Wilson EB (1927) doi:10.1080/01621459.1927.10502953. Kish L (1965) Survey Sampling, Wiley.
    Korn EL, Graubard BI (1998) Confidence intervals for proportions with small expected number
    of positive counts estimated from survey data. Survey Methodology 24:193-201.
    O'Hagan A, Stevens JW, Campbell MJ (2005) Assurance in clinical trial design. Pharm Stat
    4:187-201, doi:10.1002/pst.175.
    """
    s = np.asarray(successes)
    if s.dtype != bool and not np.all((s == 0) | (s == 1)):
        raise ValueError("successes: allowed: booleans (or 0/1) per replicate")
    s = s.astype(float)
    if s.ndim == 1 or (s.ndim == 2 and s.shape[0] == 1):
        s = s.ravel()
        pooled, pooled_lo, pooled_hi = proportion_interval(s.sum(), s.size, z)
        return float(pooled), float(pooled_lo), float(pooled_hi)
    if s.ndim != 2:
        raise ValueError(f"successes: got {s.ndim} dimensions; allowed: 1 or 2")
    n_total = s.size
    if n_total == 0:
        return np.nan, np.nan, np.nan
    rate = float(s.mean())
    draw_rates = s.mean(axis=1)
    v = draw_rates.var(ddof=1) / draw_rates.size
    n_eff = float(n_total) if v <= 0 else min(float(n_total), rate * (1 - rate) / v)
    lo, hi = wilson_interval(rate * n_eff, n_eff, z)
    return rate, float(lo), float(hi)


def variance_decomposition(values, outer_index=None) -> dict[str, float]:
    """Law of total variance: how much of the spread comes from not knowing the compound.

    ``Var(Y) = Var(E[Y | draw]) + E[Var(Y | draw)]``, evaluated on the sample with group-size
    weights and ``ddof = 0``, so the identity holds exactly: ``total = between + within``.
    ``between`` is the spread of the per-draw means (compound uncertainty), ``within`` the
    spread inside a draw (patient variability and trial sampling).

    The plug-in ``between`` includes the sampling noise of each draw's mean (about
    ``within / m`` for m values per draw), so it overstates compound uncertainty when m is small.
    ``between_adjusted`` removes it (one-way random-effects ANOVA, method of moments,
    ``(MSB - MSW) / m0`` truncated at 0, with ``m0`` the usual unbalanced-group size);
    ``between_fraction_adjusted = between_adjusted / (between_adjusted + within_unbiased)``.

    Parameters
    ----------
    values : array_like, shape (n,) or (n_draws, m)
        A replicate summary (e.g. each replicate's responder rate or difference vs placebo).
    outer_index : array_like of int or str, shape (n,), optional
        The compound-parameter draw of each value. Omit it for a 2-D ``values`` whose rows are
        the draws.

    Returns
    -------
    dict
        ``total_variance``, ``between_variance``, ``within_variance``, ``between_fraction``,
        ``within_fraction`` (sum to 1; NaN when total is 0), ``between_variance_adjusted``,
        ``within_variance_unbiased``, ``between_fraction_adjusted``, ``n_outer``, ``n``,
        ``grand_mean``.

    References
    ----------
    Searle SR, Casella G, McCulloch CE (1992) Variance Components, Wiley, ch. 3,
    doi:10.1002/9780470316856.
    """
    v = np.asarray(values, dtype=float)
    if outer_index is None:
        if v.ndim != 2:
            raise ValueError("outer_index: required unless values is 2-D (draws x replicates)")
        groups = np.repeat(np.arange(v.shape[0]), v.shape[1])
        v = v.ravel()
    else:
        v = v.ravel()
        idx = np.asarray(outer_index).ravel()
        if idx.size != v.size:
            raise ValueError(
                f"outer_index: got {idx.size} labels for {v.size} values; allowed: one per value"
            )
        _, groups = np.unique(idx, return_inverse=True)
    keep = ~np.isnan(v)
    v, groups = v[keep], groups[keep]
    n = v.size
    if n == 0:
        raise ValueError("values: no non-NaN value")
    n_outer_all = int(groups.max()) + 1
    counts = np.bincount(groups, minlength=n_outer_all).astype(float)
    present = counts > 0
    sums = np.bincount(groups, weights=v, minlength=n_outer_all)
    means = np.where(present, sums / np.maximum(counts, 1), 0.0)
    grand = v.mean()
    total = float(np.mean((v - grand) ** 2))
    between = float(np.sum(counts * (means - grand) ** 2) / n)
    within = float(np.mean((v - means[groups]) ** 2))
    g = int(present.sum())
    counts = counts[present]
    with np.errstate(divide="ignore", invalid="ignore"):
        msw = within * n / (n - g) if n > g else np.nan
        msb = between * n / (g - 1) if g > 1 else np.nan
        m0 = (n - np.sum(counts**2) / n) / (g - 1) if g > 1 else np.nan
        between_adj = max((msb - msw) / m0, 0.0) if np.isfinite(msb - msw) else np.nan
        frac_adj = between_adj / (between_adj + msw) if (between_adj + msw) > 0 else np.nan
        bf = between / total if total > 0 else np.nan
        wf = within / total if total > 0 else np.nan
    return {
        "total_variance": total,
        "between_variance": between,
        "within_variance": within,
        "between_fraction": float(bf),
        "within_fraction": float(wf),
        "between_variance_adjusted": float(between_adj),
        "within_variance_unbiased": float(msw),
        "between_fraction_adjusted": float(frac_adj),
        "n_outer": g,
        "n": int(n),
        "grand_mean": float(grand),
    }
