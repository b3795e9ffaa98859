"""Batched simulation of PK/PD twins: the public entry point of the simulation core.

Linear PK is stepped exactly: between grid nodes the system ``x' = A x + e_c R`` has constant
input, so each step is a per-patient matrix exponential (one exponential per patient at the
smallest step size, squared up the dyadic ladder of step sizes). Indirect responses are
integrated on the same graded grid, fed by the exact PK solution inside each step: I and III
(forcing independent of R) by exponential 4-point Lobatto quadrature, II and IV (linear in R
with a loss rate that depends on C) by the same quadrature of their whole rate;
Michaelis–Menten elimination by Lawson RK4 (:mod:`insilico.pk.nonlinear`). Extrema (Cmax,
Cmin) and threshold crossings between nodes come from the exact Taylor expansion of ``C(t)``
about the nearest node (linear models), so they do not depend on the output grid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numba as nb
import numpy as np

from insilico.errors import SpecError
from insilico.pd.models import PDModel
from insilico.pk.buffers import OutputBuffers
from insilico.pk.grid import (
    DEFAULT_GRID,
    DEFAULT_RATE_LOBATTO,
    DEFAULT_STIMULATION,
    Grid,
    GridOptions,
    build_grid,
    distinct_sizes,
    nearest_size,
)
from insilico.pk.kernel import (
    LOBATTO_A,
    METRICS,
    N_MET,
    TRACK_AUC,
    TRACK_C,
    TRACK_EMAX,
    TRACK_EMIN,
    cold_helper_types,
    cold_helpers,
    kernel_variant,
)
from insilico.pk.models import PKModel, StateLayout, check_parameters, rate_matrices
from insilico.pk.precompile import compile_kernel
from insilico.pk.regimen import BOLUS_CENTRAL, BOLUS_DEPOT, INFUSION, EventTable
from insilico.pk.steps import STEP_TYPE, step_function
from insilico.pk.stream import as_bytes


@dataclass(frozen=True)
class Window:
    """A time window for exposure metrics.

    Attributes
    ----------
    start_h, end_h : float
        Window bounds (h). ``end_h`` may equal a dose time: the trough is the value just before
        that dose.
    threshold_mg_per_L : float
        Concentration for ``time_above`` (NaN: not computed).
    name : str
        Suffix of the metric names (``cmax_mg_per_L_<name>``).
    metrics : tuple of str or None
        The metrics to report (names of :data:`WINDOW_METRICS`); None: all of them. Asking
        for fewer saves work: a window without ``cmax``/``tmax``/``cmin``/``tmin`` does not
        track the concentration's extrema, and one without ``emin``/``emax`` does not track
        those of an indirect response (on the reference workload, the whole run asked for
        ``emin`` only and the last interval for ``cmax``/``cmin``/``auc``: about a third of
        the kernel's time saved).
    """

    start_h: float
    end_h: float
    threshold_mg_per_L: float = float("nan")
    name: str = ""
    metrics: tuple[str, ...] | None = None

    def __post_init__(self):
        if not (np.isfinite(self.start_h) and np.isfinite(self.end_h)) or self.start_h < 0:
            raise SpecError("window.start_h", self.start_h, "a finite time >= 0 h")
        if self.end_h < self.start_h:
            raise SpecError("window.end_h", self.end_h, f"a time >= start_h ({self.start_h} h)")
        if self.metrics is None:
            return
        if isinstance(self.metrics, str):
            raise SpecError("window.metrics", self.metrics, "a list of metric names")
        object.__setattr__(self, "metrics", tuple(self.metrics))
        for m in self.metrics:
            if m not in WINDOW_METRICS:
                raise SpecError("window.metrics", m, f"one of {', '.join(WINDOW_METRICS)}")
        above = "time_above" in self.metrics
        if above != bool(np.isfinite(self.threshold_mg_per_L)):
            raise SpecError(
                "window.metrics",
                list(self.metrics),
                "'time_above' exactly when threshold_mg_per_L is given",
            )

    def wants(self, metric: str) -> bool:
        """Whether ``metric`` (a name of :data:`WINDOW_METRICS`) is reported."""
        return self.metrics is None or metric in self.metrics


#: Metrics a window can report (``Window.metrics``).
WINDOW_METRICS = (*METRICS, "cavg")

METRIC_UNITS = {
    "cmax": "cmax_mg_per_L",
    "tmax": "tmax_h",
    "cmin": "cmin_mg_per_L",
    "tmin": "tmin_h",
    "auc": "auc_mg_h_per_L",
    "time_above": "time_above_h",
    "emin": "effect_min",
    "emax": "effect_max",
}


@dataclass
class SimulationResult:
    """What :func:`simulate` returns.

    Attributes
    ----------
    time_h : ndarray, shape (n_times,)
    conc_mg_per_L : ndarray, shape (n_patients, n_times)
        Central (plasma) concentration, right-continuous at dose times (float64, or float32
        with ``simulate(..., output_dtype="float32")``, as ``effect``).
    effect : ndarray, shape (n_patients, n_times) or None
        PD response (direct effect or indirect-response state).
    metrics : dict of str to ndarray, shape (n_patients,)
        ``<metric>_<unit>_<window name>`` for each window, plus ``cavg_mg_per_L_<name>`` and,
        for linear models, ``auc_0_inf_mg_h_per_L`` (AUC to the last node plus the drug still
        in the body divided by CL: exact for linear elimination).
    states : dict of str to ndarray, shape (n_patients, n_times)
        Amounts (mg) per compartment and ``eliminated_mg`` (only with ``return_states``).
    """

    time_h: np.ndarray
    conc_mg_per_L: np.ndarray
    effect: np.ndarray | None
    metrics: dict[str, np.ndarray] = field(default_factory=dict)
    states: dict[str, np.ndarray] = field(default_factory=dict)
    bioavailable_dose_mg: np.ndarray | None = None


def collect_metrics(result: SimulationResult, windows: list[Window], met: np.ndarray, pd) -> None:
    """Name the kernel's per-window metrics (``met``: (n, n_windows, N_MET)) into ``result``."""
    for w, win in enumerate(windows):
        suffix = f"_{win.name}" if win.name else f"_{w}"
        for k, m in enumerate(METRICS):
            if m == "time_above" and not np.isfinite(win.threshold_mg_per_L):
                continue
            if (m in ("emin", "emax") and pd.kind == "none") or not win.wants(m):
                continue
            result.metrics[METRIC_UNITS[m] + suffix] = met[:, w, k]
        length = win.end_h - win.start_h
        if length > 0 and win.wants("cavg"):
            result.metrics["cavg_mg_per_L" + suffix] = met[:, w, 4] / length


def _window_tracking(windows: list[Window], pd: PDModel, ce_twins: bool) -> np.ndarray:
    """What ``linear_kernel`` tracks at every node for each of its windows (the effect-
    compartment twins last, see :func:`simulate`): bits ``TRACK_C`` (the extrema of C; a
    twin: of Ce), ``TRACK_EMIN`` and ``TRACK_EMAX`` (of an indirect response), ``TRACK_AUC``
    (the AUC, for ``auc`` and ``cavg``). A direct effect's extrema are those of C (or of Ce,
    through the twin): no tracking of their own."""
    wants_c = [any(w.wants(m) for m in ("cmax", "tmax", "cmin", "tmin")) for w in windows]
    auc = [TRACK_AUC * (w.wants("auc") or w.wants("cavg")) for w in windows]
    if pd.kind.startswith("irm"):
        track = [
            (TRACK_C if c else 0)
            | (TRACK_EMIN if w.wants("emin") else 0)
            | (TRACK_EMAX if w.wants("emax") else 0)
            for w, c in zip(windows, wants_c, strict=True)
        ]
        return np.array(track, dtype=np.int64) | np.array(auc, dtype=np.int64)
    wants_e = [pd.kind != "none" and (w.wants("emin") or w.wants("emax")) for w in windows]
    if ce_twins:
        track = [TRACK_C * c for c in wants_c] + [TRACK_C * e for e in wants_e]
        auc = auc + [0] * len(windows)
    else:
        track = [TRACK_C * (c or e) for c, e in zip(wants_c, wants_e, strict=True)]
    return np.array(track, dtype=np.int64) | np.array(auc, dtype=np.int64)


def node_events(events: EventTable, shift_depot_h: float):
    """(time, event index, action) for every node event, sorted by time."""
    out = []
    for e, (t, kind, dur) in enumerate(
        zip(events.time_h, events.kind, events.duration_h, strict=True)
    ):
        if kind == BOLUS_CENTRAL:
            out.append((t, e, 0))
        elif kind == BOLUS_DEPOT:
            out.append((t + shift_depot_h, e, 1))
        elif kind == INFUSION:
            out.append((t, e, 2))
            out.append((t + dur, e, 3))
    # at equal times: infusion ends before starts (rate bookkeeping), boluses any order
    out.sort(key=lambda x: (x[0], 0 if x[2] == 3 else 1, x[1]))
    return out


#: A transition matrix is squared from its half at most this many times in a row before a
#: fresh exponential is computed (each squaring can double the relative rounding error).
MAX_SQUARINGS = 6
#: The same for the transitions to the inner Lobatto points, which only feed the forcing of
#: the response (a relative error of 2^14 ulp, ~4e-12, is far below the quadrature's): their
#: chains then start from 2 exponentials instead of 4 (an exponential costs ~0.2-0.4 µs per
#: patient, a squaring ~0.02 µs).
MAX_SQUARINGS_INNER = 14


def _linear_kernel(args: tuple, plain: bool) -> None:
    """Call :func:`linear_kernel`, its last two arguments (the layout's steps, not compiled
    yet) typed as function pointers: numba would otherwise type each step function as its own
    type and compile the kernel once per layout, with that layout's code linked in. The
    kernel's rarely run helpers follow as a tuple of function pointers (:func:`cold_helpers`).
    The first call compiles them all (:func:`insilico.pk.precompile.compile_kernel`).
    ``plain``: the call needs no indirect response, lag or threshold
    (:func:`kernel_variant`)."""
    sig = tuple(nb.typeof(a) for a in args[:-2])
    sig += (STEP_TYPE, STEP_TYPE, cold_helper_types(plain))
    kernel = kernel_variant(plain)
    cres = kernel.overloads.get(sig)
    if cres is None:  # compiled or loaded from the cache, on two cores when cold
        cres = compile_kernel(kernel, sig, plain, args[-2:])
    cres.entry_point(*args, cold_helpers(plain))


def _step_sizes(grid: Grid, lobatto: bool):
    """The step sizes whose transitions the kernel needs, and per step the index of its size,
    of its half and of its two inner Lobatto points (``LOBATTO_A h`` and ``(1 - LOBATTO_A) h``;
    the half twice when not ``lobatto``)."""
    if not lobatto:
        half = grid.half_size_index
        return grid.sizes_h, grid.step_size_index, half, np.stack([half, half], axis=1)
    steps = np.diff(grid.node_h)
    inner = np.stack([LOBATTO_A * steps, (1.0 - LOBATTO_A) * steps], axis=1)
    sizes = distinct_sizes(np.concatenate([grid.sizes_h, inner.ravel()]))
    step_k = nearest_size(sizes, steps)
    half_k = nearest_size(sizes, steps / 2.0)
    return sizes, step_k, half_k, nearest_size(sizes, inner)


def size_sources(sizes: np.ndarray, inner_only: np.ndarray | None = None) -> np.ndarray:
    """For each step size, the index of its half (square it) or -1 (compute ``expm``).
    Sizes with ``inner_only`` (inner Lobatto points, not steps) may be squared
    :data:`MAX_SQUARINGS_INNER` times in a row when their half is inner-only too."""
    src = np.full(sizes.size, -1, dtype=np.int64)
    depth = np.zeros(sizes.size, dtype=np.int64)
    for k in range(sizes.size):
        half = sizes[k] / 2.0
        j = np.searchsorted(sizes, half)
        for jj in (j - 1, j):
            if not (0 <= jj < k and abs(sizes[jj] - half) <= 1e-13 * sizes[k]):
                continue
            deep = inner_only is not None and inner_only[k] and inner_only[jj]
            if depth[jj] < (MAX_SQUARINGS_INNER if deep else MAX_SQUARINGS):
                src[k] = jj
                depth[k] = depth[jj] + 1
    return src


def simulate(
    model: PKModel,
    params: Mapping[str, np.ndarray | float],
    events: EventTable,
    output_times_h: Sequence[float] | np.ndarray,
    pd: PDModel | None = None,
    windows: Sequence[Window] = (),
    grid_options: GridOptions | None = None,
    return_states: bool = False,
    block: int = 1000,
    buffers: OutputBuffers | None = None,
    output_dtype: str | np.dtype | type = "float64",
) -> SimulationResult:
    """Simulate every patient of a block under its dosing events.

    Parameters
    ----------
    model : PKModel
        Compartment model.
    params : mapping of str to ndarray, shape (n_patients,) or scalar
        Individual parameters (names in :data:`insilico.pk.models.PARAMETERS` and the PD
        names of :data:`insilico.pd.models.REQUIRED`, plus ``fu``).
    events : EventTable
        Dosing events with per-patient amounts (mg).
    output_times_h : array_like
        Output grid (h), >= 0.
    pd : PDModel, optional
        Pharmacodynamic model driven by ``fu * C`` (or ``fu * Ce``).
    windows : sequence of Window
        Windows for exposure metrics.
    grid_options : GridOptions, optional
        Step control of the integration grid.
    return_states : bool
        Also return amounts in every compartment and the cumulative eliminated amount.
    block : int
        Patients per compiled mini-block (memory/cache trade-off only; results do not depend
        on it). Measured on the reference workload of ``benchmarks/bench_engine.py``: 512 was
        the slowest size near it (496-536: 9.4-9.8 against 10.9 µs per patient, stepping
        only), as expected when the rows of the per-patient transition matrices are exactly
        4,096 bytes apart and contend for the same L1 cache sets; 1,000-1,500 were faster
        still (8.5-9.0 µs; the per-node work outside the step is spread over more patients),
        and with hourly outputs 1,000 ran 12 % faster than 512. Beyond ~2,000 no gain.
    buffers : OutputBuffers, optional
        Memory for the time courses (``conc_mg_per_L`` and ``effect``), reused from call to
        call when the caller no longer holds an earlier result; for loops over chunks
        (:mod:`insilico.pk.buffers`). Results do not depend on it.
    output_dtype : {"float64", "float32"} or numpy dtype
        Precision of the time courses (``conc_mg_per_L``, ``effect``). The kernel computes in
        float64 either way and rounds each value once when it stores it, so float32 time
        courses are exactly the float64 ones rounded (relative error <= 6e-8); metrics and
        states stay float64. Half the memory and memory traffic: hourly C and R over 28
        days take about 5 % less time per patient (``benchmarks/bench_engine.py`` prints
        both rates). Both precisions run the same
        compiled kernel (its outputs are passed as bytes, :mod:`insilico.pk.stream`).
    """
    dtype = _output_dtype(output_dtype)
    if not model.is_linear:
        from insilico.pk.nonlinear import simulate_nonlinear

        return simulate_nonlinear(
            model,
            params,
            events,
            output_times_h,
            pd,
            windows,
            grid_options,
            return_states,
            buffers,
            dtype,
        )
    pd = pd or PDModel()
    n = events.n_patients
    out_t = np.asarray(output_times_h, dtype=float).reshape(-1)
    if out_t.size == 0 or np.any(~np.isfinite(out_t)) or np.any(out_t < 0):
        raise SpecError("output_times_h", out_t[:5].tolist(), "finite times >= 0 h")
    out_t = np.unique(out_t)
    has_depot = bool(np.any(events.kind == BOLUS_DEPOT))
    has_inf = bool(np.any(events.kind == INFUSION))
    layout = StateLayout.for_model(model, has_depot, pd.effect_compartment, False)
    names = model.required_parameters(has_depot)
    if pd.effect_compartment:
        names.append("ke0_per_h")
    p = check_parameters(dict(params), names, n)
    f_bio = np.broadcast_to(np.asarray(params.get("f_bio", 1.0), dtype=float), (n,)).copy()
    if np.any(~np.isfinite(f_bio)) or np.any((f_bio < 0) | (f_bio > 1)):
        raise SpecError("params.f_bio", float(np.nanmax(f_bio)), "0 <= f_bio <= 1")
    tlag = np.broadcast_to(np.asarray(params.get("tlag_h", 0.0), dtype=float), (n,)).copy()
    if np.any(~np.isfinite(tlag)) or np.any(tlag < 0):
        raise SpecError("params.tlag_h", float(np.nanmin(tlag)), "lag times >= 0 h")
    P = pd.pack(dict(params), n)
    A = rate_matrices(model, layout, p, n)

    # Lag times: absorption starts at dose + tlag. Depot doses are never node events of the
    # table; each patient's arrival is applied exactly by the kernel (at a node when it falls
    # on one, inside the step otherwise). The grid is graded after dose + each *declared*
    # lag (GridOptions.lag_offsets_h, or a scalar tlag_h), never after the patients' own
    # values, so a patient's result does not depend on which patients share the call.
    # forcing independent of R (IRM I, III): exponential Lobatto quadrature on the coarse
    # default grid, as PK alone; IRM II and IV: Lobatto quadrature of the loss rate on a
    # finer one. Both take the concentration at the steps' inner Lobatto points.
    lobatto = pd.code in (4, 6)
    rate_lobatto = pd.code in (5, 7)
    default = (
        DEFAULT_RATE_LOBATTO
        if rate_lobatto
        else (DEFAULT_STIMULATION if pd.code == 6 else DEFAULT_GRID)
    )
    opts = (grid_options or GridOptions()).resolved(default)
    h0_h, hmax_h, steps_per_level = opts.step_control()
    offsets = list(opts.lag_offsets_h)
    if np.ndim(params.get("tlag_h", 0.0)) == 0 and float(params.get("tlag_h", 0.0)) > 0:
        offsets.append(float(params["tlag_h"]))
    lag_mode = 1 if (has_depot and np.any(tlag != 0.0)) else 0
    node_ev = [ev for ev in node_events(events, 0.0) if not (lag_mode == 1 and ev[2] == 1)]
    dep_idx = np.flatnonzero(events.kind == BOLUS_DEPOT)
    dep_times = events.time_h[dep_idx].astype(float)
    arrivals = np.concatenate([dep_times + off for off in offsets]) if offsets else np.zeros(0)
    ev_times = np.array([ev[0] for ev in node_ev], dtype=float)
    windows = list(windows)
    win_times = np.array([t for w in windows for t in (w.start_h, w.end_h)], dtype=float)
    hard = np.concatenate([[0.0], out_t, ev_times, win_times, arrivals])
    refine_at = np.concatenate([ev_times, events.time_h, arrivals])
    # A Hill term C^h with a non-integer h is not smooth where C starts from 0, so the grid
    # is graded geometrically after drug first enters, but only for PD models that carry a
    # Hill exponent (sigmoid Emax; an indirect response given ``hill``): a property of the
    # call's specification, never of the patients' values. Without it the grading's 22 tiny
    # step sizes cost more set-up than the rest of the grid (~1 µs per patient).
    hill_pd = pd.kind == "sigmoid_emax" or (pd.has_state and "hill" in params)
    first = [float(events.time_h.min())] if hill_pd and events.time_h.size else []
    if hill_pd and dep_times.size and offsets:
        first += [float(dep_times.min()) + off for off in offsets]  # first absorption start
    grid = build_grid(hard, refine_at, opts, start_h=first)
    sizes, step_k, half_k, inner_k = _step_sizes(grid, lobatto or rate_lobatto)
    inner_only = np.ones(sizes.size, dtype=bool)
    inner_only[step_k] = False
    inner_only[half_k] = False
    size_src = size_sources(sizes, inner_only)

    node_idx = grid.index_of(ev_times) if ev_times.size else np.zeros(0, dtype=np.int64)
    ev_ptr = np.zeros(grid.n_nodes + 1, dtype=np.int64)
    np.add.at(ev_ptr, node_idx + 1, 1)
    ev_ptr = np.cumsum(ev_ptr)
    ev_idx = np.array([ev[1] for ev in node_ev], dtype=np.int64)
    ev_action = np.array([ev[2] for ev in node_ev], dtype=np.int64)
    inv_dur = np.where(
        events.duration_h > 0, 1.0 / np.where(events.duration_h > 0, events.duration_h, 1.0), 0.0
    )

    out_node = grid.index_of(out_t)
    W = len(windows)
    # a direct effect through an effect compartment is a monotone function of Ce: each window
    # gets a twin that tracks (and refines) the extrema of Ce instead of C
    ce_twins = pd.kind in ("linear", "emax", "sigmoid_emax") and pd.effect_compartment
    internal = windows + (windows if ce_twins else [])
    n_win = len(internal)
    win_a = grid.index_of([w.start_h for w in internal]) if n_win else np.zeros(0, np.int64)
    win_b = grid.index_of([w.end_h for w in internal]) if n_win else np.zeros(0, np.int64)
    win_thr = np.array(
        [w.threshold_mg_per_L for w in windows] + [np.nan] * (n_win - W), dtype=float
    )
    win_obs = np.array([-1] * W + [layout.ce] * (n_win - W), dtype=np.int64)
    win_track = _window_tracking(windows, pd, ce_twins)

    x0 = np.zeros((n, layout.size))
    if events.steady_state_interval_h > 0:
        x0 = _steady_state(model, layout, params, events, A, grid_options, pd)

    pd0 = pd.baseline(P)
    # the kernel writes (n_times, n_patients) with patients contiguous; callers get the
    # transposed view (n_patients, n_times)
    take = (buffers or OutputBuffers()).take
    out_conc = take("conc", (out_t.size, n), dtype)
    out_eff = take("effect", (out_t.size, n if pd.kind != "none" else 0), dtype)
    out_state = np.empty((n, out_t.size, layout.size)) if return_states else np.empty((1, 1, 1))
    met = np.full((n, n_win, N_MET), np.nan)
    irm = pd.code >= 4  # an indirect response: the kernel and steps that step it
    args = (
        A,
        p["v1_L"],
        layout.central,
        layout.depot,
        layout.ce,
        layout.auc,
        has_inf,
        sizes,
        size_src,
        grid.node_h,
        step_k,
        half_k,
        inner_k,
        ev_ptr,
        ev_idx,
        ev_action,
        np.ascontiguousarray(events.amount_mg),
        inv_dur,
        f_bio,
        lag_mode,
        tlag,
        float(h0_h),
        float(hmax_h),
        float(steps_per_level * hmax_h),
        dep_times,
        dep_idx.astype(np.int64),
        x0,
        pd.code,
        P,
        pd0,
        out_node,
        return_states,
        win_a.astype(np.int64),
        win_b.astype(np.int64),
        win_thr,
        win_obs,
        win_track,
        int(block),
        as_bytes(out_conc),
        as_bytes(out_eff),
        dtype == np.float32,
        out_state,
        met,
        step_function(layout.size, layout.depot, has_inf, irm=irm, compiled=False),
        step_function(layout.size, layout.depot, has_inf, auc=False, irm=irm, compiled=False),
    )
    plain = not irm and lag_mode == 0 and bool(np.all(np.isnan(win_thr)))
    _linear_kernel(args, plain)
    if pd.kind in ("linear", "emax", "sigmoid_emax"):
        # a direct effect is a monotone function of C (or Ce): its extrema are those of C (Ce)
        src = met[:, W:, :] if ce_twins else met[:, :W, :]
        lo = _direct_effect_np(pd.code, P[7][:, None] * src[:, :, 2], P)
        hi = _direct_effect_np(pd.code, P[7][:, None] * src[:, :, 0], P)
        met[:, :W, 6] = np.minimum(lo, hi)
        met[:, :W, 7] = np.maximum(lo, hi)
    result = SimulationResult(out_t, out_conc.T, out_eff.T if pd.kind != "none" else None)
    is_depot = events.kind == BOLUS_DEPOT
    result.bioavailable_dose_mg = events.amount_mg[:, ~is_depot].sum(axis=1) + f_bio * (
        events.amount_mg[:, is_depot].sum(axis=1)
    )
    result.metrics["auc_0_inf_mg_h_per_L"] = result.bioavailable_dose_mg / p["cl_L_per_h"]
    collect_metrics(result, windows, met, pd)
    if return_states:
        for name in ("depot", "central", "periph2", "periph3"):
            i = getattr(layout, name)
            if i >= 0:
                result.states[f"{name}_mg"] = out_state[:, :, i]
        result.states["eliminated_mg"] = out_state[:, :, layout.auc] * p["cl_L_per_h"][:, None]
        if layout.ce >= 0:
            result.states["ce_mg_per_L"] = out_state[:, :, layout.ce]
    return result


def _output_dtype(output_dtype) -> np.dtype:
    """The numpy dtype of ``simulate``'s ``output_dtype``: "float64" or "float32", or
    anything ``numpy.dtype`` reads as one of them (``np.float32``)."""
    try:
        name = np.dtype(output_dtype).name if output_dtype is not None else ""
    except TypeError:
        name = ""
    if name not in ("float64", "float32"):
        raise SpecError("output_dtype", output_dtype, "'float64' or 'float32'")
    return np.dtype(name)


def _direct_effect_np(code: int, cu: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Direct effect (kinds 1-3) of unbound concentrations ``cu``, shape (n, W)."""
    e0, slope, emax, c50, hill = (P[k][:, None] for k in range(5))
    if code == 1:
        return e0 + slope * cu
    h = 1.0 if code == 2 else hill
    r = (np.maximum(cu, 0.0) / c50) ** h
    return e0 + emax * r / (1.0 + r)


def auc_0_inf(result: SimulationResult, cl_L_per_h: np.ndarray | None = None) -> np.ndarray:
    """AUC from 0 to infinity (mg·h/L) of every dose in the event table, linear elimination.

    Every mg that reaches the systemic circulation is eventually eliminated at rate
    ``CL · C``, so ``AUC(0, inf) = (bioavailable amount) / CL`` exactly, whatever the dosing
    history and the output grid (``F · dose / CL`` for a single dose).
    """
    if "auc_0_inf_mg_h_per_L" not in result.metrics:
        raise SpecError("model.elimination", "nonlinear", "linear elimination for AUC(0, inf)")
    if cl_L_per_h is None:
        return result.metrics["auc_0_inf_mg_h_per_L"]
    return result.bioavailable_dose_mg / np.asarray(cl_L_per_h, dtype=float)


def _steady_state(model, layout, params, events, A, grid_options, pd):
    """Pre-dose state at steady state of the first event repeated every interval (exact)."""
    tau = events.steady_state_interval_h
    first = events.time_h[0]
    one = EventTable(
        time_h=np.array([0.0]),
        kind=events.kind[:1],
        amount_mg=events.amount_mg[:, :1],
        duration_h=events.duration_h[:1],
    )
    if events.kind[0] == INFUSION and events.duration_h[0] > tau:
        raise SpecError("regimen", "ss infusion", "an infusion shorter than the interval")
    tlag = np.asarray(params.get("tlag_h", 0.0), dtype=float)
    if events.kind[0] == BOLUS_DEPOT and np.any(tlag >= tau):
        raise SpecError("params.tlag_h", float(np.max(tlag)), f"lag < the ss interval ({tau} h)")
    res = simulate(
        model,
        params,
        one,
        [0.0, tau],
        pd=PDModel("none", pd.effect_compartment),
        grid_options=grid_options,
        return_states=True,
    )
    n = events.n_patients
    keep = [i for i in range(layout.size) if i != layout.auc]
    y = np.zeros((n, len(keep)))
    names = {
        layout.depot: "depot_mg",
        layout.central: "central_mg",
        layout.periph2: "periph2_mg",
        layout.periph3: "periph3_mg",
    }
    for k, i in enumerate(keep):
        if i == layout.ce:
            y[:, k] = res.states["ce_mg_per_L"][:, 1]
        else:
            y[:, k] = res.states[names[i]][:, 1]
    from scipy.linalg import expm

    E = expm(A * tau)
    sub = E[:, keep][:, :, keep]
    x0 = np.zeros((n, layout.size))
    x0[:, keep] = np.linalg.solve(np.eye(len(keep)) - sub, y[..., None])[..., 0]
    if first != 0.0:
        raise SpecError("regimen", "ss", "steady-state dosing that starts at t = 0")
    return x0
