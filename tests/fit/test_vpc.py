"""Visual predictive checks: the true model passes, a wrong one does not."""

from __future__ import annotations

import numpy as np
import pandas as pd

from insilico.cli import main
from insilico.dataset import dataset_from_frame
from insilico.fit.vpc import vpc_table
from insilico.model import dump_model

from .test_twin import _model, _patients


def _study(n=150, seed=11):
    table, _, _, _ = _patients(n, seed=seed)
    # two dose groups: the prediction-corrected VPC removes the dose from the spread
    table.loc[table["ID"] > n // 2, "AMT"] *= 3.0
    return table


def test_the_true_model_passes_and_a_wrong_clearance_fails():
    model = _model()
    table = _study()
    # observations of the high-dose group come from 3x the dose: simulate them as such
    from insilico.dataset.simulate import simulate_dataset

    ds = dataset_from_frame(table, compartments=model.compartment_map())
    truth = simulate_dataset(model, ds, replicates=1, seed=5)
    table["DV"] = np.where(table["EVID"] == 0, truth["DV"].to_numpy(), np.nan)
    ds = dataset_from_frame(table, compartments=model.compartment_map())
    good = vpc_table(model, ds, n_replicates=200, n_bins=8, seed=1, prediction_corrected=True)
    assert len(good) == 24
    # each check has a 90 % interval; with 24 of them, 18 or more inside
    assert good["inside"].sum() >= 18, good
    wrong = model.with_parameters(cl_L_per_h=6.0)
    bad = vpc_table(wrong, ds, n_replicates=200, n_bins=8, seed=1, prediction_corrected=True)
    assert bad["inside"].sum() <= 12, bad


def test_cli_vpc_writes_tables_and_plots(tmp_path, capsys):
    model = _model()
    path = tmp_path / "model.yaml"
    dump_model(model, path)
    data = tmp_path / "study.csv"
    _study(40).to_csv(data, index=False, na_rep=".")
    out = tmp_path / "vpc"
    code = main(["vpc", str(path), "--data", str(data), "--out", str(out), "--replicates", "50"])
    assert code == 0
    for name in ("vpc", "pcvpc"):
        table = pd.read_csv(out / f"{name}.csv")
        assert set(table["percentile"]) == {5.0, 50.0, 95.0}
        assert (out / f"{name}.png").stat().st_size > 10_000
    assert "inside the simulated 90 % intervals" in capsys.readouterr().out
