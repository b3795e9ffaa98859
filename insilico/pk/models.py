"""Compartment models: parameter names, state layout and the batched rate matrices.

State vector (amounts in mg unless noted), in this order, present only when needed:

``depot`` (extravascular doses) · ``central`` · ``periph2`` · ``periph3`` ·
``ce`` (effect-compartment concentration, mg/L) · ``auc`` (integral of the central
concentration, mg·h/L) · ``elim`` (cumulative amount eliminated, nonlinear models only;
for linear elimination it is ``cl · auc``).

Linear models are ``dx/dt = A x + e_central · R(t)`` with ``A`` per patient::

    depot'   = -ka depot
    central' =  ka depot - (k10 + k12 + k13) central + k21 periph2 + k31 periph3 + R
    periph2' =  k12 central - k21 periph2
    periph3' =  k13 central - k31 periph3
    ce'      =  ke0 (central / V1 - ce)
    auc'     =  central / V1

with ``k10 = CL/V1``, ``k12 = Q2/V1``, ``k21 = Q2/V2``, ``k13 = Q3/V1``, ``k31 = Q3/V3``.
Michaelis–Menten elimination adds ``- Vmax · C / (Km + C)`` (mg/h) to ``central'``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from insilico.errors import SpecError

ELIMINATIONS = ("linear", "michaelis_menten", "linear+michaelis_menten")

#: Parameter names (units in the name) by model feature.
PARAMETERS = {
    "cl_L_per_h": "clearance (linear elimination)",
    "v1_L": "central volume",
    "q2_L_per_h": "intercompartmental clearance to periph2",
    "v2_L": "volume of periph2",
    "q3_L_per_h": "intercompartmental clearance to periph3",
    "v3_L": "volume of periph3",
    "ka_per_h": "first-order absorption rate constant",
    "f_bio": "bioavailability (0-1) of extravascular doses",
    "tlag_h": "absorption lag time",
    "vmax_mg_per_h": "maximum Michaelis-Menten elimination rate",
    "km_mg_per_L": "Michaelis-Menten constant",
    "ke0_per_h": "effect-compartment equilibration rate constant",
}


@dataclass(frozen=True)
class PKModel:
    """A mammillary compartment model with elimination from the central compartment.

    Parameters
    ----------
    n_compartments : int
        1, 2 or 3.
    elimination : str
        ``"linear"``, ``"michaelis_menten"`` or ``"linear+michaelis_menten"``.
    """

    n_compartments: int = 1
    elimination: str = "linear"

    def __post_init__(self):
        if self.n_compartments not in (1, 2, 3):
            raise SpecError("pk.n_compartments", self.n_compartments, "1, 2 or 3")
        if self.elimination not in ELIMINATIONS:
            raise SpecError("pk.elimination", self.elimination, f"one of {list(ELIMINATIONS)}")

    @property
    def is_linear(self) -> bool:
        return self.elimination == "linear"

    def required_parameters(self, has_depot: bool) -> list[str]:
        """Parameter names the model needs."""
        names = ["v1_L"]
        if self.elimination != "michaelis_menten":
            names.append("cl_L_per_h")
        if "michaelis_menten" in self.elimination:
            names += ["vmax_mg_per_h", "km_mg_per_L"]
        if self.n_compartments >= 2:
            names += ["q2_L_per_h", "v2_L"]
        if self.n_compartments == 3:
            names += ["q3_L_per_h", "v3_L"]
        if has_depot:
            names.append("ka_per_h")
        return names


@dataclass(frozen=True)
class StateLayout:
    """Indices of the state vector; -1 where a state is absent."""

    depot: int
    central: int
    periph2: int
    periph3: int
    ce: int
    auc: int
    elim: int
    size: int

    @staticmethod
    def for_model(
        model: PKModel, has_depot: bool, effect_compartment: bool, explicit_elim: bool
    ) -> StateLayout:
        i = 0
        idx = {}
        for name, present in (
            ("depot", has_depot),
            ("central", True),
            ("periph2", model.n_compartments >= 2),
            ("periph3", model.n_compartments >= 3),
            ("ce", effect_compartment),
            ("auc", True),
            ("elim", explicit_elim),
        ):
            idx[name] = i if present else -1
            i += int(present)
        return StateLayout(size=i, **idx)


def _param(params, name, n, default=None):
    if name in params:
        v = np.asarray(params[name], dtype=float)
        return np.broadcast_to(v, (n,)) if v.ndim == 0 else v
    if default is None:
        raise SpecError(f"params.{name}", None, f"a value for {PARAMETERS.get(name, name)}")
    return np.full(n, float(default))


def check_parameters(params: dict, names: list[str], n: int) -> dict[str, np.ndarray]:
    """Validate per-patient parameter arrays: finite, positive, right length. Returned as
    writeable C-contiguous float64 arrays whatever was given (a scalar broadcast, a strided
    slice, a read-only array from pyarrow), so the kernels always see the same argument types:
    a read-only broadcast ``v1_L`` typed a second specialization of the linear kernel, ~50 s
    of compile."""
    out = {}
    for name in names:
        v = _param(params, name, n)
        if v.shape != (n,):
            raise SpecError(f"params.{name}", v.shape, f"shape ({n},)")
        bad = ~np.isfinite(v) | (v <= 0)
        if np.any(bad):
            raise SpecError(f"params.{name}", float(v[bad][0]), "finite values > 0")
        v = np.ascontiguousarray(v, dtype=np.float64)
        out[name] = v if v.flags.writeable else v.copy()  # numba types read-only apart
    return out


def rate_matrices(
    model: PKModel, layout: StateLayout, params: dict[str, np.ndarray], n: int
) -> np.ndarray:
    """Batched linear part ``A`` of the model, shape (n, S, S).

    For Michaelis–Menten models only the linear part is returned (the saturable term is added
    by the ODE integrator).
    """
    S = layout.size
    A = np.zeros((n, S, S))
    v1 = _param(params, "v1_L", n)
    c = layout.central
    cl = _param(params, "cl_L_per_h", n, 0.0) if model.elimination != "michaelis_menten" else 0
    A[:, c, c] -= np.asarray(cl) / v1
    if layout.depot >= 0:
        ka = _param(params, "ka_per_h", n)
        A[:, layout.depot, layout.depot] = -ka
        A[:, c, layout.depot] = ka
    for p, q_name, v_name in (
        (layout.periph2, "q2_L_per_h", "v2_L"),
        (layout.periph3, "q3_L_per_h", "v3_L"),
    ):
        if p >= 0:
            q = _param(params, q_name, n)
            vp = _param(params, v_name, n)
            A[:, c, c] -= q / v1
            A[:, p, c] = q / v1
            A[:, c, p] = q / vp
            A[:, p, p] = -q / vp
    if layout.ce >= 0:
        ke0 = _param(params, "ke0_per_h", n)
        A[:, layout.ce, c] = ke0 / v1
        A[:, layout.ce, layout.ce] = -ke0
    A[:, layout.auc, c] = 1.0 / v1
    return A
