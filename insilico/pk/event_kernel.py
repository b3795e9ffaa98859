"""The event kernel: one subject's records after another, with NONMEM's dosing semantics.

Each subject is a run of records (observations, doses, resets) in time order. Between two
events the state moves by

- the exact solution of the linear system ``dx/dt = A x + r`` (``A`` the compartment matrix,
  ``r`` the infusion rates into each compartment, mg/h), from the matrix exponential of the
  augmented matrix ``[[A h, I h], [0, 0]]``, whose blocks are ``exp(A h)`` and
  ``int_0^h exp(A s) ds`` (Van Loan 1978, doi:10.1109/TAC.1978.1101743); or
- for models with Michaelis-Menten elimination or pharmacodynamic states, the Dormand-Prince
  5(4) pair (Dormand & Prince 1980, doi:10.1016/0771-050X(80)90013-3) with step-size
  control at a tight tolerance, stopping at every event.

Dosing follows NONMEM: doses into a compartment with that compartment's lag time and
bioavailability; infusions at a given rate (``RATE > 0``: the bioavailable amount over
``F·AMT/RATE`` h), modelled rate (``RATE = -1``) or modelled duration (``RATE = -2``); ``ADDL``
additional doses every ``II`` h; ``SS = 1`` replaces the state with the periodic steady state
of the dose at the record, ``SS = 2`` adds it; ``EVID = 3`` resets the system and ``EVID = 4``
resets and doses.

State layout and parameter columns are fixed by :mod:`insilico.model.layout`; the kernel
sees only integers and arrays.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from insilico.pd.none import init_pd, rhs_pd  # kernel-binding: pd
from insilico.pk.expm import expm_small

# --- structure descriptor (int64 array) indices ------------------------------------------------
S_NPK = 0  # number of PK (linear) states
S_DEPOT = 1  # index of the depot (dose site of extravascular doses) or -1
S_NCHAIN = 2  # transit compartments after the depot (transit absorption)
S_CENTRAL = 3
S_P1 = 4
S_P2 = 5
S_EFFECT = 6
S_ELIM = 7  # 0 linear, 1 Michaelis-Menten, 2 both
S_PDOFF = 8  # first PD state or -1
S_NPD = 9
S_NSTATES = 10
S_ABS = 11  # 0 none, 1 first order, 2 zero order, 3 transit
S_DRIVER = 12  # state whose concentration drives PD (central or effect)
S_AUC = 13  # state integrating the central concentration (mg·h/L) or -1
S_SIZE = 14

# --- parameter columns ------------------------------------------------------------------------
P_CL, P_V1, P_Q2, P_V2, P_Q3, P_V3, P_KA, P_KTR, P_KE0, P_VMAX, P_KM, P_FU = range(12)
P_PD = 12  # first PD parameter

#: relative and absolute tolerances of the ODE integrator (errors against Radau at rtol 1e-12:
#: ~1e-8 for Michaelis-Menten PK, below 1e-6 for indirect responses)
RTOL = 1e-8
ATOL = 1e-12

# Dormand-Prince 5(4) tableau
_A21 = 1.0 / 5.0
_A31, _A32 = 3.0 / 40.0, 9.0 / 40.0
_A41, _A42, _A43 = 44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0
_A51, _A52, _A53, _A54 = 19372.0 / 6561.0, -25360.0 / 2187.0, 64448.0 / 6561.0, -212.0 / 729.0
_A61, _A62, _A63 = 9017.0 / 3168.0, -355.0 / 33.0, 46732.0 / 5247.0
_A64, _A65 = 49.0 / 176.0, -5103.0 / 18656.0
_B1, _B3, _B4 = 35.0 / 384.0, 500.0 / 1113.0, 125.0 / 192.0
_B5, _B6 = -2187.0 / 6784.0, 11.0 / 84.0
_E1, _E3, _E4 = 71.0 / 57600.0, -71.0 / 16695.0, 71.0 / 1920.0
_E5, _E6, _E7 = -17253.0 / 339200.0, 22.0 / 525.0, -1.0 / 40.0


@nb.njit(cache=True)
def build_matrix(p, s, A):
    """The compartment matrix ``A`` (per h) of the linear PK states for parameters ``p``."""
    A[:, :] = 0.0
    c = s[S_CENTRAL]
    v1 = p[P_V1]
    d = s[S_DEPOT]
    if s[S_ABS] == 1:
        A[d, d] = -p[P_KA]
        A[c, d] += p[P_KA]
    elif s[S_ABS] == 3:
        ktr = p[P_KTR]
        n = s[S_NCHAIN]
        for j in range(n + 1):
            A[d + j, d + j] = -ktr
            A[d + j + 1, d + j] += ktr
        ab = d + n + 1
        A[ab, ab] = -p[P_KA]
        A[c, ab] += p[P_KA]
    if s[S_ELIM] != 1:
        A[c, c] -= p[P_CL] / v1
    if s[S_P1] >= 0:
        j = s[S_P1]
        A[c, c] -= p[P_Q2] / v1
        A[j, c] += p[P_Q2] / v1
        A[c, j] += p[P_Q2] / p[P_V2]
        A[j, j] -= p[P_Q2] / p[P_V2]
    if s[S_P2] >= 0:
        j = s[S_P2]
        A[c, c] -= p[P_Q3] / v1
        A[j, c] += p[P_Q3] / v1
        A[c, j] += p[P_Q3] / p[P_V3]
        A[j, j] -= p[P_Q3] / p[P_V3]
    if s[S_EFFECT] >= 0:
        e = s[S_EFFECT]
        A[e, c] = p[P_KE0] / v1
        A[e, e] = -p[P_KE0]
    if s[S_AUC] >= 0:
        A[s[S_AUC], c] = 1.0 / v1


@nb.njit(cache=True)
def transition(A, h, phi, gam):
    """``phi = exp(A h)`` and ``gam = int_0^h exp(A s) ds`` (``h`` may be negative)."""
    n = A.shape[0]
    M = np.zeros((2 * n, 2 * n))
    for i in range(n):
        for j in range(n):
            M[i, j] = A[i, j] * h
        M[i, n + i] = h
    E = np.empty((2 * n, 2 * n))
    expm_small(M, E)
    for i in range(n):
        for j in range(n):
            phi[i, j] = E[i, j]
            gam[i, j] = E[i, n + j]


@nb.njit(cache=True)
def _solve(M, b):
    """Solve ``M x = b`` for a small dense matrix (partial pivoting)."""
    return np.linalg.solve(M, b)


# --- bindings: a generated copy of this module replaces the lines marked "kernel-binding" ----
HAS_PD = False  # kernel-binding: has_pd
ODE = False  # kernel-binding: ode


@nb.njit(cache=True)
def rhs(x, p, s, A, r, dx):
    npk = s[S_NPK]
    for i in range(npk):
        acc = r[i]
        for j in range(npk):
            acc += A[i, j] * x[j]
        dx[i] = acc
    c = s[S_CENTRAL]
    if s[S_ELIM] != 0:
        conc = x[c] / p[P_V1]
        dx[c] -= p[P_VMAX] * conc / (p[P_KM] + conc)
    if HAS_PD:
        o = s[S_PDOFF]
        drv = s[S_DRIVER]
        cd = p[P_FU] * (x[drv] if drv == s[S_EFFECT] else x[drv] / p[P_V1])
        rhs_pd(cd, x[o:], p[P_PD:], dx[o:])


@nb.njit(cache=True)
def initial(p, s, x):
    x[:] = 0.0
    if HAS_PD:
        o = s[S_PDOFF]
        init_pd(p[P_PD:], x[o:])


@nb.njit(cache=True)
def integrate(x, t0, t1, p, s, A, r, hwork):
    """Dormand-Prince 5(4) from t0 to t1 (t1 > t0) in place; returns 0 or -1."""
    n = x.shape[0]
    k1 = np.empty(n)
    k2 = np.empty(n)
    k3 = np.empty(n)
    k4 = np.empty(n)
    k5 = np.empty(n)
    k6 = np.empty(n)
    k7 = np.empty(n)
    y = np.empty(n)
    yn = np.empty(n)
    t = t0
    h = hwork[0]
    span = t1 - t0
    if h <= 0.0 or h > span:
        h = span
    rhs(x, p, s, A, r, k1)
    steps = 0
    while t < t1:
        if t + h > t1:
            h = t1 - t
        for i in range(n):
            y[i] = x[i] + h * _A21 * k1[i]
        rhs(y, p, s, A, r, k2)
        for i in range(n):
            y[i] = x[i] + h * (_A31 * k1[i] + _A32 * k2[i])
        rhs(y, p, s, A, r, k3)
        for i in range(n):
            y[i] = x[i] + h * (_A41 * k1[i] + _A42 * k2[i] + _A43 * k3[i])
        rhs(y, p, s, A, r, k4)
        for i in range(n):
            y[i] = x[i] + h * (_A51 * k1[i] + _A52 * k2[i] + _A53 * k3[i] + _A54 * k4[i])
        rhs(y, p, s, A, r, k5)
        for i in range(n):
            y[i] = x[i] + h * (
                _A61 * k1[i] + _A62 * k2[i] + _A63 * k3[i] + _A64 * k4[i] + _A65 * k5[i]
            )
        rhs(y, p, s, A, r, k6)
        for i in range(n):
            yn[i] = x[i] + h * (_B1 * k1[i] + _B3 * k3[i] + _B4 * k4[i] + _B5 * k5[i] + _B6 * k6[i])
        rhs(yn, p, s, A, r, k7)
        err = 0.0
        for i in range(n):
            e = h * (
                _E1 * k1[i] + _E3 * k3[i] + _E4 * k4[i] + _E5 * k5[i] + _E6 * k6[i] + _E7 * k7[i]
            )
            sc = ATOL + RTOL * max(abs(x[i]), abs(yn[i]))
            q = e / sc
            err += q * q
        err = np.sqrt(err / n)
        if err <= 1.0:
            t = t + h
            for i in range(n):
                x[i] = yn[i]
                k1[i] = k7[i]
            fac = 5.0 if err == 0.0 else min(5.0, max(0.2, 0.9 * err**-0.2))
            if t < t1:
                hwork[0] = h * fac
            h = h * fac
        else:
            h = h * max(0.2, 0.9 * err**-0.2)
        steps += 1
        if steps > 1_000_000 or h < 1e-14 * max(1.0, abs(t1)):
            return -1
    return 0


@nb.njit(cache=True)
def advance(x, t0, t1, p, s, A, phi, gam, r, hwork, cache):
    """Move the state from t0 to t1 with constant infusion rates ``r``."""
    h = t1 - t0
    if h == 0.0:
        return 0
    if ODE:
        if h < 0.0:
            return -2
        return integrate(x, t0, t1, p, s, A, r, hwork)
    npk = s[S_NPK]
    if cache[0] != h or cache[1] != 1.0:
        transition(A, h, phi, gam)
        cache[0] = h
        cache[1] = 1.0
    y = np.empty(npk)
    for i in range(npk):
        acc = 0.0
        for j in range(npk):
            acc += phi[i, j] * x[j] + gam[i, j] * r[j]
        y[i] = acc
    x[:npk] = y
    return 0


@nb.njit(cache=True)
def dose_shape(k, amt, rate, lag, fbio, mrate, mdur):
    """(bioavailable amount mg, infusion rate mg/h or 0 for a bolus, duration h)."""
    a = amt[k] * fbio[k]
    if rate[k] > 0.0:
        return a, rate[k], a / rate[k]
    if rate[k] == -1.0:
        return a, mrate[k], a / mrate[k]
    if rate[k] == -2.0:
        return a, a / mdur[k], mdur[k]
    return a, 0.0, 0.0


@nb.njit(cache=True)
def steady_state_linear(x, c, a, R, D, L, tau, s, A, rr, ev_t, ev_c, ev_v):
    """Add the periodic steady state at the record time to ``x`` (superposition).

    Doses of ``a`` mg (bolus, ``R = 0``) or infusions at ``R`` mg/h for ``D`` h into
    compartment ``c`` start every ``tau`` h, the next one ``L`` h after the record. The
    infusions still running at the record time are added to ``rr`` and their ends
    (h after the record) returned in ``ev_t``; returns how many.
    """
    npk = s[S_NPK]
    Ak = A[:npk, :npk].copy()
    phi = np.empty((npk, npk))
    gam = np.empty((npk, npk))
    xs = np.zeros(npk)
    if R == 0.0 and a == 0.0:
        return 0
    if tau <= 0.0:
        # constant infusion at steady state: A x + r = 0 (the infusion stops at the record)
        b = np.zeros(npk)
        b[c] = -R
        xs = _solve(Ak, b)
        for i in range(npk):
            x[i] += xs[i]
        return 0
    # w: the state one full dose after its start (bolus: the dose itself; infusion: at D)
    w = np.zeros(npk)
    if R == 0.0:
        w[c] = a
    else:
        transition(Ak, D, phi, gam)
        for i in range(npk):
            w[i] = gam[i, c] * R
    # NONMEM's rule when the lag exceeds the interval: the trough at the dose instant is
    # moved by tau - L (< 0) with the dose given and every infusion running at that
    # instant, ends ignored
    late = L > tau
    Lp = 0.0 if late else L
    # first k >= 1 with k tau - Lp >= D
    k1 = 1
    while k1 * tau - Lp < D:
        k1 += 1
    transition(Ak, tau, phi, gam)
    M = -phi
    for i in range(npk):
        M[i, i] += 1.0
    g = _solve(M, w)
    transition(Ak, k1 * tau - Lp - D, phi, gam)
    for i in range(npk):
        acc = 0.0
        for j in range(npk):
            acc += phi[i, j] * g[j]
        xs[i] = acc
    nev = 0
    for kk in range(1, k1):
        tt = kk * tau - Lp
        transition(Ak, tt, phi, gam)
        if R == 0.0:
            for i in range(npk):
                xs[i] += phi[i, c] * a
        else:
            for i in range(npk):
                xs[i] += gam[i, c] * R
            if tt >= 0.0 and not late:
                # this infusion still runs at the record time: its end is pending
                if nev >= ev_t.shape[0]:
                    return -1
                rr[c] += R
                ev_t[nev] = D - tt
                ev_c[nev] = c
                ev_v[nev] = -R
                nev += 1
    if late:
        nrun = k1 if R > 0.0 else 0
        if R == 0.0:
            xs[c] += a
        dt = tau - L
        transition(Ak, dt, phi, gam)
        y = np.empty(npk)
        for i in range(npk):
            acc = 0.0
            for j in range(npk):
                acc += phi[i, j] * xs[j]
            y[i] = acc + gam[i, c] * R * nrun
        xs[:] = y
        for kk in range(nrun):
            if nev >= ev_t.shape[0]:
                return -1
            rr[c] += R
            ev_t[nev] = D - dt - kk * tau
            ev_c[nev] = c
            ev_v[nev] = -R
            nev += 1
    for i in range(npk):
        x[i] += xs[i]
    return nev


@nb.njit(cache=True)
def _changed(a, b):
    for i in range(a.shape[0]):
        if a[i] != b[i]:
            return True
    return False


@nb.njit(cache=True, nogil=True)
def kernel(
    offsets,
    time,
    evid,
    amt,
    rate,
    dcmt,
    ss,
    ii,
    addl,
    lag,
    fbio,
    mrate,
    mdur,
    P,
    s,
    out,
    status,
):
    nsub = offsets.shape[0] - 1
    nst = s[S_NSTATES]
    npk = s[S_NPK]
    A = np.zeros((npk, npk))
    phi = np.zeros((npk, npk))
    gam = np.zeros((npk, npk))
    x = np.zeros(nst)
    r = np.zeros(nst)
    hwork = np.zeros(1)
    cache = np.zeros(2)
    cap = 256
    # one-off events: time, compartment, value (>0 bolus amount if kind 0, rate delta kind 1)
    ev_t = np.empty(cap)
    ev_c = np.empty(cap, dtype=np.int64)
    ev_v = np.empty(cap)
    ev_k = np.empty(cap, dtype=np.int64)
    # dose generators (ADDL): next time, doses left, interval, compartment, amount, rate, dur
    g_t = np.empty(cap)
    g_n = np.empty(cap, dtype=np.int64)
    g_ii = np.empty(cap)
    g_c = np.empty(cap, dtype=np.int64)
    g_a = np.empty(cap)
    g_r = np.empty(cap)
    g_d = np.empty(cap)
    tmp_t = np.empty(cap)
    tmp_c = np.empty(cap, dtype=np.int64)
    tmp_v = np.empty(cap)
    for si in range(nsub):
        lo = offsets[si]
        hi = offsets[si + 1]
        p = P[lo]
        build_matrix(p, s, A)
        cache[1] = 0.0
        initial(p, s, x)
        r[:] = 0.0
        hwork[0] = 0.0
        nev = 0
        ngen = 0
        tcur = time[lo]
        for k in range(lo, hi):
            t = time[k]
            p = P[k]
            # parameters of this record apply to the advance that ends at it (NONMEM)
            if k > lo and _changed(P[k - 1], p):
                build_matrix(p, s, A)
                cache[1] = 0.0
            # process pending events up to and including t
            while True:
                te = np.inf
                which = -1
                isgen = False
                for e in range(nev):
                    if ev_t[e] < te:
                        te = ev_t[e]
                        which = e
                        isgen = False
                for g in range(ngen):
                    if g_t[g] < te:
                        te = g_t[g]
                        which = g
                        isgen = True
                if which < 0 or te > t:
                    break
                if advance(x, tcur, te, p, s, A, phi, gam, r, hwork, cache) != 0:
                    status[si] = 1
                tcur = te
                if isgen:
                    gc = g_c[which]
                    if g_r[which] > 0.0 and nev >= cap:
                        status[si] = 3
                    elif g_r[which] > 0.0:
                        r[gc] += g_r[which]
                        ev_t[nev] = te + g_d[which]
                        ev_c[nev] = gc
                        ev_v[nev] = -g_r[which]
                        ev_k[nev] = 1
                        nev += 1
                    else:
                        x[gc] += g_a[which]
                    g_n[which] -= 1
                    g_t[which] = te + g_ii[which]
                    if g_n[which] <= 0:
                        ngen -= 1
                        g_t[which] = g_t[ngen]
                        g_n[which] = g_n[ngen]
                        g_ii[which] = g_ii[ngen]
                        g_c[which] = g_c[ngen]
                        g_a[which] = g_a[ngen]
                        g_r[which] = g_r[ngen]
                        g_d[which] = g_d[ngen]
                else:
                    ec = ev_c[which]
                    if ev_k[which] == 0:
                        x[ec] += ev_v[which]
                    else:
                        r[ec] += ev_v[which]
                        if abs(r[ec]) < 1e-12 * (1.0 + abs(ev_v[which])):
                            r[ec] = 0.0
                    nev -= 1
                    ev_t[which] = ev_t[nev]
                    ev_c[which] = ev_c[nev]
                    ev_v[which] = ev_v[nev]
                    ev_k[which] = ev_k[nev]
            if advance(x, tcur, t, p, s, A, phi, gam, r, hwork, cache) != 0:
                status[si] = 1
            tcur = t
            ev = evid[k]
            if ev == 3 or ev == 4:
                initial(p, s, x)
                r[:] = 0.0
                nev = 0
                ngen = 0
                hwork[0] = 0.0
            if ev == 1 or ev == 4:
                c = dcmt[k]
                a, R, D = dose_shape(k, amt, rate, lag, fbio, mrate, mdur)
                L = lag[k]
                if ss[k] == 1 or ss[k] == 2:
                    if ss[k] == 1:
                        initial(p, s, x)
                        r[:] = 0.0
                        nev = 0
                        ngen = 0
                    if ODE:
                        status[si] = 2
                    else:
                        n0 = nev
                        nev = steady_state_linear(
                            x, c, a, R, D, L, ii[k], s, A, r, tmp_t, tmp_c, tmp_v
                        )
                        if nev < 0 or n0 + nev > cap:
                            status[si] = 3
                            nev = 0
                        for e in range(nev):
                            ev_t[n0 + e] = t + tmp_t[e]
                            ev_c[n0 + e] = tmp_c[e]
                            ev_v[n0 + e] = tmp_v[e]
                            ev_k[n0 + e] = 1
                        nev = n0 + nev
                if a > 0.0 and (nev > cap - 2 or ngen >= cap):
                    # more pending doses and infusion ends than the queue holds
                    status[si] = 3
                elif a > 0.0:
                    if R > 0.0:
                        # infusion: start at t + L (kind 1 with +R), end at t + L + D
                        ev_t[nev] = t + L
                        ev_c[nev] = c
                        ev_v[nev] = R
                        ev_k[nev] = 1
                        nev += 1
                        ev_t[nev] = t + L + D
                        ev_c[nev] = c
                        ev_v[nev] = -R
                        ev_k[nev] = 1
                        nev += 1
                    else:
                        ev_t[nev] = t + L
                        ev_c[nev] = c
                        ev_v[nev] = a
                        ev_k[nev] = 0
                        nev += 1
                    if addl[k] > 0 and ii[k] > 0.0:
                        g_t[ngen] = t + L + ii[k]
                        g_n[ngen] = addl[k]
                        g_ii[ngen] = ii[k]
                        g_c[ngen] = c
                        g_a[ngen] = a
                        g_r[ngen] = R
                        g_d[ngen] = D
                        ngen += 1
            for i in range(nst):
                out[k, i] = x[i]
