"""Per-patient outcome columns of one arm block: efficacy endpoints, declared adverse events
and the built-in safety models (called by :func:`insilico.trial.block.simulate_arm_block`).

Missing assessments (a twin that dropped out before an endpoint's time) are ``NA`` in
boolean columns under ``analysis: completers`` and ``False`` (non-responder imputation) under
``analysis: non_responder``; continuous endpoints are NaN either way.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from insilico.endpoints.efficacy import first_time_meeting, meets, target_attained
from insilico.rng import draw_by_block


def _bioavailable_fraction(arm) -> float:
    """The fraction of the arm's dose that reaches the circulation: ``f_bio`` for
    extravascular doses, 1 for IV doses, weighted by the amount given by each route."""
    f = float(arm.typical.get("f_bio", 1.0))
    if arm.regimen is None:
        return f
    given = reached = 0.0
    for series in arm.regimen.series:
        amount = series.amount * series.n_doses
        given += amount
        reached += amount * (1.0 if series.route == "iv" else f)
    return reached / given if given > 0 else f


def _expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _on_study(dropout_h: np.ndarray, time_h: float) -> np.ndarray:
    return np.asarray(dropout_h) > time_h


def _binary(ctx, value: np.ndarray, assessed: np.ndarray):
    if ctx.conduct.dropout is not None and ctx.conduct.dropout.analysis == "completers":
        out = pd.array(value, dtype="boolean")
        out[~assessed] = pd.NA
        return out
    return np.asarray(value & assessed, dtype=bool)


def assessment_mask(ctx) -> np.ndarray:
    """Output times that are assessments: multiples of the biomarker's assessment interval
    (to within 1e-9 h) and every endpoint time."""
    t = ctx.output_times_h
    every = ctx.biomarker.assessment_interval_h if ctx.biomarker is not None else 24.0
    k = np.round(t / every)
    mask = np.abs(t - k * every) <= 1e-9 * np.maximum(1.0, t)
    for e in ctx.endpoints:
        for v in (e.time_h, e.sustained_from_h):
            if v is not None:
                mask |= t == v
    return mask


def endpoint_columns(ctx, arm, observed_pct, baseline, dropout_h, metrics) -> dict[str, object]:
    """One column per endpoint (see :class:`insilico.trial.spec_endpoints.EndpointSpec`).

    ``observed_pct``: assessed biomarker change (% of baseline) at every output time, shape
    (n, n_times), or None without a biomarker; ``baseline``: per-patient baseline (unit of
    the biomarker) for ``scale: absolute``.
    """
    t = ctx.output_times_h
    n = dropout_h.shape[0]
    out: dict[str, object] = {}
    visit = assessment_mask(ctx)
    last_a, last_b = arm.last_interval_h
    interval = (
        (min(last_b, ctx.duration_h) - min(last_a, ctx.duration_h)) if not (arm.is_placebo) else 0.0
    )
    for e in ctx.endpoints:
        if e.kind == "target_attainment":
            if arm.is_placebo:
                ok = np.zeros(n, dtype=bool)
            else:
                ok = target_attained(
                    e.metric,
                    e.target_mg_per_L,
                    trough_mg_per_L=metrics["trough"],
                    time_above_h=metrics["time_above"].get(e.name, np.full(n, np.nan)),
                    interval_h=interval,
                    auc_mg_h_per_L=metrics["auc"],
                    cavg_mg_per_L=metrics["cavg"],
                    min_fraction=e.min_fraction,
                    min_ratio=e.min_ratio,
                )
            out[e.name] = _binary(ctx, ok, _on_study(dropout_h, ctx.duration_h))
            continue
        if observed_pct is None:
            continue
        change = observed_pct
        if e.scale == "absolute":
            change = observed_pct * (np.asarray(baseline, dtype=float)[:, None] / 100.0)
        if e.kind == "time_to_response":
            until = np.minimum(e.time_h if e.time_h is not None else ctx.duration_h, dropout_h)
            out[f"{e.name}_h"] = first_time_meeting(t[visit], change[:, visit], e.threshold, until)
            continue
        j = int(np.searchsorted(t, e.time_h))
        assessed = _on_study(dropout_h, e.time_h)
        value = np.where(assessed, change[:, j], np.nan)
        if e.kind == "change":
            out[e.name] = value
        else:  # responder
            ok = meets(change[:, j], e.threshold)
            if e.sustained_from_h is not None:
                span = visit & (t >= e.sustained_from_h) & (t <= e.time_h)
                ok = np.all(meets(change[:, span], e.threshold), axis=1)
            out[e.name] = _binary(ctx, ok, assessed)
        if e.name == ctx.primary or (e.kind == "change" and "biomarker_change_pct" not in out):
            out["biomarker_change_pct"] = np.where(assessed, observed_pct[:, j], np.nan)
    return out


def ae_driver(ae, arm, metrics, fu: np.ndarray) -> np.ndarray:
    """The ``x`` of ``logit P = intercept + slope x`` (see ``AdverseEventSpec``)."""
    n = fu.shape[0]
    if arm.is_placebo:
        return np.zeros(n)
    cmax = np.asarray(metrics["cmax"], dtype=float)
    d = ae.driver
    if d == "cmax_mg_per_L":
        return cmax
    if d == "cmax_unbound_mg_per_L":
        return fu * cmax
    if d == "auc_total_mg_h_per_L":
        return np.asarray(metrics["auc_total"], dtype=float)
    if d == "cavg_mg_per_L":
        return np.asarray(metrics["cavg"], dtype=float)
    if d == "cmax_unbound_over_potency":
        return fu * cmax / arm.potency_mg_per_L
    return fu * cmax / arm.herg_ic50_mg_per_L


def adverse_event_columns(ctx, arm, metrics, fu, u_ae) -> dict[str, object]:
    """``ae_<name>_prob`` and ``ae_<name>`` (the twin's uniform below the probability)."""
    out: dict[str, object] = {}
    for ae in ctx.adverse_events:
        prob = _expit(ae.intercept + ae.slope * ae_driver(ae, arm, metrics, fu))
        event = pd.array(u_ae[ae.name] < prob, dtype="boolean")
        event[np.isnan(prob)] = pd.NA
        out[f"ae_{ae.name}_prob"] = prob
        out[f"ae_{ae.name}"] = event
    return out


def logistic_events_so_far(ctx, arm, cmax_so_far, fu, u_ae) -> np.ndarray:
    """Whether a twin has had any declared adverse event by a titration visit, from its
    exposure so far (Cmax-driven events use Cmax up to the visit; AUC/Cavg-driven ones are
    not known before the end of treatment and do not block titration)."""
    had = np.zeros(fu.shape[0], dtype=bool)
    metrics = {"cmax": cmax_so_far}
    for ae in ctx.adverse_events:
        if not ae.driver.startswith("cmax"):
            continue
        prob = _expit(ae.intercept + ae.slope * ae_driver(ae, arm, metrics, fu))
        had |= np.nan_to_num(u_ae[ae.name] < prob, nan=False).astype(bool)
    return had


def safety_columns(
    ctx, arm, cov, start, stop, keep, metrics, fu, daily_dose_mg, params
) -> dict[str, object]:
    """hERG/QT (``safety.qt``) and liver injury (``safety.liver``) columns.

    QT: the continuous per-patient values (hERG margin and block, ΔΔQTc, baseline and
    on-treatment QTc, ΔQTc, all in ms) and the ICH E14 categorical endpoints as adverse-event
    flags ``ae_qt_qtc_gt450/_gt480/_gt500`` and ``ae_qt_dqtc_gt30/_gt60``
    (:data:`insilico.endpoints.safety.QT_CATEGORICAL_EVENTS`; NA for a compound without a hERG
    IC50). The per-patient ΔΔQTc is reported as a value, not as an event.
    """
    out: dict[str, object] = {}
    n = fu.shape[0]
    if ctx.safety.qt:
        from insilico.endpoints.safety import QT_CATEGORICAL_EVENTS, qt_outcomes

        def normal(purpose):
            return draw_by_block(ctx.seed, purpose, start, stop, lambda g, m: g.standard_normal(m))[
                keep
            ]

        cmax_u = np.zeros(n) if arm.is_placebo else fu * np.asarray(metrics["cmax"], dtype=float)
        ic50 = np.full(n, arm.herg_ic50_mg_per_L)
        qt = qt_outcomes(
            cmax_u,
            ic50,
            cov["sex"].astype(str).to_numpy(),
            normal("qt:baseline"),
            normal("qt:residual"),
        )
        for k in (
            "herg_margin",
            "herg_block_fraction",
            "ddqtc_drug_ms",
            "ddqtc_ms",
            "qtc_baseline_ms",
            "qtc_on_drug_ms",
            "dqtc_ms",
        ):
            if k in qt:
                out[k] = np.asarray(qt[k], dtype=float)
        for k in QT_CATEGORICAL_EVENTS:
            ev = pd.array(np.asarray(qt[k], dtype=bool), dtype="boolean")
            if not arm.is_placebo and not np.isfinite(arm.herg_ic50_mg_per_L):
                ev[:] = pd.NA  # no hERG IC50: unknown, not "no event"
            out[f"ae_{k}"] = ev
    if ctx.safety.liver:
        from insilico.endpoints.liver import dili_probability

        if arm.is_placebo:
            ratio = np.zeros(n)
            logp, n_alerts = 0.0, 0
        else:
            typical_auc = (
                _bioavailable_fraction(arm)
                * np.asarray(daily_dose_mg)
                * arm.dose_days
                / arm.typical["cl_L_per_h"]
            )
            ratio = np.asarray(metrics["auc_total"], dtype=float) / typical_auc
            logp, n_alerts = arm.clogp, len(arm.structural_alerts)
        prob = dili_probability(
            np.asarray(daily_dose_mg, dtype=float), np.full(n, logp), np.full(n, n_alerts), ratio
        )
        u = draw_by_block(ctx.seed, "ae:dili", start, stop, lambda g, m: g.random(m))[keep]
        out["ae_dili_prob"] = prob
        out["ae_dili"] = np.asarray(u < prob, dtype=bool)
    return out
