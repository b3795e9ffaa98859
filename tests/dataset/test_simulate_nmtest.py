"""``insilico simulate`` against NONMEM's own predictions and on bad input.

The reference is ``nonmem_event_reference_nmtest.csv``: NONMEM 7.4.3's ``cp`` for a
one-compartment model with first-order absorption under every dosing feature (EVID 0/1/3/4,
SS 0/1/2, II, ADDL, RATE > 0 and -2, lag and bioavailability of the dosed compartment). ``cp``
is printed to about 5 significant digits, so the tolerance is 1e-4 relative (and 1e-3 ug/L
absolute for the zeros before a lagged dose).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from insilico.cli import main
from insilico.dataset import dataset_from_frame, read_dataset
from insilico.dataset.simulate import simulate_dataset
from insilico.model import load_model

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
NMTEST = DATA / "nonmem_event_reference_nmtest.csv"
ADVAN2 = ROOT / "models" / "nonmem_advan2.yaml"
ALLOMETRIC = ROOT / "models" / "oral_1cpt_lag_allometric.yaml"

needs_data = pytest.mark.skipif(not NMTEST.is_file(), reason=f"{NMTEST} not present")


@needs_data
def test_every_nmtest_row_matches_nonmem(tmp_path):
    out = tmp_path / "out.csv"
    assert main(["simulate", str(ADVAN2), "--data", str(NMTEST), "--out", str(out)]) == 0
    got = pd.read_csv(out)
    ref = pd.read_csv(NMTEST)
    assert len(got) == len(ref)
    pd.testing.assert_frame_equal(got[ref.columns], ref, check_dtype=False)
    # no variability: the subject's prediction is the typical one
    np.testing.assert_array_equal(got["PRED"], got["IPRED"])
    cp = ref["cp"].to_numpy()
    err = np.abs(got["PRED"].to_numpy() - cp)
    bad = err > 1e-4 * np.abs(cp) + 1e-3
    assert not bad.any(), ref.loc[bad, ["id", "time", "cp"]].assign(got=got.loc[bad, "PRED"])


@needs_data
def test_nmtest_includes_nonmem_rule_for_lags_longer_than_the_interval():
    # SS infusions whose lag exceeds II: NONMEM moves the trough back by II - lag, which gives
    # negative concentrations; the reference has them and so must the simulator
    model = load_model(ADVAN2)
    ds = read_dataset(NMTEST, compartments=model.compartment_map(), require_dv=False)
    pred = simulate_dataset(model, ds)["PRED"].to_numpy()
    cp = ds.table["cp"].to_numpy()
    neg = cp < 0
    assert neg.sum() > 100
    np.testing.assert_allclose(pred[neg], cp[neg], rtol=1e-4)


def _small_dataset():
    return pd.DataFrame(
        {
            "ID": [1, 1, 1, 2, 2, 2],
            "TIME": [0.0, 1.0, 4.0, 0.0, 2.0, 8.0],
            "EVID": [1, 0, 0, 1, 0, 0],
            "AMT": [100.0, 0, 0, 100.0, 0, 0],
            "CMT": [1, 2, 2, 1, 2, 2],
            "DV": [np.nan, 3.1, 5.2, np.nan, 4.0, 2.0],
            "WT": [70.0, 70.0, 70.0, 50.0, 50.0, 55.0],
        }
    )


def test_allometric_model_carries_covariates_iiv_and_residual_error():
    model = load_model(ALLOMETRIC)
    ds = dataset_from_frame(_small_dataset(), compartments=model.compartment_map())
    typical = simulate_dataset(model.model_copy(update={"iiv": None}), ds)
    # PRED is the typical subject with the weight effect: CL = 0.2 (WT/70)^0.75, V = 10 WT/70
    t = ds.table
    cl = 0.2 * (t["WT"] / 70.0) ** 0.75
    v = 10.0 * t["WT"] / 70.0
    ka, lag = 1.0, 0.5
    k = cl / v
    tt = np.clip(t["TIME"] - lag, 0.0, None)
    bateman = 100.0 * ka / (v * (ka - k)) * (np.exp(-k * tt) - np.exp(-ka * tt))
    obs = (t["EVID"] == 0).to_numpy()
    # WT changes at the last record of subject 2: parameters apply from the record that ends
    # the interval (NONMEM), so compare the records before it
    same = obs & (t["TIME"] < 8.0).to_numpy()
    np.testing.assert_allclose(typical["PRED"][same], bateman[same], rtol=1e-10)
    np.testing.assert_array_equal(typical["PRED"], typical["IPRED"])

    sims = simulate_dataset(model, ds, replicates=200, seed=7)
    assert list(sims.columns) == ["REP", "PRED", "IPRED", "DV"]
    assert len(sims) == 200 * len(t)
    ipred = sims["IPRED"].to_numpy().reshape(200, -1)
    # IIV: subjects' predictions differ from replicate to replicate
    assert np.std(ipred[:, 2]) > 0.1 * np.mean(ipred[:, 2])
    dv = sims["DV"].to_numpy().reshape(200, -1)
    assert np.isnan(dv[:, ~obs]).all()
    # residual error: DV - IPRED has the model's SD sqrt(add^2 + (prop IPRED)^2)
    resid = (dv[:, obs] - ipred[:, obs]) / np.sqrt(0.5**2 + (0.15 * ipred[:, obs]) ** 2)
    assert abs(resid.mean()) < 4 * 1 / np.sqrt(resid.size)
    assert abs(resid.std() - 1) < 0.08
    again = simulate_dataset(model, ds, replicates=200, seed=7)
    pd.testing.assert_frame_equal(sims, again)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda d: d.assign(EVID=[1, 0, 7, 1, 0, 0]), "EVID"),
        (lambda d: d.assign(AMT=[-100.0, 0, 0, 100.0, 0, 0]), "AMT"),
        (lambda d: d.assign(TIME=[0.0, 4.0, 1.0, 0.0, 2.0, 8.0]), "TIME"),
        (lambda d: d.assign(CMT=[1, 2, 5, 1, 2, 2]), "CMT"),
    ],
)
def test_bad_dataset_exits_2_with_one_line(tmp_path, capsys, change, needle):
    data = tmp_path / "data.csv"
    change(_small_dataset()).to_csv(data, index=False, na_rep=".")
    out = tmp_path / "out.csv"
    code = main(["simulate", str(ALLOMETRIC), "--data", str(data), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert needle in err and "data.csv" in err
    assert not out.exists()
    assert not list(tmp_path.glob(".*tmp"))


def test_data_without_dv_is_refused_where_observations_are_needed(tmp_path):
    # simulate predicts at EVID 0 records and needs no DV (NONMEM's nmtest has none); reading
    # data as observations (fits, twin updates) does
    from insilico.errors import DatasetError

    data = tmp_path / "data.csv"
    _small_dataset().drop(columns=["DV"]).to_csv(data, index=False, na_rep=".")
    with pytest.raises(DatasetError, match="DV"):
        read_dataset(data)


def test_typo_in_model_exits_2_naming_the_key(tmp_path, capsys):
    text = ALLOMETRIC.read_text().replace("cl_L_per_h: 0.2", "cl_l_per_h: 0.2")
    model = tmp_path / "typo.yaml"
    model.write_text(text)
    data = tmp_path / "data.csv"
    _small_dataset().to_csv(data, index=False, na_rep=".")
    code = main(["simulate", str(model), "--data", str(data), "--out", str(tmp_path / "o.csv")])
    err = capsys.readouterr().err
    assert code == 2
    assert "cl_l_per_h" in err and "typo.yaml" in err and "cl_L_per_h" in err
    assert not (tmp_path / "o.csv").exists()
