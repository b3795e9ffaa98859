"""The compiled small-matrix exponential against scipy.linalg.expm (Al-Mohy & Higham 2009)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import expm

from insilico.pk.expm import expm_small, square_small


def compartment_matrix(rng, size):
    """A random mammillary rate matrix (columns sum to -elimination <= 0), size x size."""
    a = np.zeros((size, size))
    for j in range(1, size):
        k_out, k_back = rng.lognormal(0.0, 1.5, 2)
        a[0, 0] -= k_out
        a[j, 0] += k_out
        a[0, j] += k_back
        a[j, j] -= k_back
    a[0, 0] -= rng.lognormal(-1.0, 1.0)
    return a


@pytest.mark.parametrize("size", [1, 2, 3, 4, 6, 8])
@pytest.mark.parametrize("h", [1.0 / 64.0, 0.5, 3.0])
def test_expm_small_matches_scipy(size, h):
    rng = np.random.default_rng(size * 100 + int(h * 64))
    out = np.empty((size, size))
    for _ in range(20):
        m = compartment_matrix(rng, size) * h
        expm_small(m, out)
        ref = expm(m)
        # entries of a transition matrix lie in [0, 1]: absolute error relative to 1
        np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-14)


def test_expm_small_general_matrix_and_squaring():
    rng = np.random.default_rng(3)
    m = rng.standard_normal((5, 5))
    out = np.empty((5, 5))
    expm_small(m, out)
    np.testing.assert_allclose(out, expm(m), rtol=1e-12, atol=1e-13 * np.abs(expm(m)).max())
    sq = np.empty((5, 5))
    square_small(out, sq)
    np.testing.assert_allclose(sq, expm(2 * m), rtol=1e-11, atol=1e-12 * np.abs(expm(2 * m)).max())


def test_expm_small_zero_and_identity():
    out = np.empty((3, 3))
    expm_small(np.zeros((3, 3)), out)
    np.testing.assert_array_equal(out, np.eye(3))
