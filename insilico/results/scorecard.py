"""The trial scorecard: per compound x arm efficacy, safety and uncertainty, with intervals.

One row per arm (the rows of :func:`insilico.results.summary.summarize_patients`, which has
the exposure percentiles and every yes/no rate with its Wilson interval) plus:

* ``<endpoint>_mean/_ci_low/_ci_high`` for change endpoints (Student t interval) with
  ``<endpoint>_unit``: ``% of baseline`` (``scale: percent``) or the biomarker's unit
  (``scale: absolute``); ``<endpoint>_median_h/_ci_low/_ci_high`` for time to response
  (order-statistic interval).
* hERG: ``herg_margin_p5/_p50/_p95``, ``herg_margin_lt30_rate`` (Wilson; margin < 30 after
  Redfern et al. 2003), ``ddqtc_ms_mean/_ci_low/_ci_high`` and ``ddqtc_positive`` (the
  one-sided 95 % upper bound of the mean ddQTc, ``ddqtc_ms_upper90``, above 10 ms: a positive
  thorough QT study, ICH E14).
* Against the comparator arm (``success.comparator``, else placebo when present), for the
  primary endpoint: ``diff``, ``diff_ci_low/_high`` and ``p_value`` (paired twins: Newcombe's
  paired interval and McNemar's mid-p test; parallel groups: Newcombe's hybrid score interval
  and the pooled two-proportion z-test; one-sided in the success direction).
* Replicates: ``n_trials`` and ``n_patients_per_trial`` on every row. With more than one
  replicate trial every rate, mean, interval, comparison and the best dose above are computed
  on the patients of all trials together (pooled: ``n`` is the arm's patients over all
  trials, and the intervals are those of one trial that large). Per replicate trial:
  ``primary_rate_trial_low/_high`` (95 % of single trials' primary rates fall inside), and
  with a success criterion ``power``, ``power_ci_low/_high`` (the fraction of trials that
  succeed; with compound uncertainty: assurance, the power averaged over compound draws) and
  ``primary_var_compound_frac`` (share of the between-trial variance of the primary rate due
  to not knowing the compound). Each patient row of patients.parquet carries its ``trial``.
* Dose scan: ``best_dose_mg``, ``best_dose_set_mg`` per compound (:mod:`insilico.endpoints.
  dose_selection`: Bonferroni-adjusted comparisons with the best). Ranking: ``rank`` of the
  compound by its best arm's P(response without any declared adverse event, serious or not:
  ``response_no_ae_rate``; without a primary endpoint, none). Both use that net benefit;
  ``response_no_sae_rate`` (no serious event) is reported beside it.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pandas as pd

from insilico.endpoints import stats
from insilico.endpoints.dose_selection import best_dose
from insilico.endpoints.efficacy import median_time_interval
from insilico.endpoints.safety import HERG_MARGIN_FLAG
from insilico.results.summary import arm_groups, summarize_patients

#: ICH E14: a thorough QT study is negative when the one-sided 95 % upper bound of the mean
#: placebo-corrected change (ddQTc) stays below 10 ms
E14_THRESHOLD_MS = 10.0


def ddqtc_summary(ddqtc_ms: np.ndarray) -> dict[str, float | bool]:
    """Mean ddQTc (ms) with its two-sided 95 % interval, the one-sided 95 % upper bound
    (``ddqtc_ms_upper90``: the upper limit of the two-sided 90 % interval) and the ICH E14 flag
    ``ddqtc_positive`` (that bound at or above 10 ms)."""
    m, lo, hi = stats.mean_interval(ddqtc_ms)
    _, _, upper90 = stats.mean_interval(ddqtc_ms, level=0.90)
    return {
        "ddqtc_ms_mean": float(m),
        "ddqtc_ms_ci_low": float(lo),
        "ddqtc_ms_ci_high": float(hi),
        "ddqtc_ms_upper90": float(upper90),
        "ddqtc_positive": bool(upper90 >= E14_THRESHOLD_MS),
    }


def change_unit(endpoint, ctx) -> str:
    """Unit of a change endpoint's values: ``% of baseline`` (``scale: percent``) or the
    biomarker's unit (``scale: absolute``; ``biomarker unit`` when the protocol names none)."""
    if endpoint.scale == "percent":
        return "% of baseline"
    unit = ctx.biomarker.unit if ctx.biomarker is not None else ""
    return unit or "biomarker unit"


def _flags(values: pd.Series) -> np.ndarray:
    """Boolean array, NA as False (callers drop NA first where it matters)."""
    return np.asarray(values.astype("boolean").fillna(False), dtype=bool)


def _primary_counts(g: pd.DataFrame, col: str) -> tuple[int, int]:
    v = g[col].dropna()
    return int(_flags(v).sum()), int(v.size)


def _comparison(a, b, ctx, col, direction) -> dict[str, float]:
    """Arm rows ``a`` against comparator rows ``b`` on the yes/no column ``col``."""
    alt: Literal["greater", "less"] = "greater" if direction == "greater" else "less"
    if ctx.design == "paired":
        m = a[["patient_id", col]].merge(b[["patient_id", col]], on="patient_id").dropna()
        xa, xb = _flags(m[f"{col}_x"]), _flags(m[f"{col}_y"])
        n11, n10 = int((xa & xb).sum()), int((xa & ~xb).sum())
        n01, n00 = int((~xa & xb).sum()), int((~xa & ~xb).sum())
        n = n11 + n10 + n01 + n00
        diff = (n10 - n01) / n if n else math.nan
        lo, hi = stats.paired_difference_interval(n11, n10, n01, n00)
        p = stats.mcnemar_test(n10, n01, alternative=alt)
    else:
        k1, n1 = _primary_counts(a, col)
        k2, n2 = _primary_counts(b, col)
        diff = k1 / n1 - k2 / n2 if n1 and n2 else math.nan
        lo, hi = stats.newcombe_difference_interval(k1, n1, k2, n2)
        p = stats.two_proportion_test(k1, n1, k2, n2, alternative=alt)
    return {
        "diff": float(diff),
        "diff_ci_low": float(lo),
        "diff_ci_high": float(hi),
        "p_value": float(p),
    }


def _per_trial_success(a, b, ctx, col, success) -> np.ndarray:
    """Whether each replicate trial succeeds for arm rows ``a`` against comparator rows ``b``
    (one-sided test at alpha)."""
    alt = success.direction
    trials = np.arange(ctx.n_trials)
    if ctx.design == "paired":
        m = a[["trial", "patient_id", col]].merge(b[["patient_id", col]], on="patient_id")
        m = m.dropna()
        xa, xb = _flags(m[f"{col}_x"]), _flags(m[f"{col}_y"])
        t = m["trial"].to_numpy()
        n10 = np.bincount(t, weights=xa & ~xb, minlength=ctx.n_trials)
        n01 = np.bincount(t, weights=~xa & xb, minlength=ctx.n_trials)
        p = stats.mcnemar_test(n10.astype(int), n01.astype(int), alternative=alt)
    else:

        def counts(g):
            g = g.dropna(subset=[col])
            t = g["trial"].to_numpy()
            k = np.bincount(t, weights=_flags(g[col]), minlength=ctx.n_trials)
            n = np.bincount(t, minlength=ctx.n_trials)
            return k.astype(int), n.astype(int)

        k1, n1 = counts(a)
        k2, n2 = counts(b)
        ok = (n1 > 0) & (n2 > 0)
        p = np.ones(trials.size)
        if ok.any():
            p[ok] = stats.two_proportion_test(k1[ok], n1[ok], k2[ok], n2[ok], alternative=alt)
    return np.asarray(p) < success.alpha


def _per_trial_rates(g: pd.DataFrame, col: str, n_trials: int) -> np.ndarray:
    g = g.dropna(subset=[col])
    t = g["trial"].to_numpy()
    k = np.bincount(t, weights=_flags(g[col]), minlength=n_trials)
    n = np.bincount(t, minlength=n_trials)
    with np.errstate(invalid="ignore", divide="ignore"):
        return k / n


def summarize_trial(patients: pd.DataFrame, ctx) -> pd.DataFrame:
    """The scorecard (see module docstring) from per-patient rows and the trial context."""
    arms = [(a.name, a.compound_id, a.regimen_name) for a in ctx.arms]
    binary = [e.name for e in ctx.endpoints if e.is_binary]
    flags = [c for c in patients.columns if c.startswith("ae_") and not c.endswith("_prob")]
    flags += [c for c in ("response_no_sae", "response_no_ae") if c in patients]
    summary = summarize_patients(patients, [], arms, rate_columns=binary + flags)
    summary.insert(3, "dose_mg", [a.dose_mg for a in ctx.arms])
    summary.insert(5, "n_trials", int(ctx.n_trials))
    summary.insert(6, "n_patients_per_trial", int(ctx.n_per_trial or ctx.n_patients))
    groups = arm_groups(patients)
    extra: list[dict] = []
    primary = ctx.primary
    comparator = None
    if ctx.success is not None:
        comparator = ctx.success.comparator
    elif any(a.is_placebo for a in ctx.arms):
        comparator = "placebo"
    direction = ctx.success.direction if ctx.success is not None else "greater"
    empty = patients.iloc[:0]
    for arm in ctx.arms:
        g = groups.get(arm.name, empty)
        row: dict[str, object] = {}
        if "biomarker_change_pct" in g:
            m, lo, hi = stats.mean_interval(g["biomarker_change_pct"].to_numpy(dtype=float))
            row.update(
                {
                    "biomarker_change_pct_mean": float(m),
                    "biomarker_change_pct_ci_low": float(lo),
                    "biomarker_change_pct_ci_high": float(hi),
                }
            )
        for e in ctx.endpoints:
            if e.kind == "change" and e.name in g:
                m, lo, hi = stats.mean_interval(g[e.name].to_numpy(dtype=float))
                row.update(
                    {
                        f"{e.name}_mean": float(m),
                        f"{e.name}_ci_low": float(lo),
                        f"{e.name}_ci_high": float(hi),
                        f"{e.name}_unit": change_unit(e, ctx),
                    }
                )
            if e.kind == "time_to_response" and f"{e.name}_h" in g:
                med, med_lo, med_hi = median_time_interval(g[f"{e.name}_h"].to_numpy(dtype=float))
                row.update(
                    {
                        f"{e.name}_median_h": med,
                        f"{e.name}_median_h_ci_low": med_lo,
                        f"{e.name}_median_h_ci_high": med_hi,
                    }
                )
                resp = g[f"{e.name}_h"].notna()
                lo_r, hi_r = stats.wilson_interval(int(resp.sum()), int(resp.size))
                row.update(
                    {
                        f"{e.name}_rate": float(resp.mean()) if resp.size else math.nan,
                        f"{e.name}_ci_low": float(lo_r),
                        f"{e.name}_ci_high": float(hi_r),
                    }
                )
        if "herg_margin" in g and not arm.is_placebo:
            margin = g["herg_margin"].to_numpy(dtype=float)
            fin = margin[~np.isnan(margin)]
            for q in (5, 50, 95):
                row[f"herg_margin_p{q}"] = float(np.percentile(fin, q)) if fin.size else math.nan
            k = int((fin < HERG_MARGIN_FLAG).sum())
            lo, hi = stats.wilson_interval(k, fin.size)
            row.update(
                {
                    "herg_margin_lt30_rate": k / fin.size if fin.size else math.nan,
                    "herg_margin_lt30_ci_low": float(lo),
                    "herg_margin_lt30_ci_high": float(hi),
                }
            )
        if "ddqtc_ms" in g:
            row.update(ddqtc_summary(g["ddqtc_ms"].to_numpy(dtype=float)))
        if primary is not None and comparator is not None and arm.name != comparator:
            ref = groups.get(comparator, empty)
            cmp = _comparison(g, ref, ctx, primary, direction)
            row.update({f"{primary}_vs_{comparator}_{k}": v for k, v in cmp.items()})
        if primary is not None and ctx.n_trials > 1 and primary in g:
            rates = _per_trial_rates(g, primary, ctx.n_trials)
            _, lo, hi = stats.replicate_interval(rates)
            row.update({"primary_rate_trial_low": float(lo), "primary_rate_trial_high": float(hi)})
            if ctx.compound_draws and not arm.is_placebo:
                draw = np.arange(ctx.n_trials) % ctx.compound_draws
                dec = stats.variance_decomposition(rates, draw)
                row["primary_var_compound_frac"] = float(
                    dec.get("between_fraction_adjusted", math.nan)
                )
            if ctx.success is not None and arm.name != comparator:
                ref = groups.get(comparator, empty) if comparator is not None else empty
                ok = _per_trial_success(g, ref, ctx, primary, ctx.success)
                if ctx.compound_draws:
                    ok = ok.reshape(-1, ctx.compound_draws).T  # (draws, trials per draw)
                power, power_lo, power_hi = stats.probability_of_success(ok)
                row.update({"power": power, "power_ci_low": power_lo, "power_ci_high": power_hi})
        extra.append(row)
    summary = pd.concat([summary, pd.DataFrame(extra)], axis=1)
    return _rank_and_select(summary, ctx)


#: What ranks compounds and selects doses: P(response without any declared adverse event,
#: serious or not). An event the protocol declares costs benefit whether or not it is
#: marked serious (a dose with 90 % bradycardia is not the best one).
NET_BENEFIT = "response_no_ae_rate"


def _rank_and_select(summary: pd.DataFrame, ctx) -> pd.DataFrame:
    score = NET_BENEFIT if NET_BENEFIT in summary else None
    if score is None and ctx.primary is not None and f"{ctx.primary}_rate" in summary:
        score = f"{ctx.primary}_rate"
    if score is None:
        return summary
    drug = summary[summary["compound_id"] != "placebo"]
    best = drug.groupby("compound_id", sort=False)[score].max()
    order = best.sort_values(ascending=False, kind="stable")
    rank = {cid: i + 1 for i, cid in enumerate(order.index)}
    summary["rank"] = [rank.get(c, pd.NA) for c in summary["compound_id"]]
    summary["rank"] = summary["rank"].astype("Int64")
    summary["best_dose_mg"] = np.nan
    summary["best_dose_set_mg"] = ""
    events = score.removesuffix("_rate")
    for cid, g in drug.groupby("compound_id", sort=False):
        if g["dose_mg"].nunique() < 2:
            continue
        g = g.sort_values("dose_mg")
        res = best_dose(
            g["dose_mg"].to_numpy(dtype=float),
            g[f"{events}_events"].to_numpy(dtype=float),
            g[f"{events}_n"].to_numpy(dtype=float),
        )
        doses = np.asarray(res["doses"], dtype=float)
        dset = ",".join(f"{d:g}" for d in doses[np.asarray(res["dose_set"], dtype=bool)])
        idx = (summary["compound_id"] == cid).to_numpy()
        summary.loc[idx, "best_dose_mg"] = float(res["best_dose"])
        summary.loc[idx, "best_dose_set_mg"] = dset
    return summary
