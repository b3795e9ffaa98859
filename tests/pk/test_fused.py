"""The fused per-step kernels and the batched matrix exponential.

The fused functions are generated per state layout (``python -m insilico.pk.fused``); these
tests check that the generated module is current, that every layout computes the exact
transition ``phk @ x (+ rate column)`` and both steps of an indirect response (the
exponential Lobatto quadrature of a forcing independent of R, and of the loss rate of II and
IV), and that
the batched exponential is the scalar one, bit for bit (patients are only reordered in
memory, never in arithmetic)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.linalg import expm

from insilico.pk import fused
from insilico.pk.expm import expm_batched, expm_small, square_batched, square_small
from insilico.pk.kernel import LOBATTO_A
from insilico.pk.steps import step_function


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


def _rate_lobatto_reference(h, rates, R0, kin):
    """R after a step ``h`` of ``R' = kin - k R`` by the rule of ``kernel.rate_lobatto_step``,
    from the rate ``k`` at the four Lobatto nodes (rows of ``rates``), written from its
    definition: K = h times the integral of k's cubic through the nodes, z = K(1),
    R = e^{-z} R0 + kin h sum_i c_i e^{K(u_i) - z u_i}, c_i = int_0^1 e^{-z (1 - u)} l_i(u) du
    (24-point Gauss-Legendre here, not the kernel's phi functions)."""
    nodes = np.array([0.0, LOBATTO_A, 1.0 - LOBATTO_A, 1.0])
    basis = np.linalg.inv(np.vander(nodes, 4, increasing=True))  # l_i = sum_m basis[m, i] u^m
    powers = np.arange(1, 5)

    def K(upto):
        return h * np.einsum("m,mi,ij->j", upto**powers / powers, basis, rates)

    z = K(1.0)
    g = np.stack([np.exp(K(u) - z * u) for u in nodes])  # 1 at both ends
    gx, gw = np.polynomial.legendre.leggauss(24)
    u = 0.5 * (gx + 1.0)
    lu = np.vander(u, 4, increasing=True) @ basis  # (points, i)
    c = np.einsum("p,pj,pi->ij", 0.5 * gw, np.exp(-np.outer(1.0 - u, z)), lu)
    return np.exp(-z) * R0 + kin * h * np.sum(c * g, axis=0)


@pytest.mark.parametrize("layout", fused.layouts())
def test_fused_step_every_layout(layout):
    """PK transition and both Lobatto steps against numpy, 1e-13 relative, on 37 patients
    (a remainder after any SIMD width); with ``auc`` the AUC increment lands in ``dauc`` and the
    new AUC state is the old plus it; the steps without leave the AUC row of the new state and
    ``dauc`` exactly as they were and compute everything else the same. The sign changes of
    dR/dt towards the extrema asked for (``sel``) are counted and marked in ``change``."""
    S, depot, aug, auc = layout
    rng = np.random.default_rng(S * 10 + depot + 3 * aug)
    nbk = 37
    central = depot + 1
    phk = _structured(S, depot, aug, nbk, rng)
    phm = _structured(S, depot, aug, nbk, rng)
    pha = _structured(S, depot, aug, nbk, rng)
    phb = _structured(S, depot, aug, nbk, rng)
    x = rng.uniform(0.0, 5.0, (S, nbk))
    rate = rng.uniform(0.0, 2.0, nbk) if aug else np.zeros(nbk)
    v1 = rng.uniform(10.0, 50.0, nbk)
    K = 3
    k = 1
    etd = rng.uniform(0.0, 1.0, (6, K, nbk))
    emb, c50, kin, kout = (rng.uniform(0.2, 1.0, nbk) for _ in range(4))
    fuv = 1.0 / v1
    c50a = c50 / fuv  # the steps take C50 as a central amount
    R0 = rng.uniform(1.0, 10.0, nbk)
    f0 = rng.uniform(0.0, 0.5, nbk)  # drug-effect fraction at the node (without Emax)
    f_prev = rng.uniform(-1.0, 1.0, nbk)
    kae = kin * -1.0 * emb  # kin ap Emax of irm1
    # Lobatto: the raw weights (rows 0-4) with kin and kin ap Emax folded in, as the kernel does
    lob_etd = etd.copy()
    lob_etd[5] = kin * etd[1:5].sum(axis=0)
    lob_etd[1:5] = kae * etd[1:5]
    # IRM II/IV (the rate Lobatto rule): the step size in etd[0, k]
    h = 0.7
    rate_etd = etd.copy()
    rate_etd[0, k] = h

    def ref_x():
        xx = np.einsum("rcj,cj->rj", phk[:S, :S], x)
        if aug:
            xx += phk[:S, S] * rate
        return xx

    def central_row(ph):
        row = np.einsum("cj,cj->j", ph[central, :S], x)
        return fuv * (row + (ph[central, S] * rate if aug else 0))

    def frac(c, hill):
        r = (c / c50) ** hill
        return r / (1.0 + r)

    cases = [(False, False, True)]
    cases += [(True, lob, hill_one) for lob in (False, True) for hill_one in (True, False)]
    for case, (irm, lob, hill_one) in enumerate(cases):
        ap, al = (-1.0, 0.0) if (lob or not irm) else (0.0, 1.0)  # irm1, or irm4
        step_etd = lob_etd if lob else rate_etd
        hill = np.ones(nbk) if hill_one else rng.uniform(0.5, 2.0, nbk)
        xn = np.full((S, nbk), -3.0)  # a value no step computes
        dauc = np.full(nbk, -3.0)
        R = R0.copy()
        fnode = f0.copy()
        rnew = np.empty(nbk)
        fcur = np.empty(nbk)
        sel = (-1.0, 0.0, 1.0)[case % 3]  # cases 1-4 (irm) count towards both, max, min, both
        change = np.full(2 * ((nbk + 1) // 2), 7, dtype=np.int32)  # 7: a value no step writes
        n_change = step_function(S, depot, aug, auc)(
            phk, phm, pha, phb, x, xn, rate, irm, lob, hill_one, R,
            fnode, rnew, fcur, f_prev, sel, step_etd, k, emb, c50a, kin, kout,
            kae, hill, ap, al,
            np.empty((3, nbk)), dauc, change,
        )  # fmt: skip
        if auc:
            np.testing.assert_allclose(xn, ref_x(), rtol=1e-13)
            np.testing.assert_allclose(dauc, ref_x()[S - 1] - x[S - 1], rtol=1e-12)
            np.testing.assert_array_equal(xn[S - 1], x[S - 1] + dauc)
        else:
            np.testing.assert_allclose(xn[: S - 1], ref_x()[: S - 1], rtol=1e-13)
            np.testing.assert_array_equal(xn[S - 1], -3.0)
            np.testing.assert_array_equal(dauc, -3.0)
            # everything else bit for bit as the step that keeps the AUC
            xk, fk, rk, ck = np.empty((S, nbk)), f0.copy(), np.empty(nbk), np.empty(nbk)
            chk = np.full_like(change, 7)
            step_function(S, depot, aug, True)(
                phk, phm, pha, phb, x, xk, rate, irm, lob, hill_one, R0.copy(),
                fk, rk, ck, f_prev, sel, step_etd, k, emb, c50a, kin, kout,
                kae, hill, ap, al,
                np.empty((3, nbk)), np.empty(nbk), chk,
            )  # fmt: skip
            np.testing.assert_array_equal(xn[: S - 1], xk[: S - 1])
            if irm:
                for got, want in ((fnode, fk), (rnew, rk), (fcur, ck), (change, chk)):
                    np.testing.assert_array_equal(got, want)
        if not irm:
            assert n_change == 0
            np.testing.assert_array_equal(change, 7)  # not written
            continue
        c1 = fuv * ref_x()[central]
        e0 = emb * f0  # drug effects (Emax f)
        f1 = emb * frac(c1, hill)
        if lob:
            # exponential Lobatto: R1 = e^z R0 + sum_i w_i N(t + c_i h), N = kin (1 - f)
            fa, fb = (emb * frac(c, hill) for c in (central_row(pha), central_row(phb)))
            e1, w0, wa, wb, w1 = etd[:5, k]
            ref_R = e1 * R0 + kin * (w0 * (1 - e0) + wa * (1 - fa) + wb * (1 - fb) + w1 * (1 - f1))
        else:
            # irm4, R' = kin - k R with k = kout (1 + Emax f): the rate's cubic through the
            # Lobatto nodes integrated exactly (K), e^{delta} at the nodes weighted by
            # int_0^1 e^{-z (1 - u)} l_i(u) du (here by 24-point Gauss-Legendre)
            fa, fb = (emb * frac(c, hill) for c in (central_row(pha), central_row(phb)))
            rates = np.stack([kout * (1 + e) for e in (e0, fa, fb, f1)])
            ref_R = _rate_lobatto_reference(h, rates, R0, kin)
        np.testing.assert_allclose(rnew, ref_R, rtol=1e-13)
        np.testing.assert_allclose(fnode, frac(c1, hill), rtol=1e-13)
        np.testing.assert_array_equal(R, R0)  # the response at the node is left as it was
        k1 = kin * (1 - e0) - kout * R0 if lob else kin - kout * (1 + e0) * R0
        np.testing.assert_allclose(fcur, k1, rtol=1e-13)
        towards = (f_prev < 0) if sel < 0 else (f_prev > 0) if sel > 0 else True
        changed = (f_prev * fcur < 0) & towards
        assert n_change == int(np.sum(changed))
        np.testing.assert_array_equal(change[:nbk], changed.astype(np.int32))
        np.testing.assert_array_equal(change[nbk:], 7)  # the padding is the caller's


def test_expm_batched_is_expm_small_bit_for_bit():
    """Batched over patients (including norms that need scaling and squaring) = the scalar
    routine exactly, and both = scipy's expm to 1e-13."""
    rng = np.random.default_rng(5)
    n, nbk = 5, 19
    M = rng.normal(0.0, 1.0, (n, n, nbk))
    M[:, :, :5] *= 40.0  # ||M h|| >> 1/2: several squarings, different per patient
    h = 0.3
    out = np.empty((n, n, nbk))
    expm_batched(M, h, out, np.empty((5, n, n, nbk)))
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


def test_lobatto_weights_integrate_cubic_forcing_exactly():
    """The exponential Lobatto weights integrate ``e^{-kout (h - s)} N(s)`` over a step exactly
    for a cubic ``N`` (closed form of the integral, 1e-13 relative), for kout h from 1e-9 (the
    series of phi_k) to 40 (the closed forms), and tend to Lobatto's 1/12, 5/12, 5/12, 1/12."""
    from insilico.pk.kernel import LOBATTO_NODES, _lobatto_coefficients

    kout = np.array([1e-9, 0.1, 0.9, 1.1, 3.0, 20.0])
    sizes = np.array([0.25, 1.0, 2.0])
    out = np.empty((5, sizes.size, kout.size))
    _lobatto_coefficients(kout, sizes, np.ones(sizes.size, dtype=bool), out)
    c = np.array([1.0, 2.0, -3.0, 0.7])  # N(s) = sum_p c_p s^p

    def exact(k, h):
        # int_0^h e^{-k (h - s)} s^p ds by repeated integration by parts:
        # I_p = h^p / k - (p / k) I_{p-1}, I_0 = (1 - e^{-k h}) / k; stable for k h >= 1,
        # and for small k h the Taylor series of e^{-k (h - s)} term by term
        if k * h >= 1.0:
            ip = [-np.expm1(-k * h) / k]
            for p in range(1, 4):
                ip.append(h**p / k - p / k * ip[-1])
        else:
            ip = []
            for p in range(4):
                # sum_m (-k)^m int_0^h (h - s)^m s^p ds / m!  (beta integrals)
                acc, term = 0.0, 1.0
                for m in range(40):
                    beta = math.factorial(m) * math.factorial(p) / math.factorial(m + p + 1)
                    acc += term * beta * h ** (m + p + 1)
                    term *= -k / (m + 1)
                ip.append(acc)
        return float(np.dot(c, ip))

    for j, k in enumerate(kout):
        for q, h in enumerate(sizes):
            nodes = LOBATTO_NODES * h
            got = float(np.dot(out[1:, q, j], np.polyval(c[::-1], nodes)))
            assert got == pytest.approx(exact(k, h), rel=1e-13)
            assert out[0, q, j] == pytest.approx(np.exp(-k * h), rel=1e-15)
    lobatto = np.array([[1 / 12], [5 / 12], [5 / 12], [1 / 12]])
    np.testing.assert_allclose(out[1:, :, 0] / sizes, lobatto * np.ones(sizes.size), rtol=1e-8)


def test_hermite_root_is_exact_for_a_cubic_derivative():
    """The Newton start of the extremum refinement is the root of the cubic Hermite
    interpolant of p'; for a p' that is itself cubic the interpolant is p', so the start is
    its root (to 1e-12 of the step) — checked on random monotone cubics with their root in
    (0, h)."""
    from insilico.pk.kernel import _hermite_root

    rng = np.random.default_rng(11)
    for _ in range(200):
        h = rng.uniform(0.01, 2.0)
        root = rng.uniform(0.2, 0.8) * h
        a, b = rng.uniform(0.2, 1.0), rng.uniform(0.0, 0.5)  # a + b u^2 > 0: one root
        sign = rng.choice([-1.0, 1.0])

        def dp(s, root=root, a=a, b=b, sign=sign):  # (s - root)(a + b (s - root)^2)
            u = s - root
            return sign * u * (a + b * u * u)

        def ddp(s, root=root, a=a, b=b, sign=sign):
            u = s - root
            return sign * (a + 3.0 * b * u * u)

        s0 = _hermite_root(dp(0.0), ddp(0.0), dp(h), ddp(h), h)
        assert abs(s0 - root) <= 1e-12 * h


def test_hermite_extremum_is_the_cubic_interpolants_extremum():
    """``_hermite_extremum`` (the Hermite estimate of the response's extrema between nodes,
    branch-free) equals the extremum of the cubic Hermite interpolant found by brute force on
    100,001 points (to 1e-9 of the data's scale: the grid's own resolution is ~1e-10), on
    random data with a slope sign change: minima and maxima, the extremum anywhere in
    (0, h) including near either end, nearly quadratic interpolants (a3 ~ 1e-17: the root
    is ``a1 / q``) and exactly quadratic ones (a3 = 0)."""
    from insilico.pk.kernel import _hermite_extremum

    rng = np.random.default_rng(5)
    s = np.linspace(0.0, 1.0, 100_001)
    for case in range(300):
        h = rng.uniform(0.01, 3.0)
        y0, y1 = rng.normal(size=2)
        f0 = -rng.uniform(1e-3, 2.0)
        f1 = rng.uniform(1e-3, 2.0)
        if case % 3 == 0:  # a3 = (f0 + f1) h - 2 (y1 - y0) = 0 up to rounding
            y1 = y0 + 0.5 * (f0 + f1) * h
        if case % 50 == 0:  # a3 = 0 exactly (binary fractions)
            h, y0, f0, f1 = 1.0, 0.25, -0.5, 1.5
            y1 = y0 + 0.5
        sign = 1.0 if case % 2 else -1.0  # -1: maxima, the same data mirrored
        y0, f0, y1, f1 = sign * y0, sign * f0, sign * y1, sign * f1
        dy = y1 - y0
        a1, a2, a3 = f0 * h, 3.0 * dy - (2.0 * f0 + f1) * h, (f0 + f1) * h - 2.0 * dy
        p = y0 + s * (a1 + s * (a2 + s * a3))
        brute = p.min() if sign > 0 else p.max()
        v = _hermite_extremum(y0, f0, y1, f1, h)
        scale = max(abs(y0), abs(y1), abs(a1), abs(a2), abs(a3))
        assert abs(v - brute) <= 1e-9 * scale, (case, v, brute)
