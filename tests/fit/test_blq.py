"""Observations below the quantification limit (BLQ): Beal's M3 likelihood in MAP and FOCE-I
fits, the dataset columns that mark them, diagnostics and VPCs with censoring."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize
from scipy.stats import norm

from insilico.dataset import dataset_from_frame, read_dataset
from insilico.errors import DatasetError
from insilico.fit import map_estimates
from insilico.fit.population import diagnostics, fit_focei
from insilico.fit.posterior import SubjectProblem, m3_terms
from insilico.fit.vpc import censored_percentiles, plot_vpc, vpc_table
from insilico.model import model_from_dict

from .test_population import DATA, TRUE, _start, _study
from .test_twin import (
    ADD,
    OMEGA,
    PROP,
    TIMES,
    TYPICAL,
    _bateman,
    _model,
    _patients,
    acop_oral_model,
)

#: quantification limit of the simulated studies (mg/L): about a quarter of the observations
LLOQ = 0.7


def _censor(table: pd.DataFrame, lloq: float = LLOQ) -> pd.DataFrame:
    """``table`` with ``BLQ``/``LLOQ`` columns; DV of the observations below ``lloq`` removed."""
    out = table.copy()
    below = (out["EVID"] == 0) & (out["DV"] < lloq)
    out["BLQ"] = below.astype(int)
    out["LLOQ"] = lloq
    out.loc[below, "DV"] = np.nan
    return out


def _exponential_model():
    return model_from_dict(
        {
            "name": "oral_1cpt_exp",
            "pk": {"compartments": 1, "absorption": "first_order", "elimination": "linear"},
            "parameters": TYPICAL,
            "iiv": OMEGA,
            "residual_error": {"exponential": 0.2},
        }
    )


# ---------------------------------------------------------------- the M3 terms


def test_m3_term_is_the_normal_log_cdf_and_its_derivatives_are_right():
    # extreme and ordinary standardized distances
    z = np.concatenate([np.linspace(-38.0, 9.0, 200), [-1e3, 0.0, 30.0]])
    dz = np.full(z.shape, -0.7)
    nll, g, w = m3_terms(z, dz)
    np.testing.assert_allclose(nll, -norm.logcdf(z), rtol=1e-12, atol=1e-12)
    lam = np.exp(norm.logpdf(z) - norm.logcdf(z))
    np.testing.assert_allclose(g, 0.7 * lam, rtol=1e-10, atol=1e-300)
    assert (w >= 0).all() and (w <= 0.49 + 1e-12).all()

    # in a SubjectProblem: every censored observation gets -log Phi((LLOQ - f) / sqrt(v))
    model = _model()
    table, _, _, _ = _patients(4, seed=1)
    ds = dataset_from_frame(_censor(table), compartments=model.compartment_map())
    problem = SubjectProblem(model, ds.table)
    assert 0.1 < problem.censored.mean() < 0.4
    f = problem.predictions(np.random.default_rng(0).normal(0, 0.2, (4, 3)))
    nll, g, w = problem.residual_terms(f)
    assert nll.shape == g.shape == w.shape == (int(problem.obs.sum()),)
    c = problem.censored
    fo = f[problem.obs]
    sd = np.sqrt(ADD**2 + (PROP * fo) ** 2)
    np.testing.assert_allclose(nll[c], -norm.logcdf((LLOQ - fo[c]) / sd[c]), rtol=1e-12, atol=1e-12)
    y = ds.table["DV"].to_numpy()[problem.obs]
    quantified = 0.5 * ((y - fo) ** 2 / sd**2 + np.log(2 * np.pi * sd**2))
    np.testing.assert_allclose(nll[~c], quantified[~c], rtol=1e-12)

    # the derivative in f, by central differences of the same terms
    def nll_at(shift):
        moved = f.copy()
        moved[problem.obs] += shift
        return problem.residual_terms(moved)[0]

    h = 1e-6
    numeric = (nll_at(h) - nll_at(-h)) / (2 * h)
    np.testing.assert_allclose(g, numeric, rtol=1e-5, atol=1e-7)
    assert np.isfinite(w).all() and (w >= 0).all()

    # exponential error: the same on the log scale
    exp_model = _exponential_model()
    problem = SubjectProblem(exp_model, ds.table)
    nll, _, _ = problem.residual_terms(f)
    z = (np.log(LLOQ) - np.log(fo[c])) / 0.2
    np.testing.assert_allclose(nll[c], -norm.logcdf(z), rtol=1e-12, atol=1e-12)


def test_a_zero_prediction_below_the_limit_is_certain_and_flat():
    nll, g, w = m3_terms(np.array([np.inf]), np.array([-np.inf]))
    assert nll[0] == 0.0 and g[0] == 0.0 and w[0] == 0.0


# ---------------------------------------------------------------- MAP (twin updates)


def _posterior(eta, y, below, model_kind):
    """Independent negative log posterior of one subject with BLQ observations."""
    cl, v, ka = np.array(list(TYPICAL.values())) * np.exp(eta)
    f = _bateman(TIMES, cl, v, ka)
    omega_inv = np.diag(1.0 / np.array(list(OMEGA.values())))
    prior = 0.5 * eta @ omega_inv @ eta
    q = ~below
    if model_kind == "exponential":
        s = 0.2
        r = np.log(y[q]) - np.log(f[q])
        data = 0.5 * np.sum(r**2 / s**2 + np.log(2 * np.pi * s**2))
        cens = -np.sum(norm.logcdf((np.log(LLOQ) - np.log(f[below])) / s))
        return data + cens + prior
    var = ADD**2 + (PROP * f) ** 2
    data = 0.5 * np.sum((y[q] - f[q]) ** 2 / var[q] + np.log(2 * np.pi * var[q]))
    cens = -np.sum(norm.logcdf((LLOQ - f[below]) / np.sqrt(var[below])))
    return data + cens + prior


@pytest.mark.parametrize("model_kind", ["combined", "exponential"])
def test_map_with_blq_equals_an_independent_optimization(model_kind):
    model = _model() if model_kind == "combined" else _exponential_model()
    table, _, y, _ = _patients(5, seed=1)
    censored = _censor(table)
    below = y < LLOQ
    assert below.any(axis=1).all(), "every subject has observations below the limit"
    ds = dataset_from_frame(censored, compartments=model.compartment_map())
    post = map_estimates(model, ds.table)
    assert post.converged.all()
    assert (post.n_observations == len(TIMES)).all()
    for i in range(5):
        ref = minimize(
            _posterior,
            np.zeros(3),
            args=(y[i], below[i], model_kind),
            method="BFGS",
            options={"gtol": 1e-10},
        )
        np.testing.assert_allclose(post.eta[i], ref.x, atol=1e-4)
        np.testing.assert_allclose(post.objective[i], ref.fun, rtol=1e-8)
    # the censored observations matter: dropping them moves the estimates
    cm = model.compartment_map()
    dropped = map_estimates(
        model, dataset_from_frame(censored.drop(columns=["BLQ"]), compartments=cm).table
    )
    # (far more than the tolerance above, so the comparison sees the M3 terms)
    assert np.abs(dropped.eta - post.eta).max() > 1e-3


def test_cens_with_the_limit_in_dv_is_the_same_as_blq_and_lloq():
    model = _model()
    table, _, _, _ = _patients(3, seed=2)
    with_blq = _censor(table)
    cens = table.copy()
    below = (cens["EVID"] == 0) & (cens["DV"] < LLOQ)
    cens["cens"] = below.astype(int)
    cens.loc[below, "DV"] = LLOQ
    a = dataset_from_frame(with_blq, compartments=model.compartment_map()).table
    b = dataset_from_frame(cens, compartments=model.compartment_map()).table
    np.testing.assert_array_equal(a["BLQ"], b["BLQ"])
    np.testing.assert_array_equal(a.loc[a["BLQ"] == 1, "LLOQ"], b.loc[b["BLQ"] == 1, "LLOQ"])
    # a BLQ record needs no DV: it stays an observation (MDV 0)
    assert (a.loc[a["BLQ"] == 1, "MDV"] == 0).all() and a.loc[a["BLQ"] == 1, "DV"].isna().all()
    eta = np.random.default_rng(1).normal(0, 0.3, (3, 3))
    np.testing.assert_allclose(
        SubjectProblem(model, a).objective(eta), SubjectProblem(model, b).objective(eta), rtol=1e-14
    )
    # a limit column that flags nothing changes nothing
    flagged_none = table.assign(BLQ=0, LLOQ=LLOQ)
    plain = SubjectProblem(model, dataset_from_frame(table).table).objective(eta)
    same = SubjectProblem(model, dataset_from_frame(flagged_none).table).objective(eta)
    np.testing.assert_array_equal(plain, same)


# ---------------------------------------------------------------- dataset rules


def _csv(tmp_path, text: str):
    path = tmp_path / "blq.csv"
    path.write_text(text, encoding="utf-8")
    return path


def _error(path) -> DatasetError:
    with pytest.raises(DatasetError) as caught:
        read_dataset(path)
    message = str(caught.value)
    assert message.startswith(str(path)), message
    return caught.value


def test_blq_record_without_a_limit_is_refused_clearly(tmp_path):
    header = "ID,TIME,AMT,DV,BLQ,LLOQ\n1,0,100,.,0,0.5\n1,1,.,4.2,0,0.5\n"
    error = _error(_csv(tmp_path, header + "1,24,.,.,1,.\n"))
    assert (error.row, error.column, error.value) == (4, "LLOQ", ".")
    assert "row 4, LLOQ: got '.'" in str(error) and "quantification limit" in error.allowed
    # no LLOQ column at all: the BLQ column is named
    error = _error(_csv(tmp_path, "ID,TIME,AMT,DV,blq\n1,0,100,.,0\n1,24,.,.,1\n"))
    assert (error.row, error.column, error.value) == (3, "blq", "1")
    assert "LLOQ column" in error.allowed
    # CENS: the limit is DV, so a censored record without DV is refused
    error = _error(_csv(tmp_path, "ID,TIME,AMT,DV,CENS\n1,0,100,.,0\n1,24,.,.,1\n"))
    assert (error.row, error.column, error.value) == (3, "DV", ".")
    # above an upper limit is not supported; neither is an interval (M4)
    error = _error(_csv(tmp_path, "ID,TIME,AMT,DV,CENS\n1,0,100,.,0\n1,1,.,90,-1\n"))
    assert (error.column, error.value) == ("CENS", "-1") and "not supported" in error.allowed
    error = _error(_csv(tmp_path, "ID,TIME,AMT,DV,CENS,LIMIT\n1,0,100,.,0,.\n1,24,.,0.5,1,0\n"))
    assert (error.row, error.column, error.value) == (3, "LIMIT", "0")
    # flags: 0 or 1, only on observations, BLQ and CENS agree
    error = _error(_csv(tmp_path, "ID,TIME,AMT,DV,BLQ,LLOQ\n1,0,100,.,0,.5\n1,1,.,.,2,.5\n"))
    assert (error.row, error.column, error.value) == (3, "BLQ", "2")
    error = _error(_csv(tmp_path, "ID,TIME,AMT,DV,BLQ,LLOQ\n1,0,100,.,1,.5\n1,1,.,3,0,.5\n"))
    assert (error.row, error.column) == (2, "BLQ") and "EVID 0" in error.allowed
    error = _error(_csv(tmp_path, "ID,TIME,AMT,DV,BLQ,CENS\n1,0,100,.,0,0\n1,1,.,.5,1,0\n"))
    assert (error.row, error.column) == (3, "CENS")
    # a BLQ record left out by MDV 1 (Beal's M1) needs no limit
    ok = read_dataset(_csv(tmp_path, "ID,TIME,AMT,DV,MDV,BLQ\n1,0,100,.,1,0\n1,24,.,.,1,1\n"))
    assert ok.table["MDV"].tolist() == [1.0, 1.0]


# ---------------------------------------------------------------- FOCE-I


@pytest.mark.slow
def test_focei_with_m3_recovers_the_truth_where_dropping_or_imputing_is_biased():
    """60 subjects of the 1-compartment oral model, about a quarter of the observations below
    LLOQ 0.7 mg/L (mostly the late ones). The same study is fitted four ways: uncensored (the
    reference for this sample), with M3, with the BLQ records dropped (M1) and with LLOQ/2 put
    in their place (M6-like)."""
    table = _study(60, seed=21)
    censored = _censor(table)
    below = censored["BLQ"] == 1
    fraction = below.sum() / (censored["EVID"] == 0).sum()
    assert 0.2 <= fraction <= 0.3, fraction
    start = _start()
    cm = start.compartment_map()
    half = table.copy()
    half.loc[below, "DV"] = LLOQ / 2
    fits = {}
    for name, data in (
        ("full", table),
        ("m3", censored),
        ("drop", table.loc[~below]),
        ("half", half),
    ):
        fit = fit_focei(start, dataset_from_frame(data, compartments=cm))
        assert fit.converged, (name, fit.messages)
        fits[name] = fit
    est = {
        k: dict(zip(f.estimates["parameter"], f.estimates["estimate"], strict=True))
        for k, f in fits.items()
    }
    assert fits["m3"].n_observations == fits["full"].n_observations == 600

    def ratio(name, p, ref="full"):
        return est[name][p] / est[ref][p]

    # M3 recovers the true typical values (within 15 %, as the uncensored fit does) and stays
    # within 3 % of the uncensored fit of the same subjects
    for p, value in TRUE.items():
        assert est["m3"][p] == pytest.approx(value, rel=0.15), p
    for p in ("cl_L_per_h", "v1_L"):
        assert ratio("m3", p) == pytest.approx(1.0, abs=0.03), p
    # the naive methods are biased in a known direction (the low late concentrations are
    # missing or raised): dropping lowers CL and raises V, LLOQ/2 raises V and inflates the
    # additive error SD (over seeds 1-5 and 21: CL -2 to -6 %, V +2 to +4 %, SD x3.5)
    assert ratio("drop", "cl_L_per_h") < 0.985
    assert ratio("drop", "v1_L") > 1.01
    assert ratio("half", "v1_L") > 1.015
    assert est["half"]["sigma_additive"] > 2.5 * 0.05
    # and against the truth: M3 is closer than each naive method for CL or V
    for naive in ("drop", "half"):
        closer = [
            abs(np.log(est["m3"][p] / TRUE[p])) < abs(np.log(est[naive][p] / TRUE[p]))
            for p in ("cl_L_per_h", "v1_L")
        ]
        assert any(closer), (naive, est["m3"], est[naive])

    # diagnostics: BLQ records have predictions but no residuals
    ds = dataset_from_frame(censored, compartments=cm)
    diag = diagnostics(fits["m3"], ds)
    rows = below.to_numpy()
    assert diag.loc[rows, ["IWRES", "CWRES"]].isna().all().all()
    assert diag.loc[rows, ["PRED", "IPRED"]].notna().all().all()
    quantified = (censored["EVID"] == 0).to_numpy() & ~rows
    cw = diag.loc[quantified, "CWRES"]
    assert cw.notna().all() and abs(cw.mean()) < 0.15 and 0.8 < cw.std() < 1.2


ACOP = DATA / "estimation_acop2016_oral_1cpt.csv"


@pytest.mark.slow
@pytest.mark.skipif(not ACOP.is_file(), reason=f"{ACOP} not present")
def test_focei_with_m3_on_acop2016_with_a_quarter_censored():
    """Schoemaker et al. (ACOP 2016) oral one-compartment set (true CL 4 L/h, V 70 L, KA 1 /h,
    omega^2 0.09, proportional SD 0.2) with its lowest quarter of concentrations below an
    LLOQ; started 1.5x away from the truth."""
    model = acop_oral_model(1.5, omega2=0.2, sigma=0.3)
    cm = model.compartment_map()
    table = read_dataset(ACOP, compartments=cm).table
    obs = ((table["EVID"] == 0) & (table["MDV"] == 0)).to_numpy()
    lloq = float(np.quantile(table["DV"].to_numpy()[obs], 0.25))
    below = obs & (table["DV"].to_numpy() < lloq)
    data = pd.read_csv(ACOP, na_values=".")
    data["BLQ"] = below.astype(int)
    data["LLOQ"] = lloq
    data.loc[below, "DV"] = np.nan
    fit = fit_focei(model, dataset_from_frame(data, compartments=cm))
    assert fit.converged
    est = dict(zip(fit.estimates["parameter"], fit.estimates["estimate"], strict=True))
    # the tolerances of the uncensored ACOP fit (tests/fit/test_population.py)
    for name, value in {"cl_L_per_h": 4.0, "v1_L": 70.0, "ka_per_h": 1.0}.items():
        assert est[name] == pytest.approx(value, rel=0.10), name
        assert est[f"omega2_{name}"] == pytest.approx(0.09, rel=0.35), name
    assert est["sigma_proportional"] == pytest.approx(0.2, rel=0.15)


# ---------------------------------------------------------------- VPC


def test_censored_percentiles():
    x = np.array([5.0, 1.0, 3.0, 2.0, 4.0])
    np.testing.assert_array_equal(
        censored_percentiles(x, np.zeros(5, bool), [5, 50, 95]), np.percentile(x, [5, 50, 95])
    )
    below = np.array([False, True, False, True, False])  # 1 and 2 only known as "below"
    got = censored_percentiles(x, below, [5, 50, 95])
    assert np.isnan(got[0])
    np.testing.assert_allclose(got[1:], np.percentile(x, [50, 95]))


def test_vpc_with_blq_shows_the_fraction_below_the_limit(tmp_path):
    model = _model()
    table = _censor(_study(100, seed=7))
    ds = dataset_from_frame(table, compartments=model.compartment_map())
    vpc = vpc_table(model, ds, n_replicates=100, n_bins=6, seed=3)
    blq = ["lloq", "blq_observed", "blq_sim_lo", "blq_sim_median", "blq_sim_hi", "blq_inside"]
    assert set(blq) <= set(vpc.columns)
    assert {"observed", "sim_lo", "sim_median", "sim_hi", "inside"} <= set(vpc.columns)
    per_bin = vpc.drop_duplicates("bin")
    assert len(per_bin) == 6 and (per_bin["lloq"] == LLOQ).all()
    # around the peak nothing is below the limit, in the last bin most observations are
    assert per_bin["blq_observed"].min() == 0.0 and per_bin["blq_observed"].iloc[-1] > 0.5
    # the true model: the observed fraction is inside the simulated 90 % interval in most bins
    assert per_bin["blq_inside"].sum() >= 5, per_bin[blq]
    # the low percentile of the last bin is below the limit, in the data and the simulations
    last = vpc[(vpc["bin"] == vpc["bin"].max()) & (vpc["percentile"] == 5.0)].iloc[0]
    assert np.isnan(last["observed"]) and np.isnan(last["sim_lo"]) and bool(last["inside"])
    assert vpc["inside"].mean() >= 0.75, vpc
    # a clearance twice the truth predicts far more BLQ records: the check fails
    wrong = vpc_table(model.with_parameters(cl_L_per_h=4.0), ds, n_replicates=100, n_bins=6, seed=3)
    assert wrong.drop_duplicates("bin")["blq_inside"].sum() <= 3
    # prediction-corrected and plotted
    pc = vpc_table(model, ds, n_replicates=50, n_bins=6, seed=3, prediction_corrected=True)
    assert set(blq) <= set(pc.columns)
    plot_vpc(vpc, tmp_path / "vpc.png")
    assert (tmp_path / "vpc.png").stat().st_size > 10_000
