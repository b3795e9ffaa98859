"""Prototype: is the fused step faster when a small sub-block of patients goes through every
node before the next sub-block starts (temporal blocking), instead of every node taking the
whole block (~1,000 patients) one step at a time?

Why it might be: the step loads ~30 per-patient streams and stores ~7 per node (session 21).
For a block of 1,000 patients they take ~320 kB, so every node streams them from L2. A
sub-block of 32-256 patients keeps them in L1 across nodes.

What it measures (reference workload: 2-compartment oral PK, irm1 by exponential Lobatto,
Hill 1, the real grid of ``simulate`` for 56 doses q12h with outputs at day 28 only): ns per
patient-node of the step alone (PK transition, inner points, response step, dR/dt sign
changes), and that every variant gives the kernel's bits:

- ``generated``: the kernel's generated step (``step_4_depot_noauc``), called once per node
  for the whole block (a direct call here; the kernel calls it through a function pointer);
- ``run_generated_sub``: the same step called per node and sub-block, on sub-block-contiguous
  copies of the arrays;
- ``run_parity``: the step's loop inline in the node loop, the double buffers one array
  indexed by the node's parity;
- ``run``: the same, the double buffers two arrays swapped after each node.

Session 22, six runs (1,000 patients, 952 steps, best of 7-11; the machine's speed drifted by
up to ~30 % between runs, so compare within a run), range over the runs, ns per
patient-node:

===========  =================  ===============  ============
sub-block    generated, by sub  inline, parity   inline, swap
===========  =================  ===============  ============
1000         4.7-6.7            3.9-7.0          12-23
256          6.8-10.3           5.1-8.6          12-24
128          9.1-12.3           4.7-8.6          12-23
64           12-21              5.6-10.0         13-23
32           13-24              11-20            13-23
===========  =================  ===============  ============

The generated step over the whole block took 5.1-7.1 in the same runs.

Findings: (1) temporal blocking does not pay here. Called per sub-block, the step's call (29
arrays passed, their views and reference counts) costs ~500-800 ns. Inline, small
sub-blocks lose to the work every sub-block repeats per node (loop set-up, the vectorizer's
run-time overlap checks between the arrays), and 128-256 are no faster than 1,000: whatever
L1 residency saves, it does not outweigh that, so session 21's "bound by L2 bandwidth"
reading of the stream count is not confirmed. (2) Inline, the loop ran ~3x slower when the
double buffers were arrays swapped after each node (``run``) than with parity-indexed
buffers (``run_parity``): scalar code, judging by the time (the assembly was not
inspected). (3) Inline with parity-indexed buffers, node-major over the whole
block took 3.9-4.4 ns in four runs of this script against 5.1-7.1 for the generated step
called per node, but 7.0 against 6.7 in a fifth; the same two loops on the first m patients
(the table printed before the last) measured 6.1-6.9 against 7.0-7.3 at m = 1,000. What the call
itself costs is clear only for tiny blocks: ~140-250 ns per node and call (8 patients: 240
against 99 ns per node), i.e. ~0.2 ns per patient-node for 1,000 patients. The rest of the
difference is not explained and not reproducible at this machine's noise: no lever is
claimed from it.

The tables were measured on session 22's default grid (first step after a dose 1/32 h, 952
steps; since session 23 the default grid has 896) and with the sign-change flags as bytes
(``np.uint8``), as the kernel had them then (63206d9-daee42f); the variants here still write
bytes. The kernel's step writes int32 flags since f9f488d (~3-4 % faster), so the
generated-step variants now compile their own byte specialization of
``step_4_depot_noauc``.

Run: ``python wip/temporal_blocking_prototype.py [--repeats 7]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numba as nb
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_engine as be  # noqa: E402

from insilico.pd.models import hill_fraction  # noqa: E402
from insilico.pk._fused_generated import step_4_depot_noauc  # noqa: E402
from insilico.pk.kernel import (  # noqa: E402
    _fold_lobatto_weights,
    _lobatto_coefficients,
    _transitions,
    linear_kernel,
)

sm = sys.modules["insilico.pk.simulate"]  # the package exports a function of that name


def capture(n: int) -> dict:
    """The arguments ``simulate`` passes to the linear kernel for ``n`` reference patients."""
    code = linear_kernel.py_func.__code__
    names = code.co_varnames[: code.co_argcount]
    got = {}

    def grab(args):
        got.update(zip(names, args, strict=True))

    real = sm._linear_kernel
    sm._linear_kernel = grab
    try:
        be.run_insilico(be.parameters(n), chunk=n)
    except Exception:  # the metrics after the kernel need its outputs: not needed here
        pass
    finally:
        sm._linear_kernel = real
    return got


@nb.njit(error_model="numpy", boundscheck=False)
def _sub_block(s0, s1, phi, etd, c50a, kinb, koutb, kae, dose):
    """Contiguous copies of patients ``s0:s1`` of the per-patient inputs (the layout a
    temporally blocked kernel would allocate): transitions, response weights, C50 as an
    amount, kin, kout, kin ap Emax and the bioavailable dose."""
    return (
        np.ascontiguousarray(phi[:, :, :, s0:s1]),
        np.ascontiguousarray(etd[:, :, s0:s1]),
        c50a[s0:s1].copy(),
        kinb[s0:s1].copy(),
        koutb[s0:s1].copy(),
        kae[s0:s1].copy(),
        dose[s0:s1].copy(),
    )


@nb.njit(error_model="numpy", boundscheck=False)
def run(sub, phi, step_k, inner_k, dose_node, dose, xs, Rs, etd, c50a, kinb, koutb, kae):
    """Every node for sub-blocks of ``sub`` patients, each sub-block's arrays first copied
    into contiguous arrays (the layout a temporally blocked kernel would allocate), the step
    inline in the node loop (a call per node and sub-block passing ~30 arrays costs ~500 ns,
    see ``run_generated_sub``). ``sub`` >= the block: node-major, as the kernel. Returns the
    states, responses and the count of sign changes.

    The loop over the sub-block's patients runs from 0 (``range(m)``): numba's negative-index
    wraparound then folds away and LLVM vectorizes it; over ``range(s0, s1)`` of the whole
    block's arrays it stayed scalar (~13 ns per patient-node)."""
    S, nbk = xs.shape
    xo = np.empty((S, nbk))
    Ro = np.empty(nbk)
    n_change = 0
    for s0 in range(0, nbk, sub):
        s1 = min(nbk, s0 + sub)
        m = s1 - s0
        ph, et, c50_b, kin_b, kout_b, ka_b, dd = _sub_block(
            s0, s1, phi, etd, c50a, kinb, koutb, kae, dose
        )
        x = xs[:, s0:s1].copy()
        xn = x.copy()
        R = Rs[s0:s1].copy()
        rnew = R.copy()
        fnode = np.zeros(m)
        fcur = np.zeros(m)
        f_prev = np.zeros(m)
        change = np.zeros(m, dtype=np.uint8)
        for g in range(step_k.shape[0]):
            if dose_node[g]:
                for j in range(m):
                    x[0, j] += dd[j]
            k = step_k[g]
            phk = ph[k]
            pha = ph[inner_k[g, 0]]
            phb = ph[inner_k[g, 1]]
            for j in range(m):
                u = R[j]
                kin = kin_b[j]
                kout = kout_b[j]
                f0 = fnode[j]
                k1 = kin + ka_b[j] * f0 - kout * u
                fcur[j] = k1
                fp = f_prev[j]
                changed = (fp * k1 < 0.0) & (fp * -1.0 >= 0.0)
                change[j] = np.uint8(changed)
                n_change += changed
                x0 = x[0, j]
                x1 = x[1, j]
                x2 = x[2, j]
                xn[0, j] = phk[0, 0, j] * x0
                y1 = phk[1, 0, j] * x0 + phk[1, 1, j] * x1 + phk[1, 2, j] * x2
                xn[1, j] = y1
                y2 = phk[2, 0, j] * x0 + phk[2, 1, j] * x1 + phk[2, 2, j] * x2
                xn[2, j] = y2
                ca = pha[1, 0, j] * x0 + pha[1, 1, j] * x1 + pha[1, 2, j] * x2
                cb = phb[1, 0, j] * x0 + phb[1, 1, j] * x1 + phb[1, 2, j] * x2
                c50 = c50_b[j]
                fa = hill_fraction(ca, c50, 1.0)
                fb = hill_fraction(cb, c50, 1.0)
                f1 = hill_fraction(y1, c50, 1.0)
                rnew[j] = et[0, k, j] * u + (
                    et[5, k, j]
                    + (et[1, k, j] * f0 + et[2, k, j] * fa + et[3, k, j] * fb + et[4, k, j] * f1)
                )
                fnode[j] = f1
            x, xn = xn, x
            R, rnew = rnew, R
            fcur, f_prev = f_prev, fcur
        xo[:, s0:s1] = x
        Ro[s0:s1] = R
    return xo, Ro, n_change


@nb.njit(error_model="numpy", boundscheck=False)
def run_parity(sub, phi, step_k, inner_k, dose_node, dose, xs, Rs, etd, c50a, kinb, koutb, kae):
    """As ``run``, but the double buffers are one array indexed by the node's parity
    (``xb[p]`` and ``xb[1 - p]``) instead of two arrays swapped after each node."""
    S, nbk = xs.shape
    xo = np.empty((S, nbk))
    Ro = np.empty(nbk)
    n_change = 0
    for s0 in range(0, nbk, sub):
        s1 = min(nbk, s0 + sub)
        m = s1 - s0
        ph, et, c50_b, kin_b, kout_b, ka_b, dd = _sub_block(
            s0, s1, phi, etd, c50a, kinb, koutb, kae, dose
        )
        xb = np.empty((2, S, m))
        xb[0] = xs[:, s0:s1]
        xb[1] = xs[:, s0:s1]
        Rb = np.empty((2, m))
        Rb[0] = Rs[s0:s1]
        Rb[1] = Rs[s0:s1]
        fb_ = np.zeros((2, m))
        fnode = np.zeros(m)
        change = np.zeros(m, dtype=np.uint8)
        G = step_k.shape[0]
        for g in range(G):
            p = g & 1
            q = 1 - p
            if dose_node[g]:
                for j in range(m):
                    xb[p, 0, j] += dd[j]
            k = step_k[g]
            ka = inner_k[g, 0]
            kb = inner_k[g, 1]
            for j in range(m):
                u = Rb[p, j]
                kin = kin_b[j]
                kout = kout_b[j]
                f0 = fnode[j]
                k1 = kin + ka_b[j] * f0 - kout * u
                fb_[p, j] = k1
                fp = fb_[q, j]
                changed = (fp * k1 < 0.0) & (fp * -1.0 >= 0.0)
                change[j] = np.uint8(changed)
                n_change += changed
                x0 = xb[p, 0, j]
                x1 = xb[p, 1, j]
                x2 = xb[p, 2, j]
                xb[q, 0, j] = ph[k, 0, 0, j] * x0
                y1 = ph[k, 1, 0, j] * x0 + ph[k, 1, 1, j] * x1 + ph[k, 1, 2, j] * x2
                xb[q, 1, j] = y1
                y2 = ph[k, 2, 0, j] * x0 + ph[k, 2, 1, j] * x1 + ph[k, 2, 2, j] * x2
                xb[q, 2, j] = y2
                ca = ph[ka, 1, 0, j] * x0 + ph[ka, 1, 1, j] * x1 + ph[ka, 1, 2, j] * x2
                cb = ph[kb, 1, 0, j] * x0 + ph[kb, 1, 1, j] * x1 + ph[kb, 1, 2, j] * x2
                c50 = c50_b[j]
                fa = hill_fraction(ca, c50, 1.0)
                fb = hill_fraction(cb, c50, 1.0)
                f1 = hill_fraction(y1, c50, 1.0)
                Rb[q, j] = et[0, k, j] * u + (
                    et[5, k, j]
                    + (et[1, k, j] * f0 + et[2, k, j] * fa + et[3, k, j] * fb + et[4, k, j] * f1)
                )
                fnode[j] = f1
        pf = G & 1
        for r in range(S):
            xo[r, s0:s1] = xb[pf, r]
        Ro[s0:s1] = Rb[pf]
    return xo, Ro, n_change


@nb.njit(error_model="numpy", boundscheck=False)
def _generated_nodes(ph, et, c50, kin, kout, ka, dd, step_k, inner_k, dose_node, x, R):
    """Every node through the kernel's generated step (``step_4_depot_noauc``) for the
    patients of ``x`` and ``R`` (updated in turn with the double buffers; the other arrays
    are those patients' transitions, weights, C50 as an amount, kin, kout, kin ap Emax and
    bioavailable dose). Returns the final state, response and count of sign changes."""
    m = x.shape[1]
    xn = x.copy()
    rnew = R.copy()
    fnode = np.zeros(m)
    fcur = np.zeros(m)
    f_prev = np.zeros(m)
    change = np.zeros(m, dtype=np.uint8)
    rate = np.zeros(m)
    ones = np.ones(m)
    cbuf = np.empty((3, m))
    dauc = np.empty(m)
    n_change = 0
    for g in range(step_k.shape[0]):
        if dose_node[g]:
            for j in range(m):
                x[0, j] += dd[j]
        k = step_k[g]
        n_change += step_4_depot_noauc(ph[k], ph[k], ph[inner_k[g, 0]], ph[inner_k[g, 1]],
                                       x, xn, rate, True, True, True, R, fnode, rnew, fcur,
                                       f_prev, -1.0, et, k, ones, c50, kin, kout, ka, ones,
                                       -1.0, 0.0, cbuf, dauc, change)  # fmt: skip
        x, xn = xn, x
        R, rnew = rnew, R
        fcur, f_prev = f_prev, fcur
    return x, R, n_change


@nb.njit(error_model="numpy", boundscheck=False)
def run_generated(phi, step_k, inner_k, dose_node, dose, xs, Rs, etd, c50a, kinb, koutb, kae):
    """Node-major through the kernel's own generated step (``step_4_depot_noauc``)."""
    return _generated_nodes(phi, etd, c50a, kinb, koutb, kae, dose, step_k, inner_k, dose_node,
                            xs.copy(), Rs.copy())  # fmt: skip


@nb.njit(error_model="numpy", boundscheck=False)
def run_generated_sub(sub, phi, step_k, inner_k, dose_node, dose, xs, Rs, etd, c50a, kinb,
                      koutb, kae):  # fmt: skip
    """Sub-block-major through the generated step: every sub-block's arrays copied into
    contiguous arrays of ``sub`` patients first (the layout a temporally blocked kernel
    would allocate), then each sub-block through every node."""
    S, nbk = xs.shape
    xo = np.empty((S, nbk))
    Ro = np.empty(nbk)
    n_change = 0
    for s0 in range(0, nbk, sub):
        s1 = min(nbk, s0 + sub)
        ph, et, c50, kin, kout, ka, dd = _sub_block(s0, s1, phi, etd, c50a, kinb, koutb, kae, dose)
        x, R, nc = _generated_nodes(ph, et, c50, kin, kout, ka, dd, step_k, inner_k, dose_node,
                                    xs[:, s0:s1].copy(), Rs[s0:s1].copy())  # fmt: skip
        xo[:, s0:s1] = x
        Ro[s0:s1] = R
        n_change += nc
    return xo, Ro, n_change


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--n", type=int, default=1000, help="patients (one block)")
    args = ap.parse_args()
    a = capture(args.n)
    n = args.n
    S = a["A"].shape[1]
    assert S == 4 and a["depot"] == 0 and not a["aug"], "the prototype is for 2-cmt oral"
    sizes = a["sizes"]
    K = sizes.shape[0]
    phi = np.empty((K, S, S, n))
    _transitions(a["A"], False, a["central"], sizes, a["size_src"], 0, n, S, phi)
    P = a["P"]
    kinb, koutb = P[5].copy(), P[6].copy()
    emb = P[2].copy()
    kae = kinb * (-1.0 * emb)
    c50a = P[3] / (P[7] / a["v1"])
    used = np.zeros(K, dtype=np.bool_)
    used[a["step_k"]] = True
    etd = np.empty((6, K, n))
    _lobatto_coefficients(koutb, sizes, used, etd)
    _fold_lobatto_weights(etd, kinb, kae, used)
    G = a["node_h"].shape[0] - 1
    step_k = a["step_k"][:G]
    inner_k = np.ascontiguousarray(a["inner_k"][:G])
    dose_node = np.zeros(G, dtype=np.bool_)
    for g in range(G):
        dose_node[g] = a["ev_ptr"][g + 1] > a["ev_ptr"][g]
    dose = a["amount"][:, 0] * a["f_bio"]
    x0 = np.zeros((S, n))
    R0 = a["pd0"].copy()
    call = (phi, step_k, inner_k, dose_node, dose, x0, R0, etd, c50a, kinb, koutb, kae)
    ref = run(n, *call)
    print(f"{n} patients, {G} steps, {K} step sizes; ns per patient-node, best of {args.repeats}")
    print(f"{'sub-block':>10}{'ns':>8}{'vs node-major':>15}  same bits")
    gen = run_generated(*call)
    same = all(np.array_equal(p, q) for p, q in zip(gen[:2], ref[:2], strict=True))
    best = np.inf
    for _ in range(args.repeats):
        t = time.perf_counter()
        run_generated(*call)
        best = min(best, time.perf_counter() - t)
    print(f"{'generated':>10}{best / (n * G) * 1e9:>8.2f}{'':>15}  {same and gen[2] == ref[2]}")
    print(f"{'sub-block':>10}{'ns':>8}  (generated step, sub-block-contiguous copies)")
    for sub in (n, 256, 128, 64, 32):
        out = run_generated_sub(sub, *call)
        same = all(np.array_equal(p, q) for p, q in zip(out[:2], ref[:2], strict=True))
        best = np.inf
        for _ in range(args.repeats):
            t = time.perf_counter()
            run_generated_sub(sub, *call)
            best = min(best, time.perf_counter() - t)
        print(f"{sub:>10}{best / (n * G) * 1e9:>8.2f}{'':>15}  {same and out[2] == ref[2]}")
    print(f"{'sub-block':>10}{'ns':>8}  (inline, parity-indexed buffers)")
    for sub in (n, 256, 128, 64, 32):
        out = run_parity(sub, *call)
        same = all(np.array_equal(p, q) for p, q in zip(out[:2], ref[:2], strict=True))
        best = np.inf
        for _ in range(args.repeats):
            t = time.perf_counter()
            run_parity(sub, *call)
            best = min(best, time.perf_counter() - t)
        print(f"{sub:>10}{best / (n * G) * 1e9:>8.2f}{'':>15}  {same and out[2] == ref[2]}")
    print("per node, the step over m patients (same arrays, first m columns):")
    for m in (8, 64, n):
        sub_call = (
            np.ascontiguousarray(phi[..., :m]),
            step_k,
            inner_k,
            dose_node,
            dose[:m].copy(),
            np.zeros((S, m)),
            R0[:m].copy(),
            np.ascontiguousarray(etd[..., :m]),
            c50a[:m].copy(),
            kinb[:m].copy(),
            koutb[:m].copy(),
            kae[:m].copy(),
        )
        for name, f in (("generated", run_generated), ("inline", None)):
            fn = f if f is not None else (lambda *c, m=m: run_parity(m, *c))
            fn(*sub_call)
            best = np.inf
            for _ in range(args.repeats):
                t = time.perf_counter()
                fn(*sub_call)
                best = min(best, time.perf_counter() - t)
            print(f"  m={m:<5d}{name:>10}{best / G * 1e9:>10.1f} ns per node")
    base = None
    for sub in (n, 512, 256, 128, 96, 64, 48, 32, 16):
        out = run(sub, *call)
        same = all(np.array_equal(p, q) for p, q in zip(out[:2], ref[:2], strict=True))
        same &= out[2] == ref[2]
        best = np.inf
        for _ in range(args.repeats):
            t = time.perf_counter()
            run(sub, *call)
            best = min(best, time.perf_counter() - t)
        ns = best / (n * G) * 1e9
        base = ns if base is None else base
        label = "node-major" if sub == n else str(sub)
        print(f"{label:>10}{ns:>8.2f}{ns / base:>15.2f}  {same}")


if __name__ == "__main__":
    main()
