"""Efficacy endpoints per patient: disease baseline, placebo drift, change from baseline,
responders (at a time or sustained), time to response, target attainment.

All functions are vectorized over patients (rows) and assessment times (columns). Random
inputs (uniforms, standard normals) are passed in, so the caller controls seeding
(:mod:`insilico.rng`).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr, ndtri
from scipy.stats import binom

LN2 = math.log(2.0)


def truncated_normal_from_uniform(
    u: np.ndarray, mean: float, sd: float, low: float | None = None, high: float | None = None
) -> np.ndarray:
    """``N(mean, sd^2)`` truncated to ``[low, high]`` by inverse CDF of uniforms ``u``
    (exactly inside the bounds; ``sd = 0`` gives ``mean`` clipped to the bounds)."""
    u = np.asarray(u, dtype=float)
    if sd == 0:
        return np.clip(np.full(u.shape, float(mean)), low, high)
    a = ndtr((low - mean) / sd) if low is not None else 0.0
    b = ndtr((high - mean) / sd) if high is not None else 1.0
    p = a + u * (b - a)
    p = np.clip(p, np.nextafter(0.0, 1.0), np.nextafter(1.0, 0.0))
    x = mean + sd * ndtri(p)
    return np.clip(x, low, high)


def sample_baseline(spec, u: np.ndarray) -> np.ndarray:
    """Per-patient disease baseline from a :class:`insilico.trial.spec_endpoints.BaselineSpec`
    and uniforms ``u`` (biomarker unit)."""
    if spec.distribution == "normal":
        return truncated_normal_from_uniform(u, spec.mean, spec.sd, spec.low, spec.high)
    lo = math.log(spec.low) if spec.low is not None and spec.low > 0 else None
    hi = math.log(spec.high) if spec.high is not None else None
    return np.exp(truncated_normal_from_uniform(u, math.log(spec.mean), spec.sd, lo, hi))


def placebo_change_pct(
    time_h: np.ndarray, magnitude_pct: float, half_life_h: float, eta_pct: np.ndarray
) -> np.ndarray:
    """Placebo drift ``(magnitude_pct + eta) (1 - exp(-ln2 t / half_life_h))``, shape
    ``(n_patients, n_times)`` (% of baseline)."""
    shape = 1.0 - np.exp(-LN2 * np.asarray(time_h, dtype=float) / half_life_h)
    return (magnitude_pct + np.asarray(eta_pct, dtype=float))[:, None] * shape[None, :]


def placebo_responder_rate(
    magnitude_pct: float,
    half_life_h: float,
    sd_pct: float,
    residual_sd_pct: float,
    time_h: float,
    threshold_pct: float,
) -> float:
    """Analytic responder rate of a placebo arm: the change at ``time_h`` is normal with mean
    ``m f`` and variance ``(sd f)^2 + residual^2``, ``f = 1 - exp(-ln2 t / t_half)``; a
    responder meets ``threshold_pct`` in its direction."""
    f = 1.0 - math.exp(-LN2 * time_h / half_life_h)
    mu = magnitude_pct * f
    sd = math.hypot(sd_pct * f, residual_sd_pct)
    if sd == 0:
        return float(mu <= threshold_pct if threshold_pct < 0 else mu >= threshold_pct)
    z = (threshold_pct - mu) / sd
    return float(ndtr(z) if threshold_pct < 0 else 1.0 - ndtr(z))


def meets(change: np.ndarray, threshold: float) -> np.ndarray:
    """``change <= threshold`` for a decrease target (threshold < 0), else ``>=``; NaN -> False."""
    change = np.asarray(change, dtype=float)
    with np.errstate(invalid="ignore"):
        return change <= threshold if threshold < 0 else change >= threshold


def first_time_meeting(
    time_h: np.ndarray, change: np.ndarray, threshold: float, until_h: np.ndarray | float
) -> np.ndarray:
    """First assessment time (h) at which ``change`` meets ``threshold``, at or before
    ``until_h`` (per patient); NaN if never. Resolution: the assessment grid."""
    time_h = np.asarray(time_h, dtype=float)
    ok = meets(change, threshold) & (time_h[None, :] <= np.asarray(until_h, dtype=float)[..., None])
    any_ = ok.any(axis=1)
    first = np.argmax(ok, axis=1)
    return np.where(any_, time_h[first], np.nan)


def median_time_interval(times_h: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Median time to response with a distribution-free interval.

    Patients who never respond (NaN) count as responding after every observed time (times are
    right-censored only at the common horizon, so the sample median is defined when more than
    half respond). The interval is the order-statistic interval ``[t_(l), t_(u)]`` with ``l``,
    ``u`` from Binomial(n, 1/2) quantiles (e.g. Conover, *Practical Nonparametric Statistics*,
    3rd ed., section 3.2), coverage >= ``level``. NaN where undefined.
    """
    t = np.asarray(times_h, dtype=float)
    n = t.size
    if n == 0:
        return math.nan, math.nan, math.nan
    s = np.sort(np.where(np.isnan(t), np.inf, t))
    med = float(np.median(s)) if np.isfinite(np.median(s)) else math.nan
    alpha = 1.0 - level
    lo_k = int(binom.ppf(alpha / 2, n, 0.5))  # number of order statistics below the lower end
    hi_k = int(binom.ppf(1 - alpha / 2, n, 0.5))
    lo = s[max(lo_k - 1, 0)] if lo_k >= 1 else -math.inf
    hi = s[min(hi_k, n - 1)]
    lo = float(lo) if np.isfinite(lo) else math.nan
    hi = float(hi) if np.isfinite(hi) else math.nan
    return med, lo, hi


def target_attained(
    metric: str,
    target_mg_per_L: float,
    *,
    trough_mg_per_L: np.ndarray,
    time_above_h: np.ndarray,
    interval_h: float,
    auc_mg_h_per_L: np.ndarray,
    cavg_mg_per_L: np.ndarray,
    min_fraction: float,
    min_ratio: float,
) -> np.ndarray:
    """Target attainment over the last dosing interval (see
    :class:`insilico.trial.spec_endpoints.EndpointSpec`)."""
    if metric == "trough":
        return np.asarray(trough_mg_per_L) >= target_mg_per_L
    if metric == "time_above":
        return np.asarray(time_above_h) >= min_fraction * interval_h
    if metric == "auc":
        return np.asarray(auc_mg_h_per_L) / target_mg_per_L >= min_ratio
    if metric == "cavg":
        return np.asarray(cavg_mg_per_L) >= target_mg_per_L
    raise ValueError(f"metric {metric!r}")
