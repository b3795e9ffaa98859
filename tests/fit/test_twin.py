"""Twins updated from a patient's data: MAP, forecast intervals, dose for a target."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize

from insilico.cli import main
from insilico.dataset import dataset_from_frame, read_dataset
from insilico.errors import SpecError
from insilico.fit import map_estimates
from insilico.fit.forecast import forecast, parse_target, recommend_dose
from insilico.model import model_from_dict

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
TYPICAL = {"cl_L_per_h": 2.0, "v1_L": 30.0, "ka_per_h": 1.2}
OMEGA = {"cl_L_per_h": 0.09, "v1_L": 0.04, "ka_per_h": 0.16}
ADD, PROP = 0.05, 0.1
DOSE = 100.0
TIMES = np.array([0.5, 1.0, 2.0, 4.0, 6.0, 8.0, 12.0, 24.0, 36.0, 48.0])


def _model():
    return model_from_dict(
        {
            "name": "oral_1cpt",
            "pk": {"compartments": 1, "absorption": "first_order", "elimination": "linear"},
            "parameters": TYPICAL,
            "iiv": OMEGA,
            "residual_error": {"additive": ADD, "proportional": PROP},
        }
    )


def _bateman(t, cl, v, ka, dose=DOSE):
    k = cl / v
    return dose * ka / (v * (ka - k)) * (np.exp(-k * t) - np.exp(-ka * t))


def _patients(n, seed, times=TIMES):
    """Simulated patients (true etas, observations with residual error) as a NONMEM table."""
    rng = np.random.default_rng(seed)
    sd = np.sqrt(list(OMEGA.values()))
    eta = rng.standard_normal((n, 3)) * sd
    cl, v, ka = (np.array(list(TYPICAL.values())) * np.exp(eta)).T
    f = _bateman(times[None, :], cl[:, None], v[:, None], ka[:, None])
    y = f + np.sqrt(ADD**2 + (PROP * f) ** 2) * rng.standard_normal(f.shape)
    rows = []
    for i in range(n):
        rows.append({"ID": i + 1, "TIME": 0.0, "EVID": 1, "AMT": DOSE, "CMT": 1, "DV": np.nan})
        for t, obs in zip(times, y[i], strict=True):
            rows.append({"ID": i + 1, "TIME": t, "EVID": 0, "AMT": 0.0, "CMT": 2, "DV": obs})
    return pd.DataFrame(rows), eta, y, f


def _neg_log_posterior(eta, y, times):
    cl, v, ka = np.array(list(TYPICAL.values())) * np.exp(eta)
    f = _bateman(times, cl, v, ka)
    var = ADD**2 + (PROP * f) ** 2
    omega_inv = np.diag(1.0 / np.array(list(OMEGA.values())))
    return 0.5 * np.sum((y - f) ** 2 / var + np.log(2 * np.pi * var)) + 0.5 * eta @ omega_inv @ eta


def test_map_equals_an_independent_optimization_of_the_same_posterior():
    model = _model()
    table, _, y, _ = _patients(5, seed=1)
    ds = dataset_from_frame(table, compartments=model.compartment_map())
    post = map_estimates(model, ds.table)
    assert post.converged.all()
    for i in range(5):
        ref = minimize(
            _neg_log_posterior,
            np.zeros(3),
            args=(y[i], TIMES),
            method="BFGS",
            options={"gtol": 1e-10},
        )
        np.testing.assert_allclose(post.eta[i], ref.x, atol=1e-4)
        np.testing.assert_allclose(
            post.objective[i], ref.fun - 0.0, rtol=1e-8, err_msg="same objective"
        )


def test_forecast_intervals_cover_about_ninety_percent_of_later_measurements():
    model = _model()
    table, _, y, _ = _patients(150, seed=2)
    ds = dataset_from_frame(table, compartments=model.compartment_map())
    fc, individual, post = forecast(model, ds, until_h=8.0, n_draws=400, seed=3)
    later = (ds.table["EVID"] == 0).to_numpy() & (ds.table["TIME"] > 8.0).to_numpy()
    obs = ds.table["DV"].to_numpy()[later]
    inside = (obs >= fc["PI_LO"].to_numpy()[later]) & (obs <= fc["PI_HI"].to_numpy()[later])
    # 600 forecasts: the standard error of a 90 % coverage is 1.2 percentage points; the
    # Laplace approximation of the posterior is allowed a little on top
    assert 0.85 <= inside.mean() <= 0.95, inside.mean()
    assert set(individual.columns) >= {"ID", "cl_L_per_h", "eta_cl_L_per_h", "converged"}
    assert (post.n_observations == 6).all()


def test_recommended_dose_puts_the_true_trough_in_range():
    model = _model()
    # a rich profile: the twin knows the patient well
    table, eta, _, _ = _patients(1, seed=4, times=np.linspace(0.5, 48, 30))
    ds = dataset_from_frame(table, compartments=model.compartment_map())
    target = parse_target("trough_mg_per_L=1.5..2.5")
    r = recommend_dose(model, ds, 0, "X mg PO q12h x14", target, seed=5, n_draws=100)
    assert r["probability"] > 0.5
    cl, v, ka = np.array(list(TYPICAL.values())) * np.exp(eta[0])
    # the patient's true trough: superposition of 14 doses from t = 48 h, 12 h apart, just
    # before the 15th would be due
    t_end = 14 * 12.0
    trough = sum(_bateman(t_end - 12.0 * j, cl, v, ka, r["dose_mg"]) for j in range(14))
    trough += _bateman(48.0 + t_end, cl, v, ka)  # what is left of the first dose
    assert 1.5 <= trough <= 2.5, (r["dose_mg"], trough)


def test_cli_twin_writes_forecast_individual_and_dose(tmp_path, capsys):
    model_path = tmp_path / "model.yaml"
    from insilico.model import dump_model

    dump_model(_model(), model_path)
    table, _, _, _ = _patients(2, seed=6)
    data = tmp_path / "patients.csv"
    table.to_csv(data, index=False, na_rep=".")
    out = tmp_path / "twin"
    code = main(
        [
            "twin",
            str(model_path),
            "--data",
            str(data),
            "--out",
            str(out),
            "--until",
            "12",
            "--target",
            "trough_mg_per_L=1..2",
            "--regimen",
            "X mg PO q12h x7",
            "--draws",
            "100",
        ]
    )
    assert code == 0
    fc = pd.read_csv(out / "forecast.csv")
    assert len(fc) == len(table)
    assert {"PRED", "IPRED", "PI_LO", "PI_HI"} <= set(fc.columns)
    doses = pd.read_csv(out / "dose.csv")
    assert len(doses) == 2 and (doses["dose_mg"] > 0).all()
    assert "P(trough_mg_per_L in 1..2)" in capsys.readouterr().out


def test_data_without_observations_is_refused(tmp_path, capsys):
    from insilico.model import dump_model

    model_path = tmp_path / "model.yaml"
    dump_model(_model(), model_path)
    table, _, _, _ = _patients(1, seed=7)
    table["DV"] = np.nan
    data = tmp_path / "patients.csv"
    table.to_csv(data, index=False, na_rep=".")
    code = main(["twin", str(model_path), "--data", str(data), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "observations" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_model_without_variability_cannot_be_updated():
    model = _model().model_copy(update={"iiv": None})
    table, _, _, _ = _patients(1, seed=8)
    ds = dataset_from_frame(table, compartments=model.compartment_map())
    with pytest.raises(SpecError, match="iiv"):
        map_estimates(model, ds.table)


ACOP = DATA / "estimation_acop2016_oral_1cpt.csv"


def acop_oral_model(factor: float, omega2: float, sigma: float):
    """The ACOP 2016 oral one-compartment model (true CL 4 L/h, V 70 L, KA 1 /h), its typical
    values times ``factor``, IIV ``omega2`` on each and a proportional error ``sigma``."""
    return model_from_dict(
        {
            "name": "acop_oral_1cpt",
            "pk": {"compartments": 1, "absorption": "first_order", "elimination": "linear"},
            "parameters": {"cl_L_per_h": 4.0 * factor, "v1_L": 70.0 * factor, "ka_per_h": factor},
            "iiv": {"cl_L_per_h": omega2, "v1_L": omega2, "ka_per_h": omega2},
            "residual_error": {"proportional": sigma},
            "data": {
                "amt_unit": "ug",
                "dv_unit": "ug/L",
                "compartments": {1: "depot", 2: "central"},
            },
        }
    )


@pytest.mark.skipif(not ACOP.is_file(), reason=f"{ACOP} not present")
def test_ebes_recover_the_true_clearances_of_a_rich_study():
    # ACOP 2016 oral one-compartment set, with its true population model as the prior
    model = acop_oral_model(1.0, omega2=0.09, sigma=0.2)
    ds = read_dataset(ACOP, compartments=model.compartment_map())
    post = map_estimates(model, ds.table)
    assert post.converged.all()
    true_cl = ds.table.groupby("SUBJECT")["CL"].first().to_numpy()
    ebe_cl = 4.0 * np.exp(post.eta[:, 0])
    r = np.corrcoef(np.log(ebe_cl), np.log(true_cl))[0, 1]
    assert r >= 0.95, r
