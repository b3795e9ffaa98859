"""Patient twins and fit directories for the app: a patient's records and a population model
in, the updated twin (individual parameters, forecast with a 90 % band, a dose for a target)
out; and the files of an ``insilico fit`` directory read for display.

The twin is :func:`insilico.fit.forecast.forecast` on the patient's records plus a grid of
prediction-only records (``EVID 0``, ``MDV 1``), so the curves are smooth between samples; the
grid records carry no observation, so the estimate is the same as on the records alone.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd

from insilico.dataset import Dataset, dataset_from_frame
from insilico.dataset.read import check_utf8, parse_body, parse_header, text_frame
from insilico.errors import DatasetError, SpecError
from insilico.fit.forecast import TARGET_METRICS, Target, forecast, recommend_dose
from insilico.io.specs import parse_yaml
from insilico.model import load_model, model_from_dict
from insilico.ui.models import MODELS_DIR

#: Largest upload read (bytes): one patient's records or one model file.
MAX_UPLOAD_BYTES = 5_000_000
#: Prediction-only records added between the first and the last record.
GRID_POINTS = 200
#: Posterior draws of the forecast band and of the dose search.
FORECAST_DRAWS = 300
DOSE_DRAWS = 200
#: Files of a fit directory that must be there to show it.
FIT_REQUIRED = ("summary.json", "estimates.csv")
FIT_IMAGES = {
    "gof.png": "Goodness of fit",
    "pcvpc.png": "Prediction-corrected VPC",
    "saem_trace.png": "SAEM estimates by iteration",
}
#: Images only some fits have (SAEM's trace): not missed when absent.
FIT_OPTIONAL_IMAGES = frozenset({"saem_trace.png"})
METRIC_LABELS = {
    "trough_mg_per_L": "Trough (mg/L)",
    "auc_tau_mg_h_per_L": "AUC over the last interval (mg·h/L)",
    "cmax_mg_per_L": "Cmax (mg/L)",
}


# ------------------------------------------------------------------ inputs
def model_files() -> list[str]:
    """The model files shipped in ``models/`` (names)."""
    if not MODELS_DIR.is_dir():
        return []
    return sorted(
        p.name
        for p in MODELS_DIR.glob("*.yaml")
        if p.is_file() and "kind: model" in p.read_text(encoding="utf-8", errors="replace")
    )


def shipped_model(name: str):
    """A model file of ``models/`` by name (only names :func:`model_files` lists)."""
    if name not in model_files():
        raise SpecError("model", name, f"one of {model_files()}")
    return load_model(MODELS_DIR / name)


def _check_size(data: bytes, name: str) -> None:
    if len(data) > MAX_UPLOAD_BYTES:
        raise SpecError("file", name, f"at most {MAX_UPLOAD_BYTES // 1_000_000} MB")


def model_from_upload(data: bytes, name: str):
    """A model from an uploaded YAML file (``kind: model``)."""
    _check_size(data, name)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SpecError("file", name, "a UTF-8 YAML model file", name) from None
    return model_from_dict(parse_yaml(text, name), source=name)


def dataset_from_upload(data: bytes, name: str, model) -> Dataset:
    """An uploaded NONMEM-format CSV, checked against ``model``'s compartments, with at least
    one observation."""
    _check_size(data, name)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    check_utf8(data, name)
    if not data.strip():
        raise DatasetError(name, None, "file", "empty", "a header line and at least one record")
    end = data.find(b"\n")
    header, body = (data, b"") if end < 0 else (data[:end], data[end + 1 :])
    names = parse_header(header, name)
    table, _ = parse_body(body, names, name)
    if table is None:
        raise DatasetError(name, None, "file", "header only", "at least one data record")
    dataset = dataset_from_frame(
        text_frame(table, names), source=name, compartments=model.compartment_map()
    )
    t = dataset.table
    if not ((t["EVID"] == 0) & (t["MDV"] == 0) & t["DV"].notna()).any():
        raise DatasetError(name, None, "DV", "no observations", "records with EVID 0 and a DV")
    return dataset


def patient_ids(dataset: Dataset) -> list:
    """The patients' IDs in file order (one per individual)."""
    first = dataset.table.groupby("SUBJECT", sort=True).head(1)
    return [_id(v) for v in first["ID"]]


def _id(value):
    v = float(value)
    return int(v) if v.is_integer() else v


# ------------------------------------------------------------------ twin
@dataclass(frozen=True)
class Twin:
    """One patient's updated twin."""

    patient: object
    parameters: pd.DataFrame
    curves: pd.DataFrame
    observations: pd.DataFrame
    converged: bool
    n_observations: int
    dv_unit: str
    dataset: Dataset
    posterior: object


def _patient_frame(dataset: Dataset, patient) -> pd.DataFrame:
    """The numeric records of one patient (NONMEM items and numeric covariates)."""
    t = dataset.table
    ids = [_id(v) for v in t["ID"]]
    rows = t[[i == patient for i in ids]]
    if rows.empty:
        raise SpecError("patient", patient, f"one of {patient_ids(dataset)}")
    rows = rows[rows["SUBJECT"] == rows["SUBJECT"].iloc[0]]
    keep = [
        c
        for c in rows.columns
        if c not in ("SUBJECT", "ROW") and pd.api.types.is_numeric_dtype(rows[c])
    ]
    return rows[keep].reset_index(drop=True)


def _with_grid(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` plus prediction-only records on a grid from its first to its last time."""
    obs = frame[frame["EVID"] == 0]
    t0, t1 = float(frame["TIME"].min()), float(frame["TIME"].max())
    grid = np.linspace(t0, t1, GRID_POINTS) if t1 > t0 else np.array([t0])
    extra = pd.DataFrame({c: np.nan for c in frame.columns}, index=range(grid.size))
    extra["ID"] = frame["ID"].iloc[0]
    extra["TIME"] = grid
    extra["EVID"] = 0
    extra["MDV"] = 1
    extra["CMT"] = obs["CMT"].iloc[0] if not obs.empty else np.nan
    for col in ("AMT", "RATE", "SS", "II", "ADDL"):
        if col in extra.columns:
            extra[col] = 0.0
    out = pd.concat([frame.assign(_grid=False), extra.assign(_grid=True)], ignore_index=True)
    return out.sort_values("TIME", kind="stable").reset_index(drop=True)


def update_twin(model, dataset: Dataset, patient=None, until_h: float | None = None) -> Twin:
    """The twin of one patient (the first by default) updated from their observations up to
    ``until_h`` (all when ``None``)."""
    if patient is None:
        patient = patient_ids(dataset)[0]
    if until_h is not None and not (math.isfinite(until_h) and until_h >= 0):
        raise SpecError("use observations up to", until_h, "a time >= 0 h")
    records = _patient_frame(dataset, patient)
    own = dataset_from_frame(records, source=dataset.source, compartments=model.compartment_map())
    augmented = _with_grid(records)
    is_grid = augmented.pop("_grid").to_numpy(dtype=bool)
    full = dataset_from_frame(
        augmented, source=dataset.source, compartments=model.compartment_map()
    )
    fc, individual, post = forecast(model, full, until_h=until_h, n_draws=FORECAST_DRAWS, seed=0)
    table = full.table
    time = table["TIME"].to_numpy()
    curves = pd.DataFrame(
        {
            "time_h": time[is_grid],
            "PRED": fc["PRED"].to_numpy()[is_grid],
            "IPRED": fc["IPRED"].to_numpy()[is_grid],
            "PI_LO": fc["PI_LO"].to_numpy()[is_grid],
            "PI_HI": fc["PI_HI"].to_numpy()[is_grid],
        }
    )
    obs = ((table["EVID"] == 0) & (table["MDV"] == 0) & table["DV"].notna()).to_numpy()
    obs = obs & ~is_grid
    used = np.ones(obs.sum(), dtype=bool)
    if until_h is not None:
        used = time[obs] <= until_h
    observations = pd.DataFrame(
        {
            "time_h": time[obs],
            "DV": table["DV"].to_numpy()[obs],
            "IPRED": fc["IPRED"].to_numpy()[obs],
            "used": np.where(used, "used", "not used"),
        }
    )
    return Twin(
        patient=patient,
        parameters=parameters_table(model, individual),
        curves=curves,
        observations=observations,
        converged=bool(individual["converged"].iloc[0]),
        n_observations=int(individual["n_observations"].iloc[0]),
        dv_unit=model.data.dv_unit,
        dataset=own,
        posterior=post,
    )


def parameters_table(model, individual: pd.DataFrame) -> pd.DataFrame:
    """One row per parameter: the typical value, the patient's value and eta with its SE."""
    row = individual.iloc[0]
    etas = set(model.eta_names())
    out = []
    for name, typical in model.parameters.items():
        eta = row.get(f"eta_{name}") if name in etas else None
        se = row.get(f"se_eta_{name}") if name in etas else None
        out.append(
            {
                "Parameter": name,
                "Typical (reference covariates)": float(typical),
                "Patient": float(row[name]),
                "eta": None if eta is None else float(eta),
                "SE of eta": None if se is None else float(se),
            }
        )
    return pd.DataFrame(out)


def twin_chart(twin: Twin) -> alt.LayerChart:
    """Observations with PRED, IPRED and the 90 % prediction interval over time."""
    unit = twin.dv_unit
    base = alt.Chart(twin.curves).encode(x=alt.X("time_h:Q", title="Time (h)"))
    band = base.mark_area(opacity=0.25, color="#4c78a8").encode(
        y=alt.Y("PI_LO:Q", title=f"Concentration ({unit})"),
        y2="PI_HI:Q",
        tooltip=[
            alt.Tooltip("time_h:Q", format=".3g"),
            alt.Tooltip("PI_LO:Q", format=".3g", title="5th percentile"),
            alt.Tooltip("PI_HI:Q", format=".3g", title="95th percentile"),
        ],
    )
    long = twin.curves.melt(
        id_vars="time_h", value_vars=["PRED", "IPRED"], var_name="curve", value_name="value"
    )
    lines = (
        alt.Chart(long)
        .mark_line()
        .encode(
            x="time_h:Q",
            y="value:Q",
            color=alt.Color(
                "curve:N",
                title=None,
                scale=alt.Scale(domain=["PRED", "IPRED"], range=["#999999", "#e45756"]),
                legend=alt.Legend(orient="bottom"),
            ),
            strokeDash=alt.StrokeDash(
                "curve:N",
                scale=alt.Scale(domain=["PRED", "IPRED"], range=[[4, 3], [1, 0]]),
                legend=None,
            ),
        )
    )
    points = (
        alt.Chart(twin.observations)
        .mark_point(filled=True, size=60, color="black")
        .encode(
            x="time_h:Q",
            y="DV:Q",
            shape=alt.Shape(
                "used:N",
                title="Observation",
                scale=alt.Scale(domain=["used", "not used"], range=["circle", "triangle"]),
                legend=alt.Legend(orient="bottom"),
            ),
            tooltip=[
                alt.Tooltip("time_h:Q", format=".3g"),
                alt.Tooltip("DV:Q", format=".3g"),
                alt.Tooltip("IPRED:Q", format=".3g"),
                "used:N",
            ],
        )
    )
    return (band + lines + points).resolve_scale(color="independent", shape="independent")


# ------------------------------------------------------------------ dose
def target(metric: str, lo: float, hi: float) -> Target:
    """A target range, checked as ``insilico twin --target`` checks it."""
    if metric not in TARGET_METRICS:
        raise SpecError("target metric", metric, f"one of {list(TARGET_METRICS)}")
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo < hi):
        raise SpecError("target range", f"{lo:g}..{hi:g}", "0 <= low < high (finite)")
    return Target(metric, float(lo), float(hi))


def recommend(model, twin: Twin, template: str, goal: Target) -> dict:
    """The dose of ``template`` (``X`` for the dose in mg) most likely to meet ``goal``, from
    the patient's last record on: ``regimen``, ``dose_mg``, ``probability``, ``median`` and
    ``candidates``."""
    template = template.strip()
    r = recommend_dose(
        model, twin.dataset, 0, template, goal, posterior=twin.posterior, n_draws=DOSE_DRAWS
    )
    r["regimen"] = template.replace("X", f"{r['dose_mg']:.4g}")
    return r


# ------------------------------------------------------------------ fit directories
@dataclass(frozen=True)
class FitDirectory:
    """What an ``insilico fit`` directory holds, read for display."""

    path: Path
    summary: dict
    estimates: pd.DataFrame
    images: dict[str, bytes]


def read_fit_dir(path: str) -> FitDirectory:
    """Read a fit directory (``summary.json``, ``estimates.csv`` and the plots present)."""
    text = (path or "").strip()
    if not text:
        raise SpecError("fit directory", text, "the path of a directory written by insilico fit")
    p = Path(text).expanduser()
    if not p.is_dir():
        raise SpecError("fit directory", text, "an existing directory written by insilico fit")
    missing = [name for name in FIT_REQUIRED if not (p / name).is_file()]
    if missing:
        raise SpecError(
            "fit directory",
            text,
            f"a complete insilico fit directory (missing {', '.join(missing)})",
        )
    try:
        summary = json.loads((p / "summary.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SpecError("summary.json", str(p / "summary.json"), f"readable JSON ({exc})") from None
    if not isinstance(summary, dict):
        raise SpecError("summary.json", str(p / "summary.json"), "a JSON object")
    try:
        estimates = pd.read_csv(p / "estimates.csv")
    except (OSError, ValueError) as exc:
        raise SpecError("estimates.csv", str(p / "estimates.csv"), f"a CSV table ({exc})") from None
    images = {name: (p / name).read_bytes() for name in FIT_IMAGES if (p / name).is_file()}
    return FitDirectory(path=p, summary=summary, estimates=estimates, images=images)


def fit_headline(summary: dict) -> dict[str, str]:
    """The summary's key figures as display text."""

    def num(key, fmt="{:.3f}"):
        v = summary.get(key)
        return fmt.format(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else "–"

    converged = summary.get("converged")
    return {
        "OFV": num("ofv"),
        "AIC": num("aic"),
        "BIC": num("bic"),
        "Converged": "yes" if converged is True else ("no" if converged is False else "–"),
        "Subjects": num("subjects", "{:.0f}"),
        "Observations": num("observations", "{:.0f}"),
    }
