"""Chart specs of the app (AppTest shows Altair charts only as unknown elements): layers,
fields, axis titles with units, log scale, reference lines."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

APP_DIR = Path(__file__).resolve().parents[2] / "app"


@pytest.fixture(scope="module")
def charts():
    sys.path.insert(0, str(APP_DIR))
    try:
        import charts as mod
    finally:
        sys.path.remove(str(APP_DIR))
    return mod


def _bands(runs_root):
    from insilico.results import access as run_access
    from insilico.ui import runs as ui

    run = run_access.load_run(run_access.run_list(runs_root)["run_id"].iloc[0], runs_root)
    return run, ui.bands_for(run.bands, "conc_mg_per_L", ["atenolol:low", "propranolol:high"])


def test_band_chart_layers_units_and_lines(charts, runs_root):
    from insilico.ui import runs as ui

    run, b = _bands(runs_root)
    lines = ui.reference_lines(run).rename(columns={"conc_mg_per_L": "value"})
    spec = charts.band_chart(
        b, "Plasma concentration (mg/L)", log_scale=True, lines=lines
    ).to_dict()
    marks = [layer["mark"]["type"] for layer in spec["layer"]]
    assert marks == ["area", "area", "line", "rule", "text"]
    outer = spec["layer"][0]["encoding"]
    assert outer["y"]["field"] == "p5" and outer["y2"]["field"] == "p95"
    assert outer["y"]["title"] == "Plasma concentration (mg/L)"
    assert outer["y"]["scale"]["type"] == "log"
    assert spec["layer"][0]["encoding"]["x"]["title"] == "Time (h)"
    assert spec["layer"][2]["encoding"]["y"]["field"] == "p50"
    data = spec["datasets"]
    band_rows = max(data.values(), key=len)
    assert len(band_rows) == len(b)
    assert min(r["p5"] for r in band_rows) > 0  # log axis: zeros floored, not dropped


def test_histogram_and_dose_charts_have_units(charts, runs_root):
    from insilico.results import access as run_access
    from insilico.ui import runs as ui

    run = run_access.load_run(run_access.run_list(runs_root)["run_id"].iloc[0], runs_root)
    h = ui.exposure_histograms(run)
    spec = charts.histogram_chart(
        h[h["metric"] == "cmax_mg_per_L"], "Cmax (mg/L)", color="arm"
    ).to_dict()
    assert spec["encoding"]["x"]["title"] == "Cmax (mg/L)"
    assert spec["encoding"]["y"]["title"] == "Patients (%)"
    curves = ui.dose_curves(run.summary)
    assert curves is not None and set(curves["dose_mg"]) == {50.0, 100.0}
    rates = curves[curves["kind"] == "rate"]
    d = charts.dose_response_chart(rates[rates["higher_is_better"]], "Patients").to_dict()
    assert d["layer"][0]["encoding"]["x"]["title"] == "Dose (mg)"
    assert d["layer"][0]["encoding"]["y"]["title"] == "Patients (%), 95 % CI"


def test_interval_chart_scales_rates_to_percent(charts):
    long = pd.DataFrame(
        {
            "arm": ["a", "b"],
            "compound_id": ["x", "y"],
            "metric": ["Responder rate"] * 2,
            "value": [0.5, 0.25],
            "ci_low": [0.4, 0.2],
            "ci_high": [0.6, 0.3],
        }
    )
    spec = charts.interval_chart(long, "Responder rate", "rate", "%").to_dict()
    rows = next(iter(spec["datasets"].values()))
    assert [r["value"] for r in rows] == [50.0, 25.0]
    assert spec["layer"][0]["encoding"]["x"]["title"] == "Responder rate (%), 95 % CI"
