"""insilico.endpoints.dose_selection.best_dose on constructed inputs and by simulation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from insilico.endpoints.dose_selection import best_dose
from insilico.endpoints.stats import newcombe_difference_interval, wilson_interval

DOSES_MG = np.array([10.0, 20.0, 40.0, 80.0, 160.0])


def test_counts_constructed():
    k = np.array([10, 40, 60, 58, 30])
    out = best_dose(DOSES_MG, k, 100)
    assert out["method"] == "multiple_comparisons_with_best"
    assert out["best_index"] == 2 and out["best_dose"] == 40.0
    assert out["best_rate"] == 0.6
    lo, hi = wilson_interval(k, 100)
    np.testing.assert_array_equal(out["rate_ci_low"], lo)
    np.testing.assert_array_equal(out["rate_ci_high"], hi)
    assert (out["best_rate_ci_low"], out["best_rate_ci_high"]) == (lo[2], hi[2])
    # 58/100 is not distinguishable from 60/100; 40/100, 30/100 and 10/100 are beaten
    np.testing.assert_array_equal(out["dose_set"], [False, False, True, True, False])
    assert (out["dose_ci_low"], out["dose_ci_high"]) == (40.0, 80.0)


def test_counts_set_rule_by_hand():
    """Dose i stays unless the Newcombe lower limit of p_j - p_i at one-sided level
    0.05 / (n_doses - 1) is above 0 for some j (Bonferroni multiple comparisons with the best)."""
    k = np.array([20, 47, 60, 30])
    n = np.array([100, 100, 100, 100])
    out = best_dose(DOSES_MG[:4], k, n)
    # 47/100 vs 60/100: one-sided Newcombe lower limit of the difference is +0.014 at level
    # 0.05 but -0.020 at the Bonferroni level 0.05/3, so 20 mg stays in the set
    np.testing.assert_array_equal(out["dose_set"], [False, True, True, False])
    z_b = stats.norm.ppf(1 - 0.05 / 3)
    expected = []
    for i in range(4):
        beaten = any(
            float(newcombe_difference_interval(k[j], n[j], k[i], n[i], z_b)[0]) > 0
            for j in range(4)
            if j != i
        )
        expected.append(not beaten)
    np.testing.assert_array_equal(out["dose_set"], expected)
    assert out["dose_set"][out["best_index"]]


def test_counts_ties_single_dose_and_empty_arm():
    out = best_dose(DOSES_MG[:3], [50, 50, 10], [100, 100, 100])
    assert out["best_index"] == 0  # equal rates: the lower dose
    one = best_dose([25.0], [3], [10])
    assert one["best_dose"] == 25.0 and one["dose_set"].tolist() == [True]
    out = best_dose(DOSES_MG[:3], [0, 20, 30], [0, 50, 50])
    assert np.isnan(out["rate"][0]) and not out["dose_set"][0]
    assert out["best_index"] == 2


def test_counts_confidence_set_covers_true_best():
    """1,000 simulated dose scans (100 patients per dose, true rates with a unique best at
    40 mg): the set contains 40 mg in at least 95 % - 4 SE of them (Bonferroni makes it
    conservative; measured 0.998), and it is informative (mean size < 3 of 5 doses)."""
    rng = np.random.default_rng(41)
    p = np.array([0.1, 0.4, 0.6, 0.55, 0.3])
    m = 1000
    hits, sizes = 0, 0
    for _ in range(m):
        out = best_dose(DOSES_MG, rng.binomial(100, p), 100)
        hits += out["dose_set"][2]
        sizes += out["dose_set"].sum()
    assert hits / m >= 0.95 - 4 * np.sqrt(0.95 * 0.05 / m)
    assert sizes / m < 3.0


def test_replicates_constructed():
    """100 replicates whose argmax is 20 mg in 80, 40 mg in 15 and 10 mg in 5."""
    rates = np.tile([0.1, 0.5, 0.3], (100, 1))
    rates[80:95] = [0.1, 0.3, 0.5]
    rates[95:] = [0.6, 0.3, 0.2]
    out = best_dose(DOSES_MG[:3], rates)
    assert out["method"] == "replicate_argmax"
    np.testing.assert_allclose(out["prob_best"], [0.05, 0.80, 0.15])
    assert out["modal_index"] == 1 and out["best_index"] == 1
    np.testing.assert_allclose(out["rate"], rates.mean(axis=0))
    assert out["best_rate"] == pytest.approx(0.8 * 0.5 + 0.15 * 0.3 + 0.05 * 0.3)
    # smallest set holding 95 % of the argmax distribution: 20 mg (0.80) + 40 mg (0.15)
    np.testing.assert_array_equal(out["dose_set"], [False, True, True])
    # 2.5 % / 97.5 % quantiles of the argmax dose: 3rd and 98th of 100 sorted values
    assert (out["dose_ci_low"], out["dose_ci_high"]) == (10.0, 40.0)
    # counts with n_total give the same as rates
    counts = best_dose(DOSES_MG[:3], rates * 200, 200)
    np.testing.assert_allclose(counts["prob_best"], out["prob_best"])
    assert counts["best_index"] == out["best_index"]


def test_replicates_ties_go_to_lowest_dose_and_best_maximizes_mean():
    rates = np.array([[0.4, 0.4, 0.1], [0.2, 0.9, 0.1], [0.5, 0.1, 0.1]])
    out = best_dose(DOSES_MG[:3], rates)
    np.testing.assert_allclose(out["prob_best"], [2 / 3, 1 / 3, 0])
    # the modal argmax is 10 mg but 20 mg has the highest expected success rate
    assert out["modal_index"] == 0 and out["best_index"] == 1


def test_replicates_from_simulated_trials():
    """2,000 replicate trials of 100 patients per dose: the argmax frequency of the truly best
    dose matches an independent computation, and the reported rates are unbiased (4 SE)."""
    rng = np.random.default_rng(8)
    p = np.array([0.2, 0.45, 0.5, 0.3])
    k = rng.binomial(100, p, size=(2000, 4))
    out = best_dose(DOSES_MG[:4], k, 100)
    assert out["best_index"] == 2
    r = k / 100
    expected = np.mean(np.argmax(r, axis=1) == 2)
    assert out["prob_best"][2] == pytest.approx(expected)
    se = np.sqrt(p * (1 - p) / 100 / 2000)
    assert np.all(np.abs(out["rate"] - p) < 4 * se)
    assert out["dose_set"][1] and out["dose_set"][2]


def test_validation():
    with pytest.raises(ValueError, match="increasing order"):
        best_dose([20.0, 10.0], [1, 2], 10)
    # equal doses (two regimens of one daily dose) are allowed: best_index names the arm
    assert best_dose([10.0, 10.0, 20.0], [1, 5, 2], 10)["best_index"] == 1
    with pytest.raises(ValueError, match="one per dose"):
        best_dose([10.0, 20.0], [1, 2, 3], 10)
    with pytest.raises(ValueError, match="n_total"):
        best_dose([10.0, 20.0], [1, 2])
    with pytest.raises(ValueError, match="rates"):
        best_dose([10.0, 20.0], np.array([[0.5, 1.5]]))
    with pytest.raises(ValueError, match="level"):
        best_dose([10.0, 20.0], [1, 2], 10, level=95)
