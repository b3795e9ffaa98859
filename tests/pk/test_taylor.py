"""The exact Taylor coefficients of C(t) used to refine extrema and threshold crossings
(``kernel.taylor_coefficients``): the unrolled versions for 2-4 states must perform the
operations of the loop over a run-time state count, in the same order (the same bits)."""

from __future__ import annotations

import numpy as np
import pytest

from insilico.pk.kernel import taylor_coefficients


def _reference(A, x, rate, central, obs, v1, K):
    """The loop of ``taylor_coefficients`` in plain Python floats (IEEE double, the same
    operations in the same order): ``coef[k] = (A^k x + A^(k-1) b rate)[obs] / v1``."""
    S = x.shape[0]
    n = S
    if obs != S - 1 and not any(A[r, S - 1] != 0.0 for r in range(S)):
        n = S - 1  # a last state that feeds nothing (the AUC) is left out
    iv = 1.0 / v1
    y = [float(v) for v in x[:n]]
    coef = [y[obs] * iv]
    for k in range(1, K + 1):
        z = []
        for r in range(n):
            acc = 0.0
            for c in range(n):
                acc += float(A[r, c]) * y[c]
            z.append(acc)
        if k == 1:
            z[central] += rate
        coef.append(z[obs] * iv)
        y = z
    return np.array(coef)


@pytest.mark.parametrize("S", [2, 3, 4, 5, 6])
@pytest.mark.parametrize("auc_last", [True, False])
def test_taylor_coefficients_bit_for_bit(S, auc_last):
    """Random compartment-like matrices with and without a last state that feeds nothing
    (so the unrolled 2-, 3- and 4-state versions and the loop all run), infusion input into
    the central state, the observed state the central or another one: every coefficient
    equal to the reference's, bit for bit, and the first two equal to ``x_obs / v1`` and
    ``(A x + b rate)_obs / v1`` to 1e-14."""
    rng = np.random.default_rng(10 * S + auc_last)
    for case in range(20):
        A = rng.normal(0.0, 1.0, (S, S))
        if auc_last:
            A[:, S - 1] = 0.0
        x = rng.uniform(0.0, 10.0, S)
        central = int(rng.integers(0, S - 1))
        n = S - 1 if auc_last else S
        obs = central if case % 2 else int(rng.integers(0, n))
        rate = float(rng.uniform(0.0, 3.0))
        v1 = float(rng.uniform(5.0, 80.0))
        K = 25
        coef = np.empty(K + 1)
        taylor_coefficients(A, x, rate, central, obs, v1, K, coef, np.empty((2, S)))
        np.testing.assert_array_equal(coef, _reference(A, x, rate, central, obs, v1, K))
        first = A[:n, :n] @ x[:n]
        first[central] += rate
        np.testing.assert_allclose(coef[:2], [x[obs] / v1, first[obs] / v1], rtol=1e-14)
