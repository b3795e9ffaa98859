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
        for i in range(n):
            for j in range(n):
                acc = 0.0
                for m in range(n):
                    acc += X[i, m] * P[m, j]
                T[i, j] = acc / k
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
