"""One arm for one fixed block of patient ids: cohort -> twins -> simulation -> endpoints.

Everything random is keyed by ``(seed, purpose, fixed patient block)`` (:mod:`insilico.rng`):
covariates (``"cohort"``, by :func:`insilico.cohort.sample_cohort_range`), random effects
(``"iiv:<compound id>"``: the same twin keeps its etas in every arm of that compound),
randomization (``"randomization"``, parallel design) and adverse-event draws
(``"ae:<event>"``: a twin's susceptibility is the same in every arm).

Endpoints (deliberately simple in this version)
-----------------------------------------------
* Exposure: ``cmax_mg_per_L`` and ``tmax_h`` over the whole treatment, ``auc_last_mg_h_per_L``,
  ``cavg_last_mg_per_L`` and ``trough_mg_per_L`` (concentration at the end of the last dosing
  interval, or at the end of the trial if earlier) over the last dosing interval.
* Biomarker: ``biomarker_change_pct = 100 (E(t) - E0) / E0`` at the responder time, with E0
  the model's baseline; a responder has a change at least as large as ``change_pct`` in its
  direction (``change_pct < 0``: a decrease of at least ``|change_pct|`` %).
* Adverse events: ``logit P = intercept + slope x`` (see
  :class:`insilico.trial.spec.AdverseEventSpec`); the event occurs when the twin's uniform
  draw is below ``P``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from insilico.cohort import sample_cohort_range
from insilico.pd.models import PDModel
from insilico.pk.models import PKModel
from insilico.pk.regimen import build_event_table, parse_regimen
from insilico.pk.simulate import Window, simulate
from insilico.rng import draw_by_block
from insilico.trial.context import Arm, TrialContext
from insilico.twin import individual_parameters, sample_etas

#: Covariates copied into patients.parquet.
COVARIATE_COLUMNS = ("age_years", "sex", "weight_kg", "egfr_mL_min_1_73m2")
#: Individual parameters copied into patients.parquet (NaN where absent, e.g. placebo).
PARAMETER_COLUMNS = ("cl_L_per_h", "v1_L", "ka_per_h", "f_bio", "fu")

PK_MODEL = PKModel(n_compartments=1, elimination="linear")


def assigned_arm(ctx: TrialContext, start: int, stop: int) -> np.ndarray | None:
    """Parallel design: arm index of each patient in ``[start, stop)`` (None when paired)."""
    if ctx.design != "parallel":
        return None
    p = np.asarray(ctx.ratios, dtype=float)
    cum = np.cumsum(p / p.sum())
    cum[-1] = 1.0
    u = draw_by_block(ctx.seed, "randomization", start, stop, lambda g, n: g.random(n))
    return np.searchsorted(cum, u, side="right").astype(np.int64)


def _expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


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
    """
    cov = sample_cohort_range(ctx.cohort, ctx.seed, start, stop)
    keep = np.ones(stop - start, dtype=bool)
    assign = assigned_arm(ctx, start, stop)
    if assign is not None:
        keep = assign == arm.index
    cov = cov.loc[keep].reset_index(drop=True)
    n = len(cov)
    t = ctx.output_times_h
    rows: dict[str, object] = {
        "arm": np.full(n, arm.name, dtype=object),
        "compound_id": np.full(n, arm.compound_id, dtype=object),
        "regimen": np.full(n, arm.regimen_name, dtype=object),
        "patient_id": cov["patient_id"].to_numpy(dtype=np.int64),
    }
    for c in COVARIATE_COLUMNS:
        rows[c] = cov[c].astype(str).to_numpy(dtype=object) if c == "sex" else cov[c].to_numpy()
    bio = None
    if arm.is_placebo:
        conc = np.zeros((n, t.size))
        params: dict[str, np.ndarray] = {}
        metrics = {k: np.zeros(n) for k in ("cmax", "tmax", "auc", "cavg", "trough")}
        if ctx.has_biomarker:
            bio = np.zeros((n, t.size))
    else:
        etas = sample_etas(ctx.iiv, ctx.seed, f"iiv:{arm.compound_id}", start, stop)
        etas = {k: v[keep] for k, v in etas.items()}
        covariates = {c: cov[c].to_numpy(dtype=float) for c in ("weight_kg", "egfr_mL_min_1_73m2")}
        params = individual_parameters(arm.typical, covariates, etas)
        for k, v in arm.pd_fixed.items():
            params[k] = np.full(n, v)
        regimen = parse_regimen(arm.regimen_text)
        events = build_event_table(regimen, weight_kg=cov["weight_kg"].to_numpy(dtype=float))
        a, b = arm.last_interval_h
        b = min(b, ctx.duration_h)
        a = min(a, b)
        pd_model = PDModel(arm.pd_kind, arm.pd_effect_compartment)
        windows = [Window(a, b, name="last"), Window(0.0, ctx.duration_h, name="total")]
        res = simulate(PK_MODEL, params, events, t, pd=pd_model, windows=windows)
        conc = res.conc_mg_per_L
        trough = (
            conc[:, int(np.searchsorted(t, b))] if b in t else res.metrics["cmin_mg_per_L_last"]
        )
        metrics = {
            "cmax": res.metrics["cmax_mg_per_L_total"],
            "tmax": res.metrics["tmax_h_total"],
            "auc": res.metrics["auc_mg_h_per_L_last"],
            "cavg": res.metrics.get("cavg_mg_per_L_last", np.full(n, np.nan)),
            "trough": trough,
        }
        if ctx.has_biomarker and res.effect is not None:
            e0 = pd_model.baseline(pd_model.pack(params, n))
            bio = 100.0 * (res.effect - e0[:, None]) / e0[:, None]
        elif ctx.has_biomarker:
            bio = np.zeros((n, t.size))
    for c in PARAMETER_COLUMNS:
        rows[c] = np.asarray(params[c], dtype=float) if c in params else np.full(n, np.nan)
    rows["cmax_mg_per_L"] = metrics["cmax"]
    rows["tmax_h"] = metrics["tmax"]
    rows["auc_last_mg_h_per_L"] = metrics["auc"]
    rows["cavg_last_mg_per_L"] = metrics["cavg"]
    rows["trough_mg_per_L"] = metrics["trough"]
    if ctx.responder is not None and bio is not None:
        j = int(np.searchsorted(t, ctx.responder.time_h))
        change = bio[:, j]
        thr = ctx.responder.change_pct
        rows["biomarker_change_pct"] = change
        rows["responder"] = change <= thr if thr < 0 else change >= thr
    fu = np.asarray(params.get("fu", np.ones(n)), dtype=float)
    for ae in ctx.adverse_events:
        if ae.driver == "cmax_mg_per_L":
            x = metrics["cmax"]
        elif ae.driver == "cmax_unbound_over_potency":
            x = fu * metrics["cmax"] / arm.potency_mg_per_L if not arm.is_placebo else np.zeros(n)
        else:
            x = fu * metrics["cmax"] / arm.herg_ic50_mg_per_L if not arm.is_placebo else np.zeros(n)
        prob = _expit(ae.intercept + ae.slope * np.asarray(x, dtype=float))
        u = draw_by_block(ctx.seed, f"ae:{ae.name}", start, stop, lambda g, m: g.random(m))[keep]
        event = pd.array(u < prob, dtype="boolean")
        event[np.isnan(prob)] = pd.NA
        rows[f"ae_{ae.name}_prob"] = prob
        rows[f"ae_{ae.name}"] = event
    return pd.DataFrame(rows), conc, bio
