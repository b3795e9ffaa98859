"""Linear PK against closed-form solutions, rtol 1e-10.

Formulas (Gibaldi & Perrier, Pharmacokinetics, 2nd ed. 1982, ch. 1-3): one-compartment IV
bolus ``C = D/V e^{-kt}``; zero-order infusion ``C = R0/CL (1 - e^{-kt})`` during and
``C(T) e^{-k(t-T)}`` after; first-order absorption (Bateman) ``C = F D ka / (V (ka - k))
(e^{-kt} - e^{-ka t})`` and its limit ``F D k t e^{-kt} / V`` for ``ka = k``; two-compartment
bolus ``C = D/V1 [(alpha - k21) e^{-alpha t} + (k21 - beta) e^{-beta t}] / (alpha - beta)``;
repeated doses by superposition; steady-state accumulation ``1/(1 - e^{-k tau})``.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq

from insilico.pk.models import PKModel
from insilico.pk.regimen import EventTable, build_event_table
from insilico.pk.simulate import Window, auc_0_inf, simulate

RTOL = 1e-10  # linear PK is exact: closed forms agree to 1e-10 relative
ATOL_MG_PER_L = 1e-14  # values that are exactly 0 (before the first dose, zero doses)

CL = np.array([5.0, 2.0, 11.0])
V = np.array([50.0, 30.0, 80.0])
KA = np.array([1.0, 0.5, 3.0])
F = np.array([0.7, 1.0, 0.35])
K = CL / V
N = CL.size


def close(actual, desired, rtol=RTOL, atol=ATOL_MG_PER_L):
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=atol)


def bolus_1(t, dose):
    """One dose at t = 0, 1 cmt IV bolus; t shape (n_t,), returns (n, n_t)."""
    t = np.asarray(t)[None, :]
    return np.where(t >= 0, dose / V[:, None] * np.exp(-K[:, None] * np.maximum(t, 0)), 0.0)


def infusion_1(t, dose, dur):
    t = np.asarray(t)[None, :]
    r0 = dose / dur
    k, cl = K[:, None], CL[:, None]
    during = r0 / cl * (1 - np.exp(-k * np.clip(t, 0, None)))
    end = r0 / cl * (1 - np.exp(-k * dur))
    after = end * np.exp(-k * (t - dur))
    return np.where(t < 0, 0.0, np.where(t <= dur, during, after))


def bateman(t, dose, ka=KA, k=K, v=V, f=F):
    t = np.asarray(t)[None, :]
    ka, k, v, f = (np.asarray(x)[:, None] for x in (ka, k, v, f))
    tt = np.maximum(t, 0.0)
    c = f * dose * ka / (v * (ka - k)) * (np.exp(-k * tt) - np.exp(-ka * tt))
    return np.where(t > 0, c, 0.0)


def params_1cmt(**extra):
    p = {"cl_L_per_h": CL, "v1_L": V, "ka_per_h": KA, "f_bio": F}
    p.update(extra)
    return p


T_OUT = np.array([0.0, 0.1, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 12.0, 12.01, 13.0, 24.0, 30.0, 47.9])


def test_one_compartment_iv_bolus_single():
    ev = build_event_table("100 mg IV once", N)
    res = simulate(PKModel(1), params_1cmt(), ev, T_OUT)
    close(res.conc_mg_per_L, bolus_1(T_OUT, 100.0))
    assert res.conc_mg_per_L.shape == (N, T_OUT.size)


def test_one_compartment_iv_bolus_superposition_dose_at_output_times():
    """Doses at 0, 12, 24, 36 h are output times: outputs are right-continuous (dose in)."""
    ev = build_event_table("100 mg IV q12h x4", N)
    t = np.arange(0.0, 60.0, 0.5)
    res = simulate(PKModel(1), params_1cmt(), ev, t)
    expected = sum(bolus_1(t - 12.0 * j, 100.0) for j in range(4))
    close(res.conc_mg_per_L, expected)
    # right after the dose at 12 h: dose/V more than just before it
    i12 = np.searchsorted(t, 12.0)
    close(res.conc_mg_per_L[:, i12] - bolus_1([12.0], 100.0)[:, 0], 100.0 / V)


def test_one_compartment_infusion_during_and_after():
    ev = build_event_table("100 mg IV over 2 h once", N)
    t = np.array([0.0, 0.3, 1.0, 1.999, 2.0, 2.5, 4.0, 10.0, 30.0])
    res = simulate(PKModel(1), params_1cmt(), ev, t)
    close(res.conc_mg_per_L, infusion_1(t, 100.0, 2.0))


def test_infusion_longer_than_dosing_interval():
    """Each 18-h infusion spans the next dose at 12 h: rates add up."""
    ev = build_event_table("120 mg IV over 18 h q12h x3", N)
    t = np.linspace(0.0, 72.0, 145)
    res = simulate(PKModel(1), params_1cmt(), ev, t)
    expected = sum(infusion_1(t - 12.0 * j, 120.0, 18.0) for j in range(3))
    close(res.conc_mg_per_L, expected)


def test_oral_bateman_single_and_repeated():
    t = np.linspace(0.0, 48.0, 97)
    res = simulate(PKModel(1), params_1cmt(), build_event_table("100 mg PO once", N), t)
    close(res.conc_mg_per_L, bateman(t, 100.0))
    res = simulate(PKModel(1), params_1cmt(), build_event_table("100 mg PO q8h x5", N), t)
    close(res.conc_mg_per_L, sum(bateman(t - 8.0 * j, 100.0) for j in range(5)))


def test_loading_dose_then_maintenance_superposition():
    t = np.linspace(0.0, 60.0, 121)
    ev = build_event_table("200 mg PO once then 100 mg PO q12h x4", N)
    res = simulate(PKModel(1), params_1cmt(), ev, t)
    expected = bateman(t, 200.0) + sum(bateman(t - 12.0 * j, 100.0) for j in range(1, 5))
    close(res.conc_mg_per_L, expected)


def test_ka_equal_to_elimination_rate():
    """Degenerate Bateman: ka == k gives C = F D k t e^{-kt} / V."""
    t = np.linspace(0.0, 40.0, 81)
    p = params_1cmt(ka_per_h=K.copy())
    res = simulate(PKModel(1), p, build_event_table("100 mg PO once", N), t)
    expected = F[:, None] * 100.0 * K[:, None] * t * np.exp(-K[:, None] * t) / V[:, None]
    close(res.conc_mg_per_L, expected)


def test_ka_equal_to_elimination_rate_metrics():
    """Cmax = F D / (V e) at tmax = 1/k when ka == k, from the metrics (exact, not the grid)."""
    p = params_1cmt(ka_per_h=K.copy())
    res = simulate(
        PKModel(1),
        p,
        build_event_table("100 mg PO once", N),
        [0.0, 48.0],
        windows=[Window(0.0, 48.0, name="w")],
    )
    close(res.metrics["cmax_mg_per_L_w"], F * 100.0 / (V * np.e))
    close(res.metrics["tmax_h_w"], 1.0 / K, rtol=1e-7)  # flat peak: t* is ill-conditioned


def two_cmt_bolus(t, dose, cl, v1, q, v2):
    k10, k12, k21 = cl / v1, q / v1, q / v2
    s = k10 + k12 + k21
    disc = np.sqrt(s * s - 4 * k10 * k21)
    alpha, beta = (s + disc) / 2, (s - disc) / 2
    a = (alpha - k21) / (alpha - beta)
    b = (k21 - beta) / (alpha - beta)
    t = np.asarray(t)[None, :]
    return (
        dose
        / v1[:, None]
        * (a[:, None] * np.exp(-alpha[:, None] * t) + b[:, None] * np.exp(-beta[:, None] * t))
    )


def test_two_compartment_bolus_biexponential():
    q, v2 = np.array([10.0, 3.0, 40.0]), np.array([100.0, 20.0, 300.0])
    t = np.concatenate([[0.0, 0.01, 0.1], np.linspace(0.5, 96.0, 40)])
    p = {"cl_L_per_h": CL, "v1_L": V, "q2_L_per_h": q, "v2_L": v2}
    res = simulate(PKModel(2), p, build_event_table("100 mg IV once", N), t)
    close(res.conc_mg_per_L, two_cmt_bolus(t, 100.0, CL, V, q, v2))
    res = simulate(PKModel(2), p, build_event_table("100 mg IV q24h x3", N), t)
    close(
        res.conc_mg_per_L,
        sum(
            np.where(t >= 24 * j, two_cmt_bolus(t - 24 * j, 100.0, CL, V, q, v2), 0.0)
            for j in range(3)
        ),
    )


@pytest.mark.parametrize("n_doses", [1, 2, 5, 20])
def test_accumulation_trough(n_doses):
    """Trough before dose n+1: D/V e^{-k tau} (1 - e^{-n k tau}) / (1 - e^{-k tau})."""
    tau = 8.0
    ev = build_event_table(f"100 mg IV q8h x{n_doses}", N)
    t_end = n_doses * tau
    res = simulate(PKModel(1), params_1cmt(), ev, [t_end])
    r = np.exp(-K * tau)
    close(res.conc_mg_per_L[:, 0], 100.0 / V * r * (1 - r**n_doses) / (1 - r))


def test_steady_state_regimen_iv():
    """'ss': at steady state from t = 0: C(t) = D/V e^{-kt} / (1 - e^{-k tau})."""
    tau = 12.0
    t = np.array([0.0, 1.0, 5.0, 11.999, 12.0, 18.0, 23.5])
    ev = build_event_table("100 mg IV q12h x14 ss", N)
    res = simulate(PKModel(1), params_1cmt(), ev, t)
    acc = 1.0 / (1.0 - np.exp(-K * tau))
    tt = np.mod(t, tau)
    close(res.conc_mg_per_L, 100.0 / V[:, None] * np.exp(-K[:, None] * tt) * acc[:, None])
    # the trough of the last window equals the steady-state trough
    res = simulate(
        PKModel(1),
        params_1cmt(),
        ev,
        [0.0, 168.0],
        windows=[Window(156.0, 168.0, name="last"), Window(0.0, 12.0, name="first")],
    )
    trough = 100.0 / V * np.exp(-K * tau) * acc
    close(res.metrics["cmin_mg_per_L_last"], trough)
    close(res.metrics["cmin_mg_per_L_first"], trough)
    close(res.metrics["auc_mg_h_per_L_first"], 100.0 / CL)  # AUC_tau at ss = D / CL


def test_steady_state_regimen_oral():
    tau = 12.0
    t = np.array([0.0, 0.5, 1.0, 3.0, 11.0, 12.0, 13.0])
    ev = build_event_table("100 mg PO q12h x3 ss", N)
    res = simulate(PKModel(1), params_1cmt(), ev, t)
    ka, k = KA[:, None], K[:, None]
    tt = np.mod(t, tau)[None, :]
    expected = (
        F[:, None]
        * 100.0
        * ka
        / (V[:, None] * (ka - k))
        * (np.exp(-k * tt) / (1 - np.exp(-k * tau)) - np.exp(-ka * tt) / (1 - np.exp(-ka * tau)))
    )
    close(res.conc_mg_per_L, expected)


def test_auc_0_inf_single_dose():
    """AUC_0-inf = F dose / CL (oral) and dose / CL (IV)."""
    res = simulate(
        PKModel(1),
        params_1cmt(),
        build_event_table("100 mg PO once", N),
        [0.0, 6.0],
        return_states=True,
    )
    close(auc_0_inf(res, CL), F * 100.0 / CL)
    p2 = {
        "cl_L_per_h": CL,
        "v1_L": V,
        "q2_L_per_h": 3.0 * CL,
        "v2_L": 4.0 * V,
        "q3_L_per_h": CL,
        "v3_L": 10 * V,
        "ka_per_h": KA,
        "f_bio": F,
    }
    res = simulate(
        PKModel(3), p2, build_event_table("100 mg PO once", N), [0.0, 2.0], return_states=True
    )
    close(auc_0_inf(res, CL), F * 100.0 / CL)
    res = simulate(
        PKModel(2),
        p2,
        build_event_table("100 mg IV over 3 h once", N),
        [0.0, 5.0],
        return_states=True,
    )
    close(auc_0_inf(res, CL), 100.0 / CL)


@pytest.mark.parametrize(
    ("text", "tlag", "f"), [("100 mg PO once", 2.0, 0.7), ("100 mg IV over 3 h once", 0.0, 1.0)]
)
def test_auc_0_inf_single_dose_not_yet_absorbed(text, tlag, f):
    """AUC_0-inf of a single dose = F D / CL, even if the output grid ends before the drug
    has entered the body (lag time, running infusion)."""
    p = {
        "cl_L_per_h": np.array([5.0]),
        "v1_L": np.array([50.0]),
        "ka_per_h": np.array([1.0]),
        "f_bio": np.array([f]),
        "tlag_h": np.array([tlag]),
    }
    res = simulate(PKModel(1), p, build_event_table(text, 1), [0.0, 1.0], return_states=True)
    close(auc_0_inf(res, p["cl_L_per_h"]), f * 100.0 / 5.0)


def test_auc_window_closed_form():
    """AUC over [0, T] of the Bateman curve."""
    T = 10.0
    res = simulate(
        PKModel(1),
        params_1cmt(),
        build_event_table("100 mg PO once", N),
        [0.0, T],
        windows=[Window(0.0, T, name="w")],
    )
    auc = F * 100.0 * KA / (V * (KA - K)) * ((1 - np.exp(-K * T)) / K - (1 - np.exp(-KA * T)) / KA)
    close(res.metrics["auc_mg_h_per_L_w"], auc)
    close(res.metrics["cavg_mg_per_L_w"], auc / T)


@pytest.mark.parametrize("i", range(N))
def test_window_starting_just_after_tmax(i):
    """Two windows share the node just after Tmax as their C maximum record: for the whole
    run the maximum lies in the step before that node (refined to the Bateman Cmax); for the
    window that starts there it is the node value itself. The kernel refines a record shared
    by nested windows once: it must not hand the first window's answer to the second."""
    tmax = float(np.log(KA[i] / K[i]) / (KA[i] - K[i]))
    start = tmax + 0.004  # a node 0.004 h after Tmax (window bound), the grid's nearest
    p = {k: v[i : i + 1] for k, v in params_1cmt().items()}
    one = dict(ka=KA[i : i + 1], k=K[i : i + 1], v=V[i : i + 1], f=F[i : i + 1])
    res = simulate(
        PKModel(1),
        p,
        build_event_table("100 mg PO once", 1),
        [0.0, 24.0],
        windows=[Window(0.0, 24.0, name="all"), Window(start, 24.0, name="late")],
    )
    close(res.metrics["cmax_mg_per_L_all"], bateman(np.array([tmax]), 100.0, **one)[:, 0])
    close(res.metrics["tmax_h_all"], tmax, rtol=1e-8)
    close(res.metrics["cmax_mg_per_L_late"], bateman(np.array([start]), 100.0, **one)[:, 0])
    assert res.metrics["tmax_h_late"][0] == start


def test_exact_cmax_tmax_on_coarse_output_grid():
    """Bateman Cmax/Tmax from the metrics with outputs only at 0 and 24 h."""
    res = simulate(
        PKModel(1),
        params_1cmt(),
        build_event_table("100 mg PO once", N),
        [0.0, 24.0],
        windows=[Window(0.0, 24.0, name="w")],
    )
    tmax = np.log(KA / K) / (KA - K)
    close(res.metrics["tmax_h_w"], tmax, rtol=1e-8)  # root of C'(t): conditioned ~1e-8
    close(res.metrics["cmax_mg_per_L_w"], _bateman_at(tmax, 100.0))
    close(res.metrics["cmin_mg_per_L_w"], 0.0)
    assert np.all(res.metrics["tmin_h_w"] == 0.0)


def _bateman_at(t_each, dose):
    """Bateman value at one time per patient."""
    return F * dose * KA / (V * (KA - K)) * (np.exp(-K * t_each) - np.exp(-KA * t_each))


def test_time_above_threshold_iv_bolus():
    """1 cmt bolus: C > thr until t = ln(C0/thr)/k."""
    thr = 0.5
    res = simulate(
        PKModel(1),
        params_1cmt(),
        build_event_table("100 mg IV once", N),
        [0.0, 48.0],
        windows=[Window(0.0, 48.0, thr, name="w")],
    )
    c0 = 100.0 / V
    close(res.metrics["time_above_h_w"], np.clip(np.log(c0 / thr) / K, 0.0, 48.0))


def test_common_lag_time():
    tlag = 0.75
    t = np.linspace(0.0, 36.0, 73)
    p = params_1cmt(tlag_h=np.full(N, tlag))
    res = simulate(
        PKModel(1),
        p,
        build_event_table("100 mg PO q12h x3", N),
        t,
        windows=[Window(0.0, 12.0, name="w")],
    )
    close(res.conc_mg_per_L, sum(bateman(t - 12.0 * j - tlag, 100.0) for j in range(3)))
    tmax = np.log(KA / K) / (KA - K)
    close(res.metrics["tmax_h_w"], tmax + tlag, rtol=1e-8)
    close(res.metrics["cmax_mg_per_L_w"], _bateman_at(tmax, 100.0))


@pytest.mark.parametrize("per_patient", [False, True])
def test_lag_longer_than_dosing_interval(per_patient):
    """Lag 14 h > tau 12 h (common to all, or one of several per-patient lags)."""
    tlag = np.array([14.0, 14.0, 14.0]) if not per_patient else np.array([14.0, 0.3, 25.5])
    t = np.linspace(0.0, 60.0, 121)
    res = simulate(
        PKModel(1),
        params_1cmt(tlag_h=tlag),
        build_event_table("100 mg PO q12h x3", N),
        t,
        return_states=True,
    )
    expected = sum(_bateman_shifted(t, 12.0 * j + tlag, 100.0) for j in range(3))
    close(res.conc_mg_per_L, expected)
    assert np.all(res.conc_mg_per_L[:, t < tlag.min()] == 0.0)


def _bateman_shifted(t, shift, dose):
    """Bateman curve with a per-patient time shift, shape (n, n_t)."""
    tt = t[None, :] - shift[:, None]
    ka, k, v, f = KA[:, None], K[:, None], V[:, None], F[:, None]
    c = (
        f
        * dose
        * ka
        / (v * (ka - k))
        * (np.exp(-k * np.maximum(tt, 0)) - np.exp(-ka * np.maximum(tt, 0)))
    )
    return np.where(tt > 0, c, 0.0)


def test_zero_dose():
    for text in ("0 mg IV q12h x3", "0 mg PO q12h x3", "0 mg IV over 2 h q12h x3"):
        res = simulate(
            PKModel(2),
            {**params_1cmt(), "q2_L_per_h": CL, "v2_L": V},
            build_event_table(text, N),
            np.linspace(0, 48, 13),
            windows=[Window(0.0, 48.0, 0.1, "w")],
            return_states=True,
        )
        np.testing.assert_array_equal(res.conc_mg_per_L, 0.0)
        np.testing.assert_array_equal(res.metrics["auc_mg_h_per_L_w"], 0.0)
        np.testing.assert_array_equal(res.metrics["time_above_h_w"], 0.0)
        np.testing.assert_array_equal(res.states["eliminated_mg"], 0.0)


def test_missed_dose_is_superposition_without_it():
    ev = build_event_table("100 mg IV q12h x4", N)
    factor = np.ones((N, 4))
    factor[1, 2] = 0.0  # patient 1 misses the dose at 24 h
    t = np.linspace(0.0, 60.0, 61)
    res = simulate(PKModel(1), params_1cmt(), ev.with_amount_factor(factor), t)
    expected = sum(bolus_1(t - 12.0 * j, 100.0) * factor[:, j : j + 1] for j in range(4))
    close(res.conc_mg_per_L, expected)


def test_one_patient():
    p = {k: v[:1] for k, v in params_1cmt().items()}
    t = np.linspace(0.0, 24.0, 25)
    res = simulate(
        PKModel(1),
        p,
        build_event_table("100 mg PO q12h x2", 1),
        t,
        windows=[Window(0.0, 24.0, name="w")],
    )
    assert res.conc_mg_per_L.shape == (1, t.size)
    assert res.metrics["cmax_mg_per_L_w"].shape == (1,)
    close(res.conc_mg_per_L, (bateman(t, 100.0) + bateman(t - 12.0, 100.0))[:1])


def test_scalar_parameters_broadcast():
    t = np.linspace(0.0, 24.0, 25)
    p = {"cl_L_per_h": 5.0, "v1_L": 50.0}
    res = simulate(PKModel(1), p, build_event_table("100 mg IV once", 2), t)
    close(res.conc_mg_per_L, np.broadcast_to(100.0 / 50.0 * np.exp(-0.1 * t), (2, t.size)))


def _two_cmt_oral(t, dose, p):
    """2-cmt first-order absorption, one dose at t = 0 (sum of three exponentials)."""
    cl, v1, q, v2, ka, f = (
        p[k][:, None] for k in ("cl_L_per_h", "v1_L", "q2_L_per_h", "v2_L", "ka_per_h", "f_bio")
    )
    k10, k12, k21 = cl / v1, q / v1, q / v2
    s = k10 + k12 + k21
    disc = np.sqrt(s * s - 4 * k10 * k21)
    al, be = (s + disc) / 2, (s - disc) / 2
    tt = np.maximum(np.asarray(t)[None, :], 0.0)
    c = (f * dose * ka / v1) * (
        (k21 - al) / ((ka - al) * (be - al)) * np.exp(-al * tt)
        + (k21 - be) / ((ka - be) * (al - be)) * np.exp(-be * tt)
        + (k21 - ka) / ((al - ka) * (be - ka)) * np.exp(-ka * tt)
    )
    return np.where(np.asarray(t)[None, :] > 0, c, 0.0)


P2 = {
    "cl_L_per_h": CL,
    "v1_L": V,
    "q2_L_per_h": np.array([10.0, 3.0, 40.0]),
    "v2_L": np.array([100.0, 20.0, 300.0]),
    "ka_per_h": KA,
    "f_bio": F,
}


def test_two_compartment_oral_triexponential():
    t = np.linspace(0.0, 72.0, 145)
    res = simulate(PKModel(2), P2, build_event_table("100 mg PO q12h x4", N), t)
    close(res.conc_mg_per_L, sum(_two_cmt_oral(t - 12.0 * j, 100.0, P2) for j in range(4)))


@pytest.mark.parametrize(
    ("text", "tlag"),
    [
        ("100 mg IV over 2 h q12h x3 ss", 0.0),
        ("100 mg IV over 11.5 h q12h x3 ss", 0.0),
        ("100 mg PO q12h x3 ss", 0.0),
        ("100 mg PO q12h x3 ss", 5.0),
    ],
)
def test_steady_state_equals_infinite_superposition(text, tlag):
    """'ss' = the same doses repeated since t = -infinity (here: 600 earlier doses, e^{-k 600
    tau} < 1e-300): infusions, oral with and without lag; 1- and 2-compartment models."""
    tau = 12.0
    t = np.array([0.0, 0.5, 1.0, 2.0, 4.9, 5.0, 5.1, 11.0, 12.0, 20.0, 35.99])
    past = -tau * np.arange(1, 601)
    doses = np.concatenate([past, tau * np.arange(3)])
    ev = build_event_table(text, N)
    p1 = params_1cmt(tlag_h=np.full(N, tlag))
    res = simulate(PKModel(1), p1, ev, t)
    if "over" in text:
        dur = float(ev.duration_h[0])
        expected = sum(infusion_1(t - d, 100.0, dur) for d in doses)
    else:
        expected = sum(_bateman_shifted(t, np.full(N, d + tlag), 100.0) for d in doses)
    close(res.conc_mg_per_L, expected)
    if "PO" in text:
        p2 = {**P2, "tlag_h": np.full(N, tlag)}
        res = simulate(PKModel(2), p2, ev, t)
        close(res.conc_mg_per_L, sum(_two_cmt_oral(t - d - tlag, 100.0, P2) for d in doses))


def test_per_patient_event_lists_with_different_times():
    """Arbitrary per-patient events (titration, late start): superposition per patient."""
    events = [
        [(0.0, 100.0, "iv"), (12.0, 50.0, "iv")],
        [(5.0, 200.0, "iv")],
        [(3.0, 80.0, "iv"), (3.0, 20.0, "iv"), (30.0, 10.0, "iv")],
    ]
    ev = EventTable.from_patient_events(events)
    t = np.linspace(0.0, 48.0, 97)
    res = simulate(PKModel(1), params_1cmt(), ev, t)
    expected = np.zeros((N, t.size))
    for i, pe in enumerate(events):
        for te, amt, _ in pe:
            expected[i] += bolus_1(t - te, amt)[i]
    close(res.conc_mg_per_L, expected)
    assert np.all(res.conc_mg_per_L[1, t < 5.0] == 0.0)


def test_fast_distribution_and_absorption_metrics():
    """Stiff patients (alpha ~ 43 /h, ka 50 /h) next to ordinary ones: C, Cmax, Tmax, Cmin
    and time above from the metrics (crossings on coarse grid steps) within rtol 1e-10."""
    p = {
        "cl_L_per_h": np.array([5.0, 5.0, 2.0]),
        "v1_L": np.array([5.0, 50.0, 30.0]),
        "q2_L_per_h": np.array([200.0, 10.0, 60.0]),
        "v2_L": np.array([100.0, 100.0, 20.0]),
    }
    thr = 0.2
    t = np.array([0.0, 0.01, 0.1, 1.0, 7.3, 24.0, 48.0])
    res = simulate(
        PKModel(2),
        p,
        build_event_table("100 mg IV once", N),
        t,
        windows=[Window(0.0, 48.0, thr, "w"), Window(3.3, 10.1, thr, "x")],
    )
    cl, v1, q, v2 = (p[k] for k in ("cl_L_per_h", "v1_L", "q2_L_per_h", "v2_L"))
    close(res.conc_mg_per_L, two_cmt_bolus(t, 100.0, cl, v1, q, v2))
    close(res.metrics["cmax_mg_per_L_x"], two_cmt_bolus([3.3], 100.0, cl, v1, q, v2)[:, 0])
    close(res.metrics["cmin_mg_per_L_x"], two_cmt_bolus([10.1], 100.0, cl, v1, q, v2)[:, 0])

    def above(i):
        def f(s):
            return two_cmt_bolus([s], 100.0, cl, v1, q, v2)[i, 0] - thr

        if f(48.0) >= 0.0:
            return 48.0
        return brentq(f, 0.0, 48.0, xtol=1e-14, rtol=1e-15)  # C decreases monotonically

    t_cross = [above(i) for i in range(N)]
    close(res.metrics["time_above_h_w"], np.array(t_cross))
    # oral, ka 50 /h: Bateman Cmax/Tmax
    ka = np.array([50.0, 50.0, 1.0])
    res = simulate(
        PKModel(1),
        params_1cmt(ka_per_h=ka),
        build_event_table("100 mg PO once", N),
        [0.0, 24.0],
        windows=[Window(0.0, 24.0, name="w")],
    )
    tmax = np.log(ka / K) / (ka - K)
    cmax = F * 100.0 * ka / (V * (ka - K)) * (np.exp(-K * tmax) - np.exp(-ka * tmax))
    close(res.metrics["tmax_h_w"], tmax, rtol=1e-8)
    close(res.metrics["cmax_mg_per_L_w"], cmax)


def test_back_to_back_infusions_equal_one_long_infusion():
    """Infusions of 12 h every 12 h: one 36-h infusion at the same rate (end and start of two
    infusions at the same node)."""
    t = np.linspace(0.0, 48.0, 97)
    a = simulate(PKModel(1), params_1cmt(), build_event_table("100 mg IV over 12 h q12h x3", N), t)
    close(a.conc_mg_per_L, infusion_1(t, 300.0, 36.0))


def _bateman_integral(T, dose):
    """Integral of :func:`bateman` from 0 to each of ``T`` (shape (n_t,)): (n, n_t)."""
    T = np.maximum(np.asarray(T, dtype=float), 0.0)[None, :]
    ka, k, v, f = (x[:, None] for x in (KA, K, V, F))
    return f * dose * ka / (v * (ka - k)) * ((1 - np.exp(-k * T)) / k - (1 - np.exp(-ka * T)) / ka)


@pytest.mark.parametrize("return_states", [False, True])
def test_auc_window_after_steps_that_skip_the_auc_state(return_states):
    """The plain steps outside every window that reports an AUC leave the AUC state as it was
    (``linear_kernel``'s ``step_fn_noauc``); the AUC over the last of 10 oral doses, after
    108 h of such steps with hourly outputs and a window over everything that asks for
    ``cmax`` only, still equals the superposition of Bateman integrals (rtol 1e-10), and so
    does a second AUC window early in the regimen. With the states returned every step keeps
    the AUC state: the same values. A window that does not ask for the AUC reports none."""
    dose, tau, n_doses = 100.0, 12.0, 10
    windows = [
        Window(0.0, 120.0, name="all", metrics=("cmax",)),
        Window(13.5, 20.0, name="early", metrics=("auc", "cavg")),
        Window(108.0, 120.0, name="last", metrics=("auc",)),
    ]
    res = simulate(
        PKModel(1),
        params_1cmt(),
        build_event_table(f"{dose} mg PO q12h x{n_doses}", N),
        np.arange(0.0, 120.5, 1.0),
        windows=windows,
        return_states=return_states,
    )
    starts = tau * np.arange(n_doses)

    def auc(a, b):
        return sum(
            _bateman_integral([b - t0], dose)[:, 0] - _bateman_integral([a - t0], dose)[:, 0]
            for t0 in starts
        )

    close(res.metrics["auc_mg_h_per_L_last"], auc(108.0, 120.0))
    close(res.metrics["auc_mg_h_per_L_early"], auc(13.5, 20.0))
    close(res.metrics["cavg_mg_per_L_early"], auc(13.5, 20.0) / 6.5)
    assert "auc_mg_h_per_L_all" not in res.metrics
    assert "cmax_mg_per_L_last" not in res.metrics


@pytest.mark.parametrize(
    "given",
    [
        5.0,
        np.arange(4.0, 10.0)[::2],
        np.broadcast_to(np.array(5.0), (3,)),
        np.array([5.0, 2.0, 11.0], dtype=np.float32),
    ],
    ids=["scalar", "strided", "read_only_broadcast", "float32"],
)
def test_parameters_reach_the_kernel_as_one_array_type(given):
    """Whatever form a parameter is given in, ``check_parameters`` hands the kernels a
    writeable C-contiguous float64 array with the same values, so every call types the same
    compiled kernel (a read-only broadcast ``v1_L`` once compiled a second one, ~50 s)."""
    import numba as nb

    from insilico.pk.models import check_parameters

    out = check_parameters({"cl_L_per_h": given}, ["cl_L_per_h"], 3)["cl_L_per_h"]
    assert nb.typeof(out) == nb.typeof(np.zeros(3))
    np.testing.assert_array_equal(out, np.broadcast_to(np.asarray(given, dtype=float), (3,)))
