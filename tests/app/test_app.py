"""The minimal app renders with and without runs and switches between runs and arms."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from insilico.engine.run import run_and_write  # noqa: E402
from insilico.trial.examples import ATENOLOL, small_trial  # noqa: E402
from insilico.trial.spec import trial_spec_from_dict  # noqa: E402

APP = Path(__file__).resolve().parents[2] / "app" / "streamlit_app.py"


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    for seed in (1, 2):
        spec = trial_spec_from_dict(small_trial(n_patients=100, seed=seed, compounds=[ATENOLOL]))
        run_and_write(root=root, spec=spec, executor="serial")
    return root


def test_no_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("INSILICO_RUNS", str(tmp_path))
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception
    assert "No runs" in at.info[0].value


def test_lists_runs_and_shows_summary_and_bands(runs_root, monkeypatch):
    monkeypatch.setenv("INSILICO_RUNS", str(runs_root))
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception
    runs_table = at.dataframe[0].value
    assert len(runs_table) == 2
    summary = at.dataframe[1].value
    assert set(summary["arm"]) == {"atenolol:low", "atenolol:high", "placebo"}
    assert len(at.selectbox) == 2
    # switching run and arm re-renders with that run's numbers
    other = at.selectbox(key="run").options[1]
    at.selectbox(key="run").select(other).run()
    assert not at.exception
    assert at.selectbox(key="run").value == other
    at.selectbox(key="arm").select("placebo").run()
    assert not at.exception
    assert any("Plasma concentration" in md.value for md in at.markdown)


def test_band_chart_spec(runs_root):
    import sys

    sys.path.insert(0, str(APP.parent))
    try:
        from charts import band_chart
    finally:
        sys.path.remove(str(APP.parent))
    from insilico.results.rundir import list_runs, read_run

    run = read_run(list_runs(runs_root)["run_id"].iloc[0], runs_root)
    b = run.bands[(run.bands["arm"] == "atenolol:low") & (run.bands["quantity"] == "conc_mg_per_L")]
    spec = band_chart(b, "conc").to_dict()
    marks = [layer["mark"]["type"] for layer in spec["layer"]]
    assert marks == ["area", "area", "line"]
    assert spec["layer"][0]["encoding"]["y2"]["field"] == "p95"
    assert spec["layer"][2]["encoding"]["y"]["field"] == "p50"
    values = next(iter(spec["datasets"].values()))
    assert len(values) == len(b)
