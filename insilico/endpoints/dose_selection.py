"""Dose selection: the dose that maximizes P(response and no serious adverse event).

Two inputs, one function (:func:`best_dose`):

* **counts per dose** from one simulated trial (or the pooled patients of a dose scan):
  ``n_success[d]`` patients out of ``n_total[d]`` responded without a serious AE at dose d.
  The interval for the best dose is a *confidence set*: the doses that are not significantly
  worse than any other dose in one-sided pairwise comparisons, each at level
  ``alpha / (k - 1)`` for ``k`` doses (Bonferroni-adjusted comparisons with the best). By the
  Bonferroni inequality it contains the truly best dose with probability >= ``level``
  (approximately; see :func:`best_dose`). This is more conservative (a set at least as wide)
  than Hsu's multiple comparisons with the best, which uses the joint (Dunnett-type) critical
  value of the ``k - 1`` comparisons instead of the Bonferroni one.
* **replicates x doses** (M replicate trials, possibly nested in compound parameter draws):
  the argmax in each replicate gives the distribution of the dose a trial of this size would
  pick; its 2.5-97.5 % range and the smallest set of doses holding ``level`` of that
  distribution are reported.

Doses must be sorted in increasing order (equal doses are allowed, e.g. two regimens of the same
daily dose: ``best_index`` then names the arm); ties in the success rate go to the first, i.e.
lowest, dose (the safer choice when efficacy is equal).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special

from insilico.endpoints.stats import (
    newcombe_difference_interval,
    proportion_interval,
    replicate_interval,
    z_for_level,
)

__all__ = ["best_dose"]


def best_dose(
    doses,
    n_success,
    n_total=None,
    level: float = 0.95,
) -> dict[str, Any]:
    """Dose maximizing the probability of response without a serious adverse event.

    Parameters
    ----------
    doses : array_like, shape (n_doses,)
        Doses in increasing order (any unit, e.g. mg); one entry per arm of the scan.
    n_success : array_like, shape (n_doses,) or (n_replicates, n_doses)
        Patients with response and no serious AE, per dose (1-D: one trial / pooled counts;
        2-D: one row per replicate trial). With ``n_total=None`` a 2-D array is read as the
        per-replicate success *rates* directly.
    n_total : array_like, optional
        Patients per dose; broadcast against ``n_success``. Required for 1-D input.
    level : float
        Confidence level of every interval (default 0.95).

    Returns
    -------
    dict
        Common keys: ``method``, ``doses``, ``rate`` (per dose), ``rate_ci_low``,
        ``rate_ci_high``, ``best_index``, ``best_dose``, ``best_rate``, ``best_rate_ci_low``,
        ``best_rate_ci_high``, ``dose_set`` (bool per dose: the set reported as the interval for
        the best dose), ``dose_ci_low``, ``dose_ci_high`` (lowest and highest dose of that
        interval).

        ``method="multiple_comparisons_with_best"`` (1-D counts; Bonferroni-adjusted
        comparisons with the best): ``rate`` is ``k/n`` with Wilson limits. Dose ``i`` is in
        ``dose_set`` unless some dose ``j`` is significantly better: the lower limit of the
        Newcombe interval for ``p_j - p_i`` at one-sided level ``alpha_per_comparison =
        alpha / (n_doses - 1)`` (``alpha = 1 - level``; critical value ``z_{1 -
        alpha_per_comparison}``) is above 0. The truly best dose is dropped only if one of the
        ``n_doses - 1`` comparisons against it errs, so by the Bonferroni inequality the set
        misses it with probability <= alpha, up to the normal approximation of the Newcombe
        limits. This is the Bonferroni form of multiple comparisons with the best: Hsu's MCB
        (Hsu 1984; Edwards & Hsu 1983) uses the joint critical value of the ``n_doses - 1``
        comparisons, which is smaller than ``z_{1 - alpha_per_comparison}``, so this set is
        conservative (at least as wide for the same interval method). The sample-best dose
        is always in the set. The arms are treated as independent groups; when
        the same patients receive every dose (paired design, positively correlated outcomes)
        the set is conservative (too wide), never too narrow. ``best_rate_ci_*`` is the Wilson
        interval of the selected dose, which is biased upwards by the selection (winner's
        curse) when several doses are close. Extra key: ``alpha_per_comparison``
        (``alpha / (n_doses - 1)``; ``alpha`` for a single dose, which is its own set).

        ``method="replicate_argmax"`` (2-D): ``rate`` is the mean over replicates; ``rate_ci_*``
        the percentile range of the per-replicate rates (:func:`replicate_interval`, where a
        single trial's rate falls). ``best_index`` maximizes the mean rate (the expected
        success probability, averaged over every source of uncertainty in the replicates).
        Extra keys: ``prob_best`` (fraction of replicates in which each dose is the argmax),
        ``modal_index``. ``dose_ci_low/high`` are the ``(1 - level)/2`` and ``(1 + level)/2``
        quantiles of the per-replicate argmax dose (taken on observed doses), and ``dose_set``
        the smallest set of doses whose ``prob_best`` adds up to ``level``.

    References
    ----------
    Hsu JC (1996) Multiple Comparisons: Theory and Methods. Chapman & Hall (multiple
    comparisons with the best; the Bonferroni inequality for simultaneous inference).
    Hsu JC (1984) Constrained simultaneous confidence intervals for multiple comparisons with
    the best. Ann Stat 12:1136-1144 (the exact, less conservative MCB; not what is computed).
    Edwards DG, Hsu JC (1983) Multiple comparisons with the best treatment. J Am Stat Assoc
    78:965-971.
    Newcombe RG (1998) Stat Med 17:873-890 (method 10), see
    :func:`insilico.endpoints.stats.newcombe_difference_interval`.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level: got {level!r}; allowed: a number strictly between 0 and 1")
    d = np.asarray(doses, dtype=float)
    if d.ndim != 1 or d.size == 0:
        raise ValueError("doses: allowed: a non-empty 1-D array")
    if d.size > 1 and np.any(np.diff(d) < 0):
        raise ValueError(f"doses: got {d.tolist()}; allowed: values sorted in increasing order")
    s = np.asarray(n_success, dtype=float)
    if s.shape[-1] != d.size:
        raise ValueError(
            f"n_success: got last axis {s.shape[-1]} for {d.size} doses; allowed: one per dose"
        )
    if s.ndim == 1:
        if n_total is None:
            raise ValueError("n_total: required for counts per dose (1-D n_success)")
        return _best_from_counts(d, s, np.broadcast_to(np.asarray(n_total, float), s.shape), level)
    if s.ndim == 2:
        if n_total is None:
            rates = s
            if np.any((rates < 0) | (rates > 1)):
                raise ValueError("n_success: rates (n_total=None) must lie in [0, 1]")
        else:
            nt = np.broadcast_to(np.asarray(n_total, float), s.shape)
            with np.errstate(divide="ignore", invalid="ignore"):
                rates = np.where(nt > 0, s / nt, np.nan)
        return _best_from_replicates(d, rates, level)
    raise ValueError(f"n_success: got {s.ndim} dimensions; allowed: 1 or 2")


def _best_from_counts(d: np.ndarray, k: np.ndarray, n: np.ndarray, level: float) -> dict:
    z = z_for_level(level)
    rate, lo, hi = proportion_interval(k, n, z)
    if np.all(np.isnan(rate)):
        raise ValueError("n_total: every dose has 0 patients")
    best = int(np.nanargmax(rate))  # first maximum = lowest dose among ties
    n_doses = d.size
    alpha = 1.0 - level
    alpha_each = alpha / max(n_doses - 1, 1)  # Bonferroni over the k - 1 comparisons
    if n_doses == 1:
        in_set = np.ones(1, dtype=bool)
    else:
        z_b = float(special.ndtri(1.0 - alpha_each))  # one-sided
        # lower limit of p_j - p_i for every pair (rows j, columns i)
        low_ji, _ = newcombe_difference_interval(
            k[:, None], n[:, None], k[None, :], n[None, :], z_b
        )
        np.fill_diagonal(low_ji, -np.inf)
        beaten = np.any(low_ji > 0, axis=0)
        in_set = ~beaten & ~np.isnan(rate)
    return {
        "method": "multiple_comparisons_with_best",
        "doses": d,
        "rate": rate,
        "rate_ci_low": lo,
        "rate_ci_high": hi,
        "best_index": best,
        "best_dose": float(d[best]),
        "best_rate": float(rate[best]),
        "best_rate_ci_low": float(lo[best]),
        "best_rate_ci_high": float(hi[best]),
        "dose_set": in_set,
        "dose_ci_low": float(d[in_set].min()),
        "dose_ci_high": float(d[in_set].max()),
        "alpha_per_comparison": float(alpha_each),
    }


def _best_from_replicates(d: np.ndarray, rates: np.ndarray, level: float) -> dict:
    valid = ~np.all(np.isnan(rates), axis=1)
    rates = rates[valid]
    if rates.shape[0] == 0:
        raise ValueError("n_success: no replicate with a defined rate")
    # per-replicate argmax; NaN doses never win; ties -> lowest dose
    arg = np.argmax(np.where(np.isnan(rates), -np.inf, rates), axis=1)
    prob_best = np.bincount(arg, minlength=d.size) / arg.size
    mean_rate = np.nanmean(rates, axis=0)
    best = int(np.nanargmax(mean_rate))
    _, lo, hi = replicate_interval(rates, level=level, axis=0)
    alpha = (1.0 - level) / 2.0
    best_doses = d[arg]
    dose_lo = float(np.quantile(best_doses, alpha, method="inverted_cdf"))
    dose_hi = float(np.quantile(best_doses, 1.0 - alpha, method="inverted_cdf"))
    order = np.argsort(-prob_best, kind="stable")
    cum = np.cumsum(prob_best[order])
    n_keep = int(np.searchsorted(cum, level - 1e-12) + 1)
    in_set = np.zeros(d.size, dtype=bool)
    in_set[order[:n_keep]] = True
    return {
        "method": "replicate_argmax",
        "doses": d,
        "rate": mean_rate,
        "rate_ci_low": lo,
        "rate_ci_high": hi,
        "best_index": best,
        "best_dose": float(d[best]),
        "best_rate": float(mean_rate[best]),
        "best_rate_ci_low": float(lo[best]),
        "best_rate_ci_high": float(hi[best]),
        "prob_best": prob_best,
        "modal_index": int(np.argmax(prob_best)),
        "dose_set": in_set,
        "dose_ci_low": dose_lo,
        "dose_ci_high": dose_hi,
        "n_replicates": int(rates.shape[0]),
    }
