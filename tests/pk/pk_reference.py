"""Independent reference for the simulation core: scipy ``solve_ivp`` Radau, one patient at a
time, integrated segment by segment between events (restarted at every event, boluses added
to the state), written from the model equations without using any insilico numerics.

State (always all of them; absent compartments simply stay at 0)::

    0 depot  1 central  2 periph2  3 periph3  4 ce (mg/L)  5 auc (mg h/L)  6 eliminated  7 R

Segment ends include every event, infusion end, lag-shifted absorption start, output time and
window bound, so values there are step-end values of the integrator (not dense-output
interpolation). Extrema and threshold crossings inside a segment are located on the dense
output and their values re-computed by a fresh Radau integration from the segment start.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.integrate import solve_ivp
from scipy.optimize import brentq, minimize_scalar

RTOL, ATOL = 1e-10, 1e-12
DEPOT, CENTRAL, P2, P3, CE, AUC, ELIM, R = range(8)
NS = 8
# event kinds of insilico.pk.regimen (the only thing taken from the package: the table format)
BOLUS_CENTRAL, BOLUS_DEPOT, INFUSION = 0, 1, 2


@dataclass
class Patient:
    """Scalar parameters of one patient (0 where a feature is absent)."""

    v1: float
    cl: float = 0.0
    q2: float = 0.0
    v2: float = 1.0
    q3: float = 0.0
    v3: float = 1.0
    ka: float = 0.0
    f_bio: float = 1.0
    tlag: float = 0.0
    vmax: float = 0.0
    km: float = 1.0
    ke0: float = 0.0
    pd: str = "none"
    effect_compartment: bool = False
    e0: float = 0.0
    slope: float = 0.0
    emax: float = 0.0
    c50: float = 1.0
    hill: float = 1.0
    kin: float = 0.0
    kout: float = 1.0
    fu: float = 1.0

    @staticmethod
    def from_params(params: dict, i: int, pd: str = "none", effect_compartment: bool = False):
        def g(name, default=0.0):
            if name not in params:
                return default
            v = np.asarray(params[name], dtype=float)
            return float(v) if v.ndim == 0 else float(v[i])

        emag = g("emax", g("imax", g("smax", 0.0)))
        c50 = g("ec50_mg_per_L", g("ic50_mg_per_L", g("sc50_mg_per_L", 1.0)))
        return Patient(
            v1=g("v1_L"),
            cl=g("cl_L_per_h"),
            q2=g("q2_L_per_h"),
            v2=g("v2_L", 1.0),
            q3=g("q3_L_per_h"),
            v3=g("v3_L", 1.0),
            ka=g("ka_per_h"),
            f_bio=g("f_bio", 1.0),
            tlag=g("tlag_h"),
            vmax=g("vmax_mg_per_h"),
            km=g("km_mg_per_L", 1.0),
            ke0=g("ke0_per_h"),
            pd=pd,
            effect_compartment=effect_compartment,
            e0=g("e0"),
            slope=g("slope_L_per_mg"),
            emax=emag,
            c50=c50,
            hill=g("hill", 1.0),
            kin=g("kin_per_h"),
            kout=g("kout_per_h", 1.0),
            fu=g("fu", 1.0),
        )

    # --- model equations -------------------------------------------------------------------
    def hill_frac(self, cu):
        if np.ndim(cu) == 0:
            if cu <= 0.0:
                return 0.0
            return cu**self.hill / (self.c50**self.hill + cu**self.hill)
        pos = np.maximum(cu, 0.0)
        return np.where(cu > 0.0, pos**self.hill / (self.c50**self.hill + pos**self.hill), 0.0)

    def driver(self, y):
        """Unbound concentration driving the PD model (mg/L)."""
        return self.fu * (y[CE] if self.effect_compartment else y[CENTRAL] / self.v1)

    def effect(self, y):
        """Effect of a state ``y`` (shape (8,) or (8, n_samples))."""
        cu = self.driver(y)
        if self.pd == "linear":
            return self.e0 + self.slope * cu
        if self.pd == "emax":
            return self.e0 + self.emax * cu / (self.c50 + cu)
        if self.pd == "sigmoid_emax":
            return self.e0 + self.emax * self.hill_frac(cu)
        if self.pd.startswith("irm"):
            return y[R]
        return 0.0

    def rhs(self, t, y, rate):
        c = y[CENTRAL] / self.v1
        mm = self.vmax * c / (self.km + c) if c > 0 else 0.0
        d = np.zeros(NS)
        d[DEPOT] = -self.ka * y[DEPOT]
        k12, k21 = self.q2 / self.v1, self.q2 / self.v2
        k13, k31 = self.q3 / self.v1, self.q3 / self.v3
        d[CENTRAL] = (
            self.ka * y[DEPOT]
            - (self.cl / self.v1 + k12 + k13) * y[CENTRAL]
            + k21 * y[P2]
            + k31 * y[P3]
            + rate
            - mm
        )
        d[P2] = k12 * y[CENTRAL] - k21 * y[P2]
        d[P3] = k13 * y[CENTRAL] - k31 * y[P3]
        d[CE] = self.ke0 * (c - y[CE])
        d[AUC] = c
        d[ELIM] = self.cl * c + mm
        if self.pd.startswith("irm"):
            frac = self.emax * self.hill_frac(self.fu * c)
            if self.pd == "irm1":
                d[R] = self.kin * (1.0 - frac) - self.kout * y[R]
            elif self.pd == "irm2":
                d[R] = self.kin - self.kout * (1.0 - frac) * y[R]
            elif self.pd == "irm3":
                d[R] = self.kin * (1.0 + frac) - self.kout * y[R]
            else:
                d[R] = self.kin - self.kout * (1.0 + frac) * y[R]
        return d

    def baseline(self) -> float:
        return self.kin / self.kout if self.pd.startswith("irm") else 0.0


@dataclass
class Segment:
    t0: float
    t1: float
    y0: np.ndarray
    rate: float
    sol: object  # dense output (OdeSolution) or None for a zero-length/no-op segment


def _sample_times(seg: Segment) -> np.ndarray:
    """The integrator's own step ends plus three points inside each step."""
    ts = np.asarray(seg.sol.ts)
    inner = ts[:-1, None] + np.diff(ts)[:, None] * np.array([0.25, 0.5, 0.75])
    return np.concatenate([ts[:-1, None], inner], axis=1).ravel().tolist() + [ts[-1]]


def _integrate(p: Patient, y0, t0, t1, rate, dense=False, first_step=None):
    if t1 <= t0:
        return y0.copy(), None
    r = solve_ivp(
        p.rhs,
        (t0, t1),
        y0,
        method="Radau",
        rtol=RTOL,
        atol=ATOL,
        args=(rate,),
        dense_output=dense,
        first_step=None if first_step is None else min(first_step, t1 - t0),
    )
    if not r.success:
        raise RuntimeError(r.message)
    return r.y[:, -1].copy(), r.sol


class Reference:
    """Radau solution of one patient over ``[0, t_end]``.

    Parameters
    ----------
    p : Patient
    events : list of (time_h, kind, amount_mg, duration_h)
        Dosing events as in an insilico EventTable row (depot doses before lag and F).
    stops : iterable of float
        Extra segment ends (outputs, window bounds).
    """

    def __init__(self, p: Patient, events, stops, t_end: float):
        self.p = p
        boluses: dict[float, np.ndarray] = {}
        rate_change: dict[float, float] = {}
        for t, kind, amt, dur in events:
            if amt == 0.0:
                continue
            if kind == BOLUS_CENTRAL:
                boluses.setdefault(float(t), np.zeros(NS))[CENTRAL] += amt
            elif kind == BOLUS_DEPOT:
                ta = float(t) + p.tlag
                boluses.setdefault(ta, np.zeros(NS))[DEPOT] += amt * p.f_bio
            else:
                rate_change[float(t)] = rate_change.get(float(t), 0.0) + amt / dur
                te = float(t) + dur
                rate_change[te] = rate_change.get(te, 0.0) - amt / dur
        bps = sorted({0.0, t_end, *boluses, *rate_change, *(float(s) for s in stops)})
        bps = [b for b in bps if 0.0 <= b <= t_end]
        self.times = np.array(bps)
        self.pre = np.zeros((len(bps), NS))  # left limits
        self.post = np.zeros((len(bps), NS))  # right limits (after events)
        self.segments: list[Segment] = []
        y = np.zeros(NS)
        y[R] = p.baseline()
        rate = 0.0
        h_last = None  # restart each segment with the last accepted step (not at the event)
        for k, t in enumerate(bps):
            self.pre[k] = y
            if t in boluses:
                y = y + boluses[t]
            rate += rate_change.get(t, 0.0)
            if abs(rate) < 1e-12 * (1 + max(abs(v) for v in rate_change.values() or [0])):
                rate = 0.0
            self.post[k] = y
            if k + 1 < len(bps):
                y0 = y.copy()
                first = None if (t in boluses or t in rate_change) else h_last
                y, sol = _integrate(p, y0, t, bps[k + 1], rate, dense=True, first_step=first)
                if sol is not None and len(sol.ts) > 2:
                    h_last = sol.ts[-2] - sol.ts[-3]
                self.segments.append(Segment(t, bps[k + 1], y0, rate, sol))

    # --- values at segment ends ------------------------------------------------------------
    def at(self, t: float) -> np.ndarray:
        """Right-continuous state at a segment end ``t``."""
        k = int(np.argmin(np.abs(self.times - t)))
        assert abs(self.times[k] - t) < 1e-12 * max(1.0, t), "not a segment end"
        return self.post[k]

    def conc(self, t):
        return self.at(t)[CENTRAL] / self.p.v1

    def exact_state(self, seg: Segment, t: float) -> np.ndarray:
        """State inside a segment by a fresh integration from its start (not dense output)."""
        y, _ = _integrate(self.p, seg.y0, seg.t0, t, seg.rate)
        return y

    # --- window metrics --------------------------------------------------------------------
    def _window_segments(self, a, b):
        return [s for s in self.segments if s.t0 >= a - 1e-12 and s.t1 <= b + 1e-12]

    def extremum(self, q, a: float, b: float, sign: float, dq=None):
        """Max (sign=+1) or min (sign=-1) of ``q(y)`` over ``[a, b]`` (right limit at ``a``,
        left limit at ``b``) and its time."""
        ka = int(np.argmin(np.abs(self.times - a)))
        kb = int(np.argmin(np.abs(self.times - b)))
        best_v, best_t = -np.inf, np.nan
        cands = [(q(self.post[ka]), a), (q(self.pre[kb]), b)]
        for k in range(ka + 1, kb):
            cands += [(q(self.pre[k]), self.times[k]), (q(self.post[k]), self.times[k])]
        for v, t in cands:
            if sign * v > best_v:
                best_v, best_t = sign * v, t
        for seg in self._window_segments(a, b):
            ts = np.asarray(_sample_times(seg))
            ys = seg.sol(ts)
            vals = sign * np.asarray(q(ys))  # q is vectorized over samples
            j = int(np.argmax(vals))
            if j in (0, ts.size - 1):
                continue
            lo, hi = ts[j - 1], ts[j + 1]
            if dq is not None and dq(seg, lo) * sign > 0 and dq(seg, hi) * sign < 0:
                t_star = brentq(lambda t, s=seg: dq(s, t), lo, hi, xtol=1e-13, rtol=1e-15)
            else:
                r = minimize_scalar(
                    lambda t, s=seg: -sign * q(s.sol(t)),
                    bounds=(lo, hi),
                    method="bounded",
                    options={"xatol": 1e-10},
                )
                t_star = r.x
            v = sign * q(self.exact_state(seg, t_star))
            if v > best_v:
                best_v, best_t = v, t_star
        return sign * best_v, best_t

    def dconc(self, seg: Segment, t: float) -> float:
        return self.p.rhs(t, seg.sol(t), seg.rate)[CENTRAL] / self.p.v1

    def cmax(self, a, b):
        return self.extremum(lambda y: y[CENTRAL] / self.p.v1, a, b, 1.0, self.dconc)

    def cmin(self, a, b):
        return self.extremum(lambda y: y[CENTRAL] / self.p.v1, a, b, -1.0, self.dconc)

    def emax(self, a, b):
        return self.extremum(self.p.effect, a, b, 1.0)[0]

    def emin(self, a, b):
        return self.extremum(self.p.effect, a, b, -1.0)[0]

    def auc(self, a, b):
        return self.at(b)[AUC] - self.at(a)[AUC]

    def time_above(self, a, b, thr):
        total = 0.0
        for seg in self._window_segments(a, b):
            ts = np.asarray(_sample_times(seg))
            ys = seg.sol(ts)
            f = ys[CENTRAL] / self.p.v1 - thr
            f[0] = seg.y0[CENTRAL] / self.p.v1 - thr
            k1 = int(np.argmin(np.abs(self.times - seg.t1)))
            f[-1] = self.pre[k1][CENTRAL] / self.p.v1 - thr
            above = f >= 0
            # whole-segment integral of the indicator, crossings refined
            for j in range(ts.size - 1):
                if above[j] and above[j + 1]:
                    total += ts[j + 1] - ts[j]
                elif above[j] != above[j + 1]:

                    def g(t, s=seg):
                        return s.sol(t)[CENTRAL] / self.p.v1 - thr

                    tc = brentq(g, ts[j], ts[j + 1], xtol=1e-13, rtol=1e-15)
                    # one Newton polish with an exact (re-integrated) value
                    y = self.exact_state(seg, tc)
                    dc = self.p.rhs(tc, y, seg.rate)[CENTRAL] / self.p.v1
                    if dc != 0.0:
                        tc -= (y[CENTRAL] / self.p.v1 - thr) / dc
                    total += (ts[j + 1] - tc) if above[j + 1] else (tc - ts[j])
        return total


def patient_events(events, i: int):
    """Rows of an insilico EventTable for patient ``i`` as plain tuples."""
    return [
        (
            float(events.time_h[e]),
            int(events.kind[e]),
            float(events.amount_mg[i, e]),
            float(events.duration_h[e]),
        )
        for e in range(events.time_h.shape[0])
    ]


def rel_err(a, b, floor):
    """``|a - b| / max(|b|, floor)`` elementwise; ``b`` is the reference."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    return np.abs(a - b) / np.maximum(np.abs(b), floor)
