"""Per compound x arm summary: exposure percentiles, responder rate and AE incidence with CIs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

#: Two-sided 95 % normal quantile.
Z95 = 1.959963984540054

#: Exposure columns summarized by percentiles in summary.parquet.
EXPOSURE_COLUMNS = {
    "cmax": "cmax_mg_per_L",
    "auc_last": "auc_last_mg_h_per_L",
    "trough": "trough_mg_per_L",
}
SUMMARY_PERCENTILES = (5, 50, 95)


def wilson_interval(k, n, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a binomial proportion ``k / n``.

    ``(p + z²/2n ± z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)`` (Wilson 1927,
    doi:10.1080/01621459.1927.10502953). NaN where ``n == 0``.
    """
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        denom = 1.0 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
        lo = np.where(n > 0, np.clip(centre - half, 0.0, 1.0), np.nan)
        hi = np.where(n > 0, np.clip(centre + half, 0.0, 1.0), np.nan)
    return lo, hi


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


def summarize_patients(
    patients: pd.DataFrame,
    adverse_events: list[str],
    arms: list[tuple[str, str, str]] | None = None,
) -> pd.DataFrame:
    """One row per arm: ``arms`` (name, compound id, regimen) in that order, else the arms in
    order of first appearance. An arm without patients (parallel design, tiny cohort) has
    ``n = 0`` and NaN statistics.

    Columns: ``arm``, ``compound_id``, ``regimen``, ``n``, ``<exposure>_p5/_p50/_p95``
    (linear-interpolation percentiles of the patient values), ``biomarker_change_pct_p50``,
    ``responder_n/_events/_rate/_ci_low/_ci_high`` and ``ae_<name>_n/_events/_rate/_ci_low/
    _ci_high`` (Wilson 95 % intervals).
    """
    if arms is None:
        first = patients.drop_duplicates("arm")
        arms = list(zip(first["arm"], first["compound_id"], first["regimen"], strict=True))
    groups = dict(list(patients.groupby("arm", sort=False)))
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
        out.append(row)
    return pd.DataFrame(out)


def format_summary(summary: pd.DataFrame) -> str:
    """A compact text table for the terminal."""
    cols = {
        "arm": "arm",
        "n": "n",
        "cmax_p50": "Cmax p50 mg/L",
        "auc_last_p50": "AUCtau p50",
        "trough_p50": "Ctrough p50",
    }
    table = summary[[c for c in cols if c in summary]].rename(columns=cols).copy()

    def pct(r, prefix):
        return (
            f"{100 * r[prefix + '_rate']:.1f}% "
            f"[{100 * r[prefix + '_ci_low']:.1f}-{100 * r[prefix + '_ci_high']:.1f}]"
        )

    if "responder_rate" in summary:
        table["responders (95% CI)"] = [pct(r, "responder") for _, r in summary.iterrows()]
    for c in summary.columns:
        if c.startswith("ae_") and c.endswith("_rate"):
            prefix = c[: -len("_rate")]
            table[f"{prefix[3:]} (95% CI)"] = [pct(r, prefix) for _, r in summary.iterrows()]
    with pd.option_context(
        "display.width", 200, "display.max_columns", 50, "display.float_format", "{:.4g}".format
    ):
        return table.to_string(index=False)
