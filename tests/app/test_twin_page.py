"""The patient twin and fit pages headless: a simulated patient gives the individual parameters,
a bad file gives one error line, a fit directory shows its estimates, a missing one a message."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("streamlit")

from streamlit.testing.v1 import AppTest  # noqa: E402

from insilico.dataset import dataset_from_frame  # noqa: E402
from insilico.dataset.simulate import simulate_dataset  # noqa: E402
from insilico.model import load_model, model_from_dict  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app" / "streamlit_app.py"
MODEL = ROOT / "models" / "oral_1cpt_lag_allometric.yaml"
TIMES = (1.0, 2.0, 4.0, 8.0, 12.0)
TIMEOUT = 30


def _app(tmp_path, monkeypatch) -> AppTest:
    monkeypatch.setenv("INSILICO_RUNS", str(tmp_path / "runs"))
    return AppTest.from_file(str(APP), default_timeout=TIMEOUT)


def _simulated(model, n: int, times, seed: int) -> pd.DataFrame:
    """``n`` patients: 100 mg into CMT 1 at 0 h, observations at ``times``, weights 50-100 kg."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        wt = float(np.round(rng.uniform(50, 100), 1))
        rows.append({"ID": i + 1, "TIME": 0.0, "EVID": 1, "AMT": 100.0, "CMT": 1, "DV": np.nan})
        rows[-1]["WT"] = wt
        for t in times:
            rows.append(
                {"ID": i + 1, "TIME": t, "EVID": 0, "AMT": 0.0, "CMT": 2, "DV": 0.0, "WT": wt}
            )
    table = pd.DataFrame(rows)
    ds = dataset_from_frame(table, compartments=model.compartment_map())
    sim = simulate_dataset(model, ds, replicates=1, seed=seed)
    table["DV"] = np.where(table["EVID"] == 0, sim["DV"].to_numpy(), np.nan)
    return table


def _patient_csv() -> bytes:
    table = _simulated(load_model(MODEL), 1, TIMES, seed=5)
    return table.to_csv(index=False, na_rep=".").encode()


def test_twin_page_shows_the_individual_parameters_and_a_dose(tmp_path, monkeypatch):
    at = _app(tmp_path, monkeypatch).run()
    at.switch_page("screens/twin.py").run()
    assert not at.exception, at.exception
    at.file_uploader(key="twin_data").upload("patient.csv", _patient_csv(), "text/csv")
    at.selectbox(key="twin_model").select("oral_1cpt_lag_allometric.yaml")
    at.checkbox(key="twin_dose").check().run()
    at.button(key="twin_update").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    params = next(df.value for df in at.dataframe if "Parameter" in df.value.columns)
    assert set(params["Parameter"]) == {"cl_L_per_h", "v1_L", "ka_per_h", "tlag_h"}
    assert (params["Patient"] > 0).all()
    assert any("probability" in s.value for s in at.success)


def test_twin_page_shows_one_line_for_a_bad_csv(tmp_path, monkeypatch):
    at = _app(tmp_path, monkeypatch).run()
    at.switch_page("screens/twin.py").run()
    bad = b"ID,TIME,EVID,AMT,CMT,DV\n1,0,1,100,1,.\n1,oops,0,0,2,1.5\n"
    at.file_uploader(key="twin_data").upload("bad.csv", bad, "text/csv")
    at.button(key="twin_update").click().run()
    assert not at.exception, at.exception
    assert len(at.error) == 1
    message = at.error[0].value
    assert "bad.csv" in message and "\n" not in message and "Traceback" not in message


@pytest.fixture(scope="module")
def fit_dir(tmp_path_factory):
    """A small fit (20 subjects x 6 samples, one-compartment oral model) written by the CLI."""
    from insilico.cli import main
    from insilico.model import dump_model

    root = tmp_path_factory.mktemp("fit")
    model = model_from_dict(
        {
            "name": "oral_1cpt",
            "pk": {"compartments": 1, "absorption": "first_order", "elimination": "linear"},
            "parameters": {"cl_L_per_h": 2.0, "v1_L": 30.0, "ka_per_h": 1.2},
            "iiv": {"cl_L_per_h": 0.09, "v1_L": 0.04, "ka_per_h": 0.16},
            "residual_error": {"additive": 0.05, "proportional": 0.1},
        }
    )
    table = _simulated(model, 20, (0.5, 1.0, 2.0, 4.0, 8.0, 24.0), seed=11)
    table.to_csv(root / "data.csv", index=False, na_rep=".")
    dump_model(model.with_parameters(cl_L_per_h=3.0, v1_L=40.0, ka_per_h=1.0), root / "m.yaml")
    out = root / "out"
    code = main(
        [
            "fit",
            str(root / "m.yaml"),
            "--data",
            str(root / "data.csv"),
            "--out",
            str(out),
            "--vpc-replicates",
            "20",
        ]
    )
    assert code in (0, 2)
    return out


def test_fit_page_shows_the_estimates(fit_dir, tmp_path, monkeypatch):
    at = _app(tmp_path, monkeypatch).run()
    at.switch_page("screens/fit.py").run()
    assert not at.exception, at.exception
    assert at.info, "an empty path should ask for a directory"
    at.text_input(key="fit_dir").input(str(fit_dir)).run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    est = next(df.value for df in at.dataframe if "parameter" in df.value.columns)
    assert {"cl_L_per_h", "v1_L", "ka_per_h"} <= set(est["parameter"])
    labels = {m.label for m in at.metric}
    assert {"OFV", "AIC", "BIC", "Converged"} <= labels


def test_fit_page_refuses_a_missing_or_incomplete_directory(tmp_path, monkeypatch):
    at = _app(tmp_path, monkeypatch).run()
    at.switch_page("screens/fit.py").run()
    at.text_input(key="fit_dir").input(str(tmp_path / "nowhere")).run()
    assert not at.exception, at.exception
    assert "existing directory" in at.error[0].value
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "summary.json").write_text("{}")
    at.text_input(key="fit_dir").input(str(tmp_path / "half")).run()
    assert "estimates.csv" in at.error[0].value
