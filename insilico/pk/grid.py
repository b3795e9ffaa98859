"""The simulation grid: hard nodes (events, outputs, window ends) refined after each dose.

Between hard nodes the grid is graded: steps of ``h0_h`` right after a dose, doubling every
``steps_per_level`` steps up to ``hmax_h``. Step sizes are dyadic multiples of ``h0_h`` whenever
the hard nodes allow, so that a handful of transition matrices (one matrix exponential and a
few squarings per patient) serve the whole grid. The defaults depend on the integrator of the
response (:meth:`GridOptions.resolved`) and were chosen from its measured error against
scipy's Radau at rtol 1e-10, on the random patients of ``tests/pk/test_against_radau.py``
(irm1-4, Hill exponents around 1.5, turnover 0.2 /h, q6h) and on the reference workload of
``benchmarks/bench_engine.py`` (2-cmt oral q12h x56 + irm1, 30 % IIV):

===========================  =====================  ==============  ========================
integrator                   h0, hmax, per level    steps per 12 h  max rel. error, tests
===========================  =====================  ==============  ========================
Lobatto                      1/32 h, 1 h, 1         17              3.2e-8 (III); 1.2e-9 (I)
Lobatto (default: I)         1/16 h, 1 h, 1         16              2.5e-7 (III); 2.7e-9 (I)
Lobatto (default: III)       1/16 h, 1 h, 2         18              7.2e-7 (III, 20 patients)
rate Lobatto (default: II,   1/32 h, 1/2 h, 4       37              1.5e-7 (IV); 6.6e-9 (II)
IV)
ETDRK4 (comparison)          1/16 h, 1 h, 4         25              1.7e-6 (IRM III)
ETDRK4 (comparison)          1/32 h, 1 h, 4         29              4.3e-7 (III); 9.9e-8 (II, IV)
===========================  =====================  ==============  ========================

(Errors: R and its extrema. ETDRK4, an exponential Runge-Kutta rule the kernel does not use,
is listed for comparison.) On twenty random patients per model (the slow test in
``tests/pk/test_against_radau.py``), ETDRK4 on its 1 h grid is above 1e-6 for 4 of 20 (II,
max 7.5e-6) and 20 of 20 (IV, max 4.3e-4): it integrates only ``-kout R`` exactly, and
``kout E(C) R`` is stiff for IV. The rule of the whole loss rate (``kernel.rate_lobatto_step``)
measures 2.3e-9 (II) and 9.8e-8 (IV) there on this grid; on the 1 h grid its IV errors reach
1.9e-6 (at troughs, where C falls through a steep Hill term), hence ``hmax`` 1/2 h.

On the reference workload the Lobatto default gives a minimum response within 4.0e-7 of
Radau's (3.7e-7 with ``h0`` 1/32 h; ETDRK4 on its default: 6.3e-7). The exponential Lobatto
rule (exact for a cubic forcing) is of higher order than ETDRK4, whose error is set by the
steps right after a dose, so it needs no more than one step per size level.

The q12h summaries-only Radau test (``test_indirect_response_coarse_tail_of_long_intervals``,
no output times inside the intervals, so the default grid's own 1 h steps carry the rule)
measures 4.4e-7 for Lobatto, with ``h0`` 1/16 h as with 1/32 h: the 1 h steps set it, not
the first step. With ``hmax`` 2 h it measures 1.2e-6, which is why the default stays at 1 h.
``h0`` 1/8 h gives 1.4e-6 on the reference workload, so 1/16 h is the coarsest first step.
Against 1/32 h it gives the reference workload 897 grid nodes instead of 953 (one step per
dosing interval less) and takes 4-6 % off the kernel's time.

Linear PK itself is exact on any grid; the grid only matters for the integrated parts, and
for bracketing the extrema, so PK alone and direct effects take the coarse default too.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Steps right after the first dose go down to ``h0 / FIRST_DOSE_DEPTH`` (geometric grading).
FIRST_DOSE_DEPTH = 64.0


@dataclass(frozen=True)
class GridOptions:
    """Step control of the graded grid (all times in h).

    Attributes
    ----------
    h0_h : float, optional
        Step right after a dose.
    hmax_h : float, optional
        Largest step.
    steps_per_level : int, optional
        Steps taken at each size before doubling it.
    lag_offsets_h : tuple of float
        Typical absorption lag times: the grid is also graded after ``dose + offset`` (the
        trial layer passes the compound's typical lag; per-patient lags are never used).

    A step-control field left at None takes the default of the integrator that runs
    (:meth:`resolved`): :data:`DEFAULT_RATE_LOBATTO` for indirect responses II and IV of linear PK,
    :data:`DEFAULT_GRID` for the other linear models, and the nonlinear kernel's own.
    """

    h0_h: float | None = None
    hmax_h: float | None = None
    steps_per_level: int | None = None
    lag_offsets_h: tuple[float, ...] = ()

    def step_control(self) -> tuple[float, float, int]:
        """``(h0_h, hmax_h, steps_per_level)`` of resolved options (:meth:`resolved`)."""
        if self.h0_h is None or self.hmax_h is None or self.steps_per_level is None:
            raise ValueError(
                f"grid needs fully resolved step control: pass options.resolved(default), "
                f"not {self!r}"
            )
        return self.h0_h, self.hmax_h, self.steps_per_level

    def resolved(self, default: tuple[float, float, int]) -> GridOptions:
        """These options with every field left at None taken from ``default`` (h0_h,
        hmax_h, steps_per_level)."""
        h0, hmax, per = default
        return GridOptions(
            h0 if self.h0_h is None else self.h0_h,
            hmax if self.hmax_h is None else self.hmax_h,
            per if self.steps_per_level is None else self.steps_per_level,
            self.lag_offsets_h,
        )


#: Default (h0_h, hmax_h, steps_per_level) for indirect responses II and IV (the exponential
#: Lobatto rule of their loss rate, ``kernel.rate_lobatto_step``).
DEFAULT_RATE_LOBATTO = (1.0 / 32.0, 0.5, 4)
#: Default for the exponential Lobatto quadrature of indirect response I, and for
#: linear PK without an integrated response (exact on any grid; the grid only brackets the
#: extrema, refined from the exact solution: the Radau tests measure the same ~1e-14 errors
#: as on the finer grid of II and IV).
DEFAULT_GRID = (1.0 / 16.0, 1.0, 1)
#: Default for IRM III (stimulated production): as :data:`DEFAULT_GRID` but two steps per
#: size level. Its forcing ``kin (1 + S(C))`` is not bounded by kin as I's is (``Smax`` of 3-5
#: is common), and with one step per level the steps of 1/4-1/2 h while C rises after the
#: first dose left 3 of twenty random patients above 1e-6 (max 2.2e-6; two per level: 7.2e-7,
#: four: 4.1e-8; a smaller ``h0`` or ``hmax`` changed nothing).
DEFAULT_STIMULATION = (1.0 / 16.0, 1.0, 2)


@dataclass(frozen=True)
class Grid:
    """A simulation grid.

    Attributes
    ----------
    node_h : ndarray, shape (n_nodes,)
        Node times (h), strictly increasing.
    step_size_index : ndarray of int64, shape (n_nodes - 1,)
        Index into ``sizes_h`` of each step.
    half_size_index : ndarray of int64, shape (n_nodes - 1,)
        Index into ``sizes_h`` of each step's half (for RK4 midpoints).
    sizes_h : ndarray, shape (n_sizes,)
        Distinct step sizes (and half steps), ascending.
    """

    node_h: np.ndarray
    step_size_index: np.ndarray
    half_size_index: np.ndarray
    sizes_h: np.ndarray

    @property
    def n_nodes(self) -> int:
        return self.node_h.shape[0]

    def index_of(self, t_h) -> np.ndarray:
        """Node index of each time in ``t_h`` (each must be a node)."""
        t = np.atleast_1d(np.asarray(t_h, dtype=float))
        idx = np.searchsorted(self.node_h, t)
        idx = np.clip(idx, 0, self.n_nodes - 1)
        lower = np.clip(idx - 1, 0, self.n_nodes - 1)
        pick = np.where(np.abs(self.node_h[lower] - t) < np.abs(self.node_h[idx] - t), lower, idx)
        if np.any(np.abs(self.node_h[pick] - t) > 1e-9 * np.maximum(1.0, np.abs(t))):
            raise ValueError("time not on the grid")
        return pick


def _snap(values: np.ndarray) -> np.ndarray:
    """Sorted unique times, merging those closer than 1e-9 h (relative)."""
    v = np.sort(np.asarray(values, dtype=float))
    if v.size == 0:
        return v
    keep = np.ones(v.size, dtype=bool)
    keep[1:] = np.diff(v) > 1e-9 * np.maximum(1.0, np.abs(v[1:]))
    return v[keep]


#: Grids built recently, by their inputs (a grid depends only on the regimen, the outputs and
#: the options, never on the patients: consecutive chunks of a trial reuse it).
_CACHE: OrderedDict[tuple, Grid] = OrderedDict()
CACHE_SIZE = 32


def build_grid(
    hard_h: np.ndarray,
    dose_h: np.ndarray,
    options: GridOptions,
    start_h: np.ndarray | Sequence[float] = (),
) -> Grid:
    """Graded grid through every hard node (memoized on its inputs; see :func:`_build_grid`)."""
    hard = _snap(hard_h)
    doses = _snap(dose_h)
    starts = _snap(np.asarray(start_h, dtype=float))
    key = (hard.tobytes(), doses.tobytes(), starts.tobytes(), options)
    grid = _CACHE.get(key)
    if grid is None:
        grid = _build_grid(hard, doses, options, starts)  # callers never modify a grid
        _CACHE[key] = grid
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(key)
    return grid


def _build_grid(
    hard_h: np.ndarray,
    dose_h: np.ndarray,
    options: GridOptions,
    start_h: np.ndarray | Sequence[float] = (),
) -> Grid:
    """Graded grid through every hard node.

    Parameters
    ----------
    hard_h : ndarray
        Times that must be nodes (outputs, events, infusion ends, window ends) (h).
    dose_h : ndarray
        Times after which the grid is refined (dose times, absorption start) (h).
    options : GridOptions
        Step control.
    start_h : array_like
        Times where drug first enters a drug-free body (first dose, first absorption start):
        the grid is graded geometrically down to ``h0 / FIRST_DOSE_DEPTH`` after them, because
        a Hill term ``C^h`` with a non-integer ``h`` is not smooth where C starts from 0.
    """
    hard = _snap(hard_h)
    doses = _snap(dose_h)
    starts = _snap(np.asarray(start_h, dtype=float))
    h0, hmax, per = options.step_control()
    if hard.size < 2:
        hard = _snap(np.append(hard, (hard[0] if hard.size else 0.0) + hmax))
    nodes = [hard[0]]
    for a, b in zip(hard[:-1], hard[1:], strict=True):
        t = a
        while b - t > 1e-9 * max(1.0, abs(b)):
            k = np.searchsorted(doses, t + 1e-12, side="right") - 1
            since = t - doses[k] if k >= 0 else np.inf
            # size for the time since the last dose: level L covers per*(2^L)*h0 hours
            ks = np.searchsorted(starts, t + 1e-12, side="right") - 1
            since_start = t - starts[ks] if ks >= 0 else np.inf
            if since_start < h0 * (1.0 - 1e-9):
                h = max(since_start, h0 / FIRST_DOSE_DEPTH)
            elif np.isfinite(since):
                level = int(np.floor(np.log2(since / (per * h0) + 1.0)))
                h = min(hmax, h0 * 2.0**level)
            else:
                h = hmax
            # keep dyadic alignment with the last dose (or the gap start)
            ref = doses[k] if k >= 0 else a
            while h > h0 and abs((t - ref) / h - round((t - ref) / h)) > 1e-9:
                h /= 2.0
            if t + h > b - 1e-9 * max(1.0, abs(b)):
                h = b - t
            t = b if abs(t + h - b) <= 1e-9 * max(1.0, abs(b)) else t + h
            nodes.append(t)
    node = np.asarray(nodes)
    steps = np.diff(node)
    sizes, step_idx, half_idx = _size_classes(steps)
    return Grid(node, step_idx, half_idx, sizes)


def _size_classes(steps: np.ndarray):
    """Distinct step sizes, including half steps."""
    sizes = distinct_sizes(np.concatenate([steps, steps / 2.0]))
    return sizes, nearest_size(sizes, steps), nearest_size(sizes, steps / 2.0)


def distinct_sizes(values: np.ndarray) -> np.ndarray:
    """The distinct values, ascending, merging those within 1e-12 relative."""
    order = np.sort(values)
    keep = np.ones(order.size, dtype=bool)
    keep[1:] = np.diff(order) > 1e-12 * order[1:]
    return order[keep]


def nearest_size(sizes: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Index of the size nearest to each ``h`` (``sizes`` ascending)."""
    i = np.clip(np.searchsorted(sizes, h), 0, sizes.size - 1)
    lo = np.clip(i - 1, 0, sizes.size - 1)
    return np.where(np.abs(sizes[lo] - h) < np.abs(sizes[i] - h), lo, i).astype(np.int64)
