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
    "summarize_patients",
    "wilson_interval",
]

#: Exposure columns summarized by percentiles in summary.parquet.
EXPOSURE_COLUMNS = {
    "cmax": "cmax_mg_per_L",
    "auc_last": "auc_last_mg_h_per_L",
    "auc_total": "auc_total_mg_h_per_L",
    "trough": "trough_mg_per_L",
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
    (linear-interpolation percentiles of the patient values), ``biomarker_change_pct_p50``,
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
            for q in SUMMARY_PERCENTILES:
                row[f"{short}_p{q}"] = float(np.percentile(vals, q)) if vals.size else math.nan
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


def _efficacy_table(summary: pd.DataFrame) -> pd.DataFrame:
    cols = {
        "rank": "rank",
        "arm": "arm",
        "n": "n",
        "cmax_p50": "Cmax p50 mg/L",
        "auc_last_p50": "AUCtau p50 mg*h/L",
    }
    table = summary[[c for c in cols if c in summary]].rename(columns=cols).copy()
    rates = [c[: -len("_rate")] for c in summary.columns if c.endswith("_rate")]
    rates = [c for c in rates if f"{c}_ci_low" in summary and not c.startswith("herg_margin")]
    for prefix in [c for c in rates if not c.startswith("ae_") and c != "response_no_sae"]:
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
            table[f"{base} mean (95% CI)"] = [
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
    return table


def _safety_table(summary: pd.DataFrame) -> pd.DataFrame | None:
    events = [
        c[: -len("_rate")] for c in summary.columns if c.startswith("ae_") and c.endswith("_rate")
    ]
    if not events and "herg_margin_p50" not in summary:
        return None
    table = summary[["arm"]].copy()
    for prefix in events:
        label = "any serious AE" if prefix == "ae_serious_any" else prefix.removeprefix("ae_")
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


def format_summary(summary: pd.DataFrame) -> str:
    """The scorecard for the terminal: an efficacy table (exposure, every yes/no endpoint with
    its 95 % interval, mean changes, the comparison with the comparator, power,
    P(response without serious AE), rank), a safety table (every adverse event, hERG margin,
    ddQTc) and the best dose per compound of a dose scan."""
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
        text = "Efficacy\n" + _efficacy_table(summary).to_string(index=False)
        safety = _safety_table(summary)
        if safety is not None:
            text += "\n\nSafety\n" + safety.to_string(index=False)
    if "best_dose_mg" in summary:
        best = summary.dropna(subset=["best_dose_mg"]).drop_duplicates("compound_id")
        for _, r in best.iterrows():
            text += (
                f"\nbest dose {r['compound_id']}: {r['best_dose_mg']:g} mg "
                f"(95 % confidence set of the best dose: {r['best_dose_set_mg']} mg)"
            )
    return text
