"""Compiled batched kernels: exact linear PK stepping, the indirect response (exponential
Lobatto quadrature: of the forcing for I and III, of the loss rate for II and IV), metrics.

Layout: time is the outer loop and patients the inner, contiguous loop (arrays ``(..., n)``),
so the compiler vectorizes over patients. Patients are processed in mini-blocks small enough
that one mini-block's transition matrices stay in cache; memory is bounded by the block.

Event actions at nodes: 0 bolus into central, 1 bolus into the depot (times bioavailability),
2 infusion start, 3 infusion end.

Metrics per window (index in the last axis of ``met``): see ``METRICS``.
"""

from __future__ import annotations

import contextlib
import math
import types
import warnings

import numba as nb
import numpy as np
from numba.core.errors import NumbaExperimentalFeatureWarning

import insilico.pk._llvm_options  # noqa: F401  (before anything compiles)
from insilico.pd.models import direct_effect, hill_fraction, irm_rhs
from insilico.pk.expm import expm_batched, expm_small, norm1, square_batched
from insilico.pk.grid import FIRST_DOSE_DEPTH
from insilico.pk.stream import STREAM_MIN_BYTES, store_fence, store_row

#: Fields of a response-extremum candidate record (``cand[w, m, j]`` of ``linear_kernel``:
#: window, 0 minimum / 1 maximum, patient): its Hermite estimate, the node it is refined
#: from (as a float, -1 for none), the response and infusion rate there, then the state.
#: One record per candidate keeps what a new candidate writes in one or two cache lines
#: (apart, as arrays over patients, they were eight). On the reference workload nearly every
#: trough of the response is a new candidate.
CAND_V, CAND_G, CAND_R, CAND_RATE, CAND_X = 0, 1, 2, 3, 4

METRICS = ("cmax", "tmax", "cmin", "tmin", "auc", "time_above", "emin", "emax")
#: What the kernel tracks at every node for a window (bits of ``win_track``): the extrema of
#: C (or Ce), the minimum and the maximum of an indirect response.
#: ``TRACK_AUC``: the window reports its AUC (or the average concentration), so the steps inside
#: it must update the AUC state.
TRACK_C, TRACK_EMIN, TRACK_EMAX, TRACK_AUC = 1, 2, 4, 8
TRACK_E = TRACK_EMIN | TRACK_EMAX
N_MET = len(METRICS)
TAYLOR_TERMS = 40
#: A response extremum between nodes is refined only when its Hermite estimate comes within
#: this fraction of the window's node extremum (the estimate is within ~1e-6 of the truth).
REFINE_MARGIN = 1e-5


#: 1/k for k = 0..TAYLOR_TERMS (entry 0 unused), for :func:`_n_terms`
_INV_INT = np.array([0.0] + [1.0 / k for k in range(1, TAYLOR_TERMS + 1)])


@nb.njit(cache=True)
def _inverse_factorials(K):
    """``1 / k!`` for k = 0..K (multiplying by them is ~4x cheaper than dividing by k!)."""
    f = np.empty(K + 1)
    f[0] = 1.0
    for k in range(1, K + 1):
        f[k] = f[k - 1] * k
    for k in range(K + 1):
        f[k] = 1.0 / f[k]
    return f


@nb.njit(cache=True)
def taylor_coefficients(A, x, rate, central, obs, v1, K, coef, work):
    """``coef[k] = d^k y_obs / dt^k / v1`` at the state ``x`` (exact, from ``A`` and the input
    rate into ``central``): the concentration C for ``obs = central``, ``v1 = V1``, or the
    effect-compartment concentration for ``obs = ce``, ``v1 = 1``. ``work``: shape (2, S)."""
    S = x.shape[0]
    # a last state that feeds no other (the cumulative eliminated amount: its column of A is
    # zero) cannot change y_obs: left out, 9 instead of 16 products per term for 2-cmt oral
    n = S
    if obs != S - 1:
        feeds = False
        for r in range(S):
            feeds |= A[r, S - 1] != 0.0
        if not feeds:
            n = S - 1
    iv = 1.0 / v1
    if n == 2:
        _taylor_2(A, x, rate, central, obs, iv, K, coef)
        return
    if n == 3:
        _taylor_3(A, x, rate, central, obs, iv, K, coef)
        return
    if n == 4:
        _taylor_4(A, x, rate, central, obs, iv, K, coef)
        return
    y = work[0]
    z = work[1]
    for r in range(n):
        y[r] = x[r]
    coef[0] = y[obs] * iv
    for k in range(1, K + 1):
        for r in range(n):
            acc = 0.0
            for c in range(n):
                acc += A[r, c] * y[c]
            z[r] = acc
        if k == 1:
            z[central] += rate
        coef[k] = z[obs] * iv
        y, z = z, y  # no copy: the two rows of ``work`` swap roles


@nb.njit(cache=True, inline="always")
def _taylor_2(A, x, rate, central, obs, iv, K, coef):
    """:func:`taylor_coefficients` for 2 states, unrolled into scalars (the same operations
    in the same order: the same bits; ~4x faster than the loops over a run-time size)."""
    a00, a01 = A[0, 0], A[0, 1]
    a10, a11 = A[1, 0], A[1, 1]
    y0, y1 = x[0], x[1]
    coef[0] = (y0 if obs == 0 else (y1)) * iv
    for k in range(1, K + 1):
        z0 = 0.0 + a00 * y0 + a01 * y1
        z1 = 0.0 + a10 * y0 + a11 * y1
        if k == 1:
            if central == 0:
                z0 += rate
            elif central == 1:
                z1 += rate
        y0, y1 = z0, z1
        coef[k] = (y0 if obs == 0 else (y1)) * iv


@nb.njit(cache=True, inline="always")
def _taylor_3(A, x, rate, central, obs, iv, K, coef):
    """:func:`taylor_coefficients` for 3 states, unrolled into scalars (the same operations
    in the same order: the same bits; ~4x faster than the loops over a run-time size)."""
    a00, a01, a02 = A[0, 0], A[0, 1], A[0, 2]
    a10, a11, a12 = A[1, 0], A[1, 1], A[1, 2]
    a20, a21, a22 = A[2, 0], A[2, 1], A[2, 2]
    y0, y1, y2 = x[0], x[1], x[2]
    coef[0] = (y0 if obs == 0 else (y1 if obs == 1 else (y2))) * iv
    for k in range(1, K + 1):
        z0 = 0.0 + a00 * y0 + a01 * y1 + a02 * y2
        z1 = 0.0 + a10 * y0 + a11 * y1 + a12 * y2
        z2 = 0.0 + a20 * y0 + a21 * y1 + a22 * y2
        if k == 1:
            if central == 0:
                z0 += rate
            elif central == 1:
                z1 += rate
            elif central == 2:
                z2 += rate
        y0, y1, y2 = z0, z1, z2
        coef[k] = (y0 if obs == 0 else (y1 if obs == 1 else (y2))) * iv


@nb.njit(cache=True, inline="always")
def _taylor_4(A, x, rate, central, obs, iv, K, coef):
    """:func:`taylor_coefficients` for 4 states, unrolled into scalars (the same operations
    in the same order: the same bits; ~4x faster than the loops over a run-time size)."""
    a00, a01, a02, a03 = A[0, 0], A[0, 1], A[0, 2], A[0, 3]
    a10, a11, a12, a13 = A[1, 0], A[1, 1], A[1, 2], A[1, 3]
    a20, a21, a22, a23 = A[2, 0], A[2, 1], A[2, 2], A[2, 3]
    a30, a31, a32, a33 = A[3, 0], A[3, 1], A[3, 2], A[3, 3]
    y0, y1, y2, y3 = x[0], x[1], x[2], x[3]
    coef[0] = (y0 if obs == 0 else (y1 if obs == 1 else (y2 if obs == 2 else (y3)))) * iv
    for k in range(1, K + 1):
        z0 = 0.0 + a00 * y0 + a01 * y1 + a02 * y2 + a03 * y3
        z1 = 0.0 + a10 * y0 + a11 * y1 + a12 * y2 + a13 * y3
        z2 = 0.0 + a20 * y0 + a21 * y1 + a22 * y2 + a23 * y3
        z3 = 0.0 + a30 * y0 + a31 * y1 + a32 * y2 + a33 * y3
        if k == 1:
            if central == 0:
                z0 += rate
            elif central == 1:
                z1 += rate
            elif central == 2:
                z2 += rate
            elif central == 3:
                z3 += rate
        y0, y1, y2, y3 = z0, z1, z2, z3
        coef[k] = (y0 if obs == 0 else (y1 if obs == 1 else (y2 if obs == 2 else (y3)))) * iv


@nb.njit(cache=True, inline="always")
def _dcdt(A, x, rate, central, obs, v1):
    """d(y_obs / v1)/dt at state ``x`` with input ``rate`` into the central compartment."""
    acc = rate if obs == central else 0.0
    for c in range(x.shape[0]):
        acc += A[obs, c] * x[c]
    return acc / v1


@nb.njit(cache=True)
def _scaled(coef, ifact, cq):
    """``cq[d, k] = coef[k + d] / k!`` for d = 0, 1, 2 (the terms of :func:`_poly`);
    ``ifact``: :func:`_inverse_factorials`."""
    K = coef.shape[0] - 1
    for d in range(3):
        for k in range(K - d + 1):
            cq[d, k] = coef[k + d] * ifact[k]


@nb.njit(cache=True)
def _poly(cq, s, deriv):
    """``sum_k coef[k + deriv] s^k / k!`` (Horner) from the terms ``cq`` of :func:`_scaled`."""
    K = cq.shape[1] - 1
    acc = 0.0
    for k in range(K - deriv, -1, -1):
        acc = acc * s + cq[deriv, k]
    return acc


@nb.njit(cache=True)
def _poly_pair(cq, s, deriv):
    """``(p^(deriv)(s), p^(deriv + 1)(s))`` in one loop: two independent Horner chains, each
    with the operations of :func:`_poly` (the same bits), run side by side."""
    n = cq.shape[1] - 1 - deriv
    a = 0.0 * s + cq[deriv, n]
    b = 0.0
    for k in range(n - 1, -1, -1):
        a = a * s + cq[deriv, k]
        b = b * s + cq[deriv + 1, k]
    return a, b


@nb.njit(cache=True)
def _n_terms(A, h, kmax):
    """Taylor terms so that ``(||A|| h)^K / K! < 1e-17`` (at most ``kmax``), with the smaller
    of the 1- and infinity-norms (either bounds ``|(A^k x)_i| / ||x||``, in its own norm)."""
    x = min(norm1(A), norm1(A.T)) * abs(h)
    term = 1.0
    for k in range(1, kmax + 1):
        term *= x * _INV_INT[k]  # a multiplication: the loop is a chain of ~20 steps
        if term < 1e-17 and k >= 4:
            return k + 1 if k + 1 <= kmax else kmax
    return kmax


@nb.njit(cache=True)
def _root(cq, lo, hi, deriv, target, flo, fhi, s0):
    """Root of ``p^(deriv)(s) = target`` in ``[lo, hi]`` (sign change assumed; ``flo``,
    ``fhi``: ``p^(deriv) - target`` at the ends, which the callers have): Newton from ``s0``
    (or, when it is NaN or outside the bracket, from the secant estimate), with a bisection
    safeguard; stops at 1e-14 of the bracket."""
    a, b = lo, hi
    if lo < s0 < hi:
        s = s0
    else:
        s = lo - flo * (hi - lo) / (fhi - flo) if fhi != flo else 0.5 * (lo + hi)
    tol = 1e-14 * (hi - lo) + 1e-300
    for _ in range(60):
        f, df = _poly_pair(cq, s, deriv)
        f = f - target
        if f == 0.0:
            return s
        if (f > 0) == (flo > 0):
            a = s
        else:
            b = s
        s_new = s - f / df if df != 0.0 else 0.5 * (a + b)
        if not (a < s_new < b):
            s_new = 0.5 * (a + b)
        if abs(s_new - s) <= tol:
            return s_new
        s = s_new
    return s


@nb.njit(cache=True)
def _hermite_root(f0, g0, f1, g1, h):
    """Start for Newton on ``p'(s) = 0`` in ``(0, h)``: the root of the cubic Hermite
    interpolant of ``p'`` (values ``f0``, ``f1`` of opposite signs, slopes ``g0``, ``g1`` at
    0 and ``h``), by Newton on the cubic from the secant (at most 8 steps, kept inside the
    bracket). Newton on the Taylor polynomial then needs 3.8 evaluations on average instead
    of 5.3 from the secant (300 patients of the reference workload, every step of the last
    interval holding an extremum; each evaluation is a Horner pass of ~23 terms)."""
    # q(t) = f0 + a1 t + a2 t^2 + a3 t^3 on t in [0, 1] (Hermite basis, slopes scaled by h)
    a1 = g0 * h
    a2 = 3.0 * (f1 - f0) - (2.0 * g0 + g1) * h
    a3 = 2.0 * (f0 - f1) + (g0 + g1) * h
    t = f0 / (f0 - f1)
    for _ in range(8):
        q = f0 + t * (a1 + t * (a2 + t * a3))
        dq = a1 + t * (2.0 * a2 + t * 3.0 * a3)
        if dq == 0.0:
            break
        tn = t - q / dq
        if not (0.0 < tn < 1.0):
            break
        done = abs(tn - t) <= 1e-13
        t = tn
        if done:
            break
    return t * h


@nb.njit(cache=True, error_model="numpy")
def _matvec(phik, x, xn, rate, aug, depot, auc_i, dauc):
    """``xn = phik[:S, :S] x + phik[:S, S] rate`` for a block, patients innermost; ``dauc``
    receives the step's increment of the AUC state (``xn[auc_i] = x[auc_i] + dauc``).

    Uses the structure of every compartment model here: the depot only decays (its row is
    diagonal) and the AUC state feeds nothing (its column is the unit vector)."""
    S, nbk = x.shape
    for r in range(S):
        if r == depot:
            for j in range(nbk):
                xn[r, j] = phik[r, r, j] * x[r, j]
            continue
        c0 = 0 if auc_i != 0 else 1
        for j in range(nbk):
            xn[r, j] = phik[r, c0, j] * x[c0, j]
        for c in range(c0 + 1, S):
            if c == auc_i:
                continue
            for j in range(nbk):
                xn[r, j] += phik[r, c, j] * x[c, j]
        if aug:
            for j in range(nbk):
                xn[r, j] += phik[r, S, j] * rate[j]
        if r == auc_i:
            for j in range(nbk):
                dauc[j] = xn[r, j]
                xn[r, j] = x[r, j] + dauc[j]


@nb.njit(cache=True, error_model="numpy", boundscheck=False)
def _transitions(A, aug, central, sizes, size_src, b0, nb_, Sa, phi):
    """Fill ``phi[k, :, :, j] = exp(M_j sizes[k])`` for the mini-block's patients, batched over
    patients (one exponential per fresh size, squarings up the dyadic ladder)."""
    S = A.shape[1]
    K = sizes.shape[0]
    M = np.zeros((Sa, Sa, nb_))
    for j in range(nb_):
        for r in range(S):
            for c in range(S):
                M[r, c, j] = A[b0 + j, r, c]
        if aug:
            M[central, S, j] = 1.0
    work = np.empty((5, Sa, Sa, nb_))
    for k in range(K):
        if size_src[k] < 0:
            expm_batched(M, sizes[k], phi[k], work)
        else:
            square_batched(phi[size_src[k]], phi[k])


@nb.njit(cache=True)
def _phi123(z):
    """phi_1, phi_2, phi_3 of a real z (series for |z| < 1, closed forms otherwise)."""
    if abs(z) < 1.0:
        p1 = 0.0
        p2 = 0.0
        p3 = 0.0
        term = 1.0  # z^j / j!
        for jj in range(22):
            # z^j/(j+1)!, z^j/(j+2)!, z^j/(j+3)!
            t1 = term / (jj + 1)
            t2 = t1 / (jj + 2)
            t3 = t2 / (jj + 3)
            p1 += t1
            p2 += t2
            p3 += t3
            term = term * z / (jj + 1)
        return p1, p2, p3
    em1 = np.expm1(z)
    return em1 / z, (em1 - z) / (z * z), (em1 - z - 0.5 * z * z) / (z * z * z)


@nb.njit(cache=True, error_model="numpy", boundscheck=False)
def _phi123_batched(z, p1, p2, p3, term):
    """:func:`_phi123` for an array of ``z`` (same operations per element, patients innermost
    so the series vectorizes; elements with ``|z| >= 1`` get the closed forms)."""
    nbk = z.shape[0]
    for j in range(nbk):
        p1[j] = 0.0
        p2[j] = 0.0
        p3[j] = 0.0
        term[j] = 1.0
    for jj in range(22):
        # reciprocals: divisions by a, b, c cost ~0.5 µs per patient over the grid's sizes
        ia = 1.0 / (jj + 1)
        ib = 1.0 / (jj + 2)
        ic = 1.0 / (jj + 3)
        for j in range(nbk):
            t1 = term[j] * ia
            t2 = t1 * ib
            t3 = t2 * ic
            p1[j] += t1
            p2[j] += t2
            p3[j] += t3
            term[j] = term[j] * z[j] * ia
    for j in range(nbk):
        if not abs(z[j]) < 1.0:
            p1[j], p2[j], p3[j] = _phi123(z[j])


#: Interior nodes of 4-point Lobatto quadrature on [0, 1]: (1 -/+ 1/sqrt(5)) / 2.
LOBATTO_A = 0.5 - 0.5 / np.sqrt(5.0)
LOBATTO_NODES = np.array([0.0, LOBATTO_A, 1.0 - LOBATTO_A, 1.0])
#: ``w = LOBATTO_MOMENTS_TO_WEIGHTS @ m`` gives the weights of the Lobatto nodes that
#: integrate ``e^{z(1 - s)} p(s)`` over [0, 1] exactly for cubic ``p`` from its moments
#: ``m_k = int_0^1 e^{z(1-s)} s^k ds = k! phi_{k+1}(z)``, k = 0..3 (the transposed inverse of
#: the nodes' Vandermonde matrix). At z = 0 the weights are Lobatto's 1/12, 5/12, 5/12, 1/12.
LOBATTO_MOMENTS_TO_WEIGHTS = np.linalg.inv(np.vander(LOBATTO_NODES, 4, increasing=True).T)


#: Coefficients of the Lagrange basis cubics on :data:`LOBATTO_NODES`:
#: ``l_i(u) = sum_m LOBATTO_BASIS[m, i] u^m``.
LOBATTO_BASIS = np.linalg.inv(np.vander(LOBATTO_NODES, 4, increasing=True))


def _lobatto_basis_integrals(x: float) -> np.ndarray:
    """``int_0^x l_i(u) du`` of the four Lagrange basis cubics on :data:`LOBATTO_NODES`."""
    c = LOBATTO_BASIS
    return np.array([sum(c[m, i] * x ** (m + 1) / (m + 1) for m in range(4)) for i in range(4)])


#: Rows: the integrals of the Lobatto basis over [0, a], [0, 1 - a] and [0, 1] (the last is
#: Lobatto's 1/12, 5/12, 5/12, 1/12): a cubic through values at the nodes integrated exactly.
LOBATTO_PARTIAL = np.stack(
    [
        _lobatto_basis_integrals(LOBATTO_A),
        _lobatto_basis_integrals(1.0 - LOBATTO_A),
        _lobatto_basis_integrals(1.0),
    ]
)


@nb.njit(cache=True, error_model="numpy", boundscheck=False)
def _phi4_batched(z, p4, term):
    """phi_4 of an array of ``z``: sum_j z^j / (j + 4)! for |z| < 1 (patients innermost, as
    :func:`_phi123_batched`), the closed form otherwise."""
    nbk = z.shape[0]
    for j in range(nbk):
        p4[j] = 0.0
        term[j] = 1.0 / 24.0
    for jj in range(22):
        inv = 1.0 / (jj + 5)
        for j in range(nbk):
            p4[j] += term[j]
            term[j] = term[j] * z[j] * inv
    for j in range(nbk):
        zj = z[j]
        if not abs(zj) < 1.0:
            p4[j] = (np.expm1(zj) - zj - 0.5 * zj * zj - zj * zj * zj / 6.0) / (zj * zj * zj * zj)


@nb.njit(cache=True, error_model="numpy", boundscheck=False)
def _lobatto_coefficients(kout, sizes, used, out):
    """Exponential 4-point Lobatto quadrature of ``R' = -kout R + N(t)`` with ``N`` independent
    of R (indirect response I and III), for every step size, per patient:
    ``R(t + h) = out[0] R(t) + sum_i out[1 + i] N(t + c_i h)``, c = :data:`LOBATTO_NODES`;
    out[0] = e^z, out[1..4] = h times the weights, z = -kout h. Exact for cubic ``N``; the
    error of a step is O(h^5) (O(h^7) as kout h -> 0, Lobatto's own order). Only the sizes
    with ``used[k]`` (those of steps, not of inner points) are filled."""
    K = sizes.shape[0]
    nbk = kout.shape[0]
    z = np.empty(nbk)
    p1 = np.empty(nbk)
    p2 = np.empty(nbk)
    p3 = np.empty(nbk)
    p4 = np.empty(nbk)
    term = np.empty(nbk)
    T = LOBATTO_MOMENTS_TO_WEIGHTS
    for k in range(K):
        if not used[k]:
            continue
        h = sizes[k]
        for j in range(nbk):
            z[j] = -kout[j] * h
        _phi123_batched(z, p1, p2, p3, term)
        _phi4_batched(z, p4, term)
        for j in range(nbk):
            m1 = p2[j]
            m2 = 2.0 * p3[j]
            m3 = 6.0 * p4[j]
            out[0, k, j] = np.exp(z[j])
            for i in range(4):
                wi = T[i, 0] * p1[j] + T[i, 1] * m1 + T[i, 2] * m2 + T[i, 3] * m3
                out[1 + i, k, j] = h * wi


#: Taylor terms of the rate Lobatto weights in ``z`` (|z| <= 1: the first omitted is below
#: 1 / 18! = 1.6e-16 of the sum).
RATE_TAYLOR_TERMS = 18


def _rate_weight_taylor() -> np.ndarray:
    """``c[i, n] = int_0^1 (1 - u)^n l_i(u) du / n!``: the weight ``int_0^1 e^{z (1 - u)}
    l_i(u) du = sum_n c[i, n] z^n`` of Lobatto node i (exact polynomial integrals)."""
    basis = LOBATTO_BASIS
    out = np.empty((4, RATE_TAYLOR_TERMS))
    for n in range(RATE_TAYLOR_TERMS):
        # (1 - u)^n l_i(u) as coefficients, integrated over [0, 1]
        one_minus = np.polynomial.polynomial.polypow([1.0, -1.0], n)
        for i in range(4):
            prod = np.polynomial.polynomial.polymul(one_minus, basis[:, i])
            integ = np.polynomial.polynomial.polyint(prod)
            out[i, n] = np.polynomial.polynomial.polyval(1.0, integ) / math.factorial(n)
    return out


RATE_WEIGHT_TAYLOR = _rate_weight_taylor()


@nb.njit(cache=True, inline="always")
def _exp_small(x):
    """e^x for |x| <= 1 without a library call (so that loops over patients vectorize):
    Taylor to degree 10 at x / 8 (remainder below 3e-18), squared three times (~1e-15)."""
    y = 0.125 * x
    p = 1.0
    for n in range(10, 0, -1):
        p = 1.0 + y * p / n
    p = p * p
    p = p * p
    return p * p


@nb.njit(cache=True)
def _rate_weights_closed(zz):
    """The four rate Lobatto weights ``int_0^1 e^{zz (1 - u)} l_i(u) du`` from phi_1..phi_4 in
    closed form (for |zz| > 1, where the Taylor sum is not used)."""
    T = LOBATTO_MOMENTS_TO_WEIGHTS
    em1 = np.expm1(zz)
    p1 = em1 / zz
    p2 = (em1 - zz) / (zz * zz)
    p3 = (em1 - zz - 0.5 * zz * zz) / (zz * zz * zz)
    p4 = (em1 - zz - 0.5 * zz * zz - zz * zz * zz / 6.0) / (zz * zz * zz * zz)
    m = (p1, p2, 2.0 * p3, 6.0 * p4)
    w = np.empty(4)
    for i in range(4):
        w[i] = T[i, 0] * m[0] + T[i, 1] * m[1] + T[i, 2] * m[2] + T[i, 3] * m[3]
    return w


@nb.njit(cache=True)
def _rate_weights_taylor(zz):
    """The four rate Lobatto weights from their Taylor series (|zz| <= 1), as the SIMD pass of
    :func:`rate_lobatto_step` computes them."""
    C = RATE_WEIGHT_TAYLOR
    w = np.empty(4)
    for i in range(4):
        acc = C[i, RATE_TAYLOR_TERMS - 1]
        for n in range(RATE_TAYLOR_TERMS - 2, -1, -1):
            acc = C[i, n] + zz * acc
        w[i] = acc
    return w


@nb.njit(cache=True, inline="always")
def _rate_increment(r, h, kin, kbar, w0, w1, w2, w3, ga1, gb1):
    """R after the step from R at its start: ``e^{-z} R + kin h sum_i w_i g_i`` written as an
    increment, ``R + h (W (kin - kbar R) + kin (w1 (g_a - 1) + w2 (g_b - 1)))`` with
    ``W = sum_i w_i = (1 - e^{-z}) / z`` (``ga1``, ``gb1``: g - 1 at the inner nodes): at
    the baseline without drug the increment is zero to rounding, so R does not drift."""
    wsum = w0 + w1 + w2 + w3
    return r + h * (wsum * (kin - kbar * r) + kin * (w1 * ga1 + w2 * gb1))


@nb.njit(cache=True, error_model="numpy", boundscheck=False)
def rate_lobatto_step(h, al, emag, kin, kout, f0, fa, fb, f1, R, buf):
    """One step of ``h`` of ``R' = kin - k(t) R``, ``k = kout (1 + al Emax f)`` (IRM II:
    al = -1, IV: al = +1), from the drug-effect fractions at the four Lobatto nodes of the
    step; ``R`` updated in place, patients innermost; ``buf``: (5, patients) scratch.

    With ``K(s) = int_0^s k``, exactly ``R(h) = e^{-K(h)} R(0) + kin int_0^h e^{K(s) - K(h)}
    ds``. k's cubic through the nodes gives ``K`` (:data:`LOBATTO_PARTIAL`): ``z = K(h)`` and
    ``delta(u) = K(u h) - z u`` (0 at both ends). The integral is ``h int_0^1
    e^{-z (1 - u)} e^{delta(u)} du``: ``e^{delta}`` at the nodes with the weights of the
    exponential Lobatto rule for the rate ``z / h`` (as :func:`_lobatto_coefficients`, here
    per patient and step: their Taylor series in z, :data:`RATE_WEIGHT_TAYLOR`, and
    :func:`_exp_small`, so the loop is SIMD code; a second pass redoes the rare patients
    with ``z`` or ``delta`` beyond 1 in closed form). Exact for a constant rate. ETDRK4, which
    integrates only ``-kout R`` exactly, leaves ``kout al Emax f R`` to its polynomial part,
    stiff where Emax is large (irm4 errors up to 4e-4 on its default grid); this rule
    integrates the whole rate. The fused steps call this too (``fused._rate_tails``), so both
    paths compute the same bits."""
    nbk = R.shape[0]
    LP = LOBATTO_PARTIAL
    C = RATE_WEIGHT_TAYLOR
    a = LOBATTO_A
    # kept for the second pass: -z, delta at the inner nodes, the mean rate, R at the start
    minus_z = buf[0]
    delta_a = buf[1]
    delta_b = buf[2]
    rate_mean = buf[3]
    r_start = buf[4]
    n_big = 0
    for j in range(nbk):
        k0 = kout[j] * (1.0 + al * emag[j] * f0[j])
        ka = kout[j] * (1.0 + al * emag[j] * fa[j])
        kb = kout[j] * (1.0 + al * emag[j] * fb[j])
        k1 = kout[j] * (1.0 + al * emag[j] * f1[j])
        kbar = LP[2, 0] * k0 + LP[2, 1] * ka + LP[2, 2] * kb + LP[2, 3] * k1
        z = h * kbar
        dA = h * (LP[0, 0] * k0 + LP[0, 1] * ka + LP[0, 2] * kb + LP[0, 3] * k1) - z * a
        dB = h * (LP[1, 0] * k0 + LP[1, 1] * ka + LP[1, 2] * kb + LP[1, 3] * k1) - z * (1.0 - a)
        zj = -z
        w0 = C[0, RATE_TAYLOR_TERMS - 1]
        w1 = C[1, RATE_TAYLOR_TERMS - 1]
        w2 = C[2, RATE_TAYLOR_TERMS - 1]
        w3 = C[3, RATE_TAYLOR_TERMS - 1]
        for n in range(RATE_TAYLOR_TERMS - 2, -1, -1):
            w0 = C[0, n] + zj * w0
            w1 = C[1, n] + zj * w1
            w2 = C[2, n] + zj * w2
            w3 = C[3, n] + zj * w3
        minus_z[j] = zj
        delta_a[j] = dA
        delta_b[j] = dB
        rate_mean[j] = kbar
        r_start[j] = R[j]
        R[j] = _rate_increment(R[j], h, kin[j], kbar, w0, w1, w2, w3, _exp_small(dA) - 1.0,
                               _exp_small(dB) - 1.0)  # fmt: skip
        n_big += (abs(zj) > 1.0) | (abs(dA) > 1.0) | (abs(dB) > 1.0)
    if n_big == 0:
        return
    for j in range(nbk):
        zj = minus_z[j]
        dA = delta_a[j]
        dB = delta_b[j]
        if not ((abs(zj) > 1.0) | (abs(dA) > 1.0) | (abs(dB) > 1.0)):
            continue
        w = _rate_weights_closed(zj) if abs(zj) > 1.0 else _rate_weights_taylor(zj)
        R[j] = _rate_increment(r_start[j], h, kin[j], rate_mean[j], w[0], w[1], w[2], w[3],
                               np.expm1(dA), np.expm1(dB))  # fmt: skip


@nb.njit(cache=True, error_model="numpy", boundscheck=False)
def _fold_lobatto_weights(etd, kin, kae, used):
    """Fold the response's parameters into the Lobatto weights of ``_lobatto_coefficients``,
    so that a step is ``R(t + h) = etd[0] R(t) + (etd[5] + sum_i etd[1 + i] f_i)`` with f_i
    the drug-effect fraction at node i (kin (1 + ap Emax f) summed with the weights):
    ``etd[5] = kin sum_i w_i``, ``etd[1 + i] = kae w_i``, ``kae = kin ap Emax``. Per patient
    and step that is 10 instead of 21 floating-point operations."""
    for k in range(etd.shape[1]):
        if not used[k]:
            continue
        for j in range(kin.shape[0]):
            w0 = etd[1, k, j]
            w1 = etd[2, k, j]
            w2 = etd[3, k, j]
            w3 = etd[4, k, j]
            etd[5, k, j] = kin[j] * (w0 + w1 + w2 + w3)
            etd[1, k, j] = kae[j] * w0
            etd[2, k, j] = kae[j] * w1
            etd[3, k, j] = kae[j] * w2
            etd[4, k, j] = kae[j] * w3


@nb.njit(cache=True, inline="always")
def _hermite_coefficients(y0, f0, y1, f1, h):
    """``(a1, a2, a3)`` of the cubic Hermite interpolant on [0, h] with values y0, y1 and
    slopes f0, f1, in the unit variable ``t = s / h``:
    ``p = y0 + a1 t + a2 t^2 + a3 t^3`` (no division)."""
    dy = y1 - y0
    return f0 * h, 3.0 * dy - (2.0 * f0 + f1) * h, (f0 + f1) * h - 2.0 * dy


@nb.njit(cache=True, inline="always")
def _cubic_extremum(y0, a1, a2, a3):
    """Extremum over t in [0, 1] of ``y0 + a1 t + a2 t^2 + a3 t^3`` whose slope changes sign
    on [0, 1] (``a1`` and ``a1 + 2 a2 + 3 a3`` of opposite signs): the root of
    ``a1 + 2 a2 t + 3 a3 t^2`` inside [0, 1] by the numerically stable pair
    ``q / (3 a3)``, ``a1 / q`` with ``q = -(a2 + sign(a2) sqrt(a2^2 - 3 a1 a3))``. Two
    independent divisions and a square root; on the unit interval the coefficients need no
    division by the step (three fewer than in the step's own variable)."""
    # every value is computed and chosen by selects, not branches: the choices depend on the
    # patient, and mispredicted branches cost more than the arithmetic of both arms
    disc = a2 * a2 - 3.0 * a1 * a3
    disc = 0.0 if disc < 0.0 else disc
    sq = np.sqrt(disc)
    q = -(a2 + (sq if a2 >= 0 else -sq))
    t1 = q / (3.0 * a3)
    t2 = a1 / q
    t2 = t1 if q == 0.0 else t2
    t = t1 if 0.0 <= t1 <= 1.0 else t2
    t_quadratic = -a1 / (2.0 * a2)
    t = t_quadratic if abs(a3) < 1e-300 else t
    t = 0.0 if t < 0.0 else t
    t = 1.0 if t > 1.0 else t
    return y0 + t * (a1 + t * (a2 + t * a3))


@nb.njit(cache=True, error_model="numpy")
def hermite_extremum(y0, f0, y1, f1, h):
    """Extremum of the cubic Hermite interpolant on [0, h] with values y0, y1 and slopes
    f0, f1 of opposite signs (error O(h^4))."""
    a1, a2, a3 = _hermite_coefficients(y0, f0, y1, f1, h)
    return _cubic_extremum(y0, a1, a2, a3)


@nb.njit(cache=True)
def _advance(E, x, rate, central, S, out):
    """``out = E[:S, :S] x + E[:S, S] rate`` (E from an augmented matrix with input column)."""
    for r in range(S):
        acc = E[r, S] * rate
        for c in range(S):
            acc += E[r, c] * x[c]
        out[r] = acc


@nb.njit(cache=True, inline="always")
def _irm_rk4_substep(
    E, x, xm, rate, central, S, fu, v1, r, f0, h, pd_kind, em, c50, hill, kin, kout
):
    """One RK4 substep of ``h`` of the indirect response on the exact concentration: ``x``
    (the state at the substep's start) advanced in place through ``xm`` by ``E``, the exact
    flow over ``h / 2`` (augmented with the input column); ``f0`` is dR/dt at the start.
    Returns R and dR/dt at the end."""
    _advance(E, x, rate, central, S, xm)
    _advance(E, xm, rate, central, S, x)
    cm = fu * xm[central] / v1
    c1 = fu * x[central] / v1
    q2 = irm_rhs(pd_kind, r + 0.5 * h * f0, cm, em, c50, hill, kin, kout)
    q3 = irm_rhs(pd_kind, r + 0.5 * h * q2, cm, em, c50, hill, kin, kout)
    q4 = irm_rhs(pd_kind, r + h * q3, c1, em, c50, hill, kin, kout)
    r1 = r + h / 6.0 * (f0 + 2.0 * q2 + 2.0 * q3 + q4)
    return r1, irm_rhs(pd_kind, r1, c1, em, c50, hill, kin, kout)


@nb.njit(cache=True)
def _refine_irm_extremum(A, x0, rate, central, v1, h, r0, pd_kind, P, i, m, M, E, have_E, tw):
    """Extremum of the indirect response inside one grid step, re-integrated with 4 RK4
    substeps on the exact concentration (exact flow over half substeps from the step's start
    state; ``E`` holds it already when ``have_E``) and located by Hermite interpolation on the
    substep where dR/dt changes sign. NaN if none."""
    S = A.shape[0]
    ns = 4
    hs = h / ns
    if not have_E:
        M[:, :] = 0.0
        for r in range(S):
            for c in range(S):
                M[r, c] = A[r, c]
        M[central, S] = 1.0
        expm_small(M * (0.5 * hs), E)
    x = tw[2]
    for r in range(S):
        x[r] = x0[r]
    xm = tw[3]
    fu = P[7, i]
    em, c50, hill, kin, kout = P[2, i], P[3, i], P[4, i], P[5, i], P[6, i]
    r = r0
    f0 = irm_rhs(pd_kind, r, fu * x[central] / v1, em, c50, hill, kin, kout)
    best = np.nan
    for _ in range(ns):
        r1, f1 = _irm_rk4_substep(
            E, x, xm, rate, central, S, fu, v1, r, f0, hs, pd_kind, em, c50, hill, kin, kout
        )
        if f0 * f1 < 0.0:
            v = hermite_extremum(r, f0, r1, f1, hs)
            if best != best or (m == 0 and v < best) or (m == 1 and v > best):
                best = v
        r = r1
        f0 = f1
    return best


#: Longest RK4 substep of :func:`_irm_walk`, as a fraction of the grid's largest step.
WALK_SUBSTEP = 0.0625


@nb.njit(cache=True)
def _irm_walk(
    A,
    x,
    rate,
    central,
    depot,
    v1,
    t0,
    t1,
    a_prev,
    first_prev,
    dep_time,
    dep_ev,
    amt_row,
    tlag,
    f_bio,
    k0,
    k1,
    r0,
    pd_kind,
    P,
    i,
    M,
    E,
    h0,
    hmax,
    ext,
):
    """The indirect response of one patient over the grid step ``[t0, t1]`` (h) when a lagged
    absorption starts inside it or started shortly before ``t0`` (at ``a_prev``; the kernel
    walks the steps that start less than ``steps_per_level * hmax`` after an arrival, the
    span over which the grid is graded after a dose).

    The grid is graded after the dose times, not after each patient's own arrival times (it
    must not depend on the patients of a call), so such a step may be coarse where dC/dt has
    just jumped and C changes fastest. This walks the step on the patient's own grading
    instead: pieces end at each arrival and at ``a + h0 2^m`` after the latest arrival ``a``
    (up to ``a + hmax``), the way the grid is graded after a dose, from ``h0 /
    FIRST_DOSE_DEPTH`` after a first arrival (drug into a drug-free body, where a Hill term
    with a non-integer exponent is not smooth; ``first_prev``: ``a_prev`` was one), as the
    grid is after the first dose; each piece is integrated by RK4 substeps of at most
    ``WALK_SUBSTEP * hmax`` on the exact flow from ``x`` (the state at ``t0``, advanced in
    place; arrivals ``k0 <= k < k1`` of the dose list are added to the depot on the way).

    Returns R(t1). ``ext`` receives the smallest and largest response over ``(t0, t1]``: the
    values at the substeps' ends and, where dR/dt changes sign inside a substep, the extremum
    of its cubic Hermite interpolant (on substeps of at most ``hmax / 16``: a Hermite
    estimate over the grid's own step would straddle the kink of R'' at the arrival)."""
    S = A.shape[0]
    fu = P[7, i]
    em, c50, hill, kin, kout = P[2, i], P[3, i], P[4, i], P[5, i], P[6, i]
    xm = np.empty(S)
    cap = WALK_SUBSTEP * hmax
    M[:, :] = 0.0
    for r in range(S):
        for c in range(S):
            M[r, c] = A[r, c]
    M[central, S] = 1.0
    e_dq = -1.0  # the substep whose half-step flow E holds
    ext[0] = np.inf
    ext[1] = -np.inf
    r = r0
    f0 = irm_rhs(pd_kind, r, fu * x[central] / v1, em, c50, hill, kin, kout)
    s = t0
    a_last = a_prev
    first = first_prev
    k = k0
    while True:
        while k < k1 and dep_time[k] + tlag <= s:  # arrivals at s
            amt = amt_row[dep_ev[k]] * f_bio
            a = dep_time[k] + tlag
            k += 1
            if amt == 0.0 or a < t0:  # as the kernel's arrival loop: no dose
                continue
            first = x[central] == 0.0 and x[depot] == 0.0
            x[depot] += amt
            a_last = s
        if s >= t1:
            break
        e = t1
        if k < k1:
            e = min(e, dep_time[k] + tlag)
        if s < a_last + hmax:
            d = h0 / FIRST_DOSE_DEPTH if first else h0
            while a_last + d <= s:
                d *= 2.0
            e = min(e, a_last + min(d, hmax))
        L = e - s
        n_sub = max(1, int(np.ceil(L / cap)))
        dq = L / n_sub
        for _ in range(n_sub):
            if dq != e_dq:
                expm_small(M * (0.5 * dq), E)
                e_dq = dq
            r1, f1 = _irm_rk4_substep(
                E, x, xm, rate, central, S, fu, v1, r, f0, dq, pd_kind, em, c50, hill, kin, kout
            )
            if f0 * f1 < 0.0:
                v = hermite_extremum(r, f0, r1, f1, dq)
                ext[0] = min(ext[0], v)
                ext[1] = max(ext[1], v)
            ext[0] = min(ext[0], r1)
            ext[1] = max(ext[1], r1)
            r = r1
            f0 = f1
        s = e
    return r


@nb.njit(cache=True)
def _size_index(sizes, h):
    """Index of ``h`` among the grid's step sizes (1e-12 relative), or -1."""
    k = np.searchsorted(sizes, h)
    for kk in (k - 1, k):
        if 0 <= kk < sizes.shape[0] and abs(sizes[kk] - h) <= 1e-12 * h:
            return kk
    return -1


@nb.njit(cache=True)
def _pieces(A, h):
    """Number of equal pieces of a step so that ``||A||_1 h / pieces <= 6`` (Taylor range)."""
    return max(1, int(np.ceil(norm1(A) * h / 6.0)))


@nb.njit(cache=True)
def _piece_setup(A, h, central, kmax, M, E):
    """Cut a step of ``h`` into Taylor-sized pieces: their number, size and Taylor terms;
    ``E`` receives the exact flow over one piece (infusion input included) when cut."""
    S = A.shape[0]
    m = _pieces(A, h)
    hp = h / m
    if m > 1:
        M[:, :] = 0.0
        for r in range(S):
            for c in range(S):
                M[r, c] = A[r, c]
        M[central, S] = 1.0
        expm_small(M * hp, E)
    return m, hp, _n_terms(A, hp, kmax)


@nb.njit(cache=True)
def _refine_extremum(A, x0, rate, central, obs, v1, h, sign, kmax, ifact, coef, tw, M, E):
    """Extremum of ``sign * C`` inside ``(0, h)`` from the state ``x0`` at the step start, by
    Newton on the exact Taylor expansion; long steps are cut into pieces whose start states
    come from the exact flow. Returns ``(value, time)`` or ``(nan, nan)``."""
    S = A.shape[0]
    m, hp, kt = _piece_setup(A, h, central, kmax, M, E)
    cf = coef[0, : kt + 1]
    cq = coef[1:4, : kt + 1]
    x = tw[2]
    for r in range(S):
        x[r] = x0[r]
    xnext = tw[3]
    for p in range(m):
        if p > 0:
            _advance(E, x, rate, central, S, xnext)
            for r in range(S):
                x[r] = xnext[r]
        taylor_coefficients(A, x, rate, central, obs, v1, kt, cf, tw)
        _scaled(cf, ifact, cq)
        d0 = cq[1, 0]  # the polynomial at 0
        d1, dd1 = _poly_pair(cq, hp, 1)
        if d0 * sign > 0.0 and d1 * sign < 0.0:
            s0 = _hermite_root(d0, cq[2, 0], d1, dd1, hp)
            s = _root(cq, 0.0, hp, 1, 0.0, d0 - 0.0, d1 - 0.0, s0)
            return _poly(cq, s, 0), p * hp + s
    return np.nan, np.nan


@nb.njit(cache=True)
def _arrival_between(dep_time, tlag, t0, t1):
    """Whether a lagged depot dose arrives strictly inside ``(t0, t1)``."""
    k = np.searchsorted(dep_time, t0 - tlag, side="right")
    return k < dep_time.shape[0] and dep_time[k] + tlag < t1


@nb.njit(cache=True)
def _time_above_piece(A, x0, rate, central, v1, h, thr, kmax, ifact, coef, tw, M, E):
    """Time (h) above ``thr`` over ``[0, h]`` from state ``x0`` without events: exact, one
    crossing per piece (long steps are cut into Taylor-sized pieces)."""
    if h <= 0.0:
        return 0.0
    S = A.shape[0]
    m, hp, kt = _piece_setup(A, h, central, kmax, M, E)
    cf = coef[0, : kt + 1]
    cq = coef[1:4, : kt + 1]
    x = tw[2]
    for r in range(S):
        x[r] = x0[r]
    xnext = tw[3]
    total = 0.0
    for p in range(m):
        if p > 0:
            _advance(E, x, rate, central, S, xnext)
            for r in range(S):
                x[r] = xnext[r]
        taylor_coefficients(A, x, rate, central, central, v1, kt, cf, tw)
        _scaled(cf, ifact, cq)
        c0 = cq[0, 0]  # the polynomial at 0
        c1 = _poly(cq, hp, 0)
        if c0 >= thr and c1 >= thr:
            total += hp
        elif (c0 >= thr) != (c1 >= thr):
            s = _root(cq, 0.0, hp, 0, thr, c0 - thr, c1 - thr, np.nan)
            total += s if c0 >= thr else hp - s
    return total


@nb.njit(cache=True)
def pd_value(pd_kind, cu, R, P, i):
    if pd_kind == 0:
        return 0.0
    if pd_kind <= 3:
        return direct_effect(pd_kind, cu, P[0, i], P[1, i], P[2, i], P[3, i], P[4, i])
    return R


@nb.njit(cache=True, error_model="numpy", boundscheck=False)
def _hermite_candidates(
    g,
    hp,
    change,
    f_prev,
    f_end,
    r_prev,
    r_node,
    rate,
    x_prev,
    win_a,
    win_b,
    win_track,
    e_ext,
    cand,
    idx,
    scratch,
):
    """Where dR/dt changed sign over the step ``g - 1 -> g`` (no event at ``g``) towards an
    extremum a window tracks (marked 1 in ``change``, int32 flags the step function writes;
    its length is even, padding 0): Hermite estimate of the response's extremum and, when it
    beats the window's candidate (``cand``, see :data:`CAND_V`), the state at ``g - 1`` to
    refine it from. ``idx``, ``scratch``: one int64 and seven float64 per patient."""
    S = x_prev.shape[0]
    W = win_a.shape[0]
    # the patients with a sign change, listed two flags at a time, without a branch per
    # patient (one in five of those scanned on the reference workload: a branch per patient
    # was mispredicted often). The flags are int32, not bytes: packing the step's 64-bit
    # comparison results into bytes cost the fused step ~7 % (~0.35 µs per patient), into
    # int32 3-4 % less, and this section measured the same with either. The choices of
    # ``_cubic_extremum`` that depend on the patient are selects.
    nc = 0
    words = change.view(np.uint64)
    for q in range(words.shape[0]):
        if words[q] == 0:
            continue
        for j in range(2 * q, 2 * q + 2):
            idx[nc] = j
            nc += change[j]
    # The interpolant's extremum ``v`` and its bounds: the interpolant stays within ``span``
    # of y0 on [0, h] (its Taylor terms bounded one by one; 1e-12 relative slack for
    # rounding). Computed without a branch over the candidates' gathered values, so that the
    # square roots and divisions run four candidates at a time (in one loop with the window
    # tests below, a candidate cost ~80 ns in all in a micro-benchmark).
    c_v = scratch[0]
    c_lo = scratch[1]
    c_hi = scratch[2]
    c_y0 = scratch[3]
    c_f0 = scratch[4]
    c_y1 = scratch[5]
    c_f1 = scratch[6]
    for c in range(nc):  # gathered first, so that the arithmetic below runs as SIMD code
        j = idx[c]
        c_y0[c] = r_prev[j]
        c_f0[c] = f_prev[j]
        c_y1[c] = r_node[j]
        c_f1[c] = f_end[j]
    for c in range(nc):
        y0 = c_y0[c]
        a1, a2, a3 = _hermite_coefficients(y0, c_f0[c], c_y1[c], c_f1[c], hp)
        span = abs(a1) + abs(a2) + abs(a3)
        span += 1e-12 * (abs(y0) + span)
        c_lo[c] = y0 - span
        c_hi[c] = y0 + span
        c_v[c] = _cubic_extremum(y0, a1, a2, a3)
    for c in range(nc):
        j = idx[c]
        m = 0 if f_prev[j] < 0.0 else 1
        # A candidate that cannot come within the refinement margin of a window's node
        # extremum so far can never be refined (the node extremum only grows, see the end of
        # ``linear_kernel``): skip it, and the candidate kept is the same as when every sign
        # change is evaluated.
        hopeless = True
        for w in range(W):
            if g - 1 < win_a[w] or g > win_b[w] or not win_track[w] & (TRACK_EMIN << m):
                continue
            if _may_beat_node(c_lo[c] if m == 0 else c_hi[c], e_ext[w, m, j], m):
                hopeless = False
        if hopeless:
            continue
        v = c_v[c]
        y0 = r_prev[j]
        for w in range(W):
            if g - 1 < win_a[w] or g > win_b[w] or not win_track[w] & (TRACK_EMIN << m):
                continue
            rec = cand[w, m, j]
            if (m == 0 and v < rec[CAND_V]) or (m == 1 and v > rec[CAND_V]):
                rec[CAND_V] = v
                rec[CAND_G] = g - 1
                rec[CAND_R] = y0
                rec[CAND_RATE] = rate[j]
                for r in range(S):
                    rec[CAND_X + r] = x_prev[r, j]


@nb.njit(cache=True, error_model="numpy", boundscheck=False)
def _track_interior(
    w,
    g,
    t_g,
    irm,
    obs,
    track,
    cpost,
    r_node,
    x,
    x_prev,
    rate,
    e_ext,
    best,
    best_node,
    best_t,
    st_prev,
    st_post,
    rt_prev,
    rt_post,
    obs_buf,
    flag,
):
    """Window ``w`` at a node strictly inside it without an event: extrema of the indirect
    response (``e_ext``, if ``track`` has a ``TRACK_E`` bit) and of C (or Ce, if it has
    ``TRACK_C``), with the states around the node for the refinement.

    One branch-free (SIMD) pass updates the extreme values and marks in ``flag`` (bit 0: a
    new maximum, bit 1: a new minimum; length a multiple of 8, padding 0) the patients whose
    node, time and states must be recorded; a second pass visits only those, eight flags at
    a time. It replaced a scalar loop over every patient that ran whenever any patient beat
    its record (about a third of the nodes on the reference workload): ~0.7 µs per patient
    less end to end, within the run-to-run noise of ±5 %."""
    S = x.shape[0]
    nbk = x.shape[1]
    track_e = irm and track & TRACK_E != 0
    emin = e_ext[w, 0]
    emax = e_ext[w, 1]
    if not track & TRACK_C:
        # only the directions tracked (one is the usual case: 3 instead of 5 memory
        # operations per patient at every node of the window)
        if irm and track & TRACK_EMIN:
            for j in range(nbk):
                emin[j] = min(emin[j], r_node[j])
        if irm and track & TRACK_EMAX:
            for j in range(nbk):
                emax[j] = max(emax[j], r_node[j])
        return
    cc = cpost
    if obs >= 0:
        for j in range(nbk):
            obs_buf[j] = x[obs, j]
        cc = obs_buf
    bmax = best[w, 0]
    bmin = best[w, 1]
    n_imp = 0
    for j in range(nbk):
        if track_e:  # loop-invariant: LLVM unswitches it, both versions vectorize
            r = r_node[j]
            emin[j] = min(emin[j], r)
            emax[j] = max(emax[j], r)
        c = cc[j]
        up = c > bmax[j]
        dn = c < bmin[j]
        bmax[j] = c if up else bmax[j]
        bmin[j] = c if dn else bmin[j]
        flag[j] = np.uint8(up) | (np.uint8(dn) << np.uint8(1))
        n_imp += up | dn
    if n_imp == 0:
        return
    words = flag.view(np.uint64)
    for q in range(words.shape[0]):
        if words[q] == 0:
            continue
        for j in range(8 * q, min(8 * q + 8, nbk)):
            fl = flag[j]
            for mm in range(2):
                if fl & (1 << mm):
                    best_node[w, mm, j] = g
                    best_t[w, mm, j] = t_g
                    for r in range(S):
                        st_prev[w, mm, r, j] = x_prev[r, j]
                        st_post[w, mm, r, j] = x[r, j]
                    rt_prev[w, mm, j] = rate[j]
                    rt_post[w, mm, j] = rate[j]


@nb.njit(cache=True, inline="always")
def _add_depot_dose(x, depot, amount, f_bio, b0, idx):
    """Dose ``idx`` of the block's patients into the depot, times their bioavailability (at
    a node: the general path and the plain path of ``linear_kernel`` alike)."""
    for j in range(x.shape[1]):
        x[depot, j] += amount[b0 + j, idx] * f_bio[b0 + j]


@nb.njit(cache=True, error_model="numpy", boundscheck=False)
def _add_auc(g, win_a, win_b, win_track, dauc, auc_w):
    """Add the AUC increment of the step ``g -> g + 1`` to every window that reports an AUC
    and holds the step."""
    for w in range(win_a.shape[0]):
        if win_track[w] & TRACK_AUC and win_a[w] <= g < win_b[w]:
            aw = auc_w[w]
            for j in range(dauc.shape[0]):
                aw[j] += dauc[j]


@nb.njit(cache=True, inline="always")
def _may_beat_node(v, node_best, m):
    """Whether a response extremum ``v`` (``m`` = 0: minimum, 1: maximum) comes within
    ``REFINE_MARGIN`` of the window's node extremum ``node_best``: only such a Hermite
    candidate is refined (the estimate is within ~1e-6 relative of the truth)."""
    margin = REFINE_MARGIN * abs(node_best)
    return v < node_best + margin if m == 0 else v > node_best - margin


@nb.njit(cache=True)
def _same_irm_candidate(w, m, j, irm_done, cand):
    """An earlier window whose response candidate ``m`` of patient ``j`` comes from the same
    sign change as window ``w``'s and has been refined (``irm_done``), or -1."""
    for w2 in range(w):
        if (
            irm_done[w2, m]
            and cand[w2, m, j, CAND_G] == cand[w, m, j, CAND_G]
            and cand[w2, m, j, CAND_V] == cand[w, m, j, CAND_V]
            and cand[w2, m, j, CAND_R] == cand[w, m, j, CAND_R]
        ):
            return w2
    return -1


@nb.njit(cache=True)
def _same_c_extremum(w, m, j, g, val, best_node, best, win_a, win_b, win_obs):
    """An earlier window whose C (or Ce) extremum ``m`` of patient ``j`` is the same node
    record as window ``w``'s and is refined over the same steps (so its refined value and
    time are window ``w``'s too), or -1."""
    if g < 0:
        return -1
    for w2 in range(w):
        if (
            best_node[w2, m, j] == g
            and best[w2, m, j] == val
            and win_obs[w2] == win_obs[w]
            and (g >= win_b[w2]) == (g >= win_b[w])
            and (g <= win_a[w2]) == (g <= win_a[w])
        ):
            return w2
    return -1


#: Types of :func:`_signature`'s codes: scalars, C-contiguous arrays of 1 to 4 dimensions.
_TYPES = {
    "none": nb.types.none,
    "b": nb.types.boolean,
    "i": nb.types.int64,
    "f": nb.types.float64,
    "ff": nb.types.UniTuple(nb.types.float64, 2),
    "b1": nb.types.boolean[::1],
    "b2": nb.types.boolean[:, ::1],
    "u1": nb.types.uint8[::1],
    "i1": nb.types.int32[::1],
    "I1": nb.types.int64[::1],
    "I3": nb.types.int64[:, :, ::1],
    "f1": nb.types.float64[::1],
    "f2": nb.types.float64[:, ::1],
    "f3": nb.types.float64[:, :, ::1],
    "f4": nb.types.float64[:, :, :, ::1],
}


def _args(codes: str) -> tuple:
    """Argument types from the codes of :data:`_TYPES`, separated by spaces."""
    return tuple(_TYPES[a] for a in codes.split())


def _signature(result: str, args: str):
    """A numba signature from the codes of :data:`_TYPES` (``args``: see :func:`_args`)."""
    return _TYPES[result](*_args(args))


#: The helpers :func:`linear_kernel` calls through function pointers (its argument ``cold``,
#: see :func:`cold_helpers`), with their signatures: first those of both kernel variants, then
#: those of the full variant only. They run once per block, per node at most, or only for a
#: few patients. A direct call would link each one's code (and its callees') into the kernel,
#: which numba then optimizes and compiles again as part of the kernel: through a pointer each
#: compiles once, on its own, and the kernel's first compile does not wait for them (see
#: :mod:`insilico.pk.precompile`). The helpers that run per patient and node (``_matvec``,
#: ``store_row``, ``pd_value``, ...) stay direct calls, open to inlining.
COLD_HELPERS = (
    (_transitions, _signature("none", "f3 b i f1 I1 i i i f4")),
    (
        _track_interior,
        _signature("none", "i i f b i i f1 f1 f2 f2 f1 f3 f3 I3 f3 f4 f4 f3 f3 f1 u1"),
    ),
    (_refine_extremum, _signature("ff", "f2 f1 f i i f f f i f1 f2 f2 f2 f2")),
    # the full variant only
    (_time_above_piece, _signature("f", "f2 f1 f i f f f i f1 f2 f2 f2 f2")),
    (_hermite_candidates, _signature("none", "i f i1 f1 f1 f1 f1 f1 f2 I1 I1 I1 f3 f4 I1 f2")),
    (_refine_irm_extremum, _signature("f", "f2 f1 f i f f f i f2 i i f2 f2 b f2")),
    (
        _irm_walk,
        _signature("f", "f2 f1 f i i f f f f b f1 I1 f1 f f i i f i f2 i f2 f2 f f f1"),
    ),
    (_lobatto_coefficients, _signature("none", "f1 f1 b1 f3")),
    (_fold_lobatto_weights, _signature("none", "f3 f1 f1 b1")),
    (expm_small, _signature("none", "f2 f2")),
)
#: How many of :data:`COLD_HELPERS` the plain variant takes.
N_COLD_PLAIN = 3
#: The functions :func:`linear_kernel` calls directly and the argument types it calls them
#: with (both variants, then the full variant only): on a cold cache a child process compiles
#: them into the cache ahead of the kernel, which then loads them when its typing reaches the
#: calls (:mod:`insilico.pk.precompile`). Types out of date cost only that head start.
DIRECT_CALLEES = (
    (_matvec, _args("f3 f2 f2 f1 b i i f1")),
    (store_row, _args("u1 i f1 i b b")),
    (store_fence, ()),
    (pd_value, _args("i f f f2 i")),
    (_add_auc, _args("i I1 I1 I1 f1 f2")),
    (_same_c_extremum, _args("i i i i f I3 f3 I1 I1 I1")),
    (_inverse_factorials, _args("i")),
    (_pieces, _args("f2 f")),
    # the full variant only
    (rate_lobatto_step, _args("f f f1 f1 f1 f1 f1 f1 f1 f1 f2")),
    (hermite_extremum, _args("f f f f f")),
    (_arrival_between, _args("f1 f f f")),
    (_same_irm_candidate, _args("i i i b2 f4")),
    (_size_index, _args("f1 f")),
)
#: How many of :data:`DIRECT_CALLEES` the plain variant calls.
N_DIRECT_PLAIN = 8


_COLD: dict[bool, tuple] = {}
_COLD_TYPES: dict[bool, nb.types.Tuple] = {}


@contextlib.contextmanager
def quiet_function_tuples():
    """Silence numba's warning that tuples of function types are an experimental feature (it
    warns whenever such a tuple type is built or typed); the kernel's use is tested."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NumbaExperimentalFeatureWarning)
        yield


def cold_helper_types(plain: bool) -> nb.types.Tuple:
    """The numba type of :func:`linear_kernel`'s argument ``cold`` (a tuple of function
    pointers) in the plain or the full variant."""
    plain = bool(plain)
    out = _COLD_TYPES.get(plain)
    if out is None:
        helpers = COLD_HELPERS[:N_COLD_PLAIN] if plain else COLD_HELPERS
        with quiet_function_tuples():
            out = nb.types.Tuple([nb.types.FunctionType(sig) for _, sig in helpers])
        _COLD_TYPES[plain] = out
    return out


def cold_helpers(plain: bool) -> tuple:
    """:func:`linear_kernel`'s argument ``cold``: the helpers of :data:`COLD_HELPERS` of the
    plain or the full variant, each compiled (or loaded from the cache) for its signature."""
    plain = bool(plain)
    out = _COLD.get(plain)
    if out is None:
        helpers = COLD_HELPERS[:N_COLD_PLAIN] if plain else COLD_HELPERS
        for fn, sig in helpers:
            fn.compile(sig)
        out = _COLD[plain] = tuple(fn for fn, _ in helpers)
    return out


#: Whether this is the plain variant of :func:`linear_kernel`, read by its code as a module
#: global (see :func:`kernel_variant`).
PLAIN = False


def linear_kernel(  # noqa: C901  (one compiled loop nest: see the module docstring)
    A,
    v1,
    central,
    depot,
    ce,
    auc_i,
    aug,
    sizes,
    size_src,
    node_h,
    step_k,
    half_k,
    inner_k,
    ev_ptr,
    ev_idx,
    ev_action,
    amount,
    inv_dur,
    f_bio,
    lag_mode,
    tlag,
    lag_h0,
    lag_hmax,
    lag_span,
    dep_time,
    dep_ev,
    x0,
    pd_kind,
    P,
    pd0,
    out_node,
    want_state,
    win_a,
    win_b,
    win_thr,
    win_obs,
    win_track,
    block,
    out_conc,
    out_effect,
    out_f32,
    out_state,
    met,
    step_fn,
    step_fn_noauc,
    cold,
):
    """Exact stepping of linear PK with an integrated indirect response (exponential Lobatto
    quadrature of the forcing for I and III, of the loss rate for II and IV, see
    :func:`rate_lobatto_step`), outputs and windowed metrics.

    See :func:`insilico.pk.simulate.simulate` for the meaning of the arguments. The time
    courses ``out_conc`` and ``out_effect`` come as bytes (:func:`insilico.pk.stream.as_bytes`)
    of float32 arrays when ``out_f32``, else of float64 ones (one compiled kernel for both).

    ``step_fn`` is the layout's fused step (:func:`insilico.pk.steps.step_function`), a
    function pointer of type :data:`insilico.pk.steps.STEP_TYPE`; ``step_fn_noauc`` the same
    step leaving the AUC state as it was, for the plain steps outside every window with
    ``TRACK_AUC`` (unless ``want_state``). Only the AUC's increments over a window's steps
    are used (summed per window), so outside those windows the state need not be kept. The
    state buffers start as copies of the initial state, so their AUC rows always hold finite
    values (a transition multiplies them by exact zeros elsewhere; 0 * NaN would not be 0).

    Releases the GIL: threads simulating different blocks run on different cores (no shared
    state; every buffer is allocated here or passed in).
    """
    n, S, _ = A.shape
    Sa = S + 1 if aug else S
    G = node_h.shape[0]
    K = sizes.shape[0]
    W = win_a.shape[0]
    n_out = out_node.shape[0]
    KT = TAYLOR_TERMS
    ifact = _inverse_factorials(KT + 2)
    coef = np.empty((4, KT + 1))  # Taylor coefficients and their scaled terms
    tw = np.empty((4, S))
    Mp = np.zeros((S + 1, S + 1))
    Ep = np.empty((S + 1, S + 1))
    xs = np.empty(S)
    Mlag = np.zeros((Sa, Sa))
    # the rarely run helpers, through function pointers (see :data:`COLD_HELPERS`)
    transitions = cold[0]
    track_interior = cold[1]
    refine_extremum = cold[2]
    if PLAIN:  # the plain variant (see :func:`kernel_variant`): their code is not compiled
        irm = False
        lagged = False
        thresholds = False
    else:
        irm = pd_kind >= 4
        lagged = lag_mode == 1
        thresholds = True
        time_above_piece = cold[3]
        hermite_candidates = cold[4]
        refine_irm_extremum = cold[5]
        irm_walk = cold[6]
        lobatto_coefficients = cold[7]
        fold_lobatto_weights = cold[8]
        expm_one = cold[9]
    irm_done = np.zeros((max(W, 1), 2), dtype=np.bool_)
    irm_ref = np.zeros((max(W, 1), 2))
    Elag = np.empty((Sa, Sa))
    # plain nodes (no event but doses into the depot, no window boundary, not the first or
    # last, no per-patient lag) take the fused path: node work and the step to the next node
    # in one SIMD loop
    plain = np.zeros(G, dtype=np.bool_)
    if not lagged:
        for g in range(1, G - 1):
            # a dose into the depot leaves C, Ce, R and dR/dt continuous at the node (only
            # dC/dt jumps): added to the state first, the node is plain (oral regimens)
            plain[g] = True
            for e in range(ev_ptr[g], ev_ptr[g + 1]):
                if ev_action[e] != 1:
                    plain[g] = False
        for w in range(W):
            plain[win_a[w]] = False
            plain[win_b[w]] = False
    # steps g - 1 -> g inside some window that tracks the response: only there can a
    # Hermite candidate be kept
    step_size = np.zeros(K, dtype=np.bool_)  # sizes of steps (not only of inner points)
    for g in range(G - 1):
        step_size[step_k[g]] = True
    herm_node = np.zeros(G, dtype=np.bool_)
    # directions of the response's extrema some window tracks: -1 minima only, 1 maxima only,
    # 0 both. A sign change of dR/dt counts when f_prev * sel >= 0: with a minimum only (the
    # usual case), the nodes where only maxima pass are not scanned (half of them on the
    # reference workload)
    want_min = False
    want_max = False
    for w in range(W):
        want_min |= win_track[w] & TRACK_EMIN != 0
        want_max |= win_track[w] & TRACK_EMAX != 0
    sel = 0.0 if want_min == want_max else (-1.0 if want_min else 1.0)
    for g in range(1, G):
        for w in range(W):
            if win_track[w] & TRACK_E and win_a[w] <= g - 1 and g <= win_b[w]:
                herm_node[g] = True
    # plain nodes where the trackers need the concentration (``cpost``): windows that track
    # C (not Ce) or the time above a threshold (outputs compute it from the state)
    need_c = np.zeros(G, dtype=np.bool_)
    # steps g -> g + 1 inside a window that reports an AUC (``auc_win``) and steps that must
    # update the AUC state (those and all with ``want_state``; the general path always does)
    auc_win = np.zeros(G, dtype=np.bool_)
    for w in range(W):
        if win_track[w] & TRACK_AUC:
            auc_win[win_a[w] : win_b[w]] = True
    auc_step = auc_win | want_state
    # time courses too large to stay in cache are written around it (:mod:`.stream`)
    stream = out_conc.nbytes + out_effect.nbytes >= STREAM_MIN_BYTES
    for w in range(W):
        if (win_track[w] & TRACK_C and win_obs[w] < 0) or win_thr[w] == win_thr[w]:
            need_c[win_a[w] : win_b[w] + 1] = True
    for b0 in range(0, n, block):
        nbk = min(block, n - b0)
        phi = np.empty((K, Sa, Sa, nbk))
        transitions(A, aug, central, sizes, size_src, b0, nbk, Sa, phi)
        x = np.empty((S, nbk))
        for r in range(S):
            for j in range(nbk):
                x[r, j] = x0[b0 + j, r]
        xpre = np.empty((S, nbk))
        xn = x.copy()  # finite AUC rows (see the docstring)
        rate = np.zeros(nbk)
        rate_pre = np.zeros(nbk)
        R = np.empty(nbk)
        for j in range(nbk):
            R[j] = pd0[b0 + j]
        lag_ptr = np.zeros(nbk, dtype=np.int64)
        arrived = np.zeros(nbk, dtype=np.bool_)
        arr_t = np.zeros(nbk)
        arr_x = np.zeros((S, nbk))
        lag_k0 = np.zeros(nbk, dtype=np.int64)  # the dose list's position at the step start
        prev_arr = np.full(nbk, -np.inf)  # the latest arrival at or before the step start
        prev_first = np.zeros(nbk, dtype=np.bool_)  # it was into a drug-free body
        arr_first = np.zeros(nbk, dtype=np.bool_)  # the same for the step's last arrival
        walked = np.zeros(nbk, dtype=np.bool_)  # the step's response from ``_irm_walk``
        walk_ext = np.empty(2)
        # metric trackers: [w, 0=max/1=min, j]
        best = np.empty((W, 2, nbk))
        best_node = np.full((W, 2, nbk), -1, dtype=np.int64)
        best_t = np.full((W, 2, nbk), np.nan)
        st_prev = np.zeros((W, 2, S, nbk))
        st_post = np.zeros((W, 2, S, nbk))
        rt_prev = np.zeros((W, 2, nbk))
        rt_post = np.zeros((W, 2, nbk))
        # AUC of each window so far: the sum of the AUC state's increments over its steps (not
        # a difference of the state, whose rounding would depend on the steps before the
        # window and so on the other windows; the steps outside every window that reports an
        # AUC do not update the state, see ``step_fn_noauc``)
        auc_w = np.zeros((W, nbk))
        dauc = np.zeros(nbk)
        t_above = np.zeros((W, nbk))
        e_ext = np.empty((W, 2, nbk))
        cand = np.zeros((W, 2, nbk, CAND_X + S))  # see CAND_V
        cand_idx = np.empty(nbk, dtype=np.int64)
        cand_scratch = np.empty((7, nbk))
        for w in range(W):
            for j in range(nbk):
                best[w, 0, j] = -np.inf
                best[w, 1, j] = np.inf
                e_ext[w, 0, j] = np.inf
                e_ext[w, 1, j] = -np.inf
                cand[w, 0, j, CAND_V] = np.inf
                cand[w, 1, j, CAND_V] = -np.inf
                cand[w, 0, j, CAND_G] = -1.0
                cand[w, 1, j, CAND_G] = -1.0
        active = 0
        o = 0
        v1b = np.empty(nbk)
        fub = np.empty(nbk)
        for j in range(nbk):
            v1b[j] = v1[b0 + j]
            fub[j] = P[7, b0 + j]
        cpost = np.empty(nbk)
        cpre = np.empty(nbk)
        obuf = np.empty(nbk)  # a row of outputs, before :func:`store_row` writes it
        # indirect response: state, derivative and value at the previous node (Hermite
        # refinement of the response's extrema between nodes)
        k1 = np.zeros(nbk)
        f_end = np.zeros(nbk)
        f_prev = np.zeros(nbk)
        r_prev = np.zeros(nbk)
        hill_one = True
        for j in range(nbk):
            if P[4, b0 + j] != 1.0:
                hill_one = False
        # indirect response in branch-free form:
        # dR/dt = kin (1 + ap Emax f) - kout (1 + al Emax f) R, f = Cu^h / (C50^h + Cu^h);
        # ``fnode`` holds f at the node (without Emax), from the central amount against C50
        # as an amount (``c50a``); Lobatto folds kin and kin ap Emax (``kae``) into its weights
        ap = -1.0 if pd_kind == 4 else (1.0 if pd_kind == 6 else 0.0)
        al = -1.0 if pd_kind == 5 else (1.0 if pd_kind == 7 else 0.0)
        emb = np.empty(nbk)
        kinb = np.empty(nbk)
        koutb = np.empty(nbk)
        c50a = np.empty(nbk)
        kae = np.empty(nbk)
        fnode = np.zeros(nbk)
        obs_buf = np.zeros(nbk)
        flag = np.zeros(8 * ((nbk + 7) // 8), dtype=np.uint8)
        hchange = np.zeros(2 * ((nbk + 1) // 2), dtype=np.int32)  # ``_hermite_candidates``
        fmid = np.zeros(nbk)
        fb_ = np.zeros(nbk)
        fend = np.zeros(nbk)
        for j in range(nbk):
            emb[j] = P[2, b0 + j]
            kinb[j] = P[5, b0 + j]
            koutb[j] = P[6, b0 + j]
            # C50 as a central amount: f(Cu) = f(fu x / V1) = f(x) against C50 V1 / fu
            c50a[j] = P[3, b0 + j] / (P[7, b0 + j] / v1[b0 + j])
            kae[j] = kinb[j] * (ap * emb[j])
        # IRM I, III (forcing independent of R): exponential Lobatto quadrature at the step's
        # inner points inner_k, weights per step size; II, IV: ``rate_lobatto_step`` at the
        # same points, weights per patient and step
        lob = pd_kind == 4 or pd_kind == 6
        etd = np.empty((6, K, nbk))
        if irm and lob:
            lobatto_coefficients(koutb, sizes, step_size, etd)
            fold_lobatto_weights(etd, kinb, kae, step_size)
        elif irm:  # ``rate_lobatto_step`` takes the step size from etd[0, k]
            for k in range(K):
                for j in range(nbk):
                    etd[0, k, j] = sizes[k]
        xa = np.empty(nbk)
        xb = np.empty(nbk)
        rl_buf = np.empty((5, nbk))  # ``rate_lobatto_step``
        cbuf = np.empty((3, nbk))
        x3 = x.copy()
        rcur = np.zeros(nbk)
        fcur = np.zeros(nbk)
        hillb = np.empty(nbk)
        for j in range(nbk):
            hillb[j] = P[4, b0 + j]
        for g in range(G):
            if plain[g]:
                for e in range(ev_ptr[g], ev_ptr[g + 1]):
                    _add_depot_dose(x, depot, amount, f_bio, b0, ev_idx[e])
                k = step_k[g]
                step = step_fn if auc_step[g] else step_fn_noauc
                n_change = step(
                    phi[k],
                    phi[half_k[g]],
                    phi[inner_k[g, 0]],
                    phi[inner_k[g, 1]],
                    x,
                    x3,
                    rate,
                    irm,
                    lob,
                    hill_one,
                    R,
                    fnode,
                    rcur,
                    fcur,
                    f_prev,
                    sel,
                    etd,
                    k,
                    emb,
                    c50a,
                    kinb,
                    koutb,
                    kae,
                    hillb,
                    ap,
                    al,
                    cbuf,
                    dauc,
                    hchange,
                )
                if irm:  # the step wrote the new response into rcur: R at g becomes rcur
                    R, rcur = rcur, R
                if need_c[g]:
                    for j in range(nbk):
                        cpost[j] = x[central, j] / v1b[j]
                while o < n_out and out_node[o] == g:
                    for j in range(nbk):
                        obuf[j] = x[central, j] / v1b[j]
                    store_row(out_conc[o], b0, obuf, nbk, stream, out_f32)
                    if irm:
                        store_row(out_effect[o], b0, rcur, nbk, stream, out_f32)
                    elif pd_kind > 0:
                        for j in range(nbk):
                            cu = fub[j] * (x[ce, j] if ce >= 0 else x[central, j] / v1b[j])
                            obuf[j] = pd_value(pd_kind, cu, R[j], P, b0 + j)
                        store_row(out_effect[o], b0, obuf, nbk, stream, out_f32)
                    if want_state:
                        for j in range(nbk):
                            for r in range(S):
                                out_state[b0 + j, o, r] = x[r, j]
                    o += 1
                if irm and W > 0:
                    if n_change > 0 and herm_node[g]:
                        hp = node_h[g] - node_h[g - 1]
                        hermite_candidates(
                            g,
                            hp,
                            hchange,
                            f_prev,
                            fcur,
                            r_prev,
                            rcur,
                            rate,
                            xn,
                            win_a,
                            win_b,
                            win_track,
                            e_ext,
                            cand,
                            cand_idx,
                            cand_scratch,
                        )
                    f_prev, fcur = fcur, f_prev
                    r_prev, rcur = rcur, r_prev
                for w in range(W):
                    if g < win_a[w] or g > win_b[w]:
                        continue
                    track_interior(
                        w,
                        g,
                        node_h[g],
                        irm,
                        win_obs[w],
                        win_track[w],
                        cpost,
                        r_prev if irm else rcur,
                        x,
                        xn,
                        rate,
                        e_ext,
                        best,
                        best_node,
                        best_t,
                        st_prev,
                        st_post,
                        rt_prev,
                        rt_post,
                        obs_buf,
                        flag,
                    )
                h = node_h[g + 1] - node_h[g]
                if thresholds:
                    for w in range(W):
                        thr = win_thr[w]
                        if not (thr == thr) or g < win_a[w] or g >= win_b[w]:
                            continue
                        for j in range(nbk):
                            c0 = cpost[j]
                            c1 = x3[central, j] / v1b[j]
                            if c0 >= thr and c1 >= thr:
                                t_above[w, j] += h
                            elif (c0 >= thr) != (c1 >= thr):
                                i = b0 + j
                                for r in range(S):
                                    xs[r] = x[r, j]
                                t_above[w, j] += time_above_piece(
                                    A[i],
                                    xs,
                                    rate[j],
                                    central,
                                    v1[i],
                                    h,
                                    thr,
                                    KT,
                                    ifact,
                                    coef,
                                    tw,
                                    Mp,
                                    Ep,
                                )
                if auc_win[g]:
                    _add_auc(g, win_a, win_b, win_track, dauc, auc_w)
                # rotate: xn <- state at g, x <- state at g + 1
                xn, x, x3 = x, x3, xn
                continue
            has_ev = ev_ptr[g + 1] > ev_ptr[g]
            if has_ev:
                for r in range(S):
                    for j in range(nbk):
                        xpre[r, j] = x[r, j]
                for j in range(nbk):
                    rate_pre[j] = rate[j]
                    cpre[j] = x[central, j] / v1b[j]
            # events at this node
            for e in range(ev_ptr[g], ev_ptr[g + 1]):
                idx = ev_idx[e]
                act = ev_action[e]
                if act == 0:
                    for j in range(nbk):
                        x[central, j] += amount[b0 + j, idx]
                elif act == 1:
                    _add_depot_dose(x, depot, amount, f_bio, b0, idx)
                elif act == 2:
                    active += 1
                    for j in range(nbk):
                        rate[j] += amount[b0 + j, idx] * inv_dur[idx]
                else:
                    active -= 1
                    for j in range(nbk):
                        rate[j] -= amount[b0 + j, idx] * inv_dur[idx]
                    if active == 0:
                        rate[:] = 0.0
            if lagged:
                # lagged arrivals exactly on this node are node events
                for j in range(nbk):
                    i = b0 + j
                    while (
                        lag_ptr[j] < dep_time.shape[0]
                        and dep_time[lag_ptr[j]] + tlag[i] == node_h[g]
                    ):
                        amt = amount[i, dep_ev[lag_ptr[j]]] * f_bio[i]
                        if amt != 0.0:
                            prev_arr[j] = node_h[g]
                            prev_first[j] = x[central, j] == 0.0 and x[depot, j] == 0.0
                        x[depot, j] += amt
                        lag_ptr[j] += 1
            for j in range(nbk):
                cpost[j] = x[central, j] / v1b[j]
            if not has_ev:
                for j in range(nbk):
                    cpre[j] = cpost[j]
            # outputs (post-event values), block-local buffers with patients contiguous
            while o < n_out and out_node[o] == g:
                store_row(out_conc[o], b0, cpost, nbk, stream, out_f32)
                if irm:
                    store_row(out_effect[o], b0, R, nbk, stream, out_f32)
                elif pd_kind > 0:
                    for j in range(nbk):
                        cu = fub[j] * (x[ce, j] if ce >= 0 else cpost[j])
                        obuf[j] = pd_value(pd_kind, cu, R[j], P, b0 + j)
                    store_row(out_effect[o], b0, obuf, nbk, stream, out_f32)
                if want_state:
                    for j in range(nbk):
                        for r in range(S):
                            out_state[b0 + j, o, r] = x[r, j]
                o += 1
            # indirect response: derivative at the node, Hermite extremum on the last step
            if irm:
                if g == 0 or has_ev:
                    for j in range(nbk):
                        hl = 1.0 if hill_one else hillb[j]  # see ``fused._hill_expr``
                        fnode[j] = hill_fraction(x[central, j], c50a[j], hl)
                if W > 0:  # dR/dt at the node, for the Hermite extremum search
                    # (in the operation order of ``fused._node_lines``)
                    if lob:
                        for j in range(nbk):
                            k1[j] = kinb[j] + kae[j] * fnode[j] - koutb[j] * R[j]
                    else:
                        for j in range(nbk):
                            f0 = emb[j] * fnode[j]
                            k1[j] = kinb[j] * (1.0 + ap * f0) - koutb[j] * (1.0 + al * f0) * R[j]
                if g > 0 and W > 0 and herm_node[g]:
                    hp = node_h[g] - node_h[g - 1]
                    if has_ev:
                        for j in range(nbk):
                            i = b0 + j
                            f_end[j] = irm_rhs(
                                pd_kind,
                                R[j],
                                fub[j] * cpre[j],
                                P[2, i],
                                P[3, i],
                                P[4, i],
                                P[5, i],
                                P[6, i],
                            )
                    else:
                        for j in range(nbk):
                            f_end[j] = k1[j]
                    n_change = 0
                    for j in range(nbk):
                        n_change += f_prev[j] * f_end[j] < 0.0
                    if n_change > 0:
                        for j in range(nbk):
                            if f_prev[j] * f_end[j] >= 0.0 or walked[j]:
                                continue  # a walked step: its extrema are tracked already
                            v = hermite_extremum(r_prev[j], f_prev[j], R[j], f_end[j], hp)
                            m = 0 if f_prev[j] < 0.0 else 1
                            for w in range(W):
                                if g - 1 < win_a[w] or g > win_b[w]:
                                    continue
                                if not win_track[w] & (TRACK_EMIN << m):
                                    continue
                                rec = cand[w, m, j]
                                if (m == 0 and v < rec[CAND_V]) or (m == 1 and v > rec[CAND_V]):
                                    # xn holds the state at the previous node (post-event)
                                    rec[CAND_V] = v
                                    rec[CAND_G] = g - 1
                                    rec[CAND_R] = r_prev[j]
                                    rec[CAND_RATE] = rate_pre[j] if has_ev else rate[j]
                                    for r in range(S):
                                        rec[CAND_X + r] = xn[r, j]
                for j in range(nbk):
                    f_prev[j] = k1[j]
                    r_prev[j] = R[j]
            # windowed metrics at the node
            for w in range(W):
                a_ = win_a[w]
                b_ = win_b[w]
                if g < a_ or g > b_:
                    continue
                for side in range(2):
                    if side == 0 and not ((g > a_ and has_ev) or g == b_):
                        continue  # without an event the pre- and post-event values agree
                    if side == 1 and not (g < b_ or a_ == b_):
                        continue
                    if irm and win_track[w] & TRACK_E:
                        for j in range(nbk):
                            e_ext[w, 0, j] = min(e_ext[w, 0, j], R[j])
                            e_ext[w, 1, j] = max(e_ext[w, 1, j], R[j])
                    if not win_track[w] & TRACK_C:
                        continue
                    cc = cpre if side == 0 else cpost
                    xx = xpre if (side == 0 and has_ev) else x
                    if win_obs[w] >= 0:  # an effect-compartment window: track Ce
                        for j in range(nbk):
                            obs_buf[j] = xx[win_obs[w], j]
                        cc = obs_buf
                    bmax = best[w, 0]
                    bmin = best[w, 1]
                    n_imp = 0
                    for j in range(nbk):
                        n_imp += (cc[j] > bmax[j]) | (cc[j] < bmin[j])
                    if n_imp == 0:
                        continue
                    for j in range(nbk):
                        c = cc[j]
                        if c > best[w, 0, j] or c < best[w, 1, j]:
                            m = 0 if c > best[w, 0, j] else 1
                            for mm in range(m, 2):
                                if (mm == 0 and c > best[w, 0, j]) or (
                                    mm == 1 and c < best[w, 1, j]
                                ):
                                    best[w, mm, j] = c
                                    best_node[w, mm, j] = g
                                    best_t[w, mm, j] = node_h[g]
                                    for r in range(S):
                                        # state at the previous node (xn after the swap)
                                        st_prev[w, mm, r, j] = xn[r, j] if g > 0 else x[r, j]
                                        st_post[w, mm, r, j] = x[r, j]
                                    rt_prev[w, mm, j] = rate_pre[j] if has_ev else rate[j]
                                    rt_post[w, mm, j] = rate[j]
                if g == b_ and win_track[w] & TRACK_AUC:
                    for j in range(nbk):
                        met[b0 + j, w, 4] = auc_w[w, j]
            if g == G - 1:
                break
            # step g -> g + 1: exact transition, patients innermost (vectorized)
            k = step_k[g]
            h = node_h[g + 1] - node_h[g]
            _matvec(phi[k], x, xn, rate, aug, depot, auc_i, dauc)
            if irm:
                # the concentration at the Lobatto points: one row of each inner transition
                for q in range(2):
                    kq = inner_k[g, q]
                    xq = xa if q == 0 else xb
                    for j in range(nbk):
                        xq[j] = phi[kq, central, 0, j] * x[0, j]
                    for c in range(1, S):
                        for j in range(nbk):
                            xq[j] += phi[kq, central, c, j] * x[c, j]
                    if aug:
                        for j in range(nbk):
                            xq[j] += phi[kq, central, S, j] * rate[j]
            if lagged:
                for j in range(nbk):
                    i = b0 + j
                    arrived[j] = False
                    lag_k0[j] = lag_ptr[j]
                    while lag_ptr[j] < dep_time.shape[0]:
                        a = dep_time[lag_ptr[j]] + tlag[i]
                        if a >= node_h[g + 1]:
                            break
                        amt = amount[i, dep_ev[lag_ptr[j]]] * f_bio[i]
                        lag_ptr[j] += 1
                        if a < node_h[g] or amt == 0.0:
                            continue
                        arrived[j] = True
                        Mlag[:, :] = 0.0
                        for r in range(S):
                            for c in range(S):
                                Mlag[r, c] = A[i, r, c]
                        if aug:
                            Mlag[central, S] = 1.0
                        # state just after the arrival (exact), for metrics inside the step
                        expm_one(Mlag * (a - node_h[g]), Elag)
                        for r in range(S):
                            acc = 0.0
                            for c in range(S):
                                acc += Elag[r, c] * x[c, j]
                            if aug:
                                acc += Elag[r, S] * rate[j]
                            arr_x[r, j] = acc
                        arr_t[j] = a
                        c_arr = arr_x[central, j] / v1b[j]
                        arr_first[j] = arr_x[central, j] == 0.0 and arr_x[depot, j] == 0.0
                        arr_x[depot, j] += amt
                        for w in range(W):
                            if a < node_h[win_a[w]] or a > node_h[win_b[w]]:
                                continue
                            if win_obs[w] >= 0 or not win_track[w] & TRACK_C:
                                continue  # Ce is smooth at an arrival: nodes + refinement
                            if c_arr > best[w, 0, j]:
                                best[w, 0, j] = c_arr
                                best_t[w, 0, j] = a
                                best_node[w, 0, j] = -1
                            if c_arr < best[w, 1, j]:
                                best[w, 1, j] = c_arr
                                best_t[w, 1, j] = a
                                best_node[w, 1, j] = -1
                        expm_one(Mlag * (node_h[g + 1] - a), Elag)
                        for r in range(S):
                            xn[r, j] += Elag[r, depot] * amt
                        dauc[j] += Elag[auc_i, depot] * amt
            # PD with exact PK inside the step; the -kout R part is integrated exactly, so the
            # step is not limited by the turnover rate
            if irm and lob:
                # drug-effect fractions at the inner Lobatto points (fmid: the first, fb_: the
                # second) and at the end of the step; etd holds the folded Lobatto weights
                for j in range(nbk):
                    hl = 1.0 if hill_one else hillb[j]  # loop-invariant test: unswitched
                    fmid[j] = hill_fraction(xa[j], c50a[j], hl)
                    fb_[j] = hill_fraction(xb[j], c50a[j], hl)
                    fend[j] = hill_fraction(xn[central, j], c50a[j], hl)
                e0v = etd[0, k]
                w0v = etd[1, k]
                wav = etd[2, k]
                wbv = etd[3, k]
                w1v = etd[4, k]
                ksv = etd[5, k]
                for j in range(nbk):
                    f1 = fend[j]
                    R[j] = e0v[j] * R[j] + (
                        ksv[j]
                        + (w0v[j] * fnode[j] + wav[j] * fmid[j] + wbv[j] * fb_[j] + w1v[j] * f1)
                    )
                    fnode[j] = f1
            elif irm:
                # IRM II, IV: R' = kin - k(t) R, k = kout (1 + al Emax f(C)); exponential
                # Lobatto rule of the whole rate, as the fused step (``fused._rate_tails``)
                for j in range(nbk):
                    hl = 1.0 if hill_one else hillb[j]  # loop-invariant test: unswitched
                    fmid[j] = hill_fraction(xa[j], c50a[j], hl)
                    fb_[j] = hill_fraction(xb[j], c50a[j], hl)
                    fend[j] = hill_fraction(xn[central, j], c50a[j], hl)
                rate_lobatto_step(
                    etd[0, k, 0], al, emb, kinb, koutb, fnode, fmid, fb_, fend, R, rl_buf
                )
                for j in range(nbk):
                    fnode[j] = fend[j]
            if irm and lagged:
                # dC/dt jumps at a lagged arrival: in the step that holds one and in those
                # that start less than ``lag_span`` after it (where the grid would still be
                # graded after a dose), the response on the patient's own grading
                for j in range(nbk):
                    i = b0 + j
                    walked[j] = arrived[j] or node_h[g] < prev_arr[j] + lag_span
                    if not walked[j]:
                        continue
                    for r in range(S):
                        xs[r] = x[r, j]
                    R[j] = irm_walk(
                        A[i],
                        xs,
                        rate[j],
                        central,
                        depot,
                        v1[i],
                        node_h[g],
                        node_h[g + 1],
                        prev_arr[j],
                        prev_first[j],
                        dep_time,
                        dep_ev,
                        amount[i],
                        tlag[i],
                        f_bio[i],
                        lag_k0[j],
                        lag_ptr[j],
                        r_prev[j],
                        pd_kind,
                        P,
                        i,
                        Mp,
                        Ep,
                        lag_h0,
                        lag_hmax,
                        walk_ext,
                    )
                    if arrived[j]:
                        prev_arr[j] = arr_t[j]
                        prev_first[j] = arr_first[j]
                    for w in range(W):  # the walk's extrema replace the step's candidate
                        if g < win_a[w] or g + 1 > win_b[w]:
                            continue
                        if win_track[w] & TRACK_EMIN:
                            e_ext[w, 0, j] = min(e_ext[w, 0, j], walk_ext[0])
                        if win_track[w] & TRACK_EMAX:
                            e_ext[w, 1, j] = max(e_ext[w, 1, j], walk_ext[1])
            # time above threshold within the step
            if thresholds:
                for w in range(W):
                    thr = win_thr[w]
                    if not (thr == thr) or g < win_a[w] or g >= win_b[w]:
                        continue
                    for j in range(nbk):
                        i = b0 + j
                        c0 = cpost[j]
                        c1 = xn[central, j] / v1b[j]
                        if lagged and arrived[j]:
                            # two exact pieces: before the arrival (from the node state) and
                            # after it (from the post-arrival state)
                            for r in range(S):
                                xs[r] = x[r, j]
                            t_above[w, j] += time_above_piece(
                                A[i],
                                xs,
                                rate[j],
                                central,
                                v1[i],
                                arr_t[j] - node_h[g],
                                thr,
                                KT,
                                ifact,
                                coef,
                                tw,
                                Mp,
                                Ep,
                            )
                            for r in range(S):
                                xs[r] = arr_x[r, j]
                            t_above[w, j] += time_above_piece(
                                A[i],
                                xs,
                                rate[j],
                                central,
                                v1[i],
                                node_h[g + 1] - arr_t[j],
                                thr,
                                KT,
                                ifact,
                                coef,
                                tw,
                                Mp,
                                Ep,
                            )
                        elif c0 >= thr and c1 >= thr:
                            t_above[w, j] += h
                        elif (c0 >= thr) != (c1 >= thr):
                            for r in range(S):
                                xs[r] = x[r, j]
                            t_above[w, j] += time_above_piece(
                                A[i],
                                xs,
                                rate[j],
                                central,
                                v1[i],
                                h,
                                thr,
                                KT,
                                ifact,
                                coef,
                                tw,
                                Mp,
                                Ep,
                            )
            if auc_win[g]:
                _add_auc(g, win_a, win_b, win_track, dauc, auc_w)
            x, xn = xn, x  # xn keeps the state at node g for the Hermite candidates
        # refine extrema between nodes with the exact Taylor expansion of C(t); nested
        # windows (the last interval and the whole run) often share an extremum: refined once
        for j in range(nbk):
            i = b0 + j
            irm_done[:, :] = False
            for w in range(W):
                a_ = win_a[w]
                b_ = win_b[w]
                met[i, w, 5] = t_above[w, j]
                for m in range(2 if win_track[w] & TRACK_C else 0):
                    g = best_node[w, m, j]
                    val = best[w, m, j]
                    tval = best_t[w, m, j]
                    sign = 1.0 if m == 0 else -1.0
                    w2 = _same_c_extremum(w, m, j, g, val, best_node, best, win_a, win_b, win_obs)
                    if w2 >= 0:
                        val = met[i, w2, 2 * m]
                        tval = met[i, w2, 2 * m + 1]
                    elif g >= 0:
                        obs = central if win_obs[w] < 0 else win_obs[w]
                        sc = v1[i] if win_obs[w] < 0 else 1.0
                        for side in range(2):
                            if side == 0 and g >= b_:
                                continue
                            if side == 1 and g <= a_:
                                continue
                            if lagged:
                                t_lo = node_h[g] if side == 0 else node_h[g - 1]
                                t_hi = node_h[g + 1] if side == 0 else node_h[g]
                                if _arrival_between(dep_time, tlag[i], t_lo, t_hi):
                                    continue
                            if side == 0:
                                for r in range(S):
                                    xs[r] = st_post[w, m, r, j]
                                rr = rt_post[w, m, j]
                                t0 = node_h[g]
                                hh = node_h[g + 1] - node_h[g]
                            else:
                                # without an event at g, the slope there (from the state at
                                # g) is the step's end slope: an extremum inside (g - 1, g)
                                # needs it to point back (tested after the Taylor expansion
                                # otherwise, at ~10x the cost; a step cut into pieces may
                                # hold one anyway)
                                if (
                                    not lagged
                                    and ev_ptr[g + 1] == ev_ptr[g]
                                    and _pieces(A[i], node_h[g] - node_h[g - 1]) == 1
                                ):
                                    for r in range(S):
                                        xs[r] = st_post[w, m, r, j]
                                    d_end = _dcdt(A[i], xs, rt_post[w, m, j], central, obs, sc)
                                    if not d_end * sign < 0.0:
                                        continue
                                for r in range(S):
                                    xs[r] = st_prev[w, m, r, j]
                                rr = rt_prev[w, m, j]
                                t0 = node_h[g - 1]
                                hh = node_h[g] - node_h[g - 1]
                            # cheap test first: the slope at the step start must point to an
                            # extremum inside the step
                            if not _dcdt(A[i], xs, rr, central, obs, sc) * sign > 0.0:
                                continue
                            v, s_ = refine_extremum(
                                A[i],
                                xs,
                                rr,
                                central,
                                obs,
                                sc,
                                hh,
                                sign,
                                KT,
                                ifact,
                                coef,
                                tw,
                                Mp,
                                Ep,
                            )
                            if v == v and (v - val) * sign > 0.0:
                                val = v
                                tval = t0 + s_
                    met[i, w, 2 * m] = val
                    met[i, w, 2 * m + 1] = tval
                if irm:
                    for m in range(2):
                        if not win_track[w] & (TRACK_EMIN << m):
                            continue
                        rec = cand[w, m, j]
                        ee = rec[CAND_V]
                        gg = int(rec[CAND_G])
                        if (
                            gg >= 0
                            and _may_beat_node(ee, e_ext[w, m, j], m)
                            and not (
                                lagged
                                and _arrival_between(dep_time, tlag[i], node_h[gg], node_h[gg + 1])
                            )
                        ):
                            w2 = _same_irm_candidate(w, m, j, irm_done, cand)
                            if w2 >= 0:  # the same sign change: the same refinement
                                ref = irm_ref[w2, m]
                            else:
                                hh = node_h[gg + 1] - node_h[gg]
                                kq = _size_index(sizes, hh / 8.0)
                                if kq >= 0:  # the block already has this flow: no new exponential
                                    Ep[:, :] = 0.0
                                    for r in range(Sa):
                                        for c in range(Sa):
                                            Ep[r, c] = phi[kq, r, c, j]
                                ref = refine_irm_extremum(
                                    A[i],
                                    rec[CAND_X : CAND_X + S],
                                    rec[CAND_RATE],
                                    central,
                                    v1[i],
                                    hh,
                                    rec[CAND_R],
                                    pd_kind,
                                    P,
                                    i,
                                    m,
                                    Mp,
                                    Ep,
                                    kq >= 0,
                                    tw,
                                )
                            irm_done[w, m] = True
                            irm_ref[w, m] = ref
                            if ref == ref:
                                ee = ref
                        if m == 0:
                            met[i, w, 6] = min(e_ext[w, 0, j], ee)
                        else:
                            met[i, w, 7] = max(e_ext[w, 1, j], ee)
    if stream:
        store_fence()  # the non-temporal stores are visible before the caller reads


_VARIANTS: dict[bool, object] = {}


def kernel_variant(plain: bool):
    """:func:`linear_kernel` compiled in full or in its plain variant.

    The plain variant has no indirect response, no per-patient absorption lag and no
    concentration threshold (the kernel of most trials, the quickstart's among them). numba
    freezes a function's globals at compile time and removes the branches on constant ones
    before typing, so the plain variant never types or compiles that code: its cold compile
    takes a fraction of the full kernel's. Each variant is its own function
    (``linear_kernel_plain``, ``linear_kernel_full``) with its own on-disk cache entry; both
    run the same operations on what they share, so results are bit-identical. The caller
    asks for ``plain`` only when ``pd_kind < 4``, ``lag_mode == 0`` and no window has a
    threshold.
    """
    plain = bool(plain)
    fn = _VARIANTS.get(plain)
    if fn is None:
        name = "linear_kernel_plain" if plain else "linear_kernel_full"
        space = dict(linear_kernel.__globals__, PLAIN=plain)
        py = types.FunctionType(linear_kernel.__code__, space, name)
        py.__qualname__ = name
        py.__module__ = linear_kernel.__module__
        py.__doc__ = linear_kernel.__doc__
        fn = nb.njit(cache=True, error_model="numpy", nogil=True)(py)
        _VARIANTS[plain] = fn
    return fn
