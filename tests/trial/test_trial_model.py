"""Trials on the model layer: a protocol's ``model:`` sets the structure of every twin."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from insilico.engine.run import run_trial
from insilico.errors import SpecError
from insilico.trial.examples import PROPRANOLOL, small_trial
from insilico.trial.spec import trial_spec_from_dict

# propranolol without renal excretion: the built-in twin scales CL by weight only
DRUG = {**copy.deepcopy(PROPRANOLOL), "fe": 0.0}


def _model(**update):
    model = {
        "kind": "model",
        "schema_version": 1,
        "name": "one_cpt_oral",
        "pk": {"compartments": 1, "absorption": "first_order", "elimination": "linear"},
        "parameters": {"cl_L_per_h": 1.0, "v1_L": 1.0, "ka_per_h": 1.0},
        # the built-in twin's allometry, written as the model's covariate effects
        "covariates": {
            "cl_L_per_h": {"weight_kg": {"power": 0.75, "reference": 70}},
            "v1_L": {"weight_kg": {"power": 1.0, "reference": 70}},
        },
    }
    model.update(update)
    return model


def _protocol(model=None, **update):
    data = small_trial(
        n_patients=60,
        compounds=[DRUG],
        duration_h=72.0,
        regimens=[{"name": "r", "text": "80 mg PO q12h x6"}],
        placebo=False,
    )
    data["iiv"] = {"cv": {}}
    data["output"] = {"interval_h": 0.05}
    if model is not None:
        data["model"] = model
    data.update(update)
    return data


@pytest.fixture(scope="module")
def same_structure():
    builtin = run_trial(trial_spec_from_dict(_protocol()), executor="serial").patients
    layered = run_trial(trial_spec_from_dict(_protocol(_model())), executor="serial").patients
    return builtin, layered


def test_model_layer_reproduces_the_builtin_one_compartment_twins(same_structure):
    builtin, layered = same_structure
    assert len(builtin) == len(layered) == 60
    for col in ("cl_L_per_h", "v1_L", "ka_per_h", "f_bio"):
        np.testing.assert_allclose(layered[col], builtin[col], rtol=1e-12, err_msg=col)
    # exposure: both integrate AUC exactly; the built-in kernel finds Cmax between nodes, the
    # model layer reads it at the output times (every 0.05 h here)
    for col in ("auc_total_mg_h_per_L", "auc_last_mg_h_per_L", "cavg_last_mg_per_L"):
        np.testing.assert_allclose(layered[col], builtin[col], rtol=1e-9, err_msg=col)
    np.testing.assert_allclose(layered["cmax_mg_per_L"], builtin["cmax_mg_per_L"], rtol=2e-4)
    np.testing.assert_allclose(layered["trough_mg_per_L"], builtin["trough_mg_per_L"], rtol=1e-9)
    # the biomarker (Emax on the unbound concentration) follows the same concentrations
    np.testing.assert_allclose(
        layered["biomarker_change_pct"], builtin["biomarker_change_pct"], rtol=1e-6, atol=1e-9
    )


def test_three_compartment_transit_twins_conserve_the_dose():
    # a single dose followed for long enough (what remains after 1000 h is ~1e-10 of it) that
    # AUC(0, T) = F dose / CL; the AUC is integrated exactly with the model's states
    model = _model(
        pk={"compartments": 3, "absorption": "transit", "elimination": "linear"},
        parameters={
            "cl_L_per_h": 1.0,
            "v1_L": 1.0,
            "q2_L_per_h": 2.0,
            "v2_L": 2.0,
            "q3_L_per_h": 3.0,
            "v3_L": 1.5,
            "ka_per_h": 1.0,
            "mtt_h": 2.0,
            "n_transit": 3,
        },
        iiv={"cl_L_per_h": 0.09, "mtt_h": 0.1},
    )
    data = _protocol(
        model,
        regimens=[{"name": "r", "text": "80 mg PO once"}],
        duration_h=1000.0,
        output={"interval_h": 1.0},
    )
    data["responder"] = {"time_h": 1000.0, "change_pct": -15}
    p = run_trial(trial_spec_from_dict(data), executor="serial").patients
    expected = p["f_bio"] * 80.0 / p["cl_L_per_h"]
    assert p["cl_L_per_h"].std() > 0  # IIV from the model file
    np.testing.assert_allclose(p["auc_total_mg_h_per_L"], expected, rtol=1e-8)
    # transit absorption delays the peak: the median twin peaks after the mean transit time
    assert p["tmax_h"].median() > 2.0


def test_effect_compartment_feeds_an_indirect_response():
    pd = {
        "kind": "irm1",
        "effect_compartment": True,
        "params": {"kin_per_h": 15.0, "kout_per_h": 0.1, "imax": 0.6, "ke0_per_h": 0.3},
        "c50_from": "potency",
    }
    data = _protocol(_model(), output={"interval_h": 1.0})
    data["biomarker"] = {"name": "hr", "pd": pd}
    p = run_trial(trial_spec_from_dict(data), executor="serial").patients
    change = p["biomarker_change_pct"]
    # inhibition of production lowers the response; never below (1 - Imax) of baseline
    assert (change < -1.0).all()
    assert (change > -60.0 - 1e-9).all()
    with pytest.raises(SpecError, match="effect_compartment"):
        trial_spec_from_dict(_protocol(None) | {"biomarker": {"name": "hr", "pd": pd}})


def test_sampling_times_and_residual_error_on_concentrations():
    times = [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 12.0, 24.0, 48.0, 72.0]
    data = _protocol(_model(residual_error={"proportional": 0.2}), output={"times_h": times})
    result = run_trial(trial_spec_from_dict(data), executor="serial")
    np.testing.assert_array_equal(result.context.output_times_h, times)


def test_iiv_given_twice_is_refused():
    data = _protocol(_model(iiv={"cl_L_per_h": 0.1}))
    data["iiv"] = {"cv": {"cl_L_per_h": 0.3}}
    with pytest.raises(SpecError, match=r"iiv\.cv\.cl_L_per_h"):
        run_trial(trial_spec_from_dict(data), executor="serial")


def test_oral_doses_need_an_absorption():
    model = _model(
        pk={"compartments": 1, "absorption": "none", "elimination": "linear"},
        parameters={"cl_L_per_h": 1.0, "v1_L": 1.0},
    )
    with pytest.raises(SpecError, match="absorption"):
        run_trial(trial_spec_from_dict(_protocol(model)), executor="serial")


THEO_MD = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "data"
    / "clinical_theophylline_multiple_dose_theo_md.csv"
)


@pytest.mark.skipif(not THEO_MD.is_file(), reason=f"{THEO_MD} not present")
def test_a_studys_subjects_get_twins():
    import pandas as pd

    model = _model(covariates={"cl_L_per_h": {"WT": {"power": 0.75, "reference": 70}}})
    data = _protocol(model, n_patients=12, output={"interval_h": 1.0})
    data["cohort"] = {"data": str(THEO_MD)}
    p = run_trial(trial_spec_from_dict(data), executor="serial").patients
    subjects = pd.read_csv(THEO_MD).groupby("ID", sort=False)["WT"].first().to_numpy()
    np.testing.assert_array_equal(p.sort_values("patient_id")["weight_kg"], subjects)
    # the model's covariate effect reads the data column WT; V has no covariate here
    cl = p["cl_L_per_h"].to_numpy()
    np.testing.assert_allclose(cl / cl[0], (p["weight_kg"] / p["weight_kg"].iloc[0]) ** 0.75)
    data["n_patients"] = 13
    with pytest.raises(SpecError, match="12 subjects"):
        run_trial(trial_spec_from_dict(data), executor="serial")


def test_biomarker_change_is_relative_to_the_drug_free_response():
    # an IV bolus at time 0 acts at the first output time already: the baseline is E0
    pd = {"kind": "emax", "params": {"e0": 100.0, "emax": -50.0}, "c50_from": "potency"}
    model = _model(
        pk={"compartments": 1, "absorption": "none", "elimination": "linear"},
        parameters={"cl_L_per_h": 1.0, "v1_L": 1.0},
    )
    data = _protocol(
        model, regimens=[{"name": "r", "text": "100 mg IV once"}], output={"interval_h": 1.0}
    )
    data["biomarker"] = {"name": "hr", "pd": pd}
    data["responder"] = {"time_h": 0.0, "change_pct": -1}
    p = run_trial(trial_spec_from_dict(data), executor="serial").patients
    np.testing.assert_allclose(p["biomarker_baseline"], 100.0)
    assert (p["responder"]).all()  # the bolus lowers the response at once


def test_iv_doses_are_fully_bioavailable_whatever_the_compounds_oral_f():
    # the compound's F (0.26) is that of oral doses; an IV dose of a model without
    # absorption reaches the circulation whole: AUC = dose / CL
    model = _model(
        pk={"compartments": 1, "absorption": "none", "elimination": "linear"},
        parameters={"cl_L_per_h": 1.0, "v1_L": 1.0},
    )
    data = _protocol(
        model,
        regimens=[{"name": "r", "text": "80 mg IV over 1 h once"}],
        duration_h=400.0,
        output={"interval_h": 1.0},
    )
    data["responder"] = {"time_h": 400.0, "change_pct": -15}
    p = run_trial(trial_spec_from_dict(data), executor="serial").patients
    np.testing.assert_allclose(p["auc_total_mg_h_per_L"], 80.0 / p["cl_L_per_h"], rtol=1e-8)
