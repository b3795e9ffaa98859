"""Shared helpers of the structure tests: models, NONMEM-format records, the engine, a reference.

The reference (:func:`reference`) is written from the model equations alone: scipy ``solve_ivp``
Radau at ``rtol=1e-12, atol=1e-14`` with an analytic Jacobian, restarted at every event and
every record, on a numpy right-hand side built here from the same parameter values. It reads
the records itself (ADDL, lag time, bioavailability, infusions, zero-order input), so nothing
but the parameter values and the records is shared with the engine. Its state carries two
more quantities: ``auc`` (the integral of the central concentration, mg·h/L) and
``eliminated`` (mg eliminated from ``central``). :func:`reference_batch` integrates several
cases at once as one block-diagonal system (one Radau run). Steady-state (``SS``) records
are not read: steady state is tested against closed forms.

Record semantics (NONMEM): records are taken in file order; at a record, every event due at
or before its time is applied first, then the record is reported; a dose record reports the
central concentration before its own dose and only then schedules its doses (lag-shifted,
``ADDL`` repeats every ``II`` h).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.integrate import solve_ivp

from insilico.dataset import dataset_from_frame
from insilico.model import model_from_dict
from insilico.model.covariates import typical_parameters
from insilico.model.layout import model_layout
from insilico.model.predict import predict_records, prepare_records

#: CMT numbers of the data files of these tests (those of the model's compartments are used)
CMT = {
    "depot": 1,
    "central": 2,
    "peripheral1": 3,
    "peripheral2": 4,
    "effect": 5,
    "response": 6,
    "absorption": 7,
    "transit1": 8,
}

#: typical values shared by the structure tests (a structure takes those it needs)
BASE = {
    "cl_L_per_h": 3.0,
    "v1_L": 20.0,
    "q2_L_per_h": 4.0,
    "v2_L": 35.0,
    "q3_L_per_h": 1.5,
    "v3_L": 80.0,
    "ka_per_h": 1.2,
    "mtt_h": 1.8,
    "n_transit": 3,
    "d1_h": 1.5,
    "vmax_mg_per_h": 12.0,
    "km_mg_per_L": 1.5,
    "ke0_per_h": 0.8,
}

#: PD parameters by model (hill 1 by default for the indirect responses)
PD_PARAMETERS = {
    "linear": {"e0": 5.0, "slope_L_per_mg": 2.0},
    "emax": {"e0": 10.0, "emax": 80.0, "ec50_mg_per_L": 1.7},
    "sigmoid_emax": {"e0": 10.0, "emax": 80.0, "ec50_mg_per_L": 1.7, "hill": 2.3},
    "irm1": {"kin_per_h": 4.0, "kout_per_h": 0.4, "imax": 0.9, "ic50_mg_per_L": 1.2},
    "irm2": {"kin_per_h": 4.0, "kout_per_h": 0.4, "imax": 0.8, "ic50_mg_per_L": 0.9},
    "irm3": {"kin_per_h": 4.0, "kout_per_h": 0.4, "smax": 2.5, "sc50_mg_per_L": 1.1},
    "irm4": {"kin_per_h": 4.0, "kout_per_h": 0.4, "smax": 1.5, "sc50_mg_per_L": 2.0},
}
DIRECT_PD = ("linear", "emax", "sigmoid_emax")

DEPOT_ABSORPTIONS = ("first_order", "transit")

#: mg per unit of AMT, and unit of DV per mg/L
MG_PER_AMT_UNIT = {"mg": 1.0, "ug": 1e-3, "ng": 1e-6}
DV_PER_MG_PER_L = {"mg/L": 1.0, "ug/L": 1e3, "ng/mL": 1e3}

#: solver settings of the reference
REF_RTOL = 1e-12
REF_ATOL = 1e-14


@dataclass(frozen=True)
class Case:
    """A model structure with its parameter values (plain data, read by both sides)."""

    compartments: int = 1
    absorption: str = "none"
    elimination: str = "linear"
    parameters: dict = field(default_factory=dict)
    pd: str | None = None
    effect: bool = False
    dv_unit: str = "mg/L"
    amt_unit: str = "mg"

    @property
    def default_cmt(self) -> str:
        return "depot" if self.absorption in DEPOT_ABSORPTIONS else "central"

    def pk_names(self) -> list[str]:
        names = []
        if self.absorption in DEPOT_ABSORPTIONS:
            names.append("depot")
        if self.absorption == "transit":
            n = int(self.parameters["n_transit"])
            names += [f"transit{k}" for k in range(1, n + 1)] + ["absorption"]
        names.append("central")
        names += [f"peripheral{k}" for k in range(1, self.compartments)]
        return names

    def state_names(self) -> list[str]:
        names = self.pk_names()
        if self.effect:
            names.append("effect")
        if self.pd is not None and self.pd not in DIRECT_PD:
            names.append("response")
        return names

    def cmt_numbers(self) -> dict[int, str]:
        names = set(self.state_names())
        if self.pd is not None:
            names.add("response")
        return {number: name for name, number in CMT.items() if name in names}

    def label(self) -> str:
        text = f"{self.compartments}cpt-{self.absorption}-{self.elimination}"
        if self.pd:
            text += f"-{self.pd}" + ("-effect" if self.effect else "")
        return text


def structure_parameters(compartments: int, absorption: str, elimination: str) -> dict:
    """The :data:`BASE` values a structure needs."""
    names = ["v1_L"]
    if elimination in ("linear", "linear_and_michaelis_menten"):
        names.append("cl_L_per_h")
    if elimination in ("michaelis_menten", "linear_and_michaelis_menten"):
        names += ["vmax_mg_per_h", "km_mg_per_L"]
    if compartments >= 2:
        names += ["q2_L_per_h", "v2_L"]
    if compartments >= 3:
        names += ["q3_L_per_h", "v3_L"]
    if absorption == "first_order":
        names.append("ka_per_h")
    elif absorption == "transit":
        names += ["ka_per_h", "mtt_h", "n_transit"]
    elif absorption == "zero_order":
        names.append("d1_h")
    return {name: BASE[name] for name in names}


def make_case(
    compartments: int = 1,
    absorption: str = "none",
    elimination: str = "linear",
    *,
    pd: str | None = None,
    effect: bool = False,
    dv_unit: str = "mg/L",
    amt_unit: str = "mg",
    **overrides: float,
) -> Case:
    """A :class:`Case` with :data:`BASE` values, PD parameters and ``overrides``.

    ``tlag_h=0`` means no lag: the parameter is left out (model files take lags > 0).
    """
    params = structure_parameters(compartments, absorption, elimination)
    if pd is not None:
        params.update(PD_PARAMETERS[pd])
    if effect:
        params["ke0_per_h"] = BASE["ke0_per_h"]
    params.update(overrides)
    if params.get("tlag_h", None) == 0.0:
        del params["tlag_h"]
    return Case(compartments, absorption, elimination, params, pd, effect, dv_unit, amt_unit)


def make_model(case: Case):
    """The :class:`~insilico.model.Model` of ``case``."""
    spec = {
        "name": case.label(),
        "pk": {
            "compartments": case.compartments,
            "absorption": case.absorption,
            "elimination": case.elimination,
        },
        "parameters": dict(case.parameters),
        "data": {
            "compartments": case.cmt_numbers(),
            "amt_unit": case.amt_unit,
            "dv_unit": case.dv_unit,
        },
    }
    if case.pd is not None:
        spec["pd"] = {"model": case.pd, "effect_compartment": case.effect}
    return model_from_dict(spec)


# -- records ----------------------------------------------------------------------------------

COLUMNS = ("ID", "TIME", "EVID", "AMT", "RATE", "CMT", "SS", "II", "ADDL", "DV")


def dose(time, amt, cmt, *, rate=0.0, ii=0.0, addl=0, ss=0, id=1) -> dict:
    """A dose record (EVID 1) into compartment ``cmt`` (a name of :data:`CMT`)."""
    return {
        "ID": id,
        "TIME": float(time),
        "EVID": 1,
        "AMT": float(amt),
        "RATE": float(rate),
        "CMT": CMT[cmt],
        "SS": int(ss),
        "II": float(ii),
        "ADDL": int(addl),
        "DV": np.nan,
    }


def obs(time, cmt="central", *, id=1) -> dict:
    """An observation record (EVID 0) of ``cmt`` (a name of :data:`CMT`)."""
    return {
        "ID": id,
        "TIME": float(time),
        "EVID": 0,
        "AMT": 0.0,
        "RATE": 0.0,
        "CMT": CMT[cmt],
        "SS": 0,
        "II": 0.0,
        "ADDL": 0,
        "DV": 0.0,
    }


def observations(times, cmts=("central",), *, id=1) -> list[dict]:
    """Observation records of every ``cmts`` at every time."""
    return [obs(t, c, id=id) for t in times for c in cmts]


def frame(rows) -> pd.DataFrame:
    """Records as a NONMEM-format data frame."""
    return pd.DataFrame(list(rows), columns=list(COLUMNS))


# -- the engine -------------------------------------------------------------------------------


@dataclass
class EngineRun:
    """Predictions (``pred``) and states (``x``, by name in ``states``) at every record."""

    pred: np.ndarray
    x: np.ndarray
    states: tuple[str, ...]
    table: pd.DataFrame

    def state(self, name: str) -> np.ndarray:
        return self.x[:, self.states.index(name)]


def run_engine(model, rows) -> EngineRun:
    """The engine's predictions and states at every record of ``rows``."""
    df = rows if isinstance(rows, pd.DataFrame) else frame(rows)
    table = dataset_from_frame(df).table
    layout = model_layout(model)
    records = prepare_records(model, table, layout)
    values = typical_parameters(model, table, len(table))
    pred, x = predict_records(model, records, values, layout, states=True)
    return EngineRun(pred, x, tuple(layout.states), table)


# -- the reference ----------------------------------------------------------------------------


def _hill(c, top, c50, h):
    """``top C^h / (c50^h + C^h)`` and its derivative in ``C`` (arrays; 0 for C <= 0)."""
    pos = c > 0.0
    cp = np.where(pos, c, 1.0)
    ch = cp**h
    den = c50**h + ch
    f = np.where(pos, top * ch / den, 0.0)
    df_pos = top * h * cp ** (h - 1.0) * c50**h / den**2
    df_zero = np.where(h == 1.0, top / c50, 0.0)
    return f, np.where(pos, df_pos, df_zero)


def expand_doses(case: Case, rows) -> list[tuple[float, str, str, float]]:
    """Events ``(time, kind, state, value)`` of dose records: kind ``bolus`` (mg) or
    ``rate`` (a change of infusion rate, mg/h); AMT and RATE are in the case's amount unit."""
    p = case.parameters
    to_mg = MG_PER_AMT_UNIT[case.amt_unit]
    events = []
    for row in rows:
        if row["EVID"] != 1:
            continue
        target = {v: k for k, v in CMT.items()}[row["CMT"]]
        on_default = target == case.default_cmt
        lag = p.get("tlag_h", 0.0) if on_default else 0.0
        f = p.get("f_bio", 1.0) if on_default else 1.0
        amount = f * row["AMT"] * to_mg
        rate = row["RATE"] * to_mg
        for k in range(int(row["ADDL"]) + 1):
            start = row["TIME"] + lag + k * row["II"]
            if rate > 0:
                events += [
                    (start, "rate", target, rate),
                    (start + amount / rate, "rate", target, -rate),
                ]
            elif case.absorption == "zero_order" and target == "central":
                d1 = p["d1_h"]
                events += [
                    (start, "rate", target, amount / d1),
                    (start + d1, "rate", target, -amount / d1),
                ]
            else:
                events.append((start, "bolus", target, amount))
    return events


class _Lane:
    """One subject of one case: its states (named, plus ``auc`` and ``eliminated``), the
    linear part of its right-hand side, its records and its dose events."""

    def __init__(self, case: Case, rows: list[dict], positions: list[int], offset: int):
        p = case.parameters
        self.case = case
        self.rows = rows
        self.positions = positions
        self.offset = offset
        self.names = case.state_names() + ["auc", "eliminated"]
        ix = {name: offset + i for i, name in enumerate(self.names)}
        self.ix = ix
        self.size = len(self.names)
        self.links: list[tuple[str, str, float]] = []  # (from, to, rate constant per h)
        c = "central"
        v1 = p["v1_L"]
        if case.absorption == "first_order":
            self.links.append(("depot", c, p["ka_per_h"]))
        elif case.absorption == "transit":
            nt = int(p["n_transit"])
            ktr = (nt + 1) / p["mtt_h"]
            chain = ["depot"] + [f"transit{k}" for k in range(1, nt + 1)] + ["absorption"]
            self.links += [(a, b, ktr) for a, b in zip(chain[:-1], chain[1:], strict=True)]
            self.links.append(("absorption", c, p["ka_per_h"]))
        if case.elimination != "michaelis_menten":
            self.links.append((c, None, p["cl_L_per_h"] / v1))
        for k, (q, v) in enumerate((("q2_L_per_h", "v2_L"), ("q3_L_per_h", "v3_L")), start=1):
            if case.compartments > k:
                self.links += [(c, f"peripheral{k}", p[q] / v1), (f"peripheral{k}", c, p[q] / p[v])]
        self.irm = case.pd if case.pd is not None and case.pd not in DIRECT_PD else None
        self.driver = ix["effect"] if case.effect else ix["central"]
        self.driver_scale = 1.0 if case.effect else 1.0 / v1
        self.events = [expand_doses(case, [row]) if row["EVID"] == 1 else [] for row in rows]

    def fill_matrix(self, A: np.ndarray) -> None:
        """Write the linear part of the lane's right-hand side into ``A``."""
        p = self.case.parameters
        ix = self.ix
        for a, b, k in self.links:
            A[ix[a], ix[a]] -= k
            A[ix[b] if b is not None else ix["eliminated"], ix[a]] += k
        A[ix["auc"], ix["central"]] = 1.0 / p["v1_L"]
        if self.case.effect:
            ke0 = p["ke0_per_h"]
            A[ix["effect"], ix["central"]] = ke0 / p["v1_L"]
            A[ix["effect"], ix["effect"]] = -ke0

    def initial(self, y: np.ndarray) -> None:
        y[self.offset : self.offset + self.size] = 0.0
        if self.irm is not None:
            p = self.case.parameters
            y[self.ix["response"]] = p["kin_per_h"] / p["kout_per_h"]


class _Batch:
    """Lanes integrated as one block-diagonal system (one Radau run for all of them).

    Radau's step control takes the RMS norm of the scaled error over every component, so in
    a batch of ``n`` components a lane of ``m`` components may take a local error up to
    ``sqrt(n / m)`` times what it would alone at the same tolerances (about 10 times for
    the largest batch here); the shared steps are those of the lane with the fastest
    dynamics. The tests check the reference itself against closed forms in the same batch.
    """

    def __init__(self, lanes: list[_Lane]):
        self.lanes = lanes
        n = sum(lane.size for lane in lanes)
        self.n = n
        A = np.zeros((n, n))
        for lane in lanes:
            lane.fill_matrix(A)
        self.A = sparse.csc_matrix(A)
        mm = [lane for lane in lanes if lane.case.elimination != "linear"]
        self.mm_c = np.array([lane.ix["central"] for lane in mm], dtype=np.int64)
        self.mm_e = np.array([lane.ix["eliminated"] for lane in mm], dtype=np.int64)
        self.mm_v = np.array([lane.case.parameters["v1_L"] for lane in mm])
        self.mm_vmax = np.array([lane.case.parameters["vmax_mg_per_h"] for lane in mm])
        self.mm_km = np.array([lane.case.parameters["km_mg_per_L"] for lane in mm])
        # indirect responses: dR/dt = kin (1 + a H(C)) - kout (1 + b H(C)) R with
        # H = top C^h / (c50^h + C^h) and (a, b) = (-1, 0), (0, -1), (1, 0), (0, 1) for irm1..4
        signs = {"irm1": (-1.0, 0.0), "irm2": (0.0, -1.0), "irm3": (1.0, 0.0), "irm4": (0.0, 1.0)}
        group = [lane for lane in lanes if lane.irm is not None]
        ps = [lane.case.parameters for lane in group]
        self.irm_r = np.array([lane.ix["response"] for lane in group], dtype=np.int64)
        self.irm_d = np.array([lane.driver for lane in group], dtype=np.int64)
        self.irm_scale = np.array([lane.driver_scale for lane in group])
        self.irm_a = np.array([signs[lane.irm][0] for lane in group])
        self.irm_b = np.array([signs[lane.irm][1] for lane in group])
        self.irm_kin = np.array([q["kin_per_h"] for q in ps])
        self.irm_kout = np.array([q["kout_per_h"] for q in ps])
        self.irm_top = np.array([q["imax"] if "imax" in q else q["smax"] for q in ps])
        c50 = np.array([q["ic50_mg_per_L"] if "imax" in q else q["sc50_mg_per_L"] for q in ps])
        self.irm_h = np.array([q.get("hill", 1.0) for q in ps])
        self.irm_c50h = c50**self.irm_h

    def _pd(self, y, derivatives: bool):
        """d response/dt (and its derivatives in the response and the driving concentration)."""
        c = np.maximum(y[self.irm_d] * self.irm_scale, 0.0)
        r = y[self.irm_r]
        ch = c**self.irm_h
        den = self.irm_c50h + ch
        f = self.irm_top * ch / den
        ka = self.irm_kin * self.irm_a
        kb = self.irm_kout * self.irm_b
        dr = self.irm_kin + ka * f - (self.irm_kout + kb * f) * r
        if not derivatives:
            return dr
        h = self.irm_h
        with np.errstate(divide="ignore"):
            df = np.where(
                c > 0.0,
                self.irm_top * h * c ** (h - 1.0) * self.irm_c50h / den**2,
                np.where(h == 1.0, self.irm_top / self.irm_c50h, 0.0),
            )
        return dr, -(self.irm_kout + kb * f), (ka - kb * r) * df

    def rhs(self, t, y, rates):
        dy = self.A @ y + rates
        if self.mm_c.size:
            c = y[self.mm_c] / self.mm_v
            out = self.mm_vmax * c / (self.mm_km + c)
            dy[self.mm_c] -= out
            dy[self.mm_e] += out
        if self.irm_r.size:
            dy[self.irm_r] = self._pd(y, False)
        return dy

    def jac(self, t, y, rates):
        rows, cols, vals = [], [], []
        if self.mm_c.size:
            c = y[self.mm_c] / self.mm_v
            d = self.mm_vmax * self.mm_km / (self.mm_km + c) ** 2 / self.mm_v
            rows += [self.mm_c, self.mm_e]
            cols += [self.mm_c, self.mm_c]
            vals += [-d, d]
        if self.irm_r.size:
            # the linear part has no entries in the response rows
            _, d_r, d_c = self._pd(y, True)
            rows += [self.irm_r, self.irm_r]
            cols += [self.irm_r, self.irm_d]
            vals += [d_r, d_c * self.irm_scale]
        if not rows:
            return self.A
        extra = sparse.coo_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
            shape=self.A.shape,
        )
        return (self.A + extra).tocsc()

    def advance(self, y, t0, t1, rates):
        if t1 <= t0:
            return y
        sol = solve_ivp(
            self.rhs,
            (t0, t1),
            y,
            method="Radau",
            rtol=REF_RTOL,
            atol=REF_ATOL,
            jac=self.jac,
            args=(rates,),
        )
        if not sol.success:
            raise RuntimeError(f"reference integration failed: {sol.message}")
        return sol.y[:, -1].copy()


@dataclass
class ReferenceRun:
    """The reference's predictions and states (named columns) at every record."""

    pred: np.ndarray
    x: np.ndarray
    states: tuple[str, ...]

    def state(self, name: str) -> np.ndarray:
        return self.x[:, self.states.index(name)]


def _observe(lane: _Lane, y, name: str) -> float:
    case = lane.case
    p = case.parameters
    ix = lane.ix
    volume = {"central": "v1_L", "peripheral1": "v2_L", "peripheral2": "v3_L"}
    scale = DV_PER_MG_PER_L[case.dv_unit]
    if name in volume:
        return y[ix[name]] / p[volume[name]] * scale
    if name == "effect":
        return y[ix[name]] * scale
    if name == "response" and case.pd in DIRECT_PD:
        c = y[lane.driver] * lane.driver_scale
        if case.pd == "linear":
            return p["e0"] + p["slope_L_per_mg"] * c
        hill = p.get("hill", 1.0) if case.pd == "sigmoid_emax" else 1.0
        return p["e0"] + float(_hill(np.array(c), p["emax"], p["ec50_mg_per_L"], hill)[0])
    if name == "response":
        return y[ix[name]]
    return y[ix[name]] / MG_PER_AMT_UNIT[case.amt_unit]  # an amount, in the AMT unit


def reference_batch(items) -> list[ReferenceRun]:
    """:func:`reference` of several ``(case, rows)`` at once, one Radau run for all."""
    items = [(case, list(rows)) for case, rows in items]
    lanes = []
    offset = 0
    for k, (case, rows) in enumerate(items):
        start = 0
        for i in range(1, len(rows) + 1):
            if i == len(rows) or rows[i]["ID"] != rows[start]["ID"]:
                lane = _Lane(case, rows[start:i], list(range(start, i)), offset)
                lane.item = k
                lanes.append(lane)
                offset += lane.size
                start = i
    batch = _Batch(lanes)
    names = {v: k for k, v in CMT.items()}
    times = sorted(
        {row["TIME"] for lane in lanes for row in lane.rows}
        | {e[0] for lane in lanes for ev in lane.events for e in ev}
    )
    y = np.zeros(batch.n)
    rates = np.zeros(batch.n)
    for lane in lanes:
        lane.initial(y)
        lane.pending = []
        lane.next = 0
    results = [
        (np.empty(len(rows)), np.empty((len(rows), len(case.state_names()) + 2)))
        for case, rows in items
    ]

    def apply_due(lane, t):
        due = [e for e in lane.pending if e[0] <= t]
        lane.pending = [e for e in lane.pending if e[0] > t]
        for _, kind, target, value in due:
            if kind == "bolus":
                y[lane.ix[target]] += value
            else:
                rates[lane.ix[target]] += value
                if abs(rates[lane.ix[target]]) < 1e-9:
                    rates[lane.ix[target]] = 0.0

    t = times[0]
    for T in times:
        y = batch.advance(y, t, T, rates)
        t = T
        for lane in lanes:
            pred, x = results[lane.item]
            while lane.next < len(lane.rows) and lane.rows[lane.next]["TIME"] == T:
                j = lane.next
                row = lane.rows[j]
                apply_due(lane, T)
                observed = "central" if row["EVID"] == 1 else names[row["CMT"]]
                pred[lane.positions[j]] = _observe(lane, y, observed)
                x[lane.positions[j]] = y[lane.offset : lane.offset + lane.size]
                lane.pending += lane.events[j]
                lane.next += 1
            apply_due(lane, T)
    return [
        ReferenceRun(pred, x, tuple(case.state_names()) + ("auc", "eliminated"))
        for (case, _), (pred, x) in zip(items, results, strict=True)
    ]


def reference(case: Case, rows) -> ReferenceRun:
    """Predictions and states at every record of ``rows`` (a list of record dicts)."""
    return reference_batch([(case, rows)])[0]


# -- comparison -------------------------------------------------------------------------------


def max_rel_error(got, want, floor_fraction: float = 1e-6) -> float:
    """Max of ``|got - want| / max(|want|, floor_fraction · max|want|)``.

    Relative error on values above ``floor_fraction`` of the largest, absolute error (in
    units of that floor) below it; 0 for an all-zero ``want`` equal to ``got``.
    """
    got = np.asarray(got, dtype=float)
    want = np.asarray(want, dtype=float)
    if got.shape != want.shape:
        raise ValueError(f"shapes differ: {got.shape} vs {want.shape}")
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    if scale == 0.0:
        return float(np.max(np.abs(got))) if got.size else 0.0
    den = np.maximum(np.abs(want), floor_fraction * scale)
    err = np.abs(got - want) / den
    if not np.all(np.isfinite(err)):
        return math.inf
    return float(np.max(err))


def errors_by_output(rows, got, want) -> dict[str, float]:
    """:func:`max_rel_error` separately for each observed output (dose records: central)."""
    names = {v: k for k, v in CMT.items()}
    labels = np.array(["central" if r["EVID"] == 1 else names[r["CMT"]] for r in rows])
    return {
        label: max_rel_error(np.asarray(got)[labels == label], np.asarray(want)[labels == label])
        for label in np.unique(labels)
    }


# -- closed forms -----------------------------------------------------------------------------


def one_cpt_bolus(t, dose_mg, cl, v):
    """Concentration (mg/L) after an IV bolus at time 0 (0 before it)."""
    t = np.asarray(t, dtype=float)
    return np.where(t >= 0, dose_mg / v * np.exp(-cl / v * np.maximum(t, 0.0)), 0.0)


def one_cpt_infusion(t, rate, duration, cl, v):
    """Concentration (mg/L) of an infusion at ``rate`` mg/h from 0 to ``duration`` h."""
    t = np.asarray(t, dtype=float)
    k = cl / v
    during = rate / cl * -np.expm1(-k * np.clip(t, 0.0, duration))
    return np.where(t <= duration, during, during * np.exp(-k * (t - duration)))


def bateman(t, dose_mg, f, ka, cl, v, tlag=0.0):
    """Concentration (mg/L) after an oral dose at 0: first-order absorption after a lag."""
    s = np.maximum(np.asarray(t, dtype=float) - tlag, 0.0)
    k = cl / v
    if ka == k:
        return f * dose_mg / v * k * s * np.exp(-k * s)
    return f * dose_mg * ka / (v * (ka - k)) * (np.exp(-k * s) - np.exp(-ka * s))


def two_cpt_macro(cl, v1, q, v2):
    """``alpha > beta``, the disposition rate constants (per h) of a 2-compartment model."""
    k10, k12, k21 = cl / v1, q / v1, q / v2
    total = k10 + k12 + k21
    root = math.sqrt(total * total - 4.0 * k10 * k21)
    alpha = (total + root) / 2.0
    beta = k10 * k21 / alpha  # alpha * beta = k10 * k21, without cancellation
    return alpha, beta


def two_cpt_bolus(t, dose_mg, cl, v1, q, v2):
    """Central and peripheral concentrations (mg/L) after an IV bolus at time 0."""
    t = np.asarray(t, dtype=float)
    alpha, beta = two_cpt_macro(cl, v1, q, v2)
    k12, k21 = q / v1, q / v2
    ea, eb = np.exp(-alpha * t), np.exp(-beta * t)
    central = dose_mg / v1 * ((alpha - k21) * ea + (k21 - beta) * eb) / (alpha - beta)
    peripheral = dose_mg * k12 / (alpha - beta) * (eb - ea) / v2
    return central, peripheral
