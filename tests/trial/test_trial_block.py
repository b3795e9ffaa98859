"""Per-patient endpoints against closed forms (one-compartment oral PK at steady state)."""

from __future__ import annotations

import numpy as np
import pytest

from insilico.engine.run import run_trial
from insilico.trial.examples import ATENOLOL, small_trial
from insilico.trial.spec import trial_spec_from_dict

DOSE_MG, TAU_H, N_DOSES = 100.0, 12.0, 14


@pytest.fixture(scope="module")
def result():
    data = small_trial(
        n_patients=2000,
        compounds=[ATENOLOL],
        duration_h=N_DOSES * TAU_H,
        regimens=[{"name": "r", "text": f"{DOSE_MG:g} mg PO q12h x{N_DOSES}"}],
    )
    data["iiv"] = {"cv": {"cl_L_per_h": 0.3, "v1_L": 0.2, "ka_per_h": 0.4}}
    return run_trial(trial_spec_from_dict(data), executor="serial")


def _drug(result):
    p = result.patients
    return p[p["arm"] == "atenolol:r"]


def _at_steady_state(p) -> np.ndarray:
    """Patients whose last interval is within exp(-10) = 5e-5 of steady state (the distance
    after n doses is about exp(-k (n-1) tau) for a slower elimination than absorption)."""
    k = p["cl_L_per_h"] / p["v1_L"]
    return (
        (k * (N_DOSES - 1) * TAU_H > 10)
        & (p["ka_per_h"] * (N_DOSES - 1) * TAU_H > 10)
        & (p["ka_per_h"] > k)
    ).to_numpy()


def test_auc_tau_at_steady_state_is_f_dose_over_cl(result):
    p = _drug(result)
    ok = _at_steady_state(p)
    assert ok.mean() > 0.8  # the others are slow eliminators (low eGFR, atenolol fe 0.94)
    expected = p["f_bio"] * DOSE_MG / p["cl_L_per_h"]
    np.testing.assert_allclose(p["auc_last_mg_h_per_L"][ok], expected[ok], rtol=2e-4)


def test_steady_state_cmax_and_trough_closed_form(result):
    p = _drug(result)
    k = p["cl_L_per_h"] / p["v1_L"]
    ka = p["ka_per_h"]
    a = p["f_bio"] * DOSE_MG * ka / (p["v1_L"] * (ka - k))

    def c_ss(t):
        return a * (
            np.exp(-k * t) / (1 - np.exp(-k * TAU_H)) - np.exp(-ka * t) / (1 - np.exp(-ka * TAU_H))
        )

    tmax = np.log(ka * (1 - np.exp(-k * TAU_H)) / (k * (1 - np.exp(-ka * TAU_H)))) / (ka - k)
    ok = _at_steady_state(p)
    np.testing.assert_allclose(p["cmax_mg_per_L"][ok], c_ss(tmax)[ok], rtol=2e-4)
    np.testing.assert_allclose(p["trough_mg_per_L"][ok], c_ss(TAU_H)[ok], rtol=2e-4)


def test_biomarker_and_ae_probability_follow_their_models(result):
    p = _drug(result)
    ec50 = 700e-9 * 266.341 * 1000  # potency 700 nM x RDKit MW (g/mol) -> mg/L
    cu = p["fu"] * p["trough_mg_per_L"]
    expected = 100 * (-60.0 / 150.0) * cu / (ec50 + cu)
    np.testing.assert_allclose(p["biomarker_change_pct"], expected, rtol=1e-9, atol=1e-12)
    assert (p["responder"] == (p["biomarker_change_pct"] <= -15)).all()
    x = p["fu"] * p["cmax_mg_per_L"] / ec50
    np.testing.assert_allclose(p["ae_bradycardia_prob"], 1 / (1 + np.exp(4.0 - 0.2 * x)), rtol=1e-6)


def test_placebo_and_ae_incidence(result):
    pl = result.patients[result.patients["arm"] == "placebo"]
    assert (pl["cmax_mg_per_L"] == 0).all() and (pl["biomarker_change_pct"] == 0).all()
    p0 = 1 / (1 + np.exp(4.0))
    np.testing.assert_allclose(pl["ae_bradycardia_prob"], p0)
    rate = pl["ae_bradycardia"].astype(float).mean()
    assert abs(rate - p0) < 4 * np.sqrt(p0 * (1 - p0) / len(pl))
    # the same twin has the same susceptibility draw in every arm: an event under placebo
    # implies an event under drug (higher probability, same uniform)
    drug = _drug(result).set_index("patient_id")
    ev = pl.set_index("patient_id")["ae_bradycardia"]
    assert drug.loc[ev[ev].index, "ae_bradycardia"].all()


def test_summary_matches_patient_rows(result):
    s = result.summary.set_index("arm")
    p = _drug(result)
    assert s.loc["atenolol:r", "responder_events"] == int(p["responder"].sum())
    assert s.loc["atenolol:r", "auc_last_p50"] == pytest.approx(
        np.percentile(p["auc_last_mg_h_per_L"], 50)
    )
