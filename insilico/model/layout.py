"""Where a model's states and parameters sit in the event kernel's arrays: derived in one place.

Pharmacodynamic models are driven by the unbound concentration ``fu · C`` (``fu`` = 1 unless
the model gives it), the way potencies measured in vitro are expressed.

States, in order: the PK compartments (``depot``, for transit absorption ``transit1`` ..
``transitN`` and ``absorption``, then ``central``, ``peripheral1``, ``peripheral2``), the
effect compartment (``effect``, a concentration in mg/L), optionally ``auc`` (the integral of
the central concentration, mg·h/L), then the PD model's states. PK
states are amounts (mg).

Transit absorption (Savic et al. 2007, doi:10.1007/s10928-007-9066-0): an oral dose enters
``depot`` and passes ``n_transit + 1`` compartments in series (``depot``, ``transit1`` ..
``transitN``) at ``ktr = (n_transit + 1) / mtt_h`` into ``absorption``, which empties into
``central`` at ``ka_per_h``; ``mtt_h`` is the mean time to reach ``absorption``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from insilico.errors import SpecError
from insilico.pk import event_kernel as ek

if TYPE_CHECKING:
    from insilico.pd.registry import PDRecord

#: model parameter name -> kernel column (PK part)
PK_COLUMNS = {
    "cl_L_per_h": ek.P_CL,
    "v1_L": ek.P_V1,
    "q2_L_per_h": ek.P_Q2,
    "v2_L": ek.P_V2,
    "q3_L_per_h": ek.P_Q3,
    "v3_L": ek.P_V3,
    "ka_per_h": ek.P_KA,
    "ke0_per_h": ek.P_KE0,
    "vmax_mg_per_h": ek.P_VMAX,
    "km_mg_per_L": ek.P_KM,
}

_ABSORPTION_CODE = {"none": 0, "first_order": 1, "zero_order": 2, "transit": 3}
_ELIMINATION_CODE = {"linear": 0, "michaelis_menten": 1, "linear_and_michaelis_menten": 2}


@dataclass(frozen=True)
class Layout:
    """The kernel's view of a model.

    Attributes
    ----------
    states : tuple of str
        State names in kernel order.
    structure : ndarray of int64
        The kernel's structure descriptor (see :mod:`insilico.pk.event_kernel`).
    pd_record : PDRecord or None
        The model's PD record.
    pd_parameters : tuple of str
        PD parameters in the order the record's functions receive them.
    ode : bool
        Whether the kernel integrates numerically.
    """

    states: tuple[str, ...]
    structure: np.ndarray
    pd_record: PDRecord | None
    pd_parameters: tuple[str, ...]
    ode: bool

    @property
    def n_parameters(self) -> int:
        """Columns of the packed parameter array."""
        return ek.P_PD + len(self.pd_parameters)

    def index(self, name: str) -> int:
        """Kernel index of state ``name``."""
        return self.states.index(name)


def model_layout(model, *, auc: bool = False) -> Layout:
    """The :class:`Layout` of a :class:`~insilico.model.spec.Model`.

    ``auc=True`` adds a state ``auc`` integrating the central concentration (mg·h/L), solved
    with the others (exactly for linear models), for exposure metrics between output times.
    """
    pk = model.pk
    states: list[str] = []
    s = np.full(ek.S_SIZE, -1, dtype=np.int64)
    s[ek.S_NCHAIN] = 0
    if pk.absorption in ("first_order", "transit"):
        s[ek.S_DEPOT] = len(states)
        states.append("depot")
    if pk.absorption == "transit":
        n = int(model.parameters["n_transit"])
        s[ek.S_NCHAIN] = n
        states += [f"transit{k}" for k in range(1, n + 1)] + ["absorption"]
    s[ek.S_CENTRAL] = len(states)
    states.append("central")
    if pk.compartments >= 2:
        s[ek.S_P1] = len(states)
        states.append("peripheral1")
    if pk.compartments >= 3:
        s[ek.S_P2] = len(states)
        states.append("peripheral2")
    pd_record = None
    pd_parameters: tuple[str, ...] = ()
    s[ek.S_DRIVER] = s[ek.S_CENTRAL]
    if model.pd is not None:
        from insilico.pd.registry import get_pd_model

        pd_record = get_pd_model(model.pd.model)
        pd_parameters = tuple(pd_record.parameters)
        if model.pd.effect_compartment:
            s[ek.S_EFFECT] = len(states)
            s[ek.S_DRIVER] = s[ek.S_EFFECT]
            states.append("effect")
    if auc:
        s[ek.S_AUC] = len(states)
        states.append("auc")
    s[ek.S_NPK] = len(states)
    stateful = pd_record is not None and pd_record.has_state
    if pd_record is not None and stateful:
        s[ek.S_PDOFF] = len(states)
        s[ek.S_NPD] = len(pd_record.states)
        states += list(pd_record.states)
    else:
        s[ek.S_NPD] = 0
    s[ek.S_NSTATES] = len(states)
    s[ek.S_ABS] = _ABSORPTION_CODE[pk.absorption]
    s[ek.S_ELIM] = _ELIMINATION_CODE[pk.elimination]
    ode = stateful or pk.elimination != "linear"
    return Layout(tuple(states), s, pd_record if stateful else pd_record, pd_parameters, ode)


def pack_parameters(model, layout: Layout, values: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    """The kernel's parameter array from named per-record values.

    Parameters
    ----------
    model : Model
        Supplies defaults of optional PD parameters.
    layout : Layout
        From :func:`model_layout`.
    values : mapping of str to ndarray, shape (n,)
        Individual parameter values by model name (units in the names).
    n : int
        Number of records.

    Returns
    -------
    ndarray, shape (n, layout.n_parameters)
    """
    P = np.zeros((n, layout.n_parameters))
    P[:, ek.P_FU] = values["fu"] if "fu" in values else 1.0
    for name, col in PK_COLUMNS.items():
        if name in values:
            P[:, col] = values[name]
    if "n_transit" in model.parameters:
        n_transit = int(model.parameters["n_transit"])
        P[:, ek.P_KTR] = (n_transit + 1) / np.asarray(values["mtt_h"], dtype=float)
    record = layout.pd_record
    for j, name in enumerate(layout.pd_parameters):
        if name in values:
            P[:, ek.P_PD + j] = values[name]
        elif record is not None and name in record.defaults:
            P[:, ek.P_PD + j] = record.defaults[name]
        else:
            raise SpecError(f"parameters.{name}", None, "a value of this PD model parameter")
    return P
