"""Prototype: higher-order exponential quadrature for IRM I (forcing independent of R).

R' = g(t) - kout R,  g = kin (1 - imax C/(ic50 + C)),  C exact (2-cmt oral, 100 mg q12h x56).
Schemes per step: R1 = e^{-k h} R0 + sum_i w_i(k h) g(t + c_i h)
  simpson: c = 0, 1/2, 1, exponential weights (= ETDRK4 with R-independent forcing)
  lobatto: c = 0, (1-1/sqrt5)/2, (1+1/sqrt5)/2, 1, exponential weights
  boole:   c = 0, 1/4, 1/2, 3/4, 1, exponential weights
  gauss3:  Gauss-Legendre 3 on the whole integrand e^{-k(h-s)} g(s)
Error: max relative error of R at every dose time (20 patients of the benchmark) against
Boole on a uniform 1/64 h grid (itself within 2e-10 of 1/128 h). Numpy, slow (~1 min);
not part of the package: the measurement behind wip/README.md, session 13.
"""

import sys

import numpy as np
from scipy.linalg import expm

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))
import bench_engine as be  # noqa: E402

P = be.parameters(20)
n = 20
ka, cl, v1, q, v2, F = (
    P[k] for k in ("ka_per_h", "cl_L_per_h", "v1_L", "q2_L_per_h", "v2_L", "f_bio")
)
kin, kout, imax, ic50 = (P[k] for k in ("kin_per_h", "kout_per_h", "imax", "ic50_mg_per_L"))
A = np.zeros((n, 3, 3))
A[:, 0, 0] = -ka
A[:, 1, 0] = ka
A[:, 1, 1] = -(cl + q) / v1
A[:, 1, 2] = q / v2
A[:, 2, 1] = q / v1
A[:, 2, 2] = -q / v2
_cache = {}


def phi(h):
    key = round(h, 15)
    if key not in _cache:
        _cache[key] = np.array([expm(A[i] * h) for i in range(n)])
    return _cache[key]


def g_of(x):
    c = x[:, 1] / v1
    return kin * (1 - imax * c / (ic50 + c))


GL20x, GL20w = np.polynomial.legendre.leggauss(30)


def exp_weights(c, kh):
    """w_i = int_0^1 e^{-kh (1-s)} l_i(s) ds (times h later), Lagrange basis on nodes c."""
    s = 0.5 * (GL20x + 1)
    ws = 0.5 * GL20w
    L = np.ones((len(c), s.size))
    for i in range(len(c)):
        for j in range(len(c)):
            if j != i:
                L[i] *= (s - c[j]) / (c[i] - c[j])
    E = np.exp(-kh[:, None] * (1 - s[None, :]))  # (n, m)
    return np.einsum("nm,im,m->in", E, L, ws)


SCHEMES = {
    "simpson": np.array([0, 0.5, 1.0]),
    "lobatto": np.array([0, (1 - 1 / 5**0.5) / 2, (1 + 1 / 5**0.5) / 2, 1.0]),
    "boole": np.array([0, 0.25, 0.5, 0.75, 1.0]),
}
G3 = (np.polynomial.legendre.leggauss(3)[0] + 1) / 2
G3w = np.polynomial.legendre.leggauss(3)[1] / 2


def grid(h0, per_level, hmax, tau=12.0, first_only=False):
    """Steps of one interval: graded from the dose (h0, per_level steps per level, doubling)
    then hmax, the last step shortened to land on tau."""
    steps, t, h = [], 0.0, h0
    while h < hmax:
        for _ in range(per_level):
            steps.append(h)
            t += h
        h *= 2
    while t + hmax < tau - 1e-12:
        steps.append(hmax)
        t += hmax
    steps.append(tau - t)
    return steps


def run(scheme, steps):
    x = np.zeros((n, 3))
    R = kin / kout
    rmin = R.copy()
    at_doses = []
    wcache = {}
    for _ in range(56):
        x[:, 0] += 100.0 * F
        for h in steps:
            E = phi(h)
            x1 = np.einsum("nij,nj->ni", E, x)
            if scheme == "gauss3":
                acc = 0.0
                for c, w in zip(G3, G3w, strict=True):
                    xc = np.einsum("nij,nj->ni", phi(c * h), x)
                    acc = acc + w * np.exp(-kout * h * (1 - c)) * g_of(xc)
                R = np.exp(-kout * h) * R + h * acc
            else:
                c = SCHEMES[scheme]
                key = round(h, 15)
                if key not in wcache:
                    wcache[key] = exp_weights(c, kout * h)
                W = wcache[key]
                acc = 0.0
                for i, ci in enumerate(c):
                    xc = (
                        x
                        if ci == 0
                        else (x1 if ci == 1 else np.einsum("nij,nj->ni", phi(ci * h), x))
                    )
                    acc = acc + W[i] * g_of(xc)
                R = np.exp(-kout * h) * R + h * acc
            x = x1
            rmin = np.minimum(rmin, R)
        at_doses.append(R.copy())
    return np.array(at_doses), rmin


if __name__ == "__main__":
    ref_steps = [1 / 64] * (12 * 64)
    ref, ref_min = run("boole", ref_steps)
    ref2, _ = run("boole", [1 / 128] * (12 * 128))
    print("reference self-check (boole 1/64 vs 1/128):", np.max(np.abs(ref - ref2) / np.abs(ref2)))
    configs = [
        (1 / 32, 4, 1.0),
        (1 / 16, 4, 1.0),
        (1 / 16, 2, 1.0),
        (1 / 8, 2, 1.0),
        (1 / 4, 2, 1.0),
        (1 / 4, 1, 1.0),
        (1 / 2, 1, 1.0),
        (1.0, 1, 1.0),
    ]
    print(
        f"{'grid (h0, per level, hmax)':<28}{'steps/12h':>10}"
        + "".join(f"{s:>12}" for s in ("simpson", "lobatto", "boole", "gauss3"))
    )
    for h0, pl, hm in configs:
        st = grid(h0, pl, hm)
        errs = []
        for sch in ("simpson", "lobatto", "boole", "gauss3"):
            r, _ = run(sch, st)
            errs.append(np.max(np.abs(r - ref) / np.abs(ref)))
        print(f"{str((h0, pl, hm)):<28}{len(st):>10}" + "".join(f"{e:>12.2e}" for e in errs))
