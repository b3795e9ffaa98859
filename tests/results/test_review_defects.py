"""What a trial run reports, checked as a pharmacologist reads it: the ICH E14 categorical QT
endpoints, the best-dose confidence set (Bonferroni-adjusted comparisons with the best),
replicate trials said to be pooled, units of change endpoints, and AUC 0-inf of single doses."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
from scipy import special

from insilico.endpoints.dose_selection import best_dose
from insilico.endpoints.safety import qt_outcomes
from insilico.endpoints.stats import newcombe_difference_interval
from insilico.engine.run import run_trial
from insilico.results import access as run_access
from insilico.results import summary as results_summary
from insilico.results.summary import format_summary
from insilico.trial.examples import ATENOLOL, PROPRANOLOL, small_trial
from insilico.trial.spec import trial_spec_from_dict
from insilico.ui import runs as ui_runs

E14_EVENTS = ("qt_qtc_gt450", "qt_qtc_gt480", "qt_qtc_gt500", "qt_dqtc_gt30", "qt_dqtc_gt60")


def _run(spec: dict):
    return run_trial(trial_spec_from_dict(spec), executor="serial")


# ---------------------------------------------------------------- ICH E14 categorical QT


@pytest.fixture(scope="module")
def qt_run():
    clean = {**ATENOLOL, "herg_ic50_uM": 1.0e4}
    spec = small_trial(n_patients=3000, compounds=[clean])
    spec["regimens"] = [{"name": "std", "text": "100 mg PO q12h x4"}]
    spec["safety"] = {"qt": True}
    return _run(spec)


def test_qt_outcomes_are_the_five_e14_categorical_endpoints():
    from insilico.endpoints import safety

    assert safety.QT_CATEGORICAL_EVENTS == E14_EVENTS
    out = qt_outcomes([0.0, 0.0], np.nan, ["F", "M"], [0.0, 0.0], [1.5, -1.5])
    assert "qt_ddqtc_gt10" not in out
    for ev in E14_EVENTS:
        assert out[ev].dtype == bool


def test_placebo_e14_categorical_rates_are_low(qt_run):
    s = qt_run.summary.set_index("arm")
    pbo = s.loc["placebo"]
    for ev in E14_EVENTS:
        col = f"ae_{ev}"
        assert pbo[f"{col}_n"] == 3000
        assert pbo[f"{col}_ci_low"] <= pbo[f"{col}_rate"] <= pbo[f"{col}_ci_high"]
    # with the defaults per placebo patient: QTc > 500 ms ~1e-5, ΔQTc > 60 ms ~3e-9
    assert pbo["ae_qt_qtc_gt500_rate"] < 0.002
    assert pbo["ae_qt_dqtc_gt60_rate"] < 0.002
    assert pbo["ae_qt_qtc_gt480_rate"] < 0.005
    assert pbo["ae_qt_dqtc_gt30_rate"] < 0.01
    # QTc > 450 ms: the upper tail of baseline QTcF (about 2 %), far below the 17 % of the
    # per-patient ddQTc > 10 ms that is assessment noise
    assert pbo["ae_qt_qtc_gt450_rate"] < 0.05


def test_ddqtc_gt10_is_not_an_adverse_event(qt_run):
    patients, summary = qt_run.patients, qt_run.summary
    assert not [c for c in patients.columns if "ddqtc_gt" in c]
    assert not [c for c in summary.columns if "ddqtc_gt" in c]
    text = format_summary(summary)
    assert "ddqtc_gt10" not in text and "> 10" not in text
    for label in ("QTc>450ms", "QTc>480ms", "QTc>500ms", "dQTc>30ms", "dQTc>60ms"):
        assert f"{label} (95% CI)" in text
    # the E14 analysis of the mean ddQTc is kept
    for col in ("ddqtc_ms_mean", "ddqtc_ms_upper90", "ddqtc_positive"):
        assert col in summary
    labels = [m.label for m in ui_runs.summary_metrics(summary)]
    assert "QT: QTc > 450 ms" in labels and "QT: ΔQTc > 30 ms" in labels
    assert not [x for x in labels if "ΔΔQTc >" in x]


def test_serious_qt_events_accept_the_e14_names():
    spec = small_trial(n_patients=10)
    spec["safety"] = {"qt": True, "serious": ["qt_qtc_gt480", "qt_dqtc_gt30"]}
    trial_spec_from_dict(spec)
    spec["safety"] = {"qt": True, "serious": ["qt_ddqtc_gt10"]}
    with pytest.raises(ValueError, match="serious"):
        trial_spec_from_dict(spec)


# ---------------------------------------------------------------- best dose: Bonferroni


def test_best_dose_set_uses_bonferroni_adjusted_comparisons_with_the_best():
    """Four doses: 60/100 is best; 46/100 is significantly worse one-sided at 0.05 but not at
    the Bonferroni level 0.05 / 3, so it stays in the set; 40/100 is worse at both."""
    doses = [10.0, 30.0, 100.0, 300.0]
    k = np.array([40.0, 46.0, 60.0, 55.0])
    n = np.full(4, 100.0)
    res = best_dose(doses, k, n)
    assert res["method"] == "multiple_comparisons_with_best"
    assert res["alpha_per_comparison"] == pytest.approx(0.05 / 3, rel=1e-15)
    z_bonf = special.ndtri(1 - 0.05 / 3)
    z_one = special.ndtri(1 - 0.05)
    low_bonf, _ = newcombe_difference_interval(60.0, 100.0, 46.0, 100.0, z_bonf)
    low_one, _ = newcombe_difference_interval(60.0, 100.0, 46.0, 100.0, z_one)
    assert low_one > 0 > low_bonf  # the constructed case separates the two levels
    low_worst, _ = newcombe_difference_interval(60.0, 100.0, 40.0, 100.0, z_bonf)
    assert low_worst > 0
    assert res["best_dose"] == 100.0
    np.testing.assert_array_equal(res["dose_set"], [False, True, True, True])
    # with two doses there is one comparison: the level is alpha itself
    assert best_dose([1.0, 2.0], [5, 6], [10, 10])["alpha_per_comparison"] == pytest.approx(0.05)
    # the documentation says what is computed
    assert "Bonferroni" in best_dose.__doc__ and "alpha / (n_doses - 1)" in best_dose.__doc__


def test_best_dose_text_names_the_bonferroni_method():
    s = pd.DataFrame(
        {
            "arm": ["a:1", "a:2"],
            "compound_id": ["a", "a"],
            "best_dose_mg": [100.0, 100.0],
            "best_dose_set_mg": ["100,300", "100,300"],
        }
    )
    assert "Bonferroni-adjusted comparisons with the best" in format_summary(s)
    assert "Bonferroni-adjusted comparisons with the best" in ui_runs.best_doses(s)["a"]


# ---------------------------------------------------------------- replicates pooled


@pytest.fixture(scope="module")
def replicated():
    spec = small_trial(n_patients=60, compounds=[ATENOLOL])
    spec["replicates"] = {"n_trials": 4}
    spec["success"] = {"endpoint": "responder", "alpha": 0.025}
    return _run(spec)


def test_replicated_summary_says_it_is_pooled(replicated):
    s = replicated.summary
    assert (s["n_trials"] == 4).all() and (s["n_patients_per_trial"] == 60).all()
    assert (s["n"] == 240).all()  # paired: every patient of the 4 trials in every arm
    text = format_summary(s)
    first = text.splitlines()[0]
    assert first.startswith("Pooled over 4 replicate trials of 60 patients each")
    # where the per-replicate results are
    assert "primary_rate_trial_low/_high" in first and "patients.parquet" in first
    assert "power" in first
    assert "primary, one trial (95% range)" in text
    assert "pooled over the replicate trials" in text or "best dose" not in text
    assert ui_runs.replicate_note(s) == results_summary.replicate_note(s)


def test_report_of_a_replicated_run_says_it_is_pooled(tmp_path):
    from insilico.engine.run import run_and_write
    from insilico.ui.report import report_html

    spec = small_trial(n_patients=30, compounds=[ATENOLOL])
    spec["replicates"] = {"n_trials": 2}
    _, path = run_and_write(root=tmp_path, spec=trial_spec_from_dict(spec), executor="serial")
    run = run_access.load_run(path.name, tmp_path)
    page = report_html(run)
    assert "Pooled over 2 replicate trials of 30 patients each" in page
    # the note survives summary.parquet
    assert ui_runs.replicate_note(run.summary).startswith("Pooled over 2 replicate trials")


def test_single_trial_summary_has_no_pooling_note():
    s = _run(small_trial(n_patients=40, compounds=[ATENOLOL])).summary
    assert (s["n_trials"] == 1).all()
    assert results_summary.replicate_note(s) is None
    assert not format_summary(s).startswith("Pooled")


# ---------------------------------------------------------------- units of change endpoints


def test_change_endpoints_print_their_unit():
    spec = small_trial(n_patients=40, compounds=[ATENOLOL])
    spec["biomarker"]["unit"] = "bpm"
    spec["endpoints"] = [
        {"name": "hr_change", "kind": "change", "time_h": 24.0},
        {"name": "hr_drop", "kind": "change", "time_h": 24.0, "scale": "absolute"},
    ]
    s = _run(spec).summary
    assert (s["hr_change_unit"] == "% of baseline").all()
    assert (s["hr_drop_unit"] == "bpm").all()
    text = format_summary(s)
    assert "hr_change % of baseline mean (95% CI)" in text
    assert "hr_drop bpm mean (95% CI)" in text
    card = ui_runs.scorecard(s)
    assert "hr_change, % of baseline (95 % CI)" in card.columns
    assert "hr_drop, bpm (95 % CI)" in card.columns


def test_primary_time_change_prints_percent_of_baseline():
    s = _run(small_trial(n_patients=40, compounds=[ATENOLOL])).summary
    assert "biomarker change % of baseline mean (95% CI)" in format_summary(s)
    card = ui_runs.scorecard(s)
    assert "Biomarker change, mean, % of baseline (95 % CI)" in card.columns


# ---------------------------------------------------------------- AUC 0-inf of a single dose

#: Measured PK: CL 10 L/h, F 0.5, no renal excretion (CL scales with weight only).
DRUG = {
    "id": "drug",
    "smiles": "CC(C)NCC(O)COc1ccc(CC(N)=O)cc1",
    "cl_L_per_h": 10.0,
    "v_L": 50.0,
    "fu": 0.5,
    "f_bio": 0.5,
    "fe": 0.0,
    "ka_per_h": 1.5,
    "potency_nM": 500,
}


def _single_dose_spec(n: int, cohort=None) -> dict:
    spec = small_trial(n_patients=n, compounds=[DRUG], duration_h=48.0, cohort=cohort)
    spec["regimens"] = [
        {"name": "single", "text": "100 mg PO once"},
        {"name": "repeat", "text": "100 mg PO q12h x4"},
    ]
    spec["iiv"] = {"cv": {}}
    return spec


def test_single_dose_reports_auc_0_inf_of_the_typical_patient():
    """100 mg PO once, F 0.5, CL 10 L/h, IIV off, 70 kg: AUC 0-inf = 5 mg·h/L."""
    cohort = {
        "kind": "cohort",
        "schema_version": 1,
        "name": "seventy_kg",
        "criteria": [{"field": "weight_kg", "op": "between", "value": [69.95, 70.05]}],
        "max_oversampling": 10000.0,
    }
    res = _run(_single_dose_spec(20, cohort))
    p = res.patients.set_index("arm")
    single = p.loc["drug:single"]
    np.testing.assert_allclose(single["cl_L_per_h"], 10.0, rtol=1e-3)
    np.testing.assert_allclose(single["auc_inf_mg_h_per_L"], 5.0, rtol=1e-3)
    # per patient: F · dose / CL exactly
    np.testing.assert_allclose(
        single["auc_inf_mg_h_per_L"], 0.5 * 100.0 / single["cl_L_per_h"], rtol=1e-12
    )
    # no dosing interval for a single dose; AUC 0-inf only for single doses
    assert single["auc_last_mg_h_per_L"].isna().all()
    assert single["cavg_last_mg_per_L"].isna().all()
    assert p.loc["drug:repeat", "auc_inf_mg_h_per_L"].isna().all()
    assert p.loc["drug:repeat", "auc_last_mg_h_per_L"].notna().all()
    s = res.summary.set_index("arm")
    assert s.loc["drug:single", "auc_inf_p50"] == pytest.approx(5.0, rel=1e-3)
    assert np.isnan(s.loc["drug:single", "auc_last_p50"])
    assert np.isnan(s.loc["drug:repeat", "auc_inf_p50"])
    text = format_summary(res.summary)
    assert "AUC0-inf p50 mg*h/L" in text and "AUCtau p50 mg*h/L" in text
    # columns: rank, arm, n, Cmax, AUCtau ("-": no dosing interval), AUC0-inf
    cells = next(x for x in text.splitlines() if "drug:single" in x).split()
    assert cells[4] == "-" and float(cells[5]) == pytest.approx(5.0, rel=1e-3)
    assert "AUC 0–inf, single dose p50 (mg·h/L)" in " ".join(
        ui_runs.exposure_table(res.summary).columns
    )


def test_single_dose_on_a_model_file_is_f_dose_over_cl():
    """Two compartments with transit absorption and linear elimination: AUC 0-inf is still
    F · dose / CL per twin, although the trial ends before the drug is gone."""
    drug = {**copy.deepcopy(PROPRANOLOL), "fe": 0.0}
    spec = small_trial(n_patients=30, compounds=[drug], duration_h=24.0, placebo=False)
    spec["regimens"] = [{"name": "r", "text": "80 mg PO once"}]
    spec["iiv"] = {"cv": {}}
    spec["output"] = {"interval_h": 1.0}
    spec["model"] = {
        "kind": "model",
        "schema_version": 1,
        "name": "two_cpt_transit",
        "pk": {"compartments": 2, "absorption": "transit", "elimination": "linear"},
        "parameters": {
            "cl_L_per_h": 1.0,
            "v1_L": 1.0,
            "q2_L_per_h": 2.0,
            "v2_L": 3.0,
            "ka_per_h": 1.0,
            "mtt_h": 1.0,
            "n_transit": 2,
        },
        "iiv": {"cl_L_per_h": 0.09},
    }
    p = _run(spec).patients
    expected = p["f_bio"] * 80.0 / p["cl_L_per_h"]
    assert p["cl_L_per_h"].std() > 0
    np.testing.assert_allclose(p["auc_inf_mg_h_per_L"], expected, rtol=1e-12)
    assert (p["auc_total_mg_h_per_L"] < 0.99 * expected).all()  # the trial ends before


def test_single_dose_with_saturable_elimination_extrapolates_the_tail():
    """Michaelis-Menten elimination: AUC 0-inf of a 24 h trial (AUC to the end plus the
    log-linear tail) is within 3 % of the AUC of a trial long enough to see it all."""
    drug = {**copy.deepcopy(PROPRANOLOL), "fe": 0.0}

    def patients(duration_h: float) -> pd.DataFrame:
        spec = small_trial(n_patients=3, compounds=[drug], duration_h=duration_h, placebo=False)
        for key in ("biomarker", "responder", "adverse_events"):
            spec.pop(key)
        spec["regimens"] = [{"name": "r", "text": "100 mg IV once"}]
        spec["iiv"] = {"cv": {}}
        spec["output"] = {"interval_h": 0.5}
        spec["model"] = {
            "kind": "model",
            "schema_version": 1,
            "name": "one_cpt_mm",
            "pk": {"compartments": 1, "absorption": "none", "elimination": "michaelis_menten"},
            "parameters": {"vmax_mg_per_h": 10.0, "km_mg_per_L": 0.5, "v1_L": 50.0},
        }
        return _run(spec).patients

    short, long = patients(24.0), patients(400.0)
    whole = long["auc_total_mg_h_per_L"].to_numpy()
    assert (short["auc_total_mg_h_per_L"] < 0.9 * whole).all()  # a tail is missing at 24 h
    np.testing.assert_allclose(short["auc_inf_mg_h_per_L"], whole, rtol=0.03)
