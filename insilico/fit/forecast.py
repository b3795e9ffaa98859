"""Forecasts of updated twins and doses chosen for a target (``insilico twin``).

A subject's posterior is approximated by ``N(eta_MAP, C)`` (:mod:`insilico.fit.posterior`).
Its forecast at every record is ``IPRED`` (the MAP parameters) with a 90 % prediction interval
for an observation: draws of eta from the posterior, each with a residual error drawn from the
model, and the 5th and 95th percentiles of the simulated observations.

A dose is chosen from a regimen template (``"X mg PO q12h x14"``, X the dose to choose) by
simulating each candidate dose for every posterior draw after the subject's records and
keeping the dose whose target metric (trough, AUC over the last interval, Cmax or a PD output)
falls in the target range with the highest probability.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from insilico.errors import SpecError
from insilico.fit.posterior import SubjectProblem, map_estimates
from insilico.model.residual import observations_from_normals
from insilico.model.variability import apply_eta
from insilico.rng import stream

#: metrics a dose target may name (units in the names)
TARGET_METRICS = ("trough_mg_per_L", "auc_tau_mg_h_per_L", "cmax_mg_per_L")


@dataclass(frozen=True)
class Target:
    """A target range for one metric, ``lo <= metric <= hi``."""

    metric: str
    lo: float
    hi: float


def parse_target(text: str) -> Target:
    """``"trough_mg_per_L=1.5..2.5"`` -> :class:`Target`."""
    m = re.fullmatch(r"\s*([A-Za-z_]+)\s*=\s*([0-9.eE+-]+)\s*\.\.\s*([0-9.eE+-]+)\s*", text)
    if not m:
        raise SpecError("--target", text, "METRIC=LO..HI, e.g. trough_mg_per_L=1.5..2.5")
    metric, lo, hi = m.group(1), float(m.group(2)), float(m.group(3))
    if metric not in TARGET_METRICS:
        raise SpecError("--target", metric, f"one of {list(TARGET_METRICS)}")
    if not (0 <= lo < hi < np.inf):
        raise SpecError("--target", text, "0 <= LO < HI (finite)")
    return Target(metric, lo, hi)


def posterior_draws(posterior, n_draws: int, seed: int) -> np.ndarray:
    """Draws of eta from each subject's approximate posterior, shape (n_draws, n_subj, n_eta)."""
    n_subj, k = posterior.eta.shape
    z = stream(seed, "twin:posterior").standard_normal((n_draws, n_subj, k))
    L = np.linalg.cholesky(posterior.covariance)
    return posterior.eta[None] + np.einsum("sij,dsj->dsi", L, z)


def forecast(model, dataset, *, until_h=None, n_draws: int = 500, seed: int = 0, level=0.9):
    """Each subject's twin updated from its records up to ``until_h`` and its forecast.

    Returns
    -------
    forecast : DataFrame
        Per record: ``PRED``, ``IPRED``, ``PI_LO``, ``PI_HI`` (data units).
    individual : DataFrame
        Per subject: ``ID``, the individual parameters by name, ``eta_<parameter>``,
        ``n_observations``, ``converged``.
    posterior : Posterior
    """
    table = dataset.table
    post = map_estimates(model, table, until_h=until_h)
    problem = SubjectProblem(model, table, until_h)
    k = post.eta.shape[1]
    pred = problem.predictions(np.zeros_like(post.eta))
    ipred = problem.predictions(post.eta)
    draws = posterior_draws(post, n_draws, seed)
    z = stream(seed, "twin:residual").standard_normal((n_draws, len(table)))
    sims = np.empty((n_draws, len(table)))
    for d in range(n_draws):
        f = problem.predictions(draws[d])
        sims[d] = observations_from_normals(model, f, z[d])
    lo, hi = np.nanpercentile(sims, [50 * (1 - level), 50 * (1 + level)], axis=0)
    out = pd.DataFrame({"PRED": pred, "IPRED": ipred, "PI_LO": lo, "PI_HI": hi})
    first = table.groupby("SUBJECT", sort=True).head(1)
    values = apply_eta(problem.typical, model, post.eta[problem.subject])
    individual = pd.DataFrame({"ID": first["ID"].to_numpy()})
    rows = first.index.to_numpy()
    for name in model.parameters:
        individual[name] = np.asarray(values[name])[rows]
    for j, name in enumerate(model.eta_names()):
        individual[f"eta_{name}"] = post.eta[:, j]
    for j in range(k):
        individual[f"se_eta_{model.eta_names()[j]}"] = np.sqrt(post.covariance[:, j, j])
    individual["n_observations"] = post.n_observations
    individual["converged"] = post.converged
    return out, individual, post


def _tile(records, copies: int):
    """``records`` (one subject) repeated ``copies`` times as separate subjects."""
    from dataclasses import fields, replace

    m = records.n

    def rep(a):
        return np.tile(a, copies)

    per_record = {
        f.name: rep(getattr(records, f.name))
        for f in fields(records)
        if f.name not in ("offsets", "columns")
    }
    return replace(
        records,
        offsets=np.arange(0, copies * m + 1, m, dtype=np.int64),
        columns={k: rep(v) for k, v in records.columns.items()},
        **per_record,
    )


def _future_table(model, history: pd.DataFrame, template: str, dose_mg: float, start_h: float):
    """The subject's records up to ``start_h`` plus the template regimen from ``start_h`` and
    observation records across its last interval; returns the table and the window."""
    from insilico.pk.regimen import BOLUS_DEPOT, build_event_table, parse_regimen
    from insilico.units import amount_to_mg_factor

    text = template.replace("X", f"{dose_mg:.10g}")
    regimen = parse_regimen(text)
    weight = None
    folded = {str(c).upper(): c for c in history.columns}
    for name in ("WT", "WEIGHT", "WEIGHT_KG"):
        if name in folded:
            weight = history[folded[name]].to_numpy(dtype=float)[-1:]
    events = build_event_table(regimen, n_patients=1, weight_kg=weight)
    a, b = regimen.last_interval_h
    to_amt = 1.0 / amount_to_mg_factor(model.data.amt_unit)
    numbers = {name: num for num, name in model.compartment_map().items()}
    oral = model.default_dosing_compartment()
    last = history.iloc[-1]
    rows = []
    for j in range(events.time_h.size):
        cmt = numbers[oral] if events.kind[j] == BOLUS_DEPOT else numbers["central"]
        amt = events.amount_mg[0, j] * to_amt
        dur = events.duration_h[j]
        rows.append(
            {
                "TIME": start_h + events.time_h[j],
                "EVID": 1,
                "AMT": amt,
                "CMT": cmt,
                "RATE": amt / dur if dur > 0 else 0.0,
            }
        )
    grid = np.linspace(start_h + a, start_h + b, 121)
    for t in grid:
        rows.append({"TIME": t, "EVID": 0, "AMT": 0.0, "CMT": numbers["central"], "RATE": 0.0})
    future = pd.DataFrame(rows)
    for col in ("SS", "II", "ADDL", "MDV"):
        future[col] = 0.0
    future["DV"] = np.nan
    for col in history.columns:
        if col not in future.columns:
            future[col] = last[col]
    future = future[history.columns]
    past = history[history["TIME"] <= start_h]
    table = pd.concat([past, future], ignore_index=True)
    table = table.sort_values("TIME", kind="stable").reset_index(drop=True)
    table["SUBJECT"] = 0
    table["ROW"] = np.arange(len(table))
    window = (table["EVID"].to_numpy() == 0) & (table["TIME"].to_numpy() >= start_h + a)
    window &= table["DV"].isna().to_numpy()
    return table, window, grid


def _metric(target: Target, conc: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """The target metric from concentrations (n, n_grid) over the last interval."""
    if target.metric == "trough_mg_per_L":
        return conc[:, -1]
    if target.metric == "cmax_mg_per_L":
        return conc.max(axis=1)
    return np.trapezoid(conc, grid, axis=1)


def recommend_dose(
    model,
    dataset,
    subject: int,
    template: str,
    target: Target,
    *,
    posterior=None,
    start_h: float | None = None,
    candidates_mg=None,
    n_draws: int = 200,
    seed: int = 0,
):
    """The dose of ``template`` that puts ``target`` in range with the highest probability.

    Parameters
    ----------
    model : Model
        The population model (the prior).
    dataset : Dataset
        The subject's records (doses and measurements so far).
    subject : int
        Index of the subject (``SUBJECT``) in the dataset.
    template : str
        A regimen with ``X`` for the dose in mg (``"X mg PO q12h x14"``).
    target : Target
        Metric and range, concentrations in mg/L.
    posterior : Posterior, optional
        From :func:`~insilico.fit.posterior.map_estimates` (computed when absent).
    start_h : float, optional
        When the regimen starts (h); the subject's last record time by default.
    candidates_mg : array, optional
        Doses to consider (mg); a 1-2-5 series from 1 mg to 10 g refined around the best
        by default.
    n_draws : int
        Posterior draws.
    seed : int
        Seed of the draws.

    Returns
    -------
    dict
        ``dose_mg``, ``probability`` (in range under the posterior), ``median`` metric at
        that dose, and ``candidates`` (DataFrame: ``dose_mg``, ``probability``, ``median``).
    """
    if "X" not in template:
        raise SpecError("--regimen", template, "a regimen with X for the dose (X mg PO q12h x14)")
    table = dataset.table
    if posterior is None:
        posterior = map_estimates(model, table)
    history = table[table["SUBJECT"] == subject].drop(columns=["SUBJECT", "ROW"])
    start = float(history["TIME"].iloc[-1]) if start_h is None else float(start_h)
    draws = posterior_draws(posterior, n_draws, seed)[:, subject, :]
    from insilico.model.covariates import typical_parameters
    from insilico.model.layout import model_layout
    from insilico.model.predict import predict_records, prepare_records
    from insilico.units import mg_per_L_to_dv_factor

    layout = model_layout(model)
    dv = mg_per_L_to_dv_factor(model.data.dv_unit)

    def evaluate(doses):
        probs, medians = [], []
        for dose in doses:
            tab, window, grid = _future_table(model, history, template, float(dose), start)
            records = prepare_records(model, tab, layout)
            tiled = _tile(records, n_draws)
            typical = typical_parameters(model, tab, len(tab))
            m = len(tab)
            per = {k: np.tile(np.asarray(v, dtype=float), n_draws) for k, v in typical.items()}
            eta = np.repeat(draws, m, axis=0)
            values = apply_eta(per, model, eta)
            pred = predict_records(model, tiled, values, layout).reshape(n_draws, m)
            conc = pred[:, window] / dv
            metric = _metric(target, conc, grid)
            probs.append(float(np.mean((metric >= target.lo) & (metric <= target.hi))))
            medians.append(float(np.median(metric)))
        return np.asarray(probs), np.asarray(medians)

    if candidates_mg is None:
        coarse = np.array([m * 10.0**e for e in range(0, 4) for m in (1, 2, 5)] + [10000.0])
        p, med = evaluate(coarse)
        best = int(np.argmax(p + 1e-9 * -np.abs(np.log(med / np.mean([target.lo, target.hi])))))
        lo = coarse[max(best - 1, 0)]
        hi = coarse[min(best + 1, coarse.size - 1)]
        fine = np.geomspace(lo, hi, 25)
        p2, med2 = evaluate(fine)
        doses = np.r_[coarse, fine]
        p, med = np.r_[p, p2], np.r_[med, med2]
    else:
        doses = np.asarray(candidates_mg, dtype=float)
        p, med = evaluate(doses)
    order = np.argsort(doses)
    doses, p, med = doses[order], p[order], med[order]
    centre = 0.5 * (target.lo + target.hi)
    # the highest probability; ties go to the dose whose median is closest to the centre
    score = p - 1e-6 * np.abs(med - centre) / centre
    i = int(np.argmax(score))
    return {
        "dose_mg": float(doses[i]),
        "probability": float(p[i]),
        "median": float(med[i]),
        "candidates": pd.DataFrame({"dose_mg": doses, "probability": p, "median": med}),
    }
