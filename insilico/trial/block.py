"""One arm for one fixed block of patient ids: cohort -> twins -> conduct -> simulation ->
endpoints and safety.

Everything random is keyed by ``(seed, purpose, fixed patient block)`` (:mod:`insilico.rng`),
so a twin's draws do not depend on chunking, workers or the other arms:
covariates (``"cohort"``), random effects (``"iiv:<compound id>"``: the same in every arm of
that compound), randomization (``"randomization"``), disease baseline, placebo response,
residual error, dropout and missed doses (``"baseline"``, ``"placebo"``, ``"residual"``,
``"dropout"``, ``"adherence"``: the same twin in every arm), QT baseline and residual
(``"qt:baseline"``, ``"qt:residual"``) and adverse-event draws (``"ae:<event>"``: a twin's
susceptibility does not change with the arm). Compound parameter draws (uncertainty) are keyed
by compound (:func:`insilico.trial.context._log_multipliers`).

Per-patient columns
-------------------
* Exposure: ``cmax_mg_per_L``/``tmax_h`` over the treatment, ``auc_total_mg_h_per_L``
  (AUC from 0 to the trial end), and over the last dosing interval ``auc_last_mg_h_per_L``,
  ``cavg_last_mg_per_L``, ``trough_mg_per_L`` (concentration at the end of the last interval,
  or at the trial end). A single-dose arm (``once``) has no dosing interval: its
  ``auc_last_mg_h_per_L`` and ``cavg_last_mg_per_L`` are NaN and ``auc_inf_mg_h_per_L`` holds
  the AUC from 0 to infinity of the dose (``F · dose / CL`` per twin for linear elimination,
  exact; see :func:`insilico.trial.model_arm.auc_0_inf` for saturable elimination).
  ``auc_inf_mg_h_per_L`` is NaN in multiple-dose and placebo arms. The trough of a single
  dose is the concentration one ``interval_h`` (24 h by default) after it, or at the trial
  end.
* Conduct: ``trial`` (replicate), ``dropout_h`` (inf when completing), ``doses_missed``,
  ``titration_steps``.
* Efficacy: one column per endpoint (:mod:`insilico.trial.outcomes`), the baseline
  ``biomarker_baseline`` and ``biomarker_change_pct`` at the primary endpoint's time.
* Safety: hERG/QT columns, ``ae_dili``, each declared ``ae_<name>`` (with ``_prob``),
  ``ae_serious_any`` and ``response_no_sae`` (primary endpoint met, no serious event),
  ``ae_any`` and ``response_no_ae`` (primary endpoint met, no declared adverse event of any
  severity: the net benefit that ranks compounds and selects doses).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from insilico.cohort import sample_cohort_range
from insilico.pd.models import PDModel
from insilico.pk.models import PKModel
from insilico.pk.regimen import build_event_table
from insilico.pk.simulate import Window, simulate
from insilico.rng import draw_by_block
from insilico.trial import conduct
from insilico.trial.context import Arm, TrialContext
from insilico.trial.outcomes import (
    adverse_event_columns,
    endpoint_columns,
    logistic_events_so_far,
    safety_columns,
)
from insilico.twin import FRACTIONS, individual_parameters, sample_etas
from insilico.units import mg_per_L_to_dv_factor

#: Covariates copied into patients.parquet.
COVARIATE_COLUMNS = ("age_years", "sex", "weight_kg", "egfr_mL_min_1_73m2")
#: Individual parameters copied into patients.parquet (NaN where absent, e.g. placebo).
PARAMETER_COLUMNS = ("cl_L_per_h", "v1_L", "ka_per_h", "f_bio", "fu")

PK_MODEL = PKModel(n_compartments=1, elimination="linear")


def _patients(ctx: TrialContext, start: int, stop: int) -> pd.DataFrame:
    """Covariates of patients ``[start, stop)``: sampled, or a study's subjects."""
    from insilico.cohort.from_data import DatasetCohort, dataset_cohort_range

    if isinstance(ctx.cohort, DatasetCohort):
        return dataset_cohort_range(ctx.cohort, start, stop)
    return sample_cohort_range(ctx.cohort, ctx.seed, start, stop)


def assigned_arm(ctx: TrialContext, start: int, stop: int) -> np.ndarray | None:
    """Parallel design: arm index of each patient in ``[start, stop)`` (None when paired)."""
    if ctx.design != "parallel":
        return None
    p = np.asarray(ctx.ratios, dtype=float)
    cum = np.cumsum(p / p.sum())
    cum[-1] = 1.0
    u = draw_by_block(ctx.seed, "randomization", start, stop, lambda g, n: g.random(n))
    return np.searchsorted(cum, u, side="right").astype(np.int64)


def _uniform(ctx, purpose, start, stop, keep, cols: int = 0) -> np.ndarray:
    shape = (lambda m: (m, cols)) if cols else (lambda m: m)
    return draw_by_block(ctx.seed, purpose, start, stop, lambda g, m: g.random(shape(m)))[keep]


def _normal(ctx, purpose, start, stop, keep, cols: int = 0) -> np.ndarray:
    shape = (lambda m: (m, cols)) if cols else (lambda m: m)
    draw = draw_by_block(ctx.seed, purpose, start, stop, lambda g, m: g.standard_normal(shape(m)))
    return draw[keep]


def twin_parameters(
    ctx: TrialContext, arm: Arm, cov: pd.DataFrame, start: int, stop: int, keep: np.ndarray
) -> dict[str, np.ndarray]:
    """Individual PK/PD parameters of the arm's twins, with the compound draw of each twin's
    trial replicate when the protocol propagates compound uncertainty."""
    n = len(cov)
    etas = sample_etas(ctx.iiv, ctx.seed, f"iiv:{arm.compound_id}", start, stop)
    etas = {k: v[keep] for k, v in etas.items()}
    covariates = {c: cov[c].to_numpy(dtype=float) for c in ("weight_kg", "egfr_mL_min_1_73m2")}
    params = individual_parameters(arm.typical, covariates, etas)
    if ctx.compound_draws and arm.log_multipliers:
        trial = cov["patient_id"].to_numpy(dtype=np.int64) // ctx.n_per_trial
        draw = trial % ctx.compound_draws
        for name, logs in arm.log_multipliers.items():
            if name in params:
                mult = np.exp(np.asarray(logs)[draw])
                params[name] = params[name] * mult
                if name in FRACTIONS:
                    params[name] = np.minimum(params[name], 1.0)
    for k, v in arm.pd_fixed.items():
        params[k] = np.full(n, v)
    return params


def _apply_baseline(ctx, pd_model: PDModel, params: dict, baseline: np.ndarray | None) -> None:
    """The per-patient disease baseline replaces E0 (direct) or sets kin (indirect)."""
    if baseline is None:
        return
    if pd_model.has_state:
        params["kin_per_h"] = baseline * np.asarray(params["kout_per_h"], dtype=float)
    else:
        params["e0"] = baseline


def _windows(ctx: TrialContext, arm: Arm) -> list[Window]:
    a, b = arm.last_interval_h
    b = min(b, ctx.duration_h)
    a = min(a, b)
    # only the metrics :func:`simulate_arm_block` reads: the kernel tracks nothing else
    out = [
        Window(a, b, name="last", metrics=("cmin", "auc", "cavg")),
        Window(0.0, ctx.duration_h, name="total", metrics=("cmax", "tmax", "auc")),
    ]
    for e in ctx.endpoints:
        if e.kind == "target_attainment" and e.metric == "time_above":
            if e.target_mg_per_L is None:
                raise ValueError(f"endpoint {e.name!r}: time_above needs target_mg_per_L")
            out.append(
                Window(
                    a,
                    b,
                    threshold_mg_per_L=e.target_mg_per_L,
                    name=f"pta_{e.name}",
                    metrics=("time_above",),
                )
            )
    return out


def _placebo_pct(ctx, time_h: np.ndarray, eta: np.ndarray | None) -> np.ndarray | float:
    """Placebo drift (% of baseline) at ``time_h`` per patient, 0 without a placebo model."""
    bp = ctx.biomarker
    if bp is None or bp.placebo is None or eta is None:
        return 0.0
    from insilico.endpoints.efficacy import placebo_change_pct

    return placebo_change_pct(time_h, bp.placebo.magnitude_pct, bp.placebo.half_life_h, eta)


def _typical_baseline(ctx) -> float:
    """Biomarker baseline of the protocol's PD model (E0, or kin / kout)."""
    p = ctx.biomarker.pd.params
    if "e0" in p:
        return float(p["e0"])
    return float(p["kin_per_h"]) / float(p["kout_per_h"])


def _titrate(ctx, arm, params, events, pd_model, e0, u_ae, fu, eta_placebo):
    """Forced titration: at each visit step up the twins below target without an AE (the
    change seen at the visit is drug effect plus placebo drift, without assessment error)."""
    tit = ctx.conduct.titration
    n = events.n_patients
    steps = np.zeros(n, dtype=np.int64)
    t = ctx.output_times_h
    for visit in tit.visits_h:
        tv = t[t <= visit]
        sofar = Window(0.0, visit, name="sofar", metrics=("cmax",))
        res = simulate(PK_MODEL, params, events, tv, pd=pd_model, windows=[sofar])
        if res.effect is None:
            raise ValueError("titration needs the biomarker's PD model (no effect simulated)")
        change = 100.0 * (res.effect[:, -1] - e0) / e0
        drift = _placebo_pct(ctx, tv[-1:], eta_placebo)
        if isinstance(drift, np.ndarray):  # 0.0 without a placebo model
            change = change + drift[:, 0]
        below = (
            change > tit.target_change_pct
            if tit.target_change_pct < 0
            else (change < tit.target_change_pct)
        )
        cmax = res.metrics["cmax_mg_per_L_sofar"]
        had_ae = logistic_events_so_far(ctx, arm, cmax, fu, u_ae)
        up = below & ~had_ae & (steps < tit.max_steps)
        events = conduct.step_up(events, visit, np.where(up, tit.factor, 1.0))
        steps += up
    return events, steps


def _conducted_events(ctx, arm, cov, start, stop, keep, dropout_h):
    """The arm's dosing events for the block's twins after missed doses and dropout."""
    regimen = arm.regimen
    if regimen is None:
        raise ValueError(f"arm {arm.name!r} has no regimen (placebo arms give no doses)")
    events = build_event_table(
        regimen,
        weight_kg=cov["weight_kg"].to_numpy(dtype=float),
        bsa_m2=cov["bsa_m2"].to_numpy(dtype=float) if "bsa_m2" in cov else None,
    )
    daily = conduct.daily_dose_mg(events, arm.dose_days)
    planned = events.amount_mg > 0
    design = ctx.conduct
    if design.adherence is not None and design.adherence.p_miss_dose > 0:
        u = _uniform(ctx, "adherence", start, stop, keep, cols=events.time_h.size)
        events = conduct.miss_doses(events, u, design.adherence.p_miss_dose)
    if np.isfinite(dropout_h).any():
        events = conduct.drop_out(events, dropout_h)
    missed = (planned & (events.amount_mg == 0)).sum(axis=1)
    return events, daily, missed


def _model_arm(ctx, arm, cov, start, stop, keep, baseline, dropout_h):
    """An arm of a protocol with a model file (:mod:`insilico.trial.model_arm`)."""
    from insilico.model.residual import observations_from_normals
    from insilico.trial.model_arm import (
        exposure_metrics,
        pd_baseline,
        simulate_model_arm,
        twin_values,
    )

    n = len(cov)
    t = ctx.output_times_h
    values = twin_values(ctx, arm, cov, start, stop, keep)
    record = arm.model.pd
    if baseline is not None and record is not None:
        from insilico.pd.registry import get_pd_model

        rec = get_pd_model(record.model)
        if "kin_per_h" in rec.parameters:
            values["kin_per_h"] = baseline * np.asarray(values["kout_per_h"], dtype=float)
        elif "e0" in rec.parameters:
            values["e0"] = np.asarray(baseline, dtype=float)
    events, daily, missed = _conducted_events(ctx, arm, cov, start, stop, keep, dropout_h)
    a, b = arm.last_interval_h
    b = min(b, ctx.duration_h)
    t_sim = np.unique(np.r_[t, min(a, b), b, 0.0, ctx.duration_h])
    conc_sim, effect_sim, auc_sim = simulate_model_arm(ctx, arm, values, events, t_sim)
    metrics = exposure_metrics(ctx, arm, t_sim, conc_sim, auc_sim, values, events)
    cols = np.searchsorted(t_sim, t)
    conc = conc_sim[:, cols]
    if arm.model.residual_error is not None:
        # concentrations as they would be measured (dv_unit is mg/L in a trial's model)
        g = draw_by_block(
            ctx.seed,
            f"residual:conc:{arm.compound_id}",
            start,
            stop,
            lambda gen, m: gen.standard_normal((m, t.size)),
        )[keep]
        dv = mg_per_L_to_dv_factor(arm.model.data.dv_unit)
        conc = observations_from_normals(arm.model, conc * dv, g) / dv
    model_change, e0 = None, None
    if ctx.has_biomarker:
        if effect_sim is not None:
            effect = effect_sim[:, cols]
            # the response without drug (a dose at time 0 already acts at the first output)
            e0 = pd_baseline(arm, values) if baseline is None else np.asarray(baseline, float)
            e0 = np.where(e0 == 0, np.nan, e0)
            model_change = 100.0 * (effect - e0[:, None]) / e0[:, None]
        else:
            model_change = np.zeros((n, t.size))
    params = dict(values)
    params.setdefault("fu", np.ones(n))
    return params, conc, model_change, metrics, daily, missed, e0


def simulate_arm_block(
    ctx: TrialContext, arm: Arm, start: int, stop: int
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray | None]:
    """Simulate ``arm`` for patient ids ``[start, stop)`` inside one fixed block.

    Returns
    -------
    rows : pandas.DataFrame
        One row per patient of the arm (all of them when paired, the randomized ones when
        parallel), sorted by ``patient_id``.
    conc_mg_per_L : ndarray, shape (n, n_times)
    biomarker_change_pct : ndarray, shape (n, n_times) or None
        Model prediction (drug + placebo drift), without residual error.
    """
    cov = _patients(ctx, start, stop)
    keep = np.ones(stop - start, dtype=bool)
    assign = assigned_arm(ctx, start, stop)
    if assign is not None:
        keep = assign == arm.index
    cov = cov.loc[keep].reset_index(drop=True)
    n = len(cov)
    t = ctx.output_times_h
    pid = cov["patient_id"].to_numpy(dtype=np.int64)
    rows: dict[str, Any] = {
        "arm": np.full(n, arm.name, dtype=object),
        "compound_id": np.full(n, arm.compound_id, dtype=object),
        "regimen": np.full(n, arm.regimen_name, dtype=object),
        "dose_mg": np.full(n, arm.dose_mg),
        "trial": pid // ctx.n_per_trial if ctx.n_per_trial else np.zeros(n, dtype=np.int64),
        "patient_id": pid,
    }
    for c in COVARIATE_COLUMNS:
        rows[c] = cov[c].astype(str).to_numpy(dtype=object) if c == "sex" else cov[c].to_numpy()

    design = ctx.conduct
    dropout_h = np.full(n, np.inf)
    if design.dropout is not None and design.dropout.hazard_per_day > 0:
        u = _uniform(ctx, "dropout", start, stop, keep)
        dropout_h = -np.log1p(-u) * 24.0 / design.dropout.hazard_per_day
    baseline = None
    if ctx.biomarker is not None and ctx.biomarker.baseline is not None:
        from insilico.endpoints.efficacy import sample_baseline

        baseline = sample_baseline(
            ctx.biomarker.baseline, _uniform(ctx, "baseline", start, stop, keep)
        )
    eta_placebo = None
    if ctx.biomarker is not None and ctx.biomarker.placebo is not None:
        eta_placebo = ctx.biomarker.placebo.sd_pct * _normal(ctx, "placebo", start, stop, keep)
    ae_names = [a.name for a in ctx.adverse_events]
    u_ae = {a: _uniform(ctx, f"ae:{a}", start, stop, keep) for a in ae_names}

    model_change = None
    steps = np.zeros(n, dtype=np.int64)
    missed = np.zeros(n, dtype=np.int64)
    daily = np.zeros(n)
    if arm.is_placebo:
        conc = np.zeros((n, t.size))
        params: dict[str, np.ndarray] = {}
        metrics: dict[str, Any] = {
            k: np.zeros(n) for k in ("cmax", "tmax", "auc", "auc_total", "cavg", "trough")
        }
        metrics["auc_inf"] = np.full(n, np.nan)
        metrics["time_above"] = {}
        if ctx.has_biomarker:
            model_change = np.zeros((n, t.size))
    elif arm.model is not None:
        params, conc, model_change, metrics, daily, missed, e0 = _model_arm(
            ctx, arm, cov, start, stop, keep, baseline, dropout_h
        )
    else:
        params = twin_parameters(ctx, arm, cov, start, stop, keep)
        events, daily, missed = _conducted_events(ctx, arm, cov, start, stop, keep, dropout_h)
        pd_model = PDModel(arm.pd_kind, arm.pd_effect_compartment)
        e0 = None
        if ctx.has_biomarker:
            _apply_baseline(ctx, pd_model, params, baseline)
            e0 = pd_model.baseline(pd_model.pack(params, n))
        fu = np.asarray(params.get("fu", np.ones(n)), dtype=float)
        if design.titration is not None and ctx.has_biomarker:
            events, steps = _titrate(ctx, arm, params, events, pd_model, e0, u_ae, fu, eta_placebo)
        res = simulate(PK_MODEL, params, events, t, pd=pd_model, windows=_windows(ctx, arm))
        conc = res.conc_mg_per_L
        b = _windows(ctx, arm)[0].end_h
        trough = (
            conc[:, int(np.searchsorted(t, b))] if b in t else res.metrics["cmin_mg_per_L_last"]
        )
        metrics = {
            "cmax": res.metrics["cmax_mg_per_L_total"],
            "tmax": res.metrics["tmax_h_total"],
            "auc": res.metrics["auc_mg_h_per_L_last"],
            "auc_total": res.metrics["auc_mg_h_per_L_total"],
            "cavg": res.metrics.get("cavg_mg_per_L_last", np.full(n, np.nan)),
            # linear elimination: F · dose / CL of the dose actually given, exact
            "auc_inf": res.metrics["auc_0_inf_mg_h_per_L"]
            if arm.single_dose
            else np.full(n, np.nan),
            "trough": trough,
            "time_above": {
                k[len("time_above_h_pta_") :]: v
                for k, v in res.metrics.items()
                if k.startswith("time_above_h_pta_")
            },
        }
        if ctx.has_biomarker:
            if res.effect is not None:
                model_change = 100.0 * (res.effect - e0[:, None]) / e0[:, None]
            else:
                model_change = np.zeros((n, t.size))
    for c in PARAMETER_COLUMNS:
        rows[c] = np.asarray(params[c], dtype=float) if c in params else np.full(n, np.nan)
    rows["cmax_mg_per_L"] = metrics["cmax"]
    rows["tmax_h"] = metrics["tmax"]
    no_interval = arm.single_dose and not arm.is_placebo
    rows["auc_last_mg_h_per_L"] = np.full(n, np.nan) if no_interval else metrics["auc"]
    rows["auc_total_mg_h_per_L"] = metrics["auc_total"]
    rows["auc_inf_mg_h_per_L"] = np.asarray(metrics["auc_inf"], dtype=float)
    rows["cavg_last_mg_per_L"] = np.full(n, np.nan) if no_interval else metrics["cavg"]
    rows["trough_mg_per_L"] = metrics["trough"]
    rows["dropout_h"] = dropout_h
    rows["doses_missed"] = missed
    rows["titration_steps"] = steps

    bio = None
    if model_change is not None:
        bio = model_change
        bp = ctx.biomarker
        bio = bio + _placebo_pct(ctx, t, eta_placebo)
        observed = bio
        if bp is not None and bp.residual_sd_pct > 0:
            observed = bio + bp.residual_sd_pct * _normal(
                ctx, "residual", start, stop, keep, cols=t.size
            )
        if baseline is None:
            baseline_col = np.full(n, _typical_baseline(ctx)) if arm.is_placebo else e0
        else:
            baseline_col = baseline
        rows["biomarker_baseline"] = baseline_col
        rows.update(endpoint_columns(ctx, arm, observed, baseline_col, dropout_h, metrics))
    else:
        rows.update(endpoint_columns(ctx, arm, None, None, dropout_h, metrics))
    fu = np.asarray(params.get("fu", np.ones(n)), dtype=float)
    rows.update(adverse_event_columns(ctx, arm, metrics, fu, u_ae))
    rows.update(safety_columns(ctx, arm, cov, start, stop, keep, metrics, fu, daily, params))
    serious = _any_event(rows, ctx.serious_events, n)
    declared = _any_event(rows, ctx.declared_events, n)
    if ctx.serious_events:
        rows["ae_serious_any"] = serious
    if ctx.declared_events:
        rows["ae_any"] = declared
    if ctx.primary is not None and ctx.primary in rows:
        resp = np.asarray(pd.array(rows[ctx.primary], dtype="boolean").fillna(False), dtype=bool)
        rows["response_no_sae"] = resp & ~serious
        rows["response_no_ae"] = resp & ~declared
    return pd.DataFrame(rows), conc, bio


def _any_event(rows: dict, names, n: int) -> np.ndarray:
    """Patients with any of the events ``ae_<name>`` (a missing value counts as no event)."""
    out = np.zeros(n, dtype=bool)
    for name in names:
        col = rows.get(f"ae_{name}")
        if col is not None:
            out |= np.asarray(pd.array(col, dtype="boolean").fillna(False), dtype=bool)
    return out
