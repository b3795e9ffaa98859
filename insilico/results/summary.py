"""Per compound x arm summary: exposure percentiles, responder rate and AE incidence with CIs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from insilico.endpoints.stats import Z95, wilson_interval

__all__ = [
    "EXPOSURE_COLUMNS",
    "Z95",
    "arm_groups",
    "format_summary",
    "replicate_note",
    "summarize_patients",
    "wilson_interval",
]

#: Exposure columns summarized by percentiles in summary.parquet. ``auc_last``: AUC over the
#: last dosing interval (NaN for a single dose); ``auc_inf``: AUC from 0 to infinity of a
#: single dose (NaN for multiple doses).
EXPOSURE_COLUMNS = {
    "cmax": "cmax_mg_per_L",
    "auc_last": "auc_last_mg_h_per_L",
    "auc_inf": "auc_inf_mg_h_per_L",
    "auc_total": "auc_total_mg_h_per_L",
    "trough": "trough_mg_per_L",
}
#: Labels of the ICH E14 categorical QT endpoints in the printed safety table.
SAFETY_LABELS = {
    "ae_qt_qtc_gt450": "QTc>450ms",
    "ae_qt_qtc_gt480": "QTc>480ms",
    "ae_qt_qtc_gt500": "QTc>500ms",
    "ae_qt_dqtc_gt30": "dQTc>30ms",
    "ae_qt_dqtc_gt60": "dQTc>60ms",
    "ae_serious_any": "any serious AE",
    "ae_any": "any AE",
}
SUMMARY_PERCENTILES = (5, 50, 95)


def _rate(values: pd.Series, prefix: str) -> dict[str, float]:
    v = values.dropna().astype(bool).to_numpy()
    n, k = v.size, int(v.sum())
    lo, hi = wilson_interval(k, n)
    return {
        f"{prefix}_n": n,
        f"{prefix}_events": k,
        f"{prefix}_rate": k / n if n else math.nan,
        f"{prefix}_ci_low": float(lo),
        f"{prefix}_ci_high": float(hi),
    }


def arm_groups(patients: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Rows per arm. When each arm's rows are contiguous (the engine's plan order: arm, then
    patient id) these are row slices, which pandas does not copy (copy-on-write); otherwise a
    ``groupby`` (which copies). Same rows in the same order either way."""
    arm = patients["arm"]
    if len(arm) == 0:
        return {}
    codes, uniques = pd.factorize(arm, sort=False)
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    if starts.size == len(uniques):  # one contiguous run per arm
        ends = np.r_[starts[1:], len(codes)]
        return {
            str(uniques[codes[a]]): patients.iloc[a:b] for a, b in zip(starts, ends, strict=True)
        }
    return {str(k): g for k, g in patients.groupby("arm", sort=False, observed=True)}


def summarize_patients(
    patients: pd.DataFrame,
    adverse_events: list[str],
    arms: list[tuple[str, str, str]] | None = None,
    rate_columns: list[str] | None = None,
) -> pd.DataFrame:
    """One row per arm: ``arms`` (name, compound id, regimen) in that order, else the arms in
    order of first appearance. An arm without patients (parallel design, tiny cohort) has
    ``n = 0`` and NaN statistics.

    Columns: ``arm``, ``compound_id``, ``regimen``, ``n``, ``<exposure>_p5/_p50/_p95``
    (linear-interpolation percentiles of the patient values, :data:`EXPOSURE_COLUMNS`; NaN
    where the arm has no such value, e.g. ``auc_last`` of a single dose),
    ``biomarker_change_pct_p50`` (% of baseline),
    ``responder_n/_events/_rate/_ci_low/_ci_high`` and ``ae_<name>_n/_events/_rate/_ci_low/
    _ci_high`` (Wilson 95 % intervals); ``rate_columns`` adds ``<column>_n/...`` for more
    yes/no columns (named as they are). Missing exposure columns are skipped.
    """
    if arms is None:
        first = patients.drop_duplicates("arm")
        arms = list(zip(first["arm"], first["compound_id"], first["regimen"], strict=True))
    groups = arm_groups(patients)
    out = []
    for arm, compound_id, regimen in arms:
        g = groups.get(arm, patients.iloc[:0])
        row: dict[str, object] = {
            "arm": arm,
            "compound_id": compound_id,
            "regimen": regimen,
            "n": len(g),
        }
        for short, col in EXPOSURE_COLUMNS.items():
            if col not in g:
                continue
            vals = g[col].to_numpy(dtype=float)
            defined = vals.size and not np.isnan(vals).all()
            for q in SUMMARY_PERCENTILES:
                row[f"{short}_p{q}"] = float(np.percentile(vals, q)) if defined else math.nan
        if "biomarker_change_pct" in g:
            vals = g["biomarker_change_pct"].to_numpy(dtype=float)
            row["biomarker_change_pct_p50"] = float(np.median(vals)) if vals.size else math.nan
        if "responder" in g:
            row.update(_rate(g["responder"], "responder"))
        for name in adverse_events:
            row.update(_rate(g[f"ae_{name}"], f"ae_{name}"))
        for col in rate_columns or ():
            if col in g and col != "responder":
                row.update(_rate(g[col], col))
        out.append(row)
    return pd.DataFrame(out)


def _pct(r: pd.Series, prefix: str) -> str:
    rate = r.get(f"{prefix}_rate")
    if rate is None or pd.isna(rate):
        return "-"
    return (
        f"{100 * rate:.1f}% [{100 * r[prefix + '_ci_low']:.1f}-{100 * r[prefix + '_ci_high']:.1f}]"
    )


def _ci(v: float, lo: float, hi: float, fmt: str = "{:.3g}") -> str:
    if pd.isna(v):
        return "-"
    return f"{fmt.format(v)} [{fmt.format(lo)}, {fmt.format(hi)}]"


def _number(v: float) -> str:
    return "-" if pd.isna(v) else f"{v:.4g}"


def _change_label(summary: pd.DataFrame, base: str) -> str:
    """``<name> <unit>``: the unit of a change endpoint's mean (``<name>_unit``), ``% of
    baseline`` for the biomarker change at the primary time."""
    if base == "biomarker_change_pct":
        return "biomarker change % of baseline"
    col = f"{base}_unit"
    if col in summary and summary[col].notna().any():
        return f"{base} {summary[col].dropna().iloc[0]}"
    return base


def _efficacy_table(summary: pd.DataFrame) -> pd.DataFrame:
    cols = {
        "rank": "rank",
        "arm": "arm",
        "n": "n",
        "cmax_p50": "Cmax p50 mg/L",
    }
    table = summary[[c for c in cols if c in summary]].rename(columns=cols).copy()
    # AUC over the last dosing interval (multiple doses) and AUC 0-inf (single doses)
    for col, label in (
        ("auc_last_p50", "AUCtau p50 mg*h/L"),
        ("auc_inf_p50", "AUC0-inf p50 mg*h/L"),
    ):
        if col in summary and summary[col].notna().any():
            table[label] = [_number(v) for v in summary[col]]
    rates = [c[: -len("_rate")] for c in summary.columns if c.endswith("_rate")]
    rates = [c for c in rates if f"{c}_ci_low" in summary and not c.startswith("herg_margin")]
    for prefix in [c for c in rates if not c.startswith(("ae_", "response_no_"))]:
        table[f"{prefix} (95% CI)"] = [_pct(r, prefix) for _, r in summary.iterrows()]
    means = [
        c
        for c in summary.columns
        if c.endswith("_mean") and f"{c[:-5]}_ci_low" in summary and not c.startswith("ddqtc")
    ]
    if (
        len(means) > 1 and "biomarker_change_pct_mean" in means
    ):  # the primary-time change duplicates a declared change endpoint
        means.remove("biomarker_change_pct_mean")
    for c in summary.columns:
        if c in means:
            base = c[:-5]
            table[f"{_change_label(summary, base)} mean (95% CI)"] = [
                _ci(r[c], r[f"{base}_ci_low"], r[f"{base}_ci_high"]) for _, r in summary.iterrows()
            ]
    for c in [c for c in summary.columns if c.endswith("_diff")]:
        base = c[: -len("_diff")]
        table[f"{base.replace('_vs_', ' vs ')} diff (95% CI)"] = [
            "-"
            if pd.isna(r[c])
            else f"{100 * r[c]:+.1f} [{100 * r[base + '_diff_ci_low']:+.1f},"
            f"{100 * r[base + '_diff_ci_high']:+.1f}] p={r[base + '_p_value']:.2g}"
            for _, r in summary.iterrows()
        ]
    if "primary_rate_trial_low" in summary:
        table["primary, one trial (95% range)"] = [
            "-"
            if pd.isna(r["primary_rate_trial_low"])
            else f"{100 * r['primary_rate_trial_low']:.1f}-"
            f"{100 * r['primary_rate_trial_high']:.1f}%"
            for _, r in summary.iterrows()
        ]
    if "power" in summary:
        table["power (95% CI)"] = [
            "-"
            if pd.isna(r["power"])
            else f"{100 * r['power']:.0f}% "
            f"[{100 * r['power_ci_low']:.0f}-{100 * r['power_ci_high']:.0f}]"
            for _, r in summary.iterrows()
        ]
    if "response_no_sae_rate" in summary:
        table["response w/o serious AE (95% CI)"] = [
            _pct(r, "response_no_sae") for _, r in summary.iterrows()
        ]
    if "response_no_ae_rate" in summary:
        table["response w/o any AE (95% CI)"] = [
            _pct(r, "response_no_ae") for _, r in summary.iterrows()
        ]
    return table


def _safety_table(summary: pd.DataFrame) -> pd.DataFrame | None:
    events = [
        c[: -len("_rate")] for c in summary.columns if c.startswith("ae_") and c.endswith("_rate")
    ]
    if not events and "herg_margin_p50" not in summary:
        return None
    table = summary[["arm"]].copy()
    for prefix in events:
        label = SAFETY_LABELS.get(prefix, prefix.removeprefix("ae_"))
        table[f"{label} (95% CI)"] = [_pct(r, prefix) for _, r in summary.iterrows()]
    if "herg_margin_p50" in summary:
        table["hERG margin p50 (p5-p95)"] = [
            "-"
            if pd.isna(r["herg_margin_p50"])
            else f"{r['herg_margin_p50']:.3g} "
            f"({r['herg_margin_p5']:.3g}-{r['herg_margin_p95']:.3g})"
            for _, r in summary.iterrows()
        ]
    if "ddqtc_ms_mean" in summary:
        table["ddQTc ms mean (95% CI)"] = [
            _ci(r["ddqtc_ms_mean"], r["ddqtc_ms_ci_low"], r["ddqtc_ms_ci_high"], "{:.1f}")
            + (" positive" if r["ddqtc_positive"] else "")
            for _, r in summary.iterrows()
        ]
    return table


def replicate_note(summary: pd.DataFrame) -> str | None:
    """What a summary of several replicate trials pools, and where the per-trial results are;
    None for a single trial (or a summary without ``n_trials``)."""
    if "n_trials" not in summary or summary.empty:
        return None
    n_trials = int(summary["n_trials"].max())
    if n_trials <= 1:
        return None
    per = ""
    if "n_patients_per_trial" in summary:
        per = f" of {int(summary['n_patients_per_trial'].max()):,} patients each"
    where = []
    if "primary_rate_trial_low" in summary:
        where.append(
            "the range of the primary rate in 95 % of single trials "
            "(primary_rate_trial_low/_high in summary.parquet)"
        )
    if "power" in summary:
        where.append("power, the fraction of the trials that succeed")
    where.append("each patient's trial in patients.parquet (column 'trial')")
    return (
        f"Pooled over {n_trials:,} replicate trials{per}: n, every rate, mean, 95 % CI, "
        "comparison and best dose use the patients of all trials together (intervals of one "
        "trial that large, narrower than a single trial's). "
        f"Per replicate trial: {'; '.join(where)}."
    )


def format_summary(summary: pd.DataFrame) -> str:
    """The scorecard for the terminal: an efficacy table (exposure: Cmax, AUC over the last
    dosing interval or, for a single dose, AUC from 0 to infinity; every yes/no endpoint with
    its 95 % interval, mean changes with their unit, the comparison with the comparator, the
    single-trial range of the primary rate and the power of replicate trials, P(response
    without serious AE), rank), a safety table (every adverse event, the ICH E14 categorical
    QT endpoints, hERG margin, mean ddQTc) and the best dose per compound of a dose scan. With
    replicate trials a first line says that the tables pool them (:func:`replicate_note`)."""
    note = replicate_note(summary)
    with pd.option_context(
        "display.width",
        250,
        "display.max_columns",
        60,
        "display.max_colwidth",
        60,
        "display.float_format",
        "{:.4g}".format,
    ):
        text = (note + "\n\n" if note else "") + "Efficacy\n"
        text += _efficacy_table(summary).to_string(index=False)
        safety = _safety_table(summary)
        if safety is not None:
            text += "\n\nSafety\n" + safety.to_string(index=False)
    if "best_dose_mg" in summary:
        best = summary.dropna(subset=["best_dose_mg"]).drop_duplicates("compound_id")
        for _, r in best.iterrows():
            text += (
                f"\nbest dose {r['compound_id']}: {r['best_dose_mg']:g} mg "
                f"(95 % confidence set of the best dose: {r['best_dose_set_mg']} mg; "
                "on P(response without any adverse event); "
                "Bonferroni-adjusted comparisons with the best"
                + (", pooled over the replicate trials" if note else "")
                + ")"
            )
    return text
