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
from insilico.fit.population import diagnostics, fit_focei
from insilico.model import dump_model, load_model

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
