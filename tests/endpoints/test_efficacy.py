"""Efficacy helpers: truncated baseline, placebo drift, first response, median-time interval."""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import truncnorm

from insilico.endpoints.efficacy import (
    first_time_meeting,
    median_time_interval,
    placebo_change_pct,
    placebo_responder_rate,
    truncated_normal_from_uniform,
)


def test_truncated_baseline_matches_scipy_and_stays_inside():
    u = np.random.default_rng(1).random(200_000)
    x = truncated_normal_from_uniform(u, 152.0, 10.0, 140.0, 179.0)
    assert x.min() >= 140.0 and x.max() <= 179.0
    ref = truncnorm((140 - 152) / 10, (179 - 152) / 10, loc=152, scale=10)
    np.testing.assert_allclose(x[:50], ref.ppf(u[:50]), rtol=1e-12)
    assert abs(x.mean() - ref.mean()) < 4 * ref.std() / math.sqrt(x.size)


def test_placebo_drift_closed_form_and_analytic_rate():
    t = np.array([0.0, 48.0, 96.0, 1e6])
    d = placebo_change_pct(t, -10.0, 48.0, np.array([0.0, 2.0]))
    np.testing.assert_allclose(d[0], [0.0, -5.0, -7.5, -10.0], atol=1e-12)
    np.testing.assert_allclose(d[1], [0.0, -4.0, -6.0, -8.0], atol=1e-12)
    # no spread: responder iff the mean meets the threshold
    assert placebo_responder_rate(-10, 48, 0, 0, 1e6, -9) == 1.0
    assert placebo_responder_rate(-10, 48, 0, 0, 1e6, -11) == 0.0
    # symmetric case: threshold at the mean -> one half
    assert abs(placebo_responder_rate(-10, 48, 3, 4, 1e6, -10) - 0.5) < 1e-12


def test_first_time_meeting_respects_direction_and_cutoff():
    t = np.array([0.0, 24.0, 48.0, 72.0])
    change = np.array([[0, -5, -12, -20], [0, -15, -5, -5], [0, 5, 12, 30.0]])
    out = first_time_meeting(t, change, -10.0, np.array([100.0, 100.0, 100.0]))
    np.testing.assert_array_equal(out[:2], [48.0, 24.0])
    assert math.isnan(out[2])
    cut = first_time_meeting(t, change, -10.0, np.array([40.0, 10.0, 100.0]))
    assert math.isnan(cut[0]) and math.isnan(cut[1])
    np.testing.assert_array_equal(
        first_time_meeting(t, change, 10.0, 100.0), [np.nan, np.nan, 48.0]
    )


def test_median_time_interval_covers_at_least_95_percent():
    rng = np.random.default_rng(3)
    true_median = math.log(2) * 100.0
    hits = 0
    for _ in range(2000):
        t = rng.exponential(100.0, size=60)
        _, lo, hi = median_time_interval(t)
        hits += lo <= true_median <= hi
    assert 0.95 <= hits / 2000 <= 0.985
    med, lo, hi = median_time_interval(np.array([np.nan] * 6 + [1.0] * 4))
    assert math.isnan(med)
