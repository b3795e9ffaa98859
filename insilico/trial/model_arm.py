"""Arms of a trial whose protocol names a model file (``model:``): any structure the model layer
expresses, simulated for every twin by the event kernel.

The model sets the structure, covariate effects, between-subject variability and residual
error; each compound supplies what it knows (measured or predicted from its structure) and the
model the rest:

- ``cl_L_per_h``, ``ka_per_h`` (when the model absorbs first order or through transit
  compartments), ``f_bio`` (bioavailability of extravascular doses) and ``fu`` replace the
  model's typical values;
- the compound's volume at steady state is shared among ``v1_L``, ``v2_L`` and ``v3_L`` in the
  model's proportions;
- the biomarker's PD model (any model of the PD registry, an effect compartment in front of
  any of them) and its parameters are added, driven by the unbound concentration ``fu · C``.

Covariate effects are the model's alone (the built-in allometry and renal scaling of
protocols without a model do not apply); covariates are the cohort's columns, matched by name
without regard to case, and NONMEM-style names stand for them (``WT`` for ``weight_kg``,
``AGE``, ``CRCL``, ``EGFR``, ...: :data:`COVARIATE_ALIASES`). IIV is the model's ``iiv``
plus the protocol's ``iiv.cv`` on parameters the model has no IIV for
(``omega² = ln(1 + cv²)``).

AUCs integrate the concentration with the other states (exactly for linear models); Cmax,
Tmax and times above a threshold are read from the output times, so a finer
``output.interval_h`` makes them finer.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from insilico.errors import SpecError
from insilico.model import model_from_dict, model_to_dict
from insilico.model.covariates import typical_parameters
from insilico.model.layout import model_layout, pack_parameters
from insilico.model.predict import (
    OBS_CONC,
    Records,
    direct_response,
    initial_states,
    predict_records,
)
from insilico.model.variability import apply_eta, sample_eta_for_patients
from insilico.pk import event_kernel as ek
from insilico.pk.regimen import BOLUS_DEPOT, INFUSION, EventTable

_VOLUMES = ("v1_L", "v2_L", "v3_L")


def arm_model(base, typical: dict[str, float], pd_spec, pd_params: dict[str, float], iiv_cv):
    """The model of one arm: ``base`` with the compound's values and the biomarker's PD.

    Parameters
    ----------
    base : Model
        The protocol's model.
    typical : dict
        The compound's typical values (``cl_L_per_h``, ``v1_L`` = volume at steady state,
        ``ka_per_h``, ``f_bio``, ``fu``) and non-negative PD parameters.
    pd_spec : PDSpec or None
        The biomarker's PD model for this compound.
    pd_params : dict
        PD parameter values (potency already filled in), including negative ones.
    iiv_cv : dict
        The protocol's ``iiv.cv`` (fractions).
    """
    data = model_to_dict(base)
    params = dict(data["parameters"])
    names = set(base.required_parameters()) | set(base.optional_parameters()) | set(params)
    if "cl_L_per_h" in typical and "cl_L_per_h" in params:
        params["cl_L_per_h"] = float(typical["cl_L_per_h"])
    if "ka_per_h" in typical and "ka_per_h" in params:
        params["ka_per_h"] = float(typical["ka_per_h"])
    for key in ("f_bio", "fu"):
        if key in typical and (key in names or key == "fu"):
            params[key] = float(typical[key])
    vss = typical.get("v1_L")
    if vss is not None:
        given = [v for v in _VOLUMES if v in params]
        total = sum(params[v] for v in given)
        for v in given:
            params[v] = float(vss) * params[v] / total
    if pd_spec is not None:
        data["pd"] = {"model": pd_spec.kind, "effect_compartment": pd_spec.effect_compartment}
        for k, value in pd_params.items():
            if k != "fu":
                params[k] = float(value)
    data["parameters"] = params
    iiv = data.get("iiv") or {}
    iiv = dict(iiv)
    taken = set(base.eta_names())
    for name, cv in iiv_cv.items():
        if name in taken:
            raise SpecError(
                f"iiv.cv.{name}", cv, "IIV given once: the model file already has it (iiv)"
            )
        if name not in params:
            raise SpecError(
                f"iiv.cv.{name}", cv, f"a parameter of the arm's model {sorted(params)}"
            )
        iiv[name] = math.log1p(float(cv) ** 2)
    data["iiv"] = iiv or None
    return model_from_dict(data, source=f"model of arm ({base.name})")


#: NONMEM-style covariate names a model may use for the cohort's columns
COVARIATE_ALIASES = {
    "WT": "weight_kg",
    "AGE": "age_years",
    "HT": "height_cm",
    "BMI": "bmi_kg_m2",
    "BSA": "bsa_m2",
    "CRCL": "crcl_mL_per_min",
    "EGFR": "egfr_mL_min_1_73m2",
    "ALB": "albumin_g_per_L",
    "SCR": "serum_creatinine_mg_dL",
}


def covariate_table(cov: pd.DataFrame) -> pd.DataFrame:
    """The twins' covariates plus NONMEM-style aliases (``WT`` for ``weight_kg``, ...) where
    the cohort has no column of that name."""
    have = {str(c).upper() for c in cov.columns}
    extra = {a: cov[c] for a, c in COVARIATE_ALIASES.items() if a not in have and c in cov}
    return cov.assign(**extra) if extra else cov


def twin_values(ctx, arm, cov: pd.DataFrame, start: int, stop: int, keep: np.ndarray) -> dict:
    """Individual parameters (by model name) of the arm's twins, shape (n,) each."""
    model = arm.model
    n = len(cov)
    values = typical_parameters(model, covariate_table(cov), n)
    if model.eta_names():
        eta = sample_eta_for_patients(model, ctx.seed, start, stop, f"iiv:{arm.compound_id}")
        values = apply_eta(values, model, eta[keep])
    if ctx.compound_draws and arm.log_multipliers:
        trial = cov["patient_id"].to_numpy(dtype=np.int64) // ctx.n_per_trial
        draw = trial % ctx.compound_draws
        for name, logs in arm.log_multipliers.items():
            targets = _VOLUMES if name == "v1_L" else (name,)
            mult = np.exp(np.asarray(logs)[draw])
            for t in targets:
                if t in values:
                    values[t] = values[t] * mult
                    if t in ("fu", "f_bio"):
                        values[t] = np.minimum(values[t], 1.0)
    for k, v in arm.pd_fixed.items():
        values[k] = np.full(n, v)
    return values


def _records(model, layout, events: EventTable, times: np.ndarray):
    """Records of every twin: the doses of ``events`` then observations at ``times``; also
    which output times are observations and which records are extravascular doses."""
    n = events.n_patients
    n_ev = events.time_h.shape[0]
    t_all = np.r_[events.time_h, times]
    is_dose = np.r_[np.ones(n_ev, dtype=bool), np.zeros(times.size, dtype=bool)]
    # doses before observations at the same time: the observation sees a bolus given then
    order = np.lexsort((~is_dose, t_all))
    t_all, is_dose = t_all[order], is_dose[order]
    m = t_all.size
    obs_cols = np.flatnonzero(~is_dose)
    ev_index = order[is_dose]
    amount = np.zeros((n, m))
    amount[:, is_dose] = events.amount_mg[:, ev_index]
    duration = np.zeros(m)
    duration[is_dose] = events.duration_h[ev_index]
    kind = np.full(m, -1)
    kind[is_dose] = events.kind[ev_index]
    if model.pk.absorption in ("first_order", "transit"):
        oral = model.default_dosing_compartment()
    elif model.pk.absorption == "zero_order":
        oral = "central"
    else:
        oral = None
    if oral is None and (kind == BOLUS_DEPOT).any():
        raise SpecError(
            "model.pk.absorption",
            model.pk.absorption,
            "an absorption (first_order, zero_order, transit) for extravascular (PO/SC) doses",
        )
    central = layout.index("central")
    dose_state_1 = np.where(kind == BOLUS_DEPOT, layout.index(oral) if oral else -1, central)
    compartment_1 = np.where(kind == BOLUS_DEPOT, oral or "central", "central").astype(object)
    rate = np.zeros((n, m))
    inf = kind == INFUSION
    with np.errstate(divide="ignore", invalid="ignore"):
        rate[:, inf] = amount[:, inf] / duration[inf]
    rate[amount == 0] = 0.0
    if model.pk.absorption == "zero_order":
        rate[:, kind == BOLUS_DEPOT] = -2.0
    evid_1 = np.where(is_dose, 1, 0).astype(np.int64)
    obs_kind_1 = np.full(m, OBS_CONC, dtype=np.int64)
    records = Records(
        offsets=np.arange(0, n * m + 1, m, dtype=np.int64),
        time=np.tile(t_all, n),
        evid=np.tile(evid_1, n),
        amt=amount.reshape(-1),
        rate=rate.reshape(-1),
        dose_state=np.tile(dose_state_1, n),
        dose_compartment=np.tile(compartment_1, n),
        ss=np.zeros(n * m, dtype=np.int64),
        ii=np.zeros(n * m),
        addl=np.zeros(n * m, dtype=np.int64),
        obs_kind=np.tile(obs_kind_1, n),
        obs_state=np.full(n * m, central, dtype=np.int64),
        obs_name=np.full(n * m, "central", dtype=object),
        columns={},
    )
    return records, obs_cols, np.tile(kind == BOLUS_DEPOT, n)


def simulate_model_arm(ctx, arm, values: dict, events: EventTable, times: np.ndarray):
    """Concentrations (mg/L) and the PD output of the arm's twins at ``times``.

    Returns
    -------
    conc : ndarray, shape (n, n_times)
    effect : ndarray, shape (n, n_times) or None
        The PD model's output (a direct response or its first state).
    auc : ndarray, shape (n, n_times)
        The integral of the concentration from 0 (mg·h/L), exact for linear models.
    """
    model = arm.model
    layout = model_layout(model, auc=True)
    n = events.n_patients
    records, obs_cols, extravascular = _records(model, layout, events, times)
    m = records.n // max(n, 1)
    per_record = {k: np.repeat(np.asarray(v, dtype=float), m) for k, v in values.items()}
    if "f_bio" in per_record:
        # the compound's bioavailability is that of extravascular doses; IV doses get all
        per_record["f_bio"] = np.where(extravascular, per_record["f_bio"], 1.0)
    _, x = predict_records(model, records, per_record, layout, states=True)
    x = x.reshape(n, m, -1)[:, obs_cols, :]
    v1 = np.asarray(values["v1_L"], dtype=float)[:, None]
    conc = x[:, :, layout.index("central")] / v1
    auc = x[:, :, layout.index("auc")]
    effect = None
    record = layout.pd_record
    if record is not None:
        if record.has_state:
            effect = x[:, :, layout.index(record.output)]
        else:
            drive_state = int(layout.structure[ek.S_DRIVER])
            drive = x[:, :, drive_state]
            if drive_state != layout.structure[ek.S_EFFECT]:
                drive = drive / v1
            fu = np.asarray(values.get("fu", np.ones(n)), dtype=float)[:, None]
            P = _pd_matrix(model, layout, values, n)
            flat = direct_response(
                record, (fu * drive).reshape(-1), np.repeat(P, times.size, axis=0)
            )
            effect = flat.reshape(n, times.size)
    return conc, effect, auc


def pd_baseline(arm, values: dict) -> np.ndarray:
    """Each twin's PD output without drug, shape (n,): the direct response at C = 0, or the
    model's initial state (``kin / kout`` for an indirect response)."""
    from insilico.pd.registry import get_pd_model

    record = get_pd_model(arm.model.pd.model)
    n = len(next(iter(values.values())))
    P = _pd_matrix(arm.model, model_layout(arm.model), values, n)
    if not record.has_state:
        return direct_response(record, np.zeros(n), P)
    return initial_states(record, P)[:, record.states.index(record.output)]


def _pd_matrix(model, layout, values: dict, n: int) -> np.ndarray:
    """Each twin's PD parameters in the record's order (defaults filled), shape (n, n_pd)."""
    return pack_parameters(model, layout, values, n)[:, ek.P_PD :]


def grid_time_above(t: np.ndarray, c: np.ndarray, a: float, b: float, level: float):
    """Time (h) between ``a`` and ``b`` with the concentration above ``level`` (linear
    interpolation between output times), shape (n,)."""
    i0, i1 = int(np.searchsorted(t, a)), int(np.searchsorted(t, b))
    tt = t[i0 : i1 + 1]
    cc = c[:, i0 : i1 + 1] - level
    if tt.size < 2:
        return np.zeros(c.shape[0])
    dt = np.diff(tt)
    c0, c1 = cc[:, :-1], cc[:, 1:]
    both = (c0 > 0) & (c1 > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(c0 > 0, c0 / (c0 - c1), c1 / (c1 - c0))
    part = ((c0 > 0) != (c1 > 0)) * np.nan_to_num(frac)
    return (dt * np.where(both, 1.0, part)).sum(axis=1)


def auc_0_inf(
    arm, values: dict, events: EventTable, t: np.ndarray, conc: np.ndarray, auc_end, iend: int
) -> np.ndarray:
    """AUC from 0 to infinity (mg·h/L) of each twin's doses, shape (n,).

    Linear elimination (``cl_L_per_h``, any number of compartments and any absorption): every
    mg that reaches the circulation is eliminated at the rate ``CL · C``, so
    ``AUC(0, inf) = F · dose / CL`` exactly (``F`` = ``f_bio`` for extravascular doses, 1 for
    IV doses; the dose actually given, after missed doses and dropout).

    Saturable elimination (``michaelis_menten``, ``linear_and_michaelis_menten``): the AUC to
    the trial end plus the log-linear extrapolation ``C_last / lambda_z``, ``lambda_z`` the
    terminal rate constant from a log-linear least-squares fit of the last three output
    concentrations (the usual non-compartmental extrapolation). It is an approximation: with
    saturable elimination the rate constant still rises as the concentration falls, so the
    tail is somewhat overestimated (by about 2 % of the AUC for a one-compartment IV dose
    whose last concentration is a fifth of Km); a longer trial makes the tail smaller. NaN
    where the concentrations are not declining at the end (``lambda_z <= 0``).
    """
    n = conc.shape[0]
    if arm.model.pk.elimination == "linear":
        cl = np.asarray(values["cl_L_per_h"], dtype=float)
        f = np.asarray(values.get("f_bio", np.ones(n)), dtype=float)
        depot = events.kind == BOLUS_DEPOT
        amount = np.asarray(events.amount_mg, dtype=float)
        reached = amount[:, ~depot].sum(axis=1) + f * amount[:, depot].sum(axis=1)
        return reached / cl
    j = np.arange(max(iend - 2, 0), iend + 1)
    tt, cc = t[j], conc[:, j]
    with np.errstate(divide="ignore", invalid="ignore"):
        logc = np.where(cc > 0, np.log(cc), np.nan)
        tc = tt - tt.mean()
        slope = ((logc - logc.mean(axis=1, keepdims=True)) * tc).sum(axis=1) / (tc**2).sum()
        lam = -slope
        tail = np.where(lam > 0, conc[:, iend] / lam, np.nan)
    tail = np.where(conc[:, iend] == 0, 0.0, tail)
    return np.asarray(auc_end, dtype=float) + tail


def exposure_metrics(
    ctx,
    arm,
    t: np.ndarray,
    conc: np.ndarray,
    auc: np.ndarray,
    values: dict | None = None,
    events: EventTable | None = None,
) -> dict[str, Any]:
    """The per-patient exposure metrics of :func:`insilico.trial.block.simulate_arm_block`.

    AUCs are differences of the integrated concentration (exact for linear models); Cmax,
    Tmax and time above a threshold are read from the output times ``t`` (which must hold
    the last interval's bounds and the trial's end). For a single-dose arm, ``auc_inf`` is
    the AUC from 0 to infinity (:func:`auc_0_inf`, needs the twins' ``values`` and
    ``events``); NaN otherwise.
    """
    a, b = arm.last_interval_h
    b = min(b, ctx.duration_h)
    a = min(a, b)
    jmax = np.argmax(conc, axis=1)
    rows = np.arange(conc.shape[0])
    ib = int(np.searchsorted(t, b))
    ia, iend = int(np.searchsorted(t, a)), int(np.searchsorted(t, ctx.duration_h))
    auc_last = auc[:, ib] - auc[:, ia]
    auc_inf = np.full(conc.shape[0], np.nan)
    if arm.single_dose and events is not None and values is not None:
        auc_inf = auc_0_inf(arm, values, events, t, conc, auc[:, iend] - auc[:, 0], iend)
    metrics: dict[str, Any] = {
        "cmax": conc[rows, jmax],
        "tmax": t[jmax],
        "auc": auc_last,
        "auc_total": auc[:, iend] - auc[:, 0],
        "cavg": auc_last / (b - a) if b > a else np.full(conc.shape[0], np.nan),
        "auc_inf": auc_inf,
        "trough": conc[:, min(ib, t.size - 1)],
        "time_above": {},
    }
    for e in ctx.endpoints:
        if e.kind == "target_attainment" and e.metric == "time_above":
            metrics["time_above"][e.name] = grid_time_above(t, conc, a, b, e.target_mg_per_L)
    return metrics
