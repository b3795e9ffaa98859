"""Population estimation (FOCE-I) against known true parameters."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from insilico.cli import main
from insilico.dataset import dataset_from_frame, read_dataset
from insilico.dataset.simulate import simulate_dataset
from insilico.errors import SpecError
from insilico.fit.population import _Objective, diagnostics, fit_focei, focei_ofv
from insilico.model import dump_model, load_model, model_from_dict

from .test_twin import TIMES, _model, acop_oral_model

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
TRUE = {"cl_L_per_h": 2.0, "v1_L": 30.0, "ka_per_h": 1.2}


def _study(n=80, seed=21):
    """n subjects with doses of 50-200 mg and the model's own variability and error."""
    rows = []
    rng = np.random.default_rng(seed)
    for i in range(n):
        dose = float(rng.choice([50.0, 100.0, 200.0]))
        rows.append({"ID": i + 1, "TIME": 0.0, "EVID": 1, "AMT": dose, "CMT": 1, "DV": np.nan})
        for t in TIMES:
            rows.append({"ID": i + 1, "TIME": t, "EVID": 0, "AMT": 0.0, "CMT": 2, "DV": 0.0})
    table = pd.DataFrame(rows)
    model = _model()
    ds = dataset_from_frame(table, compartments=model.compartment_map())
    sim = simulate_dataset(model, ds, replicates=1, seed=seed)
    table["DV"] = np.where(table["EVID"] == 0, sim["DV"].to_numpy(), np.nan)
    return table


def _start():
    m = _model()
    return m.with_parameters(**{k: 1.5 * v for k, v in TRUE.items()})


def test_focei_recovers_the_true_parameters_of_a_simulated_study():
    table = _study()
    start = _start()
    ds = dataset_from_frame(table, compartments=start.compartment_map())
    fit = fit_focei(start, ds)
    assert fit.converged, fit.messages
    est = dict(zip(fit.estimates["parameter"], fit.estimates["estimate"], strict=True))
    se = dict(zip(fit.estimates["parameter"], fit.estimates["se"], strict=True))
    # 80 subjects: typical values within 15 % (about 3 SE), variances within 60 %, SDs 20 %
    for name, value in TRUE.items():
        assert est[name] == pytest.approx(value, rel=0.15), name
        assert abs(est[name] - value) < 4 * se[name], name
    for name, value in {"cl_L_per_h": 0.09, "v1_L": 0.04, "ka_per_h": 0.16}.items():
        assert est[f"omega2_{name}"] == pytest.approx(value, rel=0.6), name
    assert est["sigma_additive"] == pytest.approx(0.05, rel=0.3)
    assert est["sigma_proportional"] == pytest.approx(0.1, rel=0.2)
    # conditional weighted residuals are standard normal under the true model
    cw = diagnostics(fit, ds)["CWRES"].dropna()
    assert abs(cw.mean()) < 0.1 and 0.85 < cw.std() < 1.15


def test_cli_fit_writes_the_fit_directory_and_the_fit_is_a_twin_prior(tmp_path, capsys):
    start = tmp_path / "start.yaml"
    dump_model(_start(), start)
    data = tmp_path / "study.csv"
    _study(40, seed=3).to_csv(data, index=False, na_rep=".")
    out = tmp_path / "fit"
    code = main(
        ["fit", str(start), "--data", str(data), "--out", str(out), "--vpc-replicates", "50"]
    )
    assert code == 0, capsys.readouterr().err
    for name in (
        "estimates.csv",
        "fit.yaml",
        "individual.csv",
        "predictions.csv",
        "summary.json",
        "gof.png",
        "pcvpc.png",
        "pcvpc.csv",
    ):
        assert (out / name).is_file(), name
    est = pd.read_csv(out / "estimates.csv")
    assert list(est.columns) == ["parameter", "estimate", "se", "rse_pct"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "FOCE-I" and summary["converged"] is True
    assert summary["subjects"] == 40 and summary["observations"] == 400
    preds = pd.read_csv(out / "predictions.csv")
    assert {"PRED", "IPRED", "IWRES", "CWRES", "NPDE"} <= set(preds.columns)
    fitted = load_model(out / "fit.yaml")
    assert fitted.parameters["cl_L_per_h"] == pytest.approx(
        float(est.loc[est["parameter"] == "cl_L_per_h", "estimate"].iloc[0])
    )
    code = main(["twin", str(out / "fit.yaml"), "--data", str(data), "--out", str(tmp_path / "t")])
    assert code == 0


def test_fit_without_observations_is_refused(tmp_path, capsys):
    start = tmp_path / "start.yaml"
    dump_model(_start(), start)
    table = _study(5)
    table["DV"] = np.nan
    data = tmp_path / "study.csv"
    table.to_csv(data, index=False, na_rep=".")
    code = main(["fit", str(start), "--data", str(data), "--out", str(tmp_path / "fit")])
    assert code == 2 and "observations" in capsys.readouterr().err
    assert not (tmp_path / "fit").exists()


ACOP = DATA / "estimation_acop2016_oral_1cpt.csv"


@pytest.mark.slow
@pytest.mark.skipif(not ACOP.is_file(), reason=f"{ACOP} not present")
def test_focei_on_acop2016_oral_one_compartment():
    """Schoemaker et al. (ACOP 2016) simulated set, true CL 4 L/h, V 70 L, KA 1 /h, 30 % IIV
    (omega^2 0.09) and 20 % proportional error; started 1.5x away from the truth."""
    model = acop_oral_model(1.5, omega2=0.2, sigma=0.3)
    ds = read_dataset(ACOP, compartments=model.compartment_map())
    fit = fit_focei(model, ds)
    assert fit.converged
    est = dict(zip(fit.estimates["parameter"], fit.estimates["estimate"], strict=True))
    for name, value in {"cl_L_per_h": 4.0, "v1_L": 70.0, "ka_per_h": 1.0}.items():
        assert est[name] == pytest.approx(value, rel=0.10), name
        assert est[f"omega2_{name}"] == pytest.approx(0.09, rel=0.35), name
    assert est["sigma_proportional"] == pytest.approx(0.2, rel=0.15)
    true_cl = ds.table.groupby("SUBJECT")["CL"].first().to_numpy()
    ebe_cl = est["cl_L_per_h"] * np.exp(fit.eta[:, 0])
    assert np.corrcoef(np.log(ebe_cl), np.log(true_cl))[0, 1] >= 0.9


def test_npde_are_standard_normal_under_the_true_model():
    from insilico.fit.npde import npde

    model = _model()
    table = _study(80, seed=31)
    ds = dataset_from_frame(table, compartments=model.compartment_map())
    values = npde(model, ds, n_replicates=300, seed=2)
    obs = (table["EVID"] == 0).to_numpy()
    assert np.isnan(values[~obs]).all()
    v = values[obs]
    # 800 observations: SE of the mean ~0.035, of the SD ~0.025
    assert abs(v.mean()) < 0.14 and 0.9 < v.std() < 1.1
    wrong = npde(model.with_parameters(cl_L_per_h=4.0), ds, n_replicates=300, seed=2)[obs]
    assert abs(wrong.mean()) > 0.3


# -- covariate effects, IIV blocks and fixed values -------------------------------------------

COV_TRUE = {
    "cl_L_per_h": 2.0,
    "v1_L": 30.0,
    "ka_per_h": 1.2,
    "beta_cl_L_per_h_WT": 0.75,
    "beta_v1_L_SEX_1": 0.7,
    "omega2_cl_L_per_h": 0.09,
    "omega2_v1_L": 0.04,
    "omega_cl_L_per_h_v1_L": 0.03,
}


def _covariate_model(**over):
    spec = {
        "name": "oral_1cpt_covariates",
        "pk": {"compartments": 1, "absorption": "first_order", "elimination": "linear"},
        "parameters": {"cl_L_per_h": 2.0, "v1_L": 30.0, "ka_per_h": 1.2},
        "covariates": {
            "cl_L_per_h": {"WT": {"power": 0.75, "reference": 70}},
            "v1_L": {"SEX": {"categorical": {0: 1.0, 1: 0.7}}},
        },
        "iiv": {
            "ka_per_h": 0.16,
            "blocks": [
                {"parameters": ["cl_L_per_h", "v1_L"], "covariance": [[0.09, 0.03], [0.03, 0.04]]}
            ],
        },
        "residual_error": {"additive": 0.05, "proportional": 0.1},
    }
    spec.update(over)
    return model_from_dict(spec)


def _covariate_study(model, n=80, seed=5):
    """n subjects of 40-120 kg, half of them SEX 1, 100 mg, simulated from ``model``."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        wt, sex = float(rng.uniform(40, 120)), int(i % 2)
        cov = {"WT": wt, "SEX": sex}
        rows.append({"ID": i + 1, "TIME": 0.0, "EVID": 1, "AMT": 100.0, "CMT": 1, **cov})
        for t in TIMES:
            rows.append({"ID": i + 1, "TIME": t, "EVID": 0, "AMT": 0.0, "CMT": 2, **cov})
    table = pd.DataFrame(rows)
    table["DV"] = np.nan
    ds = dataset_from_frame(table, compartments=model.compartment_map())
    sim = simulate_dataset(model, ds, replicates=1, seed=seed)
    table["DV"] = np.where(table["EVID"] == 0, sim["DV"].to_numpy(), np.nan)
    return dataset_from_frame(table, compartments=model.compartment_map())


def test_focei_estimates_covariate_effects_and_an_iiv_block(tmp_path):
    truth = _covariate_model()
    ds = _covariate_study(truth)
    start = truth.with_estimates(
        parameters={"cl_L_per_h": 3.0, "v1_L": 45.0, "ka_per_h": 1.8},
        covariates={"beta_cl_L_per_h_WT": 0.3, "beta_v1_L_SEX_1": 1.0},
        omega=np.diag([0.3, 0.2, 0.2]),
    )
    fit = fit_focei(start, ds)
    assert fit.converged, fit.messages
    est = dict(zip(fit.estimates["parameter"], fit.estimates["estimate"], strict=True))
    se = dict(zip(fit.estimates["parameter"], fit.estimates["se"], strict=True))
    # SEX 0 is the reference category: held at 1, said so, not estimated
    assert "beta_v1_L_SEX_0" not in est and fit.fixed == {"beta_v1_L_SEX_0": 1.0}
    assert any("reference category" in m for m in fit.messages)
    assert list(est) == [
        "cl_L_per_h",
        "v1_L",
        "ka_per_h",
        "beta_cl_L_per_h_WT",
        "beta_v1_L_SEX_1",
        "omega2_ka_per_h",
        "omega2_cl_L_per_h",
        "omega2_v1_L",
        "omega_cl_L_per_h_v1_L",
        "sigma_additive",
        "sigma_proportional",
    ]
    # 80 subjects: every estimate within 4 SE of the truth, SEs finite and positive
    for name, value in COV_TRUE.items():
        assert 0 < se[name] < np.inf, name
        assert abs(est[name] - value) < 4 * se[name], (name, est[name], se[name])
    assert est["beta_cl_L_per_h_WT"] == pytest.approx(0.75, abs=0.3)
    assert est["beta_v1_L_SEX_1"] == pytest.approx(0.7, rel=0.15)
    rse = 100 * fit.estimates["se"] / fit.estimates["estimate"].abs()
    np.testing.assert_allclose(fit.estimates["rse_pct"], rse)
    # the fitted model holds the estimates: the block as a covariance, the effects by name
    omega = fit.model.omega_matrix()
    assert omega[1, 2] == pytest.approx(est["omega_cl_L_per_h_v1_L"])
    assert np.linalg.eigvalsh(omega).min() > 0
    assert fit.model.covariates["cl_L_per_h"]["WT"].power == pytest.approx(
        est["beta_cl_L_per_h_WT"]
    )
    assert fit.model.covariates["v1_L"]["SEX"].categorical == {
        0: 1.0,
        1: pytest.approx(est["beta_v1_L_SEX_1"]),
    }
    # fit.yaml loads and gives the same OFV
    dump_model(fit.model, tmp_path / "fit.yaml")
    again = load_model(tmp_path / "fit.yaml")
    assert again == fit.model
    assert focei_ofv(again, ds) == pytest.approx(fit.ofv, abs=1e-3)


def test_fixed_values_are_held_and_left_out_of_the_estimates():
    truth = _covariate_model()
    ds = _covariate_study(truth, n=30, seed=8)
    start = _covariate_model(
        fixed=["beta_cl_L_per_h_WT", "omega2_cl_L_per_h", "omega2_v1_L", "omega_cl_L_per_h_v1_L"],
        covariates={
            "cl_L_per_h": {"WT": {"power": 0.75, "reference": 70}},
            "v1_L": {"SEX": {"categorical": {0: 1.0, 1: 0.9}}},
        },
    )
    fit = fit_focei(start, ds)
    names = list(fit.estimates["parameter"])
    assert "beta_cl_L_per_h_WT" not in names and "omega_cl_L_per_h_v1_L" not in names
    assert "beta_v1_L_SEX_1" in names
    assert fit.fixed["beta_cl_L_per_h_WT"] == 0.75
    assert fit.model.covariates["cl_L_per_h"]["WT"].power == 0.75
    np.testing.assert_array_equal(fit.model.omega_matrix()[1:, 1:], [[0.09, 0.03], [0.03, 0.04]])
    assert fit.model.fixed == start.fixed
    assert fit.aic == pytest.approx(fit.ofv + 2 * len(names))


def test_a_linear_effect_that_makes_a_parameter_negative_has_no_likelihood():
    model = _covariate_model(
        covariates={"cl_L_per_h": {"WT": {"linear": 0.01, "reference": 70}}},
    )
    ds = _covariate_study(_covariate_model(), n=10, seed=2)
    objective = _Objective(model, ds.table)
    phi = objective.start()
    assert np.isfinite(objective(phi))
    j = [s.key for s in objective.slots].index("beta_cl_L_per_h_WT")
    # the slot is the coefficient times the covariate's largest distance from the reference
    dx = ds.table["WT"].to_numpy() - 70.0
    span = np.abs(dx).max()
    assert phi[j] == pytest.approx(0.01 * span)
    bad = phi.copy()
    bad[j] = -2.0 * span / dx.max()  # 1 + coefficient (x - 70) < 0 for the heaviest subject
    assert objective(bad) == np.inf
    assert np.isfinite(objective.gradient(phi)).all()


def test_a_block_fixed_in_part_is_refused():
    with pytest.raises(SpecError, match="fixed"):
        _covariate_model(fixed=["omega2_cl_L_per_h"])


def test_categories_absent_from_the_data_and_the_reference_are_held():
    ds = _covariate_study(_covariate_model(), n=6, seed=4)
    model = _covariate_model(
        covariates={"v1_L": {"SEX": {"categorical": {2: 1.0, 0: 1.0, 1: 0.8}}}},
    )
    objective = _Objective(model, ds.table)
    assert "beta_v1_L_SEX_1" in objective.names
    assert {"beta_v1_L_SEX_2", "beta_v1_L_SEX_0"} <= objective.held
    assert any("no record has SEX = 2" in m for m in objective.messages)
    assert any("beta_v1_L_SEX_0: the reference category" in m for m in objective.messages)
    # with the typical value fixed every present category is estimated
    typical_fixed = model_from_dict({**model.model_dump(), "fixed": ["v1_L"]})
    objective = _Objective(typical_fixed, ds.table)
    assert {"beta_v1_L_SEX_0", "beta_v1_L_SEX_1"} <= set(objective.names)


def _cli_fit(tmp_path, table, *extra):
    start = tmp_path / "start.yaml"
    dump_model(_start(), start)
    data = tmp_path / "study.csv"
    table.to_csv(data, index=False, na_rep=".")
    out = tmp_path / "fit"
    return main(["fit", str(start), "--data", str(data), "--out", str(out), *extra]), out


def test_a_subject_without_observations_is_named(tmp_path, capsys):
    table = _study(6, seed=4)
    table.loc[table["ID"] == 3, "DV"] = np.nan
    code, out = _cli_fit(tmp_path, table)
    err = capsys.readouterr().err
    assert code == 2 and "subject 3" in err and "no observations" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_a_parameter_the_data_cannot_inform_is_reported_not_hidden(tmp_path, capsys):
    # every dose straight into the central compartment: KA and its IIV leave no trace in the
    # data, the information matrix is singular
    table = _study(30, seed=8)
    table.loc[table["EVID"] == 1, "CMT"] = 2
    code, out = _cli_fit(tmp_path, table, "--vpc-replicates", "20")
    err = capsys.readouterr().err
    assert code == 2 and "not identifiable" in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["standard_errors"] is False
    assert any("singular" in m for m in summary["messages"])
    assert (out / "estimates.csv").is_file()  # what was computed is kept


def test_a_fit_that_does_not_converge_says_so_and_exits_2(tmp_path, capsys):
    code, out = _cli_fit(tmp_path, _study(20, seed=9), "--max-iterations", "1")
    captured = capsys.readouterr()
    assert code == 2 and "did not converge" in captured.err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["converged"] is False
    assert "did not converge" in captured.out  # the warning with the optimizer's reason
