"""Matrix exponential of small matrices, compiled with numba.

Scaling and squaring with a degree-16 Taylor polynomial: ``M`` is scaled by ``2^-s`` so that
``||M / 2^s||_1 <= 1/2``; the truncation error is then below ``0.5^17 / 17! ~ 2e-20`` relative,
far under double precision, and ``s`` squarings follow (Moler & Van Loan, "Nineteen dubious
ways...", SIAM Rev 45:3, 2003, doi:10.1137/S00361445024180). The polynomial is evaluated by
the Paterson-Stockmeyer scheme with ``X^2, X^3, X^4`` and Horner's rule in ``X^4``
(Paterson & Stockmeyer, SIAM J Comput 2:60, 1973; Higham, "Functions of Matrices" 4.2):

    p(X) = B0 + X^4 (B1 + X^4 (B2 + X^4 (B3 + X^4 / 16!))),  Bq = sum_r X^r / (4q + r)!

which is 6 matrix products instead of the 16 of plain Horner. The compartment matrices here
are small (at most 8x8) and well scaled, so this is accurate to a few ulps; it is checked
against ``scipy.linalg.expm`` in the tests.

:func:`expm_small` (one matrix) and :func:`expm_batched` (a block of matrices, patients
innermost) perform the same floating-point operations in the same order, so they agree bit
for bit.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

TAYLOR_DEGREE = 16
#: 1/k! for k = 0..16, each correctly rounded
INV_FACTORIAL = np.array([1.0 / math.factorial(k) for k in range(TAYLOR_DEGREE + 1)])


@nb.njit(cache=True)
def norm1(M: np.ndarray) -> float:
    """The 1-norm (largest absolute column sum) of a small square matrix."""
    n = M.shape[0]
    norm = 0.0
    for j in range(n):
        col = 0.0
        for i in range(n):
            col += abs(M[i, j])
        norm = max(norm, col)
    return norm


@nb.njit(cache=True)
def _squarings(norm: float) -> int:
    """Number of halvings ``s`` that bring a 1-norm to at most 1/2."""
    if norm > 0.5:
        return int(np.ceil(np.log2(norm / 0.5)))
    return 0


@nb.njit(cache=True)
def _matmul_small(X, P, out):
    """``out = X @ P`` (the operation order of :func:`_matmul_batched`)."""
    n = X.shape[0]
    for i in range(n):
        for j in range(n):
            acc = 0.0
            for m in range(n):
                acc += X[i, m] * P[m, j]
            out[i, j] = acc


@nb.njit(cache=True)
def _copy_small(src, dst):
    """``dst[:, :] = src`` as loops (a slice assignment compiles numba's shape checks and
    their error messages, seconds of a cold start)."""
    for i in range(src.shape[0]):
        for j in range(src.shape[1]):
            dst[i, j] = src[i, j]


@nb.njit(cache=True, fastmath=False)
def expm_small(M: np.ndarray, out: np.ndarray) -> None:
    """``out = exp(M)`` for a small square matrix ``M`` (float64)."""
    n = M.shape[0]
    s = _squarings(norm1(M))
    X = M * 0.5**s
    X2 = np.empty((n, n))
    X3 = np.empty((n, n))
    X4 = np.empty((n, n))
    T = np.empty((n, n))
    _matmul_small(X, X, X2)
    _matmul_small(X2, X, X3)
    _matmul_small(X2, X2, X4)
    c = INV_FACTORIAL
    for i in range(n):
        for j in range(n):
            d = c[12] if i == j else 0.0
            t = d + c[13] * X[i, j] + c[14] * X2[i, j] + c[15] * X3[i, j]
            T[i, j] = t + c[16] * X4[i, j]
    P = out
    for q in range(2, -1, -1):
        _matmul_small(X4, T, P)
        for i in range(n):
            for j in range(n):
                d = c[4 * q] if i == j else 0.0
                P[i, j] = P[i, j] + (
                    d + c[4 * q + 1] * X[i, j] + c[4 * q + 2] * X2[i, j] + c[4 * q + 3] * X3[i, j]
                )
        if q > 0:
            _copy_small(P, T)
    for _ in range(s):
        _matmul_small(P, P, T)
        _copy_small(T, P)


@nb.njit(cache=True)
def square_small(P: np.ndarray, out: np.ndarray) -> None:
    """``out = P @ P`` for a small square matrix."""
    _matmul_small(P, P, out)


@nb.njit(cache=True, error_model="numpy", boundscheck=False)
def _matmul_batched(X, P, out):
    """``out[:, :, j] = X[:, :, j] @ P[:, :, j]`` for every patient ``j`` (patients innermost;
    the same operations, in the same order, as :func:`_matmul_small`)."""
    n = X.shape[0]
    nbk = X.shape[2]
    for i in range(n):
        for c in range(n):
            o = out[i, c]
            x = X[i, 0]
            p = P[0, c]
            for j in range(nbk):
                o[j] = 0.0 + x[j] * p[j]
            for m in range(1, n):
                x = X[i, m]
                p = P[m, c]
                for j in range(nbk):
                    o[j] += x[j] * p[j]


@nb.njit(cache=True, error_model="numpy", boundscheck=False)
def _add_group(X, X2, X3, q, out, first):
    """``out (+)= B_q = sum_r X^r / (4q + r)!`` over r = 0..3 (``first``: ``out = B_q +
    X4 / 16!`` with ``out`` holding ``X^4`` on entry), batched over patients."""
    n = X.shape[0]
    nbk = X.shape[2]
    c = INV_FACTORIAL
    c0 = c[4 * q]
    c1 = c[4 * q + 1]
    c2 = c[4 * q + 2]
    c3 = c[4 * q + 3]
    c16 = c[16]
    for i in range(n):
        for k in range(n):
            o = out[i, k]
            x = X[i, k]
            x2 = X2[i, k]
            x3 = X3[i, k]
            d = c0 if i == k else 0.0
            if first:
                for j in range(nbk):
                    t = d + c1 * x[j] + c2 * x2[j] + c3 * x3[j]
                    o[j] = t + c16 * o[j]
            else:
                for j in range(nbk):
                    o[j] = o[j] + (d + c1 * x[j] + c2 * x2[j] + c3 * x3[j])


@nb.njit(cache=True, error_model="numpy", boundscheck=False)
def expm_batched(M, h, out, work):
    """``out[:, :, j] = exp(M[:, :, j] h)`` for a block of small matrices, patients innermost.

    Per patient this is exactly :func:`expm_small` applied to ``M[:, :, j] * h`` (same scaling
    ``s``, polynomial and operation order, hence the same bits); only the loop order differs,
    so that the compiler vectorizes over patients. ``work``: shape (5, n, n, nbk).
    """
    n = M.shape[0]
    nbk = M.shape[2]
    X = work[0]
    X2 = work[1]
    X3 = work[2]
    X4 = work[3]
    T = work[4]
    s_max = 0
    sj = np.zeros(nbk, dtype=np.int64)
    for j in range(nbk):
        norm = 0.0
        for c in range(n):
            col = 0.0
            for i in range(n):
                col += abs(M[i, c, j] * h)
            norm = max(norm, col)
        s = _squarings(norm)
        sj[j] = s
        s_max = max(s_max, s)
        scale = 0.5**s
        for i in range(n):
            for c in range(n):
                X[i, c, j] = (M[i, c, j] * h) * scale
    _matmul_batched(X, X, X2)
    _matmul_batched(X2, X, X3)
    _matmul_batched(X2, X2, X4)
    for i in range(n):
        for c in range(n):
            for j in range(X4.shape[2]):
                T[i, c, j] = X4[i, c, j]
    _add_group(X, X2, X3, 3, T, True)
    # three Horner steps alternate between ``out`` and ``T``, the last writes ``out``
    P = out
    for q in range(2, -1, -1):
        _matmul_batched(X4, T, P)
        _add_group(X, X2, X3, q, P, False)
        T, P = P, T
    P = out
    Q = work[1]
    for it in range(s_max):
        _matmul_batched(P, P, Q)
        for i in range(n):
            for c in range(n):
                q_ = Q[i, c]
                p = P[i, c]
                for j in range(nbk):
                    if sj[j] > it:
                        p[j] = q_[j]


@nb.njit(cache=True, error_model="numpy", boundscheck=False)
def square_batched(P, out):
    """``out[:, :, j] = P[:, :, j] @ P[:, :, j]`` (same operations as :func:`square_small`)."""
    _matmul_batched(P, P, out)
