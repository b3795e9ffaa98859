"""Predictions of a model at the records of a NONMEM-format dataset.

:func:`prepare_records` turns a dataset's normalized table into the event kernel's arrays once
(units converted to mg and h, compartments to state indices, what each record observes);
:func:`predict_records` then gives the prediction at every record for any per-record
parameter values: the typical subject's (``PRED``), a subject's (``IPRED``) or a sampled
patient's. Predictions at dose records are those just before the record's own dose, as
NONMEM reports them.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numba as nb
import numpy as np
import pandas as pd

from insilico.errors import SpecError
from insilico.model.layout import Layout, model_layout, pack_parameters
from insilico.pk import event_kernel as ek
from insilico.pk.kernel_build import event_kernel_for
from insilico.units import amount_to_mg_factor, mg_per_L_to_dv_factor

#: what an observation record reports: a concentration (mg/L) of a state, a PD state, an amount
OBS_CONC, OBS_STATE, OBS_AMOUNT, OBS_DIRECT = 0, 1, 2, 3

_VOLUME_OF = {"central": "v1_L", "peripheral1": "v2_L", "peripheral2": "v3_L"}


@dataclass(frozen=True)
class Records:
    """A dataset's records as the event kernel's arrays (one entry per row, file order).

    Amounts are mg, rates mg/h, times h. ``dose_state`` is the state index a dose enters;
    ``obs_kind``/``obs_state`` say what each record's prediction is.
    """

    offsets: np.ndarray
    time: np.ndarray
    evid: np.ndarray
    amt: np.ndarray
    rate: np.ndarray
    dose_state: np.ndarray
    dose_compartment: np.ndarray
    ss: np.ndarray
    ii: np.ndarray
    addl: np.ndarray
    obs_kind: np.ndarray
    obs_state: np.ndarray
    obs_name: np.ndarray
    columns: Mapping[str, np.ndarray]

    @property
    def n(self) -> int:
        """Number of records."""
        return self.time.shape[0]


def _column(columns: Mapping[str, np.ndarray], name: str, field: str) -> np.ndarray:
    folded = {k.upper(): k for k in columns}
    key = folded.get(name.upper())
    if key is None:
        raise SpecError(field, name, f"a column of the data (found {sorted(columns)})")
    return np.asarray(columns[key], dtype=float)


def prepare_records(model, table: pd.DataFrame, layout: Layout | None = None) -> Records:
    """The kernel's view of a normalized dataset table.

    Parameters
    ----------
    model : Model
        Gives the compartment numbering and units.
    table : DataFrame
        :attr:`insilico.dataset.Dataset.table` (canonical upper-case NONMEM columns,
        ``SUBJECT``, covariates).
    layout : Layout, optional
        From :func:`~insilico.model.layout.model_layout`.
    """
    layout = layout or model_layout(model)
    n = len(table)
    subject = table["SUBJECT"].to_numpy()
    offsets = np.r_[0, np.flatnonzero(np.diff(subject) != 0) + 1, n].astype(np.int64)
    to_mg = amount_to_mg_factor(model.data.amt_unit)
    evid = table["EVID"].to_numpy().astype(np.int64)
    amt = np.nan_to_num(table["AMT"].to_numpy(dtype=float)) * to_mg
    rate_raw = np.nan_to_num(table["RATE"].to_numpy(dtype=float))
    rate = np.where(rate_raw > 0, rate_raw * to_mg, rate_raw)
    cmap = model.compartment_map()
    default_dose = model.default_dosing_compartment()
    cmt = table["CMT"].to_numpy(dtype=float)
    is_dose = (evid == 1) | (evid == 4)
    names = np.empty(n, dtype=object)
    for number, name in cmap.items():
        names[cmt == number] = name
    missing = np.isnan(cmt) | (cmt == 0)
    names[missing & is_dose] = default_dose
    names[missing & ~is_dose] = "central"
    # a dose record reports the central concentration (NONMEM's F at dose records)
    observed = np.where(is_dose, "central", names)
    unknown = np.flatnonzero(pd.isna(names))
    if unknown.size:
        row = int(table["ROW"].iloc[unknown[0]]) + 2 if "ROW" in table else int(unknown[0]) + 2
        raise SpecError(
            f"row {row}, CMT",
            cmt[unknown[0]],
            f"one of {cmap} (the model's data.compartments)",
        )
    dose_state = np.full(n, -1, dtype=np.int64)
    obs_kind = np.full(n, OBS_CONC, dtype=np.int64)
    obs_state = np.full(n, layout.index("central"), dtype=np.int64)
    record = layout.pd_record
    for name in np.unique(names.astype(str)):
        doses = (names == name) & is_dose
        if not doses.any():
            continue
        if name not in layout.states or name == "effect":
            raise SpecError("CMT", name, "a PK compartment for doses")
        dose_state[doses] = layout.index(name)
    for name in np.unique(observed.astype(str)):
        rows = observed == name
        if name in layout.states:
            idx = layout.index(name)
            obs_state[rows] = idx
            if name in _VOLUME_OF or name == "effect":
                obs_kind[rows] = OBS_CONC
            elif idx >= layout.structure[ek.S_NPK]:
                obs_kind[rows] = OBS_STATE
            else:
                obs_kind[rows] = OBS_AMOUNT
        elif record is not None and not record.has_state and name == "response":
            obs_kind[rows] = OBS_DIRECT
            obs_state[rows] = layout.structure[ek.S_DRIVER]
        else:
            raise SpecError("data.compartments", name, f"one of {list(layout.states)}")
    columns = {c: table[c].to_numpy() for c in table.columns}
    return Records(
        offsets=offsets,
        time=table["TIME"].to_numpy(dtype=float),
        evid=evid,
        amt=amt,
        rate=rate,
        dose_state=dose_state,
        dose_compartment=names,
        ss=np.nan_to_num(table["SS"].to_numpy(dtype=float)).astype(np.int64),
        ii=np.nan_to_num(table["II"].to_numpy(dtype=float)),
        addl=np.nan_to_num(table["ADDL"].to_numpy(dtype=float)).astype(np.int64),
        obs_kind=obs_kind,
        obs_state=obs_state,
        obs_name=observed,
        columns=columns,
    )


def dose_attributes(model, records: Records, values: Mapping[str, np.ndarray]):
    """Lag (h), bioavailability, modelled rate (mg/h) and duration (h) of every record.

    Each applies to the compartment the record doses; a value in the model's ``dosing``
    section (a number or a data column) wins over ``tlag_h``/``f_bio``/``d1_h`` parameters,
    which apply to the default dosing compartment.
    """
    n = records.n
    lag = np.zeros(n)
    fbio = np.ones(n)
    mrate = np.full(n, np.nan)
    mdur = np.full(n, np.nan)
    default = model.default_dosing_compartment()
    on_default = records.dose_compartment == default
    if "tlag_h" in values:
        lag = np.where(on_default, values["tlag_h"], lag)
    if "f_bio" in values:
        fbio = np.where(on_default, values["f_bio"], fbio)
    if model.pk.absorption == "zero_order" and "d1_h" in values:
        mdur = np.where(records.dose_compartment == "central", values["d1_h"], mdur)
    to_mg = amount_to_mg_factor(model.data.amt_unit)
    for compartment, spec in (model.dosing or {}).items():
        rows = records.dose_compartment == compartment
        for key, target in (
            ("tlag_h", lag),
            ("f_bio", fbio),
            ("duration_h", mdur),
            ("rate_mg_per_h", mrate),
        ):
            value = getattr(spec, key)
            if value is None:
                continue
            if isinstance(value, str):
                v = _column(records.columns, value, f"dosing.{compartment}.{key}")
            else:
                v = np.full(n, float(value))
            if key == "rate_mg_per_h" and isinstance(value, str):
                v = v * to_mg
            target[rows] = v[rows]
    is_dose = (records.evid == 1) | (records.evid == 4)
    _check_dose_values(records, is_dose, lag, fbio, mrate, mdur)
    return lag, fbio, mrate, mdur


def _check_dose_values(records, is_dose, lag, fbio, mrate, mdur) -> None:
    checks = (
        ("lag time (h)", is_dose & ~(np.isfinite(lag) & (lag >= 0)), lag, "finite and >= 0"),
        ("bioavailability", is_dose & ~(np.isfinite(fbio) & (fbio >= 0)), fbio, "finite, >= 0"),
        (
            "modelled rate (RATE = -1)",
            is_dose & (records.rate == -1) & ~(mrate > 0),
            mrate,
            "> 0 mg/h (the model's dosing rate_mg_per_h)",
        ),
        (
            "modelled duration (RATE = -2)",
            is_dose & (records.rate == -2) & ~(mdur > 0),
            mdur,
            "> 0 h (the model's dosing duration_h)",
        ),
    )
    for what, bad, values, allowed in checks:
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            row = int(records.columns["ROW"][i]) + 2 if "ROW" in records.columns else i + 2
            raise SpecError(f"row {row}, {what}", float(values[i]), allowed)


def predict_records(
    model,
    records: Records,
    values: Mapping[str, np.ndarray],
    layout: Layout | None = None,
    *,
    states: bool = False,
):
    """Prediction at every record for per-record parameter values.

    Parameters
    ----------
    model : Model
        The model.
    records : Records
        From :func:`prepare_records`.
    values : mapping of str to ndarray, shape (n,)
        Parameter values by model name for each record (typical, individual, ...).
    layout : Layout, optional
        From :func:`~insilico.model.layout.model_layout`.
    states : bool
        Also return the state matrix (amounts mg; effect compartment mg/L).

    Returns
    -------
    pred : ndarray, shape (n,)
        Concentrations in the data's ``dv_unit``, PD outputs in their own unit, amounts in
        the data's ``amt_unit``; NaN where the numerical integration failed.
    x : ndarray, shape (n, n_states)
        Only with ``states=True``.
    """
    layout = layout or model_layout(model)
    n = records.n
    P = pack_parameters(model, layout, values, n)
    lag, fbio, mrate, mdur = dose_attributes(model, records, values)
    rate = records.rate.copy()
    if model.pk.absorption == "zero_order":
        zero = (records.dose_compartment == "central") & (rate == 0)
        rate[zero] = -2.0
    kernel = event_kernel_for(layout.pd_record if layout.ode else None, layout.ode)
    out = np.zeros((n, int(layout.structure[ek.S_NSTATES])))
    status = np.zeros(records.offsets.shape[0] - 1, dtype=np.int64)
    args = (
        records.time,
        records.evid,
        records.amt,
        rate,
        records.dose_state,
        records.ss,
        records.ii,
        records.addl,
        lag,
        fbio,
        mrate,
        mdur,
        P,
        layout.structure,
        out,
    )
    _run_by_subjects(kernel, records.offsets, args, status)
    if (status == 2).any():
        raise SpecError(
            "SS",
            "steady-state dosing",
            "steady state only for linear models (no Michaelis-Menten elimination or PD states)",
        )
    if (status == 3).any():
        si = int(np.flatnonzero(status == 3)[0])
        where = records.offsets[si]
        who = records.columns["ID"][where] if "ID" in records.columns else si
        raise SpecError(
            f"subject {who}",
            "more than 256 doses or infusion ends pending at one time",
            "fewer overlapping infusions (shorter infusions, or SS records instead of history)",
        )
    pred = observe(model, layout, records, out, P)
    failed = np.flatnonzero(status == 1)
    for k in failed:
        pred[records.offsets[k] : records.offsets[k + 1]] = np.nan
    return (pred, out) if states else pred


#: records per thread below which one thread runs the whole dataset
_THREAD_MIN_RECORDS = 20_000


def _run_by_subjects(kernel, offsets, args, status) -> None:
    """Run the kernel over the subjects, split into contiguous groups on the machine's cores.

    Each subject is simulated alone, so the split does not change any number.
    """
    n_subjects = offsets.shape[0] - 1
    n = int(offsets[-1])
    threads = min(os.cpu_count() or 1, max(1, n // _THREAD_MIN_RECORDS), max(1, n_subjects))
    if threads <= 1:
        kernel(offsets, *args, status)
        return
    # cut at subject boundaries near equal shares of records
    cuts = np.searchsorted(offsets, np.linspace(0, n, threads + 1)[1:-1])
    bounds = np.unique(np.r_[0, cuts, n_subjects])

    def part(i):
        a, b = bounds[i], bounds[i + 1]
        st = np.zeros(b - a, dtype=np.int64)
        kernel(offsets[a : b + 1], *args, st)
        status[a:b] = st

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(part, range(len(bounds) - 1)))


@functools.cache
def _direct_loop(direct):
    @nb.njit
    def run(c, P, out):
        for i in range(c.shape[0]):
            out[i] = direct(c[i], P[i])

    return run


def direct_response(record, c: np.ndarray, P: np.ndarray) -> np.ndarray:
    """A direct PD model's response at unbound concentrations ``c`` (mg/L), shape (n,).

    ``P`` holds the record's parameters per row, shape (n, n_pd_parameters).
    """
    out = np.empty(c.shape[0])
    _direct_loop(record.direct)(np.ascontiguousarray(c), np.ascontiguousarray(P), out)
    return out


@functools.cache
def _initial_loop(initial, n_states: int):
    @nb.njit
    def run(P, out):
        y0 = np.zeros(n_states)
        for i in range(P.shape[0]):
            initial(P[i], y0)
            out[i] = y0

    return run


def initial_states(record, P: np.ndarray) -> np.ndarray:
    """A stateful PD model's states before any dose, shape (n, n_states); ``P`` holds the
    record's parameters per row, shape (n, n_pd_parameters)."""
    out = np.empty((P.shape[0], len(record.states)))
    _initial_loop(record.initial, len(record.states))(np.ascontiguousarray(P), out)
    return out


def observe(model, layout: Layout, records: Records, x: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Each record's observed quantity from the states ``x`` (see :func:`predict_records`)."""
    n = records.n
    rows = np.arange(n)
    value = x[rows, records.obs_state]
    pred = np.empty(n)
    dv = mg_per_L_to_dv_factor(model.data.dv_unit)
    to_mg = amount_to_mg_factor(model.data.amt_unit)
    conc = records.obs_kind == OBS_CONC
    volume = np.ones(n)
    for name, pname in _VOLUME_OF.items():
        if name in layout.states:
            sel = records.obs_state == layout.index(name)
            col = {"v1_L": ek.P_V1, "v2_L": ek.P_V2, "v3_L": ek.P_V3}[pname]
            volume[sel] = P[sel, col]
    pred[conc] = value[conc] / volume[conc] * dv
    st = records.obs_kind == OBS_STATE
    pred[st] = value[st]
    am = records.obs_kind == OBS_AMOUNT
    pred[am] = value[am] / to_mg
    direct = records.obs_kind == OBS_DIRECT
    if direct.any():
        record = layout.pd_record
        drive = x[direct, layout.structure[ek.S_DRIVER]]
        if layout.structure[ek.S_DRIVER] != layout.structure[ek.S_EFFECT]:
            drive = drive / P[direct, ek.P_V1]
        drive = drive * P[direct, ek.P_FU]
        pred[direct] = direct_response(record, drive, P[direct, ek.P_PD :])
    return pred
