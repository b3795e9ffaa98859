"""hERG margin, hERG block, QTc outcomes and logistic AEs (insilico.endpoints.safety)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from insilico.endpoints.safety import (
    HERG_MARGIN_FLAG,
    QTModel,
    draw_events,
    exposure_response_events,
    herg_block_fraction,
    herg_margin,
    logistic_probability,
    qt_outcomes,
)
from insilico.errors import SpecError

N = 100_000


@pytest.fixture(scope="module")
def draws():
    """A seeded population: sex 50/50 and the two standard-normal draws."""
    rng = np.random.default_rng(20260601)
    sex = np.where(rng.random(N) < 0.5, "F", "M")
    zb, zr = rng.standard_normal((2, N))
    return sex, zb, zr


def _rate(x: np.ndarray) -> tuple[float, float]:
    """Proportion and its binomial standard error."""
    p = float(np.mean(x))
    return p, float(np.sqrt(max(p * (1 - p), 1e-12) / x.size))


# ---------------------------------------------------------------- margin and block


def test_redfern_flag_value():
    assert HERG_MARGIN_FLAG == 30.0


def test_herg_margin_closed_form_and_special_values():
    m = herg_margin([10.0, 10.0, np.nan, np.inf, 3.0], [2.0, 0.0, 1.0, 1.0, np.nan])
    np.testing.assert_array_equal(m[[0, 1, 3]], [5.0, np.inf, np.inf])
    assert np.isnan(m[2]) and np.isnan(m[4])
    # broadcasting: one compound IC50, per-patient concentrations
    np.testing.assert_allclose(herg_margin(6.0, np.array([1.0, 2.0, 3.0])), [6.0, 3.0, 2.0])


@pytest.mark.parametrize(
    ("ic50", "cmax"), [(0.0, 1.0), (-1.0, 1.0), (1.0, -0.1)], ids=["ic50=0", "ic50<0", "c<0"]
)
def test_herg_margin_rejects_bad_values(ic50, cmax):
    with pytest.raises(SpecError):
        herg_margin(ic50, cmax)


def test_block_fraction_closed_forms():
    ic50 = 2.0
    np.testing.assert_allclose(herg_block_fraction(2.0, ic50), 0.5, rtol=1e-15)
    np.testing.assert_allclose(herg_block_fraction(0.2, ic50), 1 / 11, rtol=1e-15)
    np.testing.assert_allclose(herg_block_fraction(20.0, ic50), 10 / 11, rtol=1e-15)
    np.testing.assert_allclose(herg_block_fraction(4.0, ic50, hill=2.0), 0.8, rtol=1e-15)
    # zero concentration blocks nothing, even with an unknown IC50 (placebo arm)
    np.testing.assert_array_equal(herg_block_fraction([0.0, 0.0], [np.nan, 1.0]), [0.0, 0.0])
    assert herg_block_fraction(1.0, np.inf) == 0.0
    assert np.isnan(herg_block_fraction(1.0, np.nan))
    with pytest.raises(SpecError):
        herg_block_fraction(1.0, 1.0, hill=0.0)


@settings(deadline=None, max_examples=60)
@given(
    log_c=st.floats(-6, 4),
    log_ic50=st.floats(-4, 4),
    hill=st.floats(0.3, 3.0),
)
def test_block_fraction_matches_log_space_hill_and_is_monotone(log_c, log_ic50, hill):
    c, ic50 = 10.0**log_c, 10.0**log_ic50
    b = herg_block_fraction(c, ic50, hill)
    expected = 1.0 / (1.0 + np.exp(hill * np.log(10.0) * (log_ic50 - log_c)))
    np.testing.assert_allclose(b, expected, rtol=1e-12)
    assert herg_block_fraction(c * 1.5, ic50, hill) >= b
    assert herg_block_fraction(c, ic50 * 1.5, hill) <= b


# ---------------------------------------------------------------- block -> ddQTc


def test_qt_model_calibration_anchor_and_published_second_point():
    m = QTModel()
    # anchor used for calibration: 5 % block -> 10 ms (Harmer & Rolf 2024)
    np.testing.assert_allclose(m.ddqtc_drug_ms(0.05), 10.0, rtol=1e-12)
    # NOT used for calibration: "~10-13 % inhibition corresponded to a 20 ms prolongation"
    assert m.ddqtc_drug_ms(0.10) < 20.0 < m.ddqtc_drug_ms(0.13)
    # Emax is 28 % of baseline (Gotta et al. 2016) and is never exceeded
    assert m.ddqtc_drug_ms(1.0) < 0.28 * m.reference_qtc_ms
    np.testing.assert_allclose(m.ddqtc_drug_ms(1.0, 500.0), 0.28 * 500 / (m.block_half_max + 1))
    np.testing.assert_allclose(m.block_half_max, 0.05 * (0.28 * 402 / 10 - 1), rtol=1e-12)
    np.testing.assert_allclose(m.residual_sd_ms, np.sqrt(2) * 7.3, rtol=1e-12)


def test_qt_model_validation():
    with pytest.raises(SpecError):
        QTModel(anchor_ddqtc_ms=500.0)  # larger than the maximal effect
    with pytest.raises(SpecError):
        QTModel(qtcf_sd_ms=-1.0)


def test_ddqtc_monotone_in_concentration_and_potency():
    n = 50
    sex = np.array(["F", "M"] * (n // 2))
    zeros = np.zeros(n)
    c = np.geomspace(1e-4, 1e3, n)
    up = qt_outcomes(c, 1.0, sex[0], zeros, zeros)["ddqtc_drug_ms"]
    assert np.all(np.diff(up) > 0)
    ic50 = np.geomspace(1e-3, 1e4, n)
    down = qt_outcomes(1.0, ic50, "M", zeros, zeros)["ddqtc_drug_ms"]
    assert np.all(np.diff(down) < 0)


# ---------------------------------------------------------------- per-patient outcomes


def test_potent_herg_blocker_gives_qt_events_in_most_patients(draws):
    sex, zb, zr = draws
    c = np.full(N, 0.5)
    out = qt_outcomes(c, c / 10.0, sex, zb, zr)  # IC50 = Cmax_u / 10
    np.testing.assert_allclose(out["herg_margin"], 0.1)
    assert out["herg_margin_lt30"].all()
    np.testing.assert_allclose(out["herg_block_fraction"], 10 / 11)
    assert (out["ddqtc_ms"] > 10).mean() > 0.99
    assert out["qt_dqtc_gt30"].mean() > 0.99
    assert out["qt_dqtc_gt60"].mean() > 0.5
    # mean ddQTc = mean drug effect (residual has mean 0), within 4 SE
    se = out["ddqtc_ms"].std() / np.sqrt(N)
    assert abs(out["ddqtc_ms"].mean() - out["ddqtc_drug_ms"].mean()) < 4 * se


def test_margin_above_1000_gives_no_events_beyond_placebo(draws):
    sex, zb, zr = draws
    c = np.full(N, 0.01)
    drug = qt_outcomes(c, 1000.0 * c, sex, zb, zr)
    placebo = qt_outcomes(np.zeros(N), np.nan, sex, zb, zr)
    assert not drug["herg_margin_lt30"].any()
    assert drug["ddqtc_drug_ms"].max() < 0.3  # 0.1 % block -> about 0.2 ms
    # same draws: the only difference is the tiny drug effect; bound 1 percentage point
    for ev in ("qt_qtc_gt450", "qt_dqtc_gt30"):
        excess = drug[ev].mean() - placebo[ev].mean()
        assert 0 <= excess < 0.01
    assert drug["qt_dqtc_gt60"].mean() <= 1e-4
    assert drug["qt_qtc_gt500"].mean() <= 1e-3


def test_placebo_arm_is_residual_only_and_realistic(draws):
    sex, zb, zr = draws
    m = QTModel()
    out = qt_outcomes(np.zeros(N), np.nan, sex, zb, zr)
    assert out["qt_evaluable"].all()
    np.testing.assert_array_equal(out["ddqtc_drug_ms"], 0.0)
    assert np.isnan(out["herg_margin"]).all()  # IC50 unknown: margin unknown, block 0
    known = qt_outcomes(np.zeros(N), 1.0, sex, zb, zr)
    np.testing.assert_array_equal(known["herg_margin"], np.inf)
    np.testing.assert_array_equal(known["ddqtc_ms"], out["ddqtc_ms"])
    np.testing.assert_allclose(out["ddqtc_ms"], m.residual_sd_ms * zr)
    # ΔQTc > 30 ms on placebo = P(Z > 30 / 10.3) = 0.0018, within 4 SE
    p, se = _rate(out["qt_dqtc_gt30"])
    assert abs(p - norm.sf(30.0 / m.residual_sd_ms)) < 4 * se + 1e-4
    # TQT placebo: dQTc > 60 ms essentially never (3e-9 per patient here)
    assert out["qt_dqtc_gt60"].sum() == 0
    assert out["qt_qtc_gt500"].mean() < 1e-3
    # baseline QTcF by sex: means within 4 SE of the model, women longer
    for code, mu in (("F", m.qtcf_mean_female_ms), ("M", m.qtcf_mean_male_ms)):
        q = out["qtc_baseline_ms"][sex == code]
        assert abs(q.mean() - mu) < 4 * m.qtcf_sd_ms / np.sqrt(q.size)
        np.testing.assert_allclose(q.std(), m.qtcf_sd_ms, rtol=0.02)
    # pooled 2nd-98th percentiles close to Mason et al. 2007 (359-445 ms), within 5 ms
    lo, hi = np.percentile(out["qtc_baseline_ms"], [2, 98])
    assert abs(lo - 359) < 5 and abs(hi - 445) < 5


def test_outcome_identities(draws):
    sex, zb, zr = draws
    out = qt_outcomes(np.full(N, 0.3), 3.0, sex, zb, zr)
    np.testing.assert_allclose(out["qtc_on_drug_ms"], out["qtc_baseline_ms"] + out["dqtc_ms"])
    np.testing.assert_allclose(out["dqtc_ms"], out["ddqtc_ms"])  # placebo mean 0 by default
    for t in (450, 480, 500):
        np.testing.assert_array_equal(out[f"qt_qtc_gt{t}"], out["qtc_on_drug_ms"] > t)
    for t in (30, 60):
        np.testing.assert_array_equal(out[f"qt_dqtc_gt{t}"], out["dqtc_ms"] > t)
    assert "qt_ddqtc_gt10" not in out
    shifted = qt_outcomes(np.full(N, 0.3), 3.0, sex, zb, zr, QTModel(placebo_dqtc_mean_ms=3.0))
    np.testing.assert_allclose(shifted["dqtc_ms"], out["dqtc_ms"] + 3.0)
    np.testing.assert_allclose(shifted["ddqtc_ms"], out["ddqtc_ms"])


def test_unknown_ic50_is_not_evaluable():
    out = qt_outcomes([1.0, 0.0], np.nan, ["F", "M"], [0.0, 0.0], [3.0, 3.0])
    np.testing.assert_array_equal(out["qt_evaluable"], [False, True])
    assert np.isnan(out["ddqtc_ms"][0]) and not out["qt_qtc_gt450"][0]
    assert not out["qt_dqtc_gt30"][0]
    assert not out["herg_margin_lt30"][0]


def test_sex_coding_matches_cohort_and_rejects_others():
    cat = pd.Categorical(["F", "M", "F"])
    z = np.zeros(3)
    out = qt_outcomes(np.zeros(3), 1.0, cat, z, z)
    np.testing.assert_array_equal(out["qtc_baseline_ms"], [408.0, 396.0, 408.0])
    with pytest.raises(SpecError, match="sex"):
        qt_outcomes(np.zeros(2), 1.0, ["F", "X"], z[:2], z[:2])


def test_patient_order_invariance(draws):
    sex, zb, zr = draws
    n = 2000
    c = np.geomspace(0.01, 10, n)
    perm = np.random.default_rng(3).permutation(n)
    a = qt_outcomes(c, 1.0, sex[:n], zb[:n], zr[:n])
    b = qt_outcomes(c[perm], 1.0, sex[:n][perm], zb[:n][perm], zr[:n][perm])
    for k in a:
        np.testing.assert_array_equal(a[k][perm], b[k])


def test_vectorized_speed(draws):
    sex, zb, zr = draws
    c = np.random.default_rng(5).lognormal(0, 0.5, N)
    t0 = time.perf_counter()
    qt_outcomes(c, 2.0, sex, zb, zr)
    assert time.perf_counter() - t0 < 1.0  # about 0.01 s measured for 1e5 patients


# ---------------------------------------------------------------- logistic AEs


def test_logistic_probability_closed_form_and_nan():
    x = np.array([0.0, 1.0, 2.0, np.nan])
    p = logistic_probability(x, -2.0, 1.5)
    np.testing.assert_allclose(p[:3], 1 / (1 + np.exp(-(-2.0 + 1.5 * x[:3]))), rtol=1e-14)
    assert np.isnan(p[3])
    np.testing.assert_allclose(logistic_probability(4.0 / 3.0, -2.0, 1.5), 0.5)
    with np.errstate(all="raise"):  # no overflow warnings at extreme arguments
        q = logistic_probability([-1e6, 1e6], 0.0, 1.0)
    np.testing.assert_array_equal(q, [0.0, 1.0])
    assert np.all(np.diff(logistic_probability(np.linspace(0, 10, 50), -3.0, 0.7)) > 0)


def test_draw_events_frequency_and_validation():
    rng = np.random.default_rng(11)
    x = rng.lognormal(0.0, 0.5, N)
    res = exposure_response_events(x, -3.0, 1.0, rng.random(N))
    p_mean = res["probability"].mean()
    se = np.sqrt(p_mean * (1 - p_mean) / N)
    assert abs(res["event"].mean() - p_mean) < 4 * se
    assert not draw_events(np.nan, 0.0)
    with pytest.raises(SpecError):
        draw_events(0.5, 1.0)


def test_moxifloxacin_plausibility():
    """Real-drug plausibility (not a validation): moxifloxacin 400 mg, the TQT positive control.

    Observed peak ddQTc 7.5-12.5 ms (Bloomfield et al. 2008, doi:10.1038/clpt.2008.33).
    Inputs: hERG IC50 29 uM (step-ramp, 35 C) to 114 uM (action-potential waveform), Alexandrou
    et al. 2006 Br J Pharmacol 147:905; single-dose Cmax 3.1 mg/L and 30-50 % protein binding
    (Avelox label). The model's range over these input ranges must contain the observed range.
    """
    from insilico.units import uM_to_mg_per_L

    mw = 401.4
    ic50 = uM_to_mg_per_L(np.array([114.0, 29.0]), mw)
    cu = 3.1 * np.array([0.5, 0.7])
    b = herg_block_fraction(cu, ic50)
    low, high = QTModel().ddqtc_drug_ms(b)
    assert low < 7.5 and high > 12.5
    assert low > 2.0 and high < 40.0  # and the range is not absurdly wide


def test_e14_flag_uses_the_one_sided_95_percent_bound():
    """ICH E14: negative when the one-sided 95 % upper bound (two-sided 90 % upper limit) of
    the mean ddQTc is below 10 ms. Mean 9.4 ms, bound 9.98 ms: negative, although the
    two-sided 95 % upper limit (10.09 ms) is above 10."""
    from scipy import stats as sps

    from insilico.results.scorecard import ddqtc_summary

    n = 100
    t90 = sps.t.ppf(0.95, n - 1)
    sd = (9.98 - 9.4) * np.sqrt(n) / t90
    z = np.random.default_rng(3).standard_normal(n)
    x = 9.4 + sd * (z - z.mean()) / z.std(ddof=1)
    out = ddqtc_summary(x)
    assert out["ddqtc_ms_mean"] == pytest.approx(9.4)
    assert out["ddqtc_ms_upper90"] == pytest.approx(9.98, abs=1e-9)
    assert out["ddqtc_ms_ci_high"] > 10.0
    assert out["ddqtc_positive"] is False
    assert ddqtc_summary(x + 0.03)["ddqtc_positive"] is True
