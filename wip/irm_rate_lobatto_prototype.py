"""Prototype (session 24): an exponential Lobatto rule for indirect responses II and IV that
integrates the whole time-varying loss rate, checked against Radau before any kernel work.

IRM II and IV are linear in R with a rate that depends on time through C:
``R' = kin - k(t) R``, ``k(t) = kout (1 -/+ E(C(t)))``. Exactly,
``R(h) = e^{-K(h)} R(0) + kin * int_0^h e^{K(s) - K(h)} ds`` with ``K(s) = int_0^s k``.
The engine's ETDRK4 integrates only ``-kout R`` exactly and leaves ``kout E(C) R`` (up to
several times kout) to its polynomial part; twenty random patients put irm4 at median 2.5e-5,
max 4.3e-4 on the default grid (README, "Speed").

The rule, per step of size h (unit time u = s / h, Lobatto nodes 0, a, 1 - a, 1 as the
engine's rule for I and III):
- k at the four nodes (C exact there), p(u) the cubic through them;
- K(u) = h int_0^u p (exact for the cubic: the Lagrange basis integrated, constants);
  z = K(1) (the step's mean rate times h), delta(u) = K(u) - z u (0 at both ends);
- J = h int_0^1 e^{-z (1 - u)} e^{delta(u)} du ~ h sum_i c_i(z) e^{delta(u_i)}, with
  c_i(z) = int_0^1 e^{-z (1 - u)} l_i(u) du (the weights of the engine's Lobatto rule for a
  rate z / h: one exponential per patient and step, not per size);
- R(h) = e^{-z} R(0) + kin J.
Exact when k is constant (delta = 0); its error comes from delta, which is small when k
varies little over a step.

Run: ``python wip/irm_rate_lobatto_prototype.py`` (from the repository root; needs
``tests/pk`` for the Radau reference). Prints, per model and grid (the engine's ETDRK4 grid,
the same with hmax 0.5 h, the coarser grid of the Lobatto rule for I and III), the relative
error of R at the Radau tests' outputs (not the extrema) over the twenty random patients of
the slow test, for this rule and, on the ETDRK4 grid, for the engine.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy.linalg import expm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "pk"))

from pk_reference import Patient, Reference, patient_events  # noqa: E402
from test_against_radau import OUT_H, REGIMENS, WINDOWS, random_params  # noqa: E402

from insilico.pd.models import PDModel  # noqa: E402
from insilico.pk.grid import DEFAULT_GRID, GridOptions, build_grid  # noqa: E402

#: The grid of ETDRK4 for II and IV until session 24 (the engine's column below ran on it).
ETDRK4_GRID = (1.0 / 32.0, 1.0, 4)
from insilico.pk.models import PKModel  # noqa: E402
from insilico.pk.regimen import build_event_table  # noqa: E402
from insilico.pk.simulate import simulate  # noqa: E402

A_NODE = (1.0 - 1.0 / np.sqrt(5.0)) / 2.0
U = np.array([0.0, A_NODE, 1.0 - A_NODE, 1.0])


def _lagrange_basis():
    """Coefficients (ascending powers) of the four Lagrange basis cubics on ``U``."""
    V = np.vander(U, 4, increasing=True)
    return np.linalg.inv(V).T  # row i: coefficients of l_i


L_COEF = _lagrange_basis()


def _int_basis(u):
    """int_0^u l_i for every i."""
    powers = np.array([u ** (m + 1) / (m + 1) for m in range(4)])
    return L_COEF @ powers


INT_A = _int_basis(A_NODE)
INT_B = _int_basis(1.0 - A_NODE)
INT_1 = _int_basis(1.0)


GL_X, GL_W = np.polynomial.legendre.leggauss(24)
GL_U = 0.5 * (GL_X + 1.0)
GL_L = np.array([np.polyval(L_COEF[i][::-1], GL_U) for i in range(4)])


def _weights(z):
    """c_i(z) = int_0^1 e^{-z (1 - u)} l_i(u) du (24-point Gauss-Legendre: exact to rounding
    for these smooth integrands; a prototype, not the engine's phi functions)."""
    return GL_L @ (0.5 * GL_W * np.exp(-z * (1.0 - GL_U)))


def rate_lobatto(pt: Patient, kind: str, events, nodes: np.ndarray, out_t: np.ndarray):
    """R at ``out_t`` (which must be nodes) by the rule above on ``nodes``; exact 2-cmt oral PK."""
    ke, k12, k21 = pt.cl / pt.v1, pt.q2 / pt.v1, pt.q2 / pt.v2
    A = np.array([[-pt.ka, 0, 0], [pt.ka, -ke - k12, k21], [0, k12, -k21]])
    doses = {float(t): a * pt.f_bio for t, _k, a, _d in events}
    x = np.zeros(3)
    r = pt.kin / pt.kout
    sign = -1.0 if kind == "irm2" else 1.0
    out = {}

    def rate(xx):
        cu = pt.fu * xx[1] / pt.v1
        return pt.kout * (1.0 + sign * pt.emax * pt.hill_frac(cu))

    for g in range(len(nodes)):
        t = nodes[g]
        if t in doses:
            x = x.copy()
            x[0] += doses[t]
        if np.any(np.abs(out_t - t) < 1e-12):
            out[round(t, 9)] = r
        if g + 1 == len(nodes):
            break
        h = nodes[g + 1] - t
        xs = [x, expm(A * A_NODE * h) @ x, expm(A * (1 - A_NODE) * h) @ x, expm(A * h) @ x]
        k = np.array([rate(xx) for xx in xs])
        z = h * INT_1 @ k
        delta_a = h * INT_A @ k - z * A_NODE
        delta_b = h * INT_B @ k - z * (1.0 - A_NODE)
        g_vals = np.array([1.0, np.exp(delta_a), np.exp(delta_b), 1.0])
        J = h * _weights(z) @ g_vals
        r = np.exp(-z) * r + pt.kin * J
        x = xs[3]
    return np.array([out[round(t, 9)] for t in out_t])


def grid_nodes(events, opts_tuple):
    opts = GridOptions().resolved(opts_tuple)
    ev_times = np.unique(events.time_h)
    win_times = np.array([t for w in WINDOWS for t in (w.start_h, w.end_h)])
    hard = np.concatenate([[0.0], OUT_H, ev_times, win_times])
    return build_grid(hard, ev_times, opts, start_h=[float(ev_times.min())]).node_h


def main() -> None:
    n = 20
    print(f"{'model':<6}{'grid':<10}{'rule':<22}{'median':>10}{'max':>10}{'> 1e-6':>8}")
    for kind in ("irm2", "irm4"):
        params = random_params(1234, n, 2, kind, "none", "linear")
        events = build_event_table(REGIMENS["oral"], n)
        engine = simulate(PKModel(2), params, events, OUT_H, pd=PDModel(kind)).effect
        grids = (
            ("ETDRK4", ETDRK4_GRID),
            ("ETDRK4/2", (ETDRK4_GRID[0], 0.5 * ETDRK4_GRID[1], ETDRK4_GRID[2])),
            ("Lobatto", DEFAULT_GRID),
        )
        for label, opts in grids:
            errs_rule, errs_engine = [], []
            for i in range(n):
                pt = Patient.from_params(params, i, kind, False)
                ev = patient_events(events, i)
                ref = Reference(pt, ev, list(OUT_H), float(OUT_H[-1]))
                r_ref = np.array([ref.at(t)[7] for t in OUT_H])
                nodes = grid_nodes(events, opts)
                r_rule = rate_lobatto(pt, kind, ev, nodes, OUT_H)
                errs_rule.append(np.max(np.abs(r_rule - r_ref) / np.abs(r_ref)))
                errs_engine.append(np.max(np.abs(engine[i] - r_ref) / np.abs(r_ref)))
            rows = [(f"rate Lobatto ({len(nodes)} nodes)", errs_rule)]
            if label == "ETDRK4":
                rows.append(("engine (ETDRK4)", errs_engine))
            for name, e in rows:
                e = np.array(e)
                print(
                    f"{kind:<6}{label:<10}{name:<22}{np.median(e):>10.1e}{e.max():>10.1e}"
                    f"{int(np.sum(e > 1e-6)):>8}"
                )


if __name__ == "__main__":
    main()
