"""Pharmacodynamic models, driven by the unbound concentration ``fu · C`` (or ``fu · Ce``).

Direct effects (Holford & Sheiner 1981, doi:10.2165/00003088-198106060-00002)::

    linear        E = E0 + slope · Cu
    emax          E = E0 + Emax · Cu / (EC50 + Cu)
    sigmoid_emax  E = E0 + Emax · Cu^h / (EC50^h + Cu^h)

Effect-compartment link (Sheiner et al. 1979, doi:10.1002/cpt1979253358): ``dCe/dt = ke0 (C -
Ce)`` and the direct model is driven by ``fu · Ce``; ``Ce`` is part of the exact linear PK
solution.

Indirect response models I–IV (Dayneka, Garner & Jusko 1993, doi:10.1007/BF01059644), with
``R(0) = R0 = kin / kout`` and ``I(Cu) = Imax Cu^h / (IC50^h + Cu^h)``,
``S(Cu) = Smax Cu^h / (SC50^h + Cu^h)``::

    irm1 (inhibition of production)   dR/dt = kin (1 - I) - kout R
    irm2 (inhibition of loss)         dR/dt = kin - kout (1 - I) R
    irm3 (stimulation of production)  dR/dt = kin (1 + S) - kout R
    irm4 (stimulation of loss)        dR/dt = kin - kout (1 + S) R
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

from insilico.errors import SpecError

KINDS = {
    "none": 0,
    "linear": 1,
    "emax": 2,
    "sigmoid_emax": 3,
    "irm1": 4,
    "irm2": 5,
    "irm3": 6,
    "irm4": 7,
}

#: Row order of the packed PD parameter array used by the kernels.
PACKED = ("e0", "slope", "emax", "c50", "hill", "kin", "kout", "fu")

#: Parameters each kind needs (names as given by users; units in names).
REQUIRED = {
    "none": (),
    "linear": ("e0", "slope_L_per_mg"),
    "emax": ("e0", "emax", "ec50_mg_per_L"),
    "sigmoid_emax": ("e0", "emax", "ec50_mg_per_L", "hill"),
    "irm1": ("kin_per_h", "kout_per_h", "imax", "ic50_mg_per_L"),
    "irm2": ("kin_per_h", "kout_per_h", "imax", "ic50_mg_per_L"),
    "irm3": ("kin_per_h", "kout_per_h", "smax", "sc50_mg_per_L"),
    "irm4": ("kin_per_h", "kout_per_h", "smax", "sc50_mg_per_L"),
}


@dataclass(frozen=True)
class PDModel:
    """A PD model: ``kind`` (see module docstring) and an optional effect compartment."""

    kind: str = "none"
    effect_compartment: bool = False

    def __post_init__(self):
        if self.kind not in KINDS:
            raise SpecError("pd.kind", self.kind, f"one of {list(KINDS)}")
        if self.effect_compartment and self.kind.startswith("irm"):
            raise SpecError(
                "pd.effect_compartment", True, "false for indirect-response models (no link)"
            )

    @property
    def code(self) -> int:
        return KINDS[self.kind]

    @property
    def has_state(self) -> bool:
        return self.kind.startswith("irm")

    def pack(self, params: dict, n: int) -> np.ndarray:
        """Packed parameters, shape (len(PACKED), n), validated."""
        need = list(REQUIRED[self.kind]) + (["ke0_per_h"] if self.effect_compartment else [])
        vals = {}
        for name in need + ["fu", "hill"]:
            if name not in params:
                if name == "fu":
                    vals[name] = np.ones(n)
                    continue
                if name == "hill":
                    vals[name] = np.ones(n)
                    continue
                raise SpecError(f"pd.{name}", None, f"a value (required by pd kind {self.kind!r})")
            v = np.broadcast_to(np.asarray(params[name], dtype=float), (n,))
            if not np.all(np.isfinite(v)):
                raise SpecError(f"pd.{name}", "non-finite", "finite values")
            vals[name] = v
        for name in ("fu",):
            if np.any((vals[name] <= 0) | (vals[name] > 1)):
                raise SpecError("pd.fu", float(np.min(vals[name])), "0 < fu <= 1")
        for name in (
            "kin_per_h",
            "kout_per_h",
            "ec50_mg_per_L",
            "ic50_mg_per_L",
            "sc50_mg_per_L",
            "hill",
        ):
            if name in vals and np.any(vals[name] <= 0):
                raise SpecError(f"pd.{name}", float(np.min(vals[name])), "values > 0")
        if "imax" in vals and np.any((vals["imax"] < 0) | (vals["imax"] > 1)):
            raise SpecError("pd.imax", float(np.max(vals["imax"])), "0 <= imax <= 1")
        P = np.zeros((len(PACKED), n))
        P[0] = vals.get("e0", 0.0)
        P[1] = vals.get("slope_L_per_mg", 0.0)
        P[2] = vals.get("emax", vals.get("imax", vals.get("smax", 0.0)))
        P[3] = vals.get("ec50_mg_per_L", vals.get("ic50_mg_per_L", vals.get("sc50_mg_per_L", 1.0)))
        P[4] = vals["hill"]
        P[5] = vals.get("kin_per_h", 0.0)
        P[6] = vals.get("kout_per_h", 1.0)
        P[7] = vals["fu"]
        return P

    def baseline(self, P: np.ndarray) -> np.ndarray:
        """Response without drug: ``E0`` or ``R0 = kin / kout``."""
        if self.has_state:
            return P[5] / P[6]
        return P[0].copy()


@nb.njit(cache=True, inline="always")
def hill_fraction(cu: float, c50: float, hill: float) -> float:
    """``Cu^h / (C50^h + Cu^h)``, 0 for Cu <= 0."""
    if cu <= 0.0:
        return 0.0
    if hill == 1.0:
        return cu / (c50 + cu)
    r = (cu / c50) ** hill
    return r / (1.0 + r)


@nb.njit(cache=True, inline="always")
def direct_effect(
    kind: int, cu: float, e0: float, slope: float, emax: float, c50: float, hill: float
) -> float:
    """Direct-effect value for kinds 1–3 (no state)."""
    if kind == 1:
        return e0 + slope * cu
    if kind == 2:
        return e0 + emax * hill_fraction(cu, c50, 1.0)
    return e0 + emax * hill_fraction(cu, c50, hill)


@nb.njit(cache=True, inline="always")
def irm_rhs(
    kind: int, r: float, cu: float, emag: float, c50: float, hill: float, kin: float, kout: float
) -> float:
    """dR/dt of indirect-response model I–IV (kinds 4–7)."""
    f = emag * hill_fraction(cu, c50, hill)
    if kind == 4:
        return kin * (1.0 - f) - kout * r
    if kind == 5:
        return kin - kout * (1.0 - f) * r
    if kind == 6:
        return kin * (1.0 + f) - kout * r
    return kin - kout * (1.0 + f) * r
