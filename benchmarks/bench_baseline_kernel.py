"""How fast and how accurate the minimal batched kernel is, side by side with insilico on the
reference workload of ``benchmarks/bench_engine.py``.

The minimal kernel is the plainest fast algorithm for the workload: exact PK transition
matrices and RK4 PD on a dose-aligned graded grid, compiled with numba, patients as the inner
(SIMD) loop, summaries accumulated while stepping. This script builds that algorithm with
nothing else and times it in the same process as ``insilico.pk.simulate``, alternating them
call by call (on a machine whose speed drifts, only an in-process alternation gives
comparable numbers). Each one's errors against Radau are printed under the speeds, so the
table says what each computes for its time.

The baseline kernel (``baseline_block``):

- state per patient: depot, central, peripheral amount (mg) and the integral of the central
  amount (mg h, for the AUC); the 4 x 4 transition matrix of every step size
  (1/128 ... 1 h, dyadic) from one Taylor exponential of ``A / 128`` and seven squarings, per
  patient;
- grid per 12 h interval (``GRIDS``): by default 1/32, 1/32, 1/16, 1/8, 1/4, 1/2, then eleven
  1 h steps (17 steps; insilico's default grid starts at 1/16 h, 16 steps); the dose is added
  to the depot at the interval's start;
- the response by classical RK4 with the concentration exact at the step's start, middle and
  end (the forcing ``kin (1 - Imax C / (IC50 + C))`` does not depend on R);
- summaries at the nodes only: Cmax and Cmin of the last interval, its AUC from the integral
  state (exact), the smallest response at a node, the response at day 28; hourly outputs of C
  and R into fresh ``(673, n)`` arrays per chunk, as insilico writes them.

Variants (``VARIANTS``): the default grid; the grid from 1/64 h; half-hour steps after the
first half hour (RK4's error on the response is set by the 1 h steps of the tail); and with
``hermite`` the minimum of each step's cubic Hermite interpolant of R where dR/dt changes
sign towards a trough, evaluated for every patient at every node (branch-free, in SIMD), the
obvious way to take the response's minimum off the grid inside the loop; and with
``lobatto`` the response by insilico's rule instead of RK4 (exponential 4-point Lobatto:
exact for the decay, the forcing interpolated at 0, a, 1 - a, 1 of each step; weights per
patient and step size), written plainly in the same loop, which separates the cost of the
rule from that of insilico's kernel around it; and with ``out_dtype=np.float32`` the hourly
outputs stored in single precision (relative rounding 6e-8, under the 2e-6 error bound; the
summaries stay float64), which measures what the outputs' memory traffic costs; and with
``twopass`` (Lobatto) the plain loop keeps a checkpoint at each dose and the node minimum of
R per dosing interval, and after the loop each patient's interval with the lowest node
minimum is re-stepped from its checkpoint with slopes and the Hermite trough
(``_second_pass``): the response's minimum off the grid without tracking it while stepping.
It picks the interval by its node minimum, which is exact when the nodes rank the troughs as
their true minima do: true on the regular regimen, false for up to 3 % of patients once
doses vary or are missed (``run_baseline(..., missed=, dose_cv=)``), so it measures a cost,
not a method to adopt.

What it does not do, and insilico does: Cmax and Cmin between nodes, the response's
minimum refined by re-integration, any other model, route, PD model, window or event, and
checks of its input.

Usage: ``python benchmarks/bench_baseline_kernel.py [--n 20000] [--rounds 8] [--n-ref 10]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numba as nb
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_engine as be  # noqa: E402  (the workload, insilico's runner and the Radau reference)

#: Steps of one dosing interval as exponents of two (1/32, 1/32, 1/16, ..., 1/2, then 1 h).
STEP_EXPONENTS = np.array([-5, -5, -4, -3, -2, -1] + [0] * 11, dtype=np.int64)
#: Grids of one 12 h interval by name (exponents of two, in h): the default above; from
#: 1/64 h (one more step); half-hour steps after the first half hour (28 steps, for RK4's
#: error on the response in the smooth tail, which the 1 h steps set).
GRIDS = {
    "1h": STEP_EXPONENTS,
    "1h-from-1/64": np.array([-6, -6, -5, -4, -3, -2, -1] + [0] * 11, dtype=np.int64),
    "0.5h": np.array([-5, -5, -4, -3, -2] + [-1] * 23, dtype=np.int64),
}
#: Transition sizes 2**(k - 7) h for k = 0..7 (1/128 ... 1 h; the half steps of RK4 included).
N_SIZES = 8
SMALLEST = 7
BLOCK = 1_000


@nb.njit(cache=True, error_model="numpy", boundscheck=False)
def _transitions(ka, k10, k12, k21, h0, E):
    """``E[k, :, :, j] = expm(A_j h0 2**k)`` for patients ``j`` (state: depot, central,
    peripheral, integral of central); Taylor to degree 12 at ``A h0`` (``h0`` <= 1/128 h: norm
    ~0.03 here, so the truncation is ~1e-30), then squarings."""
    n = ka.shape[0]
    A = np.zeros((4, 4))
    T = np.empty((4, 4))
    S = np.empty((4, 4))
    for j in range(n):
        h = h0
        A[0, 0] = -ka[j] * h
        A[1, 0] = ka[j] * h
        A[1, 1] = -(k10[j] + k12[j]) * h
        A[1, 2] = k21[j] * h
        A[2, 1] = k12[j] * h
        A[2, 2] = -k21[j] * h
        A[3, 1] = h
        # Horner: S = I + A (I + A/2 (I + ... (I + A/12)))
        for r in range(4):
            for c in range(4):
                S[r, c] = 1.0 if r == c else 0.0
        for m in range(12, 0, -1):
            for r in range(4):
                for c in range(4):
                    acc = 0.0
                    for q in range(4):
                        acc += A[r, q] * S[q, c]
                    T[r, c] = (1.0 if r == c else 0.0) + acc / m
            S[:, :] = T
        for r in range(4):
            for c in range(4):
                E[0, r, c, j] = S[r, c]
        for k in range(1, N_SIZES):
            for r in range(4):
                for c in range(4):
                    acc = 0.0
                    for q in range(4):
                        acc += S[r, q] * S[q, c]
                    T[r, c] = acc
            S[:, :] = T
            for r in range(4):
                for c in range(4):
                    E[k, r, c, j] = S[r, c]


#: Inner nodes ``a`` and ``1 - a`` of 4-point Gauss-Lobatto quadrature on [0, 1].
LOBATTO_A = 0.5 - 0.5 / np.sqrt(5.0)
_GL_X, _GL_W = np.polynomial.legendre.leggauss(10)
GL_X, GL_W = 0.5 * (_GL_X + 1.0), 0.5 * _GL_W  # Gauss-Legendre on [0, 1]


@nb.njit(cache=True, error_model="numpy", boundscheck=False)
def _lobatto_weights(kin, kout, imax, gl_x, gl_w, L):
    """Exponential 4-point Lobatto rule of ``dR/dt = kin (1 - Imax f(t)) - kout R`` on steps
    ``h = 2**(k - 7)``: ``R(h) = L0 R(0) + L1 + sum_i L[2 + i] f(tau_i h)``, with
    ``L0 = exp(-kout h)``, ``L1 = kin (1 - L0) / kout`` and ``L[2 + i] = -kin Imax h
    int_0^1 exp(-kout h (1 - tau)) l_i(tau) dtau`` (``l_i``: Lagrange basis of the nodes 0, a,
    1 - a, 1; the integral by 10-point Gauss-Legendre, exact to ~1e-16 for ``kout h`` <= 1)."""
    nodes = np.array([0.0, LOBATTO_A, 1.0 - LOBATTO_A, 1.0])
    nq = gl_x.shape[0]
    # Lagrange basis at the quadrature points, times the quadrature weights
    lw = np.empty((4, nq))
    for i in range(4):
        for q in range(nq):
            li = gl_w[q]
            for m in range(4):
                if m != i:
                    li *= (gl_x[q] - nodes[m]) / (nodes[i] - nodes[m])
            lw[i, q] = li
    ex = np.empty(nq)
    for j in range(kin.shape[0]):
        # exponentials at the smallest size, then squared from size to size (h doubles)
        z = kout[j] * 2.0**-SMALLEST
        one_minus_e = -np.expm1(-z)
        for q in range(nq):
            ex[q] = np.exp(-z * (1.0 - gl_x[q]))
        for k in range(N_SIZES):
            h = 2.0 ** (k - SMALLEST)
            L[k, 0, j] = 1.0 - one_minus_e
            L[k, 1, j] = kin[j] * one_minus_e / kout[j]
            for i in range(4):
                acc = 0.0
                for q in range(nq):
                    acc += lw[i, q] * ex[q]
                L[k, 2 + i, j] = -kin[j] * imax[j] * h * acc
            one_minus_e = one_minus_e * (2.0 - one_minus_e)
            for q in range(nq):
                ex[q] = ex[q] * ex[q]


@nb.njit(inline="always", error_model="numpy")
def _rk4(d, c, p, r, inv_v1, kin, kout, imax, ic50, h, m10, m11, m12, e10, e11, e12):
    """One RK4 step of ``dR/dt = kin (1 - Imax C / (IC50 + C)) - kout R`` with C exact at the
    step's start, middle and end; returns R at the end, dR/dt at both ends and the central
    amount at the end (mg)."""
    c0 = c * inv_v1
    cmid = (m10 * d + m11 * c + m12 * p) * inv_v1
    c1a = e10 * d + e11 * c + e12 * p
    c1 = c1a * inv_v1
    g0 = kin * (1.0 - imax * c0 / (ic50 + c0))
    gm = kin * (1.0 - imax * cmid / (ic50 + cmid))
    g1 = kin * (1.0 - imax * c1 / (ic50 + c1))
    k1 = g0 - kout * r
    k2 = gm - kout * (r + 0.5 * h * k1)
    k3 = gm - kout * (r + 0.5 * h * k2)
    k4 = g1 - kout * (r + h * k3)
    r1 = r + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
    return r1, k1, g1 - kout * r1, c1a


@nb.njit(inline="always", error_model="numpy")
def _trough_min(y0, y1, f0, f1, h):
    """Minimum of the cubic Hermite interpolant on a step of ``h`` where the derivative goes
    from ``f0 < 0`` to ``f1 >= 0`` (a trough); ``inf`` elsewhere. Branch-free (selects)."""
    dy = (y1 - y0) / h
    c2 = (3.0 * dy - 2.0 * f0 - f1) / h
    c3 = (f0 + f1 - 2.0 * dy) / (h * h)
    sq = np.sqrt(max(c2 * c2 - 3.0 * c3 * f0, 0.0))
    sm = min(max(-f0 / (c2 + sq), 0.0), h)
    herm = y0 + sm * (f0 + sm * (c2 + sm * c3))
    return herm if (f0 < 0.0) & (f1 >= 0.0) else np.inf


@nb.njit(inline="always", error_model="numpy")
def _lobatto(
    d, c, p, r0, f0, iv, c50, a10, a11, a12, b10, b11, b12, e10, e11, e12, l0, l1, l2, l3, l4, l5
):
    """One exponential Lobatto step of the response from the amounts (mg) ``d, c, p`` at the
    step's start, R ``r0`` and ``f0 = C / (IC50 + C)`` there (``iv = 1 / V1``; the central
    rows of the transitions to the inner points a, b and the end; the step's weights L0 ... L5
    of ``_lobatto_weights``); returns R and f at the end and the central amount there."""
    ca = (a10 * d + a11 * c + a12 * p) * iv
    cb = (b10 * d + b11 * c + b12 * p) * iv
    c1a = e10 * d + e11 * c + e12 * p
    c1 = c1a * iv
    f1 = c1 / (c50 + c1)
    r1 = l0 * r0 + (l1 + (l2 * f0 + l3 * (ca / (c50 + ca)) + l4 * (cb / (c50 + cb)) + l5 * f1))
    return r1, f1, c1a


@nb.njit(cache=True, nogil=True, error_model="numpy", boundscheck=False)
def _second_pass(ck, imin, tau_steps, E, Ea, Eb, L, inv_v1, ic50, kin, kout, imax, rmin):
    """The response's minimum of every patient after a plain Lobatto pass: re-step, from its
    checkpoint, the dosing interval whose node minimum is lowest, with dR/dt at the nodes and
    the Hermite minimum of every step holding a trough (the same arithmetic as the loop, so
    the nodes' values are the loop's). Scalar code, one patient at a time. Choosing the
    interval by its node minimum is a heuristic that irregular dose histories defeat (see the
    module docstring)."""
    n_doses, _, n = ck.shape
    for j in range(n):
        ib = 0
        for i in range(1, n_doses):
            if imin[i, j] < imin[ib, j]:
                ib = i
        best = imin[ib, j]
        dj = ck[ib, 0, j]
        cj = ck[ib, 1, j]
        pj = ck[ib, 2, j]
        r0 = ck[ib, 3, j]
        f0 = ck[ib, 4, j]
        c50 = ic50[j]
        iv = inv_v1[j]
        kij = kin[j]
        ko = kout[j]
        im = imax[j]
        s0 = kij * (1.0 - im * f0) - ko * r0
        for s in range(tau_steps.shape[0]):
            k = tau_steps[s] + SMALLEST
            h = 2.0 ** tau_steps[s]
            r1, f1, c1a = _lobatto(
                dj, cj, pj, r0, f0, iv, c50,
                Ea[k, 1, 0, j], Ea[k, 1, 1, j], Ea[k, 1, 2, j],
                Eb[k, 1, 0, j], Eb[k, 1, 1, j], Eb[k, 1, 2, j],
                E[k, 1, 0, j], E[k, 1, 1, j], E[k, 1, 2, j],
                L[k, 0, j], L[k, 1, j], L[k, 2, j], L[k, 3, j], L[k, 4, j], L[k, 5, j],
            )  # fmt: skip
            s1 = kij * (1.0 - im * f1) - ko * r1
            if s0 < 0.0 and s1 >= 0.0:
                best = min(best, _trough_min(r0, r1, s0, s1, h))
            pj = E[k, 2, 0, j] * dj + E[k, 2, 1, j] * cj + E[k, 2, 2, j] * pj
            dj = E[k, 0, 0, j] * dj
            cj = c1a
            r0 = r1
            f0 = f1
            s0 = s1
        rmin[j] = best


@nb.njit(cache=True, nogil=True, error_model="numpy", boundscheck=False)
def baseline_block(
    ka,
    k10,
    k12,
    k21,
    v1,
    f_bio,
    kin,
    kout,
    imax,
    ic50,
    dose,
    n_doses,
    tau_steps,
    hermite,
    lobatto,
    twopass,
    gl_x,
    gl_w,
    out_c,
    out_r,
    col0,
    summaries,
):
    """One block of patients over the whole regimen (see the module docstring); writes the
    hourly rows ``out_c[:, col0 + j]`` (mg/L) and ``out_r[:, col0 + j]``, and
    ``summaries[:, j]`` = Cmax, Cmin, AUC (last interval), smallest response, final response."""
    n = ka.shape[0]
    E = np.empty((N_SIZES, 4, 4, n))
    _transitions(ka, k10, k12, k21, 1.0 / 128.0, E)
    if lobatto:
        Ea = np.empty((N_SIZES, 4, 4, n))
        Eb = np.empty((N_SIZES, 4, 4, n))
        _transitions(ka, k10, k12, k21, LOBATTO_A / 128.0, Ea)
        _transitions(ka, k10, k12, k21, (1.0 - LOBATTO_A) / 128.0, Eb)
        L = np.empty((N_SIZES, 6, n))
        _lobatto_weights(kin, kout, imax, gl_x, gl_w, L)
    else:
        Ea = Eb = E[:1, :, :, :1]
        L = np.empty((1, 6, 1))
    fnode = np.zeros(n)  # f = C / (IC50 + C) at the node (Lobatto: the next step's start)
    d = np.zeros(n)
    c = np.zeros(n)
    p = np.zeros(n)
    a = np.zeros(n)
    R = kin / kout
    rmin = R.copy()
    cmax = np.zeros(n)
    cmin = np.full(n, np.inf)
    a_last = np.zeros(n)
    inv_v1 = 1.0 / v1
    # two passes (Lobatto only): checkpoints at each dose (depot, central, peripheral, R, f)
    # and the node minimum of R per dosing interval
    nck = n_doses if twopass else 1
    ck = np.empty((nck, 5, n))
    imin = np.full((nck, n), np.inf)
    row = 0
    if out_c.shape[0] > 0:
        for j in range(n):
            out_c[0, col0 + j] = 0.0
            out_r[0, col0 + j] = R[j]
        row = 1
    for i in range(n_doses):
        last = i == n_doses - 1
        for j in range(n):
            d[j] += f_bio[j] * dose[i, j]
        if twopass:
            ck[i, 0] = d
            ck[i, 1] = c
            ck[i, 2] = p
            ck[i, 3] = R
            ck[i, 4] = fnode
            row_min = imin[i]
            for j in range(n):
                row_min[j] = R[j]
        else:
            row_min = rmin
        if last:
            for j in range(n):
                a_last[j] = a[j]
                cm = c[j] * inv_v1[j]
                cmax[j] = max(cmax[j], cm)
                cmin[j] = min(cmin[j], cm)
        t_frac = 0  # time since the dose in 1/64 h
        for s in range(tau_steps.shape[0]):
            k = tau_steps[s] + SMALLEST
            h = 2.0 ** tau_steps[s]
            e00 = E[k, 0, 0]
            e10 = E[k, 1, 0]
            e11 = E[k, 1, 1]
            e12 = E[k, 1, 2]
            e20 = E[k, 2, 0]
            e21 = E[k, 2, 1]
            e22 = E[k, 2, 2]
            e30 = E[k, 3, 0]
            e31 = E[k, 3, 1]
            e32 = E[k, 3, 2]
            m10 = E[k - 1, 1, 0]
            m11 = E[k - 1, 1, 1]
            m12 = E[k - 1, 1, 2]
            # One loop per variant, written out: with per-patient helpers taking tuples of the
            # arrays (inline="always") the loops stopped vectorizing (12.7 and 9.3 instead of
            # 3.5 and 3.3 ns per patient-node, RK4 and Lobatto), and a flag tested inside
            # one loop did too (3.6 -> 8.5 µs per patient).
            if lobatto:
                a10 = Ea[k, 1, 0]
                a11 = Ea[k, 1, 1]
                a12 = Ea[k, 1, 2]
                b10 = Eb[k, 1, 0]
                b11 = Eb[k, 1, 1]
                b12 = Eb[k, 1, 2]
                l0 = L[k, 0]
                l1 = L[k, 1]
                l2 = L[k, 2]
                l3 = L[k, 3]
                l4 = L[k, 4]
                l5 = L[k, 5]
                if hermite:
                    for j in range(n):
                        dj = d[j]
                        cj = c[j]
                        pj = p[j]
                        r0 = R[j]
                        f0 = fnode[j]
                        r1, f1, c1a = _lobatto(
                            dj, cj, pj, r0, f0, inv_v1[j], ic50[j],
                            a10[j], a11[j], a12[j], b10[j], b11[j], b12[j], e10[j], e11[j], e12[j],
                            l0[j], l1[j], l2[j], l3[j], l4[j], l5[j],
                        )  # fmt: skip
                        s0 = kin[j] * (1.0 - imax[j] * f0) - kout[j] * r0
                        s1 = kin[j] * (1.0 - imax[j] * f1) - kout[j] * r1
                        a[j] += e30[j] * dj + e31[j] * cj + e32[j] * pj
                        d[j] = e00[j] * dj
                        c[j] = c1a
                        p[j] = e20[j] * dj + e21[j] * cj + e22[j] * pj
                        R[j] = r1
                        fnode[j] = f1
                        rmin[j] = min(rmin[j], min(r1, _trough_min(r0, r1, s0, s1, h)))
                else:
                    for j in range(n):
                        dj = d[j]
                        cj = c[j]
                        pj = p[j]
                        r1, f1, c1a = _lobatto(
                            dj, cj, pj, R[j], fnode[j], inv_v1[j], ic50[j],
                            a10[j], a11[j], a12[j], b10[j], b11[j], b12[j], e10[j], e11[j], e12[j],
                            l0[j], l1[j], l2[j], l3[j], l4[j], l5[j],
                        )  # fmt: skip
                        a[j] += e30[j] * dj + e31[j] * cj + e32[j] * pj
                        d[j] = e00[j] * dj
                        c[j] = c1a
                        p[j] = e20[j] * dj + e21[j] * cj + e22[j] * pj
                        R[j] = r1
                        fnode[j] = f1
                        row_min[j] = min(row_min[j], r1)
            elif hermite:
                for j in range(n):
                    dj = d[j]
                    cj = c[j]
                    pj = p[j]
                    r = R[j]
                    r1, k1, f1, c1a = _rk4(
                        dj, cj, pj, r, inv_v1[j], kin[j], kout[j], imax[j], ic50[j], h,
                        m10[j], m11[j], m12[j], e10[j], e11[j], e12[j],
                    )  # fmt: skip
                    rm = min(r1, _trough_min(r, r1, k1, f1, h))
                    a[j] += e30[j] * dj + e31[j] * cj + e32[j] * pj
                    d[j] = e00[j] * dj
                    c[j] = c1a
                    p[j] = e20[j] * dj + e21[j] * cj + e22[j] * pj
                    R[j] = r1
                    rmin[j] = min(rmin[j], rm)
            else:
                for j in range(n):
                    dj = d[j]
                    cj = c[j]
                    pj = p[j]
                    r1, k1, f1, c1a = _rk4(
                        dj, cj, pj, R[j], inv_v1[j], kin[j], kout[j], imax[j], ic50[j], h,
                        m10[j], m11[j], m12[j], e10[j], e11[j], e12[j],
                    )  # fmt: skip
                    a[j] += e30[j] * dj + e31[j] * cj + e32[j] * pj
                    d[j] = e00[j] * dj
                    c[j] = c1a
                    p[j] = e20[j] * dj + e21[j] * cj + e22[j] * pj
                    R[j] = r1
                    rmin[j] = min(rmin[j], r1)
            t_frac += 1 << (tau_steps[s] + 6)
            if last:
                for j in range(n):
                    cm = c[j] * inv_v1[j]
                    cmax[j] = max(cmax[j], cm)
                    cmin[j] = min(cmin[j], cm)
            if t_frac % 64 == 0 and row < out_c.shape[0]:
                for j in range(n):
                    out_c[row, col0 + j] = c[j] * inv_v1[j]
                    out_r[row, col0 + j] = R[j]
                row += 1
    if twopass:
        _second_pass(ck, imin, tau_steps, E, Ea, Eb, L, inv_v1, ic50, kin, kout, imax, rmin)
    for j in range(n):
        summaries[0, j] = cmax[j]
        summaries[1, j] = cmin[j]
        summaries[2, j] = (a[j] - a_last[j]) * inv_v1[j]
        summaries[3, j] = rmin[j]
        summaries[4, j] = R[j]


def run_baseline(
    p: dict[str, np.ndarray],
    chunk: int = 10_000,
    hourly: bool = True,
    grid: str = "1h",
    hermite: bool = False,
    lobatto: bool = False,
    twopass: bool = False,
    out_dtype=np.float64,
    missed: float = 0.0,
    dose_cv: float = 0.0,
):
    """The workload in chunks of ``chunk`` patients (fresh output arrays per chunk, dropped as
    ``bench_engine.run_insilico`` drops them); per-patient summaries as bench_engine names them."""
    if twopass and (hermite or not lobatto):
        # the second pass re-steps with the Lobatto arrays and reads the per-interval minima
        # only the plain Lobatto loop writes (with RK4 it would read placeholder arrays)
        raise ValueError(f"twopass needs lobatto=True, hermite=False (got {lobatto=}, {hermite=})")
    n = p["cl_L_per_h"].shape[0]
    out = {k: np.empty(n) for k in be.SUMMARIES}
    # mg per dose and patient. Irregular histories, seeded, to test the two-pass variant's
    # choice of interval: ``missed``, the probability that a dose after the first is skipped;
    # ``dose_cv``, log-normal variation of every dose (titration-like)
    dose = np.full((be.N_DOSES, n), be.DOSE_MG)
    rng = np.random.default_rng(20261130)
    if dose_cv > 0.0:
        dose *= np.exp(dose_cv * rng.standard_normal((be.N_DOSES, n)))
    if missed > 0.0:
        skip = rng.random((be.N_DOSES, n)) < missed
        skip[0] = False
        dose[skip] = 0.0
    n_rows = be.N_DOSES * int(be.TAU_H) + 1 if hourly else 0
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        out_c = np.empty((n_rows, b - a), dtype=out_dtype)
        out_r = np.empty((n_rows, b - a), dtype=out_dtype)
        for q0 in range(a, b, BLOCK):
            q1 = min(b, q0 + BLOCK)
            s = slice(q0, q1)
            v1 = p["v1_L"][s]
            summ = np.empty((5, q1 - q0))
            baseline_block(
                p["ka_per_h"][s],
                p["cl_L_per_h"][s] / v1,
                p["q2_L_per_h"][s] / v1,
                p["q2_L_per_h"][s] / p["v2_L"][s],
                v1,
                p["f_bio"][s],
                p["kin_per_h"][s],
                p["kout_per_h"][s],
                p["imax"][s],
                p["ic50_mg_per_L"][s],
                np.ascontiguousarray(dose[:, s]),
                be.N_DOSES,
                GRIDS[grid],
                hermite,
                lobatto,
                twopass,
                GL_X,
                GL_W,
                out_c,
                out_r,
                q0 - a,
                summ,
            )
            r0 = p["kin_per_h"][s] / p["kout_per_h"][s]
            for i, k in enumerate(("cmax", "cmin", "auc", "rmin")):
                out[k][s] = summ[i]
            out["pct"][s] = 100.0 * (summ[4] - r0) / r0
    return out


def _cpu_us_per_patient(fn, n: int) -> float:
    c0 = time.process_time()
    fn()
    return (time.process_time() - c0) / n * 1e6


#: Variants of the baseline timed: (name, keyword arguments of ``run_baseline``).
VARIANTS = (
    ("baseline", {}),
    ("base-1/64", {"grid": "1h-from-1/64"}),
    ("base-0.5h", {"grid": "0.5h"}),
    ("base-0.5h+H", {"grid": "0.5h", "hermite": True}),
    ("base-Lobatto", {"lobatto": True}),
    ("base-Lob+H", {"lobatto": True, "hermite": True}),
    ("base-f32out", {"out_dtype": np.float32}),
    ("base-2pass", {"lobatto": True, "twopass": True}),
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20_000, help="patients per timed call")
    ap.add_argument("--rounds", type=int, default=8, help="alternating rounds")
    ap.add_argument("--n-ref", type=int, default=10, help="patients of the Radau reference")
    args = ap.parse_args()

    p = be.parameters(args.n)
    # compile (or load from the cache) before timing
    be.run_insilico(be.parameters(64), time_courses=True)
    for _, kw in VARIANTS:
        run_baseline(be.parameters(64), **kw)

    runners = {name: (lambda q, h, kw=kw: run_baseline(q, hourly=h, **kw)) for name, kw in VARIANTS}
    runners["insilico"] = lambda q, h: be.run_insilico(q, time_courses=h)
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for hourly in (True, False):
            for name, run in runners.items():
                key = (name, "hourly" if hourly else "summaries")
                times.setdefault(key, []).append(
                    _cpu_us_per_patient(lambda run=run, h=hourly: run(p, h), args.n)
                )

    pr = be.parameters(args.n_ref)
    ref = [
        be.run_scipy({k: float(v[i]) for k, v in pr.items()}, "Radau", 1e-10, 1e-12)
        for i in range(args.n_ref)
    ]
    got = {name: run(pr, True) for name, run in runners.items()}

    print(f"{args.n} patients per call, {args.rounds} alternating rounds, CPU time of this process")
    print(f"{'kernel':<12} {'outputs':<10} {'best us/pt':>10} {'median':>8} {'patients/s':>11}")
    for (k, o), ts in sorted(times.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        best = min(ts)
        print(f"{k:<12} {o:<10} {best:10.2f} {np.median(ts):8.2f} {1e6 / best:11.0f}")
    print(f"\nmax relative error against Radau (rtol 1e-10, atol 1e-12) on {args.n_ref} patients")
    print(f"{'metric':<8}" + "".join(f" {name:>12}" for name in runners))
    for m in be.SUMMARIES:
        r = np.array([x[m] for x in ref])
        errs = [np.max(np.abs(got[k][m] - r) / np.abs(r)) for k in runners]
        print(f"{m:<8}" + "".join(f" {e:12.2e}" for e in errs))
    b = min(times[("baseline", "hourly")])
    i = min(times[("insilico", "hourly")])
    print(
        f"RESULT baseline_hourly_patients_per_s={1e6 / b:.0f} "
        f"insilico_hourly_patients_per_s={1e6 / i:.0f} baseline_speedup={i / b:.3f}"
    )


if __name__ == "__main__":
    main()
