"""The fused per-step kernels and the batched matrix exponential.

The fused functions are generated per state layout (``python -m insilico.pk.fused``); these
tests check that the generated module is current, that every layout computes the exact
transition ``phk @ x (+ rate column)`` and the ETDRK4 step of an indirect response, and that
the batched exponential is the scalar one, bit for bit (patients are only reordered in
memory, never in arithmetic)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import expm

from insilico.pk import fused
from insilico.pk._fused_generated import fused_step
from insilico.pk.expm import expm_batched, expm_small, square_batched, square_small


def test_generated_module_is_current():
    assert fused.GENERATED.read_text() == fused.generate_source(), (
        "run `python -m insilico.pk.fused` to regenerate insilico/pk/_fused_generated.py"
    )


def _structured(S, depot, aug, nbk, rng):
    """Random transitions with the structure of a compartment model's exponential: the depot
    row is diagonal, the AUC column is the unit vector (AUC is last)."""
    Sa = S + 1 if aug else S
    phk = rng.uniform(0.0, 1.0, (Sa, Sa, nbk))
    if depot >= 0:
        phk[depot, :, :] = 0.0
        phk[depot, depot, :] = rng.uniform(0.1, 1.0, nbk)
    phk[:, S - 1, :] = 0.0
    phk[S - 1, S - 1, :] = 1.0
    return phk


@pytest.mark.parametrize("layout", fused.layouts())
def test_fused_step_every_layout(layout):
    """PK transition and ETDRK4 step against numpy, 1e-13 relative, on 37 patients (a
    remainder after any SIMD width)."""
    S, depot, aug = layout
    rng = np.random.default_rng(S * 10 + depot + 3 * aug)
    nbk = 37
    central = depot + 1
    phk = _structured(S, depot, aug, nbk, rng)
    phm = _structured(S, depot, aug, nbk, rng)
    x = rng.uniform(0.0, 5.0, (S, nbk))
    rate = rng.uniform(0.0, 2.0, nbk) if aug else np.zeros(nbk)
    v1 = rng.uniform(10.0, 50.0, nbk)
    K = 3
    k = 1
    etd = rng.uniform(0.0, 1.0, (6, K, nbk))
    emb, c50, kin, kout = (rng.uniform(0.2, 1.0, nbk) for _ in range(4))
    fuv = 1.0 / v1
    R0 = rng.uniform(1.0, 10.0, nbk)
    f0 = rng.uniform(0.0, 0.5, nbk)
    f_prev = rng.uniform(-1.0, 1.0, nbk)
    ap, al = -1.0, 0.0  # irm1

    def ref_x():
        xx = np.einsum("rcj,cj->rj", phk[:S, :S], x)
        if aug:
            xx += phk[:S, S] * rate
        return xx

    for irm in (False, True):
        xn = np.empty((S, nbk))
        cpost = np.empty(nbk)
        R = R0.copy()
        fnode = f0.copy()
        rcur = np.empty(nbk)
        fcur = np.empty(nbk)
        n_change = fused_step(
            S, depot, aug, phk, phm, x, xn, rate, v1, cpost, irm, True, R, fnode, rcur,
            fcur, f_prev, etd, k, emb, c50, kin, kout, fuv, np.ones(nbk), ap, al,
        )  # fmt: skip
        np.testing.assert_allclose(xn, ref_x(), rtol=1e-13)
        np.testing.assert_array_equal(cpost, x[central] / v1)
        if not irm:
            assert n_change == 0
            continue
        # ETDRK4 (Cox & Matthews 2002) with N(R, f) = kin (1 - f) for irm1 (al = 0)
        cm = fuv * (
            np.einsum("cj,cj->j", phm[central, :S], x) + (phm[central, S] * rate if aug else 0)
        )
        c1 = fuv * ref_x()[central]
        fm = emb * cm / (c50 + cm)
        f1 = emb * c1 / (c50 + c1)
        e1, e2, q, w1, w2, w3 = etd[:, k]
        nu = kin * (1 - f0)
        na = kin * (1 - fm)
        a_ = e2 * R0 + q * nu
        c_ = e2 * a_ + q * (2 * na - nu)
        ref_R = e1 * R0 + w1 * nu + w2 * 2 * na + w3 * kin * (1 - f1)
        assert np.all(np.isfinite(c_))
        np.testing.assert_allclose(R, ref_R, rtol=1e-13)
        np.testing.assert_allclose(fnode, f1, rtol=1e-13)
        np.testing.assert_array_equal(rcur, R0)
        k1 = kin * (1 - f0) - kout * R0
        np.testing.assert_allclose(fcur, k1, rtol=1e-13)
        assert n_change == int(np.sum(f_prev * fcur < 0))


def test_expm_batched_is_expm_small_bit_for_bit():
    """Batched over patients (including norms that need scaling and squaring) = the scalar
    routine exactly, and both = scipy's expm to 1e-13."""
    rng = np.random.default_rng(5)
    n, nbk = 5, 19
    M = rng.normal(0.0, 1.0, (n, n, nbk))
    M[:, :, :5] *= 40.0  # ||M h|| >> 1/2: several squarings, different per patient
    h = 0.3
    out = np.empty((n, n, nbk))
    expm_batched(M, h, out, np.empty((3, n, n, nbk)))
    sq = np.empty((n, n, nbk))
    square_batched(out, sq)
    for j in range(nbk):
        one = np.empty((n, n))
        expm_small(np.ascontiguousarray(M[:, :, j]) * h, one)
        np.testing.assert_array_equal(out[:, :, j], one)
        two = np.empty((n, n))
        square_small(one, two)
        np.testing.assert_array_equal(sq[:, :, j], two)
        ref = expm(M[:, :, j] * h)
        np.testing.assert_allclose(one, ref, rtol=1e-11, atol=1e-13 * np.abs(ref).max())
