"""Matrix exponential of small matrices, compiled with numba.

Scaling and squaring with a degree-18 Taylor polynomial: ``M`` is scaled by ``2^-s`` so that
``||M / 2^s||_1 <= 1/2``; the truncation error is then below ``0.5^19 / 19! ~ 2e-23`` relative,
far under double precision, and ``s`` squarings follow (Moler & Van Loan, "Nineteen dubious
ways...", SIAM Rev 45:3, 2003, doi:10.1137/S00361445024180). The compartment matrices here are
small (at most 8x8) and well scaled, so this is accurate to a few ulps; it is checked against
``scipy.linalg.expm`` in the tests.
"""

from __future__ import annotations

import numba as nb
import numpy as np

TAYLOR_DEGREE = 18


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


@nb.njit(cache=True, fastmath=False)
def expm_small(M: np.ndarray, out: np.ndarray) -> None:
    """``out = exp(M)`` for a small square matrix ``M`` (float64)."""
    n = M.shape[0]
    norm = norm1(M)
    s = 0
    if norm > 0.5:
        s = int(np.ceil(np.log2(norm / 0.5)))
    scale = 0.5**s
    X = M * scale
    # Horner: I + X(I + X/2 (I + X/3 (...)))
    P = np.eye(n)
    T = np.empty((n, n))
    for k in range(TAYLOR_DEGREE, 0, -1):
        inv_k = 1.0 / k
        for i in range(n):
            for j in range(n):
                acc = 0.0
                for m in range(n):
                    acc += X[i, m] * P[m, j]
                T[i, j] = acc * inv_k
        for i in range(n):
            for j in range(n):
                P[i, j] = T[i, j] + (1.0 if i == j else 0.0)
    for _ in range(s):
        for i in range(n):
            for j in range(n):
                acc = 0.0
                for m in range(n):
                    acc += P[i, m] * P[m, j]
                T[i, j] = acc
        P[:, :] = T
    out[:, :] = P


@nb.njit(cache=True)
def square_small(P: np.ndarray, out: np.ndarray) -> None:
    """``out = P @ P`` for a small square matrix."""
    n = P.shape[0]
    for i in range(n):
        for j in range(n):
            acc = 0.0
            for m in range(n):
                acc += P[i, m] * P[m, j]
            out[i, j] = acc


@nb.njit(cache=True, error_model="numpy", boundscheck=False)
def _matmul_batched(X, P, out, factor):
    """``out[:, :, j] = X[:, :, j] @ P[:, :, j] * factor`` for every patient ``j`` (patients
    innermost; the same operations, in the same order, as the loops of :func:`expm_small`)."""
    n = X.shape[0]
    nbk = X.shape[2]
    for i in range(n):
        for c in range(n):
            o = out[i, c]
            x = X[i, 0]
            p = P[0, c]
            for j in range(nbk):
                o[j] = 0.0 + x[j] * p[j]
            for m in range(1, n - 1):
                x = X[i, m]
                p = P[m, c]
                for j in range(nbk):
                    o[j] += x[j] * p[j]
            if n > 1:
                # the last term and the factor in one pass (same operations and order)
                x = X[i, n - 1]
                p = P[n - 1, c]
                if factor != 1.0:
                    for j in range(nbk):
                        o[j] = (o[j] + x[j] * p[j]) * factor
                else:
                    for j in range(nbk):
                        o[j] += x[j] * p[j]
            elif factor != 1.0:
                for j in range(nbk):
                    o[j] = o[j] * factor


@nb.njit(cache=True, error_model="numpy", boundscheck=False)
def expm_batched(M, h, out, work):
    """``out[:, :, j] = exp(M[:, :, j] h)`` for a block of small matrices, patients innermost.

    Per patient this is exactly :func:`expm_small` applied to ``M[:, :, j] * h`` (same scaling
    ``s``, Taylor degree and operation order, hence the same bits); only the loop order
    differs, so that the compiler vectorizes over patients. ``work``: shape (3, n, n, nbk).
    """
    n = M.shape[0]
    nbk = M.shape[2]
    X = work[0]
    T = work[1]
    Q = work[2]
    s_max = 0
    sj = np.zeros(nbk, dtype=np.int64)
    for j in range(nbk):
        norm = 0.0
        for c in range(n):
            col = 0.0
            for i in range(n):
                col += abs(M[i, c, j] * h)
            norm = max(norm, col)
        s = 0
        if norm > 0.5:
            s = int(np.ceil(np.log2(norm / 0.5)))
        sj[j] = s
        s_max = max(s_max, s)
        scale = 0.5**s
        for i in range(n):
            for c in range(n):
                X[i, c, j] = (M[i, c, j] * h) * scale
    P = out
    for i in range(n):
        for c in range(n):
            v = 1.0 if i == c else 0.0
            for j in range(nbk):
                P[i, c, j] = v
    for k in range(TAYLOR_DEGREE, 0, -1):
        _matmul_batched(X, P, T, 1.0 / k)
        for i in range(n):
            for c in range(n):
                t = T[i, c]
                p = P[i, c]
                d = 1.0 if i == c else 0.0
                for j in range(nbk):
                    p[j] = t[j] + d
    for it in range(s_max):
        _matmul_batched(P, P, Q, 1.0)
        for i in range(n):
            for c in range(n):
                q = Q[i, c]
                p = P[i, c]
                for j in range(nbk):
                    if sj[j] > it:
                        p[j] = q[j]


@nb.njit(cache=True, error_model="numpy", boundscheck=False)
def square_batched(P, out):
    """``out[:, :, j] = P[:, :, j] @ P[:, :, j]`` (same operations as :func:`square_small`)."""
    _matmul_batched(P, P, out, 1.0)
