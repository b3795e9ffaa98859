"""A user-defined disease model runs without touching the library: Friberg myelosuppression.

The model lives in ``models/friberg_model.py``, as a user would write it, beside the model file
``models/friberg_myelosuppression.yaml`` that names it (``pd: {model: friberg, module:
friberg_model}``): loading the model file imports the module and registers its record. It is
simulated at the records of nlmixr2data ``wbcSim`` (Friberg et al. 2002 myelosuppression after
paclitaxel-like infusions, doi:10.1200/JCO.2002.02.140) and compared with

- an independent reference written from the model equations alone: the exact solution of
  the linear two-compartment PK with the data's infusions, driving the five Friberg states
  integrated by scipy ``solve_ivp`` Radau (``rtol=1e-10, atol=1e-12``) restarted at every
  infusion start and stop and every record;
- the data: the typical profile has a nadir 5-25 days after the infusion and recovers,
  and the observed counts near that nadir are lower than at baseline;
- the ``insilico simulate`` command, in this process and in a fresh one (where only the
  model file names the user's module).
"""

from __future__ import annotations

import importlib
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.integrate import solve_ivp

from insilico.cli import main
from insilico.dataset import dataset_from_frame, read_dataset
from insilico.dataset.simulate import simulate_dataset
from insilico.model import load_model
from insilico.pd import registry

REPO = Path(__file__).resolve().parents[2]
MODEL_FILE = REPO / "models" / "friberg_myelosuppression.yaml"
sys.path.insert(0, str(REPO / "models"))
from friberg_model import FRIBERG, friberg_initial, friberg_rhs  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "simulated_myelosuppression_friberg_wbcsim.csv"

#: typical values of the model file (nlmixr2 example for wbcSim) and its fixed Q (L/h)
CIRC0, MTT_H, SLOPE, GAMMA, Q = 7.21, 124.0, 28.9, 0.239, 204.0
DAY = 24.0


@pytest.fixture(scope="module")
def friberg():
    """The user's record, registered by loading the model file; removed afterwards."""
    registry._REGISTRY.pop(FRIBERG.name, None)
    assert FRIBERG.name not in registry.pd_model_names(), "friberg is not a built-in model"
    load_model(MODEL_FILE)
    assert registry.get_pd_model(FRIBERG.name) is FRIBERG
    yield FRIBERG
    registry._REGISTRY.pop(FRIBERG.name, None)


@pytest.fixture(scope="module")
def model(friberg):
    return load_model(MODEL_FILE)


@pytest.fixture(scope="module")
def wbcsim(model):
    if not DATA.is_file():
        pytest.skip(f"shared data file not found: {DATA}")
    return read_dataset(DATA, compartments=model.compartment_map())


@pytest.fixture(scope="module")
def predicted(model, wbcsim):
    return simulate_dataset(model, wbcsim)


# --- the reference: the model's equations, solved without the library ------------------------
#
# The PK part is linear: between infusion starts and stops its exact solution is
# x(tau) = sum_i exp(lam_i tau) P_i (x0 + r / lam_i) - sum_i P_i r / lam_i, with lam_i the
# eigenvalues of the compartment matrix A and P_i = (A - lam_j I) / (lam_i - lam_j) its
# spectral projectors. The five Friberg states, driven by that central concentration, are
# integrated by scipy Radau (rtol 1e-10, atol 1e-12) from one infusion start, infusion stop
# or record to the next.


def _friberg(t, y, t0, a1, a2, b, lam1, lam2, v1):
    prol, t1, t2, t3, circ = y
    tau = t - t0
    conc = (a1 * math.exp(lam1 * tau) + a2 * math.exp(lam2 * tau) + b) / v1
    ktr = 4.0 / MTT_H
    feedback = (CIRC0 / circ) ** GAMMA
    return (
        ktr * prol * (1.0 - SLOPE * conc) * feedback - ktr * prol,
        ktr * (prol - t1),
        ktr * (t1 - t2),
        ktr * (t2 - t3),
        ktr * (t3 - circ),
    )


def _friberg_jac(t, y, t0, a1, a2, b, lam1, lam2, v1):
    prol, _, _, _, circ = y
    tau = t - t0
    conc = (a1 * math.exp(lam1 * tau) + a2 * math.exp(lam2 * tau) + b) / v1
    ktr = 4.0 / MTT_H
    kill = 1.0 - SLOPE * conc
    feedback = (CIRC0 / circ) ** GAMMA
    j = np.zeros((5, 5))
    j[0, 0] = ktr * (kill * feedback - 1.0)
    j[0, 4] = -GAMMA / circ * ktr * prol * kill * feedback
    for i in range(1, 5):
        j[i, i - 1], j[i, i] = ktr, -ktr
    return j


def reference_subject(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Central concentration (mg/L) and circulating count at each record of one subject."""
    cl, v1, v2 = (float(rows[c].iloc[0]) for c in ("CLI", "V1I", "V2I"))
    A = np.array([[-(cl + Q) / v1, Q / v2], [Q / v1, -Q / v2]])
    lam = np.linalg.eigvals(A).real
    proj = [(A - lam[1 - i] * np.eye(2)) / (lam[i] - lam[1 - i]) for i in range(2)]
    doses = rows[rows["EVID"] == 1]
    assert (doses["RATE"] > 0).all(), "the reference handles infusions at a given rate"
    starts = doses["TIME"].to_numpy(float)
    stops = starts + doses["AMT"].to_numpy(float) / doses["RATE"].to_numpy(float)
    rates = doses["RATE"].to_numpy(float)
    times = rows["TIME"].to_numpy(float)
    grid = np.unique(np.r_[times, starts, stops])
    pk = np.zeros(2)
    y = np.full(5, CIRC0)
    state_at = {grid[0]: (pk[0], y[4])}
    for a, b in zip(grid[:-1], grid[1:], strict=True):
        r = np.array([rates[(starts <= a) & (a < stops)].sum(), 0.0])
        u = [p @ (pk + r / lam[i]) for i, p in enumerate(proj)]
        w = -sum(p @ r / lam[i] for i, p in enumerate(proj))
        sol = solve_ivp(
            _friberg,
            (a, b),
            y,
            method="Radau",
            rtol=1e-10,
            atol=1e-12,
            jac=_friberg_jac,
            args=(a, u[0][0], u[1][0], w[0], lam[0], lam[1], v1),
        )
        assert sol.success, sol.message
        y = sol.y[:, -1]
        pk = sum(np.exp(lam[i] * (b - a)) * u[i] for i in range(2)) + w
        state_at[b] = (pk[0], y[4])
    states = np.array([state_at[t] for t in times])
    return states[:, 0] / v1, states[:, 1]


def reference(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    conc, circ = [], []
    for _, rows in table.groupby("SUBJECT", sort=False):
        c, w = reference_subject(rows)
        conc.append(c)
        circ.append(w)
    return np.concatenate(conc), np.concatenate(circ)


# --- tests -------------------------------------------------------------------------------------


def test_user_model_is_registered_from_its_own_module(friberg, model):
    for func in (friberg_rhs, friberg_initial):
        module = importlib.import_module(func.py_func.__module__)
        assert getattr(module, func.py_func.__qualname__) is func
    assert registry.get_pd_model("friberg") is friberg
    assert model.pd.model == "friberg"
    assert model.compartment_map() == {1: "central", 2: "peripheral1", 3: "circ"}
    assert set(friberg.states) <= set(model.compartment_names())
    params = {"circ0": CIRC0, "mtt_wbc_h": MTT_H, "slope_L_per_mg": SLOPE, "gamma": GAMMA}
    assert {k: model.parameters[k] for k in params} == params
    assert model.parameters["q2_L_per_h"] == Q


def test_predictions_match_radau_at_every_record(wbcsim, predicted):
    table = wbcsim.table
    conc, circ = reference(table)
    pred = predicted["PRED"].to_numpy()
    np.testing.assert_array_equal(predicted["IPRED"].to_numpy(), pred)  # no variability
    obs = (table["EVID"] == 0).to_numpy()
    assert (table.loc[obs, "CMT"] == 3).all() and obs.sum() == 176
    err_circ = np.abs(pred[obs] - circ[obs]) / circ[obs]
    assert err_circ.max() < 1e-6, f"max relative error of circ {err_circ.max():.2e}"
    # dose records report the central concentration just before the dose (0 before the first)
    dose = ~obs
    np.testing.assert_allclose(pred[dose], conc[dose], rtol=1e-6, atol=1e-12)
    # the drug did act: counts at the observations span a wide range below and above circ0
    assert circ[obs].min() < 0.5 * CIRC0 and circ[obs].max() > CIRC0


def typical_profile(model, hours: float, step: float = 1.0) -> pd.DataFrame:
    """The typical subject of wbcSim (median CLI, V1I, V2I, first dose, rate) after one dose."""
    raw = pd.read_csv(DATA)
    first = raw[raw["EVID"] == 1].groupby("ID").head(1)
    cov = {c: float(raw.groupby("ID")[c].first().median()) for c in ("CLI", "V1I", "V2I")}
    amt, rate = float(first["AMT"].median()), float(first["RATE"].median())
    t = np.arange(0.0, hours + step / 2, step)
    df = pd.DataFrame(
        {
            "ID": 1,
            "TIME": np.r_[0.0, t],
            "EVID": np.r_[1, np.zeros(t.size, dtype=int)],
            "AMT": np.r_[amt, np.zeros(t.size)],
            "RATE": np.r_[rate, np.zeros(t.size)],
            "CMT": np.r_[1, np.full(t.size, 3)],
            "DV": 0.0,
            **cov,
        }
    )
    ds = dataset_from_frame(df, compartments=model.compartment_map())
    out = simulate_dataset(model, ds)
    return pd.DataFrame({"TIME": t, "CIRC": out["PRED"].to_numpy()[1:]})


def test_typical_profile_has_a_nadir_and_recovers(model, wbcsim):
    prof = typical_profile(model, 60 * DAY)
    i = int(prof["CIRC"].idxmin())
    t_nadir, nadir = prof["TIME"].iloc[i], prof["CIRC"].iloc[i]
    assert 5 * DAY <= t_nadir <= 25 * DAY, f"nadir at {t_nadir / DAY:.1f} days"
    assert nadir < 0.7 * CIRC0, f"nadir {nadir:.2f} vs circ0 {CIRC0}"
    assert prof["CIRC"].iloc[0] == pytest.approx(CIRC0, rel=1e-12)
    # falls to the nadir, then recovers: back above circ0 (feedback rebound), settling near it
    before, after = prof["CIRC"].iloc[: i + 1], prof["CIRC"].iloc[i:]
    assert np.all(np.diff(before) <= 1e-12) and after.max() > CIRC0
    assert abs(prof["CIRC"].iloc[-1] - CIRC0) < 0.05 * CIRC0


def test_observed_counts_fall_near_the_predicted_nadir(model, wbcsim, predicted):
    prof = typical_profile(model, 40 * DAY, step=2.0)
    t_nadir = float(prof["TIME"].iloc[int(prof["CIRC"].idxmin())])
    table = wbcsim.table.assign(PRED=predicted["PRED"].to_numpy())
    first_dose = table[table["EVID"] == 1].groupby("SUBJECT")["TIME"].min()
    next_dose = (
        table[table["EVID"] == 1].groupby("SUBJECT")["TIME"].apply(lambda t: t.iloc[1:].min())
    )
    obs = table[table["EVID"] == 0].copy()
    obs["T"] = obs["TIME"] - obs["SUBJECT"].map(first_dose)
    first_cycle = ~(obs["TIME"] >= obs["SUBJECT"].map(next_dose).fillna(np.inf))
    baseline = obs[(obs["T"] == 0.0) & first_cycle]
    window = obs[(abs(obs["T"] - t_nadir) <= 4 * DAY) & first_cycle]
    assert len(baseline) >= 40 and len(window) >= 20
    # a property of the data: counts near the nadir are lower than at baseline
    dv_ratio = window["DV"].mean() / baseline["DV"].mean()
    assert dv_ratio < 0.75, f"mean DV near nadir / baseline = {dv_ratio:.2f}"
    # the model predicts the same direction, of a similar size
    pred_ratio = window["PRED"].mean() / baseline["PRED"].mean()
    assert pred_ratio < 0.75, f"mean PRED near nadir / baseline = {pred_ratio:.2f}"
    assert 0.67 < dv_ratio / pred_ratio < 1.5
    # per subject, the observed drop goes with the predicted one
    both = (
        window.groupby("SUBJECT")[["DV", "PRED"]]
        .mean()
        .join(baseline.set_index("SUBJECT")[["DV"]].rename(columns={"DV": "DV0"}), how="inner")
    )
    fell = (both["DV"] < both["DV0"]).mean()
    assert fell > 0.8, f"{fell:.0%} of subjects below baseline near the nadir"


def test_cli_simulate_with_the_user_model_registered(model, wbcsim, predicted, tmp_path):
    out = tmp_path / "out.csv"
    code = main(["simulate", str(MODEL_FILE), "--data", str(DATA), "--out", str(out)])
    assert code == 0
    written = pd.read_csv(out)
    assert list(written.columns[:11]) == list(pd.read_csv(DATA, nrows=0).columns)
    np.testing.assert_allclose(written["PRED"], predicted["PRED"], rtol=1e-9, atol=1e-12)


def test_cli_in_a_fresh_process_imports_the_user_module(wbcsim, predicted, tmp_path):
    # nothing registers the model but the model file's pd.module
    out = tmp_path / "out.csv"
    run = subprocess.run(
        [sys.executable, "-m", "insilico.cli", "simulate", str(MODEL_FILE)]
        + ["--data", str(DATA), "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    written = pd.read_csv(out)
    np.testing.assert_allclose(written["PRED"], predicted["PRED"], rtol=1e-9, atol=1e-12)


# --- an edited user model must not keep running its old compiled code -------------------------

_PROBE_MODULE = """\
import numba as nb


@nb.njit
def probe_rhs(c, y, p, dydt):
    dydt[0] = {body}


@nb.njit
def probe_initial(p, y0):
    y0[0] = 0.0
"""

_PROBE_RUN = """\
import pandas as pd
import insilico_test_edited_pd_model
from insilico.dataset import dataset_from_frame
from insilico.dataset.simulate import simulate_dataset
from insilico.model import model_from_dict
from insilico.pd.registry import PDRecord, register_pd_model

register_pd_model(
    PDRecord(
        "probe",
        ("k_per_h",),
        states=("r",),
        rhs=insilico_test_edited_pd_model.probe_rhs,
        initial=insilico_test_edited_pd_model.probe_initial,
    )
)
model = model_from_dict(
    {
        "name": "probe",
        "pk": {"compartments": 1, "absorption": "none", "elimination": "linear"},
        "parameters": {"cl_L_per_h": 1.0, "v1_L": 10.0, "k_per_h": 1.0},
        "pd": {"model": "probe"},
        "data": {"compartments": {1: "central", 2: "r"}},
    }
)
records = pd.DataFrame(
    {"ID": 1, "TIME": [0.0, 1.0], "EVID": [1, 0], "AMT": [10.0, 0.0], "CMT": [1, 2], "DV": 0.0}
)
dataset = dataset_from_frame(records, compartments=model.compartment_map())
print(repr(float(simulate_dataset(model, dataset)["PRED"].iloc[1])))
"""


@pytest.mark.slow
def test_edited_user_model_is_recompiled(tmp_path):
    (tmp_path / "run_probe.py").write_text(_PROBE_RUN)
    # the kernel cache is the user's (compiled once per machine, as for any model)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)]),
        "PYTHONDONTWRITEBYTECODE": "1",
    }

    def run(body: str) -> float:
        (tmp_path / "insilico_test_edited_pd_model.py").write_text(_PROBE_MODULE.format(body=body))
        done = subprocess.run(
            [sys.executable, str(tmp_path / "run_probe.py")],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=True,
        )
        return float(done.stdout.strip().splitlines()[-1])

    # dR/dt = k: R(1 h) = 1
    first = run("p[0]")
    if abs(first - 1.0) > 1e-9:
        pytest.fail(f"the probe model gave R(1 h) = {first}, expected 1")
    # the user edits the model to dR/dt = 2 k: R(1 h) = 2
    second = run("2.0 * p[0]")
    assert second == pytest.approx(2.0, rel=1e-9), f"R(1 h) = {second} after the edit"
