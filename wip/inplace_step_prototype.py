"""How much an in-place plain step would save: a prototype for issue 2 (session 17).

The kernel's plain step (``insilico.pk._fused_generated``) reads the state, response and
dR/dt of node g from one set of buffers and writes those of g + 1 into another (the kernel
rotates three state buffers, because the Hermite search and the window trackers read the
state at g - 1 for the few patients they flag). This script times, on the reference layout
(2-compartment oral + AUC, exponential Lobatto, Hill 1; 1,000 patients, 11 one-hour nodes
per call of the driver), the same loop body three ways:

* ``per-node call``: the generated ``step_4_depot`` called once per node, buffers swapped;
* ``one loop, separate buffers``: the same body with the loop over nodes inside one
  function (no call per node), still writing to separate buffers;
* ``one loop, in place``: state, response and dR/dt overwritten in place (34 instead of 40
  arrays touched per patient and node, and every store goes to a cache line just loaded).

Session 17 measured (ns per patient-node, best of 5, two runs): 4.69 / 4.52 / 3.74 and
6.43 / 6.07 / 4.66 (the machine was in a slower phase); an earlier draft of this script
measured 5.79 / 5.47 / 4.32. Values are kept near a fixed point (transition rows summing
to 1) so that nothing decays into subnormals, which run ~40x slower and once made a
micro-benchmark here meaningless. An in-place kernel needs the state at g - 1 kept for the
flagged patients only (a masked store where dR/dt changes sign, or the Hermite search moved
to the step that detects the sign change); see ``wip/README.md``, session 17. Session 18
built that in the kernel (``wip/issue2-in-place-steps.patch``): there it measured no gain,
likely (not measured) because the kernel runs outputs, trackers and the Hermite search
between two steps, unlike this loop of steps alone (``wip/README.md``, session 18).

Usage: ``python wip/inplace_step_prototype.py``
"""

from __future__ import annotations

import time

import numba as nb
import numpy as np

import insilico.pk._llvm_options  # noqa: F401  (before anything compiles)
from insilico.pd.models import hill_fraction
from insilico.pk._fused_generated import step_4_depot


def _source(in_place: bool) -> str:
    """One node of the generated Lobatto/Hill-1 loop, writing to separate buffers or in
    place. Separate functions, not one with aliased arguments: numba cannot tell LLVM that
    arguments do not alias, so an in-place call through two names fails the vectorizer's
    run-time overlap check and runs the scalar loop (~9.5 ns per patient-node here)."""
    xn, rnew, fcur = ("x", "R", "f_prev") if in_place else ("xn", "rnew", "fcur")
    return f"""
def body(phk, pha, phb, etd, k, x, xn, R, rnew, fnode, fcur, f_prev, c50a, kinb, koutb, kae):
    n_change = 0
    for j in range(x.shape[1]):
        u = R[j]
        kin = kinb[j]
        kout = koutb[j]
        f0 = fnode[j]
        k1 = kin + kae[j] * f0 - kout * u
        fp = f_prev[j]
        {fcur}[j] = k1
        n_change += (fp * k1 < 0.0) & (fp * -1.0 >= 0.0)
        x0 = x[0, j]
        x1 = x[1, j]
        x2 = x[2, j]
        x3 = x[3, j]
        {xn}[0, j] = phk[0, 0, j] * x0
        y1 = phk[1, 0, j] * x0 + phk[1, 1, j] * x1 + phk[1, 2, j] * x2
        {xn}[1, j] = y1
        {xn}[2, j] = phk[2, 0, j] * x0 + phk[2, 1, j] * x1 + phk[2, 2, j] * x2
        {xn}[3, j] = phk[3, 0, j] * x0 + phk[3, 1, j] * x1 + phk[3, 2, j] * x2 + x3
        ca = pha[1, 0, j] * x0 + pha[1, 1, j] * x1 + pha[1, 2, j] * x2
        cb = phb[1, 0, j] * x0 + phb[1, 1, j] * x1 + phb[1, 2, j] * x2
        c50 = c50a[j]
        fa = hill_fraction(ca, c50, 1.0)
        fb = hill_fraction(cb, c50, 1.0)
        f1 = hill_fraction(y1, c50, 1.0)
        {rnew}[j] = etd[0, k, j] * u + (
            etd[5, k, j]
            + (etd[1, k, j] * f0 + etd[2, k, j] * fa + etd[3, k, j] * fb + etd[4, k, j] * f1)
        )
        fnode[j] = f1
    return n_change
"""


def _compile(in_place: bool):
    scope = {"hill_fraction": hill_fraction}
    exec(_source(in_place), scope)
    return nb.njit(error_model="numpy", boundscheck=False)(scope["body"])


_body = _compile(False)
_body_in_place = _compile(True)


@nb.njit
def per_node_call(
    nodes, phi, x, xn, R, rnew, fnode, fcur, f_prev, etd, emb, c50a, kinb, koutb, kae, hill, cbuf
):
    tot = 0
    rate = np.zeros(x.shape[1])
    for g in range(nodes):
        k = g % 3
        tot += step_4_depot(
            phi[k], phi[k + 3], phi[k + 1], phi[k + 2], x, xn, rate, True, True, True, R,
            fnode, rnew, fcur, f_prev, -1.0, etd, k, emb, c50a, kinb, koutb, kae, hill, -1.0,
            0.0, cbuf,
        )  # fmt: skip
        x, xn = xn, x
        R, rnew = rnew, R
        f_prev, fcur = fcur, f_prev
    return tot


@nb.njit
def one_loop(
    nodes, in_place, phi, x, xn, R, rnew, fnode, fcur, f_prev, etd, c50a, kinb, koutb, kae
):
    tot = 0
    for g in range(nodes):
        k = g % 3
        if in_place:
            tot += _body_in_place(phi[k], phi[k + 1], phi[k + 2], etd, k, x, xn, R, rnew, fnode,
                                  fcur, f_prev, c50a, kinb, koutb, kae)  # fmt: skip
        else:
            tot += _body(phi[k], phi[k + 1], phi[k + 2], etd, k, x, xn, R, rnew, fnode, fcur,
                         f_prev, c50a, kinb, koutb, kae)  # fmt: skip
            x, xn = xn, x
            R, rnew = rnew, R
            f_prev, fcur = fcur, f_prev
    return tot


def main(nbk: int = 1000, nodes: int = 11, reps: int = 300) -> None:
    rng = np.random.default_rng(0)
    S, K = 4, 8
    phi = np.full((K, S, S, nbk), 1.0 / 3.0)  # rows sum to 1: the state stays near 50
    phi[:, 0, 0] = 1.0
    x = np.full((S, nbk), 50.0)
    xn = np.empty((S, nbk))
    R = rng.uniform(10.0, 100.0, nbk)
    rnew = np.empty(nbk)
    fnode = rng.uniform(0.05, 0.5, nbk)
    fcur = np.empty(nbk)
    f_prev = rng.normal(size=nbk)
    etd = rng.uniform(0.1, 1.0, (6, K, nbk))
    emb, c50a, kinb, koutb, kae = (rng.uniform(0.1, 1.0, nbk) for _ in range(5))
    hill = np.ones(nbk)
    cbuf = np.empty((3, nbk))
    runs = {
        "per-node call": lambda: per_node_call(
            nodes,
            phi,
            x,
            xn,
            R,
            rnew,
            fnode,
            fcur,
            f_prev,
            etd,
            emb,
            c50a,
            kinb,
            koutb,
            kae,
            hill,
            cbuf,
        ),  # fmt: skip
        "one loop, separate buffers": lambda: one_loop(
            nodes, False, phi, x, xn, R, rnew, fnode, fcur, f_prev, etd, c50a, kinb, koutb, kae
        ),
        "one loop, in place": lambda: one_loop(
            nodes, True, phi, x, xn, R, rnew, fnode, fcur, f_prev, etd, c50a, kinb, koutb, kae
        ),
    }
    for run in runs.values():
        run()  # compile
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(5):
        for name, run in runs.items():
            t = time.perf_counter()
            for _ in range(reps):
                run()
            times[name].append((time.perf_counter() - t) / reps / nodes / nbk * 1e9)
    print(f"{'ns per patient-node':<30}{'best':>8}{'median':>8}")
    for name, v in times.items():
        print(f"{name:<30}{min(v):>8.2f}{sorted(v)[len(v) // 2]:>8.2f}")


if __name__ == "__main__":
    main()
