"""A run's results as the app shows them: scorecard, ranking, units, plots' data.

Runs are read through :mod:`insilico.results.access` (safe resolution, tables read once);
one patient is simulated again by :mod:`insilico.trial.resimulate`; nothing writes. The
summary is rendered *generically* so that new summary columns appear without app changes:

- every ``<prefix>_rate`` with ``<prefix>_ci_low`` and ``<prefix>_ci_high`` is a proportion with
  its 95 % interval;
- every other numeric column ``<name>`` (or ``<name>_estimate``/``_mean``/``_median``/``_p50``)
  with ``<name>_ci_low`` and ``<name>_ci_high`` is an estimate with its 95 % interval.

Known prefixes get pretty labels (:data:`KNOWN_LABELS`); others keep their raw names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import yaml

from insilico.errors import SpecError
from insilico.results.access import RunData, read_patient_columns

#: Exposure columns of patients.parquet shown as distributions (column -> label with unit).
EXPOSURE_LABELS = {
    "cmax_mg_per_L": "Cmax (mg/L)",
    "auc_last_mg_h_per_L": "AUC over the last dosing interval (mg·h/L)",
    "auc_inf_mg_h_per_L": "AUC 0–inf, single dose (mg·h/L)",
    "trough_mg_per_L": "Ctrough (mg/L)",
    "cavg_last_mg_per_L": "Cavg over the last dosing interval (mg/L)",
}

#: Pretty labels of known summary prefixes (anything else keeps its raw name).
KNOWN_LABELS = {
    "responder": "Responder rate",
    "response_without_sae": "P(response without serious AE)",
    "response_no_sae": "P(response without serious AE)",
    "response_no_ae": "P(response without any AE)",
    "responder_no_sae": "P(response without serious AE)",
    "p_response_no_sae": "P(response without serious AE)",
    "responder_without_sae": "P(response without serious AE)",
    "success": "P(response without serious AE)",
    "herg_margin": "hERG margin (IC50 / Cmax,u)",
    "herg_safety_margin": "hERG margin (IC50 / Cmax,u)",
    "qtc_prolongation": "QTc prolongation",
    "dili": "Drug-induced liver injury",
    "dropout": "Dropout",
    "serious_ae": "Any serious AE",
    "any_sae": "Any serious AE",
    "sae": "Any serious AE",
    "ae_serious_any": "Any serious AE",
    "ae_any": "Any adverse event",
    "ae_dili": "AE: drug-induced liver injury",
    "ae_qt_qtc_gt450": "QT: QTc > 450 ms",
    "ae_qt_qtc_gt480": "QT: QTc > 480 ms",
    "ae_qt_qtc_gt500": "QT: QTc > 500 ms",
    "ae_qt_dqtc_gt30": "QT: ΔQTc > 30 ms",
    "ae_qt_dqtc_gt60": "QT: ΔQTc > 60 ms",
    "herg_margin_lt30": "hERG margin < 30",
    "ddqtc_ms": "ΔΔQTc, mean",
    "time_to_response_median_h": "Median time to response",
    "time_to_response": "Responded by the end",
    "biomarker_change_pct": "Biomarker change, mean",
}
#: Per-patient distributions shown in the scorecard as ``median (5th–95th percentile)``
#: when the summary has ``<prefix>_p5/_p50/_p95`` (prefix -> label with unit).
DISTRIBUTION_LABELS = {
    "herg_margin": "hERG margin (IC50 / Cmax,u), median (5–95 % of patients)",
}

#: Unit suffixes of column names -> display units (longest first).
UNIT_SUFFIXES = (
    ("_mg_h_per_L", "mg·h/L"),
    ("_mg_per_L", "mg/L"),
    ("_L_per_h", "L/h"),
    ("_per_h", "1/h"),
    ("_mL_min_1_73m2", "mL/min/1.73 m²"),
    ("_mL_per_min", "mL/min"),
    ("_mg_dL", "mg/dL"),
    ("_g_per_L", "g/L"),
    ("_kg_m2", "kg/m²"),
    ("_years", "years"),
    ("_kg", "kg"),
    ("_cm", "cm"),
    ("_m2", "m²"),
    ("_mg", "mg"),
    ("_ms", "ms"),
    ("_pct", "%"),
    ("_h", "h"),
    ("_L", "L"),
    ("_nM", "nM"),
    ("_uM", "µM"),
)

#: Columns that can hold the dose of a dose-scan arm.
DOSE_COLUMNS = ("dose_mg", "dose_scan_dose_mg", "dose_scan_dose")


#: Units of columns whose suffix does not say enough.
KNOWN_UNITS = {"biomarker_change_pct": "% of baseline"}


def unit_of(name: str) -> str:
    """Display unit from a column name's suffix (``cmax_mg_per_L`` -> ``mg/L``); '' if none."""
    if name in KNOWN_UNITS:
        return KNOWN_UNITS[name]
    base = re.sub(r"_(p\d+|ci_low|ci_high|rate|estimate|mean|median|last|total)$", "", name)
    for suffix, unit in UNIT_SUFFIXES:
        if base.endswith(suffix) or f"{suffix}_" in base + "_":
            return unit
    return ""


# ------------------------------------------------------------------ scorecard
@dataclass(frozen=True)
class Metric:
    """A summary quantity with a 95 % interval.

    ``kind`` is ``rate`` (a proportion, shown in %), ``diff`` (a difference of proportions,
    shown in percentage points) or ``estimate`` (shown in ``unit``).
    """

    prefix: str
    label: str
    kind: str
    value: str
    ci_low: str
    ci_high: str
    unit: str
    higher_is_better: bool

    @property
    def scale(self) -> float:
        """Display factor: 100 for proportions and their differences, else 1."""
        return 100.0 if self.kind in ("rate", "diff") else 1.0


def _label(prefix: str) -> str:
    if prefix in KNOWN_LABELS:
        return KNOWN_LABELS[prefix]
    m = re.match(r"^(.*)_vs_placebo_diff$", prefix)
    if m:
        return f"{_label(m.group(1))} − placebo"
    if prefix.startswith("ae_"):
        name = prefix[3:].replace("_", " ")
        return f"AE: {name}"
    return prefix


def _higher_is_better(prefix: str) -> bool:
    p = prefix.lower()
    if re.search(r"_lt\d+$", p):  # "herg_margin_lt30": patients below a safety threshold
        return False
    if any(k in p for k in ("no_sae", "without", "success", "margin")):
        return True
    if p.startswith(
        ("ae_", "sae", "any_sae", "dropout", "dili", "qtc", "tox", "ddqtc")
    ) or p.endswith("_lt30"):
        return False
    return True


def summary_metrics(summary: pd.DataFrame) -> list[Metric]:
    """Quantities with 95 % intervals in a summary table, rates first, in column order."""
    cols = list(summary.columns)
    have = set(cols)
    rates, estimates = [], []
    for c in cols:
        if not c.endswith("_ci_low"):
            continue
        prefix = c[: -len("_ci_low")]
        hi = f"{prefix}_ci_high"
        if hi not in have:
            continue
        if f"{prefix}_rate" in have:
            rates.append(
                Metric(
                    prefix,
                    _label(prefix),
                    "rate",
                    f"{prefix}_rate",
                    c,
                    hi,
                    "%",
                    _higher_is_better(prefix),
                )
            )
            continue
        for cand in (prefix, *(f"{prefix}_{s}" for s in ("estimate", "mean", "median", "p50"))):
            if cand in have and pd.api.types.is_numeric_dtype(summary[cand]):
                diff = prefix.endswith("_diff") and _is_rate_prefix(prefix, have)
                unit = _declared_unit(summary, prefix) or unit_of(prefix)
                estimates.append(
                    Metric(
                        prefix,
                        _label(prefix),
                        "diff" if diff else "estimate",
                        cand,
                        c,
                        hi,
                        "% points" if diff else unit,
                        _higher_is_better(prefix),
                    )
                )
                break
    return rates + estimates


def _declared_unit(summary: pd.DataFrame, prefix: str) -> str:
    """The unit the summary states for ``prefix`` (``<prefix>_unit``, e.g. ``% of baseline``
    or the biomarker's unit for a change endpoint); '' if none."""
    col = f"{prefix}_unit"
    if col not in summary:
        return ""
    values = summary[col].dropna()
    return str(values.iloc[0]) if len(values) else ""


def replicate_note(summary: pd.DataFrame) -> str | None:
    """What a summary of several replicate trials pools and where the per-trial results are
    (:func:`insilico.results.summary.replicate_note`); None for a single trial."""
    from insilico.results.summary import replicate_note as note

    return note(summary)


def _is_rate_prefix(prefix: str, have: set[str]) -> bool:
    """A difference of a rate (``responder_vs_placebo_diff`` with ``responder_rate``)."""
    base = re.sub(r"_vs_\w+_diff$|_diff$", "", prefix)
    return f"{base}_rate" in have


def _fmt(x: float, kind: str) -> str:
    if x is None or not np.isfinite(x):
        return "–"
    if kind in ("rate", "diff"):
        return f"{100 * x:.1f}"
    ax = abs(x)
    return f"{x:.3g}" if ax < 1000 else f"{x:,.0f}"


def format_with_ci(value: float, lo: float, hi: float, kind: str) -> str:
    """``35.0 % (26.4–44.7)`` for a rate, ``12.3 (8.1–17.0)`` for an estimate."""
    if value is None or not np.isfinite(value):
        return "–"
    unit = " %" if kind == "rate" else ""
    return f"{_fmt(value, kind)}{unit} ({_fmt(lo, kind)}–{_fmt(hi, kind)})"


ID_COLUMNS = ("arm", "compound_id", "regimen", "n")


def scorecard(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per arm: identifiers, then every metric as ``value (95 % CI)`` text.

    Column names carry the unit: ``Responder rate, % (95 % CI)``.
    """
    out = summary[[c for c in ID_COLUMNS if c in summary]].copy()
    out = out.rename(columns={"arm": "Arm", "compound_id": "Compound", "regimen": "Regimen"})
    out = out.rename(columns={"n": "n patients"})
    for c in DOSE_COLUMNS:
        if c in summary:
            out["Dose (mg)"] = summary[c]
            break
    for prefix, label in DISTRIBUTION_LABELS.items():
        cols = [f"{prefix}_p{q}" for q in (50, 5, 95)]
        if all(c in summary for c in cols):
            out[label] = [
                "–"
                if not np.isfinite(v)
                else f"{_fmt(v, 'estimate')} ({_fmt(lo, 'estimate')}–{_fmt(hi, 'estimate')})"
                for v, lo, hi in zip(*(summary[c].astype(float) for c in cols), strict=True)
            ]
    for m in summary_metrics(summary):
        unit = f", {m.unit}" if m.unit else ""
        out[f"{m.label}{unit} (95 % CI)"] = [
            format_with_ci(v, lo, hi, m.kind)
            for v, lo, hi in zip(
                summary[m.value], summary[m.ci_low], summary[m.ci_high], strict=True
            )
        ]
        pcol = f"{m.prefix}_p_value"
        if pcol in summary:
            out[f"{m.label}: p-value"] = [_fmt(float(x), "estimate") for x in summary[pcol]]
    return out


def scorecard_by_metric(summary: pd.DataFrame) -> pd.DataFrame:
    """The scorecard turned: one row per quantity, one column per arm (for many metrics)."""
    card = scorecard(summary)
    return (
        card.set_index("Arm").drop(columns=["Compound", "Regimen"], errors="ignore").T.astype(str)
    )


def scorecard_long(summary: pd.DataFrame) -> pd.DataFrame:
    """Long table for plots: ``arm, compound_id, regimen, metric, kind, value, ci_low, ci_high``
    (rates as fractions)."""
    parts = []
    for m in summary_metrics(summary):
        parts.append(
            pd.DataFrame(
                {
                    "arm": summary["arm"].astype(str),
                    "compound_id": summary["compound_id"].astype(str),
                    "regimen": summary["regimen"].astype(str),
                    "metric": m.label,
                    "kind": m.kind,
                    "higher_is_better": m.higher_is_better,
                    "value": summary[m.value].astype(float),
                    "ci_low": summary[m.ci_low].astype(float),
                    "ci_high": summary[m.ci_high].astype(float),
                }
            )
        )
    cols = ["arm", "compound_id", "regimen", "metric", "kind", "higher_is_better", "value"]
    cols += ["ci_low", "ci_high"]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)


def default_ranking_metric(summary: pd.DataFrame) -> Metric | None:
    """The net benefit, P(response without any adverse event), if present (what the run ranks
    compounds and selects doses on), else without a serious one, else the responder rate,
    else the first metric."""
    metrics = summary_metrics(summary)
    for prefix in ("response_no_ae", "response_no_sae"):
        for m in metrics:
            if m.prefix == prefix:
                return m
    for m in metrics:
        if m.prefix == "responder":
            return m
    return metrics[0] if metrics else None


def rank_arms(
    summary: pd.DataFrame,
    prefix: str,
    higher_is_better: bool | None = None,
    include_placebo: bool = False,
) -> pd.DataFrame:
    """Arms ranked on one metric (ties: the lower bound of the interval, then the arm name).

    Returns columns ``rank``, ``arm``, ``compound_id``, ``regimen``, ``value``, ``ci_low``,
    ``ci_high``; arms with a missing value come last without a rank.
    """
    metric = next((m for m in summary_metrics(summary) if m.prefix == prefix), None)
    if metric is None:
        raise SpecError(
            "ranking metric", prefix, f"one of {[m.prefix for m in summary_metrics(summary)]}"
        )
    hib = metric.higher_is_better if higher_is_better is None else higher_is_better
    df = pd.DataFrame(
        {
            "arm": summary["arm"].astype(str),
            "compound_id": summary["compound_id"].astype(str),
            "regimen": summary["regimen"].astype(str),
            "value": summary[metric.value].astype(float),
            "ci_low": summary[metric.ci_low].astype(float),
            "ci_high": summary[metric.ci_high].astype(float),
        }
    )
    if not include_placebo:
        df = df[df["compound_id"] != "placebo"]
    sign = -1.0 if hib else 1.0
    bound = df["ci_low"] if hib else df["ci_high"]
    df = df.assign(_k1=sign * df["value"], _k2=sign * bound)
    df = df.sort_values(["_k1", "_k2", "arm"], na_position="last", kind="mergesort")
    df = df.drop(columns=["_k1", "_k2"]).reset_index(drop=True)
    rank = pd.array(np.arange(1, len(df) + 1), dtype="Int64")
    rank[df["value"].isna().to_numpy()] = pd.NA
    # pandas-stubs leave extension arrays out of insert's accepted values; pandas takes them
    df.insert(0, "rank", rank)  # type: ignore[arg-type]
    return df


# ------------------------------------------------------------------ bands, exposure, dose scan
def band_quantities(bands: pd.DataFrame) -> list[str]:
    """Quantities in bands.parquet, concentration first."""
    q = bands["quantity"].astype(str).drop_duplicates().tolist()
    return sorted(q, key=lambda s: (s != "conc_mg_per_L", s))


def bands_for(bands: pd.DataFrame, quantity: str, arms: list[str]) -> pd.DataFrame:
    """Rows of one quantity for the given arms (time, percentiles, arm)."""
    b = bands[(bands["quantity"] == quantity) & (bands["arm"].isin(arms))]
    return b.reset_index(drop=True)


def reference_lines(run: RunData) -> pd.DataFrame:
    """Horizontal reference concentrations per arm, total plasma concentration in mg/L.

    ``therapeutic target``: the arm's typical EC50/IC50 of the biomarker model (from the
    manifest; what the simulation used). ``hERG IC50 (total)``: hERG IC50 / fu, the total
    concentration at which the unbound one reaches the hERG IC50, and ``hERG IC50/30``: the
    customary 30-fold safety margin on it (Redfern et al. 2003,
    doi:10.1016/S0008-6363(02)00846-5), when the compound has a measured hERG IC50.
    """
    rows = []
    herg = _herg_by_compound(run.manifest)
    for a in run.manifest.get("arms", []):
        typ = a.get("typical", {}) or {}
        for key in ("ec50_mg_per_L", "ic50_mg_per_L", "sc50_mg_per_L"):
            if typ.get(key):
                rows.append(
                    {
                        "arm": a["name"],
                        "line": "therapeutic target (C50)",
                        "conc_mg_per_L": float(typ[key]),
                    }
                )
                break
        h = herg.get(a.get("compound_id"))
        if h is not None:
            fu = float(typ.get("fu") or 1.0)
            rows.append({"arm": a["name"], "line": "hERG IC50 (total)", "conc_mg_per_L": h / fu})
            rows.append({"arm": a["name"], "line": "hERG IC50 / 30", "conc_mg_per_L": h / fu / 30})
    return pd.DataFrame(rows, columns=["arm", "line", "conc_mg_per_L"])


def _herg_by_compound(manifest: dict) -> dict[str, float]:
    """hERG IC50 in mg/L per compound id: from the manifest's typical values if the engine
    recorded them, else from inline compounds' ``herg_ic50_uM`` and RDKit's MW."""
    out: dict[str, float] = {}
    for a in manifest.get("arms", []):
        typ = a.get("typical", {}) or {}
        if typ.get("herg_ic50_mg_per_L"):
            out[a["compound_id"]] = float(typ["herg_ic50_mg_per_L"])
    comps = manifest.get("spec", {}).get("compounds")
    if isinstance(comps, list):
        need = [c for c in comps if c.get("herg_ic50_uM") and c.get("id") not in out]
        if need:
            from insilico.chem.descriptors import molecular_weight
            from insilico.units import uM_to_mg_per_L

            mw = molecular_weight([c["smiles"] for c in need])
            for c, w in zip(need, mw, strict=True):
                if np.isfinite(w):
                    out[c["id"]] = float(uM_to_mg_per_L(np.array([c["herg_ic50_uM"]]), w)[0])
    return out


def exposure_histograms(run: RunData, n_bins: int = 40) -> pd.DataFrame:
    """Distributions of the exposure metrics per drug arm on log-spaced bins.

    Returns ``metric, label, arm, bin_lo, bin_hi, n, fraction`` (fraction of the arm's patients
    with a positive value; placebo arms and zeros are left out). Bins are shared across arms,
    ``n_bins`` per metric between the smallest and largest positive value.
    """
    cols = ["arm", "compound_id", *EXPOSURE_LABELS]
    df = read_patient_columns(run, cols)
    df = df[df["compound_id"] != "placebo"]
    out = []
    for metric, label in EXPOSURE_LABELS.items():
        if metric not in df:
            continue
        x = df[metric].to_numpy(dtype=float)
        pos = np.isfinite(x) & (x > 0)
        if not pos.any():
            continue
        lo, hi = np.log10(x[pos].min()), np.log10(x[pos].max())
        hi = hi if hi > lo else lo + 1e-6
        edges = np.logspace(lo, hi, n_bins + 1)
        edges[0], edges[-1] = x[pos].min(), max(x[pos].max(), edges[-1])  # exact ends: no loss
        for arm, g in df.loc[pos].groupby("arm", sort=False, observed=True):
            counts, _ = np.histogram(g[metric].to_numpy(dtype=float), bins=edges)
            out.append(
                pd.DataFrame(
                    {
                        "metric": metric,
                        "label": label,
                        "arm": str(arm),
                        "bin_lo": edges[:-1],
                        "bin_hi": edges[1:],
                        "n": counts,
                        "fraction": counts / max(len(g), 1),
                    }
                )
            )
    cols = ["metric", "label", "arm", "bin_lo", "bin_hi", "n", "fraction"]
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=cols)


#: Exposure percentile prefixes of summary.parquet -> label (unit from the patient column).
EXPOSURE_SUMMARY = {
    "cmax": "Cmax (mg/L)",
    "auc_last": "AUC last interval (mg·h/L)",
    "auc_inf": "AUC 0–inf, single dose (mg·h/L)",
    "auc_total": "AUC whole treatment (mg·h/L)",
    "trough": "Ctrough (mg/L)",
    "cavg_last": "Cavg last interval (mg/L)",
    "biomarker_change_pct": "Biomarker change (% of baseline)",
}


def exposure_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Exposure percentiles per arm with labels and units (``Cmax p50 (mg/L)``)."""
    out = pd.DataFrame({"Arm": summary["arm"].astype(str), "n patients": summary["n"]})
    for c in summary.columns:
        m = re.match(r"^(.*)_p(\d+)$", c)
        if not m or not pd.api.types.is_numeric_dtype(summary[c]):
            continue
        prefix, q = m.group(1), m.group(2)
        label = EXPOSURE_SUMMARY.get(prefix)
        if label is None:
            unit = unit_of(prefix)
            label = f"{prefix} ({unit})" if unit else prefix
        name, unit = (label.rsplit(" (", 1) + [""])[:2]
        out[f"{name} p{q}" + (f" ({unit}" if unit else "")] = summary[c].astype(float)
    return out


def with_unit(name: str) -> str:
    """``cmax_mg_per_L`` -> ``cmax_mg_per_L (mg/L)``; names without a unit unchanged."""
    unit = unit_of(name)
    return f"{name} ({unit})" if unit else name


def _fmt_cell(x: object) -> str:
    if isinstance(x, bool | np.bool_):
        return "yes" if x else "no"
    if isinstance(x, float | np.floating):
        return "–" if not np.isfinite(x) else f"{x:.4g}"
    if x is None or x is pd.NA:
        return "–"
    return str(x)


#: Covariates of a patient (the same in every arm).
PATIENT_COVARIATES = ("patient_id", "age_years", "sex", "weight_kg", "egfr_mL_min_1_73m2")


def patient_view(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One patient's rows for display: (covariates: quantity, value) and (per-arm values:
    index quantity with unit, one column per arm), numbers to 4 significant digits."""
    if rows.empty:
        return pd.DataFrame(columns=["quantity", "value"]), pd.DataFrame()
    first = rows.iloc[0]
    cov = pd.DataFrame(
        {
            "quantity": [with_unit(c) for c in PATIENT_COVARIATES if c in rows],
            "value": [_fmt_cell(first[c]) for c in PATIENT_COVARIATES if c in rows],
        }
    )
    skip = set(PATIENT_COVARIATES) | {"arm", "trial"}
    cols = [c for c in rows.columns if c not in skip]
    per_arm = pd.DataFrame(
        {str(r["arm"]): [_fmt_cell(r[c]) for c in cols] for _, r in rows.iterrows()},
        index=[with_unit(c) for c in cols],
    )
    return cov, per_arm


def best_doses(summary: pd.DataFrame) -> dict[str, str]:
    """The library's dose selection per compound (``best_dose_mg``, and the doses not
    distinguishable from it, ``best_dose_set_mg``) as text; {} when the run has none."""
    if "best_dose_mg" not in summary:
        return {}
    out = {}
    for cid, g in summary.groupby("compound_id", sort=False):
        v = pd.to_numeric(g["best_dose_mg"], errors="coerce").dropna()
        if cid == "placebo" or v.empty:
            continue
        best = float(v.iloc[0])
        text = f"{best:g} mg"
        raw = str(g["best_dose_set_mg"].iloc[0]) if "best_dose_set_mg" in g else ""
        others = [d for d in raw.split(",") if d.strip() not in ("", "nan", "None")]
        others = [d.strip() for d in others if float(d) != best]
        how = (
            "on P(response without any adverse event); "
            "Bonferroni-adjusted comparisons with the best"
        )
        if others:
            text += (
                f" (95 % confidence set of the best dose also holds {', '.join(others)} mg; {how})"
            )
        elif raw not in ("", "nan", "None"):
            text += f" (the only dose in the 95 % confidence set of the best; {how})"
        out[str(cid)] = text
    return out


def dose_column(summary: pd.DataFrame) -> str | None:
    """The dose column of a dose-scan summary, or None when the run has no dose scan."""
    for c in DOSE_COLUMNS:
        if c in summary and summary[c].notna().any():
            return c
    return None


def dose_curves(summary: pd.DataFrame) -> pd.DataFrame | None:
    """Rates and estimates against dose, per compound (None without a dose scan).

    Columns ``compound_id, dose_mg, metric, kind, value, ci_low, ci_high``.
    """
    col = dose_column(summary)
    if col is None:
        return None
    long = scorecard_long(summary)
    dose = dict(zip(summary["arm"].astype(str), summary[col].astype(float), strict=True))
    long["dose_mg"] = long["arm"].map(dose)
    long = long[long["dose_mg"].notna() & (long["compound_id"] != "placebo")]
    return long.sort_values(["compound_id", "metric", "dose_mg"]).reset_index(drop=True)


# ------------------------------------------------------------------ one virtual patient


# ------------------------------------------------------------------ compare, downloads
def compare_runs(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Metrics of two runs' summaries side by side for the arms they share.

    Columns ``arm, metric, unit, run_a, run_b, difference`` (rates in percentage points).
    """
    la, lb = scorecard_long(a), scorecard_long(b)
    m = la.merge(lb, on=["arm", "metric", "kind"], suffixes=("_a", "_b"))
    scale = np.where(m["kind"].isin(["rate", "diff"]), 100.0, 1.0)
    out = pd.DataFrame(
        {
            "arm": m["arm"],
            "metric": m["metric"],
            "unit": np.where(
                m["kind"] == "rate", "%", np.where(m["kind"] == "diff", "% points", "")
            ),
            "run_a": m["value_a"] * scale,
            "run_b": m["value_b"] * scale,
        }
    )
    out["difference"] = out["run_b"] - out["run_a"]
    return out


def summary_csv(summary: pd.DataFrame) -> bytes:
    """The summary as CSV (UTF-8); text cells that a spreadsheet would run as a formula
    (``=``, ``+``, ``-``, ``@``) are quoted (:func:`insilico.io.csv_table.spreadsheet_safe`)."""
    from insilico.io.csv_table import spreadsheet_safe

    return spreadsheet_safe(summary).to_csv(index=False).encode("utf-8")


def spec_yaml(manifest: dict) -> str:
    """The run's protocol as YAML (what ``insilico run`` accepts; paths are absolute)."""
    return yaml.safe_dump(manifest["spec"], sort_keys=False, allow_unicode=True)
