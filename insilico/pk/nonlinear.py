"""Michaelis–Menten elimination (alone or with linear) on the graded grid.

``central' = (linear part) - Vmax C / (Km + C)``; ``elim' = CL C + Vmax C / (Km + C)``. PK and
PD states are integrated together by Lawson's integrating-factor RK4: the linear part
(distribution, absorption, linear elimination, infusion input) is propagated exactly with the
same per-patient matrix exponentials as the linear path, and RK4 handles only the saturable
elimination and the PD state, so the linear part's stiffness does not limit the step.
Boluses are applied at nodes. Extrema between nodes are refined by a secant search on
``dC/dt`` with an RK4 re-integration from the node (16 substeps), so they do not depend on the
output grid.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from insilico.errors import SpecError
from insilico.pd.models import PDModel, irm_rhs
from insilico.pk.buffers import OutputBuffers
from insilico.pk.expm import expm_small, square_small
from insilico.pk.grid import GridOptions, build_grid
from insilico.pk.kernel import N_MET, hermite_extremum, pd_value
from insilico.pk.models import StateLayout, check_parameters, rate_matrices
from insilico.pk.regimen import BOLUS_DEPOT, INFUSION, EventTable
from insilico.pk.stream import as_bytes, store_value

SUBSTEPS = 16


@nb.njit(cache=True)
def _rhs(A, x, rate, central, elim, v1, cl, vmax, km, pd_kind, P, i, dx):
    S = x.shape[0] - 1  # last entry: PD state
    c = x[central] / v1
    mm = vmax * c / (km + c) if c > 0 else 0.0
    for r in range(S):
        acc = 0.0
        for k in range(S):
            acc += A[r, k] * x[k]
        dx[r] = acc
    dx[central] += rate - mm
    dx[elim] = cl * c + mm
    if pd_kind >= 4:
        dx[S] = irm_rhs(pd_kind, x[S], P[7, i] * c, P[2, i], P[3, i], P[4, i], P[5, i], P[6, i])
    else:
        dx[S] = 0.0


@nb.njit(cache=True)
def _rk4(A, x, rate, h, central, elim, v1, cl, vmax, km, pd_kind, P, i, k1, k2, k3, k4, tmp):
    n = x.shape[0]
    _rhs(A, x, rate, central, elim, v1, cl, vmax, km, pd_kind, P, i, k1)
    for r in range(n):
        tmp[r] = x[r] + 0.5 * h * k1[r]
    _rhs(A, tmp, rate, central, elim, v1, cl, vmax, km, pd_kind, P, i, k2)
    for r in range(n):
        tmp[r] = x[r] + 0.5 * h * k2[r]
    _rhs(A, tmp, rate, central, elim, v1, cl, vmax, km, pd_kind, P, i, k3)
    for r in range(n):
        tmp[r] = x[r] + h * k3[r]
    _rhs(A, tmp, rate, central, elim, v1, cl, vmax, km, pd_kind, P, i, k4)
    for r in range(n):
        x[r] += h / 6.0 * (k1[r] + 2.0 * k2[r] + 2.0 * k3[r] + k4[r])


@nb.njit(cache=True)
def _nl(x, central, elim, v1, vmax, km, pd_kind, P, i, out):
    """Nonlinear part N(x): saturable elimination and the PD state's derivative."""
    S = x.shape[0] - 1
    out[:] = 0.0
    c = x[central] / v1
    mm = vmax * c / (km + c) if c > 0 else 0.0
    out[central] = -mm
    out[elim] = mm
    if pd_kind >= 4:
        out[S] = irm_rhs(pd_kind, x[S], P[7, i] * c, P[2, i], P[3, i], P[4, i], P[5, i], P[6, i])


@nb.njit(cache=True)
def _flow(E, v, rate, aug, out):
    """``out = E v (+ E[:, S] rate)`` on the PK states; the PD state is carried unchanged."""
    S = out.shape[0] - 1
    for r in range(S):
        acc = 0.0
        for c in range(S):
            acc += E[r, c] * v[c]
        if aug:
            acc += E[r, S] * rate
        out[r] = acc
    out[S] = v[S]


@nb.njit(cache=True)
def _lawson_rk4(Eh, Eq, x, rate, aug, h, central, elim, v1, vmax, km, pd_kind, P, i, w):
    """One Lawson (integrating-factor) RK4 step: the linear part ``A`` (with infusion input)
    is propagated exactly by ``Eh = exp(A h)`` and ``Eq = exp(A h/2)``; RK4 handles only the
    nonlinear part (Lawson 1967, doi:10.1137/0704033)."""
    n = x.shape[0]
    a, b, c, d, lx, lq, u, t = w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]
    _flow(Eh, x, rate, aug, lx)
    _flow(Eq, x, rate, aug, lq)
    _nl(x, central, elim, v1, vmax, km, pd_kind, P, i, a)
    _flow(Eq, a, 0.0, False, t)
    for r in range(n):
        u[r] = lq[r] + 0.5 * h * t[r]
    _nl(u, central, elim, v1, vmax, km, pd_kind, P, i, b)
    for r in range(n):
        u[r] = lq[r] + 0.5 * h * b[r]
    _nl(u, central, elim, v1, vmax, km, pd_kind, P, i, c)
    _flow(Eq, c, 0.0, False, t)
    for r in range(n):
        u[r] = lx[r] + h * t[r]
    _nl(u, central, elim, v1, vmax, km, pd_kind, P, i, d)
    # x_new = lx + h/6 (Eh a + 2 Eq (b + c) + d)
    for r in range(n):
        u[r] = b[r] + c[r]
    _flow(Eq, u, 0.0, False, t)
    _flow(Eh, a, 0.0, False, u)
    for r in range(n):
        x[r] = lx[r] + h / 6.0 * (u[r] + 2.0 * t[r] + d[r])


@nb.njit(cache=True)
def _dcdt_at(A, x0, rate, s, central, elim, v1, cl, vmax, km, pd_kind, P, i, work):
    """dC/dt and C after integrating ``s`` hours (s may be negative) from ``x0``."""
    x = x0.copy()
    h = s / SUBSTEPS
    for _ in range(SUBSTEPS):
        _rk4(
            A,
            x,
            rate,
            h,
            central,
            elim,
            v1,
            cl,
            vmax,
            km,
            pd_kind,
            P,
            i,
            work[0],
            work[1],
            work[2],
            work[3],
            work[4],
        )
    _rhs(A, x, rate, central, elim, v1, cl, vmax, km, pd_kind, P, i, work[0])
    return work[0][central] / v1, x[central] / v1


@nb.njit(cache=True)
def _bisect(
    A,
    x0,
    rate,
    lo,
    hi,
    deriv,
    target,
    lo_positive,
    central,
    elim,
    v1,
    cl,
    vmax,
    km,
    pd_kind,
    P,
    i,
    work,
    tol,
):
    """Bisection for ``C(s) = target`` (or ``dC/dt(s) = target`` when ``deriv``) on
    ``[lo, hi]``, the sign at ``lo`` being ``lo_positive``; C from an RK4 re-integration."""
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        d, c = _dcdt_at(A, x0, rate, mid, central, elim, v1, cl, vmax, km, pd_kind, P, i, work)
        f = (d if deriv else c) - target
        if (f > 0) == lo_positive:
            lo = mid
        else:
            hi = mid
        if hi - lo < tol:
            break
    return 0.5 * (lo + hi)


@nb.njit(cache=True, nogil=True)
def nonlinear_kernel(  # noqa: C901  (one compiled loop nest: see the module docstring)
    A,
    v1,
    cl,
    vmax,
    km,
    central,
    depot,
    elim,
    node_h,
    ev_ptr,
    ev_idx,
    ev_action,
    amount,
    inv_dur,
    f_bio,
    pd_kind,
    P,
    pd0,
    out_node,
    want_state,
    win_a,
    win_b,
    win_thr,
    out_conc,
    out_effect,
    out_f32,
    out_state,
    met,
    sizes,
    size_src,
    step_k,
    half_k,
    aug,
):
    """Michaelis-Menten PK with PD, per patient; releases the GIL (see ``linear_kernel``)."""
    n, S, _ = A.shape
    Sa = S + 1 if aug else S
    K = sizes.shape[0]
    Ebank = np.empty((K, Sa, Sa))
    M = np.zeros((Sa, Sa))
    Etmp = np.empty((Sa, Sa))
    lw = np.empty((8, S + 1))
    G = node_h.shape[0]
    W = win_a.shape[0]
    n_out = out_node.shape[0]
    x = np.empty(S + 1)
    xprev = np.empty(S + 1)
    xg = np.empty(S + 1)
    work = np.empty((5, S + 1))
    for i in range(n):
        M[:, :] = 0.0
        M[:S, :S] = A[i]
        if aug:
            M[central, S] = 1.0
        for k in range(K):
            if size_src[k] < 0:
                expm_small(M * sizes[k], Etmp)
            else:
                square_small(Ebank[size_src[k]], Etmp)
            Ebank[k] = Etmp
        x[:] = 0.0
        x[S] = pd0[i]
        best = np.empty((W, 2))
        best_t = np.empty((W, 2))
        best_state = np.empty((W, 2, 2, S + 1))  # [w, m, side(pre/post), state]
        best_rate = np.empty((W, 2, 2))
        best_node = np.full((W, 2), -1)
        auc_a = np.zeros(W)
        t_above = np.zeros(W)
        e_ext = np.empty((W, 2))
        for w in range(W):
            best[w, 0] = -np.inf
            best[w, 1] = np.inf
            e_ext[w, 0] = np.inf
            e_ext[w, 1] = -np.inf
        r_inf = 0.0
        active = 0
        o = 0
        for g in range(G):
            xprev[:] = x
            rate_pre = r_inf
            for e in range(ev_ptr[g], ev_ptr[g + 1]):
                idx = ev_idx[e]
                act = ev_action[e]
                if act == 0:
                    x[central] += amount[i, idx]
                elif act == 1:
                    x[depot] += amount[i, idx] * f_bio[i]
                elif act == 2:
                    active += 1
                    r_inf += amount[i, idx] * inv_dur[idx]
                else:
                    active -= 1
                    r_inf -= amount[i, idx] * inv_dur[idx]
                    if active == 0:
                        r_inf = 0.0
            while o < n_out and out_node[o] == g:
                c = x[central] / v1[i]
                store_value(out_conc[i], o, c, out_f32)
                e = pd_value(pd_kind, P[7, i] * c, x[S], P, i)
                store_value(out_effect[i], o, e, out_f32)
                if want_state:
                    for r in range(S):
                        out_state[i, o, r] = x[r]
                o += 1
            for w in range(W):
                a_ = win_a[w]
                b_ = win_b[w]
                if g < a_ or g > b_:
                    continue
                for side in range(2):
                    if side == 0 and not (g > a_ or a_ == b_):
                        continue
                    if side == 1 and not (g < b_ or a_ == b_):
                        continue
                    xx = xprev if side == 0 else x
                    c = xx[central] / v1[i]
                    ev = pd_value(pd_kind, P[7, i] * c, xx[S], P, i)
                    e_ext[w, 0] = min(e_ext[w, 0], ev)
                    e_ext[w, 1] = max(e_ext[w, 1], ev)
                    for m in range(2):
                        if (m == 0 and c > best[w, 0]) or (m == 1 and c < best[w, 1]):
                            best[w, m] = c
                            best_t[w, m] = node_h[g]
                            best_node[w, m] = g
                            best_state[w, m, 0] = xprev
                            best_state[w, m, 1] = x
                            best_rate[w, m, 0] = rate_pre
                            best_rate[w, m, 1] = r_inf
                if g == a_:
                    auc_a[w] = x[S - 2]  # layout: ..., auc, elim
                if g == b_:
                    met[i, w, 4] = x[S - 2] - auc_a[w]
            if g == G - 1:
                break
            h = node_h[g + 1] - node_h[g]
            xg[:] = x
            _lawson_rk4(
                Ebank[step_k[g]],
                Ebank[half_k[g]],
                x,
                r_inf,
                aug,
                h,
                central,
                elim,
                v1[i],
                vmax[i],
                km[i],
                pd_kind,
                P,
                i,
                lw,
            )
            if pd_kind >= 4 and W > 0:
                # response extremum inside the step: cubic Hermite on R and dR/dt at both ends
                # (error O(h^4), h <= 1/8 h on the default grid)
                S_ = x.shape[0] - 1
                d0 = irm_rhs(
                    pd_kind,
                    xg[S_],
                    P[7, i] * xg[central] / v1[i],
                    P[2, i],
                    P[3, i],
                    P[4, i],
                    P[5, i],
                    P[6, i],
                )
                d1 = irm_rhs(
                    pd_kind,
                    x[S_],
                    P[7, i] * x[central] / v1[i],
                    P[2, i],
                    P[3, i],
                    P[4, i],
                    P[5, i],
                    P[6, i],
                )
                if d0 * d1 < 0.0:
                    v = hermite_extremum(xg[S_], d0, x[S_], d1, h)
                    for w in range(W):
                        if g < win_a[w] or g >= win_b[w]:
                            continue
                        e_ext[w, 0] = min(e_ext[w, 0], v)
                        e_ext[w, 1] = max(e_ext[w, 1], v)
            for w in range(W):
                thr = win_thr[w]
                if not (thr == thr) or g < win_a[w] or g >= win_b[w]:
                    continue
                c0 = xg[central] / v1[i]
                c1 = x[central] / v1[i]
                if c0 >= thr and c1 >= thr:
                    t_above[w] += h
                elif (c0 >= thr) != (c1 >= thr):
                    s = _bisect(
                        A[i],
                        xg,
                        r_inf,
                        0.0,
                        h,
                        False,
                        thr,
                        c0 > thr,
                        central,
                        elim,
                        v1[i],
                        cl[i],
                        vmax[i],
                        km[i],
                        pd_kind,
                        P,
                        i,
                        work,
                        1e-12,
                    )
                    t_above[w] += s if c0 >= thr else h - s
        for w in range(W):
            for m in range(2):
                g = best_node[w, m]
                sign = 1.0 if m == 0 else -1.0
                for side in range(2):
                    if g < 0 or (side == 1 and g >= win_b[w]) or (side == 0 and g <= win_a[w]):
                        continue
                    xs = best_state[w, m, side].copy()
                    rr = best_rate[w, m, side]
                    lo, hi = (
                        (node_h[g - 1] - node_h[g], 0.0)
                        if side == 0
                        else (0.0, node_h[g + 1] - node_h[g])
                    )
                    dlo, _ = _dcdt_at(
                        A[i],
                        xs,
                        rr,
                        lo,
                        central,
                        elim,
                        v1[i],
                        cl[i],
                        vmax[i],
                        km[i],
                        pd_kind,
                        P,
                        i,
                        work,
                    )
                    dhi, _ = _dcdt_at(
                        A[i],
                        xs,
                        rr,
                        hi,
                        central,
                        elim,
                        v1[i],
                        cl[i],
                        vmax[i],
                        km[i],
                        pd_kind,
                        P,
                        i,
                        work,
                    )
                    if not (dlo * sign > 0 and dhi * sign < 0):
                        continue
                    s = _bisect(
                        A[i],
                        xs,
                        rr,
                        lo,
                        hi,
                        True,
                        0.0,
                        sign > 0,
                        central,
                        elim,
                        v1[i],
                        cl[i],
                        vmax[i],
                        km[i],
                        pd_kind,
                        P,
                        i,
                        work,
                        1e-10,
                    )
                    _, v = _dcdt_at(
                        A[i],
                        xs,
                        rr,
                        s,
                        central,
                        elim,
                        v1[i],
                        cl[i],
                        vmax[i],
                        km[i],
                        pd_kind,
                        P,
                        i,
                        work,
                    )
                    if (v - best[w, m]) * sign > 0:
                        best[w, m] = v
                        best_t[w, m] = node_h[g] + s
                met[i, w, 2 * m] = best[w, m]
                met[i, w, 2 * m + 1] = best_t[w, m]
            met[i, w, 5] = t_above[w]
            met[i, w, 6] = e_ext[w, 0]
            met[i, w, 7] = e_ext[w, 1]


def simulate_nonlinear(
    model,
    params,
    events: EventTable,
    output_times_h,
    pd,
    windows,
    grid_options,
    return_states,
    buffers=None,
    dtype=np.float64,
):
    """Michaelis–Menten path of :func:`insilico.pk.simulate.simulate` (same arguments)."""
    from insilico.pk.simulate import (
        SimulationResult,
        collect_metrics,
        node_events,
        size_sources,
    )

    pd = pd or PDModel()
    if pd.effect_compartment:
        raise SpecError(
            "pd.effect_compartment",
            True,
            "false with Michaelis-Menten elimination (not implemented yet)",
        )
    n = events.n_patients
    out_t = np.unique(np.asarray(output_times_h, dtype=float).reshape(-1))
    if out_t.size == 0 or np.any(~np.isfinite(out_t)) or np.any(out_t < 0):
        raise SpecError("output_times_h", out_t[:5].tolist(), "finite times >= 0 h")
    if events.steady_state_interval_h > 0:
        raise SpecError("regimen", "ss", "no 'ss' with Michaelis-Menten elimination")
    has_depot = bool(np.any(events.kind == BOLUS_DEPOT))
    layout = StateLayout.for_model(model, has_depot, False, True)
    p = check_parameters(dict(params), model.required_parameters(has_depot), n)
    f_bio = np.broadcast_to(np.asarray(params.get("f_bio", 1.0), dtype=float), (n,)).copy()
    tlag = np.broadcast_to(np.asarray(params.get("tlag_h", 0.0), dtype=float), (n,))
    if n and np.any(tlag != tlag[0]):
        raise SpecError(
            "params.tlag_h",
            "per-patient values",
            "one lag time for all patients with Michaelis-Menten elimination",
        )
    P = pd.pack(dict(params), n)
    A = rate_matrices(model, layout, p, n)
    cl = p.get("cl_L_per_h", np.zeros(n))
    # the linear part of the eliminated amount, propagated exactly with the rest
    A[:, layout.elim, layout.central] = np.asarray(cl, dtype=float) / p["v1_L"]
    vmax, km = p["vmax_mg_per_h"], p["km_mg_per_L"]
    node_ev = node_events(events, float(tlag[0]) if (has_depot and n) else 0.0)
    ev_times = np.array([ev[0] for ev in node_ev], dtype=float)
    windows = list(windows)
    win_times = np.array([t for w in windows for t in (w.start_h, w.end_h)], dtype=float)
    hard = np.concatenate([[0.0], out_t, ev_times, win_times])
    # Lawson RK4: the linear part is exact; the saturable part is integrated by RK4, so the
    # default grid is finer than the linear path's (measured against Radau rtol 1e-10: below
    # 1e-6 relative on the random patients of tests/pk/test_against_radau.py). The grid never
    # depends on the patients' parameters (bit-identical results whatever the chunking).
    h0, hmax, per = (grid_options or GridOptions()).resolved((1.0 / 64.0, 0.125, 4)).step_control()
    grid = build_grid(
        hard,
        np.concatenate([ev_times, events.time_h]),
        GridOptions(min(h0, hmax), hmax, per),
        start_h=[float(ev_times.min())] if ev_times.size else (),
    )
    node_idx = grid.index_of(ev_times) if ev_times.size else np.zeros(0, dtype=np.int64)
    ev_ptr = np.cumsum(np.concatenate([[0], np.bincount(node_idx, minlength=grid.n_nodes)]))
    ev_idx = np.array([ev[1] for ev in node_ev], dtype=np.int64)
    ev_action = np.array([ev[2] for ev in node_ev], dtype=np.int64)
    dur = events.duration_h
    inv_dur = np.where(dur > 0, 1.0 / np.where(dur > 0, dur, 1.0), 0.0)
    W = len(windows)
    win_a = grid.index_of([w.start_h for w in windows]) if W else np.zeros(0, np.int64)
    win_b = grid.index_of([w.end_h for w in windows]) if W else np.zeros(0, np.int64)
    win_thr = np.array([w.threshold_mg_per_L for w in windows], dtype=float)
    take = (buffers or OutputBuffers()).take
    out_conc = take("conc", (n, out_t.size), dtype)
    out_eff = take("effect", (n, out_t.size), dtype)
    out_state = np.empty((n, out_t.size, layout.size)) if return_states else np.empty((1, 1, 1))
    met = np.full((n, W, N_MET), np.nan)
    nonlinear_kernel(
        A,
        p["v1_L"],
        np.asarray(cl, dtype=float),
        vmax,
        km,
        layout.central,
        layout.depot,
        layout.elim,
        grid.node_h,
        ev_ptr.astype(np.int64),
        ev_idx,
        ev_action,
        np.ascontiguousarray(events.amount_mg),
        inv_dur,
        f_bio,
        pd.code,
        P,
        pd.baseline(P),
        grid.index_of(out_t),
        return_states,
        win_a.astype(np.int64),
        win_b.astype(np.int64),
        win_thr,
        as_bytes(out_conc),
        as_bytes(out_eff),
        dtype == np.float32,
        out_state,
        met,
        grid.sizes_h,
        size_sources(grid.sizes_h),
        grid.step_size_index,
        grid.half_size_index,
        bool(np.any(events.kind == INFUSION)),
    )
    result = SimulationResult(out_t, out_conc, out_eff if pd.kind != "none" else None)
    collect_metrics(result, windows, met, pd)
    if return_states:
        for name in ("depot", "central", "periph2", "periph3"):
            j = getattr(layout, name)
            if j >= 0:
                result.states[f"{name}_mg"] = out_state[:, :, j]
        result.states["eliminated_mg"] = out_state[:, :, layout.elim]
    return result
