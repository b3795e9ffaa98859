"""Twin parameters: covariate effects against their formulas, IIV statistics, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from insilico.errors import SpecError
from insilico.rng import PATIENT_BLOCK, draw_by_block
from insilico.twin import IIV, individual_parameters, sample_etas


def test_allometry_and_renal_scaling_match_their_formulas():
    wt = np.array([35.0, 70.0, 140.0])
    egfr = np.array([50.0, 100.0, 150.0])
    typ = {"cl_L_per_h": 10.0, "v1_L": 50.0, "q2_L_per_h": 4.0, "ka_per_h": 1.2, "fe": 0.6}
    p = individual_parameters(typ, {"weight_kg": wt, "egfr_mL_min_1_73m2": egfr})
    size = wt / 70.0
    np.testing.assert_allclose(
        p["cl_L_per_h"], 10.0 * size**0.75 * (0.4 + 0.6 * egfr / 100.0), rtol=1e-14
    )
    np.testing.assert_allclose(p["v1_L"], 50.0 * size, rtol=1e-14)
    np.testing.assert_allclose(p["q2_L_per_h"], 4.0 * size**0.75, rtol=1e-14)
    np.testing.assert_array_equal(p["ka_per_h"], np.full(3, 1.2))
    assert "fe" not in p


def test_nonrenal_multiplier_scales_only_the_nonrenal_part():
    cov = {"weight_kg": np.full(2, 70.0), "crcl_mL_per_min": np.full(2, 100.0)}
    p = individual_parameters(
        {"cl_L_per_h": 10.0, "fe": 0.3},
        cov,
        renal_covariate="crcl_mL_per_min",
        nonrenal_cl_multiplier=np.array([1.0, 0.2]),
    )
    np.testing.assert_allclose(p["cl_L_per_h"], [10.0, 10.0 * (0.7 * 0.2 + 0.3)], rtol=1e-14)


def test_etas_have_the_stated_covariance():
    iiv = IIV({"cl_L_per_h": 0.3, "v1_L": 0.2, "ka_per_h": 0.5}, {("cl_L_per_h", "v1_L"): 0.6})
    n = 200_000
    eta = sample_etas(iiv, 11, "test", 0, n)
    omega = iiv.omega()
    names = iiv.names
    X = np.column_stack([eta[k] for k in names])
    cov = np.cov(X, rowvar=False)
    # SE of a sample covariance: sqrt((s_ii s_jj + s_ij^2) / n)
    se = np.sqrt((np.outer(np.diag(omega), np.diag(omega)) + omega**2) / n)
    assert np.all(np.abs(cov - omega) < 4 * se)
    assert np.all(np.abs(X.mean(axis=0)) < 4 * np.sqrt(np.diag(omega) / n))
    # names are sorted: cl_L_per_h, ka_per_h, v1_L
    np.testing.assert_allclose(np.diag(omega), np.log1p(np.array([0.3, 0.5, 0.2]) ** 2))


def test_log_normal_cv_is_the_stated_cv():
    n = 400_000
    eta = sample_etas(IIV({"cl_L_per_h": 0.3}), 3, "cv", 0, n)
    p = individual_parameters({"cl_L_per_h": 5.0}, {"weight_kg": np.full(n, 70.0)}, eta)
    cv = p["cl_L_per_h"].std() / p["cl_L_per_h"].mean()
    # the CV of a log-normal with omega^2 = ln(1 + 0.3^2) is exactly 0.3; SE of a CV ~ cv/sqrt(2n)
    assert abs(cv - 0.3) < 4 * 0.3 * np.sqrt((0.5 + 0.3**2) / n)


@pytest.mark.parametrize(("start", "stop"), [(0, 10), (1000, 1030), (PATIENT_BLOCK - 3, 2500)])
def test_etas_do_not_depend_on_the_requested_range(start, stop):
    iiv = IIV({"cl_L_per_h": 0.3, "v1_L": 0.2}, {("cl_L_per_h", "v1_L"): -0.3})
    whole = sample_etas(iiv, 5, "cpd", 0, 3000)
    part = sample_etas(iiv, 5, "cpd", start, stop)
    for k in whole:
        np.testing.assert_array_equal(part[k], whole[k][start:stop])


def test_fractions_vary_on_the_logit_scale_and_stay_in_range():
    n = 10_000
    eta = sample_etas(IIV({"f_bio": 2.0}), 1, "f", 0, n)
    p = individual_parameters({"f_bio": 0.7}, {"weight_kg": np.full(n, 70.0)}, eta)
    assert np.all((p["f_bio"] > 0) & (p["f_bio"] < 1))
    assert abs(np.median(p["f_bio"]) - 0.7) < 0.02


@pytest.mark.parametrize(
    ("typical", "cov", "field"),
    [
        ({"cl_L_per_h": 5.0, "fe": 1.5}, {"weight_kg": np.ones(1)}, "fe"),
        ({"f_bio": 1.4}, {"weight_kg": np.ones(1)}, "f_bio"),
        ({"cl_L_per_h": -1.0}, {"weight_kg": np.ones(1)}, "cl_L_per_h"),
        ({"cl_L_per_h": 1.0}, {"weight_kg": np.array([-70.0])}, "covariates.weight_kg"),
    ],
)
def test_bad_values_are_rejected_with_the_field_named(typical, cov, field):
    with pytest.raises(SpecError) as err:
        individual_parameters(typical, cov)
    assert err.value.field == field


def test_non_positive_definite_correlations_are_rejected():
    iiv = IIV({"a": 0.3, "b": 0.3, "c": 0.3}, {("a", "b"): 0.9, ("b", "c"): 0.9, ("a", "c"): -0.9})
    with pytest.raises(SpecError, match="positive-definite"):
        iiv.omega()


def test_correlated_etas_of_one_patient_do_not_depend_on_the_batch():
    """Eleven correlated etas: patient 1234's values alone and within 6,000 patients are the
    same bit for bit (a BLAS product could change its kernel, hence its rounding, with the
    number of rows), and they are ``L z`` with L the Cholesky factor of Omega (rtol 1e-14)."""
    names = [f"p{k}_per_h" for k in range(11)]
    corr = {(a, b): 0.3 for i, a in enumerate(names) for b in names[i + 1 :]}
    iiv = IIV(dict.fromkeys(names, 0.25), corr)
    many = sample_etas(iiv, 9, "batch", 0, 6000)
    one = sample_etas(iiv, 9, "batch", 1234, 1235)
    for k in names:
        assert many[k][1234] == one[k][0]
    z = draw_by_block(9, "batch", 1234, 1235, lambda g, n: g.standard_normal((n, len(names))))
    L = np.linalg.cholesky(iiv.omega())
    np.testing.assert_allclose([one[k][0] for k in iiv.names], L @ z[0], rtol=1e-14)
