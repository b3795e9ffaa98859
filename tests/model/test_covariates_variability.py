"""Covariate effects against hand-computed values; random effects and residual error against
their distributions (seeded, tolerances of 4 standard errors)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from insilico.errors import SpecError
from insilico.model import (
    add_residual_error,
    apply_eta,
    apply_kappa,
    covariate_columns,
    model_from_dict,
    occasion_kappa,
    residual_sd,
    sample_eta,
    sample_eta_for_patients,
    sample_kappa,
    typical_parameters,
)

PK = {"compartments": 1, "absorption": "first_order", "elimination": "linear"}
PARAMS = {"cl_L_per_h": 0.2, "v1_L": 10.0, "ka_per_h": 1.0}


def make(**sections):
    return model_from_dict({"name": "t", "pk": PK, "parameters": dict(PARAMS), **sections})


COV_MODEL = make(
    covariates={
        "cl_L_per_h": {"WT": {"power": 0.75, "reference": 70}},
        "v1_L": {"WT": {"power": 1.0, "reference": 70}, "SEX": {"categorical": {0: 1.0, 1: 0.8}}},
        "ka_per_h": {
            "AGE": {"linear": -0.01, "reference": 40},
            "CRCL": {"exponential": 0.005, "reference": 100},
        },
    }
)


# -- covariates --------------------------------------------------------------------------------


def test_covariate_columns_in_order_of_first_use():
    assert covariate_columns(COV_MODEL) == ("WT", "SEX", "AGE", "CRCL")


def test_covariate_effects_match_hand_computation():
    data = {
        "WT": np.array([70.0, 35.0, 140.0]),
        "SEX": np.array([0, 1, 1]),
        "AGE": np.array([40.0, 60.0, 20.0]),
        "CRCL": np.array([100.0, 50.0, 150.0]),
    }
    tv = typical_parameters(COV_MODEL, data, 3)
    np.testing.assert_allclose(tv["cl_L_per_h"], [0.2, 0.2 * 0.5**0.75, 0.2 * 2.0**0.75])
    np.testing.assert_allclose(tv["v1_L"], [10.0, 10.0 * 0.5 * 0.8, 10.0 * 2.0 * 0.8])
    # ka: (1 - 0.01 (AGE - 40)) · exp(0.005 (CRCL - 100))
    np.testing.assert_allclose(
        tv["ka_per_h"],
        [1.0, (1 - 0.2) * np.exp(-0.25), (1 + 0.2) * np.exp(0.25)],
    )


def test_column_names_match_without_case_and_frames_and_scalars_work():
    frame = pd.DataFrame(
        {"wt": [70.0, 35.0], "sex": [1.0, 0.0], "Age": [40.0, 40.0], "crcl": [100.0, 100.0]}
    )
    tv = typical_parameters(COV_MODEL, frame, 2)
    np.testing.assert_allclose(tv["v1_L"], [8.0, 5.0])
    scalars = {"WT": 140.0, "SEX": 0, "AGE": 40.0, "CRCL": 100.0}
    tv = typical_parameters(COV_MODEL, scalars, 4)
    np.testing.assert_allclose(tv["v1_L"], np.full(4, 20.0))


def test_string_categories():
    m = make(covariates={"cl_L_per_h": {"GENO": {"categorical": {"PM": 0.3, "EM": 1.0}}}})
    tv = typical_parameters(m, {"GENO": np.array(["EM", "PM", "EM"])}, 3)
    np.testing.assert_allclose(tv["cl_L_per_h"], [0.2, 0.06, 0.2])


def test_no_covariates_gives_typical_values():
    tv = typical_parameters(make(), {}, 5)
    assert set(tv) == set(PARAMS)
    np.testing.assert_array_equal(tv["v1_L"], np.full(5, 10.0))


GOOD = {"WT": [70.0, 80.0], "SEX": [0, 1], "AGE": [40.0, 50.0], "CRCL": [90.0, 100.0]}


@pytest.mark.parametrize(
    ("column", "values", "field", "text"),
    [
        ("CRCL", None, "covariates.ka_per_h.CRCL", "lacks"),
        ("WT", [70.0, np.nan], "covariates.cl_L_per_h.WT", "missing"),
        ("SEX", [0, 2], "covariates.v1_L.SEX", "categories [0, 1]"),
        ("WT", [70.0, 0.0], "covariates.cl_L_per_h.WT", "> 0"),
        ("AGE", [40.0, 200.0], "covariates.ka_per_h.AGE", "> 0"),
        ("WT", [70.0, 80.0, 90.0], "covariates.cl_L_per_h.WT", "shape (2,)"),
        ("WT", ["70", "heavy"], "covariates.cl_L_per_h.WT", "numbers"),
    ],
    ids=[
        "missing column",
        "nan",
        "unlisted category",
        "power of 0",
        "linear < 0",
        "length",
        "text",
    ],
)
def test_covariate_data_errors(column, values, field, text):
    data = {k: np.array(v) for k, v in GOOD.items()}
    if values is None:
        del data[column]
    else:
        data[column] = np.array(values)
    with pytest.raises(SpecError) as info:
        typical_parameters(COV_MODEL, data, 2)
    assert info.value.field == field
    assert text in str(info.value)


def test_ambiguous_columns_are_refused():
    data = {k: np.array(v) for k, v in GOOD.items()}
    data["wt"] = data["WT"]
    del data["WT"]
    data["Wt"] = data["wt"]
    with pytest.raises(SpecError, match="ignoring case"):
        typical_parameters(COV_MODEL, data, 2)


# -- IIV ---------------------------------------------------------------------------------------


IIV_MODEL = make(
    iiv={
        "ka_per_h": 0.5,
        "blocks": [
            {"parameters": ["cl_L_per_h", "v1_L"], "covariance": [[0.1, 0.06], [0.06, 0.2]]}
        ],
    }
)


def test_sample_eta_mean_and_covariance_within_4_se():
    n = 20_000
    eta = sample_eta(IIV_MODEL, n, np.random.default_rng(20240601))
    assert eta.shape == (n, 3)
    omega = IIV_MODEL.omega_matrix()
    se_mean = np.sqrt(np.diag(omega) / n)
    assert np.all(np.abs(eta.mean(axis=0)) < 4 * se_mean)
    cov = np.cov(eta, rowvar=False)
    # SE of a normal sample covariance: sqrt((s_ii s_jj + s_ij^2) / n)
    d = np.diag(omega)
    se_cov = np.sqrt((np.outer(d, d) + omega**2) / n)
    assert np.all(np.abs(cov - omega) < 4 * se_cov), cov


def test_zero_variance_and_singular_blocks():
    m = make(
        iiv={
            "ka_per_h": 0.0,
            "blocks": [
                {"parameters": ["cl_L_per_h", "v1_L"], "covariance": [[0.1, 0.1], [0.1, 0.1]]}
            ],
        }
    )
    eta = sample_eta(m, 2_000, np.random.default_rng(1))
    np.testing.assert_array_equal(eta[:, 0], 0.0)
    np.testing.assert_allclose(eta[:, 1], eta[:, 2], rtol=1e-12, atol=1e-12)  # correlation 1
    assert abs(eta[:, 1].var() - 0.1) < 4 * 0.1 * np.sqrt(2 / 2_000)


def test_sample_eta_is_seeded_and_chunk_invariant():
    a = sample_eta(IIV_MODEL, 50, np.random.default_rng(7))
    b = sample_eta(IIV_MODEL, 50, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(sample_eta(IIV_MODEL, 20, np.random.default_rng(7)), a[:20])
    whole = sample_eta_for_patients(IIV_MODEL, 11, 0, 2_500)
    parts = np.concatenate(
        [
            sample_eta_for_patients(IIV_MODEL, 11, lo, hi)
            for lo, hi in [(0, 3), (3, 1500), (1500, 2500)]
        ]
    )
    np.testing.assert_array_equal(whole, parts)
    assert sample_eta(make(), 4, np.random.default_rng(0)).shape == (4, 0)


def test_apply_eta_is_log_normal_and_does_not_mutate():
    tv = {name: np.full(2, value) for name, value in PARAMS.items()}
    before = {k: v.copy() for k, v in tv.items()}
    eta = np.array([[0.1, -0.2, 0.3], [0.0, 0.5, -0.5]])  # ka, cl, v1
    out = apply_eta(tv, IIV_MODEL, eta)
    np.testing.assert_allclose(out["ka_per_h"], 1.0 * np.exp([0.1, 0.0]))
    np.testing.assert_allclose(out["cl_L_per_h"], 0.2 * np.exp([-0.2, 0.5]))
    np.testing.assert_allclose(out["v1_L"], 10.0 * np.exp([0.3, -0.5]))
    for k in tv:
        np.testing.assert_array_equal(tv[k], before[k])
    one_row = apply_eta(tv, IIV_MODEL, np.array([0.1, -0.2, 0.3]))
    np.testing.assert_allclose(one_row["cl_L_per_h"], 0.2 * np.exp([-0.2, -0.2]))
    with pytest.raises(SpecError, match="eta"):
        apply_eta(tv, IIV_MODEL, np.zeros((2, 2)))
    with pytest.raises(SpecError, match=r"params\.ka_per_h"):
        apply_eta({"cl_L_per_h": tv["cl_L_per_h"], "v1_L": tv["v1_L"]}, IIV_MODEL, eta)


# -- IOV ---------------------------------------------------------------------------------------


def test_kappa_variance_and_occasions():
    m = make(iov={"cl_L_per_h": 0.05, "ka_per_h": 0.2})
    n, n_occ = 5_000, 4
    kappa = sample_kappa(m, n_occ, n, np.random.default_rng(3))
    assert kappa.shape == (n, n_occ, 2)
    flat = kappa.reshape(-1, 2)
    var = flat.var(axis=0)
    target = np.array([0.05, 0.2])
    assert np.all(np.abs(var - target) < 4 * target * np.sqrt(2 / flat.shape[0]))
    assert np.all(np.abs(flat.mean(axis=0)) < 4 * np.sqrt(target / flat.shape[0]))
    occ = np.arange(n) % n_occ
    chosen = occasion_kappa(kappa, occ)
    np.testing.assert_array_equal(chosen[5], kappa[5, 1])
    tv = {k: np.full(n, v) for k, v in PARAMS.items()}
    out = apply_kappa(tv, m, chosen)
    np.testing.assert_allclose(out["ka_per_h"], np.exp(chosen[:, 1]))
    np.testing.assert_array_equal(out["v1_L"], tv["v1_L"])
    with pytest.raises(SpecError, match="occasion"):
        occasion_kappa(kappa, np.full(n, n_occ))


# -- residual error ----------------------------------------------------------------------------


F = np.array([0.0, 0.5, 2.0, 10.0])


@pytest.mark.parametrize(
    ("err", "sd"),
    [
        ({"additive": 0.5, "proportional": 0.15}, np.sqrt(0.25 + (0.15 * F) ** 2)),
        ({"additive": 0.3}, np.full(4, 0.3)),
        ({"proportional": 0.2}, 0.2 * F),
        ({"exponential": 0.25}, np.full(4, 0.25)),
    ],
    ids=["combined", "additive", "proportional", "exponential"],
)
def test_residual_sd_formulas(err, sd):
    np.testing.assert_allclose(residual_sd(make(residual_error=err), F), sd)


def test_no_residual_error():
    m = make()
    np.testing.assert_array_equal(residual_sd(m, F), 0.0)
    np.testing.assert_array_equal(add_residual_error(m, F, np.random.default_rng(0)), F)


def test_added_error_has_the_stated_sd():
    n = 20_000
    f = np.tile([0.5, 4.0], n // 2)
    m = make(residual_error={"additive": 0.5, "proportional": 0.15})
    y = add_residual_error(m, f, np.random.default_rng(5))
    z = (y - f) / residual_sd(m, f)
    assert abs(z.mean()) < 4 / np.sqrt(n)
    assert abs(z.var() - 1.0) < 4 * np.sqrt(2 / n)
    me = make(residual_error={"exponential": 0.3})
    ye = add_residual_error(me, f, np.random.default_rng(6))
    ze = np.log(ye / f) / 0.3
    assert np.all(ye > 0)
    assert abs(ze.mean()) < 4 / np.sqrt(n)
    assert abs(ze.var() - 1.0) < 4 * np.sqrt(2 / n)
