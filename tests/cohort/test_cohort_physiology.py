"""Derived covariates against their closed forms and the NHANES-derived eGFR column."""

import numpy as np
import pandas as pd
import pytest

from insilico.cohort import physiology as ph


def test_bmi_bsa_closed_forms():
    assert ph.bmi_kg_m2(80.0, 200.0) == pytest.approx(20.0)
    # Mosteller: sqrt(180 * 80 / 3600) = 2
    assert ph.bsa_mosteller_m2(80.0, 180.0) == pytest.approx(2.0)


def test_lbw_janmahasatian_closed_form():
    # 70 kg, BMI 25: men 9270*70/(6680+216*25) = 53.72; women 9270*70/(8780+244*25) = 43.55
    lbw = ph.lbw_janmahasatian_kg([70.0, 70.0], [25.0, 25.0], [False, True])
    np.testing.assert_allclose(lbw, [9270 * 70 / 12080, 9270 * 70 / 14880], rtol=1e-12)
    assert lbw[0] < 70 and lbw[1] < lbw[0]


def test_cockcroft_gault_closed_form():
    # (140 - 40) * 72 / (72 * 1.0) = 100 mL/min (men), x 0.85 (women)
    crcl = ph.crcl_cockcroft_gault_mL_per_min([1.0, 1.0], [40, 40], [72.0, 72.0], [False, True])
    np.testing.assert_allclose(crcl, [100.0, 85.0])


def test_ckd_epi_2021_published_values():
    # At Scr = kappa the equation is 142 * 0.9938^age (* 1.012 women)
    e = ph.egfr_ckd_epi_2021([0.9, 0.7], [50, 50], [False, True])
    np.testing.assert_allclose(e, [142 * 0.9938**50, 142 * 0.9938**50 * 1.012])


def test_ckd_epi_matches_nhanes_column(shared_data):
    d = pd.read_csv(shared_data / "population_nhanes_2013_2018_individuals.csv")
    d = d.dropna(subset=["serum_creatinine_mg_dL", "egfr_ckdepi2021_mL_min_1.73m2"])
    d = d[d.age_years >= 18]
    e = ph.egfr_ckd_epi_2021(d.serum_creatinine_mg_dL, d.age_years, d.sex == "Female")
    # the data column is rounded to 5 significant digits
    np.testing.assert_allclose(e, d["egfr_ckdepi2021_mL_min_1.73m2"], rtol=1e-4)


def test_scr_from_egfr_is_the_inverse():
    rng = np.random.default_rng(1)
    scr = rng.uniform(0.2, 15.0, 1000)
    age = rng.integers(18, 80, 1000)
    female = rng.random(1000) < 0.5
    e = ph.egfr_ckd_epi_2021(scr, age, female)
    np.testing.assert_allclose(ph.scr_from_egfr_ckd_epi_2021(e, age, female), scr, rtol=1e-10)


def test_renal_category_boundaries():
    e = np.array([120.0, 90.0, 89.99, 60.0, 59.9, 30.0, 29.9, 15.0, 14.9, 1.0])
    names = np.array(ph.RENAL_CATEGORY_NAMES)[ph.renal_category_codes(e)]
    assert list(names) == [
        "normal", "normal", "mild", "mild", "moderate", "moderate",
        "severe", "severe", "kidney_failure", "kidney_failure",
    ]  # fmt: skip
