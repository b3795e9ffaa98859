"""Efficacy and safety through the whole pipeline: QT known answers, placebo analytic rate,
paired vs parallel, replicate power vs analytic power, dropout and missed doses, titration,
dose scan, compound uncertainty, determinism of the random parts."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from insilico.cli import main
from insilico.endpoints.efficacy import placebo_responder_rate
from insilico.endpoints.stats import two_proportion_power
from insilico.engine.run import run_trial
from insilico.trial.examples import ATENOLOL, small_trial
from insilico.trial.spec import trial_spec_from_dict

#: A fast-eliminating drug with measured PK (no structure model), for exact exposure checks.
FAST = {
    "id": "fast",
    "smiles": "CC(C)NCC(O)COc1ccc(CC(N)=O)cc1",
    "cl_L_per_h": 20.0,
    "v_L": 40.0,
    "fu": 0.5,
    "f_bio": 0.5,
    "fe": 0.0,
    "ka_per_h": 2.0,
    "potency_nM": 500,
}


def _run(spec: dict, **kw):
    return run_trial(trial_spec_from_dict(spec), **kw)


def _rate(summary: pd.DataFrame, arm: str, col: str) -> tuple[float, int]:
    r = summary.set_index("arm").loc[arm]
    return float(r[f"{col}_rate"]), int(r[f"{col}_n"])


def test_qt_events_follow_the_herg_margin():
    """IC50 far below the unbound Cmax: QT events in most patients; margin > 1000: none beyond
    what placebo shows (the QTc > 450 ms rate there comes from the baseline spread)."""
    potent = {**ATENOLOL, "id": "blocker", "herg_ic50_uM": 0.01}
    clean = {**ATENOLOL, "id": "clean", "herg_ic50_uM": 1.0e4}
    spec = small_trial(n_patients=2000, compounds=[potent, clean])
    spec["regimens"] = [{"name": "std", "text": "100 mg PO q12h x4"}]
    spec["safety"] = {"qt": True}
    res = _run(spec)
    s = res.summary.set_index("arm")
    assert s.loc["blocker:std", "herg_margin_p95"] < 0.1
    assert s.loc["blocker:std", "ae_qt_dqtc_gt30_rate"] > 0.9
    assert s.loc["blocker:std", "ae_qt_dqtc_gt60_rate"] > 0.5
    assert bool(s.loc["blocker:std", "ddqtc_positive"])
    assert s.loc["clean:std", "herg_margin_p5"] > 1000
    for ev in ("ae_qt_dqtc_gt60", "ae_qt_qtc_gt500"):
        assert s.loc["clean:std", f"{ev}_rate"] <= 0.002
    p_clean, n = _rate(res.summary, "clean:std", "ae_qt_qtc_gt450")
    p_pbo, _ = _rate(res.summary, "placebo", "ae_qt_qtc_gt450")
    se = math.sqrt(2 * p_pbo * (1 - p_pbo) / n)
    assert abs(p_clean - p_pbo) < 4 * se
    assert not bool(s.loc["clean:std", "ddqtc_positive"])


def test_placebo_responder_rate_matches_its_analytic_rate():
    """Placebo drift + per-patient SD + assessment error: change ~ normal, rate = Phi(...)."""
    spec = small_trial(n_patients=6000, compounds=[FAST], duration_h=168.0)
    spec["regimens"] = [{"name": "std", "text": "10 mg PO qd x7"}]
    spec["output"] = {"interval_h": 24.0}
    spec["biomarker"]["placebo"] = {"magnitude_pct": -10.0, "half_life_h": 48.0, "sd_pct": 5.0}
    spec["biomarker"]["residual_sd_pct"] = 4.0
    spec["responder"] = {"time_h": 168.0, "change_pct": -12.0}
    res = _run(spec)
    p, n = _rate(res.summary, "placebo", "responder")
    expected = placebo_responder_rate(-10.0, 48.0, 5.0, 4.0, 168.0, -12.0)
    assert 0.2 < expected < 0.6
    assert abs(p - expected) < 4 * math.sqrt(expected * (1 - expected) / n)


def _two_arm(design: dict, n: int, seed: int = 11, **extra) -> dict:
    spec = small_trial(n_patients=n, seed=seed, compounds=[ATENOLOL], duration_h=24.0)
    spec["regimens"] = [{"name": "std", "text": "6 mg PO once"}]
    spec["output"] = {"interval_h": 4.0}
    spec["responder"] = {"time_h": 4.0, "change_pct": -20.0}
    spec["biomarker"]["placebo"] = {"magnitude_pct": -10.0, "half_life_h": 1.0, "sd_pct": 8.0}
    spec["biomarker"]["residual_sd_pct"] = 5.0
    spec["adverse_events"] = []
    spec["design"] = design
    spec.update(extra)
    return spec


def test_paired_and_parallel_designs_agree_on_the_difference():
    paired = _run(_two_arm({"type": "paired"}, 3000)).summary.set_index("arm")
    parallel = _run(_two_arm({"type": "parallel"}, 6000, seed=12)).summary.set_index("arm")
    col = "responder_vs_placebo_diff"
    d1, d2 = paired.loc["atenolol:std", col], parallel.loc["atenolol:std", col]
    se = [
        (s.loc["atenolol:std", f"{col}_ci_high"] - s.loc["atenolol:std", f"{col}_ci_low"]) / 3.92
        for s in (paired, parallel)
    ]
    assert 0.1 < d1 < 0.3
    assert abs(d1 - d2) < 4 * math.hypot(*se)
    # a paired interval is narrower than a parallel one with the same patients per arm
    assert se[0] < se[1]


def test_replicate_power_matches_the_analytic_two_proportion_power():
    """2,000 parallel trials of 100 patients (about 50 per arm): power of the one-sided
    pooled z-test vs its normal-approximation formula at the pooled rates, within 3 points."""
    spec = _two_arm(
        {"type": "parallel"},
        100,
        seed=5,
        replicates={"n_trials": 2000},
        success={"endpoint": "responder", "alpha": 0.025},
    )
    res = _run(spec)
    s = res.summary.set_index("arm")
    p1, n1 = _rate(res.summary, "atenolol:std", "responder")
    p0, n0 = _rate(res.summary, "placebo", "responder")
    analytic = float(two_proportion_power(p1, p0, n1 / 2000, n0 / 2000, 0.025, "greater"))
    power = float(s.loc["atenolol:std", "power"])
    assert 0.4 < analytic < 0.8
    assert abs(power - analytic) < 0.03, (power, analytic)


def _exposure_spec(n: int, design: dict) -> dict:
    spec = small_trial(n_patients=n, compounds=[FAST], duration_h=336.0, placebo=False)
    spec["regimens"] = [{"name": "std", "text": "100 mg PO q24h x10"}]
    spec["output"] = {"interval_h": 24.0}
    spec["design"] = design
    return spec


def test_missed_doses_and_dropout_scale_exposure_exactly():
    """Linear one-compartment drug, washed out by the end: AUC_total = F x (doses taken) x
    100 mg / CL for every patient, and the mean number of doses taken is 10 (1 - p) with
    missed doses and sum_k exp(-lambda t_k) with dropout."""
    full = _run(_exposure_spec(1500, {"type": "paired"})).patients
    p_miss, hazard = 0.2, 0.05
    missed = _run(_exposure_spec(1500, {"adherence": {"p_miss_dose": p_miss}})).patients
    dropped = _run(_exposure_spec(1500, {"dropout": {"hazard_per_day": hazard}})).patients
    t_k = np.arange(10) * 24.0
    for rows, expected in (
        (full, 10.0),
        (missed, 10 * (1 - p_miss)),
        (dropped, float(np.exp(-hazard * t_k / 24.0).sum())),
    ):
        taken = rows["auc_total_mg_h_per_L"] * rows["cl_L_per_h"] / (rows["f_bio"] * 100.0)
        np.testing.assert_allclose(taken, 10 - rows["doses_missed"], rtol=1e-6, atol=1e-6)
        se = taken.std(ddof=1) / math.sqrt(len(taken))
        assert abs(taken.mean() - expected) < max(4 * se, 1e-9)
    assert (missed["auc_total_mg_h_per_L"] <= full["auc_total_mg_h_per_L"] + 1e-12).all()
    assert (dropped["auc_total_mg_h_per_L"] <= full["auc_total_mg_h_per_L"] + 1e-12).all()


def test_titration_steps_up_only_below_target():
    spec = _exposure_spec(300, {})
    spec["regimens"] = [{"name": "std", "text": "50 mg PO q12h x20"}]
    spec["duration_h"] = 240.0
    spec["output"] = {"interval_h": 12.0}
    spec["responder"] = {"time_h": 240.0, "change_pct": -15}
    spec["adverse_events"] = []  # an adverse event so far stops titration (tested below)
    base = _run(spec).patients
    spec["design"] = {
        "titration": {
            "visits_h": [48.0, 96.0],
            "factor": 2.0,
            "max_steps": 2,
            "target_change_pct": -99.0,
        }
    }
    up = _run(spec).patients
    assert (up["titration_steps"] == 2).all()
    # short half-life: the last interval sees only 4x doses, so AUC_tau is 4x (linear PK)
    np.testing.assert_allclose(
        up["auc_last_mg_h_per_L"], 4 * base["auc_last_mg_h_per_L"], rtol=1e-6
    )
    # a Cmax-driven adverse event that every twin has by the first visit blocks titration
    spec["adverse_events"] = [
        {"name": "certain", "driver": "cmax_mg_per_L", "intercept": 40.0, "slope": 0.0}
    ]
    blocked = _run(spec).patients
    assert (blocked["titration_steps"] == 0).all()
    spec["adverse_events"] = []
    spec["design"]["titration"]["target_change_pct"] = -0.001
    none = _run(spec).patients
    assert (none["titration_steps"] == 0).all()
    np.testing.assert_array_equal(none["auc_last_mg_h_per_L"], base["auc_last_mg_h_per_L"])


def test_dose_scan_from_the_cli(tmp_path, capsys):
    import yaml

    spec = small_trial(n_patients=200, compounds=[ATENOLOL])
    wf = tmp_path / "scan.yaml"
    wf.write_text(yaml.safe_dump(spec))
    out = tmp_path / "runs"
    assert (
        main(
            [
                "run",
                str(wf),
                "--out",
                str(out),
                "--serial",
                "--no-progress",
                "--dose-scan",
                "10,30,100,300",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "best dose atenolol" in text
    from insilico.results.rundir import list_runs, read_run

    run = read_run(list_runs(out)["run_id"].iloc[0], out)
    s = run.summary
    drug = s[s["compound_id"] == "atenolol"]
    assert sorted(drug["dose_mg"]) == [10, 30, 100, 300]
    assert drug["regimen"].tolist()[0] == "10 mg PO q12h x4"
    # response grows with dose; the best dose is one of the scanned doses
    rates = drug.sort_values("dose_mg")["responder_rate"].to_numpy()
    assert np.all(np.diff(rates) >= -0.02)
    assert drug["best_dose_mg"].iloc[0] in (10, 30, 100, 300)
    assert main(["run", str(wf), "--out", str(out), "--serial", "--dose-scan", "10,abc"]) == 2
    assert "--dose-scan" in capsys.readouterr().err


def test_compound_uncertainty_splits_the_between_trial_variance():
    """A compound whose PK is predicted (uncertain) vs one with measured PK: with compound
    draws, most of the between-trial spread of the predicted one comes from the compound."""
    predicted = {"id": "pred", "smiles": "CC(C)NCC(O)COc1ccc(OCC2CC2)cc1F", "potency_nM": 30}
    spec = small_trial(n_patients=100, compounds=[predicted, {**ATENOLOL}], duration_h=24.0)
    spec["regimens"] = [{"name": "std", "text": "50 mg PO once"}]
    spec["output"] = {"interval_h": 4.0}
    spec["responder"] = {"time_h": 4.0, "change_pct": -15}
    spec["replicates"] = {"n_trials": 40}
    spec["uncertainty"] = {"compound_draws": 10}
    spec["success"] = {"endpoint": "responder"}
    res = _run(spec)
    s = res.summary.set_index("arm")
    assert s.loc["pred:std", "primary_var_compound_frac"] > 0.5
    assert s.loc["atenolol:std", "primary_var_compound_frac"] < 0.3
    assert 0 <= s.loc["pred:std", "power"] <= 1
    ctx = res.context
    arm = next(a for a in ctx.arms if a.compound_id == "pred")
    assert arm.log_multipliers and len(arm.log_multipliers["cl_L_per_h"]) == 10
    assert not next(a for a in ctx.arms if a.compound_id == "atenolol").log_multipliers


@pytest.mark.parametrize("chunk", [1024, 3072])
def test_new_random_parts_do_not_depend_on_chunking(chunk):
    spec = _exposure_spec(
        2500, {"adherence": {"p_miss_dose": 0.1}, "dropout": {"hazard_per_day": 0.02}}
    )
    spec["biomarker"]["placebo"] = {"magnitude_pct": -5.0, "half_life_h": 48.0, "sd_pct": 3.0}
    spec["biomarker"]["residual_sd_pct"] = 3.0
    spec["biomarker"]["baseline"] = {"mean": 150.0, "sd": 10.0, "low": 120.0}
    spec["responder"] = {"time_h": 240.0, "change_pct": -10}
    spec["safety"] = {"qt": True}
    a = _run(spec, chunk_size=chunk).patients
    b = _run(spec, chunk_size=2048).patients
    pd.testing.assert_frame_equal(a, b)


def test_wilson_intervals_cover_a_known_placebo_rate_in_2000_trials():
    """2,000 simulated trials through the pipeline: the per-trial 95 % Wilson interval of the
    placebo responder rate covers its analytic value in 93-97 % of them."""
    from insilico.endpoints.stats import wilson_interval

    spec = _two_arm(
        {"type": "parallel", "ratios": {"placebo": 9.0, "atenolol:std": 1.0}},
        100,
        seed=21,
        replicates={"n_trials": 2000},
    )
    pts = _run(spec).patients
    pbo = pts[pts["arm"] == "placebo"]
    k = np.bincount(pbo["trial"], weights=pbo["responder"].astype(float), minlength=2000)
    n = np.bincount(pbo["trial"], minlength=2000)
    p = placebo_responder_rate(-10.0, 1.0, 8.0, 5.0, 4.0, -20.0)
    lo, hi = wilson_interval(k, n)
    coverage = float(np.mean((lo <= p) & (p <= hi)))
    assert 0.93 <= coverage <= 0.97, coverage
    assert abs(k.sum() / n.sum() - p) < 4 * math.sqrt(p * (1 - p) / n.sum())
